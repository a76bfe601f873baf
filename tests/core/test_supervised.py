"""The supervised-process primitive with real child processes: an answer or an error comes
back, Cancel and timeouts stop the child, a dead child is named, and no child outlives its app."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from clm_tray.core import supervised
from clm_tray.core.errors import ClmError, DataError, TrainingError
from clm_tray.core.supervised import (
    Cancelled,
    Crashed,
    Died,
    ParentDeath,
    TimedOut,
    exit_reason,
)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import supervised_children as kids  # noqa: E402


def test_the_childs_answer_comes_back_from_another_process():
    answer = supervised.run(kids.answer, ([1, "two", 3.5],), name="clm-tray-test")
    assert answer["value"] == [1, "two", 3.5]
    assert answer["pid"] != os.getpid()


def test_progress_events_and_log_lines_arrive_in_order_on_the_calling_thread(caplog):
    progress: list[tuple[int, int]] = []
    events: list[tuple[object, str]] = []
    caplog.set_level(logging.INFO)
    answer = supervised.run(
        kids.report_then_answer, (5,), name="clm-tray-test", relay_logs=True,
        on_progress=lambda d, t: progress.append((d, t)),
        on_event=lambda data: events.append((data, threading.current_thread().name)))
    assert answer == "done"
    assert progress == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert [e for e, _ in events] == [{"round": n} for n in range(1, 6)]
    assert {thread for _, thread in events} == {threading.current_thread().name}
    lines = [r for r in caplog.records if r.name == "clm_tray.tests.child"]
    assert [r.getMessage() for r in lines] == ["all 5 rounds reported"]  # not the debug one
    assert lines[0].process != os.getpid()


def test_a_clm_error_in_the_child_is_the_same_class_with_the_same_line():
    with pytest.raises(DataError, match="^train.csv has no 'close' column; add it.$"):
        supervised.run(kids.fail, ("DataError", "train.csv has no 'close' column; add it."),
                       name="clm-tray-test")


def test_an_error_defined_outside_errors_py_comes_back_as_its_errors_py_base():
    with pytest.raises(TrainingError, match="^odd$"):
        supervised.run(kids.fail_outside, ("odd",), name="clm-tray-test")


def test_a_bug_in_the_child_is_one_line_naming_the_exception():
    with pytest.raises(Crashed) as exc:
        supervised.run(kids.bug, name="clm-tray-test")
    assert exc.value.reason == "ValueError: no such column"
    assert not isinstance(exc.value, ClmError)


def test_cancel_lets_a_cooperative_child_answer(tmp_path):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    answer = supervised.run(kids.wait_for_stop, (str(tmp_path),), name="clm-tray-test",
                            cancel=cancel)
    assert answer == "stopped cleanly"
    assert (tmp_path / "stopped").exists()


def cancel_once_started(workdir: Path) -> threading.Event:
    """A cancel flag set as soon as the child has started its work."""
    cancel = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not (workdir / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        cancel.set()

    threading.Thread(target=watch, daemon=True).start()
    return cancel


def test_cancel_with_a_grace_stops_a_child_that_does_not_listen(tmp_path):
    cancel = cancel_once_started(tmp_path)
    with pytest.raises(Cancelled):
        supervised.run(kids.sleep_long, (str(tmp_path),), name="clm-tray-test", cancel=cancel,
                       cancel_grace=0.2)
    assert not psutil.pid_exists(int((tmp_path / "started").read_text())) or \
        psutil.Process(int((tmp_path / "started").read_text())).status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "unwound").exists()  # terminated outright: no clean-up ran


def test_terminate_unwinds_a_child_that_asked_for_it(tmp_path):
    cancel = cancel_once_started(tmp_path)
    with pytest.raises(Cancelled):
        supervised.run(kids.sleep_long, (str(tmp_path),), name="clm-tray-test", cancel=cancel,
                       cancel_grace=0.0, unwind_on_terminate=True)
    assert (tmp_path / "unwound").exists()  # its finally block ran (a worker stops its trainer)


def test_the_stop_flag_can_unwind_the_childs_main_thread():
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    assert supervised.run(kids.unwind_on_stop, name="clm-tray-test", cancel=cancel) == \
        "left the loop"


def test_a_timeout_stops_the_child_and_says_how_long_it_ran(tmp_path):
    with pytest.raises(TimedOut, match="1.5 s"):
        supervised.run(kids.sleep_long, (str(tmp_path),), name="clm-tray-test", timeout=1.5,
                       stop_grace=0.1)
    pid = int((tmp_path / "started").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_child_killed_by_a_signal_is_named_with_the_memory_hint():
    with pytest.raises(Died) as exc:
        supervised.run(kids.kill_self, name="clm-tray-test")
    assert exc.value.code == -9
    assert exc.value.reason == "was killed by SIGKILL (often the system ran out of memory)"


def test_a_child_that_exits_without_answering_is_named_by_its_exit_code():
    with pytest.raises(Died, match="exited with code 3"):
        supervised.run(kids.exit_quietly, (3,), name="clm-tray-test")


def test_a_child_that_ends_while_a_thread_waits_for_its_stop_flag_does_not_hang_the_caller():
    # The caller sets the flag once the child has answered and ended (mid-wait). With a
    # multiprocessing.Event that set() would wait forever for the dead sleeper to wake.
    assert supervised.run(kids.answer_while_a_thread_waits_for_stop, name="clm-tray-test",
                          hard_exit=True) == "answered"


def test_exit_reasons_read_as_part_of_a_sentence():
    assert exit_reason(None) == "did not end"
    assert exit_reason(1) == "exited with code 1"
    assert exit_reason(-15) == "was killed by SIGTERM"


def start_app(mode: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    app = subprocess.Popen([sys.executable, str(HERE / "supervised_children.py"), mode,
                            str(workdir)])
    deadline = time.monotonic() + 60
    while not (workdir / "started").exists():
        assert time.monotonic() < deadline, "the child never started"
        assert app.poll() is None, "the app ended early"
        time.sleep(0.05)
    time.sleep(0.1)  # the pid is written before the file is closed
    return app, int((workdir / "started").read_text())


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("mode", ["exit", "stop"])
def test_a_child_does_not_outlive_its_killed_app(tmp_path, mode):
    app, pid = start_app(mode, tmp_path)
    try:
        app.kill()  # SIGKILL: the app can tell no one
        app.wait(10)
        deadline = time.monotonic() + 30
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(pid)
        # "stop" finishes its work cleanly first (a worker completes a deploy); "exit" just ends
        assert (tmp_path / "stopped").exists() == (mode == "stop")
    finally:
        app.kill()


def test_parent_death_modes_are_named_for_what_the_child_does():
    assert {m.value for m in ParentDeath} == {"exit", "stop"}
