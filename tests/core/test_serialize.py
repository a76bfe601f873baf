"""One serializer (issue 9, point 4): every report, status and event goes to JSON and comes back
as the same typed value, and the JSON text is what the old per-module converters wrote."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import (
    BackendUnknown,
    BackupRow,
    CycleRecord,
    CycleResult,
    DriftCheck,
    DriftReport,
    EngineStatus,
    FeatureDrift,
    Health,
    HealthReport,
    JobState,
    Outcome,
    PerformanceCheck,
    PerformanceReport,
    SchedulerState,
    ShadowResult,
    VersionRow,
)
from clm_tray.core.ml.edge import EdgeResult
from clm_tray.core.ml.replay_result import PolicyResult, ReplayPeriod, ReplayResult
from clm_tray.core.serialize import dumps, from_jsonable, to_jsonable, to_plain

HEALTH = HealthReport(ok=True, url="http://127.0.0.1:8000/health", status_code=200,
                      latency_ms=3.2, reported_sha256="ab" * 32, reported_version="v0003",
                      reason="healthy", checked_at=1_800_000_000.5, identity="verified",
                      model_loaded=True, restarted=True)
DRIFT = DriftReport(score=0.3123, threshold=0.25, drifted=True, window_rows=900,
                    window_start="2026-11-01T00:00:00+00:00",
                    window_end="2026-11-02T00:00:00+00:00",
                    features=[FeatureDrift("ret_1", 0.41, 0.12, 0.7, True),
                              FeatureDrift("vol", 0.05, None, 0.3, False)],
                    reason="drifted", checked_at=1_800_000_000.0, typical_score=None, min_rows=200)
PERFORMANCE = PerformanceReport(rows=900, accuracy=0.489, auc=None, log_loss=0.69,
                                test_accuracy=0.552, baseline=0.51, drop=0.063, degraded=True,
                                enough=True, reason="degraded", checked_at=1_800_000_000.0,
                                min_rows=200)
VERSION = VersionRow(id="v0003", trained_at="2026-11-01T00:00:00+00:00", test_accuracy=0.552,
                     train_accuracy=0.61, auc=0.57, baseline=0.51, status="champion", size=2048,
                     sha256="cd" * 32, shadow=ShadowResult("promote", "no champion yet", rows=300))
CYCLE = CycleRecord(id=7, started_at=1.0, finished_at=9.5, trigger="manual",
                    outcome="failed, rolled back", reason="backend 503", version="v0004",
                    champion_before="v0003", duration_s=8.5, metrics={"test_accuracy": 0.55},
                    stages={"train": 4.2}, shadow=None,
                    attempts=[{"attempt": "deploy", "ok": False}])
SCHEDULER = SchedulerState(running=True, owner="tray", pid=4242, paused_until=None,
                           jobs=[JobState("age", 1.0, "model 2.0 h old (fresh)", 61.0),
                                 JobState("drift")], cycle_stage="train", cycle_progress=0.4,
                           updated_at=2.0)

REPORTS: list[Any] = [
    HEALTH, DRIFT, PERFORMANCE, VERSION, CYCLE, SCHEDULER,
    BackupRow(name="backup-0003", created="2026-11-01 10:00", version="v0002", sha256=None,
              size=10),
    CycleResult(ok=False, outcome=Outcome.NO_EDGE, reason="no edge", version="v0004",
                metrics={"edge": {"p_value": 0.4}}, stages={"train": 1.0},
                health=HEALTH, history_id=7),
    EngineStatus(health=Health.ATTENTION, summary="Live accuracy dropped", champion=VERSION,
                 age_hours=3.5, fresh=True, retrain_hours=24.0, challenger=None,
                 last_cycle=CYCLE, backend=HEALTH, drift=DriftCheck(**vars(DRIFT)),
                 performance=PerformanceCheck(**vars(PERFORMANCE), version="v0003"),
                 scheduler=SCHEDULER, data_rows=5000, data_symbols=3, workspace="/w"),
    EngineStatus(health=Health.ATTENTION, summary="Backend unknown", champion=None,
                 age_hours=None, fresh=False, retrain_hours=24.0, challenger=None,
                 last_cycle=None, backend=BackendUnknown(url=None, reason="unknown — not "
                                                         "checked since …", checked_at=None,
                                                         changed_at=5.0),
                 drift=None, performance=None, scheduler=SchedulerState()),
    ShadowResult(rows=300, candidate_accuracy=0.56, champion_accuracy=0.53, candidate_only=40,
                 champion_only=31, p_value=0.34, candidate_log_loss=0.68,
                 champion_log_loss=0.69, decision="promote", reason="no clear difference",
                 min_rows=100),
    EdgeResult(accuracy=0.497, baseline=0.515, baseline_label="always guessing 'down'",
               edge=-0.018, p_value=0.81, bars=400, passed=False, reason="49.7 % vs 51.5 %",
               rows=1200, bandwidth=5, statistic=None),
    ReplayResult(rows=3000, baseline_accuracy=0.51, start="2026-01-01", end="2026-03-01",
                 policies=[PolicyResult("configured", 0.54, 4, 3,
                                        periods=[ReplayPeriod("2026-01-01", 0.55, 24, 0.5)],
                                        triggers={"age": 4}, deploy_times=["2026-01-02"])],
                 checks=60, trainings=5, seconds=12.5),
]


@pytest.mark.parametrize("report", REPORTS, ids=lambda r: type(r).__name__)
def test_every_report_comes_back_from_json_as_the_same_typed_value(report: Any) -> None:
    text = dumps(report)
    back = from_jsonable(type(report), json.loads(text))
    assert back == report
    assert type(back) is type(report)
    assert dumps(back) == text  # and writes the same text again


def test_enums_nested_reports_and_outcomes_are_rebuilt_not_left_as_strings() -> None:
    status = from_jsonable(EngineStatus, json.loads(dumps(REPORTS[8])))
    assert status.health is Health.ATTENTION
    assert isinstance(status.champion, VersionRow) and isinstance(status.last_cycle, CycleRecord)
    assert status.last_cycle.failed  # "failed, rolled back" is a failure, read back as text
    assert isinstance(status.scheduler.jobs[0], JobState)
    result = from_jsonable(CycleResult, json.loads(dumps(REPORTS[7])))
    assert result.outcome is Outcome.NO_EDGE and not result.outcome.failed
    drift = from_jsonable(DriftReport, json.loads(dumps(DRIFT)))
    assert isinstance(drift.features[0], FeatureDrift) and drift.features[1].ks_d is None
    assert isinstance(status.backend, HealthReport) and isinstance(status.drift, DriftCheck)
    assert isinstance(status.performance, PerformanceCheck)
    assert status.performance.version == "v0003"
    unknown = from_jsonable(EngineStatus, json.loads(dumps(REPORTS[9])))
    assert isinstance(unknown.backend, BackendUnknown)  # the union picks by "state"


def test_status_json_keeps_the_keys_it_always_had_for_unknown_backend_drift_and_short_shadow(
        ) -> None:
    """`clm-tray status --json` is a contract: typed reports must write the old dicts' keys."""
    status = json.loads(dumps(EngineStatus(
        health=Health.ATTENTION, summary="s", champion=VERSION, age_hours=1.0, fresh=True,
        retrain_hours=24.0, challenger=None, last_cycle=None,
        backend=BackendUnknown(url="http://h/health", reason="unknown — not checked since …",
                               checked_at=1.0, changed_at=2.0),
        drift=DriftCheck(**vars(DRIFT), version="v0003"), performance=None,
        scheduler=SchedulerState())))
    assert status["backend"] == {"ok": None, "state": "unknown", "url": "http://h/health",
                                 "reason": "unknown — not checked since …", "checked_at": 1.0,
                                 "changed_at": 2.0}
    assert set(status["drift"]) == {
        "score", "threshold", "drifted", "window_rows", "window_start", "window_end",
        "features", "enough", "reason", "checked_at", "typical_score", "min_rows", "version"}
    assert set(status["drift"]["features"][0]) == {"feature", "psi", "ks_d", "importance", "over"}
    first = ShadowResult("promote", "no champion yet")  # shadow_step: nothing deployed yet
    assert to_jsonable(first) == {"decision": "promote", "reason": "no champion yet", "rows": 0}
    differ = ShadowResult("wait", "features differ", features_differ="missing: x",
                          champion="v0003")
    assert set(to_jsonable(differ)) == {"decision", "reason", "rows", "features_differ",
                                        "champion"}
    # a paired test that saw no rows keeps its null figures: the full shape is the full shape
    empty = to_jsonable(ShadowResult("wait", "no rows", 0, candidate_only=0, champion_only=0,
                                     p_value=1.0, min_rows=100))
    assert empty["candidate_accuracy"] is None and empty["champion_log_loss"] is None
    assert "champion" not in empty and "features_differ" not in empty


def test_a_newer_files_extra_keys_are_ignored_and_a_wrong_value_is_a_value_error() -> None:
    data = {**to_jsonable(PERFORMANCE), "added_by_a_newer_version": 1}
    assert from_jsonable(PerformanceReport, data) == PERFORMANCE
    with pytest.raises(ValueError):
        from_jsonable(PerformanceReport, {**data, "rows": "many"})


def test_json_text_is_what_the_old_converters_wrote() -> None:
    """Manifests, history rows, the state file and --json keep their exact text: numpy values
    are numbers, timestamps ISO-8601, paths and enums plain strings, keys sorted."""
    value = {
        "acc": np.float32(0.5), "n": np.int64(3), "flag": np.bool_(True),
        "arr": np.array([1.5, 2.5]), "nan": float("nan"), "path": Path("/m/xgb_model.ubj"),
        "when": dt.datetime(2026, 11, 1, 12, 30, tzinfo=dt.timezone.utc),
        "ts": pd.Timestamp("2026-11-01T12:30:00Z"), "day": dt.date(2026, 11, 1),
        "outcome": Outcome.ROLLED_BACK_AFTER_FAILURE, "health": Health.ERROR,
        "pair": (1, 2), "nested": {3: [np.float64(0.25)]},
    }
    assert dumps(value) == (
        '{"acc": 0.5, "arr": [1.5, 2.5], "day": "2026-11-01", "flag": true, '
        '"health": "error", "n": 3, "nan": NaN, "nested": {"3": [0.25]}, '
        '"outcome": "failed, rolled back", "pair": [1, 2], "path": "/m/xgb_model.ubj", '
        '"ts": "2026-11-01T12:30:00+00:00", "when": "2026-11-01T12:30:00+00:00"}')
    assert dumps({"b": 1, "a": [HEALTH.ok]}, indent=2) == '{\n  "a": [\n    true\n  ],\n  "b": 1\n}'


def test_a_result_for_another_process_loses_numpy_but_keeps_its_types() -> None:
    report = PerformanceReport(rows=np.int64(900), accuracy=np.float64(0.489), auc=None,
                               log_loss=np.float32(0.5), test_accuracy=0.552, baseline=0.51,
                               drop=0.063, degraded=np.bool_(True), enough=True, reason="",
                               checked_at=1.0)
    plain = to_plain({"report": report, "outcome": Outcome.FAILED, "pair": (np.int64(1), 2)})
    assert isinstance(plain["report"], PerformanceReport) and plain["outcome"] is Outcome.FAILED
    assert plain["pair"] == (1, 2) and type(plain["pair"][0]) is int
    assert type(plain["report"].rows) is int and type(plain["report"].degraded) is bool
    assert type(plain["report"].log_loss) is float
    assert "numpy" not in pickle.dumps(plain).decode("latin-1")


PAYLOADS: list[ev.Payload] = [
    ev.CycleStarted(trigger="manual", cycle=3, champion="v0002"),
    ev.CycleStage(stage="train", progress=0.39, message="round 120 of 300", cycle=3,
                  rounds_done=120, rounds_total=300, seconds_left=21.0),
    ev.CycleFinished(outcome=Outcome.ROLLED_BACK_AFTER_FAILURE, reason="backend 503",
                     version="v0003", ok=False, cycle=3, test_accuracy=0.55),
    ev.ModelDeployed(version="v0003", sha256="ab", test_accuracy=0.55, backup="/b/1",
                     verified=True, identity="verified"),
    ev.ModelRolledBack(version="v0002", from_version="v0003", reason="manual", verified=True),
    ev.ChallengerWaiting(version="v0004", reason="wait", shadow=ShadowResult("wait", "few rows")),
    ev.DriftChecked.of(DRIFT, version="v0003"),
    ev.PerformanceChecked.of(PERFORMANCE, version="v0003"),
    ev.BackendHealth.of(HEALTH),
    ev.SchedulerStateChanged(state=SCHEDULER),
    ev.RetrainDue(trigger="age: model 30.1 h old > 24 h", reason="auto-retrain is off"),
    ev.BusWarning(message="Redis unreachable", url="redis://***@h:1/0", stream="s"),
    ev.BusInfo(message="Redis reachable again", url="redis://***@h:1/0", stream="s"),
    ev.DemoFed(rows=3),
    ev.ReplayProgress(progress=0.5, message="month 3 of 6"),
]


def test_every_event_kind_has_a_payload() -> None:
    kinds = {v for k, v in vars(ev).items() if k.isupper() and isinstance(v, str) and "." in v}
    assert kinds == set(ev.PAYLOADS) == {type(p).KIND for p in PAYLOADS}


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_an_event_crosses_json_and_its_subscriber_reads_the_same_typed_payload(
        payload: ev.Payload) -> None:
    heard: list[ev.Event] = []
    bus = ev.EventBus()
    bus.subscribe(heard.append)
    sent = bus.emit(payload, "warning")
    assert heard == [sent] and sent.kind == payload.KIND and sent.payload == payload
    back = from_jsonable(ev.Event, json.loads(dumps(sent)))  # Redis, the worker's pipe
    assert back == sent and back.payload == payload and type(back.payload) is type(payload)


def test_event_data_keeps_its_flat_shape_and_leaves_out_only_unset_extras() -> None:
    bus = ev.EventBus()
    stage = bus.emit(ev.CycleStage(stage="recover", message="moved aside"))
    assert stage.data == {"stage": "recover", "progress": 0.0, "message": "moved aside"}
    finished = bus.emit(ev.CycleFinished(outcome=Outcome.CANCELLED, reason="stop", cycle=4))
    assert finished.data == {"outcome": "cancelled", "reason": "stop", "version": None,
                             "ok": False, "cycle": 4, "test_accuracy": None}
    drift = bus.emit(ev.DriftChecked.of(DRIFT, version="v0003"))
    assert drift.data == {**to_jsonable(DRIFT), "version": "v0003"}  # as the history row
    state = bus.emit(ev.SchedulerStateChanged(state=SCHEDULER))
    assert state.data == {"state": to_jsonable(SCHEDULER)}


def test_an_event_this_version_cannot_read_has_no_payload_and_breaks_nothing() -> None:
    assert ev.Event("model.retired", {"version": "v1"}).payload is None
    assert ev.Event(ev.CYCLE_FINISHED, {"outcome": "exploded"}).payload is None
    assert ev.Event(ev.CYCLE_FINISHED, {"outcome": "failed"}).payload == ev.CycleFinished()


def test_the_serializer_imports_neither_numpy_nor_pandas_nor_pydantic_until_it_decodes() -> None:
    import subprocess

    code = ("import sys; from clm_tray.core.serialize import dumps; "
            "dumps({'a': 1}); print(sorted(m for m in ('numpy', 'pandas', 'pydantic') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
