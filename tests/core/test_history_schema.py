"""history.sqlite carries a schema version and migrates (issue 9, point 5).

``data/history-schema-2.sql`` is a history exactly as today's clm-tray writes it (schema 2, made
by ``History`` and dumped with ``iterdump``). It is never edited: when the schema changes, a
migration is appended and these tests prove that a user's existing file still opens, keeps
every row and ends up with the same schema as a new one. The pre-version file (schema 0, the
first release) is covered by test_hardening.py; every version in between is built here.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from clm_tray.core.app.status import DriftCheck, ShadowResult
from clm_tray.core.registry.history import MIGRATIONS, SCHEMA_VERSION, History

TODAY = Path(__file__).parent / "data" / "history-schema-2.sql"


def _schema(path: Path) -> tuple[int, list[tuple[str, str, str]]]:
    with closing(sqlite3.connect(path)) as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        objects = db.execute("SELECT type, name, sql FROM sqlite_master "
                             "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()
    # CREATE TABLE IF NOT EXISTS x and CREATE TABLE x are the same table
    return version, [(t, n, " ".join((s or "").replace(" IF NOT EXISTS", "").split()))
                     for t, n, s in objects]


def _load(sql: Path, into: Path) -> Path:
    with closing(sqlite3.connect(into)) as db:
        db.executescript(sql.read_text(encoding="utf-8"))
    return into


def test_a_history_written_by_todays_schema_opens_keeps_every_row_and_takes_new_ones(
        tmp_path: Path) -> None:
    path = _load(TODAY, tmp_path / "history.sqlite")
    assert _schema(path)[0] == 2

    history = History(path)

    assert history.warnings == []
    assert _schema(path) == _schema(History(tmp_path / "new" / "history.sqlite").path)
    failed, deployed = history.cycles()
    assert (deployed.id, deployed.outcome, deployed.version, deployed.trigger) == (
        1, "deployed", "v0001", "manual")
    assert deployed.metrics == {"edge": {"p_value": 0.01}, "test_accuracy": 0.552}
    assert deployed.stages == {"load": 0.4, "train": 3.1} and deployed.shadow is None
    assert failed.failed and failed.champion_before == "v0001"
    assert failed.shadow == ShadowResult("promote", rows=300)
    assert [a["attempt"] for a in failed.attempts] == ["deploy", "rollback"]
    assert [c.id for c in history.failures_since_success()] == [2]
    at, drift = history.last_check("drift")
    assert at == 1_800_050_000.0 and drift["version"] == "v0001"
    assert [f["feature"] for f in drift["features"]] == ["ret_1", "vol"]
    assert history.last_check("health")[1]["identity"] == "verified"
    assert len(history.checks("performance")) == 1
    at, report = history.last_report("drift", DriftCheck)
    assert report.version == "v0001" and [f.feature for f in report.features] == ["ret_1", "vol"]

    new = history.start_cycle("manual", "v0001", at=1_900_000_000.0)
    history.finish_cycle(new, outcome="deployed", reason="deployed v0003", version="v0003")
    assert new == 3 and history.last_cycle().version == "v0003"
    assert history.failures_since_success() == []


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_a_history_of_every_older_schema_migrates_to_the_newest_in_order(
        tmp_path: Path, version: int) -> None:
    path = tmp_path / "history.sqlite"
    with closing(sqlite3.connect(path)) as db:
        for migration in MIGRATIONS[:max(version, 1)]:  # schema 0 already had the base tables
            db.executescript(migration)
        db.execute("INSERT INTO cycles (started_at, finished_at, trigger, outcome, reason) "
                   "VALUES (1.0, 2.0, 'manual', 'failed', 'old row')")
        db.execute("INSERT INTO checks (kind, at, result) VALUES ('drift', 1.5, ?)",
                   ('{"score": 0.1}',))
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()

    history = History(path)

    assert _schema(path) == _schema(History(tmp_path / "new" / "history.sqlite").path)
    assert [(c.reason, c.failed) for c in history.cycles()] == [("old row", True)]
    assert history.last_check("drift") == (1.5, {"score": 0.1})
    assert history.warnings == []


def test_a_report_row_this_version_cannot_read_shows_as_not_checked_and_is_logged(
        engine_factory, caplog: pytest.LogCaptureFixture) -> None:
    """Rows an older (or damaged) clm-tray wrote must never stop `status` or the tray."""
    engine = engine_factory()
    engine.history.add_check("health", {"ok": "perhaps", "url": 3})
    engine.history.add_check("drift", {"score": "high"})
    engine.history.add_check("performance", {"rows": "many"})
    cycle = engine.history.start_cycle("manual", None)
    engine.history.finish_cycle(cycle, outcome="rejected", reason="worse",
                                shadow={"rows": "many"})  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING, logger="clm_tray.core.serialize"):
        status = engine.status()

    assert status.backend is None and status.drift is None and status.performance is None
    assert status.last_cycle is not None and status.last_cycle.reason == "worse"
    assert status.last_cycle.shadow is None
    for what in ("the last health check", "the last drift check",
                 "the last performance check", f"cycle {cycle}'s shadow test"):
        assert what in caplog.text
