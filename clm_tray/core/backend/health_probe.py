"""One HTTP request to a backend's health URL, and what its answer says.

The transport side of health checking, kept apart from the rules that judge an answer
(``backend.health``): every phase of the request bounded by one timeout, redirects only to
the same origin, at most 1 MiB read, the proxy skipped for a local backend, and each way of
getting no usable answer told apart (refused, hung, redirect, oversized, broken) so the
caller can say in one line why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from clm_tray.core.app.status import HealthReport

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_MAX_BODY = 1 << 20  # a health answer is small; never read more than 1 MiB of it
_MAX_REDIRECTS = 5


def health_client(url: str) -> httpx.Client:
    """The client for ``url``: no proxy for a local backend, redirects judged by ``_get``."""
    return httpx.Client(trust_env=use_proxy_env(url), follow_redirects=False)


def _lookup(doc: Any, key: str) -> str | None:
    """``key`` may be dotted (``model.sha256``) for backends that nest their answer."""
    for part in key.split("."):
        if not isinstance(doc, Mapping) or part not in doc:
            return None
        doc = doc[part]
    return None if doc is None or isinstance(doc, (dict, list)) else str(doc)


def use_proxy_env(url: str) -> bool:
    """A local backend is never reached through HTTP(S)_PROXY."""
    return (urlsplit(url).hostname or "") not in _LOOPBACK


class ProbeFailure(Exception):
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
                        raise ProbeFailure("redirect", f"redirected to {nxt.scheme}://{nxt.host}"
                                       f"{':' + str(nxt.port) if nxt.port else ''}; only "
                                       "redirects to the same scheme, host and port are followed")
                    target = str(nxt)
                    continue
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_BODY:
                        raise ProbeFailure("oversized", "health answer larger than 1 MiB")
                    if time.monotonic() - started > timeout:
                        raise ProbeFailure("hung", "answer still arriving when the time ran out")
                return resp.status_code, body
        raise ProbeFailure("redirect", f"more than {_MAX_REDIRECTS} redirects")
    except httpx.ConnectTimeout as exc:
        raise ProbeFailure("hung", "connect timed out") from exc
    except httpx.TimeoutException as exc:
        raise ProbeFailure("hung", "no reply") from exc
    except httpx.ConnectError as exc:
        text = str(exc).lower()
        detail = "connection refused" if "refused" in text else (str(exc) or "cannot connect")
        raise ProbeFailure("refused", detail) from exc
    except httpx.HTTPError as exc:  # protocol errors, closed connections, bad URLs
        raise ProbeFailure("broken", f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc


def probe_once(
    client: httpx.Client, url: str, timeout: float, model_key: str, version_key: str
) -> tuple[HealthReport, ProbeFailure | None, bool]:
    """One request; also returns why it got no usable answer (None when it got one) and
    whether the body was a JSON object (what a model identity can be read from)."""
    started = time.monotonic()
    try:
        status, body = _get(client, url, timeout)
    except ProbeFailure as failure:
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
