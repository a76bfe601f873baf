"""Fit an XGBoost model and evaluate it honestly: out of time, against a baseline, for leaks.

Why this module exists: a model that looks good only because it saw the future is worse than
no model. So the data is split by global timestamp cutoffs, never at random:

    train | embargo | validation (early stopping) | embargo | test (last ``test_fraction`` of time)

and the test rows are scored against the majority-class baseline. An edge over that baseline
that is too large for next-bar direction prediction is flagged as probable leakage.

Training normally runs in a child process (``train_in_child``) so it can be killed on timeout
or cancel and its memory goes back to the system when it ends. Models are saved only in
XGBoost's native UBJSON format (``.ubj``); nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost

from clm_tray.core import errors
from clm_tray.core.errors import (
    ClmError,
    ConfigError,
    DataError,
    StoreError,
    TrainingCancelled,
    TrainingError,
    TrainingTimeout,
    is_disk_full,
)
from clm_tray.core.fsutil import atomic_write_bytes, atomic_write_text
from clm_tray.core.ml import trainchild
from clm_tray.core.ml.edge import EdgeResult, edge_test
from clm_tray.core.ml.metrics import log_loss, roc_auc_score
from clm_tray.core.serialize import to_jsonable

if TYPE_CHECKING:
    from clm_tray.core.config.settings import Settings
    from clm_tray.core.ml.data import Dataset

#: Fewest rows any of train / validation / test may hold.
MIN_SLICE_ROWS = 50
#: An out-of-time ROC AUC above this is implausible for next-bar direction prediction.
AUC_LEAK = 0.75
#: How often the parent looks at the child, the timeout and the cancel flag (seconds).
POLL_SECONDS = 0.1
#: How long a child training on Dask gets to stop its cluster job before it is killed.
DASK_STOP_SECONDS = 10.0
#: File names the child writes into ``workdir``.
MODEL_NAME = "model.ubj"
RESULT_NAME = "result.json"

_SKLEARN_META = json.dumps({"_estimator_type": "classifier"})


# ---- plain data -----------------------------------------------------------------------------
@dataclass
class TrainParams:
    """XGBoost hyper-parameters and the evaluation split, one field per QT_CLM_* setting."""

    n_estimators: int = 300
    max_depth: int = 6
    learning_rate: float = 0.05
    early_stopping: int = 30  # rounds without validation gain; 0 = off
    threads: int = 1
    test_fraction: float = 0.2
    val_fraction: float = 0.1  # of the time before the test embargo
    embargo_hours: float = 24.0
    leak_margin: float = 0.10
    seed: int = 42
    device: str = "cpu"  # QT_CLM_DEVICE: "cpu" or "cuda"

    @classmethod
    def from_settings(cls, s: Settings) -> TrainParams:
        return cls(
            n_estimators=s.n_estimators,
            max_depth=s.max_depth,
            learning_rate=s.learning_rate,
            early_stopping=s.early_stopping,
            threads=s.effective_threads,
            test_fraction=s.test_fraction,
            embargo_hours=s.embargo_hours,
            leak_margin=s.leak_margin,
            seed=s.seed,
            device=s.device,
        )


@dataclass
class SplitInfo:
    """Where the time cutoffs fell. Times are ISO-8601 UTC; ``embargo_hours`` is the gap
    actually enforced (at least one bar, the label horizon)."""

    train_start: str
    train_end: str
    val_start: str
    val_end: str
    test_start: str
    test_end: str
    train_rows: int
    val_rows: int
    test_rows: int
    embargo_hours: float


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    importance: dict[str, float]
    leakage: bool
    leakage_reason: str
    split: SplitInfo
    params: dict[str, Any]
    duration_s: float
    model_path: str
    features: list[str] = field(default_factory=list)
    edge: dict[str, Any] = field(default_factory=dict)  # to_jsonable(EdgeResult) (edge.py)
    #: Where it was trained, for the manifest: {"trainer": "local"} or, on a cluster,
    #: {"trainer": "dask", "dask_scheduler": address without credentials, "dask_workers": n}.
    trainer: dict[str, Any] = field(default_factory=lambda: {"trainer": "local"})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainResult:
        d = dict(d)
        d["split"] = SplitInfo(**d["split"])
        if d.get("features"):  # importance follows the training order, whatever JSON did
            d["importance"] = {f: float(d["importance"].get(f, 0.0)) for f in d["features"]}
        return cls(**d)


# ---- the split ------------------------------------------------------------------------------
def _epoch_ns(timestamps: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch in UTC (naive timestamps are taken as UTC)."""
    return pd.DatetimeIndex(timestamps).as_unit("ns").asi8


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def _bar_ns(unique_ts: np.ndarray) -> int:
    """The typical spacing of bars: the label horizon is one of them."""
    if unique_ts.size < 2:
        return 0
    return int(np.median(np.diff(unique_ts)))


def _too_little_time(what: str, first_ns: int, last_ns: int, rows: int) -> DataError:
    return DataError(
        f"The data ({_iso(first_ns)} to {_iso(last_ns)}, {rows} rows) covers too little "
        f"time for the train/validation/test split: {what}; add more data or lower "
        "QT_CLM_TEST_FRACTION / QT_CLM_EMBARGO_HOURS."
    )


@dataclass(frozen=True)
class TimeCutoffs:
    """Where the slices begin and end, in ns since the epoch (UTC). Decided once, by
    ``time_cutoffs``, for every trainer (local or on a cluster), so both split alike."""

    first: int
    last: int
    val_start: int
    val_end: int
    test_start: int
    embargo_ns: int
    rows: int

    def masks(self, ts: Any) -> tuple[Any, Any, Any]:
        """Boolean (train, validation, test) masks of ``ts`` (int64 ns): a numpy array or a
        dask Series alike. Rows inside an embargo are in none of them."""
        return ts < self.val_start - self.embargo_ns, \
            (ts >= self.val_start) & (ts <= self.val_end), ts >= self.test_start

    def too_little_time(self, what: str) -> DataError:
        return _too_little_time(what, self.first, self.last, self.rows)

    def split_info(self, train_first: int, train_last: int, train_rows: int, val_rows: int,
                   test_rows: int) -> SplitInfo:
        """The ``SplitInfo`` of these cut-offs; ``DataError`` when a slice is too small."""
        for name, n in (("training", train_rows), ("validation", val_rows), ("test", test_rows)):
            if n < MIN_SLICE_ROWS:
                raise self.too_little_time(
                    f"the {name} slice has {n} rows (need at least {MIN_SLICE_ROWS})")
        return SplitInfo(
            train_start=_iso(train_first), train_end=_iso(train_last),
            val_start=_iso(self.val_start), val_end=_iso(self.val_end),
            test_start=_iso(self.test_start), test_end=_iso(self.last),
            train_rows=int(train_rows), val_rows=int(val_rows), test_rows=int(test_rows),
            embargo_hours=self.embargo_ns / 3_600e9,
        )


def time_cutoffs(unique_ts: np.ndarray, params: TrainParams, rows: int) -> TimeCutoffs:
    """Decide the split from the sorted distinct timestamps (int64 ns) of all ``rows`` rows.

    Test holds the rows at or after the time that leaves the last ``test_fraction`` of the
    time range. Validation (used only for early stopping) is the last ``val_fraction`` of the
    time before the test embargo. Between train and validation, and between validation and
    test, lies an embargo of ``max(embargo_hours, one bar)``: every row of a later slice is
    strictly more than the embargo after every row of an earlier one, so no training label
    (next bar's move) overlaps the period being tested. Rows inside an embargo are unused.
    Needs only the distinct bar times, so a cluster trainer can compute them cheaply.
    """
    if unique_ts.size == 0:
        raise DataError("The training data has no rows; add data before training.")
    t0, t1 = int(unique_ts[0]), int(unique_ts[-1])
    if t1 <= t0:
        raise _too_little_time("all rows share one timestamp", t0, t1, rows)
    embargo_ns = max(int(round(params.embargo_hours * 3_600e9)), _bar_ns(unique_ts))

    test_cut = t1 - int(params.test_fraction * (t1 - t0))
    test_start = int(unique_ts[np.searchsorted(unique_ts, test_cut, side="left")])
    pre_ts = unique_ts[unique_ts < test_start - embargo_ns]
    if pre_ts.size < 2:
        raise _too_little_time("nothing is left before the test period and its embargo",
                               t0, t1, rows)
    pre_end = int(pre_ts[-1])
    val_cut = pre_end - int(params.val_fraction * (pre_end - t0))
    val_start = int(pre_ts[np.searchsorted(pre_ts, val_cut, side="left")])
    return TimeCutoffs(first=t0, last=t1, val_start=val_start, val_end=pre_end,
                       test_start=test_start, embargo_ns=embargo_ns, rows=rows)


def split_by_time(
    frame: pd.DataFrame, params: TrainParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, SplitInfo]:
    """Split rows into train, validation and test by global timestamp cutoffs
    (``time_cutoffs`` decides them; see there).

    Returns positional row indices (train, val, test) and a ``SplitInfo``. Raises ``DataError``
    when a slice has fewer than ``MIN_SLICE_ROWS`` rows (``train_and_evaluate`` also refuses a
    train or test slice that holds only one target class).
    """
    ts = _epoch_ns(frame["timestamp"])
    cut = time_cutoffs(np.unique(ts), params, int(ts.size))
    train, val, test = (np.flatnonzero(m) for m in cut.masks(ts))
    first = int(ts[train].min()) if train.size else cut.first
    last = int(ts[train].max()) if train.size else cut.first
    info = cut.split_info(first, last, train.size, val.size, test.size)
    return train, val, test, info


def _check_classes(y: np.ndarray, train: np.ndarray, test: np.ndarray, ts: np.ndarray) -> None:
    for name, idx in (("training", train), ("test", test)):
        classes = np.unique(y[idx])
        if classes.size < 2:
            raise _too_little_time(
                f"the {name} slice holds only target class {int(classes[0])}",
                int(ts.min()), int(ts.max()), int(ts.size),
            )


# ---- training -------------------------------------------------------------------------------
def make_classifier(params: TrainParams) -> xgboost.XGBClassifier:
    """The XGBClassifier the cycle fits (bench/cycle.py fits the same one bare)."""
    check_device(params.device)
    return xgboost.XGBClassifier(
        device=params.device,
        objective="binary:logistic",
        tree_method="hist",
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        learning_rate=params.learning_rate,
        n_jobs=params.threads,
        random_state=params.seed,
        eval_metric="logloss",
        early_stopping_rounds=params.early_stopping or None,
    )


def booster_params(params: TrainParams) -> dict[str, Any]:
    """``make_classifier``'s model as XGBoost's native parameters."""
    return {"objective": "binary:logistic", "tree_method": "hist",
            "max_depth": params.max_depth, "learning_rate": params.learning_rate,
            "nthread": params.threads, "seed": params.seed, "eval_metric": "logloss",
            "device": params.device}


def fit_booster(dtrain: xgboost.QuantileDMatrix, val: Any, params: TrainParams,
                callbacks: list[Any] | None = None) -> tuple[xgboost.Booster, int]:
    """Fit what ``make_classifier(params).fit(...)`` fits (same QuantileDMatrix, parameters,
    validation set and early stopping: the same trees), with XGBoost's native API, so the
    training process never imports scikit-learn (more than half of its start-up).
    ``val`` is ``(X, y)`` or an iterator for a QuantileDMatrix; returns the booster and the
    0-based best iteration."""
    check_device(params.device)
    dval = (xgboost.QuantileDMatrix(val[0], val[1], ref=dtrain) if isinstance(val, tuple)
            else xgboost.QuantileDMatrix(val, ref=dtrain))
    booster = xgboost.train(
        booster_params(params), dtrain, num_boost_round=params.n_estimators,
        evals=[(dval, "validation_0")], early_stopping_rounds=params.early_stopping or None,
        verbose_eval=False, callbacks=callbacks,
    )
    rounds = booster.num_boosted_rounds()
    return booster, int(booster.best_iteration) if params.early_stopping else rounds - 1


def check_device(device: str) -> None:
    """QT_CLM_DEVICE=cuda on XGBoost's CPU-only build would silently train on the CPU (or fail
    deep inside XGBoost): say once which build is installed and how to get the other."""
    if device == "cpu":
        return
    if not xgboost.build_info().get("USE_CUDA"):
        raise ConfigError(
            "QT_CLM_DEVICE=cuda but the installed XGBoost is the CPU-only build (xgboost-cpu); "
            "install the GPU build as the README's \"Training on a GPU\" says, or set "
            "QT_CLM_DEVICE=cpu."
        )


def _importance(booster: xgboost.Booster, features: list[str]) -> dict[str, float]:
    """Normalised "total_gain" per feature, in the training order; 0.0 for unused ones."""
    score = booster.get_score(importance_type="total_gain")  # keys f0, f1, ... (numpy input)
    raw = np.array([float(score.get(f"f{i}", 0.0)) for i in range(len(features))])
    total = raw.sum()
    shares = raw / total if total > 0 else raw
    return {name: float(v) for name, v in zip(features, shares, strict=True)}


def _leakage(test_acc: float, baseline: float, auc: float, margin: float) -> tuple[bool, str]:
    edge = test_acc - baseline
    if edge > margin:
        return True, (
            f"test accuracy {test_acc:.3f} beats the majority baseline {baseline:.3f} by "
            f"{edge:.3f} (> {margin:.2f}), implausible for next-bar direction; check features "
            "for future information"
        )
    if auc > AUC_LEAK:
        return True, (
            f"out-of-time ROC AUC {auc:.3f} is above {AUC_LEAK:.2f}, implausible for next-bar "
            "direction; check features for future information"
        )
    return False, (
        f"no sign of leakage: test accuracy {test_acc:.3f} is {edge:+.3f} over the baseline "
        f"{baseline:.3f} (limit {margin:.2f}) and AUC {auc:.3f} is at most {AUC_LEAK:.2f}"
    )


class RoundProgress(xgboost.callback.TrainingCallback):
    """Tells the parent how many boosting rounds are done, so the progress bar moves with
    the real work instead of sitting on "train" for the whole fit.

    Reports each new percent of ``total`` (at most ~100 messages per fit); when training
    ends (early stopping may end it before ``total``) it reports ``(rounds, rounds)``.
    """

    def __init__(self, report: Callable[[int, int], None], total: int) -> None:
        super().__init__()
        self.report = report
        self.total = max(1, int(total))
        self._step = -1

    def _send(self, done: int, total: int) -> None:
        with contextlib.suppress(Exception):  # a closed pipe must never stop training
            self.report(done, total)

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        step = (epoch + 1) * 100 // self.total
        if step > self._step:
            self._step = step
            self._send(epoch + 1, self.total)
        return False  # never stops training; early stopping is XGBoost's own callback

    def after_training(self, model: Any) -> Any:
        rounds = int(model.num_boosted_rounds())
        self._send(rounds, rounds)
        return model


def train_and_evaluate(dataset: Dataset, params: TrainParams, model_path: Path,
                       on_round: Callable[[int, int], None] | None = None) -> TrainResult:
    """Fit on the train slice, stop early on validation, score the out-of-time test slice.

    Metrics (``TrainResult.metrics``): ``train_accuracy``, ``val_accuracy``, ``test_accuracy``
    (threshold 0.5), ``auc`` (ROC AUC) and ``log_loss`` on the test rows, ``baseline_accuracy``
    = the accuracy on the TEST rows of always predicting the majority class of the TRAIN rows,
    ``best_iteration`` (0-based), ``n_trees`` (rounds kept in the saved model) and
    ``test_rows``.

    Importance is XGBoost's "total_gain" (the loss reduction a feature brought over all its
    splits) normalised to sum to 1 over ALL features, 0.0 for features never used (all 0.0
    only if the model made no split at all).

    Leakage rule: flagged when ``test_accuracy - baseline_accuracy > leak_margin`` (default
    0.10) or the test ROC AUC > 0.75. Predicting next-bar direction, a real out-of-time edge
    is a few points; anything that large means a feature almost surely carries future
    information (e.g. next bar's return) or the target. ``leakage_reason`` is one line that
    explains the verdict either way.

    The saved model holds exactly the trees up to the best iteration, so any backend that
    predicts with all trees gets the early-stopped model. It is written atomically in XGBoost's
    native UBJSON format (``model_path`` must end in ``.ubj``).
    """
    started = time.perf_counter()
    model_path = Path(model_path)
    if model_path.suffix != ".ubj":
        raise ValueError(f"model_path must end in .ubj (XGBoost native format): {model_path}")
    frame = dataset.frame
    train, val, test, info = split_by_time(frame, params)
    X, y = dataset.X, dataset.y
    _check_classes(y, train, test, _epoch_ns(frame["timestamp"]))

    callbacks = [RoundProgress(on_round, params.n_estimators)] if on_round else None
    booster, best = fit_booster(xgboost.QuantileDMatrix(X[train], y[train]),
                                (X[val], y[val]), params, callbacks=callbacks)
    booster, best = save_model(booster, best, model_path)

    # One prediction pass over all rows with the saved model (cheaper than asking XGBoost to
    # evaluate the train set every round).
    p = booster.inplace_predict(X)
    hit = (p > 0.5) == (y == 1)
    majority = int(y[train].mean() >= 0.5)
    metrics, leak, reason, edge = score_out_of_time(
        y[test], p[test], _epoch_ns(frame["timestamp"])[test], majority, params.leak_margin)
    metrics = {
        "train_accuracy": float(hit[train].mean()),
        "val_accuracy": float(hit[val].mean()),
        **metrics,
        "best_iteration": best,
        "n_trees": int(booster.num_boosted_rounds()),
    }
    return TrainResult(
        metrics=metrics,
        importance=_importance(booster, list(dataset.features)),
        leakage=leak,
        leakage_reason=reason,
        split=info,
        params=asdict(params),
        duration_s=time.perf_counter() - started,
        model_path=str(model_path),
        features=list(dataset.features),
        edge=to_jsonable(edge),
    )


def save_model(booster: xgboost.Booster, best: int | None, model_path: Path
               ) -> tuple[xgboost.Booster, int]:
    """Keep the trees up to ``best`` (None = all) and write them atomically in XGBoost's native
    UBJSON format, the same file whichever trainer fitted it. Returns (saved booster, best)."""
    rounds = booster.num_boosted_rounds()
    best = rounds - 1 if best is None else int(best)
    if best + 1 < rounds:
        booster = booster[: best + 1]
    booster.feature_names = None  # trainers differ here (numpy vs frames); the file must not
    booster.feature_types = None
    booster.set_attr(scikit_learn=_SKLEARN_META)  # so XGBClassifier.load_model works too
    atomic_write_bytes(model_path, bytes(booster.save_raw(raw_format="ubj")))
    return booster, best


def score_out_of_time(y_test: np.ndarray, p_test: np.ndarray, ts_test: np.ndarray,
                      majority: int, leak_margin: float
                      ) -> tuple[dict[str, Any], bool, str, EdgeResult]:
    """The test-slice metrics, the leakage verdict and the edge gate's evidence, computed alike
    for every trainer (local or on a cluster): ``test_accuracy``, ``auc``, ``log_loss``,
    ``baseline_accuracy`` (always predicting the TRAIN slice's ``majority`` class) and
    ``test_rows``; then (leakage, reason) and the bar-by-bar edge test (edge.py; the cycle
    applies its limits). ``ts_test`` is each test row's time in ns."""
    y_test = np.asarray(y_test)
    p_test = np.asarray(p_test)
    hit = (p_test > 0.5) == (y_test == 1)
    baseline = float(np.mean(y_test == majority))
    test_acc = float(np.mean(hit))
    auc = float(roc_auc_score(y_test, p_test))
    leak, reason = _leakage(test_acc, baseline, auc, leak_margin)
    edge = edge_test(hit, y_test == majority, np.asarray(ts_test),
                     majority_label="up" if majority else "down")
    metrics = {
        "test_accuracy": test_acc,
        "auc": auc,
        "log_loss": float(log_loss(y_test, p_test, labels=[0, 1])),
        "baseline_accuracy": baseline,
        "test_rows": int(y_test.size),
    }
    return metrics, leak, reason, edge


# ---- the child process ----------------------------------------------------------------------
# A child that cannot write its result because the disk is full exits with this code.
_ENOSPC_EXIT = 28
_DISK_FULL = ("disk full: the training process could not write in {}; free some space on "
              "that disk (or point QT_CLM_STORE_DIR at a disk with room) and retry")


def _testing_hooks() -> None:
    """Test-only hooks, honoured only with CLM_TRAY_TESTING=1: a slow child
    (CLM_TRAY_TRAIN_SLEEP=seconds) and a crashing one (CLM_TRAY_FAULT=train)."""
    if os.environ.get("CLM_TRAY_TESTING") != "1":
        return
    if os.environ.get("CLM_TRAY_FAULT") == "train":
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    delay = float(os.environ.get("CLM_TRAY_TRAIN_SLEEP") or 0)
    if delay > 0:
        time.sleep(delay)


def _child_main(
    data_path: str, target: str, features: list[str] | None, params: dict, workdir: str,
    coerce_bad_cells: bool = False, dask_scheduler: str = "", rounds: Connection | None = None,
    encoding: str | None = None,
) -> None:
    """Entry point of the spawned child: load, train, then write model and result JSON.
    With ``dask_scheduler`` the child holds the Dask client and trains on the cluster."""
    out = Path(workdir)
    with contextlib.suppress(ValueError, OSError):  # Ctrl+C reaches the whole process group:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides (cancel), not us
    trainchild.end_with_parent()  # already watching when started through trainchild.main
    try:
        _testing_hooks()
        if dask_scheduler:
            from clm_tray.core.ml.dask_training import train_on_dask

            result = train_on_dask(
                data_path, setting=dask_scheduler, target=target, features=list(features or []),
                params=TrainParams(**params), model_path=out / MODEL_NAME,
                on_round=_round_sender(rounds),
            )
        else:
            result = _child_train(data_path, target, features, TrainParams(**params),
                                  out / MODEL_NAME, coerce_bad_cells, encoding,
                                  on_round=_round_sender(rounds))
        payload: dict[str, Any] = {"ok": True, "result": result.to_dict()}
    except ClmError as exc:
        payload = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    except OSError as exc:  # a full disk first: it is the user's to fix, not a bug
        if is_disk_full(exc):
            payload = {"ok": False, "error": "TrainingError", "message": _DISK_FULL.format(out)}
        else:
            traceback.print_exc()
            payload = {"ok": False, "error": "TrainingError",
                       "message": f"Training failed in the child process: {exc}"}
    except Exception as exc:  # a bug or a library failure: still one line for the user
        traceback.print_exc()
        payload = {
            "ok": False,
            "error": "TrainingError",
            "message": f"Training failed in the child process: {type(exc).__name__}: {exc}",
        }
    try:
        atomic_write_text(out / RESULT_NAME, json.dumps(payload, indent=2))  # keeps feature order
    except OSError as exc:
        if is_disk_full(exc):
            os._exit(_ENOSPC_EXIT)  # cannot even write why: the exit code says it
        raise
    if dask_scheduler:  # Dask's exit hooks may wait on a cluster that is gone; we are done
        os._exit(0)


def _child_train(data_path: str, target: str, features: list[str] | None,
                 params: TrainParams, model_path: Path,
                 coerce_bad_cells: bool = False, encoding: str | None = None,
                 on_round: Callable[[int, int], None] | None = None) -> TrainResult:
    """The cycle hands over its one validated load as an Arrow file (prepared.py): large data
    is streamed from it batch by batch (batches.py), the rest read whole. Any other path is
    the training file itself, loaded and validated here."""
    from clm_tray.core.ml import prepared

    if not data_path.endswith(prepared.SUFFIX):
        from clm_tray.core.ml.data import load_dataset

        dataset = load_dataset(data_path, target=target, features=features,
                               coerce_bad_cells=coerce_bad_cells, encoding=encoding)
    elif prepared.read_meta(data_path)["fingerprint"]["rows"] > _stream_rows():
        from clm_tray.core.ml.batches import train_streaming

        return train_streaming(data_path, params, model_path, on_round)
    else:
        dataset = prepared.read_prepared(data_path)
    return train_and_evaluate(dataset, params, model_path, on_round)


def _stream_rows() -> int:
    from clm_tray.core.ml.batches import stream_rows

    return stream_rows()


def _round_sender(rounds: Connection | None) -> Callable[[int, int], None] | None:
    """Boosting rounds go to the parent over a one-way pipe (small messages: atomic)."""
    if rounds is None:
        return None

    def send(done: int, total: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            rounds.send((done, total))

    return send


def _relay_rounds(rounds: Connection, on_round: Callable[[int, int], None] | None) -> None:
    with contextlib.suppress(OSError, EOFError, ValueError):
        while rounds.poll():
            done, total = rounds.recv()
            if on_round is not None:
                on_round(int(done), int(total))


def _stop(proc: multiprocessing.process.BaseProcess, grace: float = 2.0) -> None:
    """Terminate the child, then kill it if it does not go within ``grace`` seconds."""
    if proc.is_alive():
        proc.terminate()
        proc.join(grace)
    if proc.is_alive():
        proc.kill()
        proc.join(5.0)


def _discard(workdir: Path) -> None:
    """Remove whatever a stopped child may have left, so no partial model survives."""
    for p in (workdir / MODEL_NAME, workdir / RESULT_NAME, *workdir.glob(".*.tmp")):
        with contextlib.suppress(OSError):
            p.unlink()


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (often the system ran out of memory)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def _raise_child_error(name: str, message: str) -> None:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, ClmError)):
        cls = TrainingError
    raise cls(message)


def train_in_child(
    data_path: Path | str,
    *,
    target: str,
    features: list[str] | None,
    params: TrainParams,
    workdir: Path,
    timeout: float,
    cancel: threading.Event | None = None,
    coerce_bad_cells: bool = False,
    dask_scheduler: str = "",
    on_round: Callable[[int, int], None] | None = None,
    encoding: str | None = None,
) -> TrainResult:
    """Load the data and train in a spawned child process that can be stopped at any time.

    ``on_round(done, total)`` is called here (in the caller's thread) as the child reports
    boosting rounds over a one-way pipe.

    The child writes ``workdir/model.ubj`` and ``workdir/result.json`` (any earlier ones are
    removed first). The parent waits in 0.1 s slices; on timeout it stops the child and raises
    ``TrainingTimeout``, on ``cancel`` it raises ``TrainingCancelled``. A ``ClmError`` in the
    child (e.g. ``DataError``) is raised here again with the same class and one-line message;
    a crash (non-zero exit, e.g. killed for memory) is a ``TrainingError`` naming the exit.
    On any failure nothing is left in ``workdir`` that could be taken for a model.

    ``dask_scheduler`` (QT_CLM_DASK_SCHEDULER) trains on a Dask cluster from the same child
    (``dask_training``), so stopping the child stops the cluster job; ``on_round(done, total)``
    then hears of the boosting rounds.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _discard(workdir)
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=trainchild.main,  # -> _child_main, without scikit-learn
        args=(str(data_path), target, list(features) if features else None, asdict(params),
              str(workdir), coerce_bad_cells, dask_scheduler, send, encoding),
        name="clm-tray-train",
        # A LocalCluster's workers are this child's children, which a daemon may not have;
        # the child still ends with us (trainchild.end_with_parent) and its workers with it.
        daemon=not dask_scheduler,
    )
    deadline = time.monotonic() + timeout
    proc.start()
    send.close()
    try:
        while proc.exitcode is None:
            proc.join(POLL_SECONDS)
            _relay_rounds(receive, on_round)
            if proc.exitcode is not None:
                break
            if cancel is not None and cancel.is_set():
                raise TrainingCancelled(
                    "Training was cancelled and its process stopped; nothing was saved."
                )
            if time.monotonic() >= deadline:
                raise TrainingTimeout(
                    f"Training ran longer than QT_CLM_TRAIN_TIMEOUT={timeout:g} s and was "
                    "stopped; raise QT_CLM_TRAIN_TIMEOUT or use less data."
                )
    except BaseException:
        # A cluster job needs a moment to stop its workers together and free them.
        _stop(proc, grace=DASK_STOP_SECONDS if dask_scheduler else 2.0)
        _discard(workdir)
        receive.close()
        raise
    _relay_rounds(receive, on_round)
    receive.close()

    code = proc.exitcode
    if cancel is not None and cancel.is_set():  # it ended as we asked it to stop: a cancel
        _discard(workdir)
        raise TrainingCancelled("Training was cancelled; nothing was saved.")
    result_path = workdir / RESULT_NAME
    payload = None
    if result_path.exists():
        with contextlib.suppress(OSError, ValueError):
            payload = json.loads(result_path.read_text(encoding="utf-8"))
    if not payload and code == _ENOSPC_EXIT:
        _discard(workdir)
        raise TrainingError(_DISK_FULL.format(workdir))
    if not payload or (payload.get("ok") and not (workdir / MODEL_NAME).exists()):
        _discard(workdir)
        raise TrainingError(
            f"The training process {_exit_reason(code or 0)} without a result; "
            "see the log, or use less data if memory is short."
        )
    if not payload["ok"]:
        _discard(workdir)
        _raise_child_error(payload.get("error", "TrainingError"), payload["message"])
    result = TrainResult.from_dict(payload["result"])
    result.model_path = str(workdir / MODEL_NAME)
    return result


# ---- using a saved model --------------------------------------------------------------------
def load_booster(path: Path | str) -> xgboost.Booster:
    """Load a model saved in XGBoost's native format (.ubj or .json). Never a pickle."""
    path = Path(path)
    if path.suffix.lower() not in (".ubj", ".json"):
        raise StoreError(
            f"{path} is not an XGBoost native model (.ubj or .json); pickles are never loaded."
        )
    if not path.is_file():
        raise StoreError(f"Model file {path} does not exist; retrain or restore a version.")
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise StoreError(f"Model file {path} cannot be read by XGBoost ({first}).") from exc
    return booster


def predict_proba(booster: xgboost.Booster, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """P(target = 1) for each row of ``frame``, with columns taken in the order ``features``."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DataError(
            f"The data lacks feature column(s) {', '.join(missing)} that the model was "
            "trained on; supply them or retrain."
        )
    if len(frame) == 0:
        return np.empty(0, dtype=np.float64)
    X = frame[list(features)].to_numpy(dtype=np.float32, na_value=np.nan)
    return np.asarray(booster.inplace_predict(X), dtype=np.float64)
