"""Train on a Dask cluster (``QT_CLM_DASK_SCHEDULER``) when the data outgrows one computer.

Why a second trainer and not a home-made one: XGBoost ships distributed training
(``xgboost.dask``); this module only feeds it the same slices the local trainer uses
(``split.time_cutoffs`` decides the cut-offs for both), scores the out-of-time test rows with
the same function (``scoring.score_out_of_time``) and saves the same native model file
(``modelfile.save_model``), so versioning, the shadow test, deploy and the backends cannot tell
where a model was trained. Only the manifest says so (``trainer``, scheduler, workers).

Only the training process imports this module, and only when the setting asks for it: the
tray, the daemon and the engine never import dask or distributed otherwise. Connecting lives in
dask_cluster.py, reading the data on the workers in dask_frame.py, the workers' round callback
and stop flag in dask_rounds.py.

Stopping: the training process runs this inside ``Child.raise_when_stopped`` (supervised_child.py):
on Cancel or timeout ``StopRequested`` is raised here, the job is flagged on every worker and
they all leave the boosting loop in the same round (dask_rounds.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clm_tray.core.errors import ClmError, DataError, TrainingCancelled, TrainingError
from clm_tray.core.ml.dask_cluster import cluster_client, public_address
from clm_tray.core.ml.dask_frame import TS, predict_partition, read_frame, shipped
from clm_tray.core.ml.dask_rounds import flag_stop, free_stale_locks, round_callback
from clm_tray.core.ml.modelfile import save_model
from clm_tray.core.ml.scoring import importance, score_out_of_time
from clm_tray.core.ml.split import time_cutoffs
from clm_tray.core.ml.train_result import TrainParams, TrainResult
from clm_tray.core.serialize import to_jsonable
from clm_tray.core.supervised_child import StopRequested

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

#: How often the training process checks the scheduler and the workers while training.
WATCH_SECONDS = 0.25
#: Seconds the workers get to stop together after a stop request before this process leaves
#: (the parent waits a little longer before it ends it: trainprocess.DASK_STOP_SECONDS).
STOP_GRACE_SECONDS = 6.0


def train_on_dask(
    data_path: Path | str, *, setting: str, target: str, features: list[str],
    params: TrainParams, model_path: Path, on_round: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Fit and evaluate on the cluster named by ``setting`` (``local``, ``local:N`` or a
    scheduler address); the result has exactly the local trainer's shape."""
    import dask

    started = time.perf_counter()
    path = Path(data_path).expanduser()
    if not path.exists():
        raise DataError(f"Training data {path} does not exist; point QT_CLM_DATA_PATH at it.")

    shown = public_address(setting)
    try:
        with dask.config.set({"dataframe.shuffle.method": "tasks"}), \
                cluster_client(setting) as (client, shown):
            try:
                return _train(client, shown, path, target, features, params, Path(model_path),
                              on_round, started)
            except (ClmError, StopRequested):
                raise
            except Exception as exc:
                raise _one_line(exc, client, shown, path) from exc
    except StopRequested:
        raise TrainingCancelled("Training on the Dask cluster was stopped; nothing was "
                                "saved.") from None
    except ClmError:
        raise
    except Exception as exc:  # the cluster itself failed to start or to close
        raise TrainingError(f"Training on the Dask cluster at {shown} failed: "
                            f"{_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"


def _one_line(exc: BaseException, client: Client, shown: str, path: Path) -> ClmError:
    if client.status not in ("running", "newly-created"):
        return TrainingError(f"Lost the Dask scheduler at {shown} during training; nothing "
                             "was saved. Check the scheduler and retrain.")
    if isinstance(exc, OSError):
        return DataError(f"A Dask worker cannot read the training data at {path} "
                         f"({_first_line(exc)}); make it available at the same path on every "
                         "worker.")
    return TrainingError(f"Training on the Dask cluster at {shown} failed: {_first_line(exc)}")


def _train(client: Client, shown: str, path: Path, label: str, features: list[str],
           params: TrainParams, model_path: Path, on_round: Callable[[int, int], None] | None,
           started: float) -> TrainResult:
    import dask
    import xgboost.dask as dxgb

    workers = len(client.scheduler_info()["workers"])
    frame = client.persist(read_frame(path, label, features, workers))
    stats = frame.groupby(TS)[label].agg(["sum", "count"]).compute().sort_index()
    unique_ts = stats.index.to_numpy(dtype=np.int64)
    counts = stats["count"].to_numpy(dtype=np.int64)
    positives = stats["sum"].to_numpy(dtype=np.int64)
    cut = time_cutoffs(unique_ts, params, int(counts.sum()))
    in_train, in_val, in_test = cut.masks(unique_ts)
    n_train, n_val, n_test = (int(counts[m].sum()) for m in (in_train, in_val, in_test))
    trained = unique_ts[in_train]
    info = cut.split_info(int(trained.min()) if trained.size else cut.first,
                          int(trained.max()) if trained.size else cut.first,
                          n_train, n_val, n_test)
    for name, mask, n in (("training", in_train, n_train), ("test", in_test, n_test)):
        pos = int(positives[mask].sum())
        if pos in (0, n):
            raise cut.too_little_time(f"the {name} slice holds only target class "
                                      f"{int(pos == n)}")
    majority = int(positives[in_train].sum() / n_train >= 0.5)

    m_train, m_val, m_test = cut.masks(frame[TS])
    train, val, test = frame[m_train], frame[m_val], frame[m_test]
    dtrain = dxgb.DaskQuantileDMatrix(client, train[features], train[label])
    dval = dxgb.DaskQuantileDMatrix(client, val[features], val[label], ref=dtrain)
    freed = client.run_on_scheduler(shipped(free_stale_locks),
                                    list(client.scheduler_info()["workers"]))
    if freed:
        log.warning("freed %d worker lock(s) left by a training that was killed", freed)

    topic = f"clm-tray-rounds-{uuid.uuid4().hex}"
    stop_name = f"clm-tray-stop-{uuid.uuid4().hex}"
    if on_round is not None:
        client.subscribe_topic(topic, lambda event: on_round(int(event[1]["round"]),
                                                             int(event[1]["total"])))
    booster_params = {
        "objective": "binary:logistic", "tree_method": "hist", "max_depth": params.max_depth,
        "eta": params.learning_rate, "seed": params.seed, "eval_metric": "logloss",
    }
    box: dict[str, Any] = {}

    def fit() -> None:
        try:
            box["out"] = dxgb.train(
                client, booster_params, dtrain, num_boost_round=params.n_estimators,
                evals=[(dval, "validation")], early_stopping_rounds=params.early_stopping or None,
                verbose_eval=False,
                callbacks=[round_callback(params.n_estimators, topic, stop_name)],
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the watching thread
            box["error"] = exc

    thread = threading.Thread(target=fit, name="clm-tray-dask-train", daemon=True)
    thread.start()
    try:
        _watch(client, shown, thread)
    except StopRequested:
        with contextlib.suppress(Exception):  # every worker stops in the same round
            client.run(shipped(flag_stop), stop_name)
            thread.join(STOP_GRACE_SECONDS)
        raise
    if "error" in box:
        raise box["error"]
    booster = box["out"]["booster"]
    best = booster.best_iteration if params.early_stopping else None
    booster, best = save_model(booster, best, model_path)

    model = bytes(booster.save_raw(raw_format="ubj"))
    scored = [part.map_partitions(shipped(predict_partition), model, features, label,
                                  meta={"ts": "int64", "y": "int8", "p": "float32"})
              for part in (train, val, test)]
    hits = [((s["p"] > 0.5) == (s["y"] == 1)).mean() for s in scored[:2]]
    train_acc, val_acc, test_rows = dask.compute(*hits, scored[2])
    test_metrics, leak, reason, edge = score_out_of_time(
        test_rows["y"].to_numpy(), test_rows["p"].to_numpy(), test_rows["ts"].to_numpy(),
        majority, params.leak_margin)
    metrics = {"train_accuracy": float(train_acc), "val_accuracy": float(val_acc),
               **test_metrics, "best_iteration": best,
               "n_trees": int(booster.num_boosted_rounds())}
    return TrainResult(
        metrics=metrics, importance=importance(booster, list(features)), leakage=leak,
        leakage_reason=reason, split=info, params=asdict(params),
        duration_s=time.perf_counter() - started, model_path=str(model_path),
        features=list(features), edge=to_jsonable(edge),
        trainer={"trainer": "dask", "dask_scheduler": shown, "dask_workers": workers},
    )


def _scheduler_lost(shown: str) -> TrainingError:
    return TrainingError(f"Lost the Dask scheduler at {shown} during training; nothing was "
                         "saved. Check the scheduler and retrain.")


def _still_connected(client: Client, seconds: float = 3.0) -> bool:
    """Whether the client still has its scheduler a moment later: a scheduler that is shutting
    down lets its workers go first, so "workers left" may really be "the scheduler went"."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if client.status != "running":
            return False
        time.sleep(0.1)
    return client.status == "running"


def _watch(client: Client, shown: str, thread: threading.Thread) -> None:
    """Wait for the training thread while watching the cluster: a lost scheduler or a worker
    that leaves mid-training ends training at once with one line (XGBoost would wait)."""
    workers = set(client.scheduler_info()["workers"])
    checked = time.monotonic()
    while thread.is_alive():
        thread.join(WATCH_SECONDS)
        if not thread.is_alive():
            return
        if client.status != "running":
            raise _scheduler_lost(shown)
        if time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            try:
                now = set(client.scheduler_info()["workers"])
            except Exception as exc:  # noqa: BLE001 - the scheduler went away meanwhile
                raise _scheduler_lost(shown) from exc
            gone = sorted(workers - now)
            if gone and not _still_connected(client):
                raise _scheduler_lost(shown)
            if gone:
                raise TrainingError(f"The Dask worker {gone[0]} left the cluster at {shown} "
                                    "during training; nothing was saved. Check the workers' "
                                    "memory and retrain.")
