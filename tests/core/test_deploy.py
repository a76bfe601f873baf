"""Installing versions into the deploy folder: backups, meta, log, retention, rollback."""

from __future__ import annotations

import datetime as dt
import json
import os
import pickletools
import re
from pathlib import Path

import pytest

from clm_tray.core.errors import DeployError, StoreError
from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry import deploy_files, deploy_steps
from clm_tray.core.registry.backups import BACKUP_MANIFEST
from clm_tray.core.registry.deploy import Deployer
from clm_tray.core.registry.deploy_steps import DEPLOY_STEPS
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.registry.version import ModelVersion


def _versions(store: ModelStore, tmp_path: Path, n: int) -> list[ModelVersion]:
    out = []
    for i in range(n):
        src = tmp_path / f"trained_{i}.ubj"
        src.write_bytes(os.urandom(1000 + i))
        out.append(store.add_version(src, {"features": ["ret_1", "rsi_14"]}))
    return out


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


@pytest.fixture
def deploy_dir(tmp_path: Path) -> Path:
    return tmp_path / "ai_engine" / "models"


def test_first_install_creates_folder_model_and_meta(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    (v1,) = _versions(store, tmp_path, 1)
    deployer = Deployer(store, deploy_dir)

    result = deployer.install(v1, reason="first model")

    assert result.version == v1.id and result.sha256 == v1.sha256
    assert result.backup_dir is None and result.previous is None
    assert sorted(os.listdir(deploy_dir)) == ["xgb_model.meta.json", "xgb_model.ubj"]
    assert (deploy_dir / "xgb_model.ubj").read_bytes() == v1.model_path.read_bytes()
    meta = json.loads((deploy_dir / "xgb_model.meta.json").read_text())
    assert set(meta) == {"version", "model_sha256", "features", "trained_at", "deployed_at",
                         "files"}
    assert meta["files"] == {"xgb_model.ubj": v1.sha256}
    assert meta["version"] == v1.id
    assert meta["model_sha256"] == v1.sha256 == deployer.deployed_sha256()
    assert meta["features"] == ["ret_1", "rsi_14"]
    assert deployer.deployed_meta() == meta
    assert store.aliases()["champion"] == v1.id
    assert not store.journal_path.exists()


def test_second_install_backs_up_the_replaced_files(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    v1, v2 = _versions(store, tmp_path, 2)
    deployer = Deployer(store, deploy_dir)
    deployer.install(v1, reason="first")
    old_meta = (deploy_dir / "xgb_model.meta.json").read_bytes()

    result = deployer.install(v2, reason="retrained")

    assert result.previous == v1.id
    assert result.backup_dir is not None
    assert re.fullmatch(r"backup_\d{8}_\d{6}(_\d+)?", result.backup_dir.name)
    assert (result.backup_dir / "xgb_model.ubj").read_bytes() == v1.model_path.read_bytes()
    assert (result.backup_dir / "xgb_model.meta.json").read_bytes() == old_meta
    manifest = json.loads((result.backup_dir / BACKUP_MANIFEST).read_text())
    assert manifest["version"] == v1.id
    assert manifest["files"]["xgb_model.ubj"]["sha256"] == v1.sha256
    assert store.aliases() == {"champion": v2.id, "previous": v1.id, "challenger": None}
    [backup] = deployer.backups()
    assert backup["name"] == result.backup_dir.name
    assert backup["version"] == v1.id and backup["sha256"] == v1.sha256
    assert backup["size"] == v1.size
    assert dt.datetime.fromisoformat(backup["created"])


def test_backups_taken_in_the_same_second_get_unique_names(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    versions = _versions(store, tmp_path, 4)
    deployer = Deployer(store, deploy_dir)
    for v in versions:
        deployer.install(v, reason="quick succession")

    names = [b["name"] for b in deployer.backups()]
    assert len(set(names)) == 3
    assert [b["version"] for b in deployer.backups()] == [v.id for v in versions[:3]]


def test_installing_the_challenger_clears_that_alias(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    v1, v2 = _versions(store, tmp_path, 2)
    deployer = Deployer(store, deploy_dir)
    deployer.install(v1, reason="first")
    store.set_aliases(challenger=v2.id)

    deployer.install(v2, reason="shadow test passed")

    assert store.aliases() == {"champion": v2.id, "previous": v1.id, "challenger": None}


def test_log_line_uses_the_existing_format(store: ModelStore, deploy_dir: Path) -> None:
    deployer = Deployer(store, deploy_dir)

    at = dt.datetime(2025, 12, 11, 8, 55, 58)
    deployer.append_log("Retraining completed successfully", now=at)
    deployer.append_log("Retraining failed: data file\nmissing")
    deployer.append_log("Retraining completed successfully")

    lines = (deploy_dir / "retraining_log.txt").read_text().splitlines()
    assert lines[0] == "2025-12-11 08:55:58 - Retraining completed successfully"
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - Retraining failed: data file missing"
    assert re.fullmatch(pattern, lines[1])
    assert len(lines) == 3


def test_retention_keeps_newest_backups(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    versions = _versions(store, tmp_path, 6)
    deployer = Deployer(store, deploy_dir, backup_keep=2)
    for v in versions:
        deployer.install(v, reason="cycle")

    kept = deployer.backups()
    assert [b["version"] for b in kept] == [versions[3].id, versions[4].id]


def test_retention_never_deletes_the_backup_previous_needs(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    v1, v2 = _versions(store, tmp_path, 2)
    deployer = Deployer(store, deploy_dir, backup_keep=2)
    deployer.install(v1, reason="first")
    deployer.install(v2, reason="second")  # backup of v1 = what `previous` needs
    for _ in range(4):  # re-installing the champion backs up v2 each time, previous stays v1
        deployer.install(v2, reason="reinstall")

    backups = deployer.backups()
    assert store.aliases()["previous"] == v1.id
    assert [b["version"] for b in backups] == [v1.id, v2.id, v2.id]
    holding_v1 = backups[0]["path"]
    assert sha256_file(holding_v1 / "xgb_model.ubj") == v1.sha256


def test_rollback_restores_previous_bytes_exactly(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    v1, v2 = _versions(store, tmp_path, 2)
    deployer = Deployer(store, deploy_dir)
    deployer.install(v1, reason="first")
    deployer.install(v2, reason="second")

    result = deployer.rollback(reason="backend unhealthy")

    assert result.version == v1.id and result.previous == v2.id
    assert deployer.deployed_sha256() == v1.sha256 == sha256_file(v1.model_path)
    assert deployer.deployed_meta()["version"] == v1.id
    assert store.aliases() == {"champion": v1.id, "previous": v2.id, "challenger": None}
    assert result.backup_dir is not None
    assert sha256_file(result.backup_dir / "xgb_model.ubj") == v2.sha256

    deployer.rollback(reason="and back again")
    assert deployer.deployed_sha256() == v2.sha256


def test_rollback_to_a_named_version(store: ModelStore, deploy_dir: Path, tmp_path: Path) -> None:
    v1, v2, v3 = _versions(store, tmp_path, 3)
    deployer = Deployer(store, deploy_dir)
    for v in (v1, v2, v3):
        deployer.install(v, reason="cycle")

    result = deployer.rollback(store.get(v1.id), reason="user asked")

    assert deployer.deployed_sha256() == v1.sha256
    assert result.previous == v3.id
    assert store.aliases()["champion"] == v1.id


def test_rollback_without_previous_is_one_line_error(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    (v1,) = _versions(store, tmp_path, 1)
    deployer = Deployer(store, deploy_dir)
    deployer.install(v1, reason="first")

    with pytest.raises(DeployError) as err:
        deployer.rollback(reason="nothing to go back to")

    assert "no previous version" in str(err.value)
    assert "clm-tray rollback VERSION" in str(err.value)
    assert deployer.deployed_sha256() == v1.sha256


def test_tampered_version_is_refused_and_folder_untouched(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    v1, v2 = _versions(store, tmp_path, 2)
    deployer = Deployer(store, deploy_dir)
    deployer.install(v1, reason="first")
    os.chmod(v2.model_path, 0o644)
    v2.model_path.write_bytes(b"not the trained model")

    with pytest.raises(StoreError, match="does not match its manifest's sha256"):
        deployer.install(v2, reason="second")

    assert deployer.deployed_sha256() == v1.sha256
    assert deployer.backups() == []
    assert store.aliases()["champion"] == v1.id


def test_failure_mid_install_puts_the_old_model_back(
    store: ModelStore, deploy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = _versions(store, tmp_path, 2)
    deployer = Deployer(store, deploy_dir)
    deployer.install(v1, reason="first")
    old_meta = (deploy_dir / "xgb_model.meta.json").read_bytes()
    real_replace = deploy_files.replace_file

    def replace_then_fail_on_meta(src: Path, dst: Path) -> None:
        if dst.name.endswith(".meta.json") and "v0002" in src.read_text(errors="ignore"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(deploy_files, "replace_file", replace_then_fail_on_meta)

    with pytest.raises(DeployError) as err:
        deployer.install(v2, reason="second")

    assert "still deployed" in str(err.value)
    assert deployer.deployed_sha256() == v1.sha256
    assert (deploy_dir / "xgb_model.meta.json").read_bytes() == old_meta
    assert store.aliases()["champion"] == v1.id
    assert not store.journal_path.exists()
    assert [p.name for p in deploy_dir.iterdir() if p.name.startswith(".")] == []


def test_missing_deploy_folder_is_created(store: ModelStore, tmp_path: Path) -> None:
    (v1,) = _versions(store, tmp_path, 1)
    deep = tmp_path / "a" / "b" / "models"

    Deployer(store, deep).install(v1, reason="first")

    assert (deep / "xgb_model.ubj").is_file()


def test_unusable_deploy_folder_is_one_line_error(store: ModelStore, tmp_path: Path) -> None:
    (v1,) = _versions(store, tmp_path, 1)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the models folder should be")

    with pytest.raises(DeployError) as err:
        Deployer(store, blocker / "models").install(v1, reason="first")

    assert str(blocker / "models") in str(err.value)
    assert "permissions" in str(err.value)
    assert not store.journal_path.exists()


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_deploy_folder_is_one_line_error(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    (v1,) = _versions(store, tmp_path, 1)
    deploy_dir.mkdir(parents=True)
    os.chmod(deploy_dir, 0o555)
    try:
        with pytest.raises(DeployError, match="check its permissions"):
            Deployer(store, deploy_dir).install(v1, reason="first")
    finally:
        os.chmod(deploy_dir, 0o755)


def _tiny_version(store: ModelStore, tmp_path: Path) -> ModelVersion:
    import numpy as np
    import xgboost

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, size=50)
    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(X, y)
    src = tmp_path / "tiny.ubj"
    model.save_model(str(src))
    return store.add_version(src, {"features": ["a", "b", "c"]})


def test_a_pickle_the_backend_loads_is_replaced_never_removed(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    v1 = _tiny_version(store, tmp_path)
    deploy_dir.mkdir(parents=True)
    (deploy_dir / "xgb_model.pkl").write_bytes(b"seed pickle")

    result = Deployer(store, deploy_dir).install(v1, reason="first managed model")

    new = (deploy_dir / "xgb_model.pkl").read_bytes()
    assert new != b"seed pickle" and b"XGBClassifier" in new
    assert result.files == ["xgb_model.ubj", "xgb_model.pkl", "xgb_model.meta.json"]
    assert result.backup_dir is not None
    assert (result.backup_dir / "xgb_model.pkl").read_bytes() == b"seed pickle"


def test_deploy_pickle_false_leaves_the_folders_pickle_alone(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    (v1,) = _versions(store, tmp_path, 1)
    deploy_dir.mkdir(parents=True)
    (deploy_dir / "xgb_model.pkl").write_bytes(b"seed pickle")

    result = Deployer(store, deploy_dir, write_pickle=False).install(v1, reason="no pickle")

    assert (deploy_dir / "xgb_model.pkl").read_bytes() == b"seed pickle"
    assert "xgb_model.pkl" not in result.files and result.backup_dir is None


def test_backups_made_before_clm_tray_are_listed(store: ModelStore, deploy_dir: Path) -> None:
    seed = deploy_dir / "backup_20251211_085558"
    seed.mkdir(parents=True)
    (seed / "xgb_model.ubj").write_bytes(b"old model")

    [backup] = Deployer(store, deploy_dir).backups()

    assert backup["name"] == "backup_20251211_085558"
    assert backup["version"] is None
    assert backup["sha256"] == sha256_file(seed / "xgb_model.ubj")
    assert backup["size"] == len(b"old model")
    assert backup["created"].startswith("2025-12-11T08:55:58")


def test_recover_with_nothing_to_do_returns_none_and_clears_temp_files(
    store: ModelStore, deploy_dir: Path
) -> None:
    deployer = Deployer(store, deploy_dir)
    assert deployer.recover() is None
    assert deployer.deployed_sha256() is None and deployer.deployed_meta() is None

    deploy_dir.mkdir(parents=True)
    (deploy_dir / ".xgb_model.ubj.clm-tray-tmp").write_bytes(b"half")
    (deploy_dir / "someone_elses.tmp").write_bytes(b"not ours")

    assert "1 left-over temporary file" in (deployer.recover() or "")
    assert sorted(os.listdir(deploy_dir)) == ["someone_elses.tmp"]


def test_fault_steps_are_unique_and_reported_in_order(store: ModelStore, deploy_dir: Path,
                                                      tmp_path: Path) -> None:
    assert len(set(DEPLOY_STEPS)) == len(DEPLOY_STEPS)
    seen: list[str] = []
    remove = deploy_steps.add_step_observer(seen.append)
    try:
        src = tmp_path / "m.ubj"
        for i in range(2):
            src.write_bytes(os.urandom(100 + i))
            Deployer(store, deploy_dir).install(store.add_version(src, {"features": ["a"]}),
                                                reason="test")
    finally:
        remove()
    assert seen[-1] == "before_journal_cleared"
    assert [s for s in DEPLOY_STEPS if s in seen] == sorted(set(seen), key=DEPLOY_STEPS.index)


def test_pickle_for_old_backends_is_written_and_never_loaded(
    store: ModelStore, deploy_dir: Path, tmp_path: Path
) -> None:
    v1 = _tiny_version(store, tmp_path)

    result = Deployer(store, deploy_dir, write_pickle=True).install(v1, reason="old backend")

    assert "xgb_model.pkl" in result.files
    data = (deploy_dir / "xgb_model.pkl").read_bytes()
    names = {str(arg) for _op, arg, _pos in pickletools.genops(data) if arg}
    assert "XGBClassifier" in names and "xgboost.sklearn" in names
