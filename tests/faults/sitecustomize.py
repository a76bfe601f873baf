"""Faults for the tests, injected around the real training process; no production code knows.

Python imports ``sitecustomize`` at the start of every process whose path holds this folder.
The root conftest.py puts it on ``PYTHONPATH`` for every test, so every process a test starts
(the CLI, the engine's worker, the training process, each spawned by the one before) runs this
first. Unless a test sets one of the variables below this does nothing; with one set, it wraps
the training process's entry (``trainchild.main``) so that the training process

- ``CLM_TRAY_TRAIN_SLEEP=seconds``: waits that long before it trains (a slow training, for
  Cancel, timeout and "look at it while it runs" tests);
- ``CLM_TRAY_FAULT=train``: kills itself with SIGKILL before it trains (what the system does
  to a process that runs out of memory).

Only the process that runs the entry is affected: the wrapper is installed everywhere, but only
the training process calls it.
"""

from __future__ import annotations

import os


def _install() -> None:
    sleep = float(os.environ.get("CLM_TRAY_TRAIN_SLEEP") or 0)
    kill = os.environ.get("CLM_TRAY_FAULT") == "train"
    if sleep <= 0 and not kill:
        return
    import functools
    import signal
    import time

    try:
        from clm_tray.core.ml import trainchild
    except ImportError:  # a process outside clm-tray's environment
        return
    real = trainchild.main

    @functools.wraps(real)  # same module and name: the parent still pickles it by reference
    def main(*args, **kwargs):
        if kill:
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
        time.sleep(sleep)
        return real(*args, **kwargs)

    trainchild.main = main


_install()
