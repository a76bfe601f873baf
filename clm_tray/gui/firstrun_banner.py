"""The dashboard's first-run banner: "clm-tray is not set up yet" and two ways out.

Shown while ``firstrun.is_first_run`` holds (no per-user config file, no ``.env`` found, no
``QT_CLM_*`` in the environment). Either the user points it at an existing project folder —
it is looked at on the task runner (that may probe Docker), what was found is shown, and
only Save writes ``QT_CLM_PROJECT_DIR`` to the per-user file — or opens the demo workspace,
which is remembered the same way (its own ``.env`` is then found through the project dir).
Either way the engine picks up the new settings at once and the banner goes away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from clm_tray.core.app.port import EnginePort
from clm_tray.core.config import firstrun
from clm_tray.core.config.settings import PREFIX
from clm_tray.core.config.sources import LoadedSettings, load_settings
from clm_tray.gui.taskrunner import Op

log = logging.getLogger(__name__)

KEY = "firstrun"  # the task-runner key: both buttons are disabled while one runs


class FindingDialog(QDialog):
    """What was found in the folder, one line per piece, with Save / Cancel."""

    def __init__(self, finding: firstrun.ProjectFinding, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.finding = finding
        self.setObjectName("firstrun-finding")
        self.setWindowTitle("Use this project folder?")
        self.resize(760, 340)
        lay = QVBoxLayout(self)
        if finding.looks_like_project:
            head = ("clm-tray found this in the folder. Save remembers the folder in your "
                    "clm-tray settings; your .env and files stay as they are. What will "
                    "happen: the first retrain keeps the model deployed now and writes the "
                    "files listed at the end.")
        elif finding.exists:
            head = ("This folder has no .env, no training data and no models folder where "
                    "clm-tray looks. Save it anyway only if you will fill it in later.")
        else:
            head = "This folder does not exist."
        self.heading = QLabel(head)
        self.heading.setWordWrap(True)
        lay.addWidget(self.heading)
        self.summary = QPlainTextEdit("\n".join(finding.summary_lines()))
        self.summary.setObjectName("firstrun-summary")
        self.summary.setReadOnly(True)
        self.summary.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.summary.setFont(mono)
        lay.addWidget(self.summary, 1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setEnabled(finding.exists)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)


class FirstRunBanner(QFrame):
    """The banner plus the two flows it starts; ``configured`` carries the new settings."""

    configured = Signal(object)  # LoadedSettings, after the folder was saved and applied

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.finding_dialog: FindingDialog | None = None
        # seams for tests and callers; the defaults are the real thing
        self.load: Callable[[], LoadedSettings] = load_settings
        self.make_workspace: Callable[[], Any] = _ensure_workspace
        self.setObjectName("firstrun-banner")
        self.setStyleSheet("#firstrun-banner { background: #e3efff; border: 1px solid #3b76c4;"
                           " border-radius: 4px; } #firstrun-banner QLabel { color: #0b2545; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        text = QVBoxLayout()
        self.title = QLabel("clm-tray is not set up yet")
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.detail = QLabel("Point it at your project folder (the one with .env, data/ and "
                             "ai_engine/models/), or try it on the demo workspace first.")
        self.detail.setWordWrap(True)
        text.addWidget(self.title)
        text.addWidget(self.detail)
        lay.addLayout(text, 1)
        self.folder_button = QPushButton("Use my project folder…")
        self.folder_button.clicked.connect(self.choose_folder)
        self.demo_button = QPushButton("Open the demo workspace")
        self.demo_button.clicked.connect(self.open_demo)
        lay.addWidget(self.folder_button)
        lay.addWidget(self.demo_button)
        controller.runner.bind(KEY, self.folder_button, self.demo_button)
        self.update_visibility()

    # ---- when it shows ------------------------------------------------------------------
    def needed(self) -> bool:
        return firstrun.is_first_run(self.controller.loaded)

    def update_visibility(self) -> None:
        self.setVisible(self.needed())

    # ---- "Use my project folder…" --------------------------------------------------------
    def choose_folder(self) -> None:
        start = str(Path.home())
        folder = QFileDialog.getExistingDirectory(self.window(), "Choose your project folder",
                                                  start)
        if folder:
            self.look_at(Path(folder))

    def look_at(self, folder: Path) -> bool:
        """Detect the project off the GUI thread, then show what was found."""
        return Op(lambda: firstrun.detect_project(folder), key=KEY,
                  label="Look at the project folder").success(self._show_finding) \
            .run(self.controller.runner)

    def _show_finding(self, finding: firstrun.ProjectFinding) -> None:
        dialog = FindingDialog(finding, self.window())
        self.finding_dialog = dialog
        dialog.accepted.connect(lambda: self.save_folder(finding.folder))
        dialog.open()

    # ---- "Open the demo workspace" -------------------------------------------------------
    def open_demo(self) -> bool:
        self.detail.setText("Preparing the demo workspace (91 symbols × 1,500 hourly bars)…")
        make = self.make_workspace
        return Op(make, key=KEY, label="Open the demo workspace") \
            .success(lambda ws: self.save_folder(Path(ws.root), demo=True)) \
            .failure(self._failed("Open the demo workspace")) \
            .run(self.controller.runner)

    # ---- saving and applying -------------------------------------------------------------
    def save_folder(self, folder: Path, *, demo: bool = False) -> bool:
        """Write QT_CLM_PROJECT_DIR to the per-user file, reload settings, switch the engine."""
        load = self.load

        def work() -> LoadedSettings:
            firstrun.save(firstrun.ProjectFinding(folder=folder))
            return load()

        return Op(work, key=KEY, label="Save the project folder") \
            .success(lambda loaded: self._saved(loaded, demo)) \
            .failure(self._failed("Save the project folder")) \
            .run(self.controller.runner)

    def _saved(self, loaded: LoadedSettings, demo: bool) -> None:
        folder = loaded.settings.project_dir
        switch_settings(self.controller, loaded, demo=demo)
        self.hide()
        where = loaded.env_file or folder
        self.controller.info.emit(f"clm-tray now uses {where} ({PREFIX}PROJECT_DIR saved in "
                                  f"{loaded.user_file})")
        self.configured.emit(loaded)

    def _failed(self, label: str) -> Callable[[BaseException], None]:
        from clm_tray.gui.taskrunner import describe_error

        def failed(exc: BaseException) -> None:
            self.detail.setText(f"{label} failed: {describe_error(exc)}")
            self.controller.error.emit(f"{label} failed: {describe_error(exc)}")

        return failed


def _ensure_workspace() -> Any:
    from clm_tray.core.config.workspace import ensure_workspace

    return ensure_workspace()


def switch_settings(controller: Any, loaded: LoadedSettings, *, demo: bool = False) -> None:
    """Make the running app use ``loaded``.

    Schedules, folders and the backend are read from the engine's settings at each use, so
    ``apply_settings`` is enough — unless the model store moved (a project ``.env`` naming
    ``QT_CLM_STORE_DIR``, like the demo's): the store is opened once per engine, so a new
    engine is built on the task runner and takes the old one's place. The demo's reference
    backend is started (and stopped at quit) and a first cycle runs when it has no model.
    """
    old = controller.engine
    moved = old is None or (old.settings.resolved_store_dir
                            != loaded.settings.resolved_store_dir)
    if not moved:
        controller.apply_settings(loaded)
        if demo:
            _start_demo(controller, old)
        return
    # the notifier's rules now (what Controller.apply_settings does without an engine)
    controller.loaded = loaded
    s = loaded.settings
    controller.notifier.rules.configure(s.notify_success, s.notify_throttle_minutes)

    def make() -> EnginePort:
        scheduler = old is None  # the engine did not start: start it as the app would
        if old is not None:
            scheduler = old.scheduler_running
            old.cancel_cycle()
            old.stop_scheduler()
            old.close()
        # opened as the app opens every engine: heavy work stays out of the GUI process
        engine = controller.open_engine(loaded)
        if scheduler:
            engine.start_scheduler()
        return engine

    def made(engine: EnginePort) -> None:
        controller.start_error = ""
        controller.set_engine(engine)
        if demo:
            _start_demo(controller, engine)

    if old is not None:
        controller.bridge.detach()
    Op(make, key="engine", label="Open the project").success(made) \
        .run(controller.runner)


def _start_demo(controller: Any, engine: EnginePort) -> None:
    """The demo's reference backend up (as `clm-tray demo` does), then a first cycle."""

    def start() -> Any:
        backend = engine.backend()
        backend.start()
        return backend

    def started(backend: Any) -> None:
        if controller.demo_backend is None:
            controller.demo_backend = backend  # stopped when the app quits
        if engine.aliases().get("champion") is None:
            controller.retrain(trigger="first run")

    Op(start, key="demo-backend", label="Start the demo backend").success(started) \
        .run(controller.runner)
