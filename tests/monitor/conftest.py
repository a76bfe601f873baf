"""Fixtures for the monitor tests: a real redis-server on a free port, small synthetic data."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throw-away redis-server the test can kill and start again on the same port."""

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from exc
                time.sleep(0.02)
            finally:
                client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not on PATH (apt-get install redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    server = RedisServer(binary, _free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


FEATURES = ["gauss", "lognormal", "discrete", "constant", "gappy"]


def synthetic(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """An i.i.d. process with awkward features: skew, ties, a constant, NaN gaps.

    ``shift`` moves every non-constant feature by that many of its standard deviations, and
    the target depends on gauss and lognormal so models have something to learn.
    """
    rng = np.random.default_rng(seed)
    gauss = rng.normal(0, 1, rows) + shift
    lognormal = rng.lognormal(0, 0.7, rows) * (1 + 0.5 * shift)
    discrete = rng.integers(0, 4, rows).astype(float) + np.round(shift)
    constant = np.full(rows, 3.0)
    gappy = rng.normal(5, 2, rows) + 2 * shift
    gappy[rng.random(rows) < 0.1] = np.nan
    logit = 1.5 * gauss - 0.8 * (lognormal - 1.3) + rng.logistic(0, 1, rows)
    return pd.DataFrame({
        "timestamp": pd.date_range("2026-01-01", periods=rows, freq="min", tz="UTC"),
        "gauss": gauss, "lognormal": lognormal, "discrete": discrete, "constant": constant,
        "gappy": gappy, "target": (logit > 0).astype(int),
    })


@pytest.fixture(scope="session")
def make_data():
    """The synthetic process above, as a fixture so tests need not import this module."""
    return synthetic


@pytest.fixture(scope="session")
def features() -> list[str]:
    return list(FEATURES)
