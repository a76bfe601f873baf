"""Keep scikit-learn out of engine processes that never use it.

XGBoost imports scikit-learn (and, through it, most of SciPy) whenever it is installed, only to
offer its scikit-learn-style wrappers. The engine trains and predicts with XGBoost's native API
and computes its metrics with numpy (metrics.py), so that import is pure cost: more than half
of the start-up of every process that loads XGBoost (measured with ``python -X importtime``).
The one engine feature that needs the wrappers is writing ``xgb_model.pkl`` for old backends
(``QT_CLM_DEPLOY_PICKLE``); processes that may do that keep scikit-learn.
"""

from __future__ import annotations

import sys


def keep_scikit_learn_out() -> bool:
    """Make ``import sklearn`` fail in this process (XGBoost then skips its wrappers).

    Only while neither XGBoost nor scikit-learn is imported yet: a process that already has
    them (a test session, a caller that uses them) is left alone. Returns whether it applied.
    """
    if "xgboost" in sys.modules or "sklearn" in sys.modules:
        return False
    if "_pytest" in sys.modules:  # a test session mixes engines with tests that use
        return False  # scikit-learn; the subprocess tests see the real behaviour
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    return True
