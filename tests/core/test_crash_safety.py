"""kill -9 a deploying process at every step; recovery must leave exactly one complete model.

Each case runs tests/core/deploy_child.py in a real child process told to SIGKILL itself at
<step> (through the deployer's step observer), asserts it died by SIGKILL, then recovers in this
process and checks the folder: the model is the old or the new version (exactly which one
depends on whether every new file was already in place), the meta JSON and pickle describe that
same model, the aliases agree with the folder, every backup that existed is byte-for-byte
intact, and no temp file, half-made backup or journal is left behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry.backups import BACKUP_MANIFEST
from clm_tray.core.registry.deploy import Deployer
from clm_tray.core.registry.deploy_steps import DEPLOY_STEPS
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.registry.version import ModelVersion

CHILD = Path(__file__).with_name("deploy_child.py")
_spec = importlib.util.spec_from_file_location("clm_tray_deploy_child", CHILD)
assert _spec and _spec.loader
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL semantics are POSIX")

FIRST_NEW_STEP = DEPLOY_STEPS.index("meta_written")  # from here on every new file is in place


def _versions(store: ModelStore, tmp_path: Path, n: int) -> list[ModelVersion]:
    out = []
    for i in range(n):
        src = tmp_path / f"trained_{i}.ubj"
        src.write_bytes(os.urandom(4096 + i))
        out.append(store.add_version(src, {"features": ["f1", "f2", f"f{i + 3}"]}))
    return out


def _snapshot_backups(deploy_dir: Path) -> dict[str, dict[str, str]]:
    return {
        d.name: {f.name: sha256_file(f) for f in d.iterdir()}
        for d in deploy_dir.iterdir()
        if d.is_dir() and d.name.startswith("backup_")
    }


def _run_child(store: ModelStore, deploy_dir: Path, step: str, *args: str) -> int:
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(store.root), str(deploy_dir), *args, step],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    return proc.returncode


def _assert_one_complete_model(
    deployer: Deployer, store: ModelStore, expected: ModelVersion, previous: str | None
) -> None:
    folder = deployer.deploy_dir
    assert deployer.deployed_sha256() == expected.sha256
    meta = deployer.deployed_meta()
    assert meta is not None
    assert meta["version"] == expected.id
    assert meta["model_sha256"] == expected.sha256
    assert meta["features"] == expected.features
    assert (folder / "xgb_model.pkl").read_bytes() == child.fake_pickle(expected.sha256)
    aliases = store.aliases()
    assert aliases["champion"] == expected.id
    assert aliases["previous"] == previous
    assert not store.journal_path.exists()
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    for d in folder.iterdir():
        if d.is_dir():
            assert (d / BACKUP_MANIFEST).is_file(), f"half-made backup {d.name} left behind"


@pytest.fixture
def scene(tmp_path: Path):
    store = ModelStore(tmp_path / "store")
    versions = _versions(store, tmp_path, 3)
    deploy_dir = tmp_path / "models"
    deployer = child.FakePickleDeployer(store, deploy_dir, backup_keep=3, write_pickle=True)
    return store, versions, deploy_dir, deployer


@pytest.mark.parametrize("step", DEPLOY_STEPS)
def test_kill_during_install_leaves_old_or_new_model(scene, step: str) -> None:
    store, (v1, v2, v3), deploy_dir, deployer = scene
    deployer.install(v1, reason="setup")
    deployer.install(v2, reason="setup")
    backups_before = _snapshot_backups(deploy_dir)

    _run_child(store, deploy_dir, step, "install", v3.id)
    assert store.journal_path.exists(), "the kill must land while the journal is open"

    outcome = Deployer(store, deploy_dir, backup_keep=3).recover()
    assert outcome and v3.id in outcome

    if DEPLOY_STEPS.index(step) < FIRST_NEW_STEP:
        _assert_one_complete_model(deployer, store, v2, previous=v1.id)
    else:
        _assert_one_complete_model(deployer, store, v3, previous=v2.id)
    after = _snapshot_backups(deploy_dir)
    for name, files in backups_before.items():
        assert after.get(name) == files, f"backup {name} was lost or changed"

    deployer.install(v1, reason="the folder is usable again")
    assert deployer.deployed_sha256() == v1.sha256


@pytest.mark.parametrize("step", DEPLOY_STEPS)
def test_kill_during_rollback_leaves_old_or_rolled_back_model(scene, step: str) -> None:
    store, (v1, v2, v3), deploy_dir, deployer = scene
    for v in (v1, v2, v3):
        deployer.install(v, reason="setup")
    backups_before = _snapshot_backups(deploy_dir)

    _run_child(store, deploy_dir, step, "rollback", "-")
    assert store.journal_path.exists(), "the kill must land while the journal is open"

    outcome = Deployer(store, deploy_dir, backup_keep=3).recover()
    assert outcome and "rollback" in outcome

    if DEPLOY_STEPS.index(step) < FIRST_NEW_STEP:
        _assert_one_complete_model(deployer, store, v3, previous=v2.id)
    else:
        _assert_one_complete_model(deployer, store, v2, previous=v3.id)
    after = _snapshot_backups(deploy_dir)
    for name, files in backups_before.items():
        assert after.get(name) == files, f"backup {name} was lost or changed"


@pytest.mark.parametrize("step", ["backup_done", "replaced_model", "meta_written"])
def test_kill_during_first_install_leaves_empty_or_complete_folder(scene, step: str) -> None:
    store, (v1, _v2, _v3), deploy_dir, deployer = scene
    _run_child(store, deploy_dir, step, "install", v1.id)

    Deployer(store, deploy_dir).recover()

    if DEPLOY_STEPS.index(step) < FIRST_NEW_STEP:
        assert sorted(p.name for p in deploy_dir.iterdir()) == []
        assert store.aliases()["champion"] is None
    else:
        _assert_one_complete_model(deployer, store, v1, previous=None)
    assert not store.journal_path.exists()


def test_a_second_deploy_repairs_a_crashed_one_before_starting(scene) -> None:
    store, (v1, v2, v3), deploy_dir, deployer = scene
    deployer.install(v1, reason="setup")
    _run_child(store, deploy_dir, "replaced_model", "install", v2.id)
    assert deployer.deployed_sha256() == v2.sha256  # a mix: new model, old meta

    deployer.install(v3, reason="next cycle")

    _assert_one_complete_model(deployer, store, v3, previous=v1.id)


def test_a_deploy_without_an_observer_runs_to_the_end(scene) -> None:
    store, (v1, _v2, _v3), deploy_dir, _deployer = scene
    env = {**os.environ, "CLM_TRAY_FAULT": "journal_written"}  # the old switch does nothing
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(store.root), str(deploy_dir), "install", v1.id],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    digest = hashlib.sha256((deploy_dir / "xgb_model.ubj").read_bytes()).hexdigest()
    assert digest == v1.sha256
