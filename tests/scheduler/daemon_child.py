"""Run by test_daemon.py as a real child process: run_daemon on a FakeEngine whose retrain
"trains" until it is cancelled (like a training child that must be stopped)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sched_fakes import FakeEngine

from clm_tray.core.schedule.daemon import run_daemon

if __name__ == "__main__":
    root = Path(sys.argv[1])
    once = "--once" in sys.argv
    engine = FakeEngine(root, time.time)
    engine.trained_at = None  # no model yet: the first check starts a cycle
    engine.block_retrain = True
    engine.on_retrain_started = lambda: (root / "cycle-started").write_text("1")
    code = run_daemon(engine, once=once, poll=0.05)
    (root / "exit-code").write_text(str(code))
    sys.exit(code)
