"""A private home for every install test: HOME, XDG folders and the working directory live in
tmp_path, no QT_CLM_* leaks in from the machine, and Docker points at a socket that is not
there (so "Docker not reachable" is the finding, quickly)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("QT_CLM_") or name.startswith("XDG_") or name.startswith("DOCKER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "xdg-state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


def _run_cli(*args: str, cwd: Path | None = None, stdin: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clm_tray", *args], cwd=cwd, capture_output=True, text=True,
        input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, timeout=120,
    )


@pytest.fixture
def cli(home: Path):
    """`python -m clm_tray ARGS` in a real child process with the test's environment."""
    return _run_cli


@pytest.fixture(autouse=True)
def _restore_loggers():
    """logsetup.configure changes process-wide loggers; put them back for the other tests."""
    import logging

    from clm_tray.core.config import logsetup

    names = (logsetup.LOGGER, *logsetup.THIRD_PARTY)
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level,
                 logging.getLogger(n).propagate) for n in names}
    yield
    for n, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(n)
        for h in lg.handlers:
            if h not in handlers:
                h.close()
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
