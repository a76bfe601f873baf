"""The trading backend: restart it after a deploy and prove it loaded the new model.

Three kinds, picked by ``QT_CLM_BACKEND``: a Docker container driven through the docker SDK
(``docker``), a command line clm-tray starts and stops itself (``process``), or nothing
(``none``: files only, and every health report says verification was skipped). Whatever the
kind, proof comes from the health URL: ``verify_backend`` polls it until it answers 200 and
reports the deployed model's sha256 / version, or the deadline passes, and then says in one
line why not.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from filelock import FileLock

from clm_tray.core.errors import BackendError
from clm_tray.core.fsutil import atomic_write_json, read_json
from clm_tray.core.settings import Settings
from clm_tray.core.status import HealthReport

SKIPPED_REASON = "QT_CLM_BACKEND=none: files only, backend not checked"
WINDOWS_PIPE = "npipe:////./pipe/docker_engine"
LINUX_SOCKET = "unix:///var/run/docker.sock"
PID_FILE = "backend.pid.json"
LOCK_FILE = "backend.lock"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_MAX_BODY = 1 << 20  # a health answer is small; never read more than 1 MiB of it


# ---- health -----------------------------------------------------------------------------------
def skipped_report(url: str = "") -> HealthReport:
    """What health looks like with ``QT_CLM_BACKEND=none``: not checked, and saying so."""
    return HealthReport(
        ok=True, url=url, status_code=None, latency_ms=None, reported_sha256=None,
        reported_version=None, reason=SKIPPED_REASON, skipped=True,
    )


def _short(sha: str) -> str:
    return sha[:12] + "…" if len(sha) > 12 else sha


def _lookup(doc: Any, key: str) -> str | None:
    """``key`` may be dotted (``model.sha256``) for backends that nest their answer."""
    for part in key.split("."):
        if not isinstance(doc, Mapping) or part not in doc:
            return None
        doc = doc[part]
    return None if doc is None or isinstance(doc, (dict, list)) else str(doc)


def _use_proxy_env(url: str) -> bool:
    """A local backend is never reached through HTTP(S)_PROXY."""
    return (urlsplit(url).hostname or "") not in _LOOPBACK


class _Failure(Exception):
    """Why one request got no usable answer: kind is refused / hung / broken."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _get(client: httpx.Client, url: str, timeout: float) -> tuple[int, bytes]:
    """GET with every phase bounded by ``timeout`` and the whole answer by the same budget."""
    started = time.monotonic()
    try:
        with client.stream("GET", url, timeout=httpx.Timeout(timeout)) as resp:
            body = b""
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > _MAX_BODY:
                    break
                if time.monotonic() - started > timeout:
                    raise _Failure("hung", "answer still arriving when the time ran out")
            return resp.status_code, body
    except httpx.ConnectTimeout as exc:
        raise _Failure("hung", "connect timed out") from exc
    except httpx.TimeoutException as exc:
        raise _Failure("hung", "no reply") from exc
    except httpx.ConnectError as exc:
        text = str(exc).lower()
        detail = "connection refused" if "refused" in text else (str(exc) or "cannot connect")
        raise _Failure("refused", detail) from exc
    except httpx.HTTPError as exc:  # protocol errors, closed connections, bad URLs
        raise _Failure("broken", f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc


def _probe(
    client: httpx.Client, url: str, timeout: float, model_key: str, version_key: str
) -> tuple[HealthReport, _Failure | None]:
    """One request; also returns why it got no answer at all (None when it got one)."""
    started = time.monotonic()
    try:
        status, body = _get(client, url, timeout)
    except _Failure as failure:
        if failure.kind == "hung":
            reason = f"{url} timed out (hung): {failure.detail} within {timeout:.3g} s"
        elif failure.kind == "refused":
            reason = f"no answer from {url} ({failure.detail})"
        else:
            reason = f"{url} gave no usable answer ({failure.detail})"
        return HealthReport(False, url, None, None, None, None, reason), failure
    latency = round((time.monotonic() - started) * 1000.0, 1)
    try:
        doc = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        doc = None
    sha = _lookup(doc, model_key) if model_key else None
    version = _lookup(doc, version_key) if version_key else None
    if status == 200:
        reason = "healthy"
    else:
        said = _lookup(doc, "reason") or _lookup(doc, "error")
        reason = f"{url} answered HTTP {status}" + (f": {said[:200]}" if said else "")
    return HealthReport(status == 200, url, status, latency, sha, version, reason), None


def probe_health(
    url: str,
    *,
    timeout: float = 2.0,
    model_key: str = "model_sha256",
    version_key: str = "model_version",
) -> HealthReport:
    """Ask the health URL once: ok means HTTP 200, whatever model it reports."""
    with httpx.Client(trust_env=_use_proxy_env(url), follow_redirects=True) as client:
        return _probe(client, url, timeout, model_key, version_key)[0]


def _judge(
    report: HealthReport, expect_sha256: str | None, expect_version: str | None
) -> HealthReport:
    """Turn a 200 into verified only when the reported model is the one just deployed."""
    if not report.ok:
        return report
    compared = []
    if expect_sha256 and report.reported_sha256:
        if report.reported_sha256.strip().lower() != expect_sha256.strip().lower():
            report.ok = False
            report.reason = (
                f"backend reports model sha256 {_short(report.reported_sha256)} "
                f"but deployed {_short(expect_sha256)}"
            )
            return report
        compared.append(f"sha256 {_short(expect_sha256)}")
    if expect_version and report.reported_version:
        if report.reported_version.strip() != expect_version.strip():
            report.ok = False
            report.reason = (
                f"backend reports model version {report.reported_version} "
                f"but deployed {expect_version}"
            )
            return report
        compared.append(f"version {expect_version}")
    if compared:
        report.reason = "healthy, serving " + " and ".join(compared)
    elif expect_sha256 or expect_version:
        report.reason = "healthy (the backend does not report its model, so it was not compared)"
    return report


def verify_backend(
    url: str,
    *,
    expect_sha256: str | None,
    expect_version: str | None,
    deadline: float,
    request_timeout: float = 2.0,
    model_key: str = "model_sha256",
    version_key: str = "model_version",
    interval: float = 0.25,
) -> HealthReport:
    """Poll ``url`` for up to ``deadline`` seconds until it serves the model just deployed.

    Verified = HTTP 200 and, where the JSON reports the loaded model (``model_key`` /
    ``version_key``), it equals what was deployed. Each request's timeout is capped at the time
    left, so a hung endpoint cannot stretch the wait. The report of the last attempt is
    returned, its reason rewritten to say why the whole wait failed.
    """
    started = time.monotonic()
    end = started + deadline
    last: HealthReport | None = None
    failure: _Failure | None = None
    with httpx.Client(trust_env=_use_proxy_env(url), follow_redirects=True) as client:
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0 and last is not None:
                break
            report, failure = _probe(
                client, url, max(0.05, min(request_timeout, remaining)), model_key, version_key
            )
            report = _judge(report, expect_sha256, expect_version)
            if report.ok:
                return report
            last = report
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(interval, remaining))
    assert last is not None
    if failure is not None and failure.kind == "refused":
        last.reason = f"no answer from {url} within {deadline:.3g} s ({failure.detail})"
    elif failure is not None and failure.kind == "hung":
        last.reason = f"{url} timed out (hung): no reply within the {deadline:.3g} s deadline"
    return last


# ---- backends ---------------------------------------------------------------------------------
class Backend(Protocol):
    """What the cycle needs from a backend: check it can be driven, and restart it."""

    kind: str

    def preflight(self) -> None: ...

    def restart(self) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_running(self) -> bool: ...

    def describe(self) -> str: ...


class NoBackend:
    """``QT_CLM_BACKEND=none``: clm-tray only writes files; nothing to restart or check."""

    kind = "none"

    def preflight(self) -> None:
        return None

    def restart(self) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def is_running(self) -> bool:
        return False

    def describe(self) -> str:
        return "no backend (QT_CLM_BACKEND=none: files only, not restarted or checked)"


# ---- docker -----------------------------------------------------------------------------------
def _docker_config_dir(environ: Mapping[str, str], home: Path) -> Path:
    return Path(environ["DOCKER_CONFIG"]) if environ.get("DOCKER_CONFIG") else home / ".docker"


def _context_endpoint(environ: Mapping[str, str], home: Path) -> str | None:
    """The docker endpoint of the current context (``DOCKER_CONTEXT`` or ``currentContext``)."""
    config_dir = _docker_config_dir(environ, home)
    name = environ.get("DOCKER_CONTEXT") or ""
    if not name:
        try:
            name = str(read_json(config_dir / "config.json").get("currentContext") or "")
        except (OSError, ValueError, AttributeError):
            name = ""
    if not name or name == "default":
        return None
    meta_root = config_dir / "contexts" / "meta"
    try:
        metas = sorted(meta_root.glob("*/meta.json"))
    except OSError:
        return None
    for meta_path in metas:
        try:
            meta = read_json(meta_path)
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("Name") == name:
            host = ((meta.get("Endpoints") or {}).get("docker") or {}).get("Host")
            return str(host) if host else None
    return None


def resolve_docker_url(
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    platform: str | None = None,
) -> str:
    """Where the Docker engine is, the way the docker CLI finds it.

    ``DOCKER_HOST`` first, then the current Docker context, then the platform default: the
    named pipe on Windows; on macOS ``/var/run/docker.sock`` or, when that is absent, Docker
    Desktop's per-user ``~/.docker/run/docker.sock``; on Linux ``/var/run/docker.sock`` or a
    rootless engine's ``$XDG_RUNTIME_DIR/docker.sock``.
    """
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    platform = sys.platform if platform is None else platform
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"]
    endpoint = _context_endpoint(environ, home)
    if endpoint:
        return endpoint
    if platform.startswith("win"):
        return WINDOWS_PIPE
    if Path("/var/run/docker.sock").exists():
        return LINUX_SOCKET
    if platform == "darwin":
        desktop = home / ".docker" / "run" / "docker.sock"
        if desktop.exists():
            return f"unix://{desktop}"
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime and (Path(runtime) / "docker.sock").exists():
        return f"unix://{Path(runtime) / 'docker.sock'}"
    return LINUX_SOCKET


def _healthcheck_configured(attrs: Mapping[str, Any]) -> bool:
    test = ((attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


class DockerBackend:
    """A container restarted through the docker SDK (the trader's ``quantum_backend_prod``)."""

    kind = "docker"

    def __init__(
        self,
        container: str,
        *,
        stop_timeout: float = 10.0,
        health_wait: float = 60.0,
        base_url: str | None = None,
        api_timeout: float = 30.0,
    ) -> None:
        self.container = container
        self.stop_timeout = stop_timeout
        self.health_wait = health_wait
        self.base_url = base_url
        self.api_timeout = api_timeout

    @property
    def url(self) -> str:
        return self.base_url or resolve_docker_url()

    def describe(self) -> str:
        return f"docker container {self.container} on {self.url}"

    def _client(self) -> Any:
        import docker  # the SDK is only imported when Docker is the backend
        from docker.errors import DockerException

        url = self.url
        # TLS settings come with DOCKER_HOST (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) via from_env.
        use_env = self.base_url is None and bool(os.environ.get("DOCKER_HOST"))
        try:
            if use_env:
                client = docker.from_env(timeout=int(self.api_timeout))
            else:
                client = docker.DockerClient(base_url=url, timeout=int(self.api_timeout))
            client.ping()
        except (DockerException, OSError) as exc:
            raise BackendError(
                f"Docker is not running (tried {url}); start Docker Desktop / the docker "
                f"service, or set QT_CLM_BACKEND=none."
            ) from exc
        return client

    def _container(self, client: Any) -> Any:
        from docker.errors import DockerException, NotFound

        try:
            return client.containers.get(self.container)
        except NotFound as exc:
            raise BackendError(
                f"no container named {self.container} on {self.url}; check "
                f"QT_CLM_DOCKER_CONTAINER (docker ps -a lists them)."
            ) from exc
        except DockerException as exc:
            raise BackendError(
                f"Docker at {self.url} failed to look up container {self.container} ({exc}); "
                f"check the engine with `docker ps -a`."
            ) from exc

    def preflight(self) -> None:
        """Engine reachable and the container exists, before anything is deployed."""
        client = self._client()
        try:
            self._container(client)
        finally:
            client.close()

    def restart(self) -> None:
        """Restart with the configured stop timeout; wait for ``healthy`` if it has a check."""
        from docker.errors import DockerException

        client = self._client()
        try:
            box = self._container(client)
            try:
                box.restart(timeout=int(round(self.stop_timeout)))
                box.reload()
            except DockerException as exc:
                raise BackendError(
                    f"Docker could not restart container {self.container} ({exc}); "
                    f"see `docker logs {self.container}`."
                ) from exc
            self._check_running(box)
            if _healthcheck_configured(box.attrs):
                self._wait_healthy(box)
        finally:
            client.close()

    def _check_running(self, box: Any) -> None:
        state = box.attrs.get("State") or {}
        if box.status != "running":
            raise BackendError(
                f"container {self.container} is {box.status} after restart (exit code "
                f"{state.get('ExitCode')}); see `docker logs {self.container}`."
            )

    def _wait_healthy(self, box: Any) -> None:
        """Docker's own HEALTHCHECK must say ``healthy`` within ``health_wait`` seconds."""
        end = time.monotonic() + self.health_wait
        health = box.health
        while time.monotonic() < end:
            box.reload()
            health = box.health
            if health == "healthy":
                return
            if health == "unhealthy":
                break
            self._check_running(box)
            time.sleep(0.2)
        raise BackendError(
            f"container {self.container} is {health} after restart (its HEALTHCHECK did not "
            f"pass within {self.health_wait:.3g} s); see `docker inspect {self.container}`."
        )

    def start(self) -> None:
        from docker.errors import DockerException

        client = self._client()
        try:
            box = self._container(client)
            try:
                box.start()
            except DockerException as exc:
                raise BackendError(
                    f"Docker could not start container {self.container} ({exc}); "
                    f"see `docker logs {self.container}`."
                ) from exc
        finally:
            client.close()

    def stop(self) -> None:
        from docker.errors import DockerException

        client = self._client()
        try:
            box = self._container(client)
            try:
                box.stop(timeout=int(round(self.stop_timeout)))
            except DockerException as exc:
                raise BackendError(
                    f"Docker could not stop container {self.container} ({exc})."
                ) from exc
        finally:
            client.close()

    def is_running(self) -> bool:
        try:
            client = self._client()
        except BackendError:
            return False
        try:
            return self._container(client).status == "running"
        except BackendError:
            return False
        finally:
            client.close()


# ---- process ----------------------------------------------------------------------------------
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


def _same_command(cmdline: list[str], argv: list[str]) -> bool:
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
    ) -> None:
        self.command = command
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
            same_cmd = _same_command(proc.cmdline(), rec.get("argv") or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        return proc if same_start and same_cmd else None

    def is_running(self) -> bool:
        return self._live_process() is not None

    def pid(self) -> int | None:
        proc = self._live_process()
        return proc.pid if proc is not None else None

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


# ---- factory ----------------------------------------------------------------------------------
def make_backend(settings: Settings, store_dir: Path) -> Backend:
    """The backend ``settings`` describe. Nothing is contacted or started here."""
    kind = settings.resolved_backend
    if kind == "docker":
        return DockerBackend(
            settings.docker_container,
            stop_timeout=settings.docker_stop_timeout,
            health_wait=settings.health_timeout,
        )
    if kind == "process":
        return ProcessBackend(
            settings.backend_command,
            log_path=settings.resolved_log_dir / "backend.log",
            state_dir=Path(store_dir),
            stop_timeout=settings.docker_stop_timeout,
            cwd=settings.project_dir,
        )
    return NoBackend()


def verify_deployed(
    backend: Backend,
    settings: Settings,
    *,
    expect_sha256: str | None,
    expect_version: str | None,
    deadline: float | None = None,
) -> HealthReport:
    """Step 7 of the cycle with the settings' URL, keys and deadline; skipped for ``none``."""
    if backend.kind == "none":
        return skipped_report(settings.health_url)
    return verify_backend(
        settings.health_url,
        expect_sha256=expect_sha256,
        expect_version=expect_version,
        deadline=settings.health_timeout if deadline is None else deadline,
        model_key=settings.health_model_key,
        version_key=settings.health_version_key,
    )
