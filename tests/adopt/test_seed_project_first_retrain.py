"""A trader coming from the PowerShell scripts: the first retrain never takes the backend down.

The project folder is the seed's layout (``.env`` with the eight ``QT_CLM_*`` values,
``data/binance_futures_training_data.csv``, ``ai_engine/models/xgb_model.pkl`` = a pickled
``XGBClassifier``), and the backend is a real process that unpickles ``xgb_model.pkl`` at start
and answers ``/health`` with ``{"status": "ok"}`` only (plus, for the test, the sha256 of the
pickle it loaded). Every clm-tray step runs as the real CLI in a child process.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clm_tray.core.backend.process import ProcessBackend

HERE = Path(__file__).resolve().parent
BACKEND = HERE / "pickle_backend.py"
SEED_ENV = """\
# CLM Configuration (the seed's eight values)
QT_CLM_ENABLED=true
QT_CLM_RETRAIN_HOURS=24
QT_CLM_DRIFT_HOURS=6
QT_CLM_PERF_HOURS=3
QT_CLM_DRIFT_THRESHOLD=0.05
QT_CLM_SHADOW_MIN=100
QT_CLM_AUTO_RETRAIN=true
QT_CLM_AUTO_PROMOTE=true
"""
AGE_HOURS = 31


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Project:
    """The seed's project folder, its backend process and the CLI that drives clm-tray."""

    def __init__(self, tmp_path: Path, refuse_new: bool = False) -> None:
        import pandas as pd
        import xgboost

        from clm_tray.core.demo.datafile import save
        from clm_tray.core.demo.generator import generate

        self.root = tmp_path / "quantum_trader"
        self.models = self.root / "ai_engine" / "models"
        self.models.mkdir(parents=True)
        data = self.root / "data" / "binance_futures_training_data.csv"
        data.parent.mkdir()
        save(generate(symbols=6, bars=400, seed=7), data)  # the small demo generator
        (self.root / ".env").write_text(SEED_ENV)
        frame = pd.read_csv(data).head(600)
        features = [c for c in frame.columns if c not in ("timestamp", "symbol")]
        old = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1)
        old.fit(frame[features].to_numpy(), (frame["ret_1"] > 0).astype(int).to_numpy())
        self.pickle = self.models / "xgb_model.pkl"
        self.pickle.write_bytes(pickle.dumps(old))  # what the old scripts wrote
        then = time.time() - AGE_HOURS * 3600
        os.utime(self.pickle, (then, then))
        self.original = self.pickle.read_bytes()
        self.original_sha = hashlib.sha256(self.original).hexdigest()
        self.store = tmp_path / "store"
        self.port = _free_port()
        self.health_url = f"http://127.0.0.1:{self.port}/health"
        argv = [sys.executable, str(BACKEND), str(self.models), str(self.port)]
        if refuse_new:
            argv += ["--refuse-unless", self.original_sha]
        self.command = shlex.join(argv)
        self.env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}",
            "QT_CLM_BACKEND": "process",
            "QT_CLM_BACKEND_COMMAND": self.command,
            "QT_CLM_HEALTH_URL": self.health_url,
            "QT_CLM_HEALTH_TIMEOUT": "30",
            "QT_CLM_STORE_DIR": str(self.store),
            "QT_CLM_N_ESTIMATORS": "40",
            "QT_CLM_EARLY_STOPPING": "10",
            "QT_CLM_TRAIN_THREADS": "1",
        }
        from clm_tray.core.config.settings import Settings

        if "edge_gate" in Settings.model_fields:  # the small data carries no provable edge
            self.env["QT_CLM_EDGE_GATE"] = "false"
        self.backend = ProcessBackend(self.command, log_path=tmp_path / "backend.log",
                                      state_dir=self.store)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``clm-tray ARGS`` from outside the project: the folder comes from `setup`."""
        return subprocess.run([sys.executable, "-m", "clm_tray", *args], cwd=self.root.parent,
                              env=self.env, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)

    def setup(self) -> str:
        done = self.cli("setup", str(self.root), "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def cli_json(self, *args: str, code: int = 0) -> dict:
        done = self.cli(*args, "--json")
        assert done.returncode == code, done.stdout + done.stderr
        return json.loads(done.stdout)

    def loaded_sha(self) -> str:
        """The sha256 of the pickle the running backend loaded (waits for it to answer)."""
        end = time.monotonic() + 30
        while True:
            try:
                return httpx.get(self.health_url, timeout=2).json()["test_loaded_sha256"]
            except (httpx.HTTPError, ValueError, KeyError):
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    def listing(self) -> dict[str, str]:
        """Every file under the deploy folder with its sha256 (to prove nothing changed)."""
        return {str(p.relative_to(self.models)): _sha(p)
                for p in sorted(self.models.rglob("*")) if p.is_file()}


def _aliases(p: Project) -> dict:
    return json.loads((p.store / "aliases.json").read_text())


@pytest.fixture
def project(tmp_path: Path):
    made: list[Project] = []

    def make(refuse_new: bool = False) -> Project:
        p = Project(tmp_path, refuse_new)
        made.append(p)
        return p

    yield make
    for p in made:
        p.backend.stop()


def test_seed_project_is_adopted_retrained_and_rolled_back_without_downtime(project) -> None:
    p = project()

    said = p.setup()
    assert "What will happen at the first retrain" in said
    assert "back up into backup_<date>_<time>/: xgb_model.pkl" in said
    assert "xgb_model.pkl: the new model as a pickled XGBClassifier" in said

    # setup --yes, then status: the deployed pickle is the adopted champion, aged by its mtime
    status = p.cli_json("status", code=1)  # 31 h old: a retrain is due
    champion = status["champion"]
    assert champion["adopted"] and champion["files"] == ["xgb_model.pkl"]
    assert champion["id"].startswith("v0000-adopted-") and champion["status"] == "champion"
    assert AGE_HOURS - 0.5 < status["age_hours"] < AGE_HOURS + 0.5
    assert status["summary"] == f"xgb_model.pkl, adopted, {AGE_HOURS} h old → retrain due"
    adopted = champion["id"]
    stored = p.store / "versions" / adopted / "xgb_model.pkl"
    assert stored.read_bytes() == p.original

    p.backend.start()
    assert p.loaded_sha() == p.original_sha
    pid_before = p.backend.pid()

    # a dry run names the files and touches nothing
    before = (p.listing(), sorted(os.listdir(p.store / "versions")))
    dry = p.cli("retrain", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "back up into backup_<date>_<time>/: xgb_model.pkl" in dry.stdout
    assert f"restart: process `{p.command}`" in dry.stdout
    assert (p.listing(), sorted(os.listdir(p.store / "versions"))) == before
    assert p.backend.pid() == pid_before

    # retrain: the backend restarts on a new pickle; the adopted one is in backup and store
    result = p.cli_json("retrain")
    assert result["outcome"] == "deployed (identity not reported)", result["reason"]
    assert result["health"]["restarted"] is True
    new_sha = _sha(p.pickle)
    assert new_sha != p.original_sha
    assert p.loaded_sha() == new_sha and p.backend.pid() != pid_before
    [backup] = [d for d in p.models.iterdir() if d.name.startswith("backup_")]
    assert (backup / "xgb_model.pkl").read_bytes() == p.original
    assert stored.read_bytes() == p.original
    new_version = p.store / "versions" / result["version"]
    assert (new_version / "model.pkl").read_bytes() == p.pickle.read_bytes()
    meta = json.loads((p.models / "xgb_model.meta.json").read_text())
    assert meta["version"] == result["version"]
    assert _aliases(p)["previous"] == adopted

    # rollback: the adopted files come back byte for byte, the backend runs them again
    back = p.cli_json("rollback")
    assert back["outcome"] == "rolled back" and back["version"] == adopted
    assert p.pickle.read_bytes() == p.original
    assert not (p.models / "xgb_model.ubj").exists()  # the adopted layout had none
    assert p.loaded_sha() == p.original_sha


def test_a_backend_that_refuses_the_new_model_is_rolled_back_to_the_adopted_pickle(
        project) -> None:
    p = project(refuse_new=True)
    p.setup()
    p.backend.start()
    assert p.loaded_sha() == p.original_sha

    result = p.cli_json("retrain", code=1)

    assert result["outcome"] == "failed, rolled back", result["reason"]
    assert "v0000-adopted-" in result["reason"] and "no previous model" not in result["reason"]
    assert p.pickle.read_bytes() == p.original
    assert p.backend.is_running() and p.loaded_sha() == p.original_sha
    aliases = _aliases(p)
    assert aliases["champion"].startswith("v0000-adopted-")
    assert aliases["previous"] is None  # the refused model is no model to roll back to
    notes = json.loads((p.store / "versions" / result["version"] / "notes.json").read_text())
    assert notes["status"] == "rejected"
