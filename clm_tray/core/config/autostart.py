"""Start clm-tray at login, using each platform's own mechanism, behind one small API.

Linux (and other XDG desktops): a Desktop Entry (``config.autostart_xdg``); macOS: a
LaunchAgent (``config.autostart_launchd``); Windows: the per-user Run key
(``config.autostart_windows``). This module picks the mechanism and says what starts.

``plan()`` is pure: it says what would be written where for any platform, so the macOS and
Windows content can be checked on Linux. ``enable()``/``disable()``/``status()`` act on the
current platform only (``winreg`` is imported only on Windows).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from clm_tray.core.config.autostart_launchd import (
    launch_agent_file,
    launch_agent_plist,
    read_launch_agent,
)
from clm_tray.core.config.autostart_windows import (
    RUN_KEY,
    RUN_VALUE,
    delete_run_value,
    read_run_value,
    split_command_line,
    windows_command_line,
    write_run_value,
)
from clm_tray.core.config.autostart_xdg import desktop_entry, desktop_file, read_desktop_entry
from clm_tray.core.errors import ClmError
from clm_tray.core.fsutil import atomic_write_bytes

APP_ID = "clm-tray"

LINUX, MACOS, WINDOWS = "linux", "darwin", "win32"


class AutostartError(ClmError):
    """Start-at-login could not be written or removed."""


@dataclass
class AutostartPlan:
    """What enabling start-at-login writes, and where.

    For file mechanisms ``path`` and ``content`` are set; for the Windows Run key
    ``registry_key``, ``value_name`` and ``value`` are.
    """

    platform: str  # linux | darwin | win32
    mechanism: str  # "xdg-autostart" | "launch-agent" | "run-key"
    command: list[str]  # what starts at login
    path: Path | None = None
    content: bytes | None = None
    registry_key: str | None = None
    value_name: str | None = None
    value: str | None = None

    @property
    def location(self) -> str:
        if self.path is not None:
            return str(self.path)
        return f"HKCU\\{self.registry_key}\\{self.value_name}"


@dataclass
class AutostartStatus:
    enabled: bool
    platform: str
    mechanism: str
    location: str
    command: list[str] = field(default_factory=list)  # what the entry starts now ([] = none)
    expected: list[str] = field(default_factory=list)  # what `enable` would write today
    stale: bool = False  # the entry starts something other than this installation
    note: str = ""


def normalise_platform(name: str | None = None) -> str:
    """``sys.platform``-style name; "macos"/"windows" are accepted; other Unixes use XDG."""
    name = (name or sys.platform).lower()
    if name in ("darwin", "macos", "mac", "osx"):
        return MACOS
    if name in ("win32", "windows", "win", "cygwin"):
        return WINDOWS
    return LINUX


def installed_command(
    *, frozen: bool | None = None, executable: str | None = None, platform: str | None = None
) -> list[str]:
    """How to start the installed app (without the ``gui`` argument).

    A PyInstaller build starts itself (on Windows the window-less ``clm-tray-gui.exe`` beside
    it, so no console opens at login); a pip/pipx install starts its ``clm-tray`` console
    script (on Windows ``pythonw -m clm_tray``, again to avoid a console); failing both,
    ``python -m clm_tray`` with this interpreter.
    """
    platform = normalise_platform(platform)
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    exe = Path(executable or sys.executable)
    if frozen:
        gui = exe.with_name("clm-tray-gui.exe")
        if platform == WINDOWS and gui.is_file():
            return [str(gui)]
        return [str(exe)]
    if platform == WINDOWS and exe.with_name("pythonw.exe").is_file():
        # A console script would open a console window at every login.
        return [str(exe.with_name("pythonw.exe")), "-m", "clm_tray"]
    name = "clm-tray.exe" if platform == WINDOWS else "clm-tray"
    for folder in (exe.parent, exe.parent / "Scripts"):
        if (folder / name).is_file():
            return [str(folder / name)]
    found = shutil.which("clm-tray")
    if found:
        return [str(Path(found).absolute())]
    return [str(exe), "-m", "clm_tray"]


def default_icon() -> str:
    """The app icon's file path when it ships with this installation, else the icon name."""
    with contextlib.suppress(Exception):
        from importlib.resources import files

        root = Path(str(files("clm_tray.resources")))
        for rel in ("clm-tray.png", "clm-tray.svg", "icons/clm-tray.png", "icons/clm-tray.svg",
                    "icons/healthy.png", "icons/healthy.svg", "healthy.png", "healthy.svg"):
            if (root / rel).is_file():
                return str(root / rel)
    return APP_ID


# ---- the pure part: what would be written ------------------------------------------------


def plan(
    platform: str,
    exe: list[str],
    home: Path,
    *,
    environ: dict[str, str] | None = None,
    icon: str | None = None,
) -> AutostartPlan:
    """What start-at-login writes on ``platform`` for an app started by ``exe`` + ``gui``."""
    platform = normalise_platform(platform)
    command = [*exe, "gui"]
    if platform == MACOS:
        return AutostartPlan(MACOS, "launch-agent", command, path=launch_agent_file(home),
                             content=launch_agent_plist(command))
    if platform == WINDOWS:
        return AutostartPlan(WINDOWS, "run-key", command, registry_key=RUN_KEY,
                             value_name=RUN_VALUE, value=windows_command_line(command))
    return AutostartPlan(LINUX, "xdg-autostart", command, path=desktop_file(home, environ),
                         content=desktop_entry(command, icon or APP_ID).encode("utf-8"))


# ---- the acting part: the current platform ------------------------------------------------


def current_plan(exe: list[str] | None = None, home: Path | None = None) -> AutostartPlan:
    platform = normalise_platform()
    icon = default_icon() if platform == LINUX else None
    return plan(platform, exe or installed_command(), home or Path.home(), icon=icon)


def enable(exe: list[str] | None = None, home: Path | None = None) -> AutostartPlan:
    """Write the entry for this platform (replacing an older one); returns what was written."""
    p = current_plan(exe, home)
    try:
        if p.platform == WINDOWS:
            write_run_value(p.value or "")
        else:
            assert p.path is not None and p.content is not None
            atomic_write_bytes(p.path, p.content)
    except OSError as exc:
        raise AutostartError(f"{p.location}: cannot write it ({exc}); check that folder's "
                             f"permissions and try again.") from exc
    return p


def disable(home: Path | None = None) -> bool:
    """Remove the entry; True when there was one."""
    p = current_plan(exe=["clm-tray"], home=home)
    try:
        if p.platform == WINDOWS:
            return delete_run_value()
        assert p.path is not None
        if p.path.exists():
            p.path.unlink()
            return True
        return False
    except OSError as exc:
        raise AutostartError(f"{p.location}: cannot remove it ({exc}); delete it by hand.") \
            from exc


def is_enabled(home: Path | None = None) -> bool:
    return status(home).enabled


def status(home: Path | None = None, exe: list[str] | None = None) -> AutostartStatus:
    """Whether the app starts at login, what the entry starts, and whether that is stale."""
    p = current_plan(exe, home)
    command: list[str] = []
    enabled = False
    note = ""
    if p.platform == WINDOWS:
        value = read_run_value()
        if value is not None:
            enabled, command = True, split_command_line(value)
    elif p.path is not None and p.path.is_file():
        read = read_launch_agent if p.platform == MACOS else read_desktop_entry
        command, enabled, note = read(p.path)
    stale = enabled and bool(command) and command[0] != p.command[0]
    if stale:
        note = note or f"the entry starts {command[0]}, not this installation; run " \
                       "`clm-tray autostart enable` to update it"
    return AutostartStatus(enabled, p.platform, p.mechanism, p.location, command, p.command,
                           stale, note)
