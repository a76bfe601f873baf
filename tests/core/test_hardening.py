"""Secrets never shown, leftovers swept, history migrated or set aside, store files versioned,
a full disk named in one line — each checked on the real code paths."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from clm_tray.cli import main as cli_main
from clm_tray.core.app import events as ev
from clm_tray.core.app.status import Outcome
from clm_tray.core.config.secrets import redact
from clm_tray.core.registry.history import BASE_SCHEMA, SCHEMA_VERSION, History
from clm_tray.core.registry.store import ModelStore, sweep_store_leftovers
from clm_tray.core.serialize import dumps

PASSWORD = "s3cr/et:p@ss#w?rd"
REDIS_URL = f"redis://default:{PASSWORD}@127.0.0.1:9/0"


# ---- secrets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, shown", [
    (REDIS_URL, "redis://***@127.0.0.1:9/0"),
    ("redis://:only/pass@h:6379", "redis://***@h:6379"),
    ("see 'rediss://u:p@h/0' now", "see 'rediss://***@h/0' now"),
    ("http://127.0.0.1:8000/health", "http://127.0.0.1:8000/health"),
    ("mail me@example.com", "mail me@example.com"),
])
def test_a_url_userinfo_is_masked_whatever_the_password_holds(text: str, shown: str) -> None:
    assert redact(text) == shown


def _redis_workspace(small_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QT_CLM_REDIS_URL", REDIS_URL)
    monkeypatch.chdir(small_workspace)
    return small_workspace


def test_config_and_config_json_never_print_the_redis_password(small_workspace, monkeypatch,
                                                                capsys) -> None:
    ws = _redis_workspace(small_workspace, monkeypatch)
    assert cli_main(["--env-file", str(ws / ".env"), "config"]) == 0
    assert cli_main(["--env-file", str(ws / ".env"), "config", "--json"]) == 0
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err and "s3cr" not in out + err
    assert "redis://***@127.0.0.1:9/0" in out


def test_events_error_line_never_prints_the_password(small_workspace, monkeypatch,
                                                     capsys) -> None:
    ws = _redis_workspace(small_workspace, monkeypatch)
    code = cli_main(["--env-file", str(ws / ".env"), "events"])
    out, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in err
    assert "s3cr" not in out + err and "redis://***@127.0.0.1:9/0" in err


def test_diagnose_masks_a_password_with_a_slash(small_workspace, monkeypatch, capsys) -> None:
    ws = _redis_workspace(small_workspace, monkeypatch)
    assert cli_main(["--env-file", str(ws / ".env"), "diagnose", "--no-probe", "--json"]) == 0
    out, _err = capsys.readouterr()
    assert "s3cr" not in out
    assert json.loads(out)["settings"]["values"]["QT_CLM_REDIS_URL"]["value"] == \
        "redis://***@127.0.0.1:9/0"


def test_events_logs_and_notifications_carry_no_password(tmp_path: Path) -> None:
    from clm_tray.core.app.notify_rules import NoticeRules
    from clm_tray.core.config.logsetup import configure
    from clm_tray.core.config.settings import Settings

    bus = ev.EventBus()
    event = bus.emit(ev.CycleFinished(ok=False, outcome=Outcome.FAILED,
                                      reason=f"Redis at {REDIS_URL} is unreachable"), "error")
    assert "s3cr" not in dumps(event)
    notice = NoticeRules().notice_for(event)
    assert notice is not None and "s3cr" not in notice.body
    assert "s3cr" not in NoticeRules().error_notice("Restart", f"no {REDIS_URL}").body

    log_file = configure(Settings(log_dir=tmp_path / "logs"))
    assert log_file is not None
    logging.getLogger("clm_tray.test").warning("cannot reach %s", REDIS_URL)
    for handler in logging.getLogger("clm_tray").handlers:
        handler.flush()
    text = log_file.read_text()
    assert "redis://***@127.0.0.1:9/0" in text and "s3cr" not in text


def test_files_that_may_hold_secrets_are_owner_only(tmp_path: Path) -> None:
    from clm_tray.core.config.sources import write_user_settings

    path = write_user_settings({"QT_CLM_REDIS_URL": REDIS_URL}, tmp_path / "config.env")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_user_settings({"QT_CLM_RETRAIN_HOURS": "12"}, path)  # rewritten: still 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---- leftovers ----------------------------------------------------------------------------------
def test_start_up_sweeps_the_stores_stale_temp_files_and_work_folders(engine_factory,
                                                                      small_workspace) -> None:
    store = small_workspace / "store"
    ModelStore(store)
    stale = [store / ".journal.json.abc123.tmp", store / ".aliases.json.x9.tmp"]
    for p in stale:
        p.write_text("{")
    (store / "work" / "tmpdead1").mkdir(parents=True)
    (store / "work" / "tmpdead2").mkdir()
    (store / "work" / "tmpdead2" / "model.ubj").write_bytes(b"half")
    (store / "versions" / ".incoming-0123").mkdir()
    keep = store / "notes-of-the-user.txt"
    keep.write_text("mine")

    engine_factory()

    assert not any(p.exists() for p in stale)
    assert list((store / "work").iterdir()) == []
    assert not (store / "versions" / ".incoming-0123").exists()
    assert keep.read_text() == "mine"


def test_sweep_counts_nothing_in_a_clean_store(tmp_path: Path) -> None:
    assert sweep_store_leftovers(ModelStore(tmp_path / "store")) == 0


def _raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        sock.settimeout(5)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"+5", b" -0x10"])
def test_reference_backend_rejects_a_bad_content_length_at_once(tmp_path: Path,
                                                                 length: bytes) -> None:
    from clm_tray.core.backend.reference_server.server import make_server

    server = make_server(tmp_path / "empty-models", port=0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        port = server.server_address[1]
        answer = _raw_request(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                              length + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
        assert b"bad Content-Length" in answer
        # The server still answers: no thread is stuck reading a body that never comes.
        again = _raw_request(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert again.startswith(b"HTTP/1.1 ")
    finally:
        server.shutdown()
        server.server_close()


def test_backend_serve_on_a_busy_port_is_one_line(tmp_path: Path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli_main(["backend", "serve", "--models-dir", str(tmp_path), "--port", str(port)])
    _out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and f"cannot serve on 127.0.0.1:{port}" in err


# ---- history: migrations and damage -------------------------------------------------------------
def test_a_history_written_by_todays_first_schema_is_migrated_and_keeps_its_rows(
        tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    db = sqlite3.connect(path)  # exactly what the first clm-tray wrote (user_version 0)
    db.executescript(BASE_SCHEMA)
    db.execute("INSERT INTO cycles (started_at, finished_at, trigger, outcome, reason) "
               "VALUES (1.0, 2.0, 'manual', 'deployed', 'old row')")
    db.commit()
    db.close()

    history = History(path)

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    db.close()
    assert "cycles_outcome_id" in indexes
    assert [c.reason for c in history.cycles()] == ["old row"]
    History(path)  # opening again changes nothing
    assert history.warnings == []


def test_a_corrupt_history_is_set_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    History(path).add_check("health", {"ok": True})
    damaged = path.read_bytes()[:2048] + b"\x00garbage" * 64
    path.write_bytes(damaged)

    history = History(path)

    aside = list(tmp_path.glob("history.corrupt-*.sqlite"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert history.warnings and aside[0].name in history.warnings[0]
    assert history.last_check("health") is None
    history.add_check("health", {"ok": True})
    assert history.last_check("health") is not None


# ---- store file formats -------------------------------------------------------------------------
def test_store_files_carry_a_format_and_old_ones_without_it_still_read(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    src = tmp_path / "m.ubj"
    src.write_bytes(b"model")
    v = store.add_version(src, {"features": ["a"]})
    store.set_aliases(champion=v.id)
    assert v.manifest["format"] == 1
    assert json.loads(store.aliases_path.read_text())["format"] == 1

    store.aliases_path.write_text(json.dumps({"champion": v.id, "previous": None}))
    manifest = v.path / "manifest.json"
    os.chmod(manifest, 0o644)
    old = json.loads(manifest.read_text())
    del old["format"]
    manifest.write_text(json.dumps(old))
    assert store.aliases()["champion"] == v.id
    assert store.get(v.id).sha256 == v.sha256


# ---- a full disk --------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB tmpfs (real ENOSPC); skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_a_store_on_a_full_disk_is_one_line_naming_the_folder(small_workspace, tiny_disk,
                                                              monkeypatch, capsys) -> None:
    store = tiny_disk / "store"
    store.mkdir()
    _fill(tiny_disk)
    monkeypatch.setenv("QT_CLM_STORE_DIR", str(store))
    monkeypatch.chdir(small_workspace)
    code = cli_main(["--env-file", str(small_workspace / ".env"), "status"])
    _out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("clm-tray: disk full")
    assert str(store) in err


def test_a_training_child_on_a_full_disk_says_disk_full(small_workspace, tiny_disk) -> None:
    from clm_tray.core.errors import TrainingError
    from clm_tray.core.ml.train_result import TrainParams
    from clm_tray.core.ml.trainprocess import train_in_child

    work = tiny_disk / "work"
    work.mkdir()
    _fill(tiny_disk)
    with pytest.raises(TrainingError) as err:
        train_in_child(small_workspace / "data" / "train.csv", target="target", features=None,
                       params=TrainParams(n_estimators=5, threads=1), workdir=work, timeout=120)
    assert str(err.value).startswith("disk full")
    assert "memory" not in str(err.value)
