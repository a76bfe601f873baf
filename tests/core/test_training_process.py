"""The training process starts while the cycle loads its data, and never outlives the cycle.

``TrainingProcess`` spawns the child (which imports pandas and XGBoost) before the job exists,
so the cycle's load and the child's start-up overlap. These tests hold it to its promises: a
process that never gets a job ends at once; one that died before its job was sent is reported
as a training error naming how it ended; a cycle that decides not to train (data unchanged,
data unreadable) leaves no process behind; a normal cycle trains in it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import psutil
import pytest

from clm_tray.core.errors import TrainingError
from clm_tray.core.ml.train_result import TrainParams
from clm_tray.core.ml.trainprocess import TrainingProcess


def children() -> list[psutil.Process]:
    """This test's live child processes, but multiprocessing's own resource tracker (one per
    interpreter, started with the first spawned process, by design long-lived)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                    p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_until(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_process_that_gets_no_job_ends_when_closed():
    process = TrainingProcess()
    pid = process._supervisor.process.pid
    assert psutil.pid_exists(pid)
    started = time.monotonic()
    process.close()
    assert time.monotonic() - started < 10
    assert not multiprocessing.active_children()
    assert pid not in [p.pid for p in children()]
    process.close()  # idempotent


def test_a_process_that_died_before_its_job_is_a_training_error_naming_how(tmp_path):
    with TrainingProcess() as process:
        os.kill(process._supervisor.process.pid, signal.SIGKILL)
        assert wait_until(lambda: process._supervisor.process.exitcode is not None)
        with pytest.raises(TrainingError) as exc:
            process.train(tmp_path / "none.csv", target="target", features=None,
                          params=TrainParams(n_estimators=5), workdir=tmp_path / "work",
                          timeout=60)
    assert "SIGKILL" in str(exc.value) and "\n" not in str(exc.value)
    assert not list((tmp_path / "work").glob("*.ubj"))


def test_a_cycle_that_does_not_train_leaves_no_process_behind(engine_factory, small_workspace):
    engine = engine_factory()
    first = engine.retrain(deploy=False)
    assert first.outcome == "trained", first.reason
    again = engine.retrain(deploy=False)
    assert again.outcome == "unchanged", again.reason
    assert wait_until(lambda: not children(), 15), [p.cmdline() for p in children()]

    (small_workspace / "data" / "train.csv").write_text("timestamp,symbol\n")
    broken = engine.retrain(deploy=False, force=True)
    assert broken.outcome == "failed" and "train.csv" in broken.reason
    assert wait_until(lambda: not children(), 15), [p.cmdline() for p in children()]


@pytest.mark.parametrize("limit, ahead, order", [
    (None, True, ["training process started", "data loaded"]),  # CLI, small data: ahead
    (10, True, ["data loaded", "training process started"]),  # "large": no memory held early
    (None, False, ["data loaded", "training process started"]),  # a worker (tray, daemon)
])
def test_the_training_process_starts_ahead_of_the_load_on_the_cli_unless_the_data_is_large(
        engine_factory, monkeypatch, limit, ahead, order):
    import clm_tray.core.ml.data as data
    from clm_tray.core.ml import trainprocess

    if limit is not None:
        monkeypatch.setattr(trainprocess, "START_EARLY_MAX_BYTES", limit)
    seen: list[str] = []
    real_load, real_init = data.load_dataset, TrainingProcess.__init__

    def load(*args, **kwargs):
        frame = real_load(*args, **kwargs)
        seen.append("data loaded")
        return frame

    def start(self, **kwargs):
        seen.append("training process started")
        real_init(self, **kwargs)

    monkeypatch.setattr(data, "load_dataset", load)
    monkeypatch.setattr(TrainingProcess, "__init__", start)
    engine = engine_factory()
    engine.train_ahead = ahead
    result = engine.retrain(deploy=False)
    assert result.outcome == "trained", result.reason
    assert seen == order


def test_only_the_cli_engine_trains_ahead_and_a_worker_leaves_a_core_free(small_workspace):
    from clm_tray.core.app import compose
    from clm_tray.core.app.events import EventBus
    from clm_tray.core.config.sources import load_settings

    loaded = load_settings(small_workspace / ".env", cwd=small_workspace)
    assert compose.open_engine(loaded, "inline").train_ahead is True
    import pyarrow

    before = pyarrow.cpu_count()
    try:
        assert compose.worker_engine(loaded, EventBus()).train_ahead is False
        # ... and a worker leaves one core to the desktop when it parses data
        assert pyarrow.cpu_count() == max(1, (os.cpu_count() or 2) - 1)
    finally:
        pyarrow.set_cpu_count(before)


def test_training_runs_below_normal_cpu_priority():
    """A retrain must never take CPU from the trading backend or the desktop."""
    from clm_tray.core.ml.trainchild import NICE_STEPS

    with TrainingProcess() as process:
        child = psutil.Process(process._supervisor.process.pid)
        expected = min(19, os.nice(0) + NICE_STEPS)
        assert wait_until(lambda: child.nice() == expected, 30), child.nice()


def test_a_first_cycle_leaves_xgboost_to_the_training_process(small_workspace):
    """The cycle's own process needs XGBoost only to compare two models (the shadow test) or
    to write a pickle; a first model needs neither, so its half-second import is skipped."""
    import subprocess
    import sys

    code = ("import sys\nfrom clm_tray.cli import main\ntry:\n    main(['retrain', '--no-deploy'])"
            "\nexcept SystemExit:\n    pass\nprint('xgboost imported:', 'xgboost' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=small_workspace, text=True,
                         capture_output=True, timeout=300)
    assert "version v0001" in out.stdout, out.stdout + out.stderr
    assert out.stdout.strip().endswith("xgboost imported: False"), out.stdout
    manifest = next((small_workspace / "store" / "versions").glob("*/manifest.json"))
    import json

    import xgboost

    assert json.loads(manifest.read_text())["library_versions"]["xgboost"] == xgboost.__version__


def test_on_windows_training_asks_for_the_below_normal_priority_class(monkeypatch):
    """Windows cannot be run here: the real function runs against a stand-in kernel32."""
    import ctypes
    import sys
    import types

    from clm_tray.core.ml import trainchild

    calls: list[tuple[str, object]] = []
    kernel32 = types.SimpleNamespace(
        GetCurrentProcess=lambda: "this process",
        SetPriorityClass=lambda handle, cls: calls.append((handle, cls)) or 1)
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=kernel32),
                        raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "nice", lambda steps: pytest.fail("no nice on Windows"))
    trainchild.lower_priority()
    assert calls == [("this process", 0x4000)]  # BELOW_NORMAL_PRIORITY_CLASS
