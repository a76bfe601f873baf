"""Adopting the trader's deployed model: recorded once, never loaded, never lost, put back
byte for byte; deploys write the formats the folder holds; the dry run only looks."""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clm_tray.core.app.status import IDENTITY_HINT, IDENTITY_NOT_REPORTED, Health, HealthReport
from clm_tray.core.backend.health import verify_backend
from clm_tray.core.config.settings import Settings
from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry.adopt import adopt_deployed
from clm_tray.core.registry.deploy import Deployer
from clm_tray.core.registry.plan import plan_retrain
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.registry.version import ModelVersion
from clm_tray.core.serialize import to_jsonable

MTIME = dt.datetime(2026, 11, 30, 5, 0, 0, tzinfo=dt.timezone.utc)


def booby_trapped_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` if anyone ever loads it."""

    class Trap:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    return pickle.dumps(Trap())


def seed_folder(tmp_path: Path, at: dt.datetime = MTIME) -> tuple[Path, bytes, Path]:
    """A models folder as the old scripts left it: only xgb_model.pkl."""
    folder = tmp_path / "ai_engine" / "models"
    folder.mkdir(parents=True)
    marker = tmp_path / "the-pickle-was-loaded"
    data = booby_trapped_pickle(marker)
    (folder / "xgb_model.pkl").write_bytes(data)
    os.utime(folder / "xgb_model.pkl", (at.timestamp(), at.timestamp()))
    return folder, data, marker


def tiny_version(store: ModelStore, tmp_path: Path, seed: int = 0) -> ModelVersion:
    import numpy as np
    import xgboost

    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(60, 3)), rng.integers(0, 2, size=60)
    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(x, y)
    src = tmp_path / f"tiny{seed}.ubj"
    model.save_model(str(src))
    return store.add_version(src, {"features": ["a", "b", "c"]})


def test_the_deployed_pickle_is_adopted_once_as_champion_aged_by_its_mtime(tmp_path) -> None:
    folder, data, marker = seed_folder(tmp_path)
    store = ModelStore(tmp_path / "store")

    done = adopt_deployed(store, folder, "xgb_model.ubj")

    assert done is not None and done.replaced_champion is None
    v = done.version
    assert v.id == "v0000-adopted-20261130" and v.adopted
    assert v.adopted_files == {"xgb_model.pkl": {"sha256": sha256_file(folder / "xgb_model.pkl"),
                                                 "size": len(data)}}
    assert (v.path / "xgb_model.pkl").read_bytes() == data
    assert v.trained_at == MTIME and v.metrics == {}
    assert store.aliases()["champion"] == v.id
    store.verify(v)
    assert adopt_deployed(store, folder, "xgb_model.ubj") is None  # idempotent
    assert [x.id for x in store.list()] == [v.id]
    assert not marker.exists()


def test_a_pickle_copied_in_by_hand_later_is_adopted_not_lost(tmp_path) -> None:
    store = ModelStore(tmp_path / "store")
    folder = tmp_path / "models"
    v1 = tiny_version(store, tmp_path)
    Deployer(store, folder).install(v1, reason="first")
    hand = b"a model the trader copied in by hand"
    (folder / "xgb_model.pkl").write_bytes(hand)
    later = (folder / "xgb_model.meta.json").stat().st_mtime + 60
    os.utime(folder / "xgb_model.pkl", (later, later))

    done = adopt_deployed(store, folder, "xgb_model.ubj")

    assert done is not None and done.replaced_champion == v1.id
    assert done.version.id.startswith("v0002-adopted-")
    assert (done.version.path / "xgb_model.pkl").read_bytes() == hand
    assert store.aliases()["champion"] == done.version.id
    assert store.aliases()["previous"] == v1.id
    assert "changed outside clm-tray" in done.message


def test_a_pickle_an_older_clm_tray_wrote_beside_the_champion_is_not_adopted(tmp_path) -> None:
    store = ModelStore(tmp_path / "store")
    folder = tmp_path / "models"
    v1 = tiny_version(store, tmp_path)
    Deployer(store, folder, write_pickle=True).install(v1, reason="deploy_pickle=true")
    notes = v1.path / "notes.json"
    notes.write_text("{}")  # a store from before versions kept their pickles

    assert adopt_deployed(store, folder, "xgb_model.ubj") is None

    assert store.aliases()["champion"] == v1.id and len(store.list()) == 1
    claimed = json.loads(notes.read_text())["deployed_files"]
    assert claimed["xgb_model.pkl"] == sha256_file(folder / "xgb_model.pkl")


def test_first_deploy_keeps_the_adopted_layout_and_rollback_restores_it_byte_for_byte(
        tmp_path) -> None:
    folder, data, marker = seed_folder(tmp_path)
    store = ModelStore(tmp_path / "store")
    adopted = adopt_deployed(store, folder, "xgb_model.ubj").version
    new = tiny_version(store, tmp_path)
    deployer = Deployer(store, folder)

    result = deployer.install(new, reason="first retrain")

    assert result.previous == adopted.id
    assert sorted(result.files) == ["xgb_model.meta.json", "xgb_model.pkl", "xgb_model.ubj"]
    assert (folder / "xgb_model.pkl").read_bytes() != data  # a new pickle, not a missing one
    assert (result.backup_dir / "xgb_model.pkl").read_bytes() == data
    assert deployer.backups()[-1]["version"] == adopted.id

    back = deployer.rollback(reason="manual rollback")

    assert back.version == adopted.id
    assert (folder / "xgb_model.pkl").read_bytes() == data
    assert not (folder / "xgb_model.ubj").exists()  # the adopted layout had none
    meta = json.loads((folder / "xgb_model.meta.json").read_text())
    assert meta["version"] == adopted.id and meta["adopted"] is True
    assert meta["model_sha256"] == adopted.sha256
    assert (back.backup_dir / "xgb_model.ubj").read_bytes() == new.model_path.read_bytes()
    assert not marker.exists()  # stored, deployed, backed up, restored: never loaded


def test_a_native_json_model_in_the_folder_gets_a_new_json_at_every_deploy(tmp_path) -> None:
    store = ModelStore(tmp_path / "store")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "xgb_model.json").write_text('{"learner": "the old model"}')
    v1 = tiny_version(store, tmp_path)

    Deployer(store, folder).install(v1, reason="first")

    written = (folder / "xgb_model.json").read_bytes()
    assert written.startswith(b"{") and b"the old model" not in written
    assert (folder / "xgb_model.ubj").read_bytes() == v1.model_path.read_bytes()


def test_a_version_made_for_a_pickle_folder_holds_the_pickle_it_deploys(tmp_path) -> None:
    from clm_tray.core.registry.formats import model_bytes

    store = ModelStore(tmp_path / "store")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "xgb_model.pkl").write_bytes(b"old")
    src = tmp_path / "m.ubj"
    src.write_bytes(tiny_version(store, tmp_path).model_path.read_bytes())
    v = store.add_version(src, {"features": ["a", "b", "c"]},
                          formats={".pkl": model_bytes(src, ".pkl")})

    Deployer(store, folder).install(v, reason="retrain")

    assert (folder / "xgb_model.pkl").read_bytes() == (v.path / "model.pkl").read_bytes()
    (v.path / "model.pkl").chmod(0o644)
    (v.path / "model.pkl").write_bytes(b"tampered")
    with pytest.raises(Exception, match="does not match its manifest"):
        store.verify(v)


def test_dry_run_plan_names_every_file_and_touches_nothing(tmp_path) -> None:
    root = tmp_path / "quantum_trader"
    folder, _data, _marker = seed_folder(root)
    before = {p.name: sha256_file(p) for p in folder.iterdir()}
    s = Settings(project_dir=root, store_dir=tmp_path / "store", backend="none")

    plan = plan_retrain(s)

    assert plan.adopt == ["xgb_model.pkl"] and plan.adopt_as == "v0000-adopted-20261130"
    assert plan.backup == ["xgb_model.pkl"]
    assert [w.name for w in plan.write] == ["xgb_model.ubj", "xgb_model.pkl",
                                            "xgb_model.meta.json"]
    assert "because the folder holds xgb_model.pkl" in plan.write[1].why
    assert "v0000-adopted-20261130 is put back" in plan.fallback
    assert {p.name: sha256_file(p) for p in folder.iterdir()} == before
    assert not (tmp_path / "store").exists()
    s.deploy_pickle = False
    kept = plan_retrain(s)
    assert [u.name for u in kept.untouched] == ["xgb_model.pkl"]
    assert "xgb_model.pkl" not in [w.name for w in kept.write]
    s.model_file = "xgb_model.pkl"  # would hand a pickle-loading backend native bytes
    [problem] = plan_retrain(s).problems
    assert problem.startswith("QT_CLM_MODEL_FILE=xgb_model.pkl: ") and "xgb_model.ubj" in problem


def test_an_adopted_champion_shows_its_age_and_is_not_measured(engine_factory,
                                                               small_workspace) -> None:
    models = small_workspace / "models"
    seed_folder_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=31)
    models.mkdir()
    (models / "xgb_model.pkl").write_bytes(b"the old scripts' pickle")
    os.utime(models / "xgb_model.pkl", (seed_folder_at.timestamp(),) * 2)

    engine = engine_factory()
    st = engine.status()

    assert st.champion is not None and st.champion.adopted
    assert st.champion.files == ["xgb_model.pkl"] and st.champion.test_accuracy is None
    assert 30.9 < st.age_hours < 31.1
    assert st.health == Health.ATTENTION
    assert st.summary == "xgb_model.pkl, adopted, 31 h old → retrain due"
    drift = engine.drift()
    perf = engine.performance()
    assert not drift.enough and not drift.drifted and drift.reason.startswith("not measured")
    assert not perf.enough and perf.accuracy is None and perf.test_accuracy is None


def test_a_backend_without_identity_turns_the_tray_amber_with_how_to_fix(
        engine_factory, small_workspace) -> None:
    models = small_workspace / "models"
    models.mkdir()
    (models / "xgb_model.pkl").write_bytes(b"fresh pickle")
    engine = engine_factory()
    answered = HealthReport(ok=True, url="http://127.0.0.1:8000/health", status_code=200,
                            latency_ms=2.0, reported_sha256=None, reported_version=None,
                            reason="healthy", identity=IDENTITY_NOT_REPORTED)
    engine.history.add_check("health", to_jsonable(answered), at=time.time())

    st = engine.status()

    assert st.health == Health.ATTENTION and st.summary == IDENTITY_HINT


def _serve(body: bytes) -> tuple[str, ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/health", server


@pytest.mark.parametrize(("body", "ok", "identity"), [
    (b'{"status": "ok", "model_loaded": true}', True, "not reported"),
    (b'{"status": "ok", "model_loaded": false}', False, ""),
    (b'{"status": "ok", "model_sha256": "' + b"a" * 64 + b'"}', True, "verified"),
])
def test_health_without_identity_is_judged_on_what_it_says(body, ok, identity) -> None:
    url, server = _serve(body)
    try:
        report = verify_backend(url, expect_sha256="a" * 64, expect_version=None, deadline=0.5)
    finally:
        server.shutdown()
        server.server_close()
    assert report.ok is ok and report.identity == identity
    if not ok:
        assert "says its model is not loaded" in report.reason


def test_a_deploy_folder_named_in_new_settings_is_adopted_at_once(engine_factory,
                                                                  small_workspace) -> None:
    engine = engine_factory()
    assert engine.status().champion is None
    models = small_workspace / "models"
    models.mkdir()
    (models / "xgb_model.pkl").write_bytes(b"the pickle of the folder just chosen")

    engine.apply_settings(engine.loaded)  # what the tray does after Settings / first run

    champion = engine.status().champion
    assert champion is not None and champion.adopted and champion.files == ["xgb_model.pkl"]


def test_store_retention_never_prunes_the_adopted_model(tmp_path) -> None:
    from clm_tray.core.app.decide import prunable

    folder, data, _marker = seed_folder(tmp_path)
    store = ModelStore(tmp_path / "store")
    adopted = adopt_deployed(store, folder, "xgb_model.ubj").version
    trained = [tiny_version(store, tmp_path, seed) for seed in range(3)]

    doomed = prunable(store.list(), keep=1, protected=set(), deployed=set())

    assert [v.id for v in doomed] == [v.id for v in trained[:2]]
    assert adopted.id not in {v.id for v in doomed}
