"""`clm-tray diagnose`: the report a user pastes into a bug report."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clm_tray.core.app import diagnose
from clm_tray.core.config import logsetup
from clm_tray.core.config.sources import load_settings


@pytest.fixture
def workspace(tmp_path: Path, home: Path) -> Path:
    ws = tmp_path / "cwd"
    (ws / "store").mkdir()
    (ws / ".env").write_text("QT_CLM_STORE_DIR=store\nQT_CLM_LOG_DIR=logs\n"
                             "QT_CLM_BACKEND=none\nQT_CLM_RETRAIN_HOURS=12\n"
                             "QT_CLM_REDIS_URL=redis://:s3cret@127.0.0.1:6379/0\n")
    (ws / "store" / "scheduler_state.json").write_text(json.dumps({
        "running": False, "enabled": True, "backoff_reason": "backend unreachable",
        "jobs": [{"name": "age", "last_outcome": "ok"}]}))
    return ws


def test_diagnose_json_has_versions_folders_sources_backend(workspace: Path, cli) -> None:
    logsetup.configure(load_settings(cwd=workspace).settings)
    logging.getLogger("clm_tray.cycle").error("deploy failed: disk full")

    r = cli("diagnose", "--json", env={"QT_CLM_SHADOW_MIN": "50"})

    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["clm_tray"]["version"]
    assert rep["packages"]["xgboost"][0].isdigit() and rep["packages"]["pandas"][0].isdigit()
    assert rep["python"]["version"] and rep["os"]["system"]
    assert rep["folders"]["store_dir"] == {"path": str(workspace / "store"), "exists": True}
    assert rep["folders"]["log_dir"]["path"] == str(workspace / "logs")
    values = rep["settings"]["values"]
    assert values["QT_CLM_RETRAIN_HOURS"] == {"value": "12.0", "source": str(workspace / ".env")}
    assert values["QT_CLM_SHADOW_MIN"] == {"value": "50", "source": "environment"}
    assert values["QT_CLM_DRIFT_HOURS"]["source"] == "default"
    assert values["QT_CLM_REDIS_URL"]["value"] == "redis://***@127.0.0.1:6379/0"
    assert "s3cret" not in r.stdout
    assert rep["backend"]["kind"] == "none" and rep["backend"]["line"].startswith("none")
    assert rep["scheduler"]["present"] and rep["scheduler"]["state"]["backoff_reason"] == \
        "backend unreachable"
    assert any("deploy failed: disk full" in e for e in rep["log"]["last_errors"])


def test_diagnose_text_is_readable_and_survives_a_bad_setting(workspace: Path, cli) -> None:
    r = cli("diagnose", env={"QT_CLM_RETRAIN_HOURS": "soon"})

    assert r.returncode == 0, r.stderr
    for heading in ("Versions", "Folders", "Settings", "Backend", "Scheduler",
                    "Start at login", "Last errors"):
        assert f"\n{heading}" in r.stdout
    assert "QT_CLM_RETRAIN_HOURS=soon (from environment) is not valid" in r.stdout
    assert "not checked: settings do not load" in r.stdout


def test_backend_line_reports_a_real_health_answer(workspace: Path) -> None:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"status": "ok", "model_sha256": "ab" * 32}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        s = load_settings(cwd=workspace, environ={"QT_CLM_BACKEND": "process",
                                                   "QT_CLM_BACKEND_COMMAND": "sh -c true",
                                                   "QT_CLM_HEALTH_URL": url}).settings
        out = diagnose.backend_section(s)
    finally:
        server.shutdown()
    # The process backend is not running, yet something answers on its port: a finding.
    assert out["kind"] == "process"
    assert out["preflight"].startswith(f"port {server.server_address[1]} is taken by process ")
    assert out["health"]["ok"] is True and out["health"]["status_code"] == 200
    assert f"health {url} answered 200" in out["line"]


def test_log_rotates_and_last_errors_spans_rotated_files(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logsetup, "MAX_BYTES", 2000)
    s = load_settings(environ={"QT_CLM_LOG_DIR": str(tmp_path / "logs")}, cwd=tmp_path).settings
    path = logsetup.configure(s)
    assert path == tmp_path / "logs" / "clm-tray.log"
    log = logging.getLogger("clm_tray.test")
    log.error("first failure")
    for i in range(60):
        log.info("filler line %d %s", i, "x" * 40)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("second failure")

    assert len(list((tmp_path / "logs").glob("clm-tray.log.*"))) >= 2
    errors = logsetup.last_errors(tmp_path / "logs")
    assert "first failure" in errors[0]
    assert "second failure" in errors[-1] and "ValueError: boom" in errors[-1]
    logsetup.configure(s)  # again: still one file handler, not two
    file_handlers = [h for h in logging.getLogger("clm_tray").handlers
                     if isinstance(h, logging.FileHandler)]
    assert len(file_handlers) == 1


def test_unwritable_log_folder_falls_back_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    s = load_settings(environ={"QT_CLM_LOG_DIR": str(tmp_path / "a-file" / "logs")},
                      cwd=tmp_path).settings
    assert logsetup.configure(s) is None
