"""Which model files the deploy folder holds, and the new model written in each of them.

A trader's backend loads whatever the folder held when clm-tray arrived — the seed's loads
``xgb_model.pkl``. So the formats a deploy writes follow the folder, never a guess: every file
named like the model (``<stem>.ubj / .json / .pkl / .joblib``) gets a new file of the same name
at each deploy, and none of them is ever removed without one (``QT_CLM_DEPLOY_PICKLE`` still
forces the pickle on or off, ``QT_CLM_MODEL_FILE`` still names the native model).

Pickles and joblib files are *written* here for the backend; clm-tray never loads one.
"""

from __future__ import annotations

import io
import sys
import threading
import types
from pathlib import Path
from typing import Any

#: Files named ``<stem><suffix>`` with one of these suffixes are the deployed model's layout:
#: adoption records them, and a deploy never removes one without writing its replacement.
LAYOUT_SUFFIXES = (".ubj", ".json", ".pkl", ".joblib", ".bin", ".model", ".xgb", ".onnx", ".pt")

#: The formats clm-tray can write from a new model, and what each is, in the user's words.
WRITABLE = {
    ".ubj": "XGBoost native format",
    ".json": "XGBoost native format, JSON",
    ".pkl": "a pickled XGBClassifier, for a backend that unpickles it",
    ".joblib": "an XGBClassifier saved with joblib, for a backend that loads it so",
}


def check_model_file(model_file: str) -> None:
    """The model file is written in XGBoost's native format: a ``.pkl`` name would hand a
    pickle-loading backend bytes it cannot unpickle. One clear line instead."""
    from clm_tray.core.errors import ConfigError

    suffix = Path(model_file).suffix.lower()
    if suffix not in (".ubj", ".json"):
        stem = Path(model_file).stem
        raise ConfigError(
            f"QT_CLM_MODEL_FILE={model_file}: the model is written in XGBoost's native format; "
            f"name it {stem}.ubj (or .json) — a {suffix or 'pickle'} of the same name beside "
            "it is written too when the folder holds one"
        )


def layout_files(folder: Path, model_file: str) -> list[Path]:
    """The model files in ``folder`` named like ``model_file`` (``xgb_model.pkl`` ...)."""
    stem = Path(model_file).stem
    if not folder.is_dir():
        return []
    return sorted(folder / f"{stem}{suffix}" for suffix in LAYOUT_SUFFIXES
                  if (folder / f"{stem}{suffix}").is_file())


def extra_formats(folder: Path, model_file: str, deploy_pickle: bool | None) -> list[str]:
    """Suffixes to write at each deploy besides ``model_file`` itself.

    Every writable format the folder already holds, so the backend finds a new file where it
    loads the old one; ``deploy_pickle`` True/False forces ``.pkl`` on/off (None: follow).
    """
    main = Path(model_file).suffix.lower()
    present = {p.suffix.lower() for p in layout_files(folder, model_file)}
    out = {s for s in WRITABLE if s in present and s != main}
    if deploy_pickle is True and main != ".pkl":
        out.add(".pkl")
    elif deploy_pickle is False:
        out.discard(".pkl")
    return sorted(out)


def unwritable_files(folder: Path, model_file: str) -> list[str]:
    """Model files in the folder clm-tray cannot write (left as they are, never removed)."""
    return [p.name for p in layout_files(folder, model_file)
            if p.suffix.lower() not in WRITABLE]


def model_bytes(model_path: Path, suffix: str) -> bytes:
    """The model at ``model_path`` (XGBoost native) saved in the format ``suffix`` names.

    Pickle and joblib hold an ``XGBClassifier`` built from the booster: what the seed's backend
    unpickles. Written only; nothing in clm-tray reads them back.
    """
    import xgboost

    if suffix not in WRITABLE:
        raise ValueError(f"clm-tray cannot write a model as {suffix}")
    if suffix in (".ubj", ".json"):
        booster = xgboost.Booster()
        booster.load_model(str(model_path))
        return bytes(booster.save_raw(suffix.lstrip(".")))
    try:
        clf = _classifier(model_path)
    except ImportError:  # a future XGBoost that needs more of scikit-learn than the stand-in
        from clm_tray.core.errors import ConfigError

        raise ConfigError(
            f"the deploy folder needs the model as {WRITABLE[suffix]}: writing it needs "
            "scikit-learn, which this Python cannot import: pip install scikit-learn"
        ) from None
    if suffix == ".pkl":
        import pickle

        return pickle.dumps(clf, protocol=4)
    import joblib  # a dependency of its own: it comes without scikit-learn too

    buf = io.BytesIO()
    joblib.dump(clf, buf)
    return buf.getvalue()


_STAND_IN_LOCK = threading.Lock()


def _classifier(model_path: Path) -> Any:
    """XGBoost's ``XGBClassifier`` holding the model: the object the backend unpickles.

    With scikit-learn importable this is plain XGBoost. Without it (the default install and
    the built app leave scikit-learn out: ~60 MB installed, ~80 MB of the app with the SciPy
    parts it imports), XGBoost refuses in three places although nothing of scikit-learn goes
    into the pickle (the class is ``xgboost.sklearn.XGBClassifier``, the state its attributes):
    ``__init__`` checks the flag ``xgboost.sklearn.SKLEARN_INSTALLED``; ``load_model`` checks
    the file's estimator type against ``_estimator_type``, which scikit-learn's classifier
    mixin defines, and asks ``sklearn.base.is_classifier`` whether to set ``n_classes_``. We
    answer all three for the length of this call and XGBoost's own code does the rest, so the
    pickle is byte for byte the one made with scikit-learn installed
    (tests/core/test_formats_without_sklearn.py). A later XGBoost that wants more of
    scikit-learn raises ImportError: the caller's one line then says to install it.
    """
    import xgboost
    import xgboost.sklearn as xgb_sklearn

    if getattr(xgb_sklearn, "SKLEARN_INSTALLED", True):
        clf = xgboost.XGBClassifier()
        clf.load_model(str(model_path))
        return clf
    cls = xgboost.XGBClassifier
    stand_in = types.ModuleType("sklearn.base")
    stand_in.is_classifier = lambda estimator: isinstance(estimator, cls)
    with _STAND_IN_LOCK:
        before = sys.modules.get("sklearn.base")
        had_type = "_estimator_type" in vars(cls)
        xgb_sklearn.SKLEARN_INSTALLED = True
        sys.modules["sklearn.base"] = stand_in
        if not had_type:
            cls._estimator_type = "classifier"  # a class attribute: not in the pickled state
        try:
            clf = cls()
            clf.load_model(str(model_path))
        finally:
            xgb_sklearn.SKLEARN_INSTALLED = False
            if not had_type:
                del cls._estimator_type
            if before is None:
                sys.modules.pop("sklearn.base", None)
            else:
                sys.modules["sklearn.base"] = before
    return clf
