"""Reference prediction backend: the demo workspace's backend and the tests' peer.

It loads the deployed model ONCE, at start (as the trader's backend does), and says which one:
``GET /health`` → 200 ``{"status": "ok", "model_sha256", "model_version", "loaded_at",
"features"}`` or 503 ``{"status": "error", "reason"}`` when no model loads (missing, truncated,
corrupt). ``POST /predict`` with ``{"rows": [{feature: value, ...}, ...]}`` (or a list of
lists in feature order) → ``{"probabilities": [...], "model_version"}``; 400 with a reason on
bad input. So a restart is what makes it pick up a new model, and /health proves it did.

Built on the standard library's ``ThreadingHTTPServer``: no extra dependency, starts in a
fraction of a second (restarts stay fast), and the two endpoints need nothing more. It imports
only numpy and xgboost besides the standard library, so the file also runs on its own
(``installer/Dockerfile.backend`` copies just this file).

Run: ``python -m clm_tray.core.backend.reference_server --models-dir DIR`` (options: ``--host
127.0.0.1 --port 8000``), or ``clm-tray backend serve``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_MODEL_FILE = "xgb_model.ubj"
MAX_BODY = 32 << 20  # 32 MiB of JSON rows per /predict call


@dataclass
class LoadedModel:
    """What was loaded at start, or why nothing could be."""

    path: Path
    booster: Any = None
    sha256: str | None = None
    version: str | None = None
    features: list[str] = field(default_factory=list)
    loaded_at: str | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def health(self) -> tuple[int, dict[str, Any]]:
        if self.booster is None:
            return 503, {"status": "error", "reason": self.error, "model_file": str(self.path)}
        return 200, {
            "status": "ok",
            "model_sha256": self.sha256,
            "model_version": self.version,
            "loaded_at": self.loaded_at,
            "features": self.features,
            "model_file": str(self.path),
        }


def load_model(models_dir: Path, model_file: str = DEFAULT_MODEL_FILE) -> LoadedModel:
    """Load ``models_dir/model_file`` and its ``<stem>.meta.json``; never raises.

    The sha256 is taken from the very bytes handed to XGBoost, so /health names exactly what
    is in memory even if the file is replaced a moment later.
    """
    path = Path(models_dir) / model_file
    model = LoadedModel(path=path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        model.error = f"no model file {path}"
        return model
    except OSError as exc:
        model.error = f"cannot read {path}: {exc.strerror or exc}"
        return model
    meta: dict[str, Any] = {}
    meta_path = path.with_name(path.stem + ".meta.json")
    try:
        loaded = json.loads(meta_path.read_text(encoding="utf-8"))
        meta = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        meta = {}
    sha = hashlib.sha256(data).hexdigest()
    expected = str(meta.get("model_sha256") or "").lower()
    if expected and expected != sha:
        model.error = (f"{path} has sha256 {sha[:12]}… but {meta_path.name} says "
                       f"{expected[:12]}… (truncated or replaced?); not loaded")
        return model
    if path.suffix.lower() == ".ubj" and not ubjson_complete(data):
        model.error = f"cannot load {path} ({len(data)} bytes): not a complete UBJSON model"
        return model
    try:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
    except Exception as exc:  # XGBoostError and friends: a truncated or foreign file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        model.error = f"cannot load {path} ({len(data)} bytes): {first[:300]}"
        return model
    model.booster = booster
    model.sha256 = sha
    model.version = str(meta["version"]) if meta.get("version") is not None else None
    features = meta.get("features") or booster.feature_names or []
    model.features = [str(f) for f in features]
    model.loaded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return model


_FIXED = {ord("Z"): 0, ord("N"): 0, ord("T"): 0, ord("F"): 0, ord("i"): 1, ord("U"): 1,
          ord("C"): 1, ord("I"): 2, ord("l"): 4, ord("d"): 4, ord("L"): 8, ord("D"): 8}
_INTS = {ord("i"): ("b", 1), ord("U"): ("B", 1), ord("I"): (">h", 2), ord("l"): (">i", 4),
         ord("L"): (">q", 8)}


def ubjson_complete(buf: bytes) -> bool:
    """True when ``buf`` is exactly one whole UBJSON document.

    XGBoost's own parser can read past the end of a truncated buffer and crash the process,
    so a cut-off file is caught here, before it gets that far.
    """
    import struct

    def need(pos: int, n: int) -> None:
        if n < 0 or pos + n > len(buf):
            raise ValueError("truncated")

    def integer(pos: int) -> tuple[int, int]:
        need(pos, 1)
        fmt = _INTS.get(buf[pos])
        if fmt is None:
            raise ValueError("bad length")
        need(pos + 1, fmt[1])
        return struct.unpack_from(fmt[0], buf, pos + 1)[0], pos + 1 + fmt[1]

    def value(pos: int, marker: int | None = None) -> int:
        if marker is None:
            need(pos, 1)
            marker, pos = buf[pos], pos + 1
        if marker in _FIXED:
            need(pos, _FIXED[marker])
            return pos + _FIXED[marker]
        if marker in (ord("S"), ord("H")):
            size, pos = integer(pos)
            need(pos, size)
            return pos + size
        if marker in (ord("["), ord("{")):
            return container(pos, marker == ord("{"))
        raise ValueError("unknown marker")

    def container(pos: int, keyed: bool) -> int:
        close = ord("}") if keyed else ord("]")
        typ: int | None = None
        count: int | None = None
        need(pos, 1)
        if buf[pos] == ord("$"):
            need(pos, 2)
            typ, pos = buf[pos + 1], pos + 2
            need(pos, 1)
            if buf[pos] != ord("#"):
                raise ValueError("typed container without count")
        if buf[pos] == ord("#"):
            count, pos = integer(pos + 1)
            if count < 0:
                raise ValueError("negative count")
        if count is not None and typ is not None and typ in _FIXED and not keyed:
            need(pos, count * _FIXED[typ])  # a typed numeric array: skip it in one step
            return pos + count * _FIXED[typ]
        done = 0
        while count is None or done < count:
            need(pos, 1)
            if count is None and buf[pos] == close:
                return pos + 1
            if keyed:
                size, pos = integer(pos)
                need(pos, size)
                pos += size
            pos = value(pos, typ)
            done += 1
        return pos

    try:
        return len(buf) > 0 and value(0) == len(buf)
    except (ValueError, struct.error, RecursionError):
        return False


class BadInput(ValueError):
    """A /predict body the model cannot take; the message goes back with HTTP 400."""


def _matrix(body: Any, features: list[str]) -> Any:
    """Rows as dicts (by feature name) or lists (in feature order) → a float32 array."""
    import numpy as np

    rows = body.get("rows") if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows:
        raise BadInput('send {"rows": [...]} with at least one row')
    table: list[list[float]] = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            if not features:
                raise BadInput("this model has no feature names; send rows as lists")
            missing = [f for f in features if f not in row]
            if missing:
                raise BadInput(f"row {i} lacks feature {missing[0]!r} ({len(missing)} missing)")
            values = [row[f] for f in features]
        elif isinstance(row, list):
            if features and len(row) != len(features):
                raise BadInput(f"row {i} has {len(row)} values; the model wants {len(features)}")
            values = row
        else:
            raise BadInput(f"row {i} is neither an object nor a list")
        try:
            table.append([float("nan") if v is None else float(v) for v in values])
        except (TypeError, ValueError) as exc:
            raise BadInput(f"row {i} has a value that is not a number") from exc
    widths = {len(r) for r in table}
    if len(widths) != 1:
        raise BadInput("rows have different lengths")
    return np.asarray(table, dtype=np.float32)


def predict(model: LoadedModel, body: Any) -> dict[str, Any]:
    import xgboost

    matrix = _matrix(body, model.features)
    names = model.features if model.booster.feature_names else None
    try:
        with model.lock:  # one prediction at a time per booster: simple and safe
            probs = model.booster.predict(xgboost.DMatrix(matrix, feature_names=names))
    except xgboost.core.XGBoostError as exc:
        raise BadInput(str(exc).strip().splitlines()[0][:300]) from exc
    return {"probabilities": [float(p) for p in probs.reshape(len(matrix), -1)[:, -1]],
            "model_version": model.version, "model_sha256": model.sha256}


class Handler(BaseHTTPRequestHandler):
    server_version = "clm-reference-backend/1"
    protocol_version = "HTTP/1.1"
    model: LoadedModel  # set on the subclass made by make_server

    def _send(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            self._send(*self.model.health())
        elif path == "":
            self._send(200, {"endpoints": ["GET /health", "POST /predict"]})
        else:
            self._send(404, {"status": "error", "reason": f"no such path {self.path}"})

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0].rstrip("/") != "/predict":
            self._send(404, {"status": "error", "reason": f"no such path {self.path}"})
            return
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self.close_connection = True
            self._send(411, {"status": "error", "reason": "send a Content-Length header"})
            return
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0 or not raw_length.strip().isdigit():
            # Never read on a length we cannot trust (-1 would block a thread until EOF).
            self.close_connection = True
            self._send(400, {"status": "error", "reason": "bad Content-Length header"})
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, {"status": "error", "reason": f"body over {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(length)
        if self.model.booster is None:
            self._send(503, {"status": "error", "reason": self.model.error})
            return
        try:
            body = json.loads(raw.decode("utf-8"))
            self._send(200, predict(self.model, body))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send(400, {"status": "error", "reason": "the body is not JSON"})
        except BadInput as exc:
            self._send(400, {"status": "error", "reason": str(exc)})

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        sys.stderr.write(f'{self.address_string()} "{self.requestline}" {code}\n')

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(
    models_dir: Path, host: str = "127.0.0.1", port: int = 8000,
    model_file: str = DEFAULT_MODEL_FILE,
) -> ThreadingHTTPServer:
    """Load the model and bind the port (0 = any free port); call ``serve_forever`` on it."""
    model = load_model(Path(models_dir), model_file)
    handler = type("BoundHandler", (Handler,), {"model": model})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.model = model  # type: ignore[attr-defined]
    return server


OWNER_ENV = "CLM_TRAY_BACKEND_OWNER"  # "pid" of the app that started the demo backend


def watch_owner(server: ThreadingHTTPServer, environ: dict[str, str] | None = None,
                every: float = 1.0) -> threading.Thread | None:
    """Stop serving when the app that started us is gone.

    The tray app can die without running any clean-up (its X display went away and Qt calls
    exit(), or it was killed); the demo backend it started must not outlive it. The owner is
    named in the environment, so backends restarted by the engine's worker processes (which
    inherit it) follow the same app. A headless demo leaves it unset: that backend is meant
    to keep running until `clm-tray demo stop`.
    """
    raw = (environ if environ is not None else os.environ).get(OWNER_ENV, "")
    if not raw.strip().isdigit():
        return None
    import psutil

    owner = int(raw)
    try:
        born = psutil.Process(owner).create_time()
    except psutil.Error:
        born = None

    def alive() -> bool:
        if born is None:
            return False
        try:
            proc = psutil.Process(owner)
            return (abs(proc.create_time() - born) < 0.05
                    and proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def watch() -> None:
        while alive():
            time.sleep(every)
        sys.stderr.write(f"clm-tray reference backend: the app that started it (pid {owner}) "
                         "is gone; stopping\n")
        sys.stderr.flush()
        server.shutdown()

    t = threading.Thread(target=watch, name="owner-watch", daemon=True)
    t.start()
    return t


def serve(
    models_dir: Path | str, host: str = "127.0.0.1", port: int = 8000,
    model_file: str = DEFAULT_MODEL_FILE,
) -> None:
    """Serve until SIGTERM / SIGINT, then close the socket and return."""
    started = time.monotonic()
    server = make_server(Path(models_dir), host, port, model_file)
    model: LoadedModel = server.model  # type: ignore[attr-defined]
    bound_host, bound_port = server.server_address[:2]

    def stop(signum: int, _frame: Any) -> None:
        # shutdown() waits for serve_forever to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watch_owner(server)
    state = (f"model sha256 {model.sha256[:12]}… version {model.version}" if model.booster
             else f"NO MODEL: {model.error}")
    sys.stderr.write(
        f"clm-tray reference backend on http://{bound_host}:{bound_port}/health, {state} "
        f"(ready in {time.monotonic() - started:.2f} s)\n"
    )
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        sys.stderr.write("clm-tray reference backend stopped\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="clm-tray backend serve",
        description="Serve the deployed XGBoost model: GET /health, POST /predict.",
    )
    parser.add_argument("--models-dir", required=True, type=Path,
                        help="folder holding the deployed model and its .meta.json")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any)")
    parser.add_argument("--model-file", default=DEFAULT_MODEL_FILE,
                        help=f"model file name in the folder (default {DEFAULT_MODEL_FILE})")
    args = parser.parse_args(argv)
    # xgboost imports scikit-learn (for its sklearn wrappers) when it is installed: 3-6 s of a
    # restart spent on code this server never uses. In this process only, skip it.
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]
    try:
        serve(args.models_dir, args.host, args.port, args.model_file)
    except OSError as exc:  # port taken, address not available
        sys.stderr.write(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}; "
                         f"choose another --port.\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
