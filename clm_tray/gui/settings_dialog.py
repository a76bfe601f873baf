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
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from clm_tray.core.config.settings import FIELDS, Settings, describe, validate_value
from clm_tray.core.config.sources import (
    LoadedSettings,
    load_settings,
    user_config_file,
    write_user_settings,
)
from clm_tray.core.errors import ClmError
from clm_tray.gui.settings_labels import grouped_fields, label_of

log = logging.getLogger(__name__)


def default_text(fname: str) -> str:
    """The setting's default, as the text its editor shows."""
    info = Settings.model_fields[fname]
    factory = info.default_factory
    return raw_text(factory() if factory is not None else info.default)  # type: ignore[call-arg]


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
        from clm_tray.core.config import autostart
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
        self.inline_errors: dict[str, QLabel] = {}
        self.reset_buttons: dict[str, QToolButton] = {}
        row = 0
        s = loaded.settings
        for group, fields in grouped_fields():
            heading = QLabel(f"<b>{group}</b>")
            heading.setObjectName(f"group-{group}")
            grid.addWidget(heading, row, 0, 1, 5)
            row += 1
            for fname in fields:
                row = self._add_row(grid, row, fname, raw_text(getattr(s, fname)),
                                    loaded.sources.get(fname, "default"))
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
        self.reset_all_button = self.buttons.addButton(
            "Reset all to defaults", QDialogButtonBox.ButtonRole.ResetRole)
        self.reset_all_button.clicked.connect(self.reset_all)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _add_row(self, grid: QGridLayout, row: int, fname: str, text: str, source: str) -> int:
        """One setting: label | editor | unit | reset | where the value comes from, and an
        inline error line under it (the engine's own message) when the value is wrong."""
        var = next(v for v, f in FIELDS.items() if f == fname)
        _group, label_text, unit = label_of(fname)
        self.original[var] = text
        editor = self._editor(fname, text)
        tip = f"{var}\n{describe(fname)}\nDefault: {default_text(fname) or '(empty)'}"
        editor.setToolTip(tip)
        locked = source not in ("default", str(self.user_file))
        editor.setEnabled(not locked)
        label = QLabel(label_text)
        label.setToolTip(tip)
        label.setObjectName(f"label-{var}")
        reset = QToolButton()
        reset.setText("Reset")
        reset.setToolTip(f"Back to the default: {default_text(fname) or '(empty)'}")
        reset.setEnabled(not locked)
        reset.clicked.connect(lambda _c=False, v=var, f=fname: self.set_value(
            v, default_text(f)))
        src = QLabel(source_text(source, self.user_file)
                     + (" (edit that file to change)" if locked else ""))
        src.setObjectName(f"source-{var}")
        grid.addWidget(label, row, 0)
        grid.addWidget(editor, row, 1)
        grid.addWidget(QLabel(unit), row, 2)
        grid.addWidget(reset, row, 3)
        grid.addWidget(src, row, 4)
        inline = QLabel()
        inline.setObjectName(f"error-{var}")
        inline.setStyleSheet("color: #b00000;")
        inline.setWordWrap(True)
        inline.hide()
        grid.addWidget(inline, row + 1, 1, 1, 4)
        self.editors[var] = editor
        self.inline_errors[var] = inline
        self.reset_buttons[var] = reset
        return row + 2

    def reset_all(self) -> None:
        """Every editable setting back to its default (saved only with Save)."""
        for var, fname in FIELDS.items():
            if var in self.editors and self.editors[var].isEnabled():
                self.set_value(var, default_text(fname))

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
        inline = self.inline_errors.get(var)
        try:
            validate_value(var, self.value_text(var))
        except ClmError as exc:
            self.errors[var] = str(exc)
            w.setStyleSheet("border: 2px solid #d42a2a;")
            if inline is not None:
                inline.setText(str(exc))
                inline.show()
        else:
            self.errors.pop(var, None)
            w.setStyleSheet("")
            if inline is not None:
                inline.hide()
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
