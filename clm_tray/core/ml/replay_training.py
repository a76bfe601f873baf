"""The models a replay trains: one per simulated moment, on the rows known then.

Split from ``replay.py`` (the walk and the scoring) because this is the part that must stay
identical to the engine's training: ``training.train_and_evaluate`` with its split, embargo,
early stopping and leak check, whose bar-by-bar edge evidence (``edge.edge_test`` on the
candidate's own out-of-time test rows) is judged as the cycle judges it.

A model depends only on the rows it could use (a prefix of the time-sorted frame) and the
settings, so it is cached by that row count: policies that retrain on the same rows share one
training. XGBoost's ``hist`` trees do not depend on the thread count either, so models whose
moment is known in advance (the ``always`` policy retrains on a fixed clock) are trained
*ahead* on one core in a background thread while the walk trains the configured policy's on
the other; a model already trained ahead, or being trained, is waited for, never trained
twice. XGBoost releases the GIL while it trains, so the two trainings really run side by side.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clm_tray.core.app.decide import edge_verdict
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import TrainingCancelled
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
    """Trains (once per row count) on the rows known then and keeps every model in memory.

    ``train`` is called by the walk; ``train_ahead`` starts the background thread for models
    known in advance. ``close`` stops that thread (between two trainings) and waits for it.
    """

    def __init__(self, dataset: Dataset, settings: Settings, workdir: Path,
                 cancel: threading.Event | None) -> None:
        self.dataset = dataset
        self.settings = settings
        self.params = TrainParams.from_settings(settings)
        # A replay is a foreground job the user waits for: every core (up to 4) trains,
        # unless QT_CLM_TRAIN_THREADS says otherwise.
        self.threads = settings.train_threads or min(4, os.cpu_count() or 1)
        self.params.threads = self.threads
        self.frame = dataset.frame
        self.ts = dataset.frame["timestamp"].array.asi8
        self.X = dataset.X  # parsed once; every model and check slices it
        self.y = dataset.y
        self.workdir = workdir
        self.cancel = cancel
        self.cache: dict[int, Model | Exception] = {}
        self._lock = threading.Lock()
        self._busy: dict[int, threading.Event] = {}  # row count -> set when its model is done
        self._stop = threading.Event()
        self._ahead: threading.Thread | None = None

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
        ahead = self._ahead is not None and self._ahead.is_alive()
        # While the background thread trains on one core, the walk has the others.
        hit = self._get(at, known, self.threads - 1 if ahead else self.threads)
        if isinstance(hit, Exception):
            raise hit
        assert hit is not None  # only the background thread gives up
        return hit

    def train_ahead(self, plan: list[tuple[int, int]]) -> None:
        """Train these ``(at, known)`` models in a background thread on one core, in order,
        so that they are ready (or under way) when the walk asks for them. Needs two or more
        training threads; with one, the walk trains everything itself as before."""
        if self.threads < 2 or not plan or self._ahead is not None:
            return
        self._ahead = threading.Thread(target=self._train_plan, args=(plan,),
                                       name="replay-ahead", daemon=True)
        self._ahead.start()

    def close(self) -> None:
        """Stop training ahead (after the current model) and wait for the thread."""
        self._stop.set()
        if self._ahead is not None:
            self._ahead.join()

    def _stopped(self) -> bool:
        return self._stop.is_set() or (self.cancel is not None and self.cancel.is_set())

    def _train_plan(self, plan: list[tuple[int, int]]) -> None:
        for at, known in plan:
            if self._stopped():
                return
            self._get(at, known, 1, ahead=True)

    def _get(self, at: int, known: int, threads: int, *, ahead: bool = False
             ) -> Model | Exception | None:
        """The cached model for ``known`` rows; trained here unless another thread is
        training it (then wait for that one). A failure is cached and raised by the walk.
        ``ahead``: the background thread, which gives up (None) once the replay stops."""
        while True:
            with self._lock:
                hit = self.cache.get(known)
                if hit is not None:
                    return hit
                running = self._busy.get(known)
                if running is None:
                    running = self._busy[known] = threading.Event()
                    break
            while not running.wait(0.2):
                if ahead and self._stopped():
                    return None
        hit = None
        try:
            hit = self._fit(at, known, threads)
        except Exception as exc:  # DataError: too little data then; anything else: re-raised
            hit = exc  # by the walk when it asks for this model
        finally:  # also on KeyboardInterrupt: a waiting thread then trains it itself
            with self._lock:
                if hit is not None:
                    self.cache[known] = hit
                self._busy.pop(known)
            running.set()
        return hit

    def _fit(self, at: int, known: int, threads: int = 0) -> Model:
        ds = self.dataset
        past = Dataset(frame=self.frame.iloc[:known], features=ds.features, target=ds.target,
                       fingerprint=ds.fingerprint)
        path = self.workdir / f"model-{known}.ubj"  # one file per training: threads differ
        params = replace(self.params, threads=threads or self.threads)
        result = train_and_evaluate(past, params, path)
        booster = load_booster(path)
        path.unlink(missing_ok=True)
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
