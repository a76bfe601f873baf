"""The training process's side: load the data, train, return the result (see trainprocess.py).

This module is what the spawned child imports first, so it imports nothing heavy at the top:
the child can then keep scikit-learn out before XGBoost is imported. XGBoost imports
scikit-learn (and the parts of SciPy it pulls in) only for its scikit-learn-style wrappers,
which the training process does not use (it fits with XGBoost's native API and computes its
metrics with numpy). That is more than half of the process's start-up.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from clm_tray.core.errors import TrainingCancelled, TrainingError, is_disk_full
from clm_tray.core.ml.train_result import TrainParams, TrainResult
from clm_tray.core.supervised_child import Child, StopRequested
from clm_tray.core.supervised_wire import POLL_SECONDS

_DISK_FULL = ("disk full: the training process could not write in {}; free some space on "
              "that disk (or point QT_CLM_STORE_DIR at a disk with room) and retry")


def main(child: Child, jobs: Connection) -> TrainResult | None:
    """Import what training needs, then wait for the job on ``jobs`` and run it.

    The process is started before the cycle has loaded its data (trainprocess.TrainingProcess),
    so pandas and XGBoost are imported while the cycle reads the file. The job is the tuple of
    ``train``'s arguments; None (the cycle decided not to train), a closed pipe or the stop flag
    ends the process without training.
    """
    from clm_tray.core.ml.lean_imports import keep_scikit_learn_out

    lower_priority()
    keep_scikit_learn_out()
    _warm_up()
    job = _next_job(child, jobs)
    if job is None:
        return None
    return train(child, *job)


def train(child: Child, data_path: str, target: str, features: list[str] | None,
          params: TrainParams, model_path: str, coerce_bad_cells: bool = False,
          dask_scheduler: str = "", encoding: str | None = None) -> TrainResult:
    """Train on ``data_path`` and save the model to ``model_path``; boosting rounds go to the
    parent as progress. With ``dask_scheduler`` this process holds the Dask client and
    trains on the cluster, leaving it cleanly when the parent asks it to stop."""
    try:
        if dask_scheduler:
            return _train_on_cluster(child, data_path, target, features, params,
                                     Path(model_path), dask_scheduler)
        return _train_here(child, data_path, target, features, params, Path(model_path),
                           coerce_bad_cells, encoding)
    except OSError as exc:  # a full disk first: it is the user's to fix, not a bug
        if is_disk_full(exc):
            raise TrainingError(_DISK_FULL.format(Path(model_path).parent)) from exc
        raise


#: How much lower than its parent's the training process's CPU priority is (Unix nice steps).
NICE_STEPS = 10


def lower_priority() -> None:
    """Train below normal CPU priority: on a busy machine the trading backend, the desktop
    and the tray come first, and on an idle one training loses nothing. A process can lower
    its own priority without rights (Unix: nice +10; Windows: below normal priority class)."""
    import contextlib
    import os
    import sys

    with contextlib.suppress(OSError, AttributeError):
        if sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), 0x4000)  # BELOW_NORMAL
        else:
            os.nice(NICE_STEPS)


def _warm_up() -> None:
    """The modules every local training needs (pandas, pyarrow, XGBoost): imported first."""
    from clm_tray.core.ml import batches, prepared, training  # noqa: F401


def _next_job(child: Child, jobs: Connection) -> tuple[Any, ...] | None:
    """The job the cycle sends once its data is ready; None when it sends none."""
    try:
        while not jobs.poll(POLL_SECONDS):
            if child.stopping():
                return None
        job = jobs.recv()
    except (EOFError, OSError):  # the cycle closed the pipe: no training this time
        return None
    return tuple(job) if job is not None else None


def _train_here(child: Child, data_path: str, target: str, features: list[str] | None,
                params: TrainParams, model_path: Path, coerce_bad_cells: bool,
                encoding: str | None) -> TrainResult:
    """The cycle hands over its one validated load as an Arrow file (prepared.py): large data
    is streamed from it batch by batch (batches.py), the rest read whole. Any other path is
    the training file itself, loaded and validated here."""
    from clm_tray.core.ml import prepared
    from clm_tray.core.ml.batches import stream_rows, train_streaming
    from clm_tray.core.ml.training import train_and_evaluate

    if not data_path.endswith(prepared.SUFFIX):
        from clm_tray.core.ml.data import load_dataset

        dataset = load_dataset(data_path, target=target, features=features,
                               coerce_bad_cells=coerce_bad_cells, encoding=encoding)
    elif prepared.read_meta(data_path)["fingerprint"]["rows"] > stream_rows():
        return train_streaming(data_path, params, model_path, child.progress)
    else:
        dataset = prepared.read_prepared(data_path)
    return train_and_evaluate(dataset, params, model_path, child.progress)


def _train_on_cluster(child: Child, data_path: str, target: str, features: list[str] | None,
                      params: TrainParams, model_path: Path, setting: str) -> TrainResult:
    try:
        from clm_tray.core.ml.dask_training import train_on_dask
    except ImportError:  # the [dask] extra; the built app leaves Dask out
        raise TrainingError(
            "training on a Dask cluster needs Dask, which is not installed here: install "
            "clm-tray with pip install 'clm-tray[dask]' (the built app has no Dask), "
            "or leave QT_CLM_DASK_SCHEDULER empty to train on this computer"
        ) from None

    try:
        with child.raise_when_stopped():
            return train_on_dask(data_path, setting=setting, target=target,
                                 features=list(features or []), params=params,
                                 model_path=model_path, on_round=child.progress)
    except StopRequested:  # the stop came while leaving the cluster: the parent stops us
        raise TrainingCancelled("Training on the Dask cluster was stopped; nothing was "
                                "saved.") from None
