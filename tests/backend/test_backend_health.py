"""verify_backend / probe_health against real HTTP peers on 127.0.0.1: each way a backend can
fail ends in one clear line within the deadline."""

from __future__ import annotations

import threading
import time

from clm_tray.core.backend.factory import NoBackend
from clm_tray.core.backend.health import (
    probe_health,
    skipped_report,
    verify_backend,
    verify_deployed,
)
from clm_tray.core.config.settings import Settings
from clm_tray.core.serialize import to_jsonable

SHA_A = "a" * 64
SHA_B = "b" * 64
DEADLINE = 2.0


def test_hung_health_endpoint_times_out_within_the_deadline(health_peer):
    url = health_peer(lambda handler, release: release.wait(30))
    started = time.monotonic()
    report = verify_backend(url, expect_sha256=SHA_A, expect_version=None, deadline=DEADLINE)
    elapsed = time.monotonic() - started
    assert not report.ok
    assert elapsed < DEADLINE + 1.5
    assert report.reason.startswith(f"{url} timed out (hung)")
    assert report.status_code is None


def test_hung_endpoint_cannot_stretch_a_long_request_timeout(health_peer):
    url = health_peer(lambda handler, release: release.wait(30))
    started = time.monotonic()
    report = verify_backend(url, expect_sha256=SHA_A, expect_version=None, deadline=1.0,
                            request_timeout=30.0)
    assert not report.ok and "timed out (hung)" in report.reason
    assert time.monotonic() - started < 1.0 + 1.5


def test_http_500_is_reported_with_its_status(health_peer, send):
    url = health_peer(lambda handler, release: send(handler, 500, {"reason": "db down"}))
    started = time.monotonic()
    report = verify_backend(url, expect_sha256=SHA_A, expect_version=None, deadline=DEADLINE)
    assert time.monotonic() - started < DEADLINE + 1.5
    assert not report.ok
    assert report.status_code == 500
    assert report.reason == f"{url} answered HTTP 500: db down"
    assert report.latency_ms is not None


def test_wrong_sha256_names_both_models(health_peer, send):
    url = health_peer(lambda handler, release: send(
        handler, 200, {"status": "ok", "model_sha256": SHA_B, "model_version": "v2"}))
    started = time.monotonic()
    report = verify_backend(url, expect_sha256=SHA_A, expect_version="v2", deadline=DEADLINE)
    assert time.monotonic() - started < DEADLINE + 1.5
    assert not report.ok
    assert report.status_code == 200
    assert report.reported_sha256 == SHA_B
    assert report.reason == "backend reports model sha256 bbbbbbbbbbbb… but deployed aaaaaaaaaaaa…"


def test_connection_refused_says_no_answer_within_the_deadline(port):
    url = f"http://127.0.0.1:{port}/health"
    started = time.monotonic()
    report = verify_backend(url, expect_sha256=SHA_A, expect_version=None, deadline=1.0)
    assert time.monotonic() - started < 1.0 + 1.5
    assert not report.ok
    assert report.reason == f"no answer from {url} within 1 s (connection refused)"


def test_backend_still_starting_is_polled_until_it_serves_the_new_model(health_peer, send):
    calls = []
    lock = threading.Lock()

    def starting_then_ready(handler, release):
        with lock:
            calls.append(1)
            n = len(calls)
        if n < 3:
            send(handler, 503, {"status": "error", "reason": "loading"})
        else:
            send(handler, 200, {"status": "ok", "model_sha256": SHA_A.upper()})

    url = health_peer(starting_then_ready)
    report = verify_backend(url, expect_sha256=SHA_A, expect_version=None, deadline=5.0,
                            interval=0.05)
    assert report.ok, report.reason
    assert len(calls) == 3
    assert report.reason == "healthy, serving sha256 aaaaaaaaaaaa…"


def test_version_key_alone_is_enough_to_verify(health_peer, send):
    url = health_peer(lambda handler, release: send(handler, 200, {"model": {"version": "v7"}}))
    ok = verify_backend(url, expect_sha256=SHA_A, expect_version="v7", deadline=DEADLINE,
                        model_key="model.sha256", version_key="model.version")
    assert ok.ok and ok.reported_version == "v7" and ok.reported_sha256 is None
    bad = verify_backend(url, expect_sha256=SHA_A, expect_version="v8", deadline=0.5,
                         model_key="model.sha256", version_key="model.version")
    assert not bad.ok
    assert bad.reason == "backend reports model version v7 but deployed v8"


def test_backend_that_does_not_report_its_model_is_healthy_but_says_so(health_peer, send):
    url = health_peer(lambda handler, release: send(handler, 200, {"status": "ok"}))
    report = verify_backend(url, expect_sha256=SHA_A, expect_version=None, deadline=DEADLINE)
    assert report.ok and report.identity == "not reported"
    assert "does not report which model it loaded" in report.reason


def test_probe_records_status_latency_and_reported_model(health_peer, send):
    url = health_peer(lambda handler, release: send(
        handler, 200, {"status": "ok", "model_sha256": SHA_A, "model_version": "v1"}))
    report = probe_health(url)
    assert report.ok and report.status_code == 200
    assert report.reported_sha256 == SHA_A and report.reported_version == "v1"
    assert 0 <= report.latency_ms < 2000
    assert report.checked_at <= time.time()
    assert to_jsonable(report)["url"] == url


def test_backend_none_skips_verification_and_says_so():
    settings = Settings(backend="none")
    report = verify_deployed(NoBackend(), settings, expect_sha256=SHA_A, expect_version="v1")
    assert report.ok and report.skipped
    assert report.reason == "QT_CLM_BACKEND=none: files only, backend not checked"
    assert skipped_report("http://x/health").url == "http://x/health"
