"""Settings… writes the per-user file (never .env) and applies at once; --screenshot works."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtGui import QImage

from clm_tray.core.settings import user_config_file


def test_settings_dialog_saves_to_the_user_file_and_applies_without_restart(
        qtbot, make_tray_app, small_workspace):
    env_before = (small_workspace / ".env").read_text()
    app = make_tray_app()
    dialog = app.open_settings()
    assert dialog.user_file == user_config_file()
    src = dialog.findChild(type(dialog.error_label), "source-QT_CLM_DATA_PATH")
    assert src is not None and ".env" in src.text()
    assert not dialog.editors["QT_CLM_DATA_PATH"].isEnabled()  # .env wins: read-only here

    dialog.set_value("QT_CLM_CHECK_MINUTES", "-3")
    assert "QT_CLM_CHECK_MINUTES" in dialog.error_label.text()
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Save).isEnabled()
    dialog.set_value("QT_CLM_CHECK_MINUTES", "7")
    dialog.set_value("QT_CLM_NOTIFY_SUCCESS", "false")
    assert dialog.changes() == {"QT_CLM_CHECK_MINUTES": "7", "QT_CLM_NOTIFY_SUCCESS": "false"}
    dialog.save()

    text = user_config_file().read_text()
    assert "QT_CLM_CHECK_MINUTES=7" in text and "QT_CLM_NOTIFY_SUCCESS=false" in text
    assert (small_workspace / ".env").read_text() == env_before
    qtbot.waitUntil(lambda: app.controller.engine.settings.check_minutes == 7, timeout=10_000)
    assert app.notifier.rules.notify_success is False


def test_gui_screenshot_renders_each_view(tmp_path, small_workspace):
    for view in ("overview", "versions"):
        out = tmp_path / f"{view}.png"
        proc = subprocess.run([sys.executable, "-m", "clm_tray", "gui", "--screenshot", str(out),
                               "--view", view], cwd=small_workspace, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        image = QImage(str(out))
        assert image.width() >= 1000 and image.height() >= 700
