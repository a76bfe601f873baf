"""How large can a cycle's data be? One `clm-tray retrain --no-deploy` on N generated rows.

Generates N rows with the demo generator (91 symbols x N/91 hourly bars, 22 features) as
Parquet, runs one ``clm-tray retrain --no-deploy`` (a real subprocess, store on disk, backend
none), samples the RSS of its whole process tree (the CLI and its training child) every
100 ms with psutil, and prints rows, wall time, peak tree RSS and the test accuracy.
Target at 10 M rows: peak tree RSS <= 2.5 GB.

``--compare`` also runs the in-memory training path on the same data (``CLM_TRAY_STREAM_ROWS``
raised above N) and prints both accuracies: they should agree within 0.5 points.

Run: ``.venv/bin/python bench/scale.py --rows 10000000 [--compare] [--threads 1]``.
Never asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

MB = 1024 * 1024


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def retrain(ws: Path, data: Path, threads: int, stream_rows: int | None,
            trees: int | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_CLM_")}
    store = ws / f"store-{time.time_ns()}"
    env.update(QT_CLM_DATA_PATH=str(data), QT_CLM_STORE_DIR=str(store),
               QT_CLM_DEPLOY_DIR=str(ws / "models"), QT_CLM_LOG_DIR=str(ws / "logs"),
               QT_CLM_BACKEND="none", QT_CLM_TRAIN_THREADS=str(threads),
               QT_CLM_TRAIN_TIMEOUT="7200", HOME=str(ws / "home"))
    if stream_rows is not None:
        env["CLM_TRAY_STREAM_ROWS"] = str(stream_rows)
    if trees:
        env["QT_CLM_N_ESTIMATORS"] = str(trees)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "clm_tray", "retrain", "--no-deploy",
                             "--json"], cwd=ws, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.1)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    try:
        result = json.loads(out)
    except ValueError:
        raise SystemExit(f"retrain printed no JSON (exit {proc.returncode}):\n{err[-2000:]}") \
            from None
    return {"wall": wall, "peak": peak, "result": result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compare", action="store_true", help="also run the in-memory path")
    ap.add_argument("--trees", type=int, help="QT_CLM_N_ESTIMATORS (default 300): fewer = "
                    "faster on a busy machine; memory hardly depends on it")
    ap.add_argument("--data", type=Path, help="reuse this Parquet file (made if missing)")
    args = ap.parse_args()
    bars = math.ceil(args.rows / 91)
    with tempfile.TemporaryDirectory(prefix="clm-scale-") as name:
        ws = Path(name)
        (ws / "models").mkdir()
        data = args.data or ws / "data.parquet"
        t = time.perf_counter()
        if not data.exists():
            subprocess.run([sys.executable, "-c",
                            "import sys; from clm_tray.core.demo import datafile, generator; "
                            "datafile.save(generator.generate(bars=int(sys.argv[2])), sys.argv[1])",
                            str(data), str(bars)], check=True)
        print(f"generated 91 symbols x {bars:,} bars = {91 * bars:,} rows as Parquet "
              f"({data.stat().st_size / MB:.0f} MB) in {time.perf_counter() - t:.0f} s")
        runs = [("streamed" if 91 * bars > 2_000_000 else "default", None)]
        if args.compare:
            runs = [("streamed", 1), ("in-memory", 10**12)]
        for label, stream_rows in runs:
            r = retrain(ws, data, args.threads, stream_rows, args.trees)
            res = r["result"]
            m = res.get("metrics") or {}
            acc = m.get("test_accuracy")
            print(f"{label}: outcome {res.get('outcome')}, rows {91 * bars:,}, "
                  f"trees <= {args.trees or 300}, wall "
                  f"{r['wall']:.1f} s, peak tree RSS {r['peak'] / MB:,.0f} MB, test accuracy "
                  f"{acc:.2%} (baseline {m.get('baseline_accuracy', 0):.2%}, "
                  f"{m.get('n_trees')} trees)" if acc is not None else
                  f"{label}: {res.get('outcome')}: {res.get('reason')}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB")


if __name__ == "__main__":
    main()
