"""Shared fixtures: every test runs with its own config, data and store folders.

The user's real settings never leak in: QT_CLM_* variables are removed and platformdirs'
folders point into the test's tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from small_env import SMALL_ENV

#: Holds the sitecustomize.py that injects faults into the processes tests start.
FAULTS = Path(__file__).parent / "faults"

@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                       ) -> Path:
    """No test reads or writes the real user's config, data or autostart folders."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("QT_CLM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # Every process a test starts can have faults injected (tests/faults/sitecustomize.py).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(FAULTS), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return home


@pytest.fixture(autouse=True)
def scikit_learn_stays_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI and the worker keep scikit-learn out of their own process (ml/lean_imports.py).
    The test process runs the CLI in-process next to tests that use scikit-learn, so there it
    must not; the processes tests start (worker, trainer, CLI subprocess) keep the real rule."""
    from clm_tray.core.ml import lean_imports

    monkeypatch.setattr(lean_imports, "keep_scikit_learn_out", lambda: False)


_DATA_CACHE: dict[tuple[int, int, int], bytes] = {}


def write_small_data(path: Path, symbols: int = 6, bars: int = 400, seed: int = 7) -> Path:
    """A small demo dataset (generated once per shape per session, then copied)."""
    from clm_tray.core.demo.datafile import save
    from clm_tray.core.demo.generator import generate

    key = (symbols, bars, seed)
    if key not in _DATA_CACHE:
        save(generate(symbols=symbols, bars=bars, seed=seed), path)
        _DATA_CACHE[key] = path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(_DATA_CACHE[key])
    return path


@pytest.fixture
def small_workspace(tmp_path: Path) -> Path:
    """A workspace folder with a .env, small data, and store/deploy folders (backend none)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    write_small_data(ws / "data" / "train.csv")
    (ws / ".env").write_text(SMALL_ENV)
    return ws


@pytest.fixture
def engine_factory(small_workspace: Path, monkeypatch: pytest.MonkeyPatch):
    """Build a real Engine on the small workspace; keyword overrides become QT_CLM_* env."""
    from clm_tray.core.app.service import Engine
    from clm_tray.core.config.sources import load_settings

    made = []

    def make(**overrides: object):
        for key, value in overrides.items():
            monkeypatch.setenv(f"QT_CLM_{key.upper()}", str(value))
        engine = Engine(load_settings(small_workspace / ".env", cwd=small_workspace))
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
