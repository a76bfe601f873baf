"""Entry point of the spawned training process, kept free of heavy imports on purpose.

A spawned child imports its target's module before running it. Pointing the child here
instead of at training.py lets it keep scikit-learn out before XGBoost is imported: XGBoost
imports scikit-learn (and the parts of SciPy it pulls in) only for its scikit-learn-style
wrappers, which the training process does not use (it fits with XGBoost's native API and
computes its metrics with numpy). That is more than half of the process's start-up.
"""

from __future__ import annotations

from typing import Any


def main(*args: Any) -> None:
    from clm_tray.core.ml.lean_imports import keep_scikit_learn_out

    end_with_parent()  # before the slow imports: an orphan stops even while importing
    keep_scikit_learn_out()
    from clm_tray.core.ml.training import _child_main

    _child_main(*args)


_watching = False


def end_with_parent() -> None:
    """An orphaned child must not train on: exit as soon as the parent process is gone.
    Idempotent: one watcher per process."""
    global _watching
    import multiprocessing
    import os
    import threading

    parent = multiprocessing.parent_process()
    if parent is None or _watching:
        return
    _watching = True

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="clm-tray-parent-watch", daemon=True).start()
