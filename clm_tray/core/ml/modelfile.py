"""The model file: written and read only in XGBoost's native format, never as a pickle.

Why its own module: every trainer saves the same file (so versioning, the shadow test, deploy
and the backends cannot tell where a model was trained), and the cycle, the engine and adoption
load it; none of that needs the training code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost

from clm_tray.core.errors import DataError, StoreError
from clm_tray.core.fsutil import atomic_write_bytes

_SKLEARN_META = json.dumps({"_estimator_type": "classifier"})


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
