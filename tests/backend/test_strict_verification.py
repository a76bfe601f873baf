"""Health answers that prove nothing are never "verified": fake health servers (real HTTP on
127.0.0.1) that redirect elsewhere, answer HTML, answer more than 1 MiB or report the wrong
model, and a foreign process holding the process backend's port."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

from clm_tray.core.backend.health import probe_health, verify_backend, verify_deployed
from clm_tray.core.backend.process import ProcessBackend
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import BackendError

SHA = "c" * 64
GOOD = {"status": "ok", "model_sha256": SHA, "model_version": "v0001-x"}


def _redirect(location: str):
    def behave(handler, release):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return behave


def _raw(status: int, body: bytes, ctype: str):
    def behave(handler, release):
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return behave


def test_redirect_to_another_port_is_not_followed_even_to_the_right_model(health_peer, send):
    elsewhere = health_peer(lambda h, r: send(h, 200, GOOD))
    url = health_peer(_redirect(elsewhere))
    report = verify_backend(url, expect_sha256=SHA, expect_version=None, deadline=0.6)
    assert not report.ok
    assert "redirected to http://127.0.0.1:" in report.reason
    assert report.reason.endswith("not verified")


def test_redirect_to_another_host_is_not_followed(health_peer):
    url = health_peer(_redirect("http://example.invalid/health"))
    report = probe_health(url, expect_sha256=SHA)
    assert not report.ok and "redirected to http://example.invalid" in report.reason


def test_redirect_on_the_same_host_and_port_is_followed(health_peer, send):
    def behave(handler, release):
        if handler.path == "/health":
            _redirect("/v2/health")(handler, release)
        else:
            send(handler, 200, GOOD)

    report = verify_backend(health_peer(behave), expect_sha256=SHA, expect_version=None,
                            deadline=2)
    assert report.ok, report.reason
    assert report.reported_sha256 == SHA


def test_html_page_with_status_200_is_not_verified(health_peer):
    page = b"<html><body>Welcome to nginx!</body></html>"
    url = health_peer(_raw(200, page, "text/html"))
    report = verify_backend(url, expect_sha256=SHA, expect_version=None, deadline=0.6)
    assert not report.ok
    assert "not with JSON" in report.reason and "not verified" in report.reason


def test_answer_over_one_mib_is_a_named_failure(health_peer):
    doc = {"model_sha256": "d" * 64, "padding": "x" * (1 << 20)}
    url = health_peer(_raw(200, json.dumps(doc).encode(), "application/json"))
    report = verify_backend(url, expect_sha256=SHA, expect_version=None, deadline=0.6)
    assert not report.ok
    assert "health answer larger than 1 MiB" in report.reason


def test_wrong_sha256_is_not_verified(health_peer, send):
    url = health_peer(lambda h, r: send(h, 200, {**GOOD, "model_sha256": "e" * 64}))
    report = verify_backend(url, expect_sha256=SHA, expect_version=None, deadline=0.6)
    assert not report.ok and "but deployed" in report.reason


def test_cut_json_body_is_not_verified(health_peer):
    url = health_peer(_raw(200, json.dumps(GOOD).encode()[:30], "application/json"))
    report = probe_health(url, expect_sha256=SHA)
    assert not report.ok and "not with JSON" in report.reason


@pytest.fixture
def foreign_server(port):
    """Another program (python's http.server, a real process) listening on ``port``."""
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield proc
    proc.terminate()
    proc.wait(5)


def test_foreign_process_on_the_backend_port_fails_preflight_naming_port_and_pid(
        tmp_path, port, foreign_server):
    command = shlex.join([sys.executable, "-m", "clm_tray.core.backend.reference_server",
                          "--models-dir",
                          str(tmp_path / "models"), "--port", str(port)])
    backend = ProcessBackend(command, log_path=tmp_path / "backend.log",
                             state_dir=tmp_path / "store", port=port)
    with pytest.raises(BackendError) as err:
        backend.preflight()
    msg = str(err.value)
    assert f"port {port} is taken by process {foreign_server.pid}" in msg
    assert "\n" not in msg


def test_an_answer_from_another_process_on_the_port_is_not_verified(tmp_path, port):
    """The backend we start does not listen (it died at bind, say); another program that took
    the port meanwhile reports the right model, and still nothing is verified."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    backend = ProcessBackend(shlex.join([sys.executable, "-c", "import time; time.sleep(30)"]),
                             log_path=tmp_path / "backend.log", state_dir=tmp_path / "store",
                             port=port)
    backend.start()

    class Impostor(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            _raw(200, json.dumps(GOOD).encode(), "application/json")(self, None)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Impostor)
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        settings = Settings(health_url=f"http://127.0.0.1:{port}/health", health_timeout=0.6)
        report = verify_deployed(backend, settings, expect_sha256=SHA, expect_version=None)
    finally:
        server.shutdown()
        server.server_close()
        backend.stop()
    assert not report.ok
    assert f"port {port} is served by process {os.getpid()}" in report.reason
