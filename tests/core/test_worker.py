"""open_engine(..., "worker"): the heavy calls run in a worker process, the caller stays light.

Real parts throughout: a spawned worker, a real training child, real XGBoost on the small
workspace, real files; the caller's bus must see the worker's events while it runs.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from clm_tray.core.app import events as ev
from clm_tray.core.app.compose import open_engine
from clm_tray.core.app.port import EnginePort
from clm_tray.core.app.status import DriftReport, HealthReport, PerformanceReport
from clm_tray.core.config.sources import load_settings
from clm_tray.core.errors import DataError, Stopped, StoreError, WorkerError
from clm_tray.core.fsutil import sha256_file

HEAVY = ("pandas", "xgboost", "sklearn", "scipy")


@pytest.fixture
def isolated_engine(small_workspace: Path, monkeypatch: pytest.MonkeyPatch):
    """Like ``engine_factory``, but the engine the tray opens: open_engine(..., "worker")."""
    made: list[EnginePort] = []

    def make(**overrides: object) -> EnginePort:
        for key, value in overrides.items():
            monkeypatch.setenv(f"QT_CLM_{key.upper()}", str(value))
        engine = open_engine(load_settings(small_workspace / ".env", cwd=small_workspace),
                             "worker")
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


class Recorder:
    """Events as the caller's bus delivers them, with when and on which thread."""

    def __init__(self, bus: ev.EventBus) -> None:
        self.events: list[ev.Event] = []
        self.threads: set[int] = set()
        self.arrived = threading.Condition()
        bus.subscribe(self._on_event)

    def _on_event(self, event: ev.Event) -> None:
        with self.arrived:
            self.events.append(event)
            self.threads.add(threading.get_ident())
            self.arrived.notify_all()

    def wait_for(self, pred, timeout: float = 60.0) -> ev.Event:  # noqa: ANN001
        with self.arrived:
            found = self.arrived.wait_for(
                lambda: next((e for e in self.events if pred(e)), None), timeout)
        assert found, f"no such event within {timeout} s; got {[e.kind for e in self.events]}"
        return found

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def _in_thread(fn):  # noqa: ANN001, ANN202
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _worker_processes() -> list[psutil.Process]:
    """This test's spawned descendants: the worker and, under it, the training process."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def _is_train_stage(e: ev.Event) -> bool:
    return e.kind == ev.CYCLE_STAGE and e.data.get("stage") == "train"


def test_isolated_retrain_deploys_and_the_progress_arrives_while_it_runs(
        isolated_engine, small_workspace, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "1")  # a train stage long enough to look at
    engine = isolated_engine()
    seen = Recorder(engine.bus)

    thread, box = _in_thread(engine.retrain)
    seen.wait_for(_is_train_stage)
    # live: the cycle is still running in the worker when its stage reaches us
    assert thread.is_alive() and ev.CYCLE_FINISHED not in seen.kinds()
    assert _worker_processes(), "the cycle should run in a spawned worker"
    thread.join(120)

    res = box["result"]
    assert res.ok and res.outcome == "deployed", res.reason
    champion = engine.store.get(engine.store.aliases()["champion"])
    assert res.version == champion.id
    assert sha256_file(small_workspace / "models" / "xgb_model.ubj") == champion.sha256
    assert engine.history.last_cycle().outcome == "deployed"
    kinds = seen.kinds()
    assert kinds[0] == ev.CYCLE_STARTED and kinds[-1] == ev.CYCLE_FINISHED
    assert ev.MODEL_DEPLOYED in kinds
    stages = [e.data["stage"] for e in seen.events if e.kind == ev.CYCLE_STAGE]
    assert len(stages) >= 5
    assert stages.index("load") < stages.index("train") < stages.index("deploy")
    assert [e.ts for e in seen.events] == sorted(e.ts for e in seen.events)
    assert seen.threads == {thread.ident}  # published on the caller's thread, as in-process
    assert not _worker_processes()  # joined: nothing left running


def test_a_clm_error_in_the_worker_is_the_same_class_and_line(
        engine_factory, isolated_engine, small_workspace):
    local, isolated = engine_factory(), isolated_engine()

    with pytest.raises(StoreError) as in_process:
        local.drift()
    with pytest.raises(StoreError) as in_worker:
        isolated.drift()
    assert str(in_worker.value) == str(in_process.value)

    assert local.retrain().ok
    (small_workspace / "data" / "train.csv").unlink()
    with pytest.raises(DataError) as in_process:
        local.performance()
    with pytest.raises(DataError) as in_worker:
        isolated.performance()
    assert type(in_worker.value) is type(in_process.value)
    assert str(in_worker.value) == str(in_process.value)
    assert "\n" not in str(in_worker.value)

    res, local_res = isolated.retrain(), local.retrain()
    assert not res.ok and res.outcome == "failed"
    assert res.reason == local_res.reason and "train.csv" in res.reason


def test_cancel_during_training_ends_the_isolated_cycle_quickly(isolated_engine, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "5")
    engine = isolated_engine()
    seen = Recorder(engine.bus)

    thread, box = _in_thread(engine.retrain)
    seen.wait_for(_is_train_stage)
    time.sleep(0.3)  # the training process is up
    spawned = _worker_processes()
    assert len(spawned) == 2, "a worker and its training process"
    cancelled_at = time.monotonic()
    engine.cancel_cycle()
    thread.join(10)

    assert not thread.is_alive()
    assert time.monotonic() - cancelled_at < 3.0
    res = box["result"]
    assert res.outcome == "cancelled" and "cancelled" in res.reason, res.reason
    assert engine.store.aliases().get("champion") is None and engine.store.list() == []
    finished = seen.wait_for(lambda e: e.kind == ev.CYCLE_FINISHED)
    assert finished.data["outcome"] == "cancelled" and finished.level == "info"
    assert engine.history.last_cycle().outcome == "cancelled"
    assert engine.history.failures_since_success() == []
    _gone, alive = psutil.wait_procs(spawned, timeout=5)
    assert not alive, f"left running: {alive}"


def _signal_the_worker_while_it_trains(engine: EnginePort, sig: int
                                      ) -> tuple[dict, Recorder, list[psutil.Process]]:
    """Retrain in a thread, send ``sig`` to the worker once its training process is up, wait
    for the call to end: (the call's result or error, the events, the processes spawned)."""
    seen = Recorder(engine.bus)
    thread, box = _in_thread(engine.retrain)
    seen.wait_for(_is_train_stage)
    time.sleep(0.3)  # the training process is up
    spawned = _worker_processes()
    worker = next(p for p in multiprocessing.active_children() if p.name == "clm-tray-retrain")
    os.kill(worker.pid, sig)
    thread.join(30)
    assert not thread.is_alive()
    return box, seen, spawned


def test_a_killed_worker_is_one_line_with_its_exit_and_the_cycle_is_closed(
        isolated_engine, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "5")
    engine = isolated_engine()
    box, seen, spawned = _signal_the_worker_while_it_trains(engine, signal.SIGKILL)

    err = box["error"]
    assert isinstance(err, WorkerError)
    assert "killed by SIGKILL" in str(err) and "\n" not in str(err)
    finished = seen.wait_for(lambda e: e.kind == ev.CYCLE_FINISHED)
    assert finished.data["ok"] is False
    assert engine.history.last_cycle().outcome == "failed"  # not left "running"
    _gone, alive = psutil.wait_procs(spawned, timeout=10)  # the trainer ends with its parent
    assert not alive, f"left running: {alive}"


def test_the_isolated_caller_never_imports_pandas_xgboost_sklearn_or_scipy(small_workspace):
    script = f"""
import json, sys
from pathlib import Path
from clm_tray.core.app.compose import open_engine
from clm_tray.core.config.sources import load_settings

ws = Path({str(small_workspace)!r})
engine = open_engine(load_settings(ws / ".env", cwd=ws), "worker")
engine.status()
after_status = [m for m in {HEAVY!r} if m in sys.modules]
result = engine.retrain()
drift, perf, health = engine.drift(), engine.performance(), engine.health()
rows = engine.feed_demo()
st = engine.status(); engine.versions(); engine.backups(); engine.history_rows()
engine.accuracy_history(); engine.champion_age_hours(); engine.scheduler_state()
engine.pause("testing"); engine.resume()
engine.close()
print(json.dumps({{
    "after_status": after_status,
    "after_all": [m for m in {HEAVY + ("numpy",)!r} if m in sys.modules],
    "outcome": result.outcome,
    "types": [type(drift).__name__, type(perf).__name__, type(health).__name__],
    "rows": rows,
    "typed": [type(x).__name__ for x in (result.shadow, result.health, st.backend, st.drift,
                                         st.performance, st.champion.shadow)],
}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=small_workspace)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["after_status"] == []
    assert got["after_all"] == []
    assert got["outcome"] == "deployed"
    assert got["types"] == [DriftReport.__name__, PerformanceReport.__name__,
                            HealthReport.__name__]
    assert got["rows"] > 0
    # the reports arrive typed across the process boundary, not as dicts
    assert got["typed"] == ["ShadowResult", "HealthReport", "HealthReport", "DriftCheck",
                            "PerformanceCheck", "ShadowResult"]


def test_a_worker_asked_to_end_mid_cycle_is_stopped_like_a_cancel_not_failed(
        isolated_engine, monkeypatch):
    """A logout or shutdown sends SIGTERM to every process, the worker included: its cycle
    ends as cancelled, never as a failure that would hold automatic retrains back."""
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "5")
    engine = isolated_engine()
    box, seen, spawned = _signal_the_worker_while_it_trains(engine, signal.SIGTERM)

    err = box.get("error")
    assert isinstance(err, Stopped), box
    assert "asked to end" in str(err) and "\n" not in str(err)
    finished = seen.wait_for(lambda e: e.kind == ev.CYCLE_FINISHED)
    assert finished.data["outcome"] == "cancelled" and finished.level == "info"
    last = engine.history.last_cycle()
    assert last is not None and last.outcome == "cancelled" and "asked to end" in last.reason
    assert engine.history.close_dangling("a process died") == 0  # nothing left "running"
    assert engine.history.failures_since_success() == []
    _gone, alive = psutil.wait_procs(spawned, timeout=10)
    assert not alive, f"left running: {alive}"
