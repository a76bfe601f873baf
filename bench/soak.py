"""Soak: does the daemon grow over many consecutive cycles? (a benchmark: it prints, never asserts)

Starts the real headless daemon (``clm-tray run``) on a small workspace whose champion is always
"too old" (``QT_CLM_RETRAIN_HOURS`` ~ 1 s) and whose data grows one bar per cycle (the demo
feed), so the daemon retrains back to back. Every ``--every`` finished cycles it prints the
daemon's RSS, open file descriptors, threads and child processes, the versions kept and the
store's size; at the end, the outcomes and the growth between the first and the last sample.

Run: ``.venv/bin/python bench/soak.py [--cycles 200] [--every 20] [--backend none|process]``
(``--backend process`` also restarts the reference backend after every deploy).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

MB = 1024 * 1024


def make_workspace(root: Path, backend: str) -> Path:
    from clm_tray.core.demo.datafile import save
    from clm_tray.core.demo.generator import generate

    (root / "data").mkdir(parents=True)
    save(generate(symbols=6, bars=400, seed=7), root / "data" / "train.csv")
    lines = [
        "QT_CLM_DATA_PATH=data/train.csv", "QT_CLM_STORE_DIR=store", "QT_CLM_DEPLOY_DIR=models",
        "QT_CLM_LOG_DIR=logs", "QT_CLM_N_ESTIMATORS=40", "QT_CLM_EARLY_STOPPING=10",
        "QT_CLM_TRAIN_THREADS=1", "QT_CLM_SHADOW_MIN=20", "QT_CLM_RETRAIN_HOURS=0.0003",
        "QT_CLM_CHECK_MINUTES=0.01", "QT_CLM_DEMO_FEED_MINUTES=0.02",
        "QT_CLM_DRIFT_HOURS=8760", "QT_CLM_PERF_HOURS=8760", "QT_CLM_BACKOFF_FRACTION=0.001",
    ]
    if backend == "process":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = shlex.join([sys.executable, "-m", "clm_tray.core.backend.reference_server",
                          "--models-dir",
                          str(root / "models"), "--port", str(port)])
        lines += ["QT_CLM_BACKEND=process", f"QT_CLM_BACKEND_COMMAND={shlex.quote(cmd)}",
                  f"QT_CLM_HEALTH_URL=http://127.0.0.1:{port}/health",
                  "QT_CLM_HEALTH_TIMEOUT=60"]
    else:
        lines.append("QT_CLM_BACKEND=none")
    (root / ".env").write_text("\n".join(lines) + "\n")
    return root


def finished_cycles(history: Path) -> list[str]:
    if not history.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{history}?mode=ro", uri=True, timeout=5)
        try:
            return [r[0] for r in db.execute(
                "SELECT outcome FROM cycles WHERE outcome != 'running' ORDER BY id")]
        finally:
            db.close()
    except sqlite3.Error:
        return []


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def sample(proc: psutil.Process, ws: Path) -> dict[str, float]:
    with proc.oneshot():
        rss = proc.memory_info().rss / MB
        fds = proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()
        threads = proc.num_threads()
    children = len(proc.children(recursive=True))
    versions = len(list((ws / "store" / "versions").glob("v*")))
    return {"rss": rss, "fds": fds, "threads": threads, "children": children,
            "versions": versions, "store_mb": folder_size(ws / "store") / MB}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--backend", choices=("none", "process"), default="none")
    parser.add_argument("--workspace", type=Path, help="keep the workspace here")
    args = parser.parse_args()

    root = args.workspace or Path(tempfile.mkdtemp(prefix="clm-soak-"))
    ws = make_workspace(root, args.backend)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_CLM_")}
    log = open(ws / "daemon.out", "wb")  # noqa: SIM115 - closed at the end
    daemon = subprocess.Popen([sys.executable, "-m", "clm_tray", "--env-file", str(ws / ".env"),
                               "run"], cwd=ws, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc = psutil.Process(daemon.pid)
    print(f"workspace {ws}; daemon pid {daemon.pid}; backend {args.backend}; "
          f"target {args.cycles} cycles")
    print(f"{'cycles':>6} {'min':>6} {'RSS MB':>7} {'fds':>4} {'threads':>7} {'children':>8} "
          f"{'versions':>8} {'store MB':>8}")
    started = time.monotonic()
    samples: list[dict[str, float]] = []
    next_mark = args.every
    outcomes: list[str] = []
    try:
        while len(outcomes) < args.cycles:
            if daemon.poll() is not None:
                print(f"the daemon exited with code {daemon.returncode}; see {ws / 'daemon.out'}")
                break
            time.sleep(0.5)
            outcomes = finished_cycles(ws / "store" / "history.sqlite")
            if len(outcomes) >= next_mark:
                s = sample(proc, ws)
                samples.append(s)
                print(f"{len(outcomes):>6} {(time.monotonic() - started) / 60:>6.1f} "
                      f"{s['rss']:>7.1f} {s['fds']:>4.0f} {s['threads']:>7.0f} "
                      f"{s['children']:>8.0f} {s['versions']:>8.0f} {s['store_mb']:>8.2f}",
                      flush=True)
                next_mark += args.every
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
    print("outcomes:", dict(Counter(outcomes)))
    if len(samples) >= 2:
        first, last = samples[0], samples[-1]
        print(f"growth from cycle {args.every} to {len(samples) * args.every}: "
              f"RSS {last['rss'] - first['rss']:+.1f} MB, fds {last['fds'] - first['fds']:+.0f}, "
              f"threads {last['threads'] - first['threads']:+.0f}, "
              f"children {last['children'] - first['children']:+.0f}")
    minutes = (time.monotonic() - started) / 60
    print(f"{len(outcomes)} cycles in {minutes:.1f} min; daemon exit code {daemon.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
