"""Fixtures for the backend tests: tiny real models, free ports, small HTTP peers, and a real
Docker engine with a busybox test image.

Docker: ``docker_engine`` uses ``DOCKER_HOST`` when it answers (``.ci/docker.sh`` exports it),
else the default socket, else (root + ``dockerd`` on PATH) starts a private dockerd exactly as
``.ci/docker.sh`` does and stops it at the end of the session. Where none of that works the
Docker tests skip with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FEATURES = ["f0", "f1", "f2"]
TEST_IMAGE = "clm-test-backend:1"
DOCKER_ASSETS = Path(__file__).resolve().parents[1] / "docker"


# ---- models -----------------------------------------------------------------------------------
def train_tiny_model(seed: int) -> bytes:
    """A real XGBoost model (100 rows, 3 features) as .ubj bytes; the seed changes the bytes."""
    import numpy as np
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(100, len(FEATURES))).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=100) > 0).astype(int)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "seed": seed},
        xgboost.DMatrix(x, label=y, feature_names=FEATURES),
        num_boost_round=4,
    )
    return bytes(booster.save_raw("ubj"))


_MODELS: dict[int, bytes] = {}


@dataclass
class Deployed:
    path: Path
    sha256: str
    version: str


@pytest.fixture
def write_model() -> Callable[..., Deployed]:
    """Write model ``seed`` plus its meta JSON into a deploy folder, as deploy.py lays it out."""

    def write(folder: Path, seed: int, version: str | None = None) -> Deployed:
        if seed not in _MODELS:
            _MODELS[seed] = train_tiny_model(seed)
        data = _MODELS[seed]
        sha = hashlib.sha256(data).hexdigest()
        version = version or f"v{seed:04d}-test"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "xgb_model.ubj").write_bytes(data)
        meta = {"version": version, "model_sha256": sha, "features": FEATURES,
                "trained_at": "2026-11-28T00:00:00+00:00",
                "deployed_at": "2026-11-28T00:00:00+00:00"}
        (folder / "xgb_model.meta.json").write_text(json.dumps(meta))
        return Deployed(folder / "xgb_model.ubj", sha, version)

    return write


# ---- HTTP peers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    """A port nothing listens on right now (127.0.0.1)."""
    return free_port()


@pytest.fixture
def health_peer() -> Iterator[Callable[..., str]]:
    """Start a small health endpoint on 127.0.0.1 that behaves as told; returns its URL.

    ``behave(handler)`` gets the request handler and answers (or hangs) however it likes.
    """
    servers: list[ThreadingHTTPServer] = []
    release = threading.Event()

    def start(behave: Callable[[BaseHTTPRequestHandler, threading.Event], None]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                behave(self, release)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/health"

    yield start
    release.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, doc: Any) -> None:
    body = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def send() -> Callable[[BaseHTTPRequestHandler, int, Any], None]:
    return send_json


# ---- Docker -----------------------------------------------------------------------------------
def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _ping(url: str) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=url, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class PrivateDockerd:
    """A dockerd on its own socket in a temp folder, started like ``.ci/docker.sh`` does."""

    def __init__(self) -> None:
        # Short path: containerd's sockets live under the exec-root (108-byte unix path limit).
        self.dir = Path(tempfile.mkdtemp(prefix="clm-dk-", dir="/tmp"))
        self.url = f"unix://{self.dir / 'docker.sock'}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 30.0) -> None:
        log = open(self.dir / "dockerd.log", "wb")  # noqa: SIM115 (kept open for dockerd)
        self.proc = subprocess.Popen(
            ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
             "--storage-driver=vfs", "--data-root", str(self.dir / "data"),
             "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "dockerd.pid"),
             "--host", self.url],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if _ping(self.url):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = (self.dir / "dockerd.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"dockerd did not answer on {self.url}:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        # dockerd leaves its default network namespace mounted under the exec-root.
        with open("/proc/mounts") as mounts:
            inside = [line.split()[1] for line in mounts if f" {self.dir}/" in line]
        for mount in sorted(inside, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_dockerd() -> Iterator[PrivateDockerd]:
    """An engine of the test's own, which it may stop; skips (fails under CI) without root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("dockerd") is None:
        reason = "a private dockerd needs root and dockerd on PATH (apt-get install docker.io)"
        if _ci():
            pytest.fail(reason)
        pytest.skip(reason)
    engine = PrivateDockerd()
    engine.start()
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    """The URL of a Docker engine the tests may use (see the module docstring)."""
    tried = []
    for url in (os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock"):
        if url:
            if _ping(url):
                yield url
                return
            tried.append(url)
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("dockerd"):
        engine = PrivateDockerd()
        engine.start()
        try:
            yield engine.url
        finally:
            engine.stop()
        return
    reason = (f"no Docker engine answers (tried {', '.join(tried) or 'nothing'}) and none can be "
              f"started here (needs root and dockerd); run under .ci/docker.sh's docker_start")
    if _ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _rootfs_tar() -> bytes:
    """The test image's root filesystem: busybox-static, applet links, entrypoint, CGI."""
    busybox = Path("/bin/busybox") if Path("/bin/busybox").is_file() else None
    found = shutil.which("busybox")
    busybox = busybox or (Path(found) if found else None)
    if busybox is None:
        reason = "busybox not found; apt-get install -y busybox-static"
        if _ci():
            pytest.fail(reason)
        pytest.skip(reason)
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    buf = io.BytesIO()

    def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, mode
        tar.addfile(info)

    def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "models", "www", "www/cgi-bin"):
            add_dir(tar, d)
        add_dir(tar, "tmp", 0o1777)
        add_file(tar, "bin/busybox", busybox.read_bytes())
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        add_file(tar, "entrypoint.sh", (DOCKER_ASSETS / "entrypoint.sh").read_bytes())
        add_file(tar, "www/cgi-bin/health", (DOCKER_ASSETS / "health.cgi").read_bytes())
    return buf.getvalue()


@pytest.fixture(scope="session")
def rootfs_tar() -> bytes:
    return _rootfs_tar()


@pytest.fixture(scope="session")
def docker_client(docker_engine: str) -> Iterator[Any]:
    import docker

    client = docker.DockerClient(base_url=docker_engine, timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(docker_client: Any, rootfs_tar: bytes) -> str:
    """``docker import`` of the busybox root filesystem (what tests/docker/build_image.sh does)."""
    docker_client.api.import_image_from_data(
        rootfs_tar, repository=TEST_IMAGE.split(":")[0], tag=TEST_IMAGE.split(":")[1],
        changes=['ENTRYPOINT ["/entrypoint.sh"]'],
    )
    return TEST_IMAGE


@dataclass
class RunningContainer:
    name: str
    port: int
    models: Path
    health_url: str
    engine_url: str
    container: Any


@pytest.fixture
def run_container(docker_client: Any, docker_engine: str, test_image: str, tmp_path: Path
                  ) -> Iterator[Callable[..., RunningContainer]]:
    """Run the test backend: host network, --init, the models folder bind-mounted read-only."""
    made: list[Any] = []

    def run(models: Path, healthcheck: bool = False) -> RunningContainer:
        port = free_port()
        name = f"clm-test-{uuid.uuid4().hex[:8]}"
        url = f"http://127.0.0.1:{port}/cgi-bin/health"
        extra: dict[str, Any] = {}
        if healthcheck:
            extra["healthcheck"] = {
                "test": ["CMD", "wget", "-q", "-O", "/dev/null", url],
                "interval": 300_000_000, "timeout": 2_000_000_000, "retries": 3,
                "start_period": 0,
            }
        models.mkdir(parents=True, exist_ok=True)
        box = docker_client.containers.run(
            test_image, name=name, detach=True, network_mode="host", init=True,
            environment={"PORT": str(port)},
            volumes={str(models): {"bind": "/models", "mode": "ro"}}, **extra,
        )
        made.append(box)
        return RunningContainer(name, port, models, url, docker_engine, box)

    yield run
    for box in made:
        try:
            box.remove(force=True)
        except Exception:
            pass
