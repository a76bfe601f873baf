"""What happened, kept: one SQLite row per cycle and per check.

The scheduler decides from these saved timestamps ("when did the last drift check run?",
"did the last cycle fail?"), so a laptop that slept or an app that was closed catches up once.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from clm_tray.core.app.status import CycleRecord, Outcome, ShadowResult
from clm_tray.core.errors import StoreError, is_disk_full
from clm_tray.core.serialize import dumps, read_or_none

log = logging.getLogger(__name__)
R = TypeVar("R")

# The schema as first shipped (user_version 0). Never edit it: add a migration below instead.
BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    finished_at REAL,
    trigger TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'running',
    reason TEXT NOT NULL DEFAULT '',
    version TEXT,
    champion_before TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    stages TEXT NOT NULL DEFAULT '{}',
    shadow TEXT,
    attempts TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    result TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS checks_kind_at ON checks (kind, at);
"""

# Ordered migrations: MIGRATIONS[i] takes user_version i to i + 1. Append, never reorder.
MIGRATIONS: tuple[str, ...] = (
    BASE_SCHEMA,
    # 1 -> 2: "the last finished cycle" and "failures since success" read by outcome.
    "CREATE INDEX IF NOT EXISTS cycles_outcome_id ON cycles (outcome, id);",
)
SCHEMA_VERSION = len(MIGRATIONS)


class History:
    """A small, thread-safe wrapper around history.sqlite (one connection per call)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.warnings: list[str] = []  # said once by whoever opened the history
        try:
            self._migrate()
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise self._full(exc) from None
            if "locked" in str(exc):
                raise StoreError(f"{self.path} is locked by another program; close it and "
                                 "retry") from None
            self._set_aside(exc)
        except sqlite3.DatabaseError as exc:  # not a database, malformed, truncated
            self._set_aside(exc)

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION, one migration at a time, each in a transaction."""
        with closing(self._connect()) as db:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer clm-tray (schema {version}, this one "
                    f"knows {SCHEMA_VERSION}); update clm-tray or point QT_CLM_STORE_DIR elsewhere"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                db.executescript(f"BEGIN; {MIGRATIONS[target - 1]} "
                                 f"PRAGMA user_version = {target}; COMMIT;")

    def _set_aside(self, exc: Exception) -> None:
        """A damaged history must not stop the app: keep it for inspection, start afresh."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"history.corrupt-{stamp}.sqlite")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"history.corrupt-{stamp}-{n}.sqlite")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm", "-journal"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, aside.with_name(aside.name + suffix))
            self._migrate()
        except (OSError, sqlite3.Error) as again:
            raise StoreError(
                f"{self.path} is damaged ({exc}) and cannot be replaced ({again}); move it "
                "away by hand and start clm-tray again"
            ) from None
        message = (f"{self.path.name} was damaged ({exc}); it was moved to {aside.name} and a "
                   "new, empty history started")
        log.warning("%s", message)
        self.warnings.append(message)

    def _full(self, exc: Exception) -> StoreError:
        return StoreError(f"disk full: cannot write the history in {self.path.parent} ({exc}); "
                          "free some space on that disk and retry")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        try:
            with self._lock, closing(self._connect()) as db, db:
                cur = db.execute(sql, params)
                return int(cur.lastrowid or 0)
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise self._full(exc) from None
            raise

    # ---- cycles -----------------------------------------------------------------------------
    def start_cycle(
        self, trigger: str, champion_before: str | None, at: float | None = None
    ) -> int:
        return self._write(
            "INSERT INTO cycles (started_at, trigger, champion_before) VALUES (?, ?, ?)",
            (at or time.time(), trigger, champion_before),
        )

    def finish_cycle(
        self,
        cycle_id: int,
        *,
        outcome: str,
        reason: str = "",
        version: str | None = None,
        metrics: dict[str, Any] | None = None,
        stages: dict[str, float] | None = None,
        shadow: ShadowResult | None = None,
        attempts: list[dict[str, Any]] | None = None,
        at: float | None = None,
    ) -> None:
        self._write(
            "UPDATE cycles SET finished_at=?, outcome=?, reason=?, version=?, metrics=?, stages=?,"
            " shadow=?, attempts=? WHERE id=?",
            (
                at or time.time(),
                outcome,
                reason,
                version,
                dumps(metrics or {}),
                dumps(stages or {}),
                dumps(shadow) if shadow is not None else None,
                dumps(attempts or []),
                cycle_id,
            ),
        )

    def close_dangling(self, reason: str) -> int:
        """Cycles left 'running' by a process that died are marked failed at start-up."""
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute(
                "UPDATE cycles SET outcome='failed', reason=?, finished_at=? "
                "WHERE outcome='running'",
                (reason, time.time()),
            )
            return cur.rowcount

    def cycles(self, n: int = 50) -> list[CycleRecord]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM cycles ORDER BY id DESC LIMIT ?", (n,)).fetchall()
        return [self._record(r) for r in rows]

    def last_cycle(self, *, finished: bool = True) -> CycleRecord | None:
        sql = "SELECT * FROM cycles "
        sql += "WHERE outcome != 'running' " if finished else ""
        sql += "ORDER BY id DESC LIMIT 1"
        with closing(self._connect()) as db:
            row = db.execute(sql).fetchone()
        return self._record(row) if row else None

    def failures_since_success(self) -> list[CycleRecord]:
        """The run of failed cycles since the last one that did not fail (newest first).

        A cancelled cycle is neutral: it neither adds to the run nor ends it."""
        out = []
        for rec in self.cycles(50):
            if rec.outcome in ("running", Outcome.CANCELLED):
                continue
            if not rec.failed:
                break
            out.append(rec)
        return out

    @staticmethod
    def _record(r: sqlite3.Row) -> CycleRecord:
        finished = r["finished_at"]
        return CycleRecord(
            id=r["id"],
            started_at=r["started_at"],
            finished_at=finished,
            trigger=r["trigger"],
            outcome=r["outcome"],
            reason=r["reason"],
            version=r["version"],
            champion_before=r["champion_before"],
            duration_s=(finished - r["started_at"]) if finished else None,
            metrics=json.loads(r["metrics"] or "{}"),
            stages=json.loads(r["stages"] or "{}"),
            shadow=read_or_none(ShadowResult, json.loads(r["shadow"]) if r["shadow"] else None,
                                f"cycle {r['id']}'s shadow test"),
            attempts=json.loads(r["attempts"] or "[]"),
        )

    # ---- checks -----------------------------------------------------------------------------
    def add_check(self, kind: str, result: dict[str, Any], at: float | None = None) -> int:
        return self._write(
            "INSERT INTO checks (kind, at, result) VALUES (?, ?, ?)",
            (kind, at or time.time(), dumps(result)),
        )

    def last_check(self, kind: str) -> tuple[float, dict[str, Any]] | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT at, result FROM checks WHERE kind=? ORDER BY at DESC, id DESC LIMIT 1",
                (kind,),
            ).fetchone()
        return (row["at"], json.loads(row["result"])) if row else None

    def last_report(self, kind: str, cls: type[R]) -> tuple[float, R] | None:
        """The last ``kind`` check as ``cls`` (``DriftCheck``, ``HealthReport`` …) with its time;
        None when there is none, or when its row cannot be read (written by an older or
        damaged clm-tray: logged, and shown as not checked rather than stopping the status)."""
        last = self.last_check(kind)
        if last is None:
            return None
        report = read_or_none(cls, last[1], f"the last {kind} check in {self.path.name}")
        return None if report is None else (last[0], report)

    def checks(self, kind: str, n: int = 100) -> list[tuple[float, dict[str, Any]]]:
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT at, result FROM checks WHERE kind=? ORDER BY at DESC, id DESC LIMIT ?",
                (kind, n),
            ).fetchall()
        return [(r["at"], json.loads(r["result"])) for r in rows]
