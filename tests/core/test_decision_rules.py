"""The rules behind the cycle's decisions, each on its own: store retention, true aliases, the
feature-set rule, and which outcomes alarm the trader."""

from __future__ import annotations

from pathlib import Path

import pytest

from clm_tray.core.app import events as ev
from clm_tray.core.app.decide import prune_store
from clm_tray.core.app.notify_rules import NoticeRules
from clm_tray.core.app.shadow_step import shadow_against_champion
from clm_tray.core.app.status import Outcome


def add_versions(engine, tmp_path: Path, n: int, features: list[str] | None = None,
                 like=None) -> list:
    """``n`` stored versions with distinct (fake) model bytes (deploys never parse them),
    described like version ``like`` when given."""
    made = []
    for i in range(n):
        model = tmp_path / f"m{len(engine.store.list())}-{i}.ubj"
        model.write_bytes(f"model {model.name}".encode())
        manifest = {k: v for k, v in (like.manifest if like else {}).items()
                    if k not in ("id", "model_sha256", "model_size", "model_file")}
        manifest.update(features=features or ["f1"], target="target", metrics={})
        made.append(engine.store.add_version(model, manifest))
    return made


def test_retention_prunes_old_never_deployed_versions_and_keeps_the_ones_that_matter(
        engine_factory, tmp_path):
    engine = engine_factory(versions_keep=2)
    v = add_versions(engine, tmp_path, 9)
    deployer = engine.deployer()
    deployer.install(v[0], reason="first")  # v0 champion …
    deployer.install(v[1], reason="second")  # … then v1: v0 previous, its backup in the folder
    deployer.install(v[2], reason="third")  # v2 champion, v1 previous; v0 only in a backup
    engine.store.set_aliases(challenger=v[4].id)
    engine.store.annotate(v[3].id, "deployed_at", 1.0)  # deployed once, long ago

    pruned = prune_store(engine.store, engine.settings, engine.deployer)

    kept = [x.id for x in engine.store.list()]
    # Never deployed and unprotected: v5..v8; the newest two of them (v7, v8) are kept.
    assert sorted(pruned) == [v[5].id, v[6].id]
    assert kept == [x.id for x in (v[0], v[1], v[2], v[3], v[4], v[7], v[8])]
    assert not any(p.name.startswith(".incoming-") for p in engine.store.versions_dir.iterdir())
    assert prune_store(engine.store, engine.settings, engine.deployer) == []  # nothing more to do


def test_the_store_refuses_to_remove_an_aliased_version(engine_factory, tmp_path):
    from clm_tray.core.errors import StoreError

    engine = engine_factory()
    (v,) = add_versions(engine, tmp_path, 1)
    engine.store.set_aliases(challenger=v.id)
    with pytest.raises(StoreError):
        engine.store.remove(v.id)


def test_deploying_a_newer_version_clears_the_stale_challenger_and_status_tells_why_it_waits(
        engine_factory, tmp_path):
    engine = engine_factory(shadow_min=60)
    first = engine.retrain()
    assert first.outcome == "deployed", first.reason
    champion = engine.store.get(first.version)
    challenger, newer = add_versions(engine, tmp_path, 2, champion.features, like=champion)
    engine.store.set_aliases(challenger=challenger.id)
    engine.store.annotate(challenger.id, "shadow", {"decision": "wait", "rows": 24})

    summary = engine.status().summary  # 6 symbols: 36 more rows are 6 more bars
    assert summary == f"New model {challenger.id} waits for 6 more new bars to compare"
    engine.settings.auto_promote = False
    assert engine.status().summary == f"New model {challenger.id} waiting for approval"

    res = engine.promote(newer.id)
    assert res.outcome == "deployed", res.reason
    assert engine.store.aliases()["challenger"] is None

    again = engine.promote(newer.id)  # already running: no reinstall, no restart
    assert again.ok and again.outcome == "unchanged" and again.health is None
    assert engine.history.last_cycle().attempts == []


def test_a_candidate_with_other_features_waits_unless_the_user_chose_them(engine_factory,
                                                                          tmp_path):
    engine = engine_factory()
    first = engine.retrain()
    champion = engine.store.get(first.version)
    features = [f for f in champion.features if f != "ret_1"] + ["x"]
    (candidate,) = add_versions(engine, tmp_path, 1, features, like=champion)
    frame = engine.load_data().frame

    shadow = shadow_against_champion(engine._ctx(), candidate, frame)
    assert shadow.decision == "wait" and shadow.features_differ == "missing: ret_1; new: x"
    assert "missing: ret_1; new: x" in shadow.reason
    engine.settings.auto_promote = True
    engine.store.set_aliases(challenger=candidate.id)
    engine.store.annotate(candidate.id, "shadow", shadow)
    assert engine.status().summary == (f"New model {candidate.id} waits for `clm-tray "
                                       "promote`: missing: ret_1; new: x")

    engine.settings.features = features  # a deliberate QT_CLM_FEATURES change
    assert shadow_against_champion(engine._ctx(), candidate, frame).decision == "promote"


def _finished(outcome: str, reason: str) -> ev.Event:
    level = "error" if Outcome(outcome).failed else "info"
    return ev.Event(ev.CYCLE_FINISHED, level=level, data={"outcome": outcome, "reason": reason,
                                                          "ok": outcome == "deployed"})


@pytest.mark.parametrize("outcome", ["cancelled", "unchanged", "waiting", "rejected"])
def test_neutral_outcomes_raise_no_alarm(outcome):
    assert NoticeRules().notice_for(_finished(outcome, "whatever")) is None


def test_a_gated_model_is_announced_in_words_and_a_failure_as_an_error():
    rules = NoticeRules()
    notice = rules.notice_for(_finished(
        "no edge", "New model has no edge: 49.7 % vs 51.5 % by always guessing 'down' — "
                   "kept v0003"))
    assert (notice.summary, notice.body, notice.level) == (
        "New model has no edge", "49.7 % vs 51.5 % by always guessing 'down' — kept v0003",
        "warning")
    failed = rules.notice_for(_finished("failed, rolled back", "backend did not load v4"))
    assert failed.level == "error" and failed.summary == "Retrain failed, rolled back"


def test_only_real_failures_count_as_failures():
    assert {o.value for o in Outcome if o.failed} == {"failed", "failed, rolled back",
                                                      "rollback failed"}
    assert not Outcome.is_failure("running") and Outcome.is_failure("failed")


def test_a_cancelled_cycle_neither_starts_nor_ends_a_back_off(tmp_path):
    from clm_tray.core.registry.history import History

    history = History(tmp_path / "history.sqlite")
    for outcome in ("failed", "cancelled"):
        history.finish_cycle(history.start_cycle("age", None), outcome=outcome, reason=outcome)
    assert [r.outcome for r in history.failures_since_success()] == ["failed"]
    history.finish_cycle(history.start_cycle("age", None), outcome="no edge", reason="gated")
    assert history.failures_since_success() == []
