"""Replay: would the retraining policy have paid on this data?

The settings (retrain every 24 h, drift 0.05, shadow test, edge gate) assume that retraining
helps. The replay checks that assumption on the trader's own history: it walks forward
through the training data as if the engine had been running since ``start``, and at every
simulated check (every ``QT_CLM_CHECK_MINUTES`` of *data* time) it does what the engine
would have done then, with the engine's own parts:

- **age**: retrain when the last attempt is ``QT_CLM_RETRAIN_HOURS`` old (a kept champion is
  not retried sooner, as in the scheduler);
- **drift** every ``QT_CLM_DRIFT_HOURS``: ``monitor.drift_report`` (PSI on the champion's
  ``reference_profile``) on the rows ``monitor.windows`` picks from what the engine's loader
  would hold then (it drops the newest bar until its label is known);
- **performance** every ``QT_CLM_PERF_HOURS``: ``monitor.live_performance`` on the labelled
  rows newer than the champion's data; a waiting challenger is shadow-tested again;
- a **retrain** trains with ``training.train_and_evaluate`` (its split, embargo and
  label-horizon rules) on the rows known at that moment only: a row's label (next bar's
  move) is known one bar after its timestamp. The candidate then meets the leak check, the
  **edge gate** (``edge.edge_test`` on its out-of-time test rows) and the **shadow test**
  (``monitor.shadow_test``) against the deployed model, exactly in that order.

The model deployed at a check is scored on the rows that arrive from then until the next
deploy. Two reference policies run on the same timeline: ``never`` keeps the first model;
``always`` retrains every ``QT_CLM_RETRAIN_HOURS`` of data time (at every 30-minute check it
would train once per bar) and deploys without any gate. Until the configured policy has
deployed a model (its first candidate may have no edge), its rows are scored as the
always-guess baseline: a careful trader without an edge does not trade on a model. A candidate
that passes is deployed even with ``QT_CLM_AUTO_PROMOTE=false`` (you would have approved it).

Nothing here touches the store, the deploy folder or the backend: models live in memory and
in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import DataError, TrainingCancelled
from clm_tray.core.ml.data import Dataset
from clm_tray.core.ml.replay_result import PolicyResult, ReplayPeriod, ReplayResult
from clm_tray.core.ml.replay_training import Model, Trainer
from clm_tray.core.ml.split import bar_ns
from clm_tray.core.monitor.drift import drift_report
from clm_tray.core.monitor.performance import live_performance
from clm_tray.core.monitor.shadow import shadow_test
from clm_tray.core.monitor.windows import drift_min_rows

Progress = Callable[[float, str], None]
HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS


@dataclass
class _Policy:
    """One policy's state while walking forward, and what it did."""

    name: str
    rule: str
    deploys: list[tuple[int, Model]] = field(default_factory=list)
    champion: Model | None = None
    challenger: Model | None = None
    last_try: int | None = None
    last_known: int = -1  # rows the policy's last training could use
    last_drift: int | None = None
    last_perf: int | None = None
    trainings: int = 0
    gated: int = 0
    rejected: int = 0
    failed: int = 0
    triggers: dict[str, int] = field(default_factory=dict)  # why it retrained

    def deploy(self, now: int, model: Model) -> None:
        self.deploys.append((now, model))
        self.champion, self.challenger = model, None


class _Walk:
    """The three policies stepping through the same simulated checks."""

    def __init__(self, trainer: Trainer, settings: Settings) -> None:
        self.t = trainer
        self.s = settings
        self.bar = bar_ns(np.unique(trainer.ts))
        self.gate = settings.edge_gate
        s = settings
        self.configured = _Policy("configured", (
            f"retrain when the model is {s.retrain_hours:g} h old, on drift (checked every "
            f"{s.drift_hours:g} h) or a drop in accuracy (checked every {s.perf_hours:g} h); "
            "deploy only past the edge gate and the shadow test"))
        self.never = _Policy("never", "keep the first model")
        self.always = _Policy("always", f"retrain every {s.retrain_hours:g} h of data time "
                                        "and deploy without any gate")

    def known(self, now: int) -> int:
        """Rows whose label is known at ``now``: the next bar has closed."""
        return int(np.searchsorted(self.t.ts, now - self.bar, side="right"))

    def _train(self, policy: _Policy, now: int) -> Model | None:
        """A retrain; None when it failed or had nothing new to learn from (the engine's
        `unchanged`: no label arrived since the policy's last training)."""
        policy.last_try = now
        known = self.known(now)
        if known == policy.last_known:
            return None
        policy.last_known = known
        policy.trainings += 1
        try:
            return self.t.train(now, known)
        except DataError:
            policy.failed += 1
            return None

    def step(self, now: int, first: bool) -> None:
        rh = int(self.s.retrain_hours * HOUR_NS)
        if first:
            self._first(now)
            return
        if self.always.last_try is not None and now - self.always.last_try >= rh:
            model = self._train(self.always, now)
            if model is not None:
                self.always.deploy(now, model)
        self._step_configured(now, rh)

    def always_plan(self, checks: np.ndarray) -> list[tuple[int, int]]:
        """``(moment, rows)`` of each later ``always`` retrain (``step`` and ``_train``'s rules):
        its clock depends on no model, so they can be trained ahead."""
        rh = int(self.s.retrain_hours * HOUR_NS)
        last_try, last_known = int(checks[0]), self.known(int(checks[0]))
        plan = []
        for now in checks[1:].tolist():
            if now - last_try >= rh:
                last_try, known = now, self.known(now)
                if known != last_known:
                    plan.append((now, known))
                    last_known = known
        return plan

    def _first(self, now: int) -> None:
        try:
            model = self.t.train(now, self.known(now))
        except DataError as exc:
            when = np.datetime64(now, "ns").astype("datetime64[s]")
            raise DataError(f"Too little history before {when}Z to train the first model "
                            f"({exc}); replay from a later date (--from).") from None
        for policy in (self.never, self.always, self.configured):
            policy.last_try, policy.last_known = now, model.known
            policy.trainings += 1
        self.never.deploy(now, model)
        self.always.deploy(now, model)
        self._judge(self.configured, model, now)

    def _step_configured(self, now: int, rh: int) -> None:
        p, s = self.configured, self.s
        why = "age" if p.last_try is None or now - p.last_try >= rh else ""
        champ = p.champion
        if champ is not None and _due(p.last_drift, now, s.drift_hours):
            p.last_drift = now
            current = self.t.frame.iloc[self._drift_window(champ, now)]
            report = drift_report(None, current, self.t.profile(champ), champ.importance,
                                  s.drift_threshold, min_rows=drift_min_rows(s), now=0.0)
            why = why or ("drift" if report.drifted else "")
        if champ is not None and _due(p.last_perf, now, s.perf_hours):
            p.last_perf = now
            labelled = self.t.frame.iloc[champ.known:self.known(now)]
            report = live_performance(
                self.t.as_callable(champ), labelled, self.t.dataset.features,
                self.t.dataset.target, champ.metrics["test_accuracy"],
                champ.metrics["baseline_accuracy"], s.shadow_min, s.perf_drop, now=0.0)
            why = why or ("performance" if report.degraded else "")
            if p.challenger is not None:
                self._shadow(p, p.challenger, now)
        if why and s.auto_retrain:
            p.triggers[why] = p.triggers.get(why, 0) + 1
            model = self._train(p, now)
            if model is not None:
                self._judge(p, model, now)

    def _drift_window(self, champ: Model, now: int) -> slice:
        """``windows.drift_frames``'s current rows, as positions: of the labelled rows (all the
        engine's loader holds at ``now``), those after the champion's or the last N hours."""
        stop, hours = self.known(now), self.s.drift_window_hours
        if hours <= 0 or stop == 0:
            return slice(champ.known, max(champ.known, stop))
        since = int(self.t.ts[stop - 1]) - int(hours * HOUR_NS)
        return slice(int(np.searchsorted(self.t.ts, since, side="right")), stop)

    def _judge(self, p: _Policy, model: Model, now: int) -> None:
        """Leak check, edge gate, shadow test: the cycle's order of decisions."""
        if model.leakage:
            p.rejected += 1
        elif self.gate and not model.edge.passed:
            p.gated += 1
        elif p.champion is None:
            p.deploy(now, model)
        else:
            self._shadow(p, model, now)

    def _shadow(self, p: _Policy, model: Model, now: int) -> None:
        champ = p.champion
        assert champ is not None
        first = max(champ.known, int(np.searchsorted(self.t.ts, model.test_start)))
        rows = self.t.frame.iloc[first:self.known(now)]
        res = shadow_test(self.t.as_callable(model), self.t.as_callable(champ), rows,
                          self.t.dataset.features, self.t.dataset.target,
                          min_rows=self.s.shadow_min, logloss_tol=self.s.shadow_logloss_tol)
        if res.decision == "promote":
            p.deploy(now, model)
        elif res.decision == "reject":
            p.rejected += 1
            if p.challenger is model:
                p.challenger = None
        else:
            p.challenger = model


def _due(last: int | None, now: int, hours: float) -> bool:
    return last is None or now - last >= int(hours * HOUR_NS)


def parse_start(text: str) -> int:
    """``--from`` text (a date or an ISO time, UTC unless it says otherwise) -> ns."""
    from clm_tray.core.errors import ConfigError

    try:
        stamp = pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise ConfigError(f"--from {text!r} is not a date; use a date like 2025-11-01 or an "
                          "ISO time like 2025-11-01T08:00.")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def run_replay(dataset: Dataset, settings: Settings, *, start: str | None = None,
               progress: Progress | None = None,
               cancel: threading.Event | None = None) -> ReplayResult:
    """Walk forward from ``start`` (default: a third into the data's time range)."""
    began = time.perf_counter()
    ts = dataset.frame["timestamp"].array.asi8
    uniq = np.unique(ts)
    t0, t_end = int(uniq[0]), int(uniq[-1])
    if start is None:
        wanted = t0 + (t_end - t0) // 3
    else:
        wanted = parse_start(start)
        if not t0 < wanted <= t_end:
            first, last = (np.datetime64(v, "ns").astype("datetime64[s]") for v in (t0, t_end))
            raise DataError(f"--from {start} is outside the data ({first}Z to {last}Z); "
                            "choose a date inside it, after the first few weeks.")
    t_start = int(uniq[np.searchsorted(uniq, wanted, side="left")])
    step = max(1, int(settings.check_minutes * 60e9))
    checks = np.arange(t_start, t_end + 1, step, dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix="clm-replay-") as tmp:
        trainer = Trainer(dataset, settings, Path(tmp), cancel)
        walk = _Walk(trainer, settings)
        span, shown = max(1, t_end - t_start), -1.0
        try:
            for i, now in enumerate(checks):
                if cancel is not None and cancel.is_set():
                    raise TrainingCancelled("The replay was cancelled; nothing was saved.")
                walk.step(int(now), first=i == 0)
                if i == 0:  # the first model is shared; then `always` trains ahead
                    trainer.train_ahead(walk.always_plan(checks))
                done = (int(now) - t_start) / span
                if progress is not None and (done - shown >= 0.01 or i == len(checks) - 1):
                    shown = done
                    progress(done, f"{_day(int(now))}: {len(trainer.cache)} models trained")
        finally:
            trainer.close()
        result = _score(trainer, walk, t_start, len(checks))
    result.seconds = round(time.perf_counter() - began, 2)
    return result


def _day(ns: int) -> str:
    return str(np.datetime64(ns, "ns").astype("datetime64[m]")).replace("T", " ")


def _score(trainer: Trainer, walk: _Walk, t_start: int, checks: int) -> ReplayResult:
    """Each policy's deployed model on the rows that arrived while it was deployed."""
    ts, y = trainer.ts, trainer.y
    first = int(np.searchsorted(ts, t_start, side="left"))
    known_at_start = walk.known(t_start)
    majority = int(y[:known_at_start].mean() >= 0.5)
    base_hits = (y[first:] == majority).astype(np.float64)
    monthly = walk.bar >= DAY_NS
    unit = "datetime64[M]" if monthly else "datetime64[D]"
    keys = ts[first:].astype("datetime64[ns]").astype(unit)
    starts, group = np.unique(keys, return_inverse=True)
    counts = np.bincount(group, minlength=len(starts))
    base_by = np.bincount(group, weights=base_hits, minlength=len(starts)) / counts

    policies = []
    for p in (walk.configured, walk.never, walk.always):
        hits = base_hits.copy()  # rows before the first deploy: the always-guess
        bounds = [max(first, int(np.searchsorted(ts, at, side="left"))) for at, _m in p.deploys]
        for (_at, model), a, b in zip(p.deploys, bounds, [*bounds[1:], len(ts)][:len(bounds)],
                                         strict=True):
            if b > a:
                hits[a - first:b - first] = (trainer.predict(model, a, b) > 0.5) == (y[a:b] == 1)
        acc_by = np.bincount(group, weights=hits, minlength=len(starts)) / counts
        periods = [ReplayPeriod(start=_iso(s), accuracy=float(a), rows=int(n), baseline=float(b))
                   for s, a, n, b in zip(starts, acc_by, counts, base_by, strict=True)]
        initial = 1 if p.deploys and p.deploys[0][0] == t_start else 0
        policies.append(PolicyResult(
            name=p.name, accuracy=float(hits.mean()) if len(hits) else 0.0,
            retrains=max(0, p.trainings - 1), deploys=len(p.deploys) - initial,
            periods=periods, gated=p.gated, rejected=p.rejected, failed=p.failed, rule=p.rule,
            triggers=dict(p.triggers),
            deploy_times=[_iso(np.datetime64(at, "ns")) for at, _m in p.deploys]))
    return ReplayResult(
        rows=int(len(ts) - first), baseline_accuracy=float(base_hits.mean()),
        policies=policies, start=_iso(np.datetime64(t_start, "ns")),
        end=_iso(np.datetime64(int(ts[-1]), "ns")), period="month" if monthly else "day",
        baseline_label=f"always guessing '{'up' if majority else 'down'}'", checks=checks,
        trainings=sum(1 for m in trainer.cache.values() if isinstance(m, Model)))


def _iso(value: np.datetime64) -> str:
    return str(np.datetime64(value, "s")) + "+00:00"
