"""Copy every bus event to a Redis stream, and read them back for ``clm-tray events``.

Redis is optional and may come and go; the engine must not notice beyond one warning. So the
mirror uses short socket timeouts and no client-side retries, keeps events it could not send
in a bounded in-memory buffer, and tries Redis again at most every ``retry_seconds`` (on the
next publish). On reconnect the buffer is flushed in order and one info event says so.

Stream entries have three fields: ``kind``, ``level`` and ``event`` (the JSON of
``serialize.to_jsonable(event)``); ``event`` is the one readers decode. The stream is capped with
``XADD ... MAXLEN ~ maxlen``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from clm_tray.core.app.events import BusInfo, BusWarning, Event, EventBus
from clm_tray.core.config.secrets import redact
from clm_tray.core.errors import ClmError, ConfigError
from clm_tray.core.serialize import dumps, from_jsonable

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 0.5
RETRY_SECONDS = 5.0
FLUSH_BATCH = 500


class EventStreamError(ClmError):
    """The Redis event stream cannot be read."""


def _client(url: str, timeout: float) -> redis.Redis:
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            decode_responses=True,
        )
    except ValueError as exc:  # its text may quote part of the password: not shown
        raise ConfigError(
            f"QT_CLM_REDIS_URL {redact(url)!r} is not a Redis URL; use "
            "redis://user:password@host:port/db (percent-encode / # ? @ : in the password, "
            "e.g. %2F) or leave it empty."
        ) from exc


def _fields(event: Event) -> dict[str, str]:
    return {
        "kind": event.kind,
        "level": event.level,
        "event": dumps(event, sort_keys=False),
    }


class RedisMirror:
    """An ``events.Mirror`` that XADDs each event to a Redis stream and never fails the bus.

    Attach with ``bus.mirror = RedisMirror(url, stream, bus)``. ``publish`` never raises and
    blocks at most about ``socket_timeout`` (a connect attempt) every ``retry_seconds`` while
    Redis is down. Unsent events wait in a buffer of ``buffer_max`` (oldest dropped beyond it;
    the reconnect event says how many). A write that reached Redis just as the connection broke
    may be sent twice after reconnecting; none is lost while the buffer has room.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        bus: EventBus,
        maxlen: int = 10000,
        *,
        socket_timeout: float = SOCKET_TIMEOUT,
        retry_seconds: float = RETRY_SECONDS,
        buffer_max: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.stream = stream
        self.maxlen = maxlen
        self.retry_seconds = retry_seconds
        self._bus = bus
        self._clock = clock
        self._client = _client(url, socket_timeout)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._pending: deque[Event] = deque(maxlen=buffer_max)
        self._dropped = 0
        self._down = False
        self._next_try = 0.0
        self._closed = False

    @property
    def connected(self) -> bool:
        """False from the first failed write until a later one succeeds."""
        return not self._down

    @property
    def pending(self) -> int:
        """Events waiting in memory for Redis to come back."""
        return len(self._pending)

    def publish(self, event: Event) -> None:
        try:
            self._publish(event)
        except Exception:  # the bus must never fail because of the mirror
            log.exception("Redis mirror failed on %s", event.kind)

    def _publish(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return
            if len(self._pending) == self._pending.maxlen:
                self._dropped += 1
            self._pending.append(event)
            if getattr(self._local, "busy", False):
                return  # our own warning/info event: sent with the buffer, in order
            if self._down and self._clock() < self._next_try:
                return
            was_down, dropped = self._down, self._dropped
            ok = self._flush()
            if ok:
                self._down, self._dropped = False, 0
                announce = (
                    (BusInfo, "info",
                     f"Redis at {self.url} reachable again; buffered events sent"
                     + (f", {dropped} dropped (buffer full)" if dropped else ""))
                    if was_down else None
                )
            else:
                self._next_try = self._clock() + self.retry_seconds
                self._down = True
                announce = (
                    None if was_down else
                    (BusWarning, "warning", f"Redis at {self.url} unreachable; "
                     "events stay in memory")
                )
        if announce is not None:
            self._announce(*announce)

    def _announce(self, kind: type[BusWarning], level: str, message: str) -> None:
        self._local.busy = True
        try:
            self._bus.emit(kind(message=message, url=self.url, stream=self.stream), level)
        finally:
            self._local.busy = False
        with self._lock:
            if not self._down:
                self._flush()  # send the announcement now; if that fails it waits in the buffer

    def _flush(self) -> bool:
        """Send buffered events oldest first; False (and they stay buffered) on failure."""
        try:
            while self._pending:
                batch = [self._pending[i] for i in range(min(FLUSH_BATCH, len(self._pending)))]
                pipe = self._client.pipeline(transaction=False)
                for event in batch:
                    pipe.xadd(self.stream, _fields(event), maxlen=self.maxlen, approximate=True)
                pipe.execute()
                for _ in batch:
                    self._pending.popleft()
            return True
        except (redis.RedisError, OSError) as exc:
            log.debug("Redis at %s unreachable: %s", self.url, exc)
            try:
                self._client.connection_pool.disconnect()
            except Exception:
                pass
            return False

    def close(self) -> None:
        """Try one last time to send what is buffered, then drop the connection."""
        with self._lock:
            if self._closed:
                return
            if self._pending and not self._down:
                self._flush()
            self._closed = True
            try:
                self._client.close()
            except Exception:
                pass


# ---- reading the stream back -----------------------------------------------------------------


def _decode(fields: dict[str, Any]) -> Event | None:
    try:
        return from_jsonable(Event, json.loads(fields["event"]))
    except (KeyError, TypeError, ValueError):
        return None


def _unreachable(url: str, exc: Exception) -> EventStreamError:
    return EventStreamError(
        f"Redis at {url} is unreachable ({exc}); start it or unset QT_CLM_REDIS_URL."
    )


def _read(
    url: str, stream: str, count: int, block_ms: int | None, last_id: str | None
) -> list[tuple[str, Event | None]]:
    """Stream entries as (entry id, event or None when not ours), oldest first."""
    timeout = SOCKET_TIMEOUT * 4 + (block_ms or 0) / 1000
    client = _client(url, timeout)
    try:
        if last_id is None:
            raw = list(reversed(client.xrevrange(stream, count=count)))
        else:
            reply = client.xread({stream: last_id}, count=count, block=block_ms)
            raw = reply[0][1] if reply else []
    except (redis.RedisError, OSError) as exc:
        raise _unreachable(url, exc) from exc
    finally:
        client.close()
    return [(entry_id, _decode(fields)) for entry_id, fields in raw]


def read_events(
    url: str,
    stream: str,
    count: int = 50,
    block_ms: int | None = None,
    last_id: str | None = None,
) -> list[Event]:
    """Events from the stream, oldest first, for ``clm-tray events``.

    ``last_id=None``: the newest ``count`` events. Otherwise up to ``count`` events after that
    entry id (``"0"`` = from the start, ``"$"`` = only events added while waiting, which needs
    ``block_ms``). Entries that are not clm-tray events are skipped. Raises EventStreamError
    when Redis cannot be reached.
    """
    return [e for _, e in _read(url, stream, count, block_ms, last_id) if e is not None]


def follow_events(
    url: str,
    stream: str,
    start: str = "$",
    *,
    block_ms: int = 1000,
    stop: threading.Event | None = None,
) -> Iterator[Event]:
    """Yield events as they arrive (``clm-tray events --follow``) until ``stop`` is set.

    ``start="$"`` follows only new events, ``"0"`` replays the stream first. Raises
    EventStreamError when Redis goes away.
    """
    last_id = start
    if start == "$":  # pin the position now, so nothing added between reads is missed
        latest = _latest_id(url, stream)
        last_id = latest if latest is not None else "0"
    while stop is None or not stop.is_set():
        for entry_id, event in _read(url, stream, 100, block_ms, last_id):
            last_id = entry_id
            if event is not None:
                yield event


def _latest_id(url: str, stream: str) -> str | None:
    client = _client(url, SOCKET_TIMEOUT * 4)
    try:
        newest = client.xrevrange(stream, count=1)
    except (redis.RedisError, OSError) as exc:
        raise _unreachable(url, exc) from exc
    finally:
        client.close()
    return newest[0][0] if newest else None
