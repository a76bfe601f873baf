"""The models a replay trains: one per simulated moment, on the rows known then.

Split from ``replay.py`` (the walk and the scoring) because this is the part that must stay
identical to the engine's training: ``training.train_and_evaluate`` with its split, embargo,
early stopping and leak check, whose bar-by-bar edge evidence (``edge.edge_test`` on the
candidate's own out-of-time test rows) is judged as the cycle judges it. A model trained at
a moment is cached by how many rows it could use, so policies that retrain at the same moment
share it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clm_tray.core.app.decide import edge_verdict
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import DataError, TrainingCancelled
from clm_tray.core.ml.data import Dataset
from clm_tray.core.ml.edge import EdgeResult
from clm_tray.core.ml.modelfile import load_booster
from clm_tray.core.ml.train_result import TrainParams
from clm_tray.core.ml.training import train_and_evaluate
from clm_tray.core.monitor.drift import reference_profile


@dataclass
class Model:
    """A candidate trained at one simulated moment (shared by the policies that train then)."""

    at: int  # data time (ns) of the check that trained it
    known: int  # rows it could use: a prefix of the time-sorted frame
    booster: Any
    metrics: dict[str, Any]
    leakage: bool
    test_start: int  # ns; its out-of-time test rows start here
    train_end: int  # ns; its reference profile is taken on rows up to here
    importance: dict[str, float]
    edge: EdgeResult
    profile: dict[str, Any] | None = None


class Trainer:
    """Trains (once per moment) on the rows known then and keeps every model in memory."""

    def __init__(self, dataset: Dataset, settings: Settings, workdir: Path,
                 cancel: threading.Event | None) -> None:
        self.dataset = dataset
        self.settings = settings
        self.params = TrainParams.from_settings(settings)
        # A replay is a foreground job the user waits for: every core (up to 4) trains,
        # unless QT_CLM_TRAIN_THREADS says otherwise.
        self.params.threads = settings.train_threads or min(4, os.cpu_count() or 1)
        self.frame = dataset.frame
        self.ts = dataset.frame["timestamp"].array.asi8
        self.X = dataset.X  # parsed once; every model and check slices it
        self.y = dataset.y
        self.workdir = workdir
        self.cancel = cancel
        self.cache: dict[int, Model | DataError] = {}

    def predict(self, model: Model, start: int, stop: int) -> np.ndarray:
        return np.asarray(model.booster.inplace_predict(self.X[start:stop]))

    def as_callable(self, model: Model) -> Callable[[Any, list[str]], np.ndarray]:
        """The model as ``fn(frame, features)`` for monitor.py: rows are found by position
        (the frame's index is its row number), so no second matrix is built."""
        return lambda frame, _features: model.booster.inplace_predict(
            self.X[frame.index.to_numpy()])

    def train(self, at: int, known: int) -> Model:
        """The model the engine would have trained at ``at`` knowing ``known`` rows."""
        if self.cancel is not None and self.cancel.is_set():
            raise TrainingCancelled("The replay was cancelled; nothing was saved.")
        hit = self.cache.get(known)
        if hit is None:
            try:
                hit = self._fit(at, known)
            except DataError as exc:
                hit = exc
            self.cache[known] = hit
        if isinstance(hit, DataError):
            raise hit
        return hit

    def _fit(self, at: int, known: int) -> Model:
        ds = self.dataset
        past = Dataset(frame=self.frame.iloc[:known], features=ds.features, target=ds.target,
                       fingerprint=ds.fingerprint)
        path = self.workdir / "model.ubj"
        result = train_and_evaluate(past, self.params, path)
        booster = load_booster(path)
        test_start = pd.Timestamp(result.split.test_start).value
        train_end = pd.Timestamp(result.split.train_end).value
        # The trainer already scored the out-of-time rows bar by bar; judge that evidence under
        # the current limits, as the cycle does (no second prediction pass).
        edge = edge_verdict(result.edge, self.settings)
        return Model(at=at, known=known, booster=booster, metrics=dict(result.metrics),
                      leakage=result.leakage, test_start=test_start, train_end=train_end,
                      importance=dict(result.importance), edge=edge)

    def profile(self, model: Model) -> dict[str, Any]:
        """The champion's reference profile, as the cycle stores it in the manifest."""
        if model.profile is None:
            rows = int(np.searchsorted(self.ts, model.train_end, side="right"))
            model.profile = reference_profile(self.frame.iloc[:rows], self.dataset.features)
        return model.profile
