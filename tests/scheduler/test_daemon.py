"""`run_daemon`: --once passes, and a clean stop on SIGTERM / SIGINT of a real child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sched_fakes import Clock, FakeEngine

from clm_tray.core.schedule.daemon import run_daemon
from clm_tray.core.schedule.state import read_state, write_pause

HERE = Path(__file__).parent


def test_once_runs_the_due_checks_and_one_retrain(tmp_path):
    clock = Clock()
    engine = FakeEngine(tmp_path, clock)
    clock.advance(hours=25)
    assert run_daemon(engine, once=True) == 0
    assert engine.retrains == ["age: model 25.0 h old > 24 h"]
    assert engine.drift_calls == 1 and engine.perf_calls == 1
    assert run_daemon(engine, once=True) == 0  # nothing due any more
    assert len(engine.retrains) == 1 and engine.drift_calls == 1


def test_once_exits_1_when_the_cycle_failed(tmp_path):
    clock = Clock()
    engine = FakeEngine(tmp_path, clock)
    clock.advance(hours=25)
    engine.fail_reasons = ["backend did not come up healthy"]
    assert run_daemon(engine, once=True) == 1
    clock.advance(minutes=40)
    assert run_daemon(engine, once=True) == 0  # backing off: no new attempt, no failure
    assert len(engine.retrains) == 1


def test_once_does_nothing_while_paused_or_disabled(tmp_path):
    clock = Clock()
    engine = FakeEngine(tmp_path, clock)
    clock.advance(hours=25)
    write_pause(engine.state_path, "holiday", None)
    assert run_daemon(engine, once=True) == 0
    engine.settings = engine.settings.model_copy(update={"enabled": False})
    engine.state_path.with_name("scheduler_pause.json").unlink()
    assert run_daemon(engine, once=True) == 0
    assert engine.retrains == [] and engine.drift_calls == 0


def test_daemon_in_a_thread_stops_when_asked(tmp_path):
    engine = FakeEngine(tmp_path, time.time)
    stop = threading.Event()
    codes: list[int] = []
    t = threading.Thread(target=lambda: codes.append(run_daemon(engine, stop=stop, poll=0.05)))
    t.start()
    end = time.monotonic() + 10
    # The age check and the state file are written by different steps: wait for both.
    while (engine.history.last_check("age") is None or read_state(engine.state_path) is None
           ) and time.monotonic() < end:
        time.sleep(0.05)
    assert read_state(engine.state_path).running
    stop.set()
    t.join(10)
    assert codes == [0]
    assert read_state(engine.state_path).running is False


def _child(root: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.getcwd()]))
    return subprocess.Popen([sys.executable, str(HERE / "daemon_child.py"), str(root), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stdout.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"timed out: {proc.communicate()[0]}")
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_cancels_the_running_cycle_and_exits_cleanly(tmp_path, sig):
    proc = _child(tmp_path)
    _wait_for_file(tmp_path / "cycle-started", proc)
    assert read_state(tmp_path / "scheduler_state.json").running
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "cancelling the running cycle" in out and "scheduler stopped" in out
    # The cycle ended through its own clean-up: recorded, nothing left "running".
    from clm_tray.core.registry.history import History

    cycles = History(tmp_path / "history.sqlite").cycles()
    assert [(c.outcome, c.reason) for c in cycles] == [("cancelled",
                                                         "cancelled; nothing was stored")]
    state = json.loads((tmp_path / "scheduler_state.json").read_text())
    assert state["running"] is False and state["pid"] == proc.pid


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_signal_during_once_cancels_the_cycle_without_calling_it_a_failure(tmp_path):
    proc = _child(tmp_path, "--once")
    _wait_for_file(tmp_path / "cycle-started", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out  # a cancelled cycle is neutral: no failure, no back-off
    assert (tmp_path / "exit-code").read_text() == "0"
