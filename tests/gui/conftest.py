"""GUI test fixtures: offscreen Qt, a private D-Bus session bus, a tray app on a real engine.

The private bus is started before any Qt object exists (session scope, autouse) and
DBUS_SESSION_BUS_ADDRESS points at it for the whole GUI session, so nothing here can reach
the developer's real desktop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

from notify_service import NotificationService, PrivateBus, start_private_bus  # noqa: E402

CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session", autouse=True)
def private_session_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBus | None]:
    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    bus = start_private_bus(tmp_path_factory.mktemp("dbus"))
    if bus is None:
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)  # never the real desktop's bus
    else:
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    yield bus
    if bus is not None:
        bus.stop()
    if old is None:
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    else:
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = old


@pytest.fixture(scope="session")
def notification_service(private_session_bus: PrivateBus | None) -> Iterator[NotificationService]:
    if private_session_bus is None:
        reason = "dbus-daemon is not installed (apt-get install dbus); notifications untested"
        if CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    service = NotificationService()
    service.start(private_session_bus.address)
    yield service
    service.stop()


@pytest.fixture
def notifications(notification_service: NotificationService) -> NotificationService:
    notification_service.calls.clear()
    return notification_service


@pytest.fixture
def make_tray_app(qtbot, engine_factory):  # noqa: ANN001 - pytest-qt's qtbot
    """A TrayApp wired to a real Engine on the small workspace (scheduler off by default)."""
    from clm_tray.gui.app import TrayApp

    apps = []

    def make(*, tray: bool = True, channel: str = "tray", scheduler: bool = False,
             engine=None, **overrides):  # noqa: ANN001, ANN003
        engine = engine or engine_factory(**overrides)
        app = TrayApp(engine.loaded, tray_available=tray, notify_channel=channel)
        apps.append(app)
        app.start(scheduler=scheduler, engine=engine)
        qtbot.waitUntil(lambda: app.controller.snapshot is not None, timeout=20_000)
        return app

    yield make
    for app in apps:
        app.quit(quit_app=False)
        if app.dashboard is not None:
            app.dashboard.deleteLater()
