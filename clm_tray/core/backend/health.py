"""Is the backend serving the model just deployed? The rules that judge a health answer.

``probe_health`` asks once; ``verify_backend`` polls until the URL answers 200 and reports the
deployed model's sha256 / version, or the deadline passes, and then says in one line why not.
``verify_deployed`` is that step of the cycle with the settings' URL, keys and deadline. What
counts as verified (JSON, the same sha256 / version, a loaded model, our own listener) is
decided here; the request itself is ``backend.health_probe``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from clm_tray.core.app.status import IDENTITY_NOT_REPORTED, HealthReport
from clm_tray.core.backend.health_probe import ProbeFailure, health_client, probe_once
from clm_tray.core.config.settings import Settings

if TYPE_CHECKING:
    from clm_tray.core.backend.factory import Backend

SKIPPED_REASON = "QT_CLM_BACKEND=none: files only, backend not checked"


def skipped_report(url: str = "") -> HealthReport:
    """What health looks like with ``QT_CLM_BACKEND=none``: not checked, and saying so."""
    return HealthReport(
        ok=True, url=url, status_code=None, latency_ms=None, reported_sha256=None,
        reported_version=None, reason=SKIPPED_REASON, skipped=True,
    )


def _short(sha: str) -> str:
    return sha[:12] + "…" if len(sha) > 12 else sha


def probe_health(
    url: str,
    *,
    timeout: float = 2.0,
    model_key: str = "model_sha256",
    version_key: str = "model_version",
    expect_sha256: str | None = None,
    expect_version: str | None = None,
) -> HealthReport:
    """Ask the health URL once: ok means HTTP 200 and, when an expected model is given, that
    the backend reports that model (the same judgement as ``verify_backend``, without waiting)."""
    with health_client(url) as client:
        report, _failure, is_json = probe_once(client, url, timeout, model_key, version_key)
    return _judge(_require_json(report, is_json, expect_sha256, expect_version),
                  expect_sha256, expect_version)


def _require_json(report: HealthReport, is_json: bool, expect_sha256: str | None,
                  expect_version: str | None) -> HealthReport:
    """Rule: when a model is expected, only a JSON answer can prove it. An HTML page, plain
    text or a cut body with status 200 is *not verified* (a backend answering JSON without
    any model identity is judged by ``_judge``)."""
    if report.ok and (expect_sha256 or expect_version) and not is_json:
        report.ok = False
        report.reason = (f"{report.url} answered HTTP 200 but not with JSON, so the model it "
                         "serves cannot be checked; not verified")
    return report


def _judge(
    report: HealthReport, expect_sha256: str | None, expect_version: str | None
) -> HealthReport:
    """Turn a 200 into verified only when the reported model is the one just deployed."""
    if not report.ok:
        return report
    if report.model_loaded is False:
        report.ok = False
        report.reason = f"{report.url} answers but says its model is not loaded"
        return report
    compared = []
    if expect_sha256 and report.reported_sha256:
        if report.reported_sha256.strip().lower() != expect_sha256.strip().lower():
            report.ok = False
            report.reason = (
                f"backend reports model sha256 {_short(report.reported_sha256)} "
                f"but deployed {_short(expect_sha256)}"
            )
            return report
        compared.append(f"sha256 {_short(expect_sha256)}")
    if expect_version and report.reported_version:
        if report.reported_version.strip() != expect_version.strip():
            report.ok = False
            report.reason = (
                f"backend reports model version {report.reported_version} "
                f"but deployed {expect_version}"
            )
            return report
        compared.append(f"version {expect_version}")
    if compared:
        report.identity = "verified"
        report.reason = "healthy, serving " + " and ".join(compared)
    elif expect_sha256 or expect_version:
        # Identity not reported: healthy is all we can say (the caller checks the restart).
        report.identity = IDENTITY_NOT_REPORTED
        loaded = ", model loaded" if report.model_loaded else ""
        report.reason = f"healthy{loaded}; the backend does not report which model it loaded"
    return report


def verify_backend(
    url: str,
    *,
    expect_sha256: str | None,
    expect_version: str | None,
    deadline: float,
    request_timeout: float = 2.0,
    model_key: str = "model_sha256",
    version_key: str = "model_version",
    interval: float = 0.25,
    alive: Callable[[], bool] | None = None,
) -> HealthReport:
    """Poll ``url`` for up to ``deadline`` seconds until it serves the model just deployed.

    ``alive`` (a process backend's ``is_running``) ends the wait early when the backend has
    exited: nobody will answer, so waiting out the deadline would only delay the rollback.

    Verified = HTTP 200 and, where the JSON reports the loaded model (``model_key`` /
    ``version_key``), it equals what was deployed. Each request's timeout is capped at the time
    left, so a hung endpoint cannot stretch the wait. The report of the last attempt is
    returned, its reason rewritten to say why the whole wait failed.
    """
    started = time.monotonic()
    end = started + deadline
    last: HealthReport | None = None
    failure: ProbeFailure | None = None
    with health_client(url) as client:
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0 and last is not None:
                break
            report, failure, is_json = probe_once(
                client, url, max(0.05, min(request_timeout, remaining)), model_key, version_key
            )
            report = _judge(_require_json(report, is_json, expect_sha256, expect_version),
                            expect_sha256, expect_version)
            if report.ok:
                return report
            last = report
            if failure is not None and alive is not None and not alive():
                last.reason = f"the backend exited after the restart; {last.reason}"
                return last
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(interval, remaining))
    assert last is not None
    if failure is not None and failure.kind == "refused":
        last.reason = f"no answer from {url} within {deadline:.3g} s ({failure.detail})"
    elif failure is not None and failure.kind == "hung":
        last.reason = f"{url} timed out (hung): no reply within the {deadline:.3g} s deadline"
    return last


def verify_deployed(
    backend: Backend,
    settings: Settings,
    *,
    expect_sha256: str | None,
    expect_version: str | None,
    deadline: float | None = None,
) -> HealthReport:
    """Step 7 of the cycle with the settings' URL, keys and deadline; skipped for ``none``."""
    if backend.kind == "none":
        return skipped_report(settings.health_url)
    report = verify_backend(
        settings.health_url,
        expect_sha256=expect_sha256,
        expect_version=expect_version,
        deadline=settings.health_timeout if deadline is None else deadline,
        model_key=settings.health_model_key,
        version_key=settings.health_version_key,
        alive=backend.is_running if backend.kind == "process" else None,
    )
    return _require_own_listener(backend, report)


def _require_own_listener(backend: Backend, report: HealthReport) -> HealthReport:
    """Rule: a verified answer must come from the backend we restarted. A backend that can
    tell who owns its port (the process backend) is asked; an answer from another process on
    that port, or a backend that died after answering, is not verified."""
    if not report.ok or report.skipped:
        return report
    problem = backend.check_serving()
    if problem:
        report.ok = False
        report.reason = f"{problem}; not verified"
    return report
