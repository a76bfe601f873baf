"""The state another process sees, and one short run of the real BackgroundScheduler."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sched_fakes import HOUR, Clock, FakeEngine

from clm_tray.core.app import events as ev
from clm_tray.core.fsutil import atomic_write_json, read_json
from clm_tray.core.schedule.scheduler import Scheduler, SchedulerRunning
from clm_tray.core.schedule.state import describe_state, read_state, write_pause


def wait_for(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture
def started(tmp_path):
    engine = FakeEngine(tmp_path, time.time)
    sched = Scheduler(engine, tick_seconds=3600)
    sched.start()
    yield engine, sched
    sched.stop()


def test_real_scheduler_runs_overdue_checks_at_start_and_replans(started):
    engine, sched = started
    jobs = {j.id: j for j in sched.timer.aps.get_jobs()}
    assert set(jobs) == {"tick", "age", "drift", "performance"}
    assert all(j.coalesce and j.max_instances == 1 for j in jobs.values())
    wait_for(lambda: engine.history.last_check("performance") is not None)
    wait_for(lambda: sched.state().job("performance").next_run is not None
             and sched.state().job("performance").next_run > time.time() + 2 * HOUR)
    assert engine.retrains == []  # the champion is fresh
    sched.apply_settings(engine.settings.model_copy(update={"check_minutes": 5,
                                                            "demo_feed_minutes": 1}))
    assert sched.timer.aps.get_job("age").trigger.interval == timedelta(minutes=5)
    assert sched.timer.aps.get_job("demo-feed") is not None
    wait_for(lambda: engine.fed == 1)
    # The age check ran a moment ago: its next run is derived from that, not "now".
    age = sched.state().job("age")
    assert age.next_run == pytest.approx(age.last_run + 300, abs=1)


def test_state_file_round_trip_for_another_process(started):
    engine, sched = started
    wait_for(lambda: engine.history.last_check("age") is not None)
    sched.publish_state(force_write=True)
    state = read_state(engine.state_path)
    assert state.running and state.owner == "daemon" and state.pid == os.getpid()
    assert {j.name for j in state.jobs} == {"age", "drift", "performance"}
    assert all(j.next_run for j in state.jobs)
    assert state.job("age").last_outcome == "model 0.0 h old (fresh)"
    assert describe_state(state).startswith("next ")
    # The CLI pauses the daemon through the store; both sides see it.
    write_pause(engine.state_path, "backend upgrade", time.time() + HOUR, by="cli")
    assert read_state(engine.state_path).paused_reason == "backend upgrade"
    assert sched.state().paused and sched.run_due() == []


def test_state_of_a_dead_or_silent_scheduler_is_not_running(tmp_path):
    engine = FakeEngine(tmp_path, time.time)
    sched = Scheduler(engine, tick_seconds=3600)
    sched.start()
    sched.stop()
    assert read_state(engine.state_path).running is False  # a clean stop says so
    d = read_json(engine.state_path)
    d["running"] = True
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    d["pid"] = int(dead.stdout)
    atomic_write_json(engine.state_path, d)
    state = read_state(engine.state_path)
    assert state.running is False and all(j.next_run is None for j in state.jobs)
    d["pid"] = os.getpid()
    atomic_write_json(engine.state_path, d)
    assert read_state(engine.state_path, clock=lambda: d["updated_at"] + 60).running
    assert not read_state(engine.state_path, clock=lambda: d["updated_at"] + 600).running
    assert read_state(tmp_path / "missing.json") is None


def test_second_scheduler_for_the_same_store_is_refused(tmp_path):
    engine = FakeEngine(tmp_path, time.time)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        atomic_write_json(engine.state_path, {"running": True, "owner": "tray",
                                              "pid": other.pid, "updated_at": time.time()})
        with pytest.raises(SchedulerRunning, match=r"already runs .*tray, pid"):
            Scheduler(engine).start()
    finally:
        other.kill()
        other.wait()


def test_cycle_stage_and_state_events_come_from_the_bus(tmp_path):
    clock = Clock()
    engine = FakeEngine(tmp_path, clock)
    sched = Scheduler(engine, tick_seconds=3600)
    seen: list[str] = []
    engine.on_retrain_started = lambda: seen.append(sched.state().cycle_stage)
    sched.start()
    try:
        clock.advance(hours=30)
        sched.run_due()
        assert seen == ["train"]
        assert sched.state().cycle_stage == ""
        states = [e for e in engine.bus.recent() if e.kind == ev.SCHEDULER_STATE]
        assert any(e.data["state"]["cycle_stage"] == "train" for e in states)
        assert read_state(engine.state_path, clock).cycle_stage == ""
    finally:
        sched.stop()
