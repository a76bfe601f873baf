"""Telling the backend process clm-tray started from any other: by its command and its port.

Pids get reused and ports get taken, so before clm-tray signals a process or trusts an answer
on the health port it checks: is this pid still the command we started, and who else, if
anyone, listens on our port. Kept apart from the start/stop lifecycle (``backend.process``),
which asks these questions.
"""

from __future__ import annotations

import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

from clm_tray.core.errors import BackendError


def split_command(command: str, *, windows: bool | None = None) -> list[str]:
    """Split a command line the way the user's shell would quote it, without running a shell."""
    windows = sys.platform.startswith("win") if windows is None else windows
    try:
        parts = shlex.split(command, posix=not windows)
    except ValueError as exc:
        raise BackendError(
            f"QT_CLM_BACKEND_COMMAND cannot be split into words ({exc}); check its quotes."
        ) from exc
    if windows:
        parts = [p[1:-1] if len(p) >= 2 and p[0] == p[-1] == '"' else p for p in parts]
    return parts


def same_command(cmdline: list[str], argv: list[str]) -> bool:
    """Is ``cmdline`` (as the OS shows it) the command we started as ``argv``?

    The pid and its exact start time already identify the process; this guards the rest.
    A script run through its shebang shows the interpreter in front, and a process caught
    mid-exec shows nothing, so: empty, or ``argv[1:]`` at the end and the same program name.
    """
    if not cmdline or not argv:
        return True
    tail = argv[1:]
    if tail and cmdline[-len(tail):] != tail:
        return False
    program = _program_name(argv[0])
    return any(_program_name(part) == program for part in cmdline[: len(cmdline) - len(tail)])


def _program_name(path: str) -> str:
    name = Path(path.replace("\\", "/")).name.lower()
    return name[:-4] if name.endswith(".exe") else name


def _children(proc: Any) -> list[Any]:
    import psutil

    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


def foreign_listener(port: int, ours: Any | None) -> str | None:
    """Who else listens on ``port`` ("process 123 (nginx)"), or None when nobody or ``ours``
    (the psutil.Process of our backend, or None) and its children do.

    psutil shows the owner where the OS lets it; where it does not (another user's
    process on macOS), a port that accepts a connection while our process is not running
    is still reported, as "another process"."""
    import psutil

    family = {ours.pid, *(c.pid for c in _children(ours))} if ours is not None else set()
    try:
        listeners = [c for c in psutil.net_connections(kind="tcp") if c.laddr
                     and c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    except (psutil.AccessDenied, OSError):
        listeners = []
    for conn in listeners:
        if conn.pid is not None and conn.pid not in family:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            return f"process {conn.pid} ({name})"
    if ours is None and not any(c.pid is not None for c in listeners):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return "another process (its name is not visible to clm-tray)"
    return None


def wait_port_released(port: int, timeout: float) -> None:
    """A process already shown as dead (a zombie leader) may still be closing its sockets
    in its other threads: give the port a moment, so the restart's pre-flight does not take
    our own dying backend for someone else's program. A port that stays taken is then
    reported by the pre-flight, naming its owner."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
