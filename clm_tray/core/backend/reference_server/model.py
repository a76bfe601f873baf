"""The model the reference backend serves: loaded once at start, its health answer, predictions.

Loading never raises: a missing, cut or foreign file becomes a ``LoadedModel`` with the reason,
which /health reports as a 503. Standard library, numpy and xgboost only (the package runs
on its own in the backend's Docker image).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .ubjson import ubjson_complete

DEFAULT_MODEL_FILE = "xgb_model.ubj"


@dataclass
class LoadedModel:
    """What was loaded at start, or why nothing could be."""

    path: Path
    booster: Any = None
    sha256: str | None = None
    version: str | None = None
    features: list[str] = field(default_factory=list)
    loaded_at: str | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def health(self) -> tuple[int, dict[str, Any]]:
        if self.booster is None:
            return 503, {"status": "error", "reason": self.error, "model_file": str(self.path)}
        return 200, {
            "status": "ok",
            "model_sha256": self.sha256,
            "model_version": self.version,
            "loaded_at": self.loaded_at,
            "features": self.features,
            "model_file": str(self.path),
        }


def load_model(models_dir: Path, model_file: str = DEFAULT_MODEL_FILE) -> LoadedModel:
    """Load ``models_dir/model_file`` and its ``<stem>.meta.json``; never raises.

    The sha256 is taken from the very bytes handed to XGBoost, so /health names exactly what
    is in memory even if the file is replaced a moment later.
    """
    path = Path(models_dir) / model_file
    model = LoadedModel(path=path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        model.error = f"no model file {path}"
        return model
    except OSError as exc:
        model.error = f"cannot read {path}: {exc.strerror or exc}"
        return model
    meta: dict[str, Any] = {}
    meta_path = path.with_name(path.stem + ".meta.json")
    try:
        loaded = json.loads(meta_path.read_text(encoding="utf-8"))
        meta = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        meta = {}
    sha = hashlib.sha256(data).hexdigest()
    expected = str(meta.get("model_sha256") or "").lower()
    if expected and expected != sha:
        model.error = (f"{path} has sha256 {sha[:12]}… but {meta_path.name} says "
                       f"{expected[:12]}… (truncated or replaced?); not loaded")
        return model
    if path.suffix.lower() == ".ubj" and not ubjson_complete(data):
        model.error = f"cannot load {path} ({len(data)} bytes): not a complete UBJSON model"
        return model
    try:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
    except Exception as exc:  # XGBoostError and friends: a truncated or foreign file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        model.error = f"cannot load {path} ({len(data)} bytes): {first[:300]}"
        return model
    model.booster = booster
    model.sha256 = sha
    model.version = str(meta["version"]) if meta.get("version") is not None else None
    features = meta.get("features") or booster.feature_names or []
    model.features = [str(f) for f in features]
    model.loaded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return model


class BadInput(ValueError):
    """A /predict body the model cannot take; the message goes back with HTTP 400."""


def _matrix(body: Any, features: list[str]) -> Any:
    """Rows as dicts (by feature name) or lists (in feature order) → a float32 array."""
    import numpy as np

    rows = body.get("rows") if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows:
        raise BadInput('send {"rows": [...]} with at least one row')
    table: list[list[float]] = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            if not features:
                raise BadInput("this model has no feature names; send rows as lists")
            missing = [f for f in features if f not in row]
            if missing:
                raise BadInput(f"row {i} lacks feature {missing[0]!r} ({len(missing)} missing)")
            values = [row[f] for f in features]
        elif isinstance(row, list):
            if features and len(row) != len(features):
                raise BadInput(f"row {i} has {len(row)} values; the model wants {len(features)}")
            values = row
        else:
            raise BadInput(f"row {i} is neither an object nor a list")
        try:
            table.append([float("nan") if v is None else float(v) for v in values])
        except (TypeError, ValueError) as exc:
            raise BadInput(f"row {i} has a value that is not a number") from exc
    widths = {len(r) for r in table}
    if len(widths) != 1:
        raise BadInput("rows have different lengths")
    return np.asarray(table, dtype=np.float32)


def predict(model: LoadedModel, body: Any) -> dict[str, Any]:
    import xgboost

    matrix = _matrix(body, model.features)
    names = model.features if model.booster.feature_names else None
    try:
        with model.lock:  # one prediction at a time per booster: simple and safe
            probs = model.booster.predict(xgboost.DMatrix(matrix, feature_names=names))
    except xgboost.core.XGBoostError as exc:
        raise BadInput(str(exc).strip().splitlines()[0][:300]) from exc
    return {"probabilities": [float(p) for p in probs.reshape(len(matrix), -1)[:, -1]],
            "model_version": model.version, "model_sha256": model.sha256}
