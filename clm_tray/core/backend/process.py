"""A backend process clm-tray starts, stops and restarts itself, tracked by a pid file so
any clm-tray process (CLI, tray, daemon) can drive the same one. Whether a pid or a port
listener is that process is asked of ``backend.process_identity``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from clm_tray.core.backend.process_identity import (
    foreign_listener,
    same_command,
    split_command,
    wait_port_released,
)
from clm_tray.core.errors import BackendError
from clm_tray.core.fsutil import atomic_write_json, read_json

PID_FILE = "backend.pid.json"
LOCK_FILE = "backend.lock"


class ProcessBackend:
    """A backend process clm-tray starts, stops and restarts itself (the demo's backend).

    Its pid, command and start time live in a pid file in ``state_dir`` so that any clm-tray
    process (CLI, tray, daemon) can stop or restart the same backend; before signalling, the
    pid is checked to still be that command (pids get reused). Output is appended to
    ``log_path``. On POSIX it runs in its own session and the whole group is signalled.
    """

    kind = "process"

    def __init__(
        self,
        command: str,
        log_path: Path,
        state_dir: Path,
        *,
        stop_timeout: float = 10.0,
        cwd: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.command = command
        self.port = port  # the health URL's port when it is on this machine
        self.log_path = Path(log_path)
        self.state_dir = Path(state_dir)
        self.stop_timeout = stop_timeout
        self.cwd = cwd
        self._child: subprocess.Popen[bytes] | None = None  # reaped by us when we started it

    @property
    def pid_path(self) -> Path:
        return self.state_dir / PID_FILE

    def describe(self) -> str:
        return f"process `{self.command}` (log {self.log_path})"

    def argv(self) -> list[str]:
        if not self.command.strip():
            raise BackendError(
                "QT_CLM_BACKEND=process needs QT_CLM_BACKEND_COMMAND, the command line that "
                "starts your backend; set it in .env (or choose QT_CLM_BACKEND=docker/none)."
            )
        return split_command(self.command)

    def preflight(self) -> None:
        """The command is set and its program exists, before anything is deployed."""
        program = self.argv()[0]
        has_dir = os.sep in program or (os.altsep is not None and os.altsep in program)
        found = (Path(program).is_file() and os.access(program, os.X_OK)) if has_dir else (
            shutil.which(program) is not None
        )
        if not found:
            raise BackendError(
                f"QT_CLM_BACKEND_COMMAND: program {program!r} not found"
                + ("" if has_dir else " on PATH")
                + "; give its full path or install it."
            )
        foreign = self._foreign_listener()
        if foreign:
            raise BackendError(
                f"port {self.port} is taken by {foreign}, not by the backend clm-tray starts; "
                "stop that program or change QT_CLM_HEALTH_URL's port (and the command's)."
            )

    def check_serving(self) -> str | None:
        """After a healthy answer: is it ours? None when it is, else why not (one phrase)."""
        if self.port is None:
            return None
        foreign = self._foreign_listener()
        if foreign:
            return f"port {self.port} is served by {foreign}, not by the backend clm-tray started"
        if self._live_process() is None:
            return (f"the backend process exited after starting (see {self.log_path}); the "
                    f"answer on port {self.port} came from elsewhere")
        return None

    def _foreign_listener(self) -> str | None:
        return None if self.port is None else foreign_listener(self.port, self._live_process())

    def _lock(self) -> FileLock:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.state_dir / LOCK_FILE), timeout=self.stop_timeout + 30)

    # The pid file: {"pid", "argv", "command", "started_at", "create_time", "log"}.
    def _record(self) -> dict[str, Any] | None:
        try:
            rec = read_json(self.pid_path)
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and isinstance(rec.get("pid"), int) else None

    def _live_process(self) -> Any | None:
        """The psutil.Process of our backend, or None (not started, exited, or pid reused)."""
        import psutil

        rec = self._record()
        if rec is None:
            return None
        if self._child is not None and self._child.pid == rec["pid"]:
            self._child.poll()  # reap our own child so it does not linger as a zombie
        try:
            proc = psutil.Process(rec["pid"])
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            same_start = abs(proc.create_time() - float(rec.get("create_time", 0))) < 0.05
            same_cmd = same_command(proc.cmdline(), rec.get("argv") or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        return proc if same_start and same_cmd else None

    def is_running(self) -> bool:
        return self._live_process() is not None

    def pid(self) -> int | None:
        proc = self._live_process()
        return proc.pid if proc is not None else None

    def start_stamp(self) -> str | None:
        """Pid and start time of the running backend: proof a restart really happened."""
        proc = self._live_process()
        if proc is None:
            return None
        rec = self._record() or {}
        return f"pid {proc.pid} started {float(rec.get('create_time', 0)):.3f}"

    def start(self) -> None:
        with self._lock():
            self._start_locked()

    def stop(self) -> None:
        with self._lock():
            self._stop_locked()

    def restart(self) -> None:
        with self._lock():
            self._stop_locked()
            self._start_locked()

    def _start_locked(self) -> None:
        import psutil

        if self._live_process() is not None:
            return
        argv = self.argv()
        self.preflight()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_path, "ab") as log:
            log.write(f"--- {stamp} clm-tray starts: {self.command}\n".encode())
            log.flush()
            kwargs: dict[str, Any] = {}
            if sys.platform.startswith("win"):
                kwargs["creationflags"] = (
                    subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
                )
            else:
                kwargs["start_new_session"] = True
            try:
                child = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.cwd, close_fds=True, **kwargs,
                )
            except OSError as exc:
                raise BackendError(
                    f"QT_CLM_BACKEND_COMMAND could not be started ({exc}); check the command."
                ) from exc
        self._child = child
        try:  # fixed at fork, unlike the command line (briefly empty while exec runs)
            create_time = psutil.Process(child.pid).create_time()
        except psutil.Error:
            create_time = 0.0  # gone already: reported just below
        atomic_write_json(self.pid_path, {
            "pid": child.pid, "argv": argv, "command": self.command,
            "started_at": time.time(), "create_time": create_time, "log": str(self.log_path),
        })
        # A command that dies at once (bad flag, port taken) is reported here, with its log.
        try:
            code = child.wait(timeout=0.3)
        except subprocess.TimeoutExpired:
            return
        self.pid_path.unlink(missing_ok=True)
        raise BackendError(
            f"QT_CLM_BACKEND_COMMAND exited at once with code {code}; see {self.log_path}."
        )

    def _stop_locked(self) -> None:
        proc = self._live_process()
        if proc is None:
            self.pid_path.unlink(missing_ok=True)
            return
        self._signal(proc, signal.SIGTERM)
        gone = self._wait_gone(proc, self.stop_timeout)
        if not gone:
            self._signal(proc, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            gone = self._wait_gone(proc, 5.0)
        if not gone:
            raise BackendError(
                f"the backend process {proc.pid} did not stop after SIGKILL; stop it by hand "
                f"(command: {self.command})."
            )
        self.pid_path.unlink(missing_ok=True)
        if self.port is not None:
            wait_port_released(self.port, 5.0)
        with open(self.log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- {stamp} clm-tray stopped pid {proc.pid}\n".encode())

    def _signal(self, proc: Any, sig: int) -> None:
        import psutil

        try:
            if sys.platform.startswith("win"):
                proc.terminate()  # TerminateProcess: Windows has no gentler signal to send
            elif os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)  # its own session: take helpers it spawned too
            else:
                proc.send_signal(sig)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass

    def _wait_gone(self, proc: Any, timeout: float) -> bool:
        import psutil

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._child is not None and self._child.pid == proc.pid:
                if self._child.poll() is not None:
                    return True
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return True  # dead; its parent (another clm-tray process) will reap it
            except psutil.NoSuchProcess:
                return True
            time.sleep(0.05)
        return False
