"""Connecting to the Dask cluster that ``QT_CLM_DASK_SCHEDULER`` names (dask_training.py).

``local`` / ``local:N`` start a LocalCluster for one cycle; anything else is a scheduler's
address, checked within seconds and shown without credentials (``public_address``), because the
address may carry a user and password and Dask's own client would retry for its whole timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from clm_tray.core.errors import TrainingError

if TYPE_CHECKING:
    from distributed import Client

#: Seconds to wait for a remote scheduler to answer and for it to have a worker.
CONNECT_SECONDS = 10.0


def public_address(address: str) -> str:
    """The scheduler address as it may be shown and recorded: no user, password or query."""
    parts = urllib.parse.urlsplit(address)
    if not parts.scheme or not parts.netloc:
        return address
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def local_workers(setting: str) -> int | None:
    """``local`` → None (sized to the machine as Dask sizes it); ``local:N`` → N workers of
    one thread each."""
    _, _, count = setting.partition(":")
    return int(count) if count else None


def _check_reachable(address: str) -> None:
    """Fail in a second, with one line, when nothing listens at the scheduler's address
    (Dask's own client would retry for its whole connect timeout)."""
    parts = urllib.parse.urlsplit(address)
    shown = public_address(address)
    try:
        port = parts.port or 8786
        host = parts.hostname or "127.0.0.1"
    except ValueError as exc:
        raise TrainingError(f"The Dask scheduler address {shown} is not host:port ({exc}); "
                            "fix QT_CLM_DASK_SCHEDULER.") from exc
    try:
        socket.create_connection((host, port), timeout=min(5.0, CONNECT_SECONDS)).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TrainingError(f"No Dask scheduler answers at {shown} ({reason.lower()}); start "
                            "the scheduler or fix QT_CLM_DASK_SCHEDULER.") from exc


@contextlib.contextmanager
def cluster_client(setting: str) -> Iterator[tuple[Client, str]]:
    """A Client for the setting (a LocalCluster for this cycle, or the given scheduler) and
    the address to record; closed (and a LocalCluster shut down) on the way out."""
    from distributed import Client, LocalCluster
    from distributed.deploy.utils import nprocesses_nthreads

    if setting.startswith("local"):
        # Workers are threads of this (killable) child: XGBoost releases the GIL while it
        # boosts, and a cycle does not pay for starting and importing into worker processes.
        n = local_workers(setting)
        n_workers, threads = (n, 1) if n else nprocesses_nthreads(os.cpu_count() or 1)
        with LocalCluster(processes=False, n_workers=n_workers, threads_per_worker=threads,
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield client, "local"
        return
    shown = public_address(setting)
    _check_reachable(setting)
    try:
        client = Client(setting, timeout=CONNECT_SECONDS)  # compute() uses it
    except (OSError, TimeoutError) as exc:
        raise TrainingError(f"The Dask scheduler at {shown} did not answer in "
                            f"{CONNECT_SECONDS:g} s; check that it runs and the address is "
                            "right (QT_CLM_DASK_SCHEDULER).") from exc
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise TrainingError(f"The Dask scheduler at {shown} has no workers; start some "
                                f"with `dask worker {shown}`.") from exc
        yield client, shown
