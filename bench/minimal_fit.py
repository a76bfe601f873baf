"""The least a trader's own script does to retrain: the yardstick of bench/e2e.py.

Read the CSV with pandas' pyarrow engine, derive the next-bar target from ``close``, split by
time (last 20 % of time = test, the 10 % before it = validation for early stopping), fit the
same XGBoost the engine fits, save the model in XGBoost's native format, print the test
accuracy. No validation, no fingerprint, no manifest, no child process.

Run: ``python bench/minimal_fit.py DATA.csv MODEL.ubj [--threads N]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import xgboost

PRICES = ("open", "high", "low", "close")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    df = pd.read_csv(args.data, engine="pyarrow")
    df = df.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
    nxt = df.groupby("symbol")["close"].shift(-1)
    df = df[nxt.notna()]
    y = (nxt[nxt.notna()] > df["close"]).to_numpy(dtype=np.int64)
    features = [c for c in df.columns if c not in ("timestamp", "symbol", *PRICES)]
    X = df[features].to_numpy(dtype=np.float32)
    ts = pd.to_datetime(df["timestamp"], utc=True).to_numpy()
    t0, t1 = ts.min(), ts.max()
    test_cut = t1 - (t1 - t0) * 0.2
    val_cut = t0 + (test_cut - t0) * 0.9
    train, val, test = ts < val_cut, (ts >= val_cut) & (ts < test_cut), ts >= test_cut

    clf = xgboost.XGBClassifier(
        objective="binary:logistic", tree_method="hist", n_estimators=300, max_depth=6,
        learning_rate=0.05, n_jobs=args.threads, random_state=42, eval_metric="logloss",
        early_stopping_rounds=30,
    )
    clf.fit(X[train], y[train], eval_set=[(X[val], y[val])], verbose=False)
    clf.get_booster().save_model(args.model)
    accuracy = float(np.mean(clf.predict(X[test]) == y[test]))
    print(f"test accuracy {accuracy:.1%} on {int(test.sum()):,} rows")


if __name__ == "__main__":
    main()
