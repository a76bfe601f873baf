"""The scheduler's decisions, with the clock in the test's hand (nothing sleeps)."""

from __future__ import annotations

import pytest
from sched_fakes import HOUR, Clock, FakeEngine

from clm_tray.core.errors import CycleBusy, DataError, Stopped
from clm_tray.core.schedule.scheduler import RETRAIN_DUE, Scheduler
from clm_tray.core.schedule.state import describe_state, read_pause


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(tmp_path, clock, **settings) -> tuple[FakeEngine, Scheduler]:
    engine = FakeEngine(tmp_path, clock, **settings)
    return engine, Scheduler(engine)


def test_fresh_model_is_not_retrained(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    clock.advance(hours=2)
    outs = sched.run_due()
    assert [o.name for o in outs] == ["age", "drift", "performance"]
    assert engine.retrains == []
    assert sched.state().job("age").last_outcome == "model 2.0 h old (fresh)"


def test_three_day_sleep_catches_up_with_one_retrain(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    sched.on_tick()
    sched.run_due()
    clock.advance(hours=72)
    assert sched.on_tick() is True  # the wall clock jumped: a wake from sleep
    assert engine.retrains == ["age: model 72.0 h old > 24 h"]
    # APScheduler then fires every coalesced job (and more ticks) late: nothing more happens.
    for _ in range(5):
        for name in ("age", "drift", "performance"):
            sched.run_job(name)
        sched.run_due()
        sched.on_tick()
    assert len(engine.retrains) == 1
    assert engine.drift_calls == 2 and engine.perf_calls == 2  # before and after the sleep
    assert sched.state().job("age").last_outcome.startswith("model 72.0 h old > 24 h")


def test_stopped_app_catches_up_once_from_saved_timestamps(tmp_path, clock):
    engine, first = make(tmp_path, clock)
    first.run_due()
    clock.advance(hours=50)
    second = Scheduler(engine)  # a new process: only the history remembers
    assert second.due_checks() == ["age", "drift", "performance"]
    second.run_due()
    second.run_due()
    assert engine.retrains == ["age: model 50.0 h old > 24 h"]


def test_no_model_at_all_trains_the_first_one_without_checking_drift(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    engine.trained_at = None
    outs = {o.name: o for o in sched.run_due()}
    assert engine.retrains == ["age: no model deployed yet"]
    assert engine.drift_calls == 0 and not outs["drift"].failed


def test_drift_and_performance_are_due_from_saved_timestamps(tmp_path, clock):
    engine, sched = make(tmp_path, clock)  # drift every 6 h, performance every 3 h
    engine.history.add_check("drift", {"drifted": False}, at=clock() - 5 * HOUR)
    engine.history.add_check("performance", {"degraded": False}, at=clock() - 3 * HOUR + 30)
    engine.history.add_check("age", {}, at=clock() - 10 * 60)
    # A job fired on time counts as due even though the last check finished 30 s later.
    assert sched.due_checks() == ["performance"]
    clock.advance(hours=1)
    assert sched.due_checks() == ["age", "drift", "performance"]
    assert sched.run_job("drift")[0].outcome == "no drift: score 0.010 <= 0.05"
    assert sched.run_job("drift") == []  # fired twice: the second time it is not due
    assert engine.drift_calls == 1


def test_drift_over_threshold_retrains_once(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    clock.advance(hours=6)
    engine.drift_score = 0.081
    outs = sched.run_job("drift")
    assert engine.retrains == ["drift: score 0.081 > 0.05"]
    assert outs[-1].name == "retrain" and not outs[-1].failed
    assert "→ retrain deployed" in sched.state().job("drift").last_outcome
    clock.advance(minutes=30)
    sched.run_job("age")  # the saved drift result predates the new model: no second retrain
    assert len(engine.retrains) == 1


def test_performance_drop_retrains_with_a_readable_trigger(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    clock.advance(hours=3)
    engine.accuracy, engine.test_accuracy = 0.512, 0.543
    sched.run_job("performance")
    assert engine.retrains == [
        "performance: live accuracy 51.2 % is 3.1 points below test 54.3 %"]


def test_busy_store_skips_quietly(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    clock.advance(hours=30)
    engine.raise_error = CycleBusy("another cycle holds the lock")
    outs = sched.run_due()
    assert outs[-1].outcome == "skipped: a cycle is already running"
    assert not outs[-1].failed
    assert sched.backoff() == (None, "")


def test_a_retrain_stopped_because_the_app_is_ending_is_no_failure(tmp_path, clock):
    """A logout or shutdown ends the worker mid-cycle (errors.Stopped): like a Cancel, the
    next session must not start paused for hours "because the last cycle failed"."""
    engine, sched = make(tmp_path, clock)
    clock.advance(hours=30)
    engine.raise_error = Stopped("stopped before it finished: the process was asked to end")
    outs = sched.run_due()
    assert outs[-1].outcome == "stopped: the app was closing"
    assert not outs[-1].failed
    assert sched.backoff() == (None, "")
    assert sched.state().backoff_until is None


def test_backoff_grows_with_each_failure_and_is_bounded(tmp_path, clock):
    engine, sched = make(tmp_path, clock)  # 24 h x 0.25 -> 6 h, 12 h, 24 h, 24 h
    clock.advance(hours=30)
    engine.fail_reasons = ["data file missing"] * 4
    waits = []
    for _ in range(4):
        failed_at = clock()
        sched.run_due()
        until, reason = sched.backoff()
        waits.append((until - failed_at) / HOUR)
        assert reason.startswith("paused until ") and "data file missing" in reason
        # Half an hour later (the next age check) it still waits: no retrain.
        clock.advance(minutes=30)
        before = len(engine.retrains)
        sched.run_job("age")
        assert len(engine.retrains) == before
        assert "retrain due" in describe_state(_running(sched.state()))
        assert sched.state().backoff_until == until
        clock.now = until + 1
    assert waits == [6.0, 12.0, 24.0, 24.0]
    assert "because the last 4 cycles failed" in reason
    sched.run_due()  # back-off over; this cycle succeeds and clears it
    assert len(engine.retrains) == 5
    assert sched.backoff() == (None, "")
    assert sched.state().backoff_until is None


def test_retrain_that_raises_before_recording_still_backs_off(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    clock.advance(hours=30)
    engine.raise_error = DataError("QT_CLM_DATA_PATH is not set; set it.")
    outs = sched.run_due()
    assert outs[-1].failed
    until, reason = sched.backoff()
    assert until == pytest.approx(clock() + 6 * HOUR)
    assert "QT_CLM_DATA_PATH" in reason


def test_disabled_schedules_nothing_and_says_why(tmp_path, clock):
    engine, sched = make(tmp_path, clock, enabled=False)
    clock.advance(hours=100)
    assert sched.due_checks() == [] and sched.run_due() == []
    assert engine.retrains == [] and engine.drift_calls == 0
    state = sched.state()
    assert state.enabled is False and state.jobs and all(j.next_run is None for j in state.jobs)
    assert describe_state(state) == "disabled (QT_CLM_ENABLED=false)"


def test_auto_retrain_off_reports_due_without_retraining(tmp_path, clock):
    engine, sched = make(tmp_path, clock, auto_retrain=False)
    clock.advance(hours=30.1)
    sched.run_due()
    assert engine.retrains == []
    assert sched.state().retrain_due == (
        "model is 30.1 h old (> 24 h); QT_CLM_AUTO_RETRAIN=false, so not retraining")
    clock.advance(minutes=30)
    sched.run_job("age")
    due_events = [e for e in engine.bus.recent() if e.kind == RETRAIN_DUE]
    assert len(due_events) == 1  # announced once, not every half hour
    assert due_events[0].data["trigger"] == "age: model 30.1 h old > 24 h"


def test_pause_stops_every_job_and_resume_catches_up(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    sched.pause("backend maintenance")
    clock.advance(hours=30)
    assert sched.run_due() == [] and sched.run_job("age") == []
    state = sched.state()
    assert state.paused and state.paused_reason == "backend maintenance"
    assert state.paused_until is None
    assert read_pause(engine.state_path)["reason"] == "backend maintenance"  # persisted
    assert Scheduler(engine).due_checks() == []  # a restart stays paused
    sched.resume()
    assert read_pause(engine.state_path) is None
    sched.run_due()
    assert engine.retrains == ["age: model 30.0 h old > 24 h"]


def test_pause_until_expires_by_itself(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    clock.advance(hours=30)
    sched.pause("backend unreachable", until=clock() + HOUR)
    clock.advance(minutes=59)
    assert sched.run_due() == []
    assert describe_state(_running(sched.state())).startswith("paused until ")
    clock.advance(minutes=2)
    sched.on_tick()
    assert sched.state().paused is False
    assert read_pause(engine.state_path) is None
    sched.run_due()
    assert len(engine.retrains) == 1


def test_wake_from_sleep_checks_at_once(tmp_path, clock):
    engine, sched = make(tmp_path, clock)
    sched.run_due()
    assert sched.on_tick() is False
    clock.advance(seconds=60)
    assert sched.on_tick() is False  # an ordinary minute
    clock.advance(hours=4)  # the lid was closed: performance (3 h) and age became due
    assert sched.on_tick() is True
    assert engine.perf_calls == 2 and engine.drift_calls == 1
    assert sched.state().job("performance").last_run == clock()


def test_demo_feed_runs_on_its_own_interval(tmp_path, clock):
    engine, sched = make(tmp_path, clock, demo_feed_minutes=5)
    assert "demo-feed" in sched.due_checks()
    sched.run_job("demo-feed")
    sched.run_job("demo-feed")
    clock.advance(minutes=5)
    sched.run_job("demo-feed")
    assert engine.fed == 2
    assert sched.state().job("demo-feed").last_outcome == "appended 91 rows"


def test_a_check_that_raises_is_not_retried_every_tick(tmp_path, clock):
    engine, sched = make(tmp_path, clock)

    def broken() -> None:
        raise DataError("data.csv: cannot read it; fix the file.")

    engine.drift = broken  # type: ignore[method-assign]
    clock.advance(hours=7)
    out = sched.run_job("drift")[0]
    assert out.failed and out.outcome == "error: data.csv: cannot read it; fix the file."
    clock.advance(minutes=1)
    assert "drift" not in sched.due_checks()
    assert sched.state().job("drift").last_outcome.startswith("error: ")


def _running(state):
    state.running = True
    return state
