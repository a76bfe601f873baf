"""Targets for the supervised-process tests (tests/core/test_supervised.py), in a module of
their own so each child imports only this (fast) and not the test module with pytest.

Run as a script it is "the app": ``python supervised_children.py exit|stop WORKDIR`` starts one
supervised child that writes ``WORKDIR/started`` and waits; the test then kills this process.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from clm_tray.core import errors
from clm_tray.core.supervised import ParentDeath, run
from clm_tray.core.supervised_child import Child, StopRequested


def answer(child: Child, value: object) -> dict:
    return {"value": value, "pid": os.getpid()}


def report_then_answer(child: Child, rounds: int) -> str:
    for done in range(1, rounds + 1):
        child.progress(done, rounds)
        child.event({"round": done})
    logging.getLogger("clm_tray.tests.child").warning("all %d rounds reported", rounds)
    logging.getLogger("clm_tray.tests.child").debug("below the caller's level")
    return "done"


def fail(child: Child, name: str, message: str) -> None:
    raise getattr(errors, name)(message)


class LocalTrainingError(errors.TrainingError):
    """An error class the caller cannot import by name from errors.py."""


def fail_outside(child: Child, message: str) -> None:
    raise LocalTrainingError(message)


def bug(child: Child) -> None:
    raise ValueError("no such\ncolumn")


def wait_for_stop(child: Child, workdir: str) -> str:
    """Work until asked to stop, then say so: a child that finishes cleanly on Cancel."""
    Path(workdir, "started").write_text(str(os.getpid()))
    while not child.stopping():
        time.sleep(0.02)
    Path(workdir, "stopped").write_text("yes")
    return "stopped cleanly"


def sleep_long(child: Child, workdir: str) -> None:
    """A child that ignores its stop flag (a training round deep in XGBoost)."""
    Path(workdir, "started").write_text(str(os.getpid()))
    try:
        time.sleep(120)
    finally:
        Path(workdir, "unwound").write_text("yes")  # only when SIGTERM unwinds


def unwind_on_stop(child: Child) -> str:
    try:
        with child.raise_when_stopped():
            time.sleep(120)
    except StopRequested:
        return "left the loop"
    return "slept"


def answer_while_a_thread_waits_for_stop(child: Child) -> str:
    threading.Thread(target=child.stop.wait, args=(60,), daemon=True).start()
    time.sleep(0.2)  # the thread is inside wait() when this process ends
    return "answered"


def kill_self(child: Child) -> None:
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def exit_quietly(child: Child, code: int) -> None:
    os._exit(code)


if __name__ == "__main__":
    mode, workdir = sys.argv[1], sys.argv[2]
    target = wait_for_stop if mode == "stop" else sleep_long
    run(target, (workdir,), name="clm-tray-test-child",
        parent_death=ParentDeath.STOP if mode == "stop" else ParentDeath.EXIT)
