-- history.sqlite as clm-tray wrote it at schema version 2 (PRAGMA user_version).
-- Made by History (registry/history.py); never edit: a later schema adds a migration and
-- tests/core/test_history_schema.py checks that this file still opens and migrates.
PRAGMA user_version = 2;
BEGIN TRANSACTION;
CREATE TABLE checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    result TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO "checks" VALUES(1,'drift',1800050000.0,'{"checked_at": 1800000000.0, "drifted": true, "enough": true, "features": [{"feature": "ret_1", "importance": 0.7, "ks_d": 0.12, "over": true, "psi": 0.41}, {"feature": "vol", "importance": 0.3, "ks_d": null, "over": false, "psi": 0.05}], "min_rows": 200, "reason": "drifted", "score": 0.3123, "threshold": 0.25, "typical_score": null, "version": "v0001", "window_end": "2026-11-02T00:00:00+00:00", "window_rows": 900, "window_start": "2026-11-01T00:00:00+00:00"}');
INSERT INTO "checks" VALUES(2,'performance',1800050001.0,'{"accuracy": 0.489, "auc": null, "baseline": 0.51, "checked_at": 1800000000.0, "degraded": true, "drop": 0.063, "enough": true, "log_loss": 0.69, "min_rows": 200, "reason": "degraded", "rows": 900, "test_accuracy": 0.552, "version": "v0001"}');
INSERT INTO "checks" VALUES(3,'health',1800108080.0,'{"checked_at": 1800000000.5, "identity": "verified", "latency_ms": 3.2, "model_loaded": true, "ok": true, "reason": "healthy", "reported_sha256": "abababababababababababababababababababababababababababababababab", "reported_version": "v0003", "restarted": true, "skipped": false, "status_code": 200, "url": "http://127.0.0.1:8000/health"}');
CREATE TABLE cycles (
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
INSERT INTO "cycles" VALUES(1,1800000000.0,1800000060.0,'manual','deployed','deployed v0001','v0001',NULL,'{"edge": {"p_value": 0.01}, "test_accuracy": 0.552}','{"load": 0.4, "train": 3.1}',NULL,'[{"attempt": "deploy", "ok": true, "version": "v0001"}]');
INSERT INTO "cycles" VALUES(2,1800108000.0,1800108090.0,'age: model 30.1 h old > 24 h','failed, rolled back','backend did not load v0002 (503); rolled back to v0001 and verified','v0002','v0001','{"test_accuracy": 0.561}','{"train": 2.9}','{"decision": "promote", "rows": 300}','[{"attempt": "deploy", "ok": false}, {"attempt": "rollback", "ok": true}]');
CREATE INDEX checks_kind_at ON checks (kind, at);
CREATE INDEX cycles_outcome_id ON cycles (outcome, id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('cycles',2);
INSERT INTO "sqlite_sequence" VALUES('checks',3);
COMMIT;
