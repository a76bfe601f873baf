"""End to end: `clm-tray retrain --no-deploy` against the least a trader's script does.

On the demo data (91 symbols x 1,500 hourly bars = 136,500 rows, 22 features) this runs, as
real subprocesses and interleaved, ``--runs`` times each (default 5):

- ``clm-tray retrain --no-deploy`` in a workspace with its model store on disk (a fresh store
  each run, so the data cache is cold and every run parses the whole CSV: the honest worst
  case), backend ``none``;
- ``bench/minimal_fit.py``: read CSV (pyarrow), derive the target, split by time, fit the same
  XGBoost with early stopping, save (see that file).

It prints each run, then the median wall and CPU time (CPU of the process tree: the CLI and its
training child) of both, and last ``retrain/minimal ratio: X.XX`` (wall). Target <= 1.15.
Also: the CLI's start-up (``clm-tray --version``) median. Never asserts.

Run: ``.venv/bin/python bench/e2e.py [--runs 5] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` and all the children it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="clm-e2e-") as name:
        ws = Path(name)
        data = ws / "data" / "demo.csv"
        data.parent.mkdir()
        subprocess.run([sys.executable, "-c",
                        "import sys; from clm_tray.core.demo import datafile, generator; "
                        "datafile.save(generator.generate(), sys.argv[1])", str(data)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QT_CLM_")}
        env.update(QT_CLM_DATA_PATH=str(data), QT_CLM_DEPLOY_DIR=str(ws / "models"),
                   QT_CLM_LOG_DIR=str(ws / "logs"), QT_CLM_BACKEND="none",
                   QT_CLM_TRAIN_THREADS=str(args.threads), HOME=str(ws / "home"))
        (ws / "models").mkdir()
        cli = [sys.executable, "-m", "clm_tray"]
        startup = [timed([*cli, "--version"], ws, env)[0] for _ in range(3)]
        engine: list[tuple[float, float]] = []
        minimal: list[tuple[float, float]] = []
        for i in range(args.runs):
            store = ws / f"store{i}"
            engine.append(timed([*cli, "retrain", "--no-deploy"], ws,
                                {**env, "QT_CLM_STORE_DIR": str(store)}))
            minimal.append(timed([sys.executable, str(HERE / "minimal_fit.py"), str(data),
                                  str(ws / "minimal.ubj"), "--threads", str(args.threads)],
                                 ws, env))
            shutil.rmtree(store, ignore_errors=True)
            print(f"run {i + 1}: retrain {engine[-1][0]:.2f} s wall / {engine[-1][1]:.2f} s "
                  f"CPU; minimal {minimal[-1][0]:.2f} s / {minimal[-1][1]:.2f} s")
    med = statistics.median
    ew, ec = med(w for w, _ in engine), med(c for _, c in engine)
    mw, mc = med(w for w, _ in minimal), med(c for _, c in minimal)
    print(f"demo data 136,500 rows x 22 features, {args.threads} training thread(s), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"clm-tray --version (start-up), median of 3: {med(startup):.2f} s")
    print(f"retrain --no-deploy, median of {args.runs}: {ew:.2f} s wall, {ec:.2f} s CPU")
    print(f"minimal script, median of {args.runs}: {mw:.2f} s wall, {mc:.2f} s CPU")
    print(f"CPU ratio: {ec / mc:.2f}")
    print(f"retrain/minimal ratio: {ew / mw:.2f}")


if __name__ == "__main__":
    main()
