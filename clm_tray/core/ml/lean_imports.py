"""Keep scikit-learn out of engine processes that never use it.

XGBoost imports scikit-learn (and, through it, most of SciPy) whenever it is installed, only to
offer its scikit-learn-style wrappers. The engine trains and predicts with XGBoost's native API
and computes its metrics with numpy (metrics.py), so that import is pure cost: more than half
of the start-up of every process that loads XGBoost (measured with ``python -X importtime``).
The one engine feature that uses the wrappers is writing ``xgb_model.pkl`` (or ``.joblib``)
for backends that unpickle it: a deploy folder that holds one (adopted from the trader's old
scripts) or ``QT_CLM_DEPLOY_PICKLE=true``; processes that may do that keep scikit-learn when
it is installed (it is optional: formats.py writes the same pickle without it).
"""

from __future__ import annotations

import sys
from typing import Any

PICKLED = (".pkl", ".joblib")  # formats.py writes these as a pickled XGBClassifier


def keep_scikit_learn_out_unless_pickling(settings: Any) -> bool:
    """``keep_scikit_learn_out()`` for an engine process, unless one of its deploys may write
    a pickled model (the folder holds one, or the settings force it)."""
    from clm_tray.core.registry.formats import extra_formats

    folder = settings.resolved_deploy_dir
    if settings.deploy_pickle or (folder is not None and any(
            s in PICKLED for s in extra_formats(folder, settings.model_file,
                                                settings.deploy_pickle))):
        return False
    return keep_scikit_learn_out()


def keep_scikit_learn_out() -> bool:
    """Make ``import sklearn`` fail in this process (XGBoost then skips its wrappers).

    Only while neither XGBoost nor scikit-learn is imported yet: a process that already has
    them (a caller that uses them) is left alone. Returns whether it applied.
    """
    if "xgboost" in sys.modules or "sklearn" in sys.modules:
        return False
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    return True
