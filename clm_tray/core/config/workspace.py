"""The demo workspace: generated data, its own store, deploy folder, backend and `.env`.

Everything lives in one folder so a new user can look at every file the engine writes, and
any `clm-tray` command run inside that folder acts on it (its `.env` is found there).
"""

from __future__ import annotations

import shlex
import socket
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from clm_tray.core.config.settings import APP_NAME, PROJECT_DATA
from clm_tray.core.fsutil import atomic_write_text

DEMO_MODELS = Path("ai_engine") / "models"
# The trader's real backend answers on http://localhost:8000/health: the demo never takes it.
AVOID_PORTS = frozenset({8000})
DEMO_PORTS = range(20000, 30000)  # a stable port per workspace is picked in here


@dataclass
class DemoWorkspace:
    root: Path
    created: bool
    port: int

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    @property
    def data_path(self) -> Path:
        return self.root / PROJECT_DATA

    @property
    def deploy_dir(self) -> Path:
        return self.root / DEMO_MODELS


def default_workspace() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "demo"


def self_command() -> list[str]:
    """How to run this very clm-tray (a frozen app runs itself, else `python -m clm_tray`)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "clm_tray"]


def free_port(preferred: int = 0, host: str = "127.0.0.1") -> int:
    """``preferred`` when nobody listens there, else a free port the OS picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


def _port_taken(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def workspace_ports(root: Path) -> list[int]:
    """The ports this workspace tries, in order: the same ones every time for the same folder,
    so a bookmark or a script that talks to the demo backend keeps working."""
    seed = zlib.crc32(str(root).encode())
    span = len(DEMO_PORTS)
    ports = [DEMO_PORTS.start + (seed + i * 7919) % span for i in range(20)]
    return [p for p in ports if p not in AVOID_PORTS]


def demo_port(root: Path) -> int:
    """The workspace's stable port when free, else the next of its own; never 8000."""
    for port in workspace_ports(root):
        if not _port_taken(port):
            return port
    port = free_port(0)
    return port


def ensure_workspace(root: Path | None = None, *, symbols: int = 91, bars: int = 1500,
                     seed: int = 7) -> DemoWorkspace:
    """Create the demo workspace (or reuse it); keep its backend port free of conflicts.

    When the port is taken by the workspace's own reference backend (a headless demo left it
    running, or the tray runs it), that is no conflict: ``.env`` stays as it is.
    """
    root = (root or default_workspace()).expanduser().resolve()
    created = not (root / ".env").exists()
    (root / DEMO_MODELS).mkdir(parents=True, exist_ok=True)
    data = root / PROJECT_DATA
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        _generate_in_child(data, symbols, bars, seed)
    port = _current_port(root)
    if port is None or port in AVOID_PORTS or (_port_taken(port) and not own_backend_running(root)):
        port = demo_port(root)
        created = True  # (re)write the .env with the port actually used
    if created:
        _write_env(root, port)
    return DemoWorkspace(root=root, created=created, port=port)


def own_backend_running(root: Path) -> bool:
    """Is the reference backend this workspace's ``.env`` describes running (per its pid file)?"""
    if not (root / ".env").exists():
        return False
    from clm_tray.core.backend.factory import make_backend
    from clm_tray.core.config.sources import load_settings

    try:
        s = load_settings(root / ".env").settings
        backend = make_backend(s, s.resolved_store_dir)
        return backend.is_running()
    except Exception:  # an unreadable .env: treated as no backend (the .env is rewritten)
        return False


def _generate(data: Path, symbols: int, bars: int, seed: int) -> None:
    from clm_tray.core.demo.datafile import save
    from clm_tray.core.demo.generator import generate

    save(generate(symbols=symbols, bars=bars, seed=seed), data)


def _generate_in_child(data: Path, symbols: int, bars: int, seed: int) -> None:
    """Generate the demo data in a spawned process, so the tray app that asked for it never
    loads pandas (its memory would stay with the tray for good)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        pool.submit(_generate, data, symbols, bars, seed).result()


def _current_port(root: Path) -> int | None:
    env = root / ".env"
    if not env.exists():
        return None
    for line in env.read_text(encoding="utf-8").splitlines():
        if line.startswith("QT_CLM_HEALTH_URL="):
            try:
                return int(line.rsplit(":", 1)[1].split("/")[0])
            except ValueError:
                return None
    return None


def _write_env(root: Path, port: int) -> None:
    serve = [*self_command(), "backend", "serve", "--models-dir", str(root / DEMO_MODELS),
             "--host", "127.0.0.1", "--port", str(port)]
    command = " ".join(shlex.quote(a) for a in serve).replace('"', '\\"')
    text = f"""# clm-tray demo workspace: clm-tray commands run in this folder use these settings.
# Demo time runs faster than wall time: a new hourly bar per symbol arrives every minute,
# and drift / performance are checked every 15 / 10 minutes instead of 6 / 3 hours.
QT_CLM_DATA_PATH={PROJECT_DATA.as_posix()}
QT_CLM_DEPLOY_DIR={DEMO_MODELS.as_posix()}
QT_CLM_STORE_DIR=store
QT_CLM_LOG_DIR=logs
QT_CLM_BACKEND=process
QT_CLM_BACKEND_COMMAND="{command}"
QT_CLM_HEALTH_URL=http://127.0.0.1:{port}/health
QT_CLM_HEALTH_TIMEOUT=30
QT_CLM_RETRAIN_HOURS=24
# Volatility regimes alone move the demo's weighted PSI to ~0.15-0.2 over a day of new bars,
# so the demo flags drift above 0.25; performance (live accuracy) catches `feed --shift`.
QT_CLM_DRIFT_THRESHOLD=0.25
QT_CLM_CHECK_MINUTES=5
QT_CLM_DRIFT_HOURS=0.25
QT_CLM_PERF_HOURS=0.1667
QT_CLM_DEMO_FEED_MINUTES=1
"""
    atomic_write_text(root / ".env", text, private=True)
