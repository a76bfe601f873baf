"""Settings… writes the per-user file (never .env) and applies at once; --screenshot works."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtGui import QImage

from clm_tray.core.config.sources import user_config_file


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
    for view in ("overview", "drift", "versions", "activity"):
        out = tmp_path / f"{view}.png"
        proc = subprocess.run([sys.executable, "-m", "clm_tray", "gui", "--screenshot", str(out),
                               "--view", view], cwd=small_workspace, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        image = QImage(str(out))
        assert image.width() >= 1000 and image.height() >= 700


def test_settings_read_as_words_grouped_with_units_and_reset_and_inline_errors(
        qtbot, make_tray_app):
    from PySide6.QtWidgets import QLabel

    app = make_tray_app()
    dialog = app.open_settings()
    headings = [w.text() for w in dialog.findChildren(QLabel)
                if w.objectName().startswith("group-")]
    assert headings[:5] == ["<b>Schedule</b>", "<b>Training</b>", "<b>Deploy</b>",
                            "<b>Backend</b>", "<b>Notifications</b>"]
    label = dialog.findChild(QLabel, "label-QT_CLM_NOTIFY_THROTTLE_MINUTES")
    assert label.text() == "Do not repeat the same notice within"
    assert label.toolTip().startswith("QT_CLM_NOTIFY_THROTTLE_MINUTES")  # the name, on hover

    # a wrong value: the engine's own message right under the field, Save off
    dialog.set_value("QT_CLM_NOTIFY_THROTTLE_MINUTES", "-5")
    inline = dialog.inline_errors["QT_CLM_NOTIFY_THROTTLE_MINUTES"]
    assert inline.isVisibleTo(dialog) and ">= 0" in inline.text()
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Save).isEnabled()
    # reset that field: back to its default, error gone
    dialog.reset_buttons["QT_CLM_NOTIFY_THROTTLE_MINUTES"].click()
    assert dialog.value_text("QT_CLM_NOTIFY_THROTTLE_MINUTES") == "30"
    assert not inline.isVisibleTo(dialog)
    # reset all: every editable field at its default, nothing changed to save
    dialog.set_value("QT_CLM_MAX_DEPTH", "9")
    dialog.set_value("QT_CLM_NOTIFY_SUCCESS", "false")
    dialog.reset_all()
    assert dialog.value_text("QT_CLM_MAX_DEPTH") == "6"
    assert dialog.value_text("QT_CLM_NOTIFY_SUCCESS") == "true"
    locked = dialog.editors["QT_CLM_DATA_PATH"]  # set in .env: not touched by reset all
    assert not locked.isEnabled() and locked.text().endswith("data/train.csv")
    assert dialog.changes() == {}
    dialog.close()
