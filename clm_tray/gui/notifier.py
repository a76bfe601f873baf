"""One notifier: the rest of the app hands it events, it decides and delivers.

The channel is picked once (like Vorta's ``pick()``) by ``pick_channel``: desktop-notifier
(D-Bus org.freedesktop.Notifications on Linux, the Notification Center on macOS when the
app runs as a bundle, WinRT toasts on Windows 10+), all with buttons; else the tray icon's
own balloon (QSystemTrayIcon.showMessage), which has no buttons.

A click on a notification opens the dashboard at the view the notice names; a button
("Open dashboard", "Restart backend", "Roll back") emits ``action`` and the app runs it.
desktop-notifier runs on its own asyncio loop thread, so delivery never blocks the GUI and
its callbacks (D-Bus signals on Linux) arrive there; they only emit Qt signals.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

from clm_tray.core.app import events as ev
from clm_tray.core.app.notify_rules import ACTION_TITLES, ERROR, OPEN, SUCCESS, Notice, NoticeRules

log = logging.getLogger(__name__)

APP_NAME = "clm-tray"
DESKTOP = "desktop"
TRAY = "tray"


def _version_at_least(version: str, least: tuple[int, ...]) -> bool:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) >= least


def pick_channel(system: str | None = None, *, version: str | None = None,
                 environ: dict[str, str] | None = None, bundled: bool | None = None) -> str:
    """Which channel this desktop gets: ``desktop`` (desktop-notifier, with buttons) or
    ``tray`` (the tray icon's balloon). Decided from the platform alone, so it can be
    tested for all three systems on one."""
    system = system or platform.system()
    env = os.environ if environ is None else environ
    if system == "Linux":
        runtime = env.get("XDG_RUNTIME_DIR", "")
        has_bus = bool(env.get("DBUS_SESSION_BUS_ADDRESS")) or bool(
            runtime and Path(runtime, "bus").exists())
        return DESKTOP if has_bus else TRAY
    if system == "Darwin":
        # The Notification Center only talks to an app bundle (the installer's .app);
        # `python -m clm_tray` on a Mac uses Qt's tray message, which macOS shows too.
        if bundled is None:
            import sys

            bundled = bool(getattr(sys, "frozen", False)) and ".app/" in sys.executable
        return DESKTOP if bundled else TRAY
    if system == "Windows":
        return DESKTOP if _version_at_least(version or platform.version(), (10, 0, 10240)) \
            else TRAY
    return TRAY


class DesktopChannel:
    """desktop-notifier on a private asyncio loop; buttons and clicks come back as calls."""

    name = DESKTOP

    def __init__(self, on_click: Callable[[str], None], on_action: Callable[[str, str], None],
                 icon_path: str = "") -> None:
        from desktop_notifier import DesktopNotifier, Icon

        self._on_click = on_click
        self._on_action = on_action
        icon = Icon(path=Path(icon_path)) if icon_path else None
        self._notifier = DesktopNotifier(app_name=APP_NAME, app_icon=icon)
        self.backend = type(self._notifier._backend).__name__
        if self.backend == "DummyNotificationCenter":
            raise RuntimeError("desktop-notifier has no notification service here")
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self.sent: list[str] = []

    def _ensure_loop(self) -> Any:
        if self._loop is not None:
            return self._loop
        import asyncio  # only when the first notification goes out (cold start stays fast)

        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="notifications",
                                        daemon=True)
        self._thread.start()
        self._loop = loop
        return loop

    def _build(self, notice: Notice) -> Any:
        from desktop_notifier import Button, Notification, Urgency

        buttons = tuple(
            Button(title=ACTION_TITLES[key], identifier=key,
                   on_pressed=lambda k=key: self._on_action(k, notice.view))
            for key in notice.actions if key in ACTION_TITLES)
        return Notification(
            title=notice.summary, message=notice.body, buttons=buttons,
            urgency=Urgency.Critical if notice.level == ERROR else Urgency.Normal,
            timeout=0 if notice.level == ERROR else -1,  # errors stay until dismissed
            on_clicked=lambda: self._on_click(notice.view),
        )

    def send(self, notice: Notice) -> None:
        import asyncio

        loop = self._ensure_loop()
        fut = asyncio.run_coroutine_threadsafe(
            self._notifier.send_notification(self._build(notice)), loop)

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None:
                log.warning("desktop notification not delivered (%s): %s", notice.summary, exc)
            else:
                self.sent.append(notice.summary)

        fut.add_done_callback(done)

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(2)


class TrayChannel:
    """QSystemTrayIcon.showMessage: native toasts on Windows/macOS, a balloon on X11."""

    name = "tray"

    def __init__(self, on_click: Callable[[str], None]) -> None:
        self._on_click = on_click
        self._tray: QSystemTrayIcon | None = None
        self._last_view = "overview"

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        self._tray = tray
        if tray is not None:
            tray.messageClicked.connect(lambda: self._on_click(self._last_view))

    def send(self, notice: Notice) -> None:
        if self._tray is None or not self._tray.isVisible():
            log.info("notification (no tray to show it): %s — %s", notice.summary, notice.body)
            return
        icon = {ERROR: QSystemTrayIcon.MessageIcon.Critical,
                SUCCESS: QSystemTrayIcon.MessageIcon.Information}.get(
            notice.level, QSystemTrayIcon.MessageIcon.Warning)
        self._last_view = notice.view
        self._tray.showMessage(notice.summary, notice.body, icon,
                               0 if notice.level == ERROR else 8000)

    def close(self) -> None:
        return None


class Notifier(QObject):
    """Decides with NoticeRules, delivers through the picked channel, reports clicks."""

    clicked = Signal(str)  # dashboard view to open
    action = Signal(str, str)  # a notification button: action key, the notice's view
    delivered = Signal(object)  # the Notice that went out

    def __init__(self, rules: NoticeRules, *, channel: str = "auto", icon_path: str = "",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rules = rules
        self.tray_channel = TrayChannel(self.clicked.emit)
        self.channel: DesktopChannel | TrayChannel = self.tray_channel
        wanted = pick_channel() if channel == "auto" else channel
        if wanted == DESKTOP:
            try:
                self.channel = DesktopChannel(self.clicked.emit, self._on_button, icon_path)
            except Exception as exc:  # no library, no service: the tray balloon still works
                log.info("desktop notifications unavailable (%s); using the tray icon", exc)

    def _on_button(self, key: str, view: str) -> None:
        if key == OPEN:
            self.clicked.emit(view)
        else:
            self.action.emit(key, view)

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        self.tray_channel.set_tray(tray)

    def on_event(self, event: ev.Event) -> None:
        notice = self.rules.notice_for(event)
        if notice is not None:
            self.deliver(notice)

    def deliver(self, notice: Notice) -> bool:
        if not self.rules.allow(notice):
            log.debug("notification suppressed (switch or throttle): %s", notice.summary)
            return False
        log.info("notify [%s] %s — %s", notice.level, notice.summary, notice.body)
        self.channel.send(notice)
        self.delivered.emit(notice)
        return True

    def action_failed(self, label: str, message: str) -> None:
        self.deliver(self.rules.error_notice(label, message))

    def action_done(self, summary: str, body: str, view: str) -> None:
        """A user's action (roll back, restart, promote) finished well: said once."""
        self.deliver(Notice(summary, body, SUCCESS, view, "action"))

    def close(self) -> None:
        self.channel.close()
