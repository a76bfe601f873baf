"""The trading backend: restart it after a deploy and prove it loaded the new model.

Three kinds, picked by ``QT_CLM_BACKEND``: a Docker container driven through the docker SDK
(``docker``), a command line clm-tray starts and stops itself (``process``), or nothing
(``none``: files only, and every health report says verification was skipped). Whatever the
kind, proof comes from the health URL: ``verify_backend`` polls it until it answers 200 and
reports the deployed model's sha256 / version, or the deadline passes, and then says in one
line why not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from clm_tray.core.backend.docker_engine import (
    DockerBackend,
)
from clm_tray.core.backend.process import ProcessBackend
from clm_tray.core.config.settings import Settings


class Backend(Protocol):
    """What the cycle needs from a backend: check it can be driven, and restart it."""

    kind: str

    def preflight(self) -> None: ...

    def restart(self) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_running(self) -> bool: ...

    def describe(self) -> str: ...

    def start_stamp(self) -> str | None:
        """When the running backend started (None: not running / cannot tell): a restart
        that really happened changes it."""
        ...

    def check_serving(self) -> str | None:
        """Why the answer on the health port may not come from this backend (None: it does,
        or the backend cannot tell)."""
        ...

    def pid(self) -> int | None:
        """The backend's process id when clm-tray runs it itself (None otherwise)."""
        ...


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

    def start_stamp(self) -> str | None:
        return None

    def check_serving(self) -> str | None:
        return None

    def pid(self) -> int | None:
        return None


def local_port(url: str) -> int | None:
    """The port of a health URL on this machine (None for another host): the port a process
    backend must own."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        return None
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


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
            port=local_port(settings.health_url),
        )
    return NoBackend()
