# ruff: noqa: F722, F821  (dbus-next reads D-Bus signatures from annotations)
"""A real org.freedesktop.Notifications service on a private session bus, for tests.

It owns the well-known name, records every ``Notify`` call, and can emit ``ActionInvoked``
as a desktop would when the user clicks a notification. Runs dbus-next on its own thread.
"""


import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dbus_next import Variant
from dbus_next.aio import MessageBus
from dbus_next.service import ServiceInterface, method
from dbus_next.service import signal as dbus_signal

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


@dataclass
class NotifyCall:
    app_name: str
    replaces_id: int
    app_icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict
    expire_timeout: int
    id: int


class _Notifications(ServiceInterface):
    def __init__(self, calls: list[NotifyCall]) -> None:
        super().__init__(NAME)
        self._calls = calls
        self._next = 0

    @method()
    def Notify(
        self,
        app_name: "s",
        replaces_id: "u",
        app_icon: "s",
        summary: "s",
        body: "s",
        actions: "as",
        hints: "a{sv}",
        expire_timeout: "i",
    ) -> "u":
        self._next += 1
        plain = {k: (v.value if isinstance(v, Variant) else v) for k, v in hints.items()}
        self._calls.append(
            NotifyCall(app_name, replaces_id, app_icon, summary, body, list(actions), plain,
                       expire_timeout, self._next)
        )
        return self._next

    @method()
    def GetCapabilities(self) -> "as":
        return ["actions", "body"]

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["clm-tray-test", "clm-tray", "1.0", "1.2"]

    @method()
    def CloseNotification(self, id: "u") -> None:
        return None

    @dbus_signal()
    def ActionInvoked(self, id: "u", action_key: "s") -> "us":
        return [id, action_key]


class NotificationService:
    """Start with ``start(address)``; read ``calls``; ``click(id)`` emits ActionInvoked."""

    def __init__(self) -> None:
        self.calls: list[NotifyCall] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._iface: _Notifications | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, address: str, timeout: float = 10.0) -> None:
        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(address))
            except BaseException as exc:  # surfaced to the caller of start()
                self._error = exc
                self._ready.set()
                return
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="notifications-service", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the test Notifications service did not start")
        if self._error is not None:
            raise RuntimeError(f"the test Notifications service failed: {self._error}")

    async def _serve(self, address: str) -> None:
        bus = await MessageBus(bus_address=address).connect()
        self._iface = _Notifications(self.calls)
        bus.export(PATH, self._iface)
        await bus.request_name(NAME)
        self._ready.set()

    def click(self, notification_id: int, action: str = "default") -> None:
        assert self._loop is not None and self._iface is not None
        iface = self._iface
        self._loop.call_soon_threadsafe(lambda: iface.ActionInvoked(notification_id, action))

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)


@dataclass
class PrivateBus:
    address: str
    pid: int

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def start_private_bus(folder: Path) -> PrivateBus | None:
    """A fresh session bus in ``folder``; None when dbus-daemon is not installed."""
    exe = shutil.which("dbus-daemon")
    if exe is None:
        return None
    sock = folder / "bus.sock"
    out = subprocess.run(
        [exe, "--session", "--fork", "--print-address=1", "--print-pid=1",
         f"--address=unix:path={sock}"],
        capture_output=True, text=True, timeout=10, check=True,
    )
    lines = out.stdout.split()
    address, pid = lines[0], int(lines[1])
    deadline = time.monotonic() + 5
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return PrivateBus(address, pid)
