"""The dashboard's first-run banner: find a seed-style project, show it, save only the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from clm_tray.core.config.sources import load_settings, user_config_file
from clm_tray.core.config.workspace import ensure_workspace

SEED_ENV = """# the trader's own settings
QT_CLM_BACKEND=none
QT_CLM_N_ESTIMATORS=40
QT_CLM_EARLY_STOPPING=10
QT_CLM_TRAIN_THREADS=1
QT_CLM_RETRAIN_HOURS=12
"""


@pytest.fixture
def seed_project(tmp_path: Path) -> Path:
    """Laid out like C:\\quantum_trader: .env, data/binance_futures_training_data.csv,
    ai_engine/models/."""
    from clm_tray.core.demo.datafile import save
    from clm_tray.core.demo.generator import generate

    root = tmp_path / "quantum_trader"
    (root / "ai_engine" / "models").mkdir(parents=True)
    (root / "data").mkdir()
    save(generate(symbols=3, bars=200, seed=3), root / "data" / "binance_futures_training_data.csv")
    (root / ".env").write_text(SEED_ENV)
    return root


@pytest.fixture
def first_run_app(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001
    """A tray app started the way a fresh install starts: nothing configured anywhere."""
    from clm_tray.core.app.service import Engine
    from clm_tray.gui.app import TrayApp

    home = tmp_path / "elsewhere"
    home.mkdir()
    monkeypatch.chdir(home)  # no ./.env
    loaded = load_settings()
    assert loaded.user_file is None and loaded.env_file is None
    engine = Engine(loaded)
    app = TrayApp(loaded, tray_available=True, notify_channel="tray")
    app.start(scheduler=False, engine=engine)
    qtbot.waitUntil(lambda: app.controller.snapshot is not None, timeout=20_000)
    yield app
    app.quit(quit_app=False)
    if app.dashboard is not None:
        app.dashboard.deleteLater()


def test_banner_offers_setup_and_saves_only_the_project_folder(
        qtbot, first_run_app, seed_project, monkeypatch):  # noqa: ANN001
    env_before = (seed_project / ".env").read_bytes()
    app = first_run_app
    dash = app.open_dashboard("overview")
    banner = dash.firstrun_banner
    assert banner.isVisibleTo(dash)
    assert banner.title.text() == "clm-tray is not set up yet"
    assert banner.folder_button.text() == "Use my project folder…"
    assert banner.demo_button.text() == "Open the demo workspace"

    asked = []

    def pick(*args, **kwargs):  # noqa: ANN002, ANN003 - the OS folder picker, answered
        asked.append(args)
        return str(seed_project)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", pick)
    qtbot.mouseClick(banner.folder_button, Qt.MouseButton.LeftButton)
    assert asked
    qtbot.waitUntil(lambda: banner.finding_dialog is not None
                    and banner.finding_dialog.isVisible(), timeout=20_000)
    dialog = banner.finding_dialog
    text = dialog.summary.toPlainText()
    assert f"Project folder: {seed_project}" in text
    assert ".env: found (5 QT_CLM_* values" in text
    assert "binance_futures_training_data.csv (600 rows" in text
    assert "models folder: " in text and "ai_engine" in text
    assert "What will happen at the first retrain (nothing changes before):" in text
    assert "- write xgb_model.ubj: the new model" in text  # the same plan as --dry-run
    assert not user_config_file().exists()  # nothing is written before Save

    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not banner.isVisibleTo(dash), timeout=20_000)
    saved = user_config_file().read_text()
    assert f"QT_CLM_PROJECT_DIR={seed_project}" in saved
    assert "QT_CLM_RETRAIN_HOURS" not in saved  # the .env's values stay in the .env
    assert (seed_project / ".env").read_bytes() == env_before

    controller = app.controller
    assert controller.loaded.env_file == seed_project / ".env"
    engine = controller.engine
    qtbot.waitUntil(lambda: engine.settings.retrain_hours == 12, timeout=10_000)
    assert engine.settings.resolved_deploy_dir == seed_project / "ai_engine" / "models"
    assert engine.settings.resolved_data_path == (
        seed_project / "data" / "binance_futures_training_data.csv")
    assert not banner.needed()


def test_cancel_saves_nothing(qtbot, first_run_app, seed_project, monkeypatch):  # noqa: ANN001
    dash = first_run_app.open_dashboard()
    banner = dash.firstrun_banner
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(seed_project))
    qtbot.mouseClick(banner.folder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: banner.finding_dialog is not None
                    and banner.finding_dialog.isVisible(), timeout=20_000)
    banner.finding_dialog.buttons.rejected.emit()
    qtbot.wait(200)
    assert not user_config_file().exists()
    assert banner.isVisibleTo(dash)
    # a cancelled folder picker does nothing either
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "")
    banner.finding_dialog = None
    qtbot.mouseClick(banner.folder_button, Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert banner.finding_dialog is None


def test_demo_workspace_is_remembered_and_its_env_and_store_apply(
        qtbot, first_run_app, tmp_path, monkeypatch):  # noqa: ANN001
    import clm_tray.gui.firstrun_banner as fb

    dash = first_run_app.open_dashboard()
    banner = dash.firstrun_banner
    root = tmp_path / "demo"
    banner.make_workspace = lambda: ensure_workspace(root, symbols=3, bars=200)
    started = []
    # the reference backend and first cycle are `clm-tray demo`'s; here only the wiring
    monkeypatch.setattr(fb, "_start_demo", lambda controller, engine: started.append(engine))
    qtbot.mouseClick(banner.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(started), timeout=30_000)
    assert not banner.isVisibleTo(dash)
    assert f"QT_CLM_PROJECT_DIR={root}" in user_config_file().read_text()
    controller = first_run_app.controller
    assert controller.loaded.env_file == root / ".env"
    engine = controller.engine
    assert engine is started[0]
    assert engine.store.root == root / "store"  # the demo's own store: a new engine
    assert engine.settings.resolved_deploy_dir == root / "ai_engine" / "models"
    qtbot.waitUntil(lambda: controller.snapshot is not None
                    and controller.snapshot.status.workspace is not None, timeout=10_000)


def test_no_banner_when_configured(qtbot, make_tray_app):  # noqa: ANN001
    app = make_tray_app()
    dash = app.open_dashboard()
    assert not dash.firstrun_banner.isVisibleTo(dash)


SWITCH_SCRIPT = """
import json, sys, time
from pathlib import Path
from PySide6.QtWidgets import QApplication
from clm_tray.core.config.sources import load_settings
from clm_tray.gui.app import TrayApp
from clm_tray.gui.firstrun_banner import switch_settings

app = QApplication([])
tray = TrayApp(load_settings(), tray_available=True, notify_channel="tray")
controller = tray.controller

def wait_for(test, what):
    deadline = time.monotonic() + 60
    while not test():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)

tray.start(scheduler=False)
wait_for(lambda: controller.engine is not None, "the first engine")
first = controller.engine
ws = Path(sys.argv[1])
switch_settings(controller, load_settings(ws / ".env", cwd=ws))
wait_for(lambda: controller.engine not in (None, first), "the engine of the project")
result = controller.engine.retrain("first run")
controller.engine.performance()
champion = controller.engine.status().champion
print(json.dumps({
    "heavy": [m for m in ("pandas", "xgboost", "sklearn", "scipy") if m in sys.modules],
    "outcome": result.outcome,
    "champion": champion.id if champion else "",
}))
tray.quit(quit_app=False)
"""


def test_after_the_first_run_switch_the_tray_process_still_never_loads_pandas_or_xgboost(
        small_workspace, tmp_path):  # noqa: ANN001
    """The project chosen in the first-run banner gets an engine opened like the app's first
    one: the retrain runs in a worker process, the tray's own process stays light."""
    import json
    import os
    import subprocess
    import sys

    home = tmp_path / "elsewhere"  # nothing configured here: the app starts unconfigured
    home.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", SWITCH_SCRIPT, str(small_workspace)],
                         capture_output=True, text=True, timeout=300, cwd=home, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["outcome"] == "deployed"
    assert got["champion"]  # the project's champion, trained by the worker
    assert got["heavy"] == []
