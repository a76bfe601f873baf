"""`clm-tray replay` as a user runs it: a real subprocess on a small demo workspace.

The workspace first gets a real champion from `clm-tray retrain`, so "the replay never
touches the store or the deploy folder" is checked on folders that hold something.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from small_env import GATED_ENV

from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.generator import generate
from clm_tray.core.demo.sample import SAMPLE_END
from clm_tray.core.ml.data import load_dataset

# 6 symbols x 720 hourly bars (30 days) ending at the demo's fixed sample end
FROM = "2025-12-07"
_CSV: dict[str, bytes] = {}


def replay_workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data" / "train.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    if "csv" not in _CSV:
        save(generate(symbols=6, bars=720, end=SAMPLE_END), data)
        _CSV["csv"] = data.read_bytes()
    data.write_bytes(_CSV["csv"])
    (root / ".env").write_text(GATED_ENV)
    return root


def clm(ws: Path, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clm_tray", *args], cwd=ws, text=True,
                          capture_output=True, timeout=timeout, **kw)


def tree_hash(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_replay_json_compares_three_policies_and_leaves_store_and_models_alone(tmp_path):
    ws = replay_workspace(tmp_path / "ws")
    trained = clm(ws, "retrain")
    assert trained.returncode == 0, trained.stderr
    before = (tree_hash(ws / "store"), tree_hash(ws / "models"))
    assert before[1], "the retrain deployed a model"

    run = clm(ws, "replay", "--from", FROM, "--json")

    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)  # exactly one JSON object on stdout
    assert [p["name"] for p in result["policies"]] == ["configured", "never", "always"]
    for p in result["policies"]:
        assert 0.45 <= p["accuracy"] <= 0.65, p
        assert sum(d["rows"] for d in p["periods"]) == result["rows"]
        assert {"start", "accuracy", "rows"} <= set(p["periods"][0])
        assert p["periods"][0]["start"].startswith(FROM)  # --from moved the start
    configured = {p["name"]: p for p in result["policies"]}["configured"]
    assert configured["retrains"] >= 1
    assert configured["retrains"] >= configured["deploys"] + configured["gated"] - 1
    assert 0.0 < result["baseline_accuracy"] < 1.0
    ds = load_dataset(ws / "data" / "train.csv")  # every labelled row from --from on
    assert result["rows"] == int((ds.frame["timestamp"] >= pd.Timestamp(FROM, tz="UTC")).sum())
    assert "replay" in run.stderr  # progress went to stderr, not into the JSON
    assert (tree_hash(ws / "store"), tree_hash(ws / "models")) == before


def test_bad_from_is_one_line_and_exit_2(tmp_path):
    ws = replay_workspace(tmp_path / "ws")
    for bad, words in (("2025-13-45", "is not a date"), ("2020-01-01", "outside the data")):
        run = clm(ws, "replay", "--from", bad, "--json")
        assert run.returncode == 2
        assert run.stdout == ""
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "--from" in lines[0], run.stderr
    assert not list(ws.glob("store/versions/*")), "nothing was trained or stored"


def test_ctrl_c_stops_the_replay_with_exit_130_and_no_leftovers(tmp_path):
    ws = replay_workspace(tmp_path / "ws")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "clm_tray", "replay", "--from", "2025-11-20"],
                            cwd=ws, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        first = proc.stderr.readline()  # the first progress line: the walk is under way
        assert first.startswith("replay"), first
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "clm-tray: interrupted"
    assert out == ""
    assert list(tmp.iterdir()) == []  # the replay's temporary models are gone


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
