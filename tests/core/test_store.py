"""The model store: immutable versions, aliases, notes and the machine-wide cycle lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from clm_tray.core.errors import CycleBusy, StoreError
from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry.store import ModelStore

CHILD = Path(__file__).with_name("deploy_child.py")


def _model(tmp_path: Path, name: str = "trained.ubj", size: int = 2048) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


def test_new_version_gets_next_id_and_utc_minute(store: ModelStore, tmp_path: Path) -> None:
    local = dt.timezone(dt.timedelta(hours=2))
    at_local = dt.datetime(2026, 11, 28, 10, 55, tzinfo=local)
    at_utc = dt.datetime(2026, 11, 28, 9, 1, tzinfo=dt.timezone.utc)
    first = store.add_version(_model(tmp_path), {}, now=at_local)
    second = store.add_version(_model(tmp_path), {}, now=at_utc)

    assert first.id == "v0001-20261128T0855"
    assert second.id == "v0002-20261128T0901"
    assert [v.id for v in store.list()] == [first.id, second.id]


def test_manifest_records_the_file_and_is_readable_json(store: ModelStore, tmp_path: Path) -> None:
    src = _model(tmp_path, size=3000)
    v = store.add_version(src, {"features": ["b", "a"], "metrics": {"test_accuracy": 0.55}})

    text = (v.path / "manifest.json").read_text()
    manifest = json.loads(text)
    assert manifest["id"] == v.id
    assert manifest["model_file"] == "model.ubj"
    assert manifest["model_sha256"] == sha256_file(src) == sha256_file(v.model_path)
    assert manifest["model_size"] == 3000
    assert manifest["features"] == ["b", "a"]  # order kept: it is the training order
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert v.metrics == {"test_accuracy": 0.55}
    assert v.trained_at.tzinfo is not None


def test_version_files_are_read_only_and_no_temp_folder_remains(
    store: ModelStore, tmp_path: Path
) -> None:
    v = store.add_version(_model(tmp_path), {})

    for name in ("model.ubj", "manifest.json"):
        assert not (v.path / name).stat().st_mode & stat.S_IWUSR
    assert [p.name for p in store.versions_dir.iterdir()] == [v.id]


def test_a_half_built_version_folder_is_ignored(store: ModelStore, tmp_path: Path) -> None:
    (store.versions_dir / ".incoming-deadbeef").mkdir()
    v = store.add_version(_model(tmp_path), {})

    assert [x.id for x in store.list()] == [v.id]
    assert v.id.startswith("v0001-")


def test_numpy_values_in_a_manifest_are_stored_as_numbers(
    store: ModelStore, tmp_path: Path
) -> None:
    import numpy as np

    v = store.add_version(_model(tmp_path), {"metrics": {"auc": np.float32(0.5)}, "n": np.int64(3)})

    manifest = json.loads((v.path / "manifest.json").read_text())
    assert manifest["metrics"]["auc"] == 0.5
    assert manifest["n"] == 3


def test_unknown_version_is_one_line_error_pointing_to_versions(store: ModelStore) -> None:
    with pytest.raises(StoreError) as err:
        store.get("v0042-20260101T0000")

    assert "clm-tray versions" in str(err.value)
    assert "\n" not in str(err.value)


def test_version_can_be_found_by_its_short_number(store: ModelStore, tmp_path: Path) -> None:
    v = store.add_version(_model(tmp_path), {})

    assert store.get("v0001").id == v.id
    assert store.get(v.id).manifest == v.manifest


def test_verify_detects_changed_model_bytes(store: ModelStore, tmp_path: Path) -> None:
    v = store.add_version(_model(tmp_path), {})
    store.verify(v)

    os.chmod(v.model_path, 0o644)
    with open(v.model_path, "r+b") as fh:
        fh.write(b"\x00tampered")

    with pytest.raises(StoreError) as err:
        store.verify(v)
    message = str(err.value)
    assert f"versions/{v.id}/model.ubj does not match its manifest's sha256" in message
    assert "roll back" in message


def test_verify_reports_a_missing_model_file(store: ModelStore, tmp_path: Path) -> None:
    v = store.add_version(_model(tmp_path), {})
    v.model_path.unlink()

    with pytest.raises(StoreError, match="is missing"):
        store.verify(v)


def test_aliases_start_empty_and_change_atomically(store: ModelStore) -> None:
    assert store.aliases() == {"champion": None, "previous": None, "challenger": None}

    store.set_aliases(champion="v0002-20261128T0855", previous="v0001-20261128T0855")
    store.set_aliases(challenger="v0003-20261128T0955")
    store.set_aliases(previous=None)

    assert store.aliases() == {
        "champion": "v0002-20261128T0855",
        "previous": None,
        "challenger": "v0003-20261128T0955",
    }
    assert json.loads(store.aliases_path.read_text())["champion"] == "v0002-20261128T0855"
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []


def test_unknown_alias_name_is_refused(store: ModelStore) -> None:
    with pytest.raises(StoreError, match="unknown alias 'winner'"):
        store.set_aliases(winner="v0001")


def test_notes_change_while_the_manifest_stays_as_written(
    store: ModelStore, tmp_path: Path
) -> None:
    v = store.add_version(_model(tmp_path), {"metrics": {"auc": 0.6}})
    manifest_before = (v.path / "manifest.json").read_bytes()

    store.annotate(v.id, "shadow", {"rows": 120, "decision": "promote"})
    store.annotate(v.id, "decision", "promoted")

    assert store.notes(v.id) == {
        "shadow": {"rows": 120, "decision": "promote"},
        "decision": "promoted",
    }
    assert (v.path / "manifest.json").read_bytes() == manifest_before
    assert store.notes(store.add_version(_model(tmp_path), {}).id) == {}


def test_store_paths_follow_the_documented_layout(store: ModelStore) -> None:
    assert store.history_path == store.root / "history.sqlite"
    assert store.journal_path == store.root / "journal.json"
    assert store.aliases_path == store.root / "aliases.json"


def _hold_lock_in_child(store: ModelStore) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(store.root), "-", "hold-lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"locked"
    return proc


def test_second_process_gets_cycle_busy_while_one_holds_the_lock(store: ModelStore) -> None:
    proc = _hold_lock_in_child(store)
    try:
        with pytest.raises(CycleBusy) as err, store.cycle_lock():
            pytest.fail("the lock was granted twice")
        assert "already running" in str(err.value)
        assert str(store.lock_path) in str(err.value)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0

    with store.cycle_lock():
        pass


def test_a_killed_holder_frees_the_lock(store: ModelStore) -> None:
    if os.name == "nt":
        pytest.skip("SIGKILL is POSIX")
    proc = _hold_lock_in_child(store)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    with store.cycle_lock():
        pass


def test_cycle_lock_is_reentrant_for_its_thread_and_busy_for_others(store: ModelStore) -> None:
    seen: list[str] = []

    def other_thread() -> None:
        try:
            with store.cycle_lock():
                seen.append("acquired")
        except CycleBusy:
            seen.append("busy")

    with store.cycle_lock(), store.cycle_lock():
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen == ["busy"]

    with ModelStore(store.root).cycle_lock():
        pass
