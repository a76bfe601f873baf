"""Settings…: edit QT_CLM_* values, validated by the engine's settings, saved per user.

Values go to the per-user config file (``write_user_settings``); the user's ``.env`` is never
rewritten. Each row shows where its value comes from; a value set in ``.env`` or the
environment wins over the user file, so its row is read-only and says which file to edit.
Saved settings are applied at once through ``engine.apply_settings`` (schedule re-planned).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from clm_tray.core.errors import ClmError
from clm_tray.core.settings import (
    FIELDS,
    LoadedSettings,
    Settings,
    describe,
    load_settings,
    user_config_file,
    validate_value,
    write_user_settings,
)

log = logging.getLogger(__name__)

GROUPS: list[tuple[str, str]] = [  # (heading, first field of the group), in Settings order
    ("Schedule and retraining", "enabled"),
    ("Training", "train_timeout"),
    ("Data", "data_path"),
    ("Folders", "project_dir"),
    ("Backend", "backend"),
    ("Monitoring", "perf_drop"),
    ("Desktop", "notify_success"),
]


def raw_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def source_text(source: str, user_file: Path) -> str:
    if source == "default":
        return "default"
    if source == "environment":
        return "environment variable"
    if Path(source) == user_file:
        return "your settings file"
    return Path(source).name if Path(source).name == ".env" else source


def _autostart() -> Any | None:
    try:
        from clm_tray.core import autostart
    except ImportError:
        return None
    return autostart


class SettingsDialog(QDialog):
    def __init__(self, loaded: LoadedSettings, *, apply: Callable[[LoadedSettings], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("clm-tray settings")
        self.resize(820, 640)
        self.loaded = loaded
        self._apply = apply
        self.user_file = loaded.user_file or user_config_file()
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, str] = {}
        self.original: dict[str, str] = {}

        layout = QVBoxLayout(self)
        note = QLabel(f"Saved to <b>{self.user_file}</b>. Values set in .env or the environment "
                      "win over this file and are shown read-only. Schedule changes apply "
                      "without a restart.")
        note.setWordWrap(True)
        layout.addWidget(note)

        body = QWidget()
        grid = QGridLayout(body)
        grid.setColumnStretch(1, 1)
        starts = {first: heading for heading, first in GROUPS}
        row = 0
        s = loaded.settings
        for var, fname in FIELDS.items():
            if fname in starts:
                h = QLabel(f"<b>{starts[fname]}</b>")
                grid.addWidget(h, row, 0, 1, 3)
                row += 1
            source = loaded.sources.get(fname, "default")
            text = raw_text(getattr(s, fname))
            self.original[var] = text
            editor = self._editor(fname, text)
            editor.setToolTip(f"{var}: {describe(fname)}")
            locked = source not in ("default", str(self.user_file))
            editor.setEnabled(not locked)
            label = QLabel(var)
            label.setToolTip(describe(fname))
            src = QLabel(source_text(source, self.user_file)
                         + (" (edit that file to change)" if locked else ""))
            src.setObjectName(f"source-{var}")
            grid.addWidget(label, row, 0)
            grid.addWidget(editor, row, 1)
            grid.addWidget(src, row, 2)
            self.editors[var] = editor
            row += 1
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        layout.addWidget(scroll, 1)

        self.autostart_box = QCheckBox("Start clm-tray at login")
        mod = _autostart()
        if mod is None:
            self.autostart_box.hide()
        else:
            try:
                self.autostart_box.setChecked(bool(mod.is_enabled()))
            except Exception as exc:  # an unreadable entry must not block the dialog
                log.warning("cannot read the autostart state: %s", exc)
        self._autostart_initial = self.autostart_box.isChecked()
        layout.addWidget(self.autostart_box)

        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #b00000;")
        self.error_label.setWordWrap(True)
        layout.addWidget(self.error_label)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _editor(self, fname: str, text: str) -> QWidget:
        ann = Settings.model_fields[fname].annotation
        if ann is bool:
            box = QCheckBox()
            box.setChecked(text == "true")
            box.toggled.connect(lambda _v, f=fname: self._validate(f))
            return box
        if fname == "backend":
            combo = QComboBox()
            combo.addItems(["", "docker", "process", "none"])
            combo.setCurrentText(text)
            combo.currentTextChanged.connect(lambda _v, f=fname: self._validate(f))
            return combo
        edit = QLineEdit(text)
        edit.textChanged.connect(lambda _v, f=fname: self._validate(f))
        return edit

    def value_text(self, var: str) -> str:
        w = self.editors[var]
        if isinstance(w, QCheckBox):
            return "true" if w.isChecked() else "false"
        if isinstance(w, QComboBox):
            return w.currentText()
        assert isinstance(w, QLineEdit)
        return w.text()

    def set_value(self, var: str, text: str) -> None:
        w = self.editors[var]
        if isinstance(w, QCheckBox):
            w.setChecked(text.lower() in ("1", "true", "yes", "on"))
        elif isinstance(w, QComboBox):
            w.setCurrentText(text)
        elif isinstance(w, QLineEdit):
            w.setText(text)

    def _validate(self, fname: str) -> bool:
        var = next(v for v, f in FIELDS.items() if f == fname)
        w = self.editors[var]
        try:
            validate_value(var, self.value_text(var))
        except ClmError as exc:
            self.errors[var] = str(exc)
            w.setStyleSheet("border: 2px solid #d42a2a;")
        else:
            self.errors.pop(var, None)
            w.setStyleSheet("")
        self.error_label.setText("\n".join(self.errors.values()))
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not self.errors)
        return var not in self.errors

    def changes(self) -> dict[str, str]:
        return {var: self.value_text(var) for var, w in self.editors.items()
                if w.isEnabled() and self.value_text(var) != self.original[var]}

    def save(self) -> None:
        updates = self.changes()
        try:
            for var in updates:
                validate_value(var, updates[var])
            if updates:
                write_user_settings(updates, self.user_file)
            env_file = self.loaded.env_file
            reloaded = load_settings(env_file, user_file=self.user_file) if env_file else \
                load_settings(user_file=self.user_file)
        except ClmError as exc:
            self.error_label.setText(str(exc))
            return
        self._save_autostart()
        self.loaded = reloaded
        self._apply(reloaded)
        self.accept()

    def _save_autostart(self) -> None:
        mod = _autostart()
        want = self.autostart_box.isChecked()
        if mod is None or want == self._autostart_initial:
            return
        try:
            mod.enable() if want else mod.disable()
        except Exception as exc:
            self.error_label.setText(f"Start at login: {exc}")
