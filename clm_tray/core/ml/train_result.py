"""What a training is asked (``TrainParams``) and what it answers (``TrainResult``, ``SplitInfo``).

Plain dataclasses with no numpy, pandas or XGBoost in sight, on purpose: the answer travels
from the training process to the cycle, and the cycle's process must be able to read it without
importing the libraries that produced it (the tray and the worker stay small).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clm_tray.core.config.settings import Settings


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
    #: The XGBoost that trained it, read where the result is made (the training process), so
    #: the cycle's process need not import XGBoost to write the manifest.
    xgboost_version: str = field(default_factory=lambda: _xgboost_version())


def _xgboost_version() -> str:
    import xgboost

    return str(xgboost.__version__)
