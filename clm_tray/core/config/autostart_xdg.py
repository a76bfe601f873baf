"""Start at login on Linux and other XDG desktops: ``$XDG_CONFIG_HOME/autostart/clm-tray.desktop``.

One module per platform mechanism, behind the small API in ``config.autostart``. This one
writes a Desktop Entry and reads one back: the spec's quoting of the ``Exec=`` key both ways
(so status can tell which program an entry starts), and the desktop's own "switched off".
"""

from __future__ import annotations

import os
from pathlib import Path

DESKTOP_FILE = "clm-tray.desktop"
COMMENT = "Keeps the trading backend's XGBoost model fresh and honest"


def desktop_file(home: Path, environ: dict[str, str] | None = None) -> Path:
    """Where the entry goes for the user whose home is ``home``."""
    return xdg_config_home(home, environ) / "autostart" / DESKTOP_FILE


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


def read_desktop_entry(path: Path) -> tuple[list[str], bool, str]:
    """What an existing entry starts, whether it is on, and a note when it is not."""
    keys: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), v.strip())
    command = parse_desktop_exec(keys.get("Exec", ""))
    if keys.get("Hidden", "").lower() == "true" or \
            keys.get("X-GNOME-Autostart-enabled", "true").lower() == "false":
        return command, False, "switched off in the desktop's startup settings"
    return command, True, ""
