"""How clm-tray decides, through the real CLI: the edge gate on real prices, bad cells, no
empty cycles, neutral cancel.

Real data: ``backtesting`` (test extra) ships real EUR/USD hourly bars as CSV; the training
file is built from them the way a trader's collector would (timestamp, symbol, close and a
few return / volatility features, no target column: clm-tray derives it from ``close``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from small_env import GATED_ENV

from clm_tray.core.fsutil import sha256_file


def real_hourly_prices() -> pd.DataFrame:
    """EUR/USD hourly 2017-2018 (about 5,000 bars) as training rows with price features."""
    spec = importlib.util.find_spec("backtesting")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the test extra needs `backtesting` (it ships the real price series)")
    folder = Path(spec.submodule_search_locations[0]) / "test"
    raw = pd.read_csv(folder / "EURUSD.csv", index_col=0, parse_dates=True)
    close = raw["Close"]
    log_close = np.log(close)
    out = pd.DataFrame({"timestamp": raw.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "symbol": "EURUSD", "close": close.to_numpy()})
    for k in (1, 3, 6, 12, 24):
        out[f"ret_{k}"] = log_close.diff(k).to_numpy()
    out["vol_24"] = log_close.diff().rolling(24).std().to_numpy()
    out["hl_range"] = ((raw["High"] - raw["Low"]) / close).to_numpy()
    return out


def workspace(root: Path, frame: pd.DataFrame | None = None, env: str = GATED_ENV) -> Path:
    ws = root / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / ".env").write_text(env)
    if frame is not None:
        frame.to_csv(ws / "data" / "train.csv", index=False)
    return ws


def clm(ws: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clm_tray", *args], cwd=ws,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=240)


def clm_json(ws: Path, *args: str, **env: str) -> tuple[int, dict]:
    out = clm(ws, *args, "--json", **env)
    assert out.stdout.strip(), out.stderr[-2000:]
    return out.returncode, json.loads(out.stdout)


def small_demo(path: Path) -> None:
    from clm_tray.core.demo.datafile import save
    from clm_tray.core.demo.generator import generate

    save(generate(symbols=6, bars=400, seed=7), path)


def log_lines(ws: Path) -> list[str]:
    return [line.split(" - ", 1)[1]
            for line in (ws / "models" / "retraining_log.txt").read_text().splitlines()]


def test_real_prices_without_an_edge_are_not_deployed_and_the_champion_stays(tmp_path):
    ws = workspace(tmp_path, real_hourly_prices())
    # Yesterday's champion, deployed before the gate existed.
    code, first = clm_json(ws, "retrain", QT_CLM_EDGE_GATE="false")
    assert code == 0 and first["outcome"] == "deployed", first["reason"]
    champion = first["version"]
    deployed = ws / "models" / "xgb_model.ubj"
    deployed_sha = sha256_file(deployed)

    code, gated = clm_json(ws, "retrain", QT_CLM_MAX_DEPTH="5")  # new settings: trains

    assert code == 0 and gated["ok"] and gated["outcome"] == "no edge", gated["reason"]
    edge = gated["metrics"]["edge"]
    assert edge["passed"] is False and edge["p_value"] >= 0.05 and edge["bars"] > 900
    words = (f"{edge['accuracy'] * 100:.1f} % vs {edge['baseline'] * 100:.1f} % by "
             f"{edge['baseline_label']}")
    short = champion.split("-")[0]
    assert gated["reason"] == f"New model has no edge: {words} — kept {short}"
    assert sha256_file(deployed) == deployed_sha
    assert log_lines(ws)[-1] == f"Retraining finished (no edge): {gated['reason']}"
    _, versions = clm_json(ws, "versions")
    status = {v["id"]: v["status"] for v in versions["versions"]}
    assert status == {champion: "champion", gated["version"]: "no edge"}
    _, st = clm_json(ws, "status")
    assert st["health"] != "error" and st["champion"]["id"] == champion

    # The trader can still deploy it on purpose.
    code, promoted = clm_json(ws, "promote", gated["version"])
    assert code == 0 and promoted["outcome"] == "deployed", promoted["reason"]
    assert sha256_file(deployed) != deployed_sha


def test_demo_data_with_a_real_edge_passes_the_gate_and_is_deployed(tmp_path):
    from clm_tray.core.demo.datafile import save
    from clm_tray.core.demo.generator import generate

    ws = workspace(tmp_path)
    save(generate(symbols=40, bars=500, seed=7), ws / "data" / "train.csv")

    code, res = clm_json(ws, "retrain")

    assert code == 0 and res["outcome"] == "deployed", res["reason"]
    edge = res["metrics"]["edge"]
    assert edge["passed"] and edge["p_value"] < 0.05 and edge["edge"] > 0.02
    assert (ws / "models" / "xgb_model.ubj").is_file()


def test_a_bad_cell_is_one_line_naming_column_row_and_value_and_nothing_is_deployed(
        tmp_path):
    frame = real_hourly_prices()
    frame["ret_6"] = frame["ret_6"].astype(object)
    frame.loc[2999, "ret_6"] = "0,0012"
    ws = workspace(tmp_path, frame)

    out = clm(ws, "retrain")

    assert out.returncode != 0
    message = out.stderr.strip().splitlines()[-1]
    assert "'ret_6'" in message and "line 3001" in message and "'0,0012'" in message
    assert "Traceback" not in out.stderr
    assert not (ws / "models" / "xgb_model.ubj").exists()
    assert not list((ws / "store" / "versions").iterdir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_second_retrain_on_unchanged_data_trains_nothing_and_restarts_nothing(tmp_path):
    port = _free_port()
    command = shlex.join([sys.executable, "-m", "clm_tray.core.backend.reference_server",
                          "--models-dir",
                          str(tmp_path / "ws" / "models"), "--host", "127.0.0.1", "--port",
                          str(port)])
    env = (GATED_ENV.replace("QT_CLM_BACKEND=none", "QT_CLM_BACKEND=process")
           + f"QT_CLM_BACKEND_COMMAND={shlex.quote(command)}\n"
           + f"QT_CLM_HEALTH_URL=http://127.0.0.1:{port}/health\nQT_CLM_EDGE_GATE=false\n")
    ws = workspace(tmp_path, env=env)
    small_demo(ws / "data" / "train.csv")
    pid_file = ws / "store" / "backend.pid.json"
    try:
        code, first = clm_json(ws, "retrain")
        assert code == 0 and first["outcome"] == "deployed", first["reason"]
        backend = json.loads(pid_file.read_text())

        code, again = clm_json(ws, "retrain")
        assert code == 0 and again["outcome"] == "unchanged", again["reason"]
        assert again["reason"] == (f"data unchanged since {first['version'].split('-')[0]} — "
                                   "nothing to retrain")
        code, forced = clm_json(ws, "retrain", "--force")
        assert code == 0 and forced["outcome"] == "unchanged", forced["reason"]

        _, versions = clm_json(ws, "versions")
        assert [v["id"] for v in versions["versions"]] == [first["version"]]
        assert json.loads(pid_file.read_text()) == backend  # the same process, never restarted
        assert psutil.pid_exists(backend["pid"])
        _, history = clm_json(ws, "history")
        assert [c["attempts"] for c in history["cycles"][:2]] == [[], []]
    finally:
        if pid_file.exists():
            pid = json.loads(pid_file.read_text())["pid"]
            proc = psutil.Process(pid)
            proc.terminate()
            proc.wait(10)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_training_cancels_neutrally_with_exit_130(tmp_path):
    ws = workspace(tmp_path)
    small_demo(ws / "data" / "train.csv")
    proc = subprocess.Popen([sys.executable, "-m", "clm_tray", "retrain"], cwd=ws,
                            env={**os.environ, "CLM_TRAY_TRAIN_SLEEP": "60"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # progress lines; wait until training runs
            if "train:" in line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "cancelled" in out + err and "Traceback" not in err

    code, st = clm_json(ws, "status")
    assert st["last_cycle"]["outcome"] == "cancelled"
    assert st["health"] != "error"
    assert st["scheduler"]["backoff_until"] is None
    assert not list((ws / "store" / "versions").iterdir())
    from clm_tray.core.registry.history import History

    assert History(ws / "store" / "history.sqlite").failures_since_success() == []
