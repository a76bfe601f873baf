"""`clm-tray run` stays light: its cycles run in a worker process, never in the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from clm_tray.core.registry.history import History

HEAVY = ("pandas", "xgboost", "sklearn", "scipy")

# The real CLI entry of `clm-tray run --once`, then a look at what this process imported
# (a None entry is scikit-learn kept out on purpose: lean_imports.py).
PROBE = f"""
import json, sys
from clm_tray.cli import main
code = main(["run", "--once"])
print("PROBE " + json.dumps({{"code": code,
      "heavy": [m for m in {HEAVY!r} if sys.modules.get(m) is not None]}}))
"""


def test_daemon_trains_in_a_worker_and_never_loads_pandas_or_xgboost(small_workspace: Path):
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=small_workspace, text=True,
                          capture_output=True, timeout=240)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    assert lines, proc.stdout + proc.stderr
    probe = json.loads(lines[-1][len("PROBE "):])
    assert probe["code"] == 0, proc.stderr
    # The cycle really ran (a model was trained and deployed) ...
    cycles = History(small_workspace / "store" / "history.sqlite").cycles()
    assert [c.outcome for c in cycles] == ["deployed"], cycles
    assert (small_workspace / "models" / "xgb_model.ubj").is_file()
    # ... yet the daemon's own process never imported the heavy libraries.
    assert probe["heavy"] == [], probe
