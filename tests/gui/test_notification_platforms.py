"""Which notification channel each system gets, tested on one machine with the platform
faked (macOS and Windows are also on the manual checklist in docs/notifications.md)."""

from __future__ import annotations

import platform

from clm_tray.core.app.notify_rules import ON_FAILURE, Notice, NoticeRules
from clm_tray.gui.notifier import DESKTOP, TRAY, DesktopChannel, Notifier, pick_channel


def test_each_system_gets_the_channel_that_can_show_buttons():
    assert pick_channel("Linux", environ={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}) == DESKTOP
    assert pick_channel("Linux", environ={}) == TRAY  # no session bus: the tray balloon
    assert pick_channel("Windows", version="10.0.19045") == DESKTOP  # WinRT toasts
    assert pick_channel("Windows", version="6.1.7601") == TRAY  # Windows 7: no WinRT
    assert pick_channel("Darwin", bundled=True) == DESKTOP  # the .app: Notification Center
    assert pick_channel("Darwin", bundled=False) == TRAY  # python -m clm_tray on a Mac
    assert pick_channel("FreeBSD") == TRAY


def test_a_faked_windows_without_its_toast_library_falls_back_to_the_tray(qtbot, monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Windows")
    monkeypatch.setattr(platform, "version", lambda: "10.0.19045")
    assert pick_channel() == DESKTOP
    from desktop_notifier import main as dn_main

    try:  # desktop-notifier itself picks WinRT for this platform …
        picked = dn_main.get_backend_class().__name__
    except ImportError as exc:  # … whose packages only exist on Windows
        picked = f"WinRT (not importable here: {exc.name})"
    assert "WinRT" in picked
    notifier = Notifier(NoticeRules(True, 0), channel="auto")
    # so the notifier says so in the log and keeps working through the tray icon
    assert notifier.channel.name == TRAY
    assert notifier.deliver(Notice("Retrain failed", "x", "error", "activity")) is True
    notifier.close()


def test_a_faked_mac_outside_an_app_bundle_uses_the_tray(qtbot, monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    notifier = Notifier(NoticeRules(True, 0), channel="auto")
    assert notifier.channel.name == TRAY
    notifier.close()


def test_failure_buttons_are_the_same_on_every_system(qtbot):
    pressed: list[tuple[str, str]] = []
    # the notification a channel builds, whatever the system's backend (none is contacted)
    channel = DesktopChannel.__new__(DesktopChannel)
    channel._on_click = lambda view: None
    channel._on_action = lambda key, view: pressed.append((key, view))
    channel._loop = None
    note = channel._build(Notice("Retrain failed", "why", "error", "activity", "", ON_FAILURE))
    assert [b.title for b in note.buttons] == ["Open dashboard", "Restart backend", "Roll back"]
    assert note.timeout == 0  # a failure stays until dismissed
    for button in note.buttons:
        button.on_pressed()
    assert pressed == [("open", "activity"), ("restart", "activity"), ("rollback", "activity")]
    channel.close()
