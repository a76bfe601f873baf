"""`clm-tray run` with the real Engine on a small workspace, in a real child process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clm_tray.core.registry.history import History


def clm(ws: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "clm_tray", *args], cwd=ws, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_run_once_trains_the_first_model_then_has_nothing_to_do(small_workspace):
    first = clm(small_workspace, "run", "--once")
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out
    history = History(small_workspace / "store" / "history.sqlite")
    cycles = history.cycles()
    assert [(c.trigger, c.outcome) for c in cycles] == [("age: no model deployed yet",
                                                        "deployed")]
    assert (small_workspace / "models" / "xgb_model.ubj").is_file()
    assert history.last_check("age") is not None

    again = clm(small_workspace, "run", "--once")
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0, out
    assert len(history.cycles()) == 1  # fresh model, checks not due: nothing ran


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_during_a_real_cycle_leaves_a_consistent_store(small_workspace):
    state_file = small_workspace / "store" / "scheduler_state.json"
    proc = clm(small_workspace, "run")
    seen_stage = ""
    end = time.monotonic() + 120
    while time.monotonic() < end and proc.poll() is None:
        try:
            seen_stage = json.loads(state_file.read_text()).get("cycle_stage", "")
        except (OSError, ValueError):
            seen_stage = ""
        if seen_stage in ("train", "version", "shadow", "deploy"):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    history = History(small_workspace / "store" / "history.sqlite")
    cycles = history.cycles()
    assert cycles and all(c.outcome != "running" for c in cycles), cycles
    assert not (small_workspace / "store" / "journal.json").exists()
    state = json.loads(state_file.read_text())
    assert state["running"] is False and state["owner"] == "daemon"
    deployed = small_workspace / "models" / "xgb_model.ubj"
    if cycles[0].outcome == "deployed":  # the signal came after the model was installed
        assert deployed.is_file()
    else:
        assert not deployed.exists(), (seen_stage, cycles[0])


def test_first_run_without_configuration_says_what_is_missing_and_does_not_fail(tmp_path):
    """Nothing set up yet: the age check finds no model, but no failing cycle is recorded and
    no back-off starts; the scheduler says what to set up."""
    from clm_tray.core.app.service import Engine
    from clm_tray.core.config.sources import load_settings
    from clm_tray.core.schedule.scheduler import Scheduler

    loaded = load_settings(environ={"QT_CLM_STORE_DIR": str(tmp_path / "store")}, cwd=tmp_path)
    engine = Engine(loaded)
    try:
        sched = Scheduler(engine, exclusive=False)
        outcomes = sched.run_due()
        assert engine.history.cycles() == []
        retrain = [o for o in outcomes if o.name == "retrain"]
        assert retrain and "not set up yet: QT_CLM_DATA_PATH is not set" in retrain[0].outcome
        assert "clm-tray setup" in sched.state().retrain_due
        assert sched.backoff()[0] is None
    finally:
        engine.close()


def test_the_age_check_also_probes_the_backend_so_health_is_never_stale(engine_factory,
                                                                        small_workspace):
    """A backend that died after its deploy is noticed by the next age check."""
    from clm_tray.core.schedule.scheduler import Scheduler

    deployed = engine_factory().retrain()
    assert deployed.outcome == "deployed", deployed.reason
    engine = engine_factory(backend="process", backend_command="true",
                            health_url="http://127.0.0.1:9/health")  # nothing listens
    sched = Scheduler(engine, exclusive=False)
    outcome = sched.run_check("age")
    assert "backend unhealthy: no answer from http://127.0.0.1:9/health" in outcome.outcome
    _at, report = engine.history.last_check("health")
    assert report["ok"] is False and report["url"] == "http://127.0.0.1:9/health"
    assert engine.status().health.value == "error"
