"""Start clm-tray at login, using each platform's own mechanism.

Linux (and other XDG desktops): ``$XDG_CONFIG_HOME/autostart/clm-tray.desktop``.
macOS: a LaunchAgent ``~/Library/LaunchAgents/com.clmtray.agent.plist``.
Windows: the per-user Run key ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``.

``plan()`` is pure: it says what would be written where for any platform, so the macOS and
Windows content can be checked on Linux. ``enable()``/``disable()``/``status()`` act on the
current platform only (``winreg`` is imported only on Windows).
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from clm_tray.core.errors import ClmError
from clm_tray.core.fsutil import atomic_write_bytes

APP_ID = "clm-tray"
LAUNCH_AGENT_LABEL = "com.clmtray.agent"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = APP_ID
COMMENT = "Keeps the trading backend's XGBoost model fresh and honest"

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
        path = Path(home) / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
        return AutostartPlan(MACOS, "launch-agent", command, path=path,
                             content=launch_agent_plist(command))
    if platform == WINDOWS:
        return AutostartPlan(WINDOWS, "run-key", command, registry_key=RUN_KEY,
                             value_name=RUN_VALUE, value=windows_command_line(command))
    path = xdg_config_home(home, environ) / "autostart" / f"{APP_ID}.desktop"
    return AutostartPlan(LINUX, "xdg-autostart", command, path=path,
                         content=desktop_entry(command, icon or APP_ID).encode("utf-8"))


def xdg_config_home(home: Path, environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME`` when set to an absolute path (the spec ignores relative ones)."""
    environ = os.environ if environ is None else environ
    value = environ.get("XDG_CONFIG_HOME", "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(home) / ".config"


def desktop_entry(command: list[str], icon: str) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=clm-tray",
        f"Comment={COMMENT}",
        f"Exec={desktop_exec(command)}",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Utility;",
        "X-GNOME-Autostart-enabled=true",
        "X-GNOME-Autostart-Delay=5",
        "",
    ])


_DESKTOP_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def desktop_exec(command: list[str]) -> str:
    """Quote an argument list for a .desktop ``Exec=`` key (Desktop Entry spec, 'Exec key')."""
    out = []
    for arg in command:
        arg = arg.replace("%", "%%")
        if arg and not (_DESKTOP_RESERVED & set(arg)):
            out.append(arg)
            continue
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        out.append(f'"{escaped}"')
    return " ".join(out)


def parse_desktop_exec(value: str) -> list[str]:
    """The inverse of ``desktop_exec`` (enough to tell which program an entry starts)."""
    args: list[str] = []
    cur: list[str] = []
    quoted = in_arg = False
    i = 0
    while i < len(value):
        c = value[i]
        if quoted:
            if c == "\\" and i + 1 < len(value):
                i += 1
                cur.append(value[i])
            elif c == '"':
                quoted = False
            else:
                cur.append(c)
        elif c == '"':
            quoted = in_arg = True
        elif c in " \t":
            if in_arg:
                args.append("".join(cur))
                cur, in_arg = [], False
        else:
            cur.append(c)
            in_arg = True
        i += 1
    if in_arg:
        args.append("".join(cur))
    return [a.replace("%%", "%") for a in args]


def launch_agent_plist(command: list[str]) -> bytes:
    return plistlib.dumps({
        "Label": LAUNCH_AGENT_LABEL,
        "ProgramArguments": command,
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
    }, sort_keys=True)


def windows_command_line(command: list[str]) -> str:
    """The program path always in double quotes (it may hold spaces), the rest as Windows
    quotes arguments."""
    return f'"{command[0]}"' + ("" if len(command) == 1 else " " + subprocess.list2cmdline(
        command[1:]))


def _split_windows(value: str) -> list[str]:
    value = value.strip()
    if value.startswith('"'):
        end = value.find('"', 1)
        if end > 0:
            return [value[1:end], *value[end + 1:].split()]
    return value.split()


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
            _write_run_value(p.value or "")
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
            return _delete_run_value()
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
        value = _read_run_value()
        if value is not None:
            enabled, command = True, _split_windows(value)
    elif p.path is not None and p.path.is_file():
        command, enabled, note = _read_entry(p)
    stale = enabled and bool(command) and command[0] != p.command[0]
    if stale:
        note = note or f"the entry starts {command[0]}, not this installation; run " \
                       "`clm-tray autostart enable` to update it"
    return AutostartStatus(enabled, p.platform, p.mechanism, p.location, command, p.command,
                           stale, note)


def _read_entry(p: AutostartPlan) -> tuple[list[str], bool, str]:
    assert p.path is not None
    if p.platform == MACOS:
        try:
            data = plistlib.loads(p.path.read_bytes())
        except Exception:  # noqa: BLE001 - any damage means "not ours to trust"
            return [], False, "the LaunchAgent file is unreadable; enable again to rewrite it"
        disabled = bool(data.get("Disabled", False))
        return list(data.get("ProgramArguments", [])), not disabled, \
            "disabled in the plist" if disabled else ""
    keys: dict[str, str] = {}
    for line in p.path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), v.strip())
    command = parse_desktop_exec(keys.get("Exec", ""))
    if keys.get("Hidden", "").lower() == "true" or \
            keys.get("X-GNOME-Autostart-enabled", "true").lower() == "false":
        return command, False, "switched off in the desktop's startup settings"
    return command, True, ""


def _winreg():  # pragma: no cover - Windows only
    import winreg

    return winreg


def _write_run_value(value: str) -> None:  # pragma: no cover - Windows only
    winreg = _winreg()
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
        winreg.SetValueEx(key, RUN_VALUE, 0, winreg.REG_SZ, value)


def _read_run_value() -> str | None:  # pragma: no cover - Windows only
    winreg = _winreg()
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            value, _ = winreg.QueryValueEx(key, RUN_VALUE)
            return str(value)
    except FileNotFoundError:
        return None


def _delete_run_value() -> bool:  # pragma: no cover - Windows only
    winreg = _winreg()
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.DeleteValue(key, RUN_VALUE)
            return True
    except FileNotFoundError:
        return False
