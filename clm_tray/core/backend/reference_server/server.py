"""The reference backend's HTTP side: ``GET /health`` and ``POST /predict``, and its command.

Built on the standard library's ``ThreadingHTTPServer``: no extra dependency, starts in a
fraction of a second (restarts stay fast), and the two endpoints need nothing more.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .model import DEFAULT_MODEL_FILE, BadInput, LoadedModel, load_model, predict
from .owner import watch_owner

MAX_BODY = 32 << 20  # 32 MiB of JSON rows per /predict call


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
