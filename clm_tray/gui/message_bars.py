"""The dashboard's message lines: the one place errors are shown, a notice after an action
that clears itself, and a standing notice (e.g. "no system tray").

Not a widget of its own: the three lines go straight into the window's layout, so hidden
lines take no space and the window looks the same whichever are shown. An error stays until
its cause is gone (a later cycle ended well, or a later backend check was healthy).
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from clm_tray.core.app.status import Health, HealthReport, Outcome
from clm_tray.gui.snapshot import Snapshot

DONE_NOTICE_MS = 20_000


class MessageBars:
    def __init__(self, parent: QWidget) -> None:
        # the one place errors are shown
        self.banner = QFrame()
        self.banner.setObjectName("error-banner")
        self.banner.setStyleSheet("#error-banner { background: #f8d7d7; border: 1px solid "
                                  "#d42a2a; border-radius: 4px; } QLabel { color: #3f0707; }")
        bl = QHBoxLayout(self.banner)
        bl.setContentsMargins(8, 4, 4, 4)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dismiss = QToolButton()
        dismiss.setText("✕")
        dismiss.setAutoRaise(True)
        dismiss.clicked.connect(self.clear_error)
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(dismiss)
        self.banner.hide()

        # feedback after an action ("Rolled back to v0003 — backend verified"): clears itself
        self.done_notice = QLabel()
        self.done_notice.setObjectName("done-notice")
        self.done_notice.setWordWrap(True)
        self.done_notice.setStyleSheet("#done-notice { background: #dff0e3; color: #0b3318; "
                                       "border: 1px solid #2e9d4f; border-radius: 4px; "
                                       "padding: 4px; }")
        self.done_notice.hide()
        self._done_timer = QTimer(parent, singleShot=True, interval=DONE_NOTICE_MS)
        self._done_timer.timeout.connect(self.done_notice.hide)
        self._banner_since: float | None = None  # when the error banner was shown

        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("#notice { background: #fff1cc; color: #3d2a00; "
                                  "border: 1px solid #c98a00; border-radius: 4px; padding: 4px; }")
        self.notice.hide()

    def widgets(self) -> list[QWidget]:
        """The lines, top to bottom, for the window's layout."""
        return [self.banner, self.done_notice, self.notice]

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()

    def show_error(self, text: str) -> None:
        self.banner_text.setText(text)
        self.banner.show()
        self._banner_since = time.time()

    def clear_error(self) -> None:
        self.banner.hide()
        self._banner_since = None

    def clear_error_if_resolved(self, snap: Snapshot) -> None:
        """An error stays until its cause is gone: a later cycle ended well, or a later
        backend check was healthy, and nothing is in error now."""
        since = self._banner_since
        if since is None or snap.status.health == Health.ERROR:
            return
        last = snap.status.last_cycle
        cycle_ok = (last is not None and last.finished_at is not None
                    and last.finished_at >= since and not Outcome.is_failure(last.outcome))
        b = snap.status.backend
        backend_ok = isinstance(b, HealthReport) and b.ok and b.checked_at >= since
        if cycle_ok or backend_ok:
            self.clear_error()

    def show_done(self, text: str) -> None:
        """A finished action, said in the window; it goes away by itself."""
        self.done_notice.setText(text)
        self.done_notice.show()
        self._done_timer.start()
