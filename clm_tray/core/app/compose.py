"""The composition root: the one place an engine is built, for every caller.

``open_engine(loaded, mode)`` returns an ``EnginePort`` (port.py):

- ``"inline"``: ``service.Engine``, every call in this process (CLI one-shot commands);
- ``"worker"``: ``proxy.WorkerEngine``, heavy calls in a worker process each (the tray, the
  daemon, the tray after the first-run banner switched project), whose own engine is built
  here too, by ``worker_engine``.

Because only this module knows both implementations, the service does not import the worker
and the worker does not import the service: no import circle between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from clm_tray.core.app import events as ev
from clm_tray.core.app.port import MODES, EnginePort, Mode
from clm_tray.core.app.proxy import WorkerEngine
from clm_tray.core.app.service import Engine
from clm_tray.core.config.sources import LoadedSettings


def open_engine(loaded: LoadedSettings, mode: Mode, *, bus: ev.EventBus | None = None,
                clock: Callable[[], float] = time.time) -> EnginePort:
    """Open the workspace ``loaded`` names (recovering and adopting first, startup.py)."""
    if mode == "inline":
        _lean(loaded)
        return Engine(loaded, bus=bus, clock=clock)
    if mode == "worker":
        return WorkerEngine(loaded, worker_engine, bus=bus, clock=clock)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")


def worker_engine(loaded: LoadedSettings, bus: ev.EventBus) -> EnginePort:
    """The engine a worker process builds for its one call (pickled by reference to it)."""
    _lean(loaded)
    _leave_a_core()
    return Engine(loaded, bus=bus, train_ahead=False)


def _leave_a_core() -> None:
    """A worker reads data for the tray or the daemon, in the background: like training
    (``Settings.effective_threads``), its parsing leaves one core to the desktop and the
    trading backend. With every core parsing, the tray's event loop stalled for up to 90 ms
    during a cycle's load on two cores; with one left free, under 30 ms and no slower cycle
    (bench/gui_latency.py). Arrow's pool is per process: the worker's only."""
    import os

    import pyarrow

    pyarrow.set_cpu_count(max(1, (os.cpu_count() or 2) - 1))


def _lean(loaded: LoadedSettings) -> None:
    """A process that runs heavy calls loads XGBoost: keep scikit-learn out of it unless a
    deploy may write a pickle (lean_imports.py)."""
    from clm_tray.core.ml.lean_imports import keep_scikit_learn_out_unless_pickling

    keep_scikit_learn_out_unless_pickling(loaded.settings)
