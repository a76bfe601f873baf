"""How much does the retrain cycle cost beyond the XGBoost fit itself?

On the full demo data (91 symbols x 1,500 hourly bars = 136,500 rows, 22 features) this times,
in one process and interleaved, 3 times each (median reported):

- cycle: ``load_dataset`` -> ``train_and_evaluate`` (split, fit with early stopping, metrics,
  importance, native save) -> write a version (reference profile + manifest +
  ``ModelStore.add_version``), i.e. the in-process work of ``clm-tray retrain --no-deploy``;
- fit: the bare ``XGBClassifier.fit`` on the same train matrix with the same parameters, the
  same validation set and the same early stopping.

It prints both, their ratio and the peak RSS of this process. The demo CSV is generated in a
separate process so its memory does not count. Targets: ratio <= 1.3, peak RSS <= 600 MB.
It never asserts; the last line is ``cycle/fit ratio: X.XX``.

Run: ``.venv/bin/python bench/cycle.py [--repeats 3] [--child]`` (``--child`` also times one
``train_in_child`` run for information: process start-up and a second data load included).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from clm_tray.core.config.settings import Settings
from clm_tray.core.ml.data import Dataset, load_dataset
from clm_tray.core.ml.fit import make_classifier
from clm_tray.core.ml.split import split_by_time
from clm_tray.core.ml.train_result import TrainParams, TrainResult
from clm_tray.core.ml.training import train_and_evaluate
from clm_tray.core.ml.trainprocess import train_in_child

MB = 1024 * 1024


def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def write_demo_csv(path: Path) -> None:
    code = (
        "import sys; from clm_tray.core.demo import datafile, generator; "
        "datafile.save(generator.generate(), sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


def manifest_for(dataset: Dataset, result: TrainResult) -> dict[str, Any]:
    """The manifest the cycle writes (the lead's builder when present, else an equivalent)."""
    import pandas as pd

    from clm_tray.core.monitor.drift import reference_profile

    frame = dataset.frame
    train_rows = frame[frame["timestamp"] <= pd.Timestamp(result.split.train_end)]
    profile = reference_profile(train_rows, dataset.features)
    try:
        from clm_tray.core.app.manifest import build_manifest
    except ImportError:
        return {
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "features": list(dataset.features), "target": dataset.target,
            "params": result.params, "metrics": result.metrics,
            "importance": result.importance, "leakage": result.leakage,
            "leakage_reason": result.leakage_reason, "split": asdict(result.split),
            "data": asdict(dataset.fingerprint), "reference_profile": profile,
        }
    return build_manifest(dataset, result, None, profile)


def write_version(model_path: Path, manifest: dict[str, Any], store_root: Path) -> str:
    try:
        from clm_tray.core.registry.store import ModelStore
    except ImportError:
        import shutil

        from clm_tray.core.fsutil import atomic_write_json

        folder = store_root / f"v{time.time_ns()}"
        folder.mkdir(parents=True)
        shutil.copyfile(model_path, folder / "model.ubj")
        atomic_write_json(folder / "manifest.json", manifest)
        return folder.name
    return ModelStore(store_root).add_version(model_path, manifest).id


class Clock:
    """Wall and CPU seconds of a block (CPU time is steadier on a busy machine)."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def run_cycle(data: Path, params: TrainParams, work: Path, store_root: Path
              ) -> tuple[TrainResult, dict[str, Clock]]:
    stages: dict[str, Clock] = {}
    with Clock() as stages["load"]:
        dataset = load_dataset(data)
    with Clock() as stages["train+evaluate"]:
        result = train_and_evaluate(dataset, params, work / "model.ubj")
    with Clock() as stages["version"]:
        write_version(Path(result.model_path), manifest_for(dataset, result), store_root)
    return result, stages


def run_fit(X: np.ndarray, y: np.ndarray, idx: tuple[np.ndarray, np.ndarray],
            params: TrainParams) -> None:
    train, val = idx
    clf = make_classifier(params)
    clf.fit(X[train], y[train], eval_set=[(X[val], y[val])], verbose=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", action="store_true", help="also time one train_in_child run")
    args = ap.parse_args(argv)

    params = TrainParams.from_settings(Settings())
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="clm-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "demo.csv"
        t = time.perf_counter()
        write_demo_csv(data)
        print(f"demo data: {data.stat().st_size / MB:.1f} MB CSV in "
              f"{time.perf_counter() - t:.2f} s (separate process)")

        dataset = load_dataset(data)
        train, val, _, info = split_by_time(dataset.frame, params)
        X, y = dataset.X, dataset.y
        print(f"rows: {len(dataset.frame):,}  features: {len(dataset.features)}  "
              f"train/val/test: {info.train_rows:,}/{info.val_rows:,}/{info.test_rows:,}  "
              f"threads: {params.threads}  n_estimators: {params.n_estimators}  "
              f"early stopping: {params.early_stopping}")
        del dataset

        cycle_wall: list[float] = []
        cycle_cpu: list[float] = []
        fit_wall: list[float] = []
        fit_cpu: list[float] = []
        stage_wall: dict[str, list[float]] = {}
        result = None
        for i in range(args.repeats):
            with Clock() as cycle:
                result, stages = run_cycle(data, params, tmp / f"work{i}", tmp / "store")
            with Clock() as fit:
                run_fit(X, y, (train, val), params)
            cycle_wall.append(cycle.wall)
            cycle_cpu.append(cycle.cpu)
            fit_wall.append(fit.wall)
            fit_cpu.append(fit.cpu)
            for name, c in stages.items():
                stage_wall.setdefault(name, []).append(c.wall)
            parts = "  ".join(f"{n} {c.wall:.2f}" for n, c in stages.items())
            print(f"run {i + 1}: cycle {cycle.wall:.2f} s ({parts})  fit {fit.wall:.2f} s  "
                  f"[cpu: cycle {cycle.cpu:.2f} s, fit {fit.cpu:.2f} s]")

        assert result is not None
        m = result.metrics
        print(f"model: best_iteration {m['best_iteration']}, trees {m['n_trees']}, "
              f"test accuracy {m['test_accuracy']:.3f} (baseline {m['baseline_accuracy']:.3f}),"
              f" AUC {m['auc']:.3f}, leakage {result.leakage}")
        if args.child:
            t = time.perf_counter()
            train_in_child(data, target="target", features=None, params=params,
                           workdir=tmp / "child", timeout=600)
            child_s = time.perf_counter() - t
            child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"train_in_child (info): {child_s:.2f} s, largest child peak RSS "
                  f"{child_peak:.0f} MB")

    med = statistics.median
    cycle_med, fit_med = med(cycle_wall), med(fit_wall)
    parts = ", ".join(f"{n} {med(v):.2f} s" for n, v in stage_wall.items())
    print(f"cycle (load -> train -> evaluate -> version), median of {args.repeats}: "
          f"{cycle_med:.2f} s ({parts})")
    print(f"bare XGBClassifier.fit, median of {args.repeats}: {fit_med:.2f} s")
    print(f"cpu-time ratio (info, steadier on a busy machine): "
          f"{med(cycle_cpu) / med(fit_cpu):.2f}")
    load_after = os.getloadavg()
    print(f"machine load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}"
          f", after: {' '.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} cores "
          "(other processes slow the wall-clock figures)")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    print(f"cycle/fit ratio: {cycle_med / fit_med:.2f}")


if __name__ == "__main__":
    main()
