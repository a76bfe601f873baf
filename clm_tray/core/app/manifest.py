"""Step 3 of the cycle: what a new version records about itself, and the files it holds.

The manifest says what the model is and how it was made (features, target, parameters, the
split, the data's fingerprint, the drift reference profile, library versions, where it was
trained) and never changes afterwards. A version also holds the model in every other format
the deploy folder needs, made when the version is made, so a rollback restores exactly the
bytes that were deployed.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from clm_tray.core.config.settings import Settings


def deploy_formats(s: Settings, model_path: Path) -> dict[str, bytes]:
    """The new model in every other format the deploy folder holds (``xgb_model.pkl`` for a
    backend that unpickles it), made now so the version holds exactly what gets deployed."""
    from clm_tray.core.registry.formats import extra_formats, model_bytes

    if s.resolved_deploy_dir is None:
        return {}
    return {suffix: model_bytes(model_path, suffix)
            for suffix in extra_formats(s.resolved_deploy_dir, s.model_file, s.deploy_pickle)}


def build_manifest(dataset: Any, result: Any, parent: str | None, profile: dict[str, Any]
                   ) -> dict[str, Any]:
    """The manifest of a model trained on ``dataset`` (``result``: the training's result;
    ``parent``: the champion it was trained to replace; ``profile``: the drift reference)."""
    import pandas as pd

    return {
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parent": parent,
        "features": list(dataset.features),
        "target": dataset.target,
        "params": result.params,
        "metrics": result.metrics,
        "importance": result.importance,
        "leakage": result.leakage,
        "leakage_reason": result.leakage_reason,
        "split": asdict(result.split),
        "data": asdict(dataset.fingerprint),
        "data_last_timestamp": dataset.fingerprint.end,
        "reference_profile": profile,
        "training_seconds": result.duration_s,
        **result.trainer,  # "trainer": "local" | "dask" (+ scheduler address, workers)
        "library_versions": {
            "xgboost": result.xgboost_version,
            "pandas": pd.__version__,
            "scikit-learn": _library_version("scikit-learn"),
        },
    }


def _library_version(dist: str) -> str:
    """A library's version from its metadata (importing scikit-learn only to read it would
    cost more than half a second)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
