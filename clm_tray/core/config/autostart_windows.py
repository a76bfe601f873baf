"""Start at login on Windows: the per-user Run key
``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``, value ``clm-tray``.

One module per platform mechanism, behind the small API in ``config.autostart``. The value's
quoting is pure (checked on any OS); ``winreg`` is imported only when the registry is touched,
which happens only on Windows. The installer (installer/clm-tray.iss) writes the same value.
"""

from __future__ import annotations

import subprocess

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "clm-tray"


def windows_command_line(command: list[str]) -> str:
    """The program path always in double quotes (it may hold spaces), the rest as Windows
    quotes arguments."""
    return f'"{command[0]}"' + ("" if len(command) == 1 else " " + subprocess.list2cmdline(
        command[1:]))


def split_command_line(value: str) -> list[str]:
    """Enough of the inverse of ``windows_command_line`` to tell which program it starts."""
    value = value.strip()
    if value.startswith('"'):
        end = value.find('"', 1)
        if end > 0:
            return [value[1:end], *value[end + 1:].split()]
    return value.split()


def _winreg():  # pragma: no cover - Windows only
    import winreg

    return winreg


def write_run_value(value: str) -> None:  # pragma: no cover - Windows only
    winreg = _winreg()
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
        winreg.SetValueEx(key, RUN_VALUE, 0, winreg.REG_SZ, value)


def read_run_value() -> str | None:  # pragma: no cover - Windows only
    winreg = _winreg()
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            value, _ = winreg.QueryValueEx(key, RUN_VALUE)
            return str(value)
    except FileNotFoundError:
        return None


def delete_run_value() -> bool:  # pragma: no cover - Windows only
    winreg = _winreg()
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.DeleteValue(key, RUN_VALUE)
            return True
    except FileNotFoundError:
        return False
