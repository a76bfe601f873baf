"""How much memory does the headless daemon (`clm-tray run`) hold while it waits?

Creates the demo workspace (91 symbols x 1,500 hourly bars) in a temporary folder, starts
`clm-tray run` there paused, and prints the daemon process's RSS after it settled (idle,
before any cycle). Then it resumes: the next age check (every 6 s here) finds no model and runs
one full cycle (backend `none`, so nothing to restart). It prints the daemon's own peak RSS
during the cycle (the work runs in a worker process), the peak RSS of the daemon's whole
process tree, and the daemon's RSS once idle again. Target: idle <= 150 MB before and after.

Run: ``.venv/bin/python bench/daemon_rss.py [--workspace DIR] [--settle 5]``. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

MB = 1024 * 1024


def clm(ws: Path, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "QT_CLM_BACKEND": "none", "QT_CLM_DEMO_FEED_MINUTES": "0",
           "QT_CLM_CHECK_MINUTES": "0.1"}
    return subprocess.Popen([sys.executable, "-m", "clm_tray", *args], cwd=ws, env=env, **kw)


def rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def tree_rss(proc: psutil.Process) -> int:
    try:
        kids = proc.children(recursive=True)
    except psutil.Error:
        kids = []
    return rss(proc) + sum(rss(k) for k in kids)


def settle(proc: psutil.Process, seconds: float) -> int:
    """The daemon's RSS after ``seconds`` of waiting (the last of a few samples)."""
    end = time.monotonic() + seconds
    value = rss(proc)
    while time.monotonic() < end:
        time.sleep(0.25)
        value = rss(proc)
    return value


def finished_cycles(ws: Path) -> int:
    from clm_tray.core.registry.history import History

    db = ws / "store" / "history.sqlite"
    if not db.exists():
        return 0
    return sum(1 for c in History(db).cycles() if c.outcome != "running")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, help="demo workspace (default: a temp folder)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds idle before sampling")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="clm-daemon-rss-")
    ws = args.workspace or Path(tmp.name) / "demo"
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from clm_tray.core.config.workspace import ensure_workspace; "
                    "ensure_workspace(Path(sys.argv[1]))", str(ws)], check=True)
    subprocess.run([sys.executable, "-m", "clm_tray", "pause", "--reason", "bench: idle first"],
                   cwd=ws, check=True, stdout=subprocess.DEVNULL)
    daemon = clm(ws, "run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = psutil.Process(daemon.pid)
    try:
        before = settle(proc, args.settle)
        done = finished_cycles(ws)
        subprocess.run([sys.executable, "-m", "clm_tray", "resume"], cwd=ws, check=True,
                       stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        peak_daemon = peak_tree = 0
        while finished_cycles(ws) <= done and time.monotonic() - t0 < 600:
            peak_daemon = max(peak_daemon, rss(proc))
            peak_tree = max(peak_tree, tree_rss(proc))
            time.sleep(0.1)
        cycle_s = time.monotonic() - t0
        after = settle(proc, args.settle)
    finally:
        daemon.terminate()
        daemon.wait(60)
        tmp.cleanup()
    print("workspace: demo (91 symbols x 1,500 bars), backend none, "
          f"python {sys.version.split()[0]}")
    print(f"daemon idle RSS before the cycle: {before / MB:.0f} MB")
    print(f"one cycle (resume -> finished): {cycle_s:.1f} s; daemon peak RSS during it "
          f"{peak_daemon / MB:.0f} MB; whole process tree peak {peak_tree / MB:.0f} MB")
    print(f"daemon idle RSS after the cycle: {after / MB:.0f} MB (target <= 150 MB)")


if __name__ == "__main__":
    main()
