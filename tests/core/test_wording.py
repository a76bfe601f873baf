"""Plain words (issue 13, point 2): numbers become text in one place, and notifications
say what happened without setting names or test statistics."""

from __future__ import annotations

from clm_tray.core.app import events as ev
from clm_tray.core.app import wording
from clm_tray.core.app.notify_rules import ERROR, NoticeRules
from clm_tray.core.app.status import Outcome, ShadowResult


def event(payload: ev.Payload, level: str = "info") -> ev.Event:
    """The event as a subscriber gets it: published on a bus, read back from its data."""
    return ev.EventBus().emit(payload, level)


def test_numbers_read_the_same_way_everywhere():
    assert wording.pct(0.4891) == "48.9 %" and wording.pct(None) == "–"
    assert wording.age(0.02) == "1 min" and wording.age(3.25) == "3.2 h"
    assert wording.age(72) == "3.0 days"
    assert wording.count(4823, "new rows") == "4,823 new rows"
    assert wording.score(0.03124) == "0.031"
    assert wording.duration(21.4) == "about 21 s" and wording.duration(150) == "about 2 min"
    assert wording.stage_line("rollback", "verify", 0.86) == \
        "Rolling back — checking the backend (86 %)"
    assert wording.stage_line("manual", "train", 0.39, "round 120 of 300", 21.0) == \
        "Retraining — training (39 %) · round 120 of 300 · about 21 s left"


def test_a_waiting_new_model_says_how_many_more_rows_it_needs():
    said, detail = wording.shadow_words(ShadowResult(
        "wait", "wait: only 40 shadow rows, QT_CLM_SHADOW_MIN=100; accuracy … (b=0, c=0, "
                "McNemar p=1)", rows=40, min_rows=100))
    assert said == "New model waits for 60 more rows with a known outcome before it can be compared"
    assert "QT_CLM_SHADOW_MIN" in detail  # the details stay available, on hover


def test_notifications_are_plain_and_failures_carry_actions():
    rules = NoticeRules()
    waiting = rules.notice_for(event(ev.ChallengerWaiting(
        version="v0004",
        reason="wait: only 40 shadow rows, QT_CLM_SHADOW_MIN=100; b=0, c=0, McNemar p=1",
        shadow=ShadowResult("wait", rows=40, min_rows=100))))
    drift = rules.notice_for(event(ev.DriftChecked(
        score=0.3123, threshold=0.25, drifted=True, window_rows=900, window_start="",
        window_end="", version="v0003"), "warning"))
    live = rules.notice_for(event(ev.PerformanceChecked(
        rows=900, accuracy=0.489, auc=0.5, log_loss=0.69, test_accuracy=0.552, baseline=0.51,
        drop=0.063, degraded=True, enough=True, reason="", checked_at=0.0), "warning"))
    for notice in (waiting, drift, live):
        text = f"{notice.summary} {notice.body}"
        for word in ("QT_CLM_", "McNemar", "b=", "p=", "`"):
            assert word not in text, text
        assert notice.actions == ()
    assert drift.body == "Drift 0.312 — above the alarm level 0.250"
    assert live.body == "Live 48.9 %, 6.3 points below its test (55.2 %)"
    failed = rules.notice_for(event(ev.CycleFinished(
        ok=False, outcome=Outcome.ROLLED_BACK_AFTER_FAILURE, reason="backend 503"), "error"))
    assert failed.level == ERROR and failed.actions == ("open", "restart", "rollback")


def test_an_adopted_model_is_not_measured_and_an_unnamed_model_is_said_so():
    from clm_tray.core.app.status import (
        IDENTITY_NOT_REPORTED,
        DriftCheck,
        EngineStatus,
        Health,
        HealthReport,
        PerformanceCheck,
        SchedulerState,
        VersionRow,
    )

    champ = VersionRow(id="v0000-adopted-x", trained_at="", test_accuracy=None,
                       train_accuracy=None, auc=None, baseline=None, status="champion", size=1,
                       sha256="ab", adopted=True, files=["xgb_model.pkl"])
    st = EngineStatus(
        health=Health.HEALTHY, summary="", champion=champ, age_hours=31.2, fresh=False,
        retrain_hours=24, challenger=None, last_cycle=None,
        backend=HealthReport(ok=True, url="u", status_code=200, latency_ms=3.0,
                             reported_sha256=None, reported_version=None, reason="up",
                             identity=IDENTITY_NOT_REPORTED),
        drift=DriftCheck(0.0, 0.05, False, 0, "", "", enough=False,
                         reason="not measured: adopted"),
        performance=PerformanceCheck(0, None, None, None, None, None, None, False, False,
                                     "not measured: adopted", 0.0),
        scheduler=SchedulerState())
    f = wording.facts(st)
    assert f.test == "Test accuracy not measured (adopted model)"
    assert f.live == "Live not measured (adopted model)"
    assert f.drift == "Drift not measured (adopted model)"
    assert f.backend == "Healthy (model not reported)"
    assert f.age == "31 h old"
