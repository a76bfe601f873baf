"""Train on a Dask cluster (``QT_CLM_DASK_SCHEDULER``) when the data outgrows one computer.

Why a second trainer and not a home-made one: XGBoost ships distributed training
(``xgboost.dask``); this module only feeds it the same slices the local trainer uses
(``training.time_cutoffs`` decides the cut-offs for both), scores the out-of-time test rows
with the same function (``training.score_out_of_time``) and saves the same native model file
(``training.save_model``), so versioning, the shadow test, deploy and the backends cannot tell
where a model was trained. Only the manifest says so (``trainer``, scheduler, workers).

Only the training child imports this module, and only when the setting asks for it: the tray,
the daemon and the engine never import dask or distributed otherwise.

The code that runs ON the workers (reading partitions, the per-round callback, prediction)
lives in this module and travels to them by value (cloudpickle), so workers need dask, pandas,
pyarrow and xgboost (the same version), never clm-tray.

Stopping: the child that holds the Client is told to stop (SIGTERM) on Cancel or timeout; it
flags the job on every worker, and the workers' round callback (which agrees through an
allreduce) makes them all leave the boosting loop in the same round; a child that is killed
outright disconnects, the scheduler cancels its tasks, and the same callback notices that too.
XGBoost's per-worker training lock can outlive a stopped job (seen after Cancel here), so the
next training frees locks that no running training holds (``_free_stale_locks``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import pandas as pd

from clm_tray.core.errors import ClmError, DataError, TrainingCancelled, TrainingError
from clm_tray.core.ml.training import (
    TrainParams,
    TrainResult,
    _importance,
    save_model,
    score_out_of_time,
    time_cutoffs,
)
from clm_tray.core.serialize import to_jsonable

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

# Functions below run on the workers: ship them by value, not as "import clm_tray...".
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _shipped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a closure: plain pickle refuses closures, so Dask falls back to cloudpickle,
    which (module registered above) sends this module's code by value."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return call

#: Seconds to wait for a remote scheduler to answer and for it to have a worker.
CONNECT_SECONDS = 10.0
#: How often the child checks the scheduler, the workers and the stop request while training.
WATCH_SECONDS = 0.25
#: Seconds the workers get to stop together after a stop request before the child leaves
#: (the parent waits a little longer before it kills the child: training.DASK_STOP_SECONDS).
STOP_GRACE_SECONDS = 6.0

_PARQUET = (".parquet", ".pq")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
_TS, _PART, _POS = "__ts_ns", "__part", "__pos"


# ---- addresses and connecting ---------------------------------------------------------------
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


# ---- reading the data as a dask.dataframe (worker-side functions first) ---------------------
def _epoch_unit(values: np.ndarray) -> str:
    top = float(np.nanmax(np.abs(values))) if values.size else 0.0
    return "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"


def _timestamps_ns(col: pd.Series) -> np.ndarray:
    """The same readings as the local loader: ISO text (any offset), datetimes (naive = UTC),
    epoch seconds/milliseconds told apart by size."""
    from pandas.api import types as ptypes

    if isinstance(col.dtype, pd.DatetimeTZDtype):
        out = col.dt.tz_convert("UTC")
    elif ptypes.is_datetime64_dtype(col):
        out = col.dt.tz_localize("UTC")
    elif ptypes.is_numeric_dtype(col):
        arr = col.to_numpy(dtype=np.float64)
        out = pd.to_datetime(col, unit=_epoch_unit(arr), utc=True)
    else:
        text = col.astype(str).str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        if len(text) and numeric.notna().all():
            arr = numeric.to_numpy(dtype=np.float64)
            out = pd.to_datetime(numeric, unit=_epoch_unit(arr), utc=True)
        else:
            out = pd.to_datetime(text, utc=True, format="ISO8601")
    return pd.DatetimeIndex(out).as_unit("ns").asi8


def _as_label(col: pd.Series) -> np.ndarray:
    """0/1 as float (NaN when empty); text true/false too, as the local loader reads it."""
    from pandas.api import types as ptypes

    if ptypes.is_bool_dtype(col) or ptypes.is_numeric_dtype(col):
        return col.astype("float64").to_numpy(na_value=np.nan)
    mapped = col.astype(str).str.strip().str.lower().map(
        {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0})
    mapped[col.isna()] = np.nan
    return mapped.to_numpy(dtype=np.float64, na_value=np.nan)


def _prepare_partition(part: pd.DataFrame, features: list[str], label: str, derive: bool,
                       partition_info: dict | None = None) -> pd.DataFrame:
    """Parse one partition: int64 ns times, float32 features (inf → NaN), the label source,
    and the row's place in the file (so duplicates keep the first row, as locally)."""
    out = pd.DataFrame({
        _TS: _timestamps_ns(part["timestamp"]),
        "symbol": part["symbol"].astype(str).to_numpy(),
        _PART: np.int32((partition_info or {}).get("number", 0)),
        _POS: np.arange(len(part), dtype=np.int64),
    })
    for name in features:
        values = pd.to_numeric(part[name], errors="coerce").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
        out[name] = np.where(np.isinf(values), np.nan, values).astype(np.float32)
    source = pd.to_numeric(part["close"], errors="coerce") if derive else None
    out[label] = (source.to_numpy(dtype=np.float64, na_value=np.nan) if derive
                  else _as_label(part[label]))
    return out


def _finish_partition(part: pd.DataFrame, features: list[str], label: str, derive: bool
                      ) -> pd.DataFrame:
    """One partition holding whole symbols: drop repeated (symbol, time) rows keeping the first
    in the file, derive next-bar direction from 'close' when there is no label column, and
    drop rows without a label. Columns out: time, features, label (int8)."""
    part = part.sort_values(["symbol", _TS, _PART, _POS], kind="stable")
    part = part[~part.duplicated(["symbol", _TS], keep="first")]
    values = part[label].to_numpy(dtype=np.float64)
    if derive:
        sym = part["symbol"].to_numpy()
        nxt = np.empty_like(values)
        nxt[:-1] = values[1:]
        if len(nxt):
            nxt[-1] = np.nan
        last_of_symbol = np.append(sym[1:] != sym[:-1], True) if len(sym) else sym.astype(bool)
        nxt[last_of_symbol] = np.nan
        values = np.where(np.isnan(values) | np.isnan(nxt), np.nan,
                          (nxt > values).astype(np.float64))
    keep = ~np.isnan(values)
    out = part.loc[keep, [_TS, *features]].reset_index(drop=True)
    out[label] = values[keep].astype(np.int8)
    return out


def _predict_partition(part: pd.DataFrame, model: bytes, features: list[str], label: str
                       ) -> pd.DataFrame:
    import xgboost

    booster = xgboost.Booster(model_file=bytearray(model))
    p = booster.inplace_predict(part[features].to_numpy(dtype=np.float32)) if len(part) \
        else np.empty(0)
    return pd.DataFrame({"ts": part[_TS].to_numpy(dtype=np.int64),
                         "y": part[label].to_numpy(dtype=np.int8),
                         "p": np.asarray(p, dtype=np.float32)})


def read_frame(path: Path, label: str, features: list[str], workers: int = 1) -> Any:
    """The training data as a dask.dataframe: a CSV, a Parquet file, or a folder of Parquet
    files (hive partitions such as ``symbol=BTCUSDT/`` become columns). Shuffled so that each
    partition holds whole symbols (duplicates and the derived target need a symbol's bars
    together) into at least one partition per worker, so that every worker trains."""
    import dask.dataframe as dd

    suffix = path.suffix.lower()
    if path.is_dir() or suffix in _PARQUET:
        raw = dd.read_parquet(str(path))
    else:
        blocksize = None if suffix in _COMPRESSED else "64MB"
        raw = dd.read_csv(str(path), blocksize=blocksize, assume_missing=True,
                          dtype={"timestamp": "object", "symbol": "object"})
    raw.columns = [str(c).strip() for c in raw.columns]
    derive = label not in raw.columns
    wanted = ["timestamp", "symbol", *features, "close" if derive else label]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise DataError(f"{path} has no '{missing[0]}' column, which training needs; add it or "
                        "fix the feature list.")
    meta = pd.DataFrame({_TS: pd.Series(dtype="int64"), "symbol": pd.Series(dtype="object"),
                         _PART: pd.Series(dtype="int32"), _POS: pd.Series(dtype="int64"),
                         **{f: pd.Series(dtype="float32") for f in features},
                         label: pd.Series(dtype="float64")})
    prepared = raw[wanted].map_partitions(_shipped(_prepare_partition), features, label, derive,
                                          meta=meta)
    grouped = prepared.shuffle(on="symbol", npartitions=max(workers, prepared.npartitions))
    meta_out = pd.DataFrame({_TS: pd.Series(dtype="int64"),
                             **{f: pd.Series(dtype="float32") for f in features},
                             label: pd.Series(dtype="int8")})
    return grouped.map_partitions(_shipped(_finish_partition), features, label, derive,
                                  meta=meta_out)


# ---- progress and stopping (run on the workers) ---------------------------------------------
def _round_callback(total: int, topic: str, stop_name: str) -> Any:
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
            if getattr(worker, "clm_tray_stop", None) == stop_name:  # set by _ask_to_stop
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


def _flag_stop(stop_name: str, dask_worker: Any = None) -> None:
    """On each worker: mark the job ``stop_name`` as stopped (read by the round callback)."""
    dask_worker.clm_tray_stop = stop_name


def _free_stale_locks(workers: list[str], dask_scheduler: Any = None) -> int:
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


# ---- the trainer ----------------------------------------------------------------------------
class _StopRequested(Exception):
    """SIGTERM from the parent: Cancel or timeout."""


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

    def stop(_signum: int, _frame: Any) -> None:
        raise _StopRequested

    previous = signal.signal(signal.SIGTERM, stop)
    shown = public_address(setting)
    try:
        with dask.config.set({"dataframe.shuffle.method": "tasks"}), \
                cluster_client(setting) as (client, shown):
            try:
                return _train(client, shown, path, target, features, params, Path(model_path),
                              on_round, started)
            except (ClmError, _StopRequested):
                raise
            except Exception as exc:
                raise _one_line(exc, client, shown, path) from exc
    except _StopRequested:
        raise TrainingCancelled("Training on the Dask cluster was stopped; nothing was "
                                "saved.") from None
    except ClmError:
        raise
    except Exception as exc:  # the cluster itself failed to start or to close
        raise TrainingError(f"Training on the Dask cluster at {shown} failed: "
                            f"{_first_line(exc)}") from exc
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    stats = frame.groupby(_TS)[label].agg(["sum", "count"]).compute().sort_index()
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

    m_train, m_val, m_test = cut.masks(frame[_TS])
    train, val, test = frame[m_train], frame[m_val], frame[m_test]
    dtrain = dxgb.DaskQuantileDMatrix(client, train[features], train[label])
    dval = dxgb.DaskQuantileDMatrix(client, val[features], val[label], ref=dtrain)
    freed = client.run_on_scheduler(_shipped(_free_stale_locks),
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
                callbacks=[_round_callback(params.n_estimators, topic, stop_name)],
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the watching thread
            box["error"] = exc

    thread = threading.Thread(target=fit, name="clm-tray-dask-train", daemon=True)
    thread.start()
    try:
        _watch(client, shown, thread)
    except _StopRequested:
        with contextlib.suppress(Exception):  # every worker stops in the same round
            client.run(_shipped(_flag_stop), stop_name)
            thread.join(STOP_GRACE_SECONDS)
        raise
    if "error" in box:
        raise box["error"]
    booster = box["out"]["booster"]
    best = booster.best_iteration if params.early_stopping else None
    booster, best = save_model(booster, best, model_path)

    model = bytes(booster.save_raw(raw_format="ubj"))
    scored = [part.map_partitions(_shipped(_predict_partition), model, features, label,
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
        metrics=metrics, importance=_importance(booster, list(features)), leakage=leak,
        leakage_reason=reason, split=info, params=asdict(params),
        duration_s=time.perf_counter() - started, model_path=str(model_path),
        features=list(features), edge=to_jsonable(edge),
        trainer={"trainer": "dask", "dask_scheduler": shown, "dask_workers": workers},
    )


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
            raise TrainingError(f"Lost the Dask scheduler at {shown} during training; nothing "
                                "was saved. Check the scheduler and retrain.")
        if time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            try:
                now = set(client.scheduler_info()["workers"])
            except Exception as exc:  # noqa: BLE001 - the scheduler went away meanwhile
                raise TrainingError(f"Lost the Dask scheduler at {shown} during training; "
                                    "nothing was saved. Check the scheduler and retrain."
                                    ) from exc
            gone = sorted(workers - now)
            if gone:
                raise TrainingError(f"The Dask worker {gone[0]} left the cluster at {shown} "
                                    "during training; nothing was saved. Check the workers' "
                                    "memory and retrain.")
