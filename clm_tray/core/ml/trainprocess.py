"""The cycle's side of the training process: start it, relay its rounds, stop it, read its answer.

Why a process: training can be stopped at any moment (Cancel, ``QT_CLM_TRAIN_TIMEOUT``, the
app quitting) and its memory goes back to the system when it ends. The process is a supervised
child (core/supervised.py) running ``trainchild.main``; this module only imports light modules,
so the cycle's process never imports XGBoost to train.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clm_tray.core import supervised
from clm_tray.core.errors import TrainingCancelled, TrainingError, TrainingTimeout
from clm_tray.core.ml import trainchild
from clm_tray.core.ml.train_result import TrainParams, TrainResult

#: File name of the model the child writes into ``workdir``.
MODEL_NAME = "model.ubj"
#: How long a child training on Dask gets to stop its cluster job before it is terminated
#: (a local fit has nothing to finish: it is terminated at once).
DASK_STOP_SECONDS = 10.0


#: Data files up to this size get their training process started before the load
#: (``starts_early``). Above it the load takes far longer than the process's start-up, and
#: the ~130 MB the waiting process holds would add to the load's own peak (10 M rows).
START_EARLY_MAX_BYTES = 256 * 1024 * 1024


def starts_early(data_path: Path) -> bool:
    """Whether the cycle should start its training process before loading ``data_path``."""
    try:
        return Path(data_path).stat().st_size <= START_EARLY_MAX_BYTES
    except OSError:  # missing or unreadable: the load says so in one line
        return False


class TrainingProcess:
    """A training process started ahead of its job, so its start-up is off the cycle's path.

    Starting a process that imports pandas and XGBoost takes about a second; started when the
    cycle begins loading its data, that second passes while the file is read (two cores do
    both at once). ``train`` then hands it the job; ``close`` ends it whether it trained or
    not (a cycle that found its data unchanged, or failed to load it, never sends a job).
    Use it as a context manager.
    """

    def __init__(self, *, dask_scheduler: str = "") -> None:
        import multiprocessing

        self._dask_scheduler = dask_scheduler
        self._grace = DASK_STOP_SECONDS if dask_scheduler else 0.0
        jobs_in, self._jobs = multiprocessing.get_context("spawn").Pipe(duplex=False)
        self._supervisor = supervised.Supervisor(
            trainchild.main, (jobs_in,), name="clm-tray-train", relay_logs=True,
            hard_exit=True,
            # A LocalCluster's workers are this child's children, which a daemon may not have;
            # the child still ends with us (ParentDeath.EXIT) and its workers with it.
            daemon=not dask_scheduler,
        ).start()
        jobs_in.close()  # the child holds the only read end now
        self._used = False

    def __enter__(self) -> TrainingProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the process (at once when it never got a job); idempotent."""
        with contextlib.suppress(OSError):
            self._jobs.close()
        self._supervisor.stop(0.0 if not self._used else self._grace)

    def train(
        self,
        data_path: Path | str,
        *,
        target: str,
        features: list[str] | None,
        params: TrainParams,
        workdir: Path,
        timeout: float,
        cancel: threading.Event | None = None,
        coerce_bad_cells: bool = False,
        on_round: Callable[[int, int], None] | None = None,
        encoding: str | None = None,
    ) -> TrainResult:
        """Load the data and train in the process; it can be stopped at any time.

        ``on_round(done, total)`` is called here (in the caller's thread) as the child reports
        boosting rounds.

        The child writes ``workdir/model.ubj`` (an earlier one is removed first). On timeout
        the child is stopped and ``TrainingTimeout`` raised, on ``cancel``
        ``TrainingCancelled``. A ``ClmError`` in the child (e.g. ``DataError``) is raised here
        again with the same class and one-line message; a crash (e.g. killed for memory) is a
        ``TrainingError`` naming how it ended. On any failure nothing is left in ``workdir``
        that could be taken for a model.

        With the process's ``dask_scheduler`` (QT_CLM_DASK_SCHEDULER) it trains on a Dask
        cluster from the same child (``dask_training``), so stopping the child stops the
        cluster job.
        """
        if self._used:
            raise RuntimeError("a TrainingProcess trains once")
        self._used = True
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        model = workdir / MODEL_NAME
        _discard(workdir)
        # A child that already died answers the wait below with how it ended.
        with contextlib.suppress(OSError):
            self._jobs.send((str(data_path), target, list(features) if features else None,
                             params, str(model), coerce_bad_cells, self._dask_scheduler,
                             encoding))
        try:
            result: TrainResult = self._supervisor.wait(
                cancel=cancel, timeout=timeout, cancel_grace=self._grace,
                stop_grace=self._grace, on_progress=on_round)
        except supervised.Cancelled:
            _discard(workdir)
            raise TrainingCancelled(
                "Training was cancelled and its process stopped; nothing was saved.") from None
        except supervised.TimedOut:
            _discard(workdir)
            raise TrainingTimeout(
                f"Training ran longer than QT_CLM_TRAIN_TIMEOUT={timeout:g} s and was stopped; "
                "raise QT_CLM_TRAIN_TIMEOUT or use less data.") from None
        except supervised.Died as exc:
            _discard(workdir)
            raise TrainingError(f"The training process {exc.reason} without a result; see "
                                "the log, or use less data if memory is short.") from None
        except supervised.Crashed as exc:
            _discard(workdir)
            raise TrainingError(f"Training failed in the child process: {exc.reason}") \
                from None
        except BaseException:
            _discard(workdir)
            raise
        if cancel is not None and cancel.is_set():  # it ended as we asked it to stop: a cancel
            _discard(workdir)
            raise TrainingCancelled("Training was cancelled; nothing was saved.")
        if result is None or not model.exists():
            _discard(workdir)
            raise TrainingError("The training process answered without writing a model; see "
                                "the log and retrain.")
        result.model_path = str(model)
        return result


def train_in_child(data_path: Path | str, *, dask_scheduler: str = "", **job: Any
                   ) -> TrainResult:
    """Start a training process and train in it at once (``TrainingProcess.train``'s
    arguments); for callers with nothing to do while it starts."""
    with TrainingProcess(dask_scheduler=dask_scheduler) as process:
        return process.train(data_path, **job)


def _discard(workdir: Path) -> None:
    """Remove whatever a stopped child may have left, so no partial model survives."""
    for p in (workdir / MODEL_NAME, *workdir.glob(".*.tmp")):
        with contextlib.suppress(OSError):
            p.unlink()
