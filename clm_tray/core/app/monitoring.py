"""The scheduled checks on the engine's side: drift, live performance, the demo feed, replay.

Each loads the current data and the champion, picks its rows by the one rule in
``monitor/windows.py``, lets ``monitor/drift.py`` / ``monitor/performance.py`` do the
arithmetic, and records the report in the history database and on the bus (the scheduler
decides from what was recorded). An adopted champion (deployed before clm-tray, no training
data to compare with) is reported as "not measured" rather than with invented numbers. Runs
where the heavy work runs (``service.Engine``: the CLI, a worker process): these functions
import pandas and XGBoost.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from clm_tray.core.app import actions
from clm_tray.core.app import events as ev
from clm_tray.core.app.cycle_run import CycleContext
from clm_tray.core.app.shadow_step import shadow_against_champion
from clm_tray.core.app.status import DriftReport, PerformanceReport
from clm_tray.core.errors import ConfigError, StoreError
from clm_tray.core.monitor import windows
from clm_tray.core.serialize import to_jsonable

if TYPE_CHECKING:
    import pandas as pd

    from clm_tray.core.ml.data import Dataset
    from clm_tray.core.ml.replay_result import ReplayResult
    from clm_tray.core.registry.store import ModelVersion


def load_data(ctx: CycleContext) -> Dataset:
    """The training data as configured (cached as Arrow next to the store)."""
    from clm_tray.core.ml.data import load_dataset

    s = ctx.settings
    if s.resolved_data_path is None:
        raise ConfigError("QT_CLM_DATA_PATH is not set; point it at your training data.")
    return load_dataset(s.resolved_data_path, target=s.target, features=s.features or None,
                        encoding=s.data_encoding or None, cache_dir=ctx.store.root / "cache")


def drift(ctx: CycleContext) -> DriftReport:
    """Has the input data moved away from what the champion was trained on?"""
    from clm_tray.core.monitor.drift import drift_report

    s = ctx.settings
    adopted = _adopted_champion(ctx)
    if adopted is not None:
        report = DriftReport(0.0, s.drift_threshold, False, 0, "", "", enough=False,
                             reason=_not_measured(adopted), checked_at=ctx.clock())
        _record_check(ctx, "drift", ev.DriftChecked.of(report, version=adopted.id), "info")
        return report
    champion, m, frame = _champion_and_data(ctx)
    reference, current = windows.drift_frames(frame, m, s.drift_window_hours)
    report = drift_report(reference, current, m["reference_profile"], m["importance"],
                          s.drift_threshold, min_rows=windows.drift_min_rows(s))
    _record_check(ctx, "drift", ev.DriftChecked.of(report, version=champion.id),
                  "warning" if report.drifted else "info")
    return report


def performance(ctx: CycleContext) -> PerformanceReport:
    """Live accuracy of the champion on new rows; re-tests a waiting challenger too."""
    from clm_tray.core.ml.modelfile import load_booster
    from clm_tray.core.monitor.performance import live_performance

    s = ctx.settings
    adopted = _adopted_champion(ctx)
    if adopted is not None:
        report = PerformanceReport(0, None, None, None, None, None, None, False, False,
                                   _not_measured(adopted), ctx.clock())
        _record_check(ctx, "performance", ev.PerformanceChecked.of(report, version=adopted.id),
                      "info")
        return report
    champion, m, frame = _champion_and_data(ctx)
    report = live_performance(
        load_booster(champion.model_path), windows.rows_after_training(frame, m),
        m["features"], m["target"], m["metrics"]["test_accuracy"],
        m["metrics"]["baseline_accuracy"], s.shadow_min, s.perf_drop,
    )
    _record_check(ctx, "performance", ev.PerformanceChecked.of(report, version=champion.id),
                  "warning" if report.degraded else "info")
    _retest_challenger(ctx, frame)
    return report


def _retest_challenger(ctx: CycleContext, frame: pd.DataFrame) -> None:
    """A challenger waiting for more new rows is judged again now that there are more."""
    cid = ctx.store.aliases().get("challenger")
    if not cid:
        return
    candidate = ctx.store.get(cid)
    shadow = shadow_against_champion(ctx, candidate, frame)
    ctx.store.annotate(cid, "shadow", shadow)
    if shadow.decision == "reject":
        ctx.store.set_aliases(challenger=None)
        ctx.store.annotate(cid, "status", "rejected")
    elif shadow.decision == "promote":
        if ctx.settings.auto_promote:
            actions.promote(ctx, cid)
        else:
            ctx.bus.emit(ev.ChallengerWaiting(
                version=cid, reason="passed the shadow test; waiting for approval"))


def feed_demo(ctx: CycleContext) -> int:
    """Demo only: append the next hourly bar for every symbol (the data keeps growing)."""
    from clm_tray.core.demo.feed import feed

    path = ctx.settings.resolved_data_path
    if path is None:
        return 0
    n = feed(path, hours=1)
    ctx.bus.emit(ev.DemoFed(rows=n))
    return n


def replay(ctx: CycleContext, start: str | None = None,
           cancel: threading.Event | None = None) -> ReplayResult:
    """Would the configured policy have paid on this data? (ml/replay.py; read-only: nothing
    in the store, the deploy folder or the backend is touched.) Progress goes out as
    ``replay.progress`` events; ``cancel`` stops it between trainings."""
    from clm_tray.core.ml.replay import run_replay

    def progress(done: float, message: str) -> None:
        ctx.bus.emit(ev.ReplayProgress(progress=round(done, 3), message=message))

    return run_replay(load_data(ctx), ctx.settings, start=start, progress=progress,
                      cancel=cancel)


def _champion(ctx: CycleContext) -> ModelVersion | None:
    cid = ctx.store.aliases().get("champion")
    return ctx.store.get(cid) if cid else None


def _adopted_champion(ctx: CycleContext) -> ModelVersion | None:
    champion = _champion(ctx)
    return champion if champion is not None and champion.adopted else None


def _champion_and_data(ctx: CycleContext) -> tuple[ModelVersion, dict[str, Any], pd.DataFrame]:
    """The champion, its manifest and the current data: what every check starts from."""
    champion = _champion(ctx)
    if champion is None:
        raise StoreError("no champion model yet; run `clm-tray retrain` first.")
    return champion, champion.manifest, load_data(ctx).frame


def _record_check(ctx: CycleContext, kind: str, checked: ev.Payload, level: str) -> None:
    """A check's report (with the version it was measured for) into history and onto the
    bus: the same fields in both."""
    ctx.history.add_check(kind, to_jsonable(checked), at=ctx.clock())
    ctx.bus.emit(checked, level=level)


def _not_measured(champion: ModelVersion) -> str:
    """Why a check has nothing to say about an adopted champion (no invented numbers)."""
    return (f"not measured: {champion.id} was adopted (clm-tray did not train it, so it has no "
            "training data to compare with); measured from the first model clm-tray trains")
