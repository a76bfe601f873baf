"""How long does `clm-tray replay` take on the demo data with the default policy?

Target (issue 10): the full demo (91 symbols x 1,500 hourly bars = 136,500 rows) with the
default settings finishes within 3 minutes on 2 cores. This prints the wall time, the CPU
time of this process (a busy shared machine stretches the wall time, not the CPU time), the
number of models trained and the three policies' figures. It never asserts. With 2+ threads
the ``always`` policy's models train ahead on one core (``replay_training.Trainer``); with
``--threads 1`` one thread trains every model in turn (same figures, for comparison).

Run: ``.venv/bin/python bench/replay.py [--symbols 91] [--bars 1500] [--csv PATH] [--threads N]``
(the demo CSV is generated in a separate process unless --csv names one).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clm_tray.core.config.settings import Settings
from clm_tray.core.ml.data import load_dataset
from clm_tray.core.ml.replay import run_replay


def write_demo_csv(path: Path, symbols: int, bars: int) -> None:
    code = ("import sys; from clm_tray.core.demo import datafile, generator; "
            "datafile.save(generator.generate(symbols=int(sys.argv[2]), bars=int(sys.argv[3])), "
            "sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(path), str(symbols), str(bars)], check=True)


def show(done: float, message: str) -> None:
    sys.stderr.write(f"\r{done:5.0%} {message}   ")
    sys.stderr.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=91)
    ap.add_argument("--bars", type=int, default=1500)
    ap.add_argument("--csv", type=Path, help="replay this file instead of generating one")
    ap.add_argument("--threads", type=int, default=0,
                    help="XGBoost threads (QT_CLM_TRAIN_THREADS; default 0: every core, up to 4)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.csv or Path(tmp) / "demo.csv"
        if args.csv is None:
            write_demo_csv(path, args.symbols, args.bars)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        dataset = load_dataset(path)
        loaded = time.perf_counter() - wall0
        result = run_replay(dataset, Settings(train_threads=args.threads), progress=show)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    sys.stderr.write("\n")
    print(f"data: {dataset.fingerprint.rows:,} rows, {dataset.fingerprint.symbols} symbols; "
          f"cores: {os.cpu_count()}; load {loaded:.1f} s")
    print(f"replayed {result.rows:,} rows from {result.start} in {result.checks:,} checks; "
          f"{result.trainings} models trained")
    for p in result.policies:
        print(f"  {p.name:<11} accuracy {p.accuracy:.1%}  retrains {p.retrains:>3}  deploys "
              f"{p.deploys:>3}  no edge {p.gated:>2}  rejected {p.rejected:>2}  {p.triggers}")
    print(f"  baseline    accuracy {result.baseline_accuracy:.1%} ({result.baseline_label})")
    print(f"cpu time: {cpu:.1f} s (this process; XGBoost threads included)")
    print(f"wall time: {wall:.1f} s (target: 180 s on 2 cores)")


if __name__ == "__main__":
    main()
