"""The fit itself: the XGBoost model the cycle trains, fitted with XGBoost's native API.

Why native and not ``XGBClassifier``: the scikit-learn wrapper imports scikit-learn, which is
more than half of the training process's start-up. ``fit_booster`` fits exactly the trees
``make_classifier(params).fit(...)`` fits (tests/core/test_lean_training.py checks it), and
``RoundProgress`` reports the boosting rounds so the progress bar follows the real work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import xgboost

from clm_tray.core.errors import ConfigError
from clm_tray.core.ml.train_result import TrainParams


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


def round_callbacks(on_round: Callable[[int, int], None] | None, params: TrainParams
                    ) -> list[Any] | None:
    """The callbacks a fit takes to report its rounds to ``on_round`` (None: no reports)."""
    return [RoundProgress(on_round, params.n_estimators)] if on_round else None


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
