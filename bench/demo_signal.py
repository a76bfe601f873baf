"""Is the demo signal real but weak? Prints generate time and out-of-time XGBoost accuracy.

Trains the issue's reference model (hist, 300 trees, depth 6, lr 0.05, early stopping on a
time-ordered validation slice) on the full 91 x 1,500 demo data and scores the last 20 % of
time. The target is 53-57 %; far higher would mean the generator leaks the future.
Run: .venv/bin/python bench/demo_signal.py [--symbols 91] [--bars 1500] [--seed 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from xgboost import XGBClassifier

from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.generator import generate
from clm_tray.core.ml.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=91)
    parser.add_argument("--bars", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    t0 = time.perf_counter()
    frame = generate(args.symbols, args.bars, args.seed)
    gen_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.csv"
        save(frame, path)
        t0 = time.perf_counter()
        ds = load_dataset(path)
        load_s = time.perf_counter() - t0
    print(f"generate {args.symbols}x{args.bars}: {gen_s:.2f} s; load {len(ds.frame)} rows: "
          f"{load_s:.2f} s")

    ts = ds.frame["timestamp"].to_numpy()
    times = np.unique(ts)
    test_cut = times[int(len(times) * 0.8)]
    val_cut = times[int(len(times) * 0.7)]
    embargo = np.timedelta64(24, "h")
    X, y = ds.X, ds.y
    train = ts < val_cut - embargo
    val = (ts >= val_cut) & (ts < test_cut - embargo)
    test = ts >= test_cut
    model = XGBClassifier(tree_method="hist", n_estimators=300, max_depth=6, learning_rate=0.05,
                          early_stopping_rounds=30, n_jobs=2, random_state=42)
    t0 = time.perf_counter()
    model.fit(X[train], y[train], eval_set=[(X[val], y[val])], verbose=False)
    fit_s = time.perf_counter() - t0
    acc = {name: float((model.predict(X[m]) == y[m]).mean())
           for name, m in (("train", train), ("val", val), ("test", test))}
    base = max(y[test].mean(), 1 - y[test].mean())
    gain = model.get_booster().get_score(importance_type="gain")
    top = sorted(gain.items(), key=lambda kv: -kv[1])[:5]
    names = ds.features
    print(f"fit {fit_s:.1f} s, best_iteration {model.best_iteration}")
    print("top gain: " + ", ".join(f"{names[int(k[1:])]}={v:.1f}" for k, v in top))
    print(f"train {acc['train']:.3f}  val {acc['val']:.3f}  baseline {base:.3f}")
    print(f"OOT test accuracy: {acc['test']:.3f}")


if __name__ == "__main__":
    main()
