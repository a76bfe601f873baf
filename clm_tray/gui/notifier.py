"""One notifier: the rest of the app hands it events, it decides and delivers.

The channel is picked once (like Vorta's ``pick()``): on Linux the desktop's
org.freedesktop.Notifications service over the session bus, elsewhere the tray icon's own
balloon/toast (QSystemTrayIcon.showMessage, which is the native toast on Windows and macOS).
Clicking a notification opens the dashboard at the view the notice names: on Linux through
the ``default`` action and the ActionInvoked signal, elsewhere through ``messageClicked``.

Why not QtDBus on Linux: PySide6 cannot marshal a D-Bus ``uint32`` (``Notify``'s
``replaces_id``; Python ints become int32 or uint16), so the call is refused by every
notification daemon. dbus-next speaks the protocol with explicit signatures, on its own
thread, so delivery never blocks the GUI.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

from clm_tray.core import events as ev
from clm_tray.core.notify_rules import ERROR, SUCCESS, Notice, NoticeRules

log = logging.getLogger(__name__)

APP_NAME = "clm-tray"
BUS_NAME = "org.freedesktop.Notifications"
BUS_PATH = "/org/freedesktop/Notifications"
MATCH_ACTIONS = (f"type='signal',interface='{BUS_NAME}',member='ActionInvoked'")


class FreedesktopChannel:
    """org.freedesktop.Notifications over the session bus (dbus-next on a private loop)."""

    name = "freedesktop"

    def __init__(self, on_click: Callable[[str], None], icon_path: str = "") -> None:
        self._on_click = on_click
        self._icon = icon_path
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._bus: Any = None
        self._views: dict[int, str] = {}
        self._lock = threading.Lock()
        self.sent_ids: list[int] = []

    @staticmethod
    def available() -> bool:
        if not sys.platform.startswith("linux"):
            return False
        has_bus = bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS")) or os.path.exists(
            f"{os.environ.get('XDG_RUNTIME_DIR', '/nonexistent')}/bus")
        if not has_bus:
            return False
        try:
            import dbus_next  # noqa: F401
        except ImportError:
            return False
        return True

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

    async def _connect(self) -> Any:
        if self._bus is not None:
            return self._bus
        from dbus_next import Message
        from dbus_next.aio import MessageBus

        bus = await MessageBus().connect()
        bus.add_message_handler(self._on_message)
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch",
                               signature="s", body=[MATCH_ACTIONS]))
        self._bus = bus
        return bus

    def _on_message(self, msg: Any) -> None:
        from dbus_next import MessageType

        if msg.message_type != MessageType.SIGNAL or msg.member != "ActionInvoked":
            return None
        try:
            nid, _action = int(msg.body[0]), str(msg.body[1])
        except (IndexError, TypeError, ValueError):
            return None
        with self._lock:
            view = self._views.get(nid)
        if view is not None:
            self._on_click(view)  # a Qt signal emit: safe from this thread
        return None

    async def _notify(self, notice: Notice) -> int:
        from dbus_next import Message, MessageType, Variant

        bus = await self._connect()
        urgency = 2 if notice.level == ERROR else 1
        timeout = 0 if notice.level == ERROR else -1  # errors stay until dismissed
        reply = await bus.call(Message(
            destination=BUS_NAME, path=BUS_PATH, interface=BUS_NAME, member="Notify",
            signature="susssasa{sv}i",
            body=[APP_NAME, 0, self._icon, notice.summary, notice.body,
                  ["default", "Open dashboard"],
                  {"urgency": Variant("y", urgency),
                   "desktop-entry": Variant("s", APP_NAME)}, timeout],
        ))
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{reply.error_name}: {reply.body[0] if reply.body else ''}")
        nid = int(reply.body[0])
        with self._lock:
            self._views[nid] = notice.view
            self.sent_ids.append(nid)
        return nid

    def send(self, notice: Notice) -> None:
        import asyncio

        loop = self._ensure_loop()
        fut = asyncio.run_coroutine_threadsafe(self._notify(notice), loop)

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None:
                log.warning("desktop notification not delivered (%s): %s", notice.summary, exc)

        fut.add_done_callback(done)

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        bus = self._bus

        def stop() -> None:
            if bus is not None:
                bus.disconnect()
            loop.stop()

        loop.call_soon_threadsafe(stop)
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
    delivered = Signal(object)  # the Notice that went out

    def __init__(self, rules: NoticeRules, *, channel: str = "auto", icon_path: str = "",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rules = rules
        self.tray_channel = TrayChannel(self.clicked.emit)
        if channel == "freedesktop" or (channel == "auto" and FreedesktopChannel.available()):
            self.channel: FreedesktopChannel | TrayChannel = FreedesktopChannel(
                self.clicked.emit, icon_path)
        else:
            self.channel = self.tray_channel

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

    def close(self) -> None:
        self.channel.close()
