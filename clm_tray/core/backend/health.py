"""Is the backend serving the model just deployed? Ask its health URL and judge the answer.

``probe_health`` asks once; ``verify_backend`` polls until the URL answers 200 and reports the
deployed model's sha256 / version, or the deadline passes, and then says in one line why not.
``verify_deployed`` is that step of the cycle with the settings' URL, keys and deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from clm_tray.core.app.status import IDENTITY_NOT_REPORTED, HealthReport
from clm_tray.core.config.settings import Settings

if TYPE_CHECKING:
    from clm_tray.core.backend.factory import Backend

SKIPPED_REASON = "QT_CLM_BACKEND=none: files only, backend not checked"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_MAX_BODY = 1 << 20  # a health answer is small; never read more than 1 MiB of it
_MAX_REDIRECTS = 5


def skipped_report(url: str = "") -> HealthReport:
    """What health looks like with ``QT_CLM_BACKEND=none``: not checked, and saying so."""
    return HealthReport(
        ok=True, url=url, status_code=None, latency_ms=None, reported_sha256=None,
        reported_version=None, reason=SKIPPED_REASON, skipped=True,
    )


def _short(sha: str) -> str:
    return sha[:12] + "…" if len(sha) > 12 else sha


def _lookup(doc: Any, key: str) -> str | None:
    """``key`` may be dotted (``model.sha256``) for backends that nest their answer."""
    for part in key.split("."):
        if not isinstance(doc, Mapping) or part not in doc:
            return None
        doc = doc[part]
    return None if doc is None or isinstance(doc, (dict, list)) else str(doc)


def _use_proxy_env(url: str) -> bool:
    """A local backend is never reached through HTTP(S)_PROXY."""
    return (urlsplit(url).hostname or "") not in _LOOPBACK


class _Failure(Exception):
    """Why one request got no usable answer: kind is refused / hung / broken."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    u = httpx.URL(str(url))
    default = {"http": 80, "https": 443}.get(u.scheme)
    return u.scheme, (u.host or "").lower(), u.port or default


def _get(client: httpx.Client, url: str, timeout: float) -> tuple[int, bytes]:
    """GET with every phase bounded by ``timeout`` and the whole answer by the same budget.

    Strict on purpose, because a wrong "verified" is worse than none: a redirect is followed
    only to the same scheme, host and port; an answer over 1 MiB is a failure of its own.
    """
    started = time.monotonic()
    target = url
    try:
        for _hop in range(_MAX_REDIRECTS + 1):
            with client.stream("GET", target, timeout=httpx.Timeout(timeout)) as resp:
                if resp.is_redirect:
                    location = resp.headers.get("location", "")
                    nxt = resp.url.join(location)
                    if _origin(nxt) != _origin(url):
                        raise _Failure("redirect", f"redirected to {nxt.scheme}://{nxt.host}"
                                       f"{':' + str(nxt.port) if nxt.port else ''}; only "
                                       "redirects to the same scheme, host and port are followed")
                    target = str(nxt)
                    continue
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_BODY:
                        raise _Failure("oversized", "health answer larger than 1 MiB")
                    if time.monotonic() - started > timeout:
                        raise _Failure("hung", "answer still arriving when the time ran out")
                return resp.status_code, body
        raise _Failure("redirect", f"more than {_MAX_REDIRECTS} redirects")
    except httpx.ConnectTimeout as exc:
        raise _Failure("hung", "connect timed out") from exc
    except httpx.TimeoutException as exc:
        raise _Failure("hung", "no reply") from exc
    except httpx.ConnectError as exc:
        text = str(exc).lower()
        detail = "connection refused" if "refused" in text else (str(exc) or "cannot connect")
        raise _Failure("refused", detail) from exc
    except httpx.HTTPError as exc:  # protocol errors, closed connections, bad URLs
        raise _Failure("broken", f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc


def _probe(
    client: httpx.Client, url: str, timeout: float, model_key: str, version_key: str
) -> tuple[HealthReport, _Failure | None, bool]:
    """One request; also returns why it got no usable answer (None when it got one) and
    whether the body was a JSON object (what a model identity can be read from)."""
    started = time.monotonic()
    try:
        status, body = _get(client, url, timeout)
    except _Failure as failure:
        if failure.kind == "hung":
            reason = f"{url} timed out (hung): {failure.detail} within {timeout:.3g} s"
        elif failure.kind == "refused":
            reason = f"no answer from {url} ({failure.detail})"
        elif failure.kind in ("redirect", "oversized"):
            reason = f"{url}: {failure.detail}; not verified"
        else:
            reason = f"{url} gave no usable answer ({failure.detail})"
        return HealthReport(False, url, None, None, None, None, reason), failure, False
    latency = round((time.monotonic() - started) * 1000.0, 1)
    try:
        doc = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        doc = None
    sha = _lookup(doc, model_key) if model_key else None
    version = _lookup(doc, version_key) if version_key else None
    if status == 200:
        reason = "healthy"
    else:
        said = _lookup(doc, "reason") or _lookup(doc, "error")
        reason = f"{url} answered HTTP {status}" + (f": {said[:200]}" if said else "")
    report = HealthReport(status == 200, url, status, latency, sha, version, reason)
    report.model_loaded = _loaded_flag(doc)
    return report, None, isinstance(doc, Mapping)


_LOADED_KEYS = ("model_loaded", "modelLoaded", "model_ready", "modelReady", "loaded")


def _loaded_flag(doc: Any) -> bool | None:
    """A backend that says nothing about *which* model often says *whether* one is loaded
    (the seed's ``{"status": "ok", "model_loaded": true}``): False there is never healthy."""
    if not isinstance(doc, Mapping):
        return None
    flags = [doc[k] for k in _LOADED_KEYS if isinstance(doc.get(k), bool)]
    return all(flags) if flags else None


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
    with httpx.Client(trust_env=_use_proxy_env(url), follow_redirects=False) as client:
        report, _failure, is_json = _probe(client, url, timeout, model_key, version_key)
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
    failure: _Failure | None = None
    with httpx.Client(trust_env=_use_proxy_env(url), follow_redirects=False) as client:
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0 and last is not None:
                break
            report, failure, is_json = _probe(
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
    check = getattr(backend, "check_serving", None)
    if not report.ok or report.skipped or check is None:
        return report
    problem = check()
    if problem:
        report.ok = False
        report.reason = f"{problem}; not verified"
    return report
