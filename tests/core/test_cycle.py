"""The retrain cycle end to end on small real data: real XGBoost, real files, real SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from clm_tray.core.app import events as ev
from clm_tray.core.fsutil import sha256_file


def test_first_retrain_deploys_a_champion_with_backup_log_and_history(engine_factory,
                                                                       small_workspace):
    engine = engine_factory()
    seen: list[ev.Event] = []
    engine.bus.subscribe(seen.append)

    res = engine.retrain("manual")

    assert res.ok and res.outcome == "deployed", res.reason
    champion = engine.store.get(engine.store.aliases()["champion"])
    deployed = small_workspace / "models" / "xgb_model.ubj"
    assert sha256_file(deployed) == champion.sha256
    meta = json.loads((small_workspace / "models" / "xgb_model.meta.json").read_text())
    assert meta["version"] == champion.id and meta["features"] == champion.manifest["features"]
    log_lines = (small_workspace / "models" / "retraining_log.txt").read_text().splitlines()
    assert log_lines[-1].endswith(" - Retraining completed successfully")
    rec = engine.history.last_cycle()
    assert rec.outcome == "deployed" and rec.version == champion.id
    assert {"load", "train", "version", "shadow", "deploy"} <= set(rec.stages)
    kinds = [e.kind for e in seen]
    assert kinds[0] == ev.CYCLE_STARTED and kinds[-1] == ev.CYCLE_FINISHED
    assert ev.MODEL_DEPLOYED in kinds
    stages = [e.data["stage"] for e in seen if e.kind == ev.CYCLE_STAGE]
    assert stages.index("load") < stages.index("train") < stages.index("deploy")


def test_manifest_records_the_honest_evaluation(engine_factory):
    engine = engine_factory()
    engine.retrain()
    v = engine.store.get(engine.store.aliases()["champion"])
    m = v.manifest
    assert m["split"]["test_start"] > m["split"]["train_end"]
    assert set(m["importance"]) == set(m["features"])
    assert set(m["reference_profile"]) == set(m["features"])
    assert m["data"]["rows"] > 0 and len(m["data"]["sha256"]) == 64
    assert 0.3 < m["metrics"]["test_accuracy"] < 0.8
    assert m["model_file"] == "model.ubj" and v.model_path.suffix == ".ubj"


def test_same_data_again_is_unchanged_and_forcing_it_stores_no_second_copy(engine_factory):
    engine = engine_factory()
    engine.retrain()
    first = engine.store.aliases()["champion"]
    res = engine.retrain()
    assert res.ok and res.outcome == "unchanged", res.reason
    assert res.reason == f"data unchanged since {first.split('-')[0]} — nothing to retrain"
    forced = engine.retrain(force=True)  # trains, gets the same bytes: stored once only
    assert forced.ok and forced.outcome == "unchanged" and forced.version == first
    assert [v.id for v in engine.store.list()] == [first]
    assert engine.store.aliases()["champion"] == first
    assert engine.history.failures_since_success() == []


def test_new_rows_let_the_shadow_test_decide(engine_factory, small_workspace):
    from clm_tray.core.demo.feed import feed

    engine = engine_factory(shadow_min=50)
    engine.retrain()
    feed(small_workspace / "data" / "train.csv", hours=80)
    res = engine.retrain()
    assert res.shadow is not None and res.shadow.rows >= 50
    assert res.shadow.decision in ("promote", "reject")
    assert res.shadow.p_value is not None and 0.0 <= res.shadow.p_value <= 1.0
    row = next(r for r in engine.versions() if r.id == res.version)
    assert row.shadow == res.shadow  # read back from the notes as the same typed verdict


def test_no_deploy_trains_and_versions_only(engine_factory, small_workspace):
    engine = engine_factory()
    res = engine.retrain(deploy=False)
    assert res.ok and res.outcome == "trained"
    assert not (small_workspace / "models" / "xgb_model.ubj").exists()
    assert len(engine.store.list()) == 1


def test_auto_promote_off_waits_for_approval_then_promote_deploys(engine_factory,
                                                                  small_workspace):
    engine = engine_factory(auto_promote="false")
    res = engine.retrain()
    assert res.outcome == "awaiting approval"
    assert engine.store.aliases()["challenger"] == res.version
    assert not (small_workspace / "models" / "xgb_model.ubj").exists()
    promoted = engine.promote()
    assert promoted.ok and promoted.outcome == "deployed"
    assert engine.store.aliases()["champion"] == res.version
    assert engine.store.aliases().get("challenger") is None


def test_rollback_restores_previous_bytes_exactly(engine_factory, small_workspace):
    from clm_tray.core.demo.feed import feed

    engine = engine_factory(shadow_min=1, shadow_logloss_tol=10)
    engine.retrain()
    first = engine.store.get(engine.store.aliases()["champion"])
    feed(small_workspace / "data" / "train.csv", hours=48)
    second = engine.retrain()
    assert second.outcome == "deployed", second.reason
    res = engine.rollback()
    assert res.ok, res.reason
    assert sha256_file(small_workspace / "models" / "xgb_model.ubj") == first.sha256
    assert engine.store.aliases()["champion"] == first.id
    assert engine.store.aliases()["previous"] == second.version


def test_missing_data_is_a_failed_cycle_with_one_line(engine_factory, small_workspace):
    (small_workspace / "data" / "train.csv").unlink()
    engine = engine_factory()
    res = engine.retrain()
    assert not res.ok and res.outcome == "failed"
    assert "train.csv" in res.reason and "\n" not in res.reason
    log = (small_workspace / "models" / "retraining_log.txt").read_text()
    assert "Retraining failed:" in log


def test_a_leaky_feature_is_flagged_and_not_deployed(engine_factory, small_workspace):
    path = small_workspace / "data" / "train.csv"
    df = pd.read_csv(path)
    df = df.sort_values(["symbol", "timestamp"])
    nxt = df.groupby("symbol")["close"].shift(-1)
    df["peek"] = (nxt > df["close"]).astype(float)  # tomorrow's answer, today
    df.to_csv(path, index=False)
    engine = engine_factory()
    res = engine.retrain()
    assert res.leakage
    assert res.outcome == "rejected" and "leakage" in res.reason
    assert not (small_workspace / "models" / "xgb_model.ubj").exists()


def _cli(ws: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "clm_tray", *args], cwd=ws, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_concurrent_retrains_one_runs_the_other_says_busy(small_workspace):
    slow = {"CLM_TRAY_TRAIN_SLEEP": "4"}
    a = _cli(small_workspace, "retrain", "--json", env=slow)
    # Wait until the first one holds the lock (its history row exists), then start the second.
    import time

    lock = small_workspace / "store" / "cycle.lock"
    deadline = time.time() + 30
    db = small_workspace / "store" / "history.sqlite"
    while time.time() < deadline and not (db.exists() and lock.exists()):
        time.sleep(0.05)
    time.sleep(1.0)
    b = _cli(small_workspace, "retrain", "--json")
    out_b, err_b = b.communicate(timeout=60)
    out_a, err_a = a.communicate(timeout=120)
    assert a.returncode == 0, err_a
    assert b.returncode == 3
    assert "already running" in err_b and err_b.count("\n") == 1


HEALTH_KEYS = {"ok", "url", "status_code", "latency_ms", "reported_sha256", "reported_version",
               "reason", "checked_at", "skipped", "identity", "model_loaded", "restarted"}
DRIFT_KEYS = {"score", "threshold", "drifted", "window_rows", "window_start", "window_end",
              "features", "enough", "reason", "checked_at", "typical_score", "min_rows"}


def test_status_json_exit_codes_and_keys(small_workspace):
    """`--json` is a contract: the keys scripts read stay the same, whatever the types inside."""
    p = _cli(small_workspace, "status", "--json")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1, err  # no model yet
    assert json.loads(out)["champion"] is None
    p = _cli(small_workspace, "retrain", "--json")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    first = json.loads(out)
    assert first["outcome"] == "deployed"
    # the short "no champion yet" verdict keeps its three keys: no null figures added
    assert first["shadow"] == {"decision": "promote", "reason": "no champion yet", "rows": 0}
    assert set(first["health"]) == HEALTH_KEYS
    p = _cli(small_workspace, "drift", "--json")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert set(json.loads(out)) == DRIFT_KEYS
    p = _cli(small_workspace, "status", "--json")
    out, err = p.communicate(timeout=60)
    d = json.loads(out)
    assert p.returncode == 0 and d["fresh"] is True and d["champion"]["id"]
    assert d["champion"]["shadow"] == first["shadow"]
    assert set(d["drift"]) == DRIFT_KEYS | {"version"} and set(d["backend"]) == HEALTH_KEYS
    # the deploy folder changes after the last health check: the backend is "unknown"
    from clm_tray.core.app.backend_pending import FOLDER_CHECK
    from clm_tray.core.registry.history import History

    History(small_workspace / "store" / "history.sqlite").add_check(
        FOLDER_CHECK, {"what": "a test"}, at=d["backend"]["checked_at"] + 1)
    p = _cli(small_workspace, "status", "--json")
    out, err = p.communicate(timeout=60)
    d = json.loads(out)
    assert set(d["backend"]) == {"ok", "state", "url", "reason", "checked_at", "changed_at"}
    assert d["backend"]["ok"] is None and d["backend"]["state"] == "unknown"
    assert d["health"] == "attention" and d["summary"].startswith("Backend unknown")
    p = _cli(small_workspace, "status", "--json", env={"QT_CLM_RETRAIN_HOURS": "0.00001"})
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 1 and json.loads(out)["fresh"] is False


def test_bad_setting_is_one_line_and_exit_2(small_workspace):
    p = _cli(small_workspace, "status", env={"QT_CLM_RETRAIN_HOURS": "abc"})
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert err.strip() == ("clm-tray: QT_CLM_RETRAIN_HOURS=abc (from environment) is not "
                           "valid: use a number > 0 and <= 8760.")
