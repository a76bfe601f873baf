"""A Docker container as the backend: find the engine the way the docker CLI does, and
restart the container through the docker SDK (imported only when Docker is the backend)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clm_tray.core.errors import BackendError
from clm_tray.core.fsutil import read_json

WINDOWS_PIPE = "npipe:////./pipe/docker_engine"
LINUX_SOCKET = "unix:///var/run/docker.sock"


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

    def start_stamp(self) -> str | None:
        """The container's ``State.StartedAt``: proof a restart really happened."""
        try:
            client = self._client()
        except BackendError:
            return None
        try:
            box = self._container(client)
            state = box.attrs.get("State") or {}
            return str(state.get("StartedAt")) if state.get("Running") else None
        except BackendError:
            return None
        finally:
            client.close()

    def check_serving(self) -> str | None:
        """Docker publishes the port itself: the container's restart stamp is the proof."""
        return None

    def pid(self) -> int | None:
        """A container's process belongs to the Docker engine, not to clm-tray."""
        return None

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
