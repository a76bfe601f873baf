"""Every kind of bad input ends in one clear line, the right exit code and no traceback — and
nothing is deployed: the champion's bytes in the deploy folder stay exactly as they were.

One table, over 90 cases: training data (CSV / Parquet), settings, store files, health answers
(real fake servers on 127.0.0.1) and Docker. Most run the CLI in this process
(``clm_tray.cli.main``) for speed; ``test_a_few_cases_as_real_subprocesses`` runs some again
as real ``clm-tray`` processes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clm_tray.cli import main as cli_main
from clm_tray.core.registry.deploy import Deployer
from clm_tray.core.registry.store import ModelStore

ENV = """QT_CLM_DATA_PATH=data/train.csv
QT_CLM_STORE_DIR=store
QT_CLM_DEPLOY_DIR=models
QT_CLM_LOG_DIR=logs
QT_CLM_BACKEND=none
QT_CLM_N_ESTIMATORS=20
QT_CLM_TRAIN_THREADS=1
"""
PROGRESS = ("  [", "  backend:")  # `retrain` progress lines on stderr, not messages


# ---- the template workspace: small data, two versions, the champion deployed ------------------
@dataclass
class Template:
    root: Path
    csv: str  # the good CSV's text
    champion_sha: str
    champion: str
    previous: str
    health: str = ""  # base URL of the fake health server
    other: str = ""  # base URL of a second server (another port)
    health_port: int = 0


def _tiny_model(path: Path, features: list[str], seed: int) -> Path:
    import numpy as np
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(80, len(features))).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                            xgboost.DMatrix(x, label=y, feature_names=features),
                            num_boost_round=2)
    path.write_bytes(bytes(booster.save_raw("ubj")))
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory):
    from clm_tray.core.demo.datafile import save
    from clm_tray.core.demo.generator import FEATURES, generate

    root = tmp_path_factory.mktemp("bad-input-template")
    (root / ".env").write_text(ENV)
    (root / "data").mkdir()
    save(generate(symbols=3, bars=200, seed=3), root / "data" / "train.csv")
    store = ModelStore(root / "store")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    versions = []
    for seed in (1, 2):
        manifest = {"features": FEATURES, "target": "target", "trained_at": now,
                    "metrics": {"test_accuracy": 0.55, "baseline_accuracy": 0.5},
                    "data_last_timestamp": now}
        versions.append(store.add_version(_tiny_model(root / f"m{seed}.ubj", FEATURES, seed),
                                          manifest))
    deployer = Deployer(store, root / "models")
    for v in versions:
        deployer.install(v, reason="setup")
    t = Template(root, (root / "data" / "train.csv").read_text(), versions[1].sha256,
                 versions[1].id, versions[0].id)
    servers = [_serve(t), _serve(t)]
    t.health = f"http://127.0.0.1:{servers[0].server_address[1]}"
    t.other = f"http://127.0.0.1:{servers[1].server_address[1]}"
    t.health_port = servers[0].server_address[1]
    yield t
    for server in servers:
        server.shutdown()
        server.server_close()


def _serve(t: Template) -> ThreadingHTTPServer:
    """A fake backend whose answer depends on the path: each way of proving nothing."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            good = {"status": "ok", "model_sha256": t.champion_sha, "model_version": t.champion}
            path = self.path
            if path == "/redirect-port":
                return self._send(302, b"", "text/plain", location=f"{t.other}/good")
            if path == "/redirect-host":
                return self._send(302, b"", "text/plain", location="http://example.invalid/h")
            if path == "/redirect-scheme":
                return self._send(302, b"", "text/plain",
                                  location=f"https://127.0.0.1:{t.health_port}/good")
            bodies: dict[str, tuple[int, bytes, str]] = {
                "/good": (200, json.dumps(good).encode(), "application/json"),
                "/html": (200, b"<html><body>It works!</body></html>", "text/html"),
                "/plain": (200, b"OK", "text/plain"),
                "/big": (200, json.dumps({**good, "model_sha256": "f" * 64,
                                          "pad": "x" * (1 << 20)}).encode(), "application/json"),
                "/wrongsha": (200, json.dumps({**good, "model_sha256": "e" * 64}).encode(),
                              "application/json"),
                "/wrongversion": (200, json.dumps({**good, "model_sha256": None,
                                                   "model_version": "v9999"}).encode(),
                                  "application/json"),
                "/cut": (200, json.dumps(good).encode()[:25], "application/json"),
                "/list": (200, b"[1, 2, 3]", "application/json"),
                "/empty": (200, b"", "application/json"),
                "/500": (500, b'{"reason": "model failed to load"}', "application/json"),
                "/404": (404, b"not found", "text/plain"),
                "/latin1": (200, "{\"model_sha256\": \"\xe9\"}".encode("latin-1"),
                            "application/json"),
            }
            self._send(*bodies.get(path, (404, b"", "text/plain")))
            return None

        def _send(self, status: int, body: bytes, ctype: str, location: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


# ---- case helpers --------------------------------------------------------------------------
Setup = Callable[[Path, Template], None]


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: str  # a fragment of the one message line
    code: int
    env: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None
    stream: str = "err"  # where the message goes: err, or out (health prints to stdout)


def csv_text(edit: Callable[[str], str | bytes], name: str = "train.csv") -> Setup:
    def setup(ws: Path, t: Template) -> None:
        data = edit(t.csv)
        path = ws / "data" / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return setup


def write(rel: str, data: bytes | str) -> Setup:
    def setup(ws: Path, t: Template) -> None:
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o644)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def frame_file(edit: Callable, name: str) -> Setup:
    """Write the good data, changed by ``edit(frame)``, as ``data/<name>`` (CSV or Parquet)."""
    def setup(ws: Path, t: Template) -> None:
        import io

        import pandas as pd

        frame = edit(pd.read_csv(io.StringIO(t.csv)))
        path = ws / "data" / name
        if name.endswith(".parquet"):
            frame.to_parquet(path)
        else:
            frame.to_csv(path, index=False)
    return setup


def lines(text: str, keep: int | None = None) -> str:
    rows = text.splitlines()
    return "\n".join(rows[:keep]) + "\n"


def replace_header(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        head, rest = text.split("\n", 1)
        return ",".join(new if c == old else c for c in head.split(",")) + "\n" + rest
    return edit


def set_column(col: str, value: object, rows: slice = slice(None)) -> Callable:
    def edit(frame):
        if isinstance(value, str) and col in frame:
            frame[col] = frame[col].astype(object)
        frame.loc[frame.index[rows], col] = value
        return frame
    return edit


def journal(doc: object) -> Setup:
    def setup(ws: Path, t: Template) -> None:
        body = doc(ws) if callable(doc) else doc
        (ws / "store" / "journal.json").write_text(json.dumps(body))
    return setup


def good_journal(ws: Path, **override: object) -> dict:
    base = {"op": "install", "version": "v0009-x", "deploy_dir": str((ws / "models").resolve()),
            "targets": {"xgb_model.ubj": "a" * 64}, "replaced": {}, "backup_dir": None,
            "aliases_before": {}, "aliases_after": {}}
    return {**base, **override}


def champion_file(name: str, data: bytes | str) -> Setup:
    def setup(ws: Path, t: Template) -> None:
        path = ws / "store" / "versions" / t.champion / name
        if path.exists():
            os.chmod(path, 0o644)
            if data == b"<delete>":
                path.unlink()
                return
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def history_bytes(data: Callable[[bytes], bytes]) -> Setup:
    def setup(ws: Path, t: Template) -> None:
        path = ws / "store" / "history.sqlite"
        if not path.exists():
            from clm_tray.core.registry.history import History

            History(path).add_check("health", {"ok": True})
        path.write_bytes(data(path.read_bytes()))
    return setup


def newer_history(ws: Path, t: Template) -> None:
    db = sqlite3.connect(ws / "store" / "history.sqlite")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()


def process_backend(port_of: Callable[[Template], int]) -> Callable[[Template], dict[str, str]]:
    def env(t: Template) -> dict[str, str]:
        port = port_of(t)
        cmd = (f"{sys.executable} -m clm_tray.core.backend.reference_server"
               f" --models-dir models --port {port}")
        return {"QT_CLM_BACKEND": "process", "QT_CLM_BACKEND_COMMAND": cmd,
                "QT_CLM_HEALTH_URL": f"http://127.0.0.1:{port}/health"}
    return env


def health(path: str, expect: str) -> Case:
    return Case(f"health-{path.strip('/')}", ["health"], expect, 1,
                env={"QT_CLM_BACKEND": "process", "QT_CLM_BACKEND_COMMAND": "true",
                     "QT_CLM_HEALTH_URL": "{health}" + path}, stream="out")


# ---- the table -------------------------------------------------------------------------------
R = ["retrain"]
DATA = [
    Case("csv-missing", R, "does not exist", 1, setup=lambda ws, t: (ws / "data" /
                                                                     "train.csv").unlink()),
    Case("csv-is-a-folder", R, "is a folder", 1,
         env={"QT_CLM_DATA_PATH": "data"}),
    Case("csv-empty-file", R, "is empty (0 bytes)", 1, setup=csv_text(lambda s: b"")),
    Case("csv-unknown-suffix", R, "unknown type '.dat'", 1, env={"QT_CLM_DATA_PATH":
                                                                 "data/train.dat"},
         setup=csv_text(lambda s: s, "train.dat")),
    Case("csv-header-only", R, "no data rows", 1, setup=csv_text(lambda s: lines(s, 1))),
    Case("csv-only-newlines", R, "is empty", 1, setup=csv_text(lambda s: "\n\n\n")),
    Case("csv-no-timestamp", R, "no 'timestamp' column", 1,
         setup=csv_text(replace_header("timestamp", "time"))),
    Case("csv-no-symbol", R, "no 'symbol' column", 1,
         setup=csv_text(replace_header("symbol", "ticker"))),
    Case("csv-no-target-no-close", R, "no 'target' column and no 'close' column", 1,
         setup=csv_text(replace_header("close", "last"))),
    Case("csv-latin1", R, "is not UTF-8 (byte 0xe9 at offset", 1,
         setup=csv_text(lambda s: s.replace("symbol", "symbolé", 1).encode("latin-1"))),
    Case("csv-latin1-wrong-encoding-set", R, "cannot be read as ascii", 1,
         env={"QT_CLM_DATA_ENCODING": "ascii"},
         setup=csv_text(lambda s: s.replace("symbol", "symbolÝ", 1).encode("latin-1"))),
    Case("csv-utf16", R, "is not UTF-8", 1, setup=csv_text(lambda s: s.encode("utf-16"))),
    Case("csv-binary-garbage", R, "train.csv", 1,
         setup=csv_text(lambda s: bytes(range(256)) * 40)),
    Case("csv-ragged-rows", R, "train.csv", 1,
         setup=csv_text(lambda s: "\n".join(row + (",1,2,3" if i == 40 else "")
                                             for i, row in enumerate(s.split("\n"))))),
    Case("csv-duplicate-columns", R, "two columns named", 1,
         setup=csv_text(replace_header("symbol", "timestamp"))),
    Case("csv-unparseable-timestamps", R, "timestamp", 1,
         setup=frame_file(set_column("timestamp", "yesterday-ish"), "train.csv")),
    Case("csv-empty-timestamp", R, "empty 'timestamp'", 1,
         setup=frame_file(set_column("timestamp", None, slice(3, 4)), "train.csv")),
    Case("csv-empty-symbol", R, "empty 'symbol'", 1,
         setup=frame_file(set_column("symbol", None, slice(5, 6)), "train.csv")),
    Case("csv-target-not-binary", R, "target", 1,
         setup=frame_file(set_column("target", 7, slice(0, 40)), "train.csv")),
    Case("csv-target-fractions", R, "must hold 0/1 values", 1,
         setup=frame_file(set_column("target", 0.5), "train.csv")),
    Case("csv-target-empty-cells", R, "usable rows", 1,
         setup=frame_file(set_column("target", None, slice(0, 10)), "train.csv")),
    Case("csv-target-text", R, "target", 1,
         setup=frame_file(set_column("target", "up", slice(0, 10)), "train.csv")),
    Case("csv-too-few-rows", R, "train.csv", 1, setup=csv_text(lambda s: lines(s, 50))),
    Case("csv-feature-text", R, "Column 'rsi_14' in", 1, env={"QT_CLM_FEATURES": "rsi_14,macd"},
         setup=frame_file(set_column("rsi_14", "high", slice(0, 30)), "train.csv")),
    Case("csv-feature-all-empty", R, "has no usable values", 1,
         env={"QT_CLM_FEATURES": "rsi_14,macd"},
         setup=frame_file(set_column("rsi_14", None), "train.csv")),
    Case("csv-features-setting-names-target", R, "is a key or the target", 1,
         env={"QT_CLM_FEATURES": "rsi_14,symbol"}),
    Case("csv-features-setting-names-missing-column", R, "not_a_column", 1,
         env={"QT_CLM_FEATURES": "not_a_column,rsi_14"}),
    Case("csv-gz-not-gzip", R, "train.csv.gz", 1, env={"QT_CLM_DATA_PATH": "data/train.csv.gz"},
         setup=csv_text(lambda s: s, "train.csv.gz")),
    Case("csv-gz-truncated", R, "train.csv.gz", 1, env={"QT_CLM_DATA_PATH": "data/train.csv.gz"},
         setup=csv_text(lambda s: gzip.compress(s.encode())[:300], "train.csv.gz")),
    Case("parquet-garbage", R, "cannot be read as Parquet", 1,
         env={"QT_CLM_DATA_PATH": "data/train.parquet"},
         setup=csv_text(lambda s: b"PAR1" + os.urandom(500), "train.parquet")),
    Case("parquet-truncated", R, "train.parquet", 1, env={"QT_CLM_DATA_PATH":
                                                          "data/train.parquet"},
         setup=lambda ws, t: (frame_file(lambda f: f, "train.parquet")(ws, t),
                              (ws / "data" / "train.parquet").write_bytes(
                                  (ws / "data" / "train.parquet").read_bytes()[:400]))),
    Case("parquet-no-target-no-close", R, "no 'target' column and no 'close'", 1,
         env={"QT_CLM_DATA_PATH": "data/train.parquet"},
         setup=frame_file(lambda f: f.drop(columns=["close"]), "train.parquet")),
    Case("parquet-target-text", R, "must hold 0/1 values", 1,
         env={"QT_CLM_DATA_PATH": "data/train.parquet"},
         setup=frame_file(set_column("target", "up"), "train.parquet")),
    Case("parquet-no-timestamp", R, "no 'timestamp' column", 1,
         env={"QT_CLM_DATA_PATH": "data/train.parquet"},
         setup=frame_file(lambda f: f.drop(columns=["timestamp"]), "train.parquet")),
    Case("parquet-empty", R, "no data rows", 1, env={"QT_CLM_DATA_PATH": "data/train.parquet"},
         setup=frame_file(lambda f: f.iloc[:0], "train.parquet")),
    Case("data-path-unset", R, "QT_CLM_DATA_PATH", 1, env={"QT_CLM_DATA_PATH": ""}),
]

S = ["status"]
BAD_NUMBERS = [
    ("RETRAIN_HOURS", "1e309"), ("RETRAIN_HOURS", "-1"), ("DRIFT_HOURS", "1e309"),
    ("PERF_HOURS", "0"), ("DRIFT_THRESHOLD", "nan"), ("SHADOW_MIN", "1e309"),
    ("CHECK_MINUTES", "1e12"), ("TRAIN_TIMEOUT", "inf"), ("TRAIN_THREADS", "-3"),
    ("N_ESTIMATORS", "0"), ("MAX_DEPTH", "99"), ("LEARNING_RATE", "5"),
    ("EARLY_STOPPING", "1e9"), ("TEST_FRACTION", "0.9"), ("EMBARGO_HOURS", "-1"),
    ("LEAK_MARGIN", "2"), ("SEED", "-1"), ("BACKUP_KEEP", "0"),
    ("DOCKER_STOP_TIMEOUT", "1e309"), ("HEALTH_TIMEOUT", "0"), ("PERF_DROP", "nan"),
    ("DRIFT_WINDOW_HOURS", "1e309"), ("SHADOW_LOGLOSS_TOL", "-0.1"),
    ("BACKOFF_FRACTION", "0"), ("DEMO_FEED_MINUTES", "1e309"),
    ("NOTIFY_THROTTLE_MINUTES", "-5"), ("SHADOW_MIN", "abc"),
]
SETTINGS = [
    Case(f"setting-{name.lower()}-{value}", S, f"QT_CLM_{name}={value} (from environment) is "
         "not valid: use", 2, env={f"QT_CLM_{name}": value})
    for name, value in BAD_NUMBERS
] + [
    Case(f"model-file-{i}", S, "use a bare file name inside the deploy folder", 2,
         env={"QT_CLM_MODEL_FILE": value})
    for i, value in enumerate(["./../etc/x", "/etc/passwd", "sub/x.ubj", "..\\x.ubj", "C:x.ubj",
                               ".."])
] + [
    Case("run-check-minutes-1e12", ["run"], "QT_CLM_CHECK_MINUTES=1e12", 2,
         env={"QT_CLM_CHECK_MINUTES": "1e12"}),
    Case("run-drift-hours-1e309", ["run"], "QT_CLM_DRIFT_HOURS=1e309", 2,
         env={"QT_CLM_DRIFT_HOURS": "1e309"}),
    Case("retrain-retrain-hours-1e309", R, "use a number > 0 and <= 8760", 2,
         env={"QT_CLM_RETRAIN_HOURS": "1e309"}),
    Case("setting-backend-k8s", S, "use docker, process or none", 2, env={"QT_CLM_BACKEND":
                                                                          "k8s"}),
    Case("setting-enabled-maybe", S, "use true or false", 2, env={"QT_CLM_ENABLED": "maybe"}),
    Case("setting-unknown-name", S, "did you mean QT_CLM_RETRAIN_HOURS", 2,
         env={"QT_CLM_RETRAN_HOURS": "3"}),
    Case("setting-encoding-unknown", S, "QT_CLM_DATA_ENCODING=klingon", 2,
         env={"QT_CLM_DATA_ENCODING": "klingon"}),
    Case("setting-target-empty", S, "QT_CLM_TARGET", 2, env={"QT_CLM_TARGET": ""}),
    Case("dotenv-unknown-name", S, "QT_CLM_NOT_A_SETTING in", 2,
         setup=lambda ws, t: (ws / ".env").write_text(ENV + "QT_CLM_NOT_A_SETTING=1\n")),
    Case("dotenv-bad-value", S, "QT_CLM_RETRAIN_HOURS=1e309 (from", 2,
         setup=lambda ws, t: (ws / ".env").write_text(ENV + "QT_CLM_RETRAIN_HOURS=1e309\n")),
    Case("dotenv-not-utf8", S, ".env: cannot read it", 2,
         setup=lambda ws, t: (ws / ".env").write_bytes(ENV.encode() + b"# caf\xe9\n")),
]

STORE = [
    Case("history-garbage", S, "history.sqlite was damaged", 0,
         setup=history_bytes(lambda b: b"this is not sqlite" * 300)),
    Case("history-truncated", S, "history.sqlite was damaged", 0,
         setup=history_bytes(lambda b: b[:3000])),
    Case("history-header-only", S, "history.sqlite was damaged", 0,
         setup=history_bytes(lambda b: b[:100])),
    Case("history-newer-schema", S, "written by a newer clm-tray", 2, setup=newer_history),
    Case("history-command-history-garbage", ["history"], "history.sqlite was damaged", 0,
         setup=history_bytes(lambda b: b"\0" * 5000)),
    Case("aliases-garbage", S, "aliases.json cannot be read", 2,
         setup=write("store/aliases.json", "{champion: oops")),
    Case("aliases-garbage-rollback", ["rollback"], "aliases.json cannot be read", 2,
         setup=write("store/aliases.json", "\x00\x01")),
    Case("manifest-garbage", S, "manifest.json cannot be read", 2,
         setup=champion_file("manifest.json", "{not json")),
    Case("manifest-missing", S, "manifest.json is missing", 2,
         setup=champion_file("manifest.json", b"<delete>")),
    Case("manifest-not-object", S, "is not a JSON object", 2,
         setup=champion_file("manifest.json", "[1, 2]")),
    Case("notes-garbage", S, "notes.json cannot be read", 2,
         setup=champion_file("notes.json", "{{{")),
    Case("model-bytes-tampered-rollback", ["rollback", "v0002"], "does not match its manifest",
         1, setup=champion_file("model.ubj", b"tampered")),
    Case("rollback-unknown-version", ["rollback", "v9999"], "no model version 'v9999'", 1),
    Case("promote-without-challenger", ["promote"], "no challenger waiting", 2),
    Case("journal-garbage", S, "journal.json cannot be read or is not a deploy journal", 0,
         setup=journal("{not json")),
    Case("journal-a-list", S, "journal.json cannot be read or is not a deploy journal", 0,
         setup=journal([1, 2])),
    Case("journal-other-folder", S, "names the folder /tmp", 0,
         setup=journal(lambda ws: good_journal(ws, deploy_dir="/tmp"))),
    Case("journal-target-escapes", S, "names '../escaped.ubj'", 0,
         setup=journal(lambda ws: good_journal(ws, targets={"../escaped.ubj": "a" * 64}))),
    Case("journal-replaced-absolute", S, "names '/etc/hosts'", 0,
         setup=journal(lambda ws: good_journal(ws, replaced={"/etc/hosts": "a" * 64}))),
    Case("journal-backup-outside", S, "names the backup folder '/tmp/b'", 0,
         setup=journal(lambda ws: good_journal(ws, backup_dir="/tmp/b"))),
    Case("journal-no-folder", S, "names the folder (none)", 0,
         setup=journal(lambda ws: good_journal(ws, deploy_dir=""))),
    Case("store-dir-is-a-file", S, "cannot create the model store", 2,
         env={"QT_CLM_STORE_DIR": "afile"}, setup=write("afile", "x")),
    Case("deploy-dir-is-a-file", ["rollback"], "deploy folder", 1,
         env={"QT_CLM_DEPLOY_DIR": "afile"}, setup=write("afile", "x")),
]

HEALTH = [
    health("/redirect-port", "only redirects to the same scheme, host and port are followed"),
    health("/redirect-host", "redirected to http://example.invalid"),
    health("/redirect-scheme", "redirected to https://127.0.0.1"),
    health("/html", "not with JSON"),
    health("/plain", "not with JSON"),
    health("/big", "health answer larger than 1 MiB"),
    health("/wrongsha", "backend reports model sha256 eeeeeeeeeeee"),
    health("/wrongversion", "backend reports model version v9999"),
    health("/cut", "not with JSON"),
    health("/list", "not with JSON"),
    health("/empty", "not with JSON"),
    health("/latin1", "not with JSON"),
    health("/500", "answered HTTP 500: model failed to load"),
    health("/404", "answered HTTP 404"),
    Case("foreign-process-on-port-restart", ["restart-backend"], "is taken by process "
         f"{os.getpid()}", 2, env=process_backend(lambda t: t.health_port)),  # type: ignore
    Case("foreign-process-on-port-rollback", ["rollback"], "is taken by process "
         f"{os.getpid()}", 1, env=process_backend(lambda t: t.health_port)),  # type: ignore
    Case("process-command-missing", ["restart-backend"], "needs QT_CLM_BACKEND_COMMAND", 2,
         env={"QT_CLM_BACKEND": "process"}),
    Case("process-program-not-found", ["rollback"], "program 'no-such-program-xyz' not found",
         1, env={"QT_CLM_BACKEND": "process",
                 "QT_CLM_BACKEND_COMMAND": "no-such-program-xyz --serve"}),
    Case("process-command-bad-quotes", ["restart-backend"], "cannot be split into words", 2,
         env={"QT_CLM_BACKEND": "process", "QT_CLM_BACKEND_COMMAND": "python 'unclosed"}),
]

DOCKER = [
    Case("docker-socket-missing", ["restart-backend"], "Docker", 2,
         env={"QT_CLM_BACKEND": "docker", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}),
    Case("docker-tcp-refused", ["restart-backend"], "Docker", 2,
         env={"QT_CLM_BACKEND": "docker", "DOCKER_HOST": "tcp://127.0.0.1:9"}),
    Case("docker-bad-scheme", ["restart-backend"], "Docker", 2,
         env={"QT_CLM_BACKEND": "docker", "DOCKER_HOST": "gopher://x"}),
    Case("docker-unreachable-rollback", ["rollback"], "Docker", 1,
         env={"QT_CLM_BACKEND": "docker", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}),
    Case("docker-unreachable-retrain-health", ["health"], "no answer from", 1,
         env={"QT_CLM_BACKEND": "docker", "QT_CLM_HEALTH_URL": "http://127.0.0.1:9/health"},
         stream="out"),
]

CASES = DATA + SETTINGS + STORE + HEALTH + DOCKER


def test_the_table_has_at_least_ninety_cases() -> None:
    assert len(CASES) >= 90
    assert len({c.id for c in CASES}) == len(CASES)


def _workspace(template: Template, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(template.root, ws)
    return ws


def _resolve_env(case: Case, t: Template) -> dict[str, str]:
    env = case.env(t) if callable(case.env) else case.env
    return {k: v.replace("{health}", t.health) for k, v in env.items()}


def _deployed(ws: Path) -> dict[str, str]:
    folder = ws / "models"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.iterdir() if p.is_file() and p.name != "retraining_log.txt"}


def _message_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(PROGRESS)]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_deploys_nothing(case: Case, template: Template,
                                                   tmp_path: Path, monkeypatch, capsys) -> None:
    ws = _workspace(template, tmp_path)
    if case.setup is not None:
        case.setup(ws, template)
    for key, value in _resolve_env(case, template).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ws)
    before = _deployed(template.root)

    code = cli_main(["--env-file", str(ws / ".env"), *case.argv])

    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    message = _message_lines(err if case.stream == "err" else out)
    assert len(message) == 1, f"expected one line, got: {message}"
    assert case.expect in message[0], message[0]
    if case.code >= 0:
        assert code == case.code, message[0]
    else:
        assert code != 0
    assert _deployed(ws) == before, "something was deployed"
    assert before["xgb_model.ubj"] == template.champion_sha


SUBPROCESS_CASES = ["csv-latin1", "setting-check_minutes-1e12", "history-garbage",
                    "journal-other-folder", "health-html"]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_a_few_cases_as_real_subprocesses(case_id: str, template: Template,
                                          tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    ws = _workspace(template, tmp_path)
    if case.setup is not None:
        case.setup(ws, template)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_CLM_")}
    env.update(_resolve_env(case, template))
    before = _deployed(ws)
    proc = subprocess.run([sys.executable, "-m", "clm_tray", "--env-file", str(ws / ".env"),
                           *case.argv], cwd=ws, env=env, capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr
    message = _message_lines(proc.stderr if case.stream == "err" else proc.stdout)
    assert len(message) == 1 and case.expect in message[0], message
    assert proc.returncode == case.code
    assert _deployed(ws) == before
