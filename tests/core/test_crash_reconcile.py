"""kill -9 a promote at every journal step and during restart and verify; the next engine start
must leave one complete model, every backup intact, and the backend (the reference backend,
a real process) restarted and serving the champion — with history saying so.

One workspace serves every case (the backend keeps running between them); each case first
puts v1 back in the folder, then a child process (tests/core/cycle_child.py) promotes v2 and is
killed at the step under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clm_tray.core.app.service import Engine
from clm_tray.core.app.status import BackendUnknown, HealthReport
from clm_tray.core.backend.health import probe_health
from clm_tray.core.config.sources import load_settings
from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry.deploy import Deployer
from clm_tray.core.registry.deploy_steps import DEPLOY_STEPS
from clm_tray.core.registry.store import ModelStore

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL semantics are POSIX")

CHILD = Path(__file__).with_name("cycle_child.py")
FEATURES = ["f0", "f1", "f2"]
# Without the pickle for old backends, the pickle's own steps never happen.
JOURNAL_STEPS = [s for s in DEPLOY_STEPS if "pickle" not in s]
FIRST_NEW_STEP = DEPLOY_STEPS.index("meta_written")


def _tiny_model(path: Path, seed: int) -> Path:
    import numpy as np
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 3)).astype("float32")
    y = (x[:, 0] + rng.normal(scale=0.3, size=120) > 0).astype(int)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1,
                             "seed": seed}, xgboost.DMatrix(x, label=y, feature_names=FEATURES),
                            num_boost_round=3)
    path.write_bytes(bytes(booster.save_raw("ubj")))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scene:
    def __init__(self, root: Path) -> None:
        self.ws = root
        self.models = root / "models"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/health"
        command = shlex.join([sys.executable, "-m", "clm_tray.core.backend.reference_server",
                              "--models-dir",
                              str(self.models), "--port", str(self.port)])
        (root / ".env").write_text(
            "QT_CLM_STORE_DIR=store\nQT_CLM_DEPLOY_DIR=models\nQT_CLM_LOG_DIR=logs\n"
            f"QT_CLM_BACKEND=process\nQT_CLM_BACKEND_COMMAND={shlex.quote(command)}\n"
            f"QT_CLM_HEALTH_URL={self.url}\nQT_CLM_HEALTH_TIMEOUT=60\n"
            "QT_CLM_BACKUP_KEEP=1000\n"
        )
        self.store = ModelStore(root / "store")
        self.v1, self.v2 = (
            self.store.add_version(_tiny_model(root / f"m{i}.ubj", i), {"features": FEATURES})
            for i in (1, 2)
        )

    def engine(self) -> Engine:
        return Engine(load_settings(self.ws / ".env", cwd=self.ws))

    def deployer(self) -> Deployer:
        return Deployer(self.store, self.models, backup_keep=1000)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    scene = Scene(tmp_path_factory.mktemp("crash-ws"))
    scene.deployer().install(scene.v1, reason="setup")
    engine = scene.engine()
    report = engine.restart_backend()
    assert report.ok, report.reason
    yield scene
    engine.backend().stop()
    engine.close()


def _backups(folder: Path) -> dict[str, dict[str, str]]:
    return {d.name: {f.name: sha256_file(f) for f in d.iterdir()}
            for d in folder.iterdir() if d.is_dir() and d.name.startswith("backup_")}


@pytest.mark.parametrize("step", [*JOURNAL_STEPS, "restart", "verify"])
def test_kill_anywhere_in_a_promote_ends_with_the_backend_serving_the_champion(scene, step):
    if scene.store.aliases()["champion"] != scene.v1.id:
        scene.deployer().install(scene.v1, reason="back to v1 for the next case")
    engine = scene.engine()
    pid_before = engine.backend().pid()
    engine.close()
    assert pid_before is not None
    backups_before = _backups(scene.models)

    child = subprocess.run([sys.executable, str(CHILD), str(scene.ws), scene.v2.id, step],
                           capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr

    engine = scene.engine()  # start-up: recovery, then reconcile the backend
    try:
        new_model = step in ("restart", "verify") or DEPLOY_STEPS.index(step) >= FIRST_NEW_STEP
        expected = scene.v2 if new_model else scene.v1
        aliases = scene.store.aliases()
        assert aliases["champion"] == expected.id
        # One complete model: the file, its meta and the champion agree; nothing half-made.
        assert sha256_file(scene.models / "xgb_model.ubj") == expected.sha256
        meta = json.loads((scene.models / "xgb_model.meta.json").read_text())
        assert (meta["version"], meta["model_sha256"]) == (expected.id, expected.sha256)
        assert not scene.store.journal_path.exists()
        assert [p.name for p in scene.models.iterdir() if p.name.startswith(".")] == []
        after = _backups(scene.models)
        for name, files in backups_before.items():
            assert after.get(name) == files, f"backup {name} was lost or changed"
        # The backend was restarted and serves the champion, and history says so.
        assert engine.backend().pid() not in (None, pid_before)
        live = probe_health(scene.url, expect_sha256=expected.sha256)
        assert live.ok and live.reported_sha256 == expected.sha256, live.reason
        last = engine.history.last_cycle()
        assert (last.trigger, last.outcome) == ("recover", "reconciled"), last.reason
        status = engine.status()
        assert isinstance(status.backend, HealthReport) and status.backend.ok is True
        assert hashlib.sha256((scene.models / "xgb_model.ubj").read_bytes()).hexdigest() == \
            live.reported_sha256
    finally:
        engine.close()


def test_status_never_says_healthy_for_a_check_older_than_the_last_deploy(scene):
    engine = scene.engine()
    try:
        assert getattr(engine.status().backend, "ok", None) is True
        from clm_tray.core.app.backend_pending import mark_folder_changing

        mark_folder_changing(scene.store, engine.history, "the deploy of v9999", engine.clock())
        shown = engine.status()
        assert isinstance(shown.backend, BackendUnknown)
        assert shown.backend.reason.startswith("unknown — not checked since the deploy of v9999")
        assert shown.health.value != "healthy"
    finally:
        engine.close()
    engine = scene.engine()  # the marker makes the next start restart and verify
    try:
        assert getattr(engine.status().backend, "ok", None) is True
        assert engine.history.last_cycle().outcome == "reconciled"
    finally:
        engine.close()
