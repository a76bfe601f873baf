"""Progress and stopping for training on a Dask cluster: code that runs on the workers and on
the scheduler, shipped there by value (see dask_frame.py).

Stopping: the training process flags the job on every worker (``flag_stop``) and the workers'
round callback (which agrees through an allreduce) makes them all leave the boosting loop in
the same round; a client that is killed outright disconnects, the scheduler cancels its tasks,
and the same callback notices that too. XGBoost's per-worker training lock can outlive a stopped
job (seen after Cancel here), so the next training frees locks that no running training holds
(``free_stale_locks``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import cloudpickle
import numpy as np

# Functions below run on the workers and the scheduler: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def round_callback(total: int, topic: str, stop_name: str) -> Any:
    """An XGBoost callback for the workers: rank 0 reports the round to the client (throttled),
    and all workers stop together in the same round when the job was cancelled."""
    import xgboost
    from xgboost import collective

    class RoundsAndStop(xgboost.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.reported = 0.0

        def _cancelled(self) -> bool:
            from distributed import get_worker
            from distributed.worker import thread_state

            worker = get_worker()
            if getattr(worker, "clm_tray_stop", None) == stop_name:  # set by flag_stop
                return True
            task = worker.state.tasks.get(getattr(thread_state, "key", None))
            return task is not None and task.state in ("cancelled", "released", "forgotten")

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            from distributed import get_worker

            now = time.monotonic()
            stop = 0
            with contextlib.suppress(Exception):  # no answer is no stop request
                stop = int(self._cancelled())
            # Every worker must agree, or one would wait forever for the others' histograms.
            flag = collective.allreduce(np.array([stop], dtype=np.int32), collective.Op.MAX)
            if collective.get_rank() == 0 and (now - self.reported >= 0.2
                                               or epoch + 1 == total):
                self.reported = now
                with contextlib.suppress(Exception):
                    get_worker().log_event(topic, {"round": epoch + 1, "total": total})
            return bool(flag[0])

    return RoundsAndStop()


def flag_stop(stop_name: str, dask_worker: Any = None) -> None:
    """On each worker: mark the job ``stop_name`` as stopped (read by the round callback)."""
    dask_worker.clm_tray_stop = stop_name


def free_stale_locks(workers: list[str], dask_scheduler: Any = None) -> int:
    """On the scheduler: XGBoost holds a lock per worker while it trains and frees it when
    training returns; a client killed mid-training never frees it, and every later training
    on those workers would wait forever. When no XGBoost training runs, such holders are
    stale: free them. Returns how many were freed."""
    ext = dask_scheduler.extensions.get("multi_locks")
    if ext is None:
        return 0
    busy = {"processing", "waiting", "no-worker", "queued"}
    if any(str(key).startswith("do_train") and task.state in busy
           for key, task in dask_scheduler.tasks.items()):
        return 0
    freed = 0
    for name in workers:
        holders = ext.locks.get(name) or []
        while holders and holders[0] not in ext.events and holders[0] in ext.requests:
            ext.release(id=holders[0])
            freed += 1
            holders = ext.locks.get(name) or []
    return freed
