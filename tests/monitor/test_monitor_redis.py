"""The Redis mirror against a real redis-server: stream, outage, fallback, reconnect."""

from __future__ import annotations

import json
import threading
import time

import pytest

from clm_tray.core.app.events import BUS_INFO, BUS_WARNING, CycleStage, DemoFed, EventBus
from clm_tray.core.app.redis_mirror import (
    EventStreamError,
    RedisMirror,
    follow_events,
    read_events,
)
from clm_tray.core.errors import ConfigError
from clm_tray.core.serialize import to_jsonable

pytestmark = pytest.mark.redis
STREAM = "clm:test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stream_events(server) -> list[dict]:
    client = server.client()
    try:
        return [json.loads(fields["event"]) for _, fields in client.xrange(STREAM)]
    finally:
        client.close()


def _bus(server, clock=None, **kw) -> tuple[EventBus, RedisMirror]:
    bus = EventBus()
    bus.mirror = RedisMirror(server.url, STREAM, bus, clock=clock or time.monotonic, **kw)
    return bus, bus.mirror


def test_every_event_reaches_the_stream_in_order(redis_server):
    bus, mirror = _bus(redis_server)
    for i in range(25):
        bus.emit(CycleStage(stage=f"s{i}", progress=i / 25))
    stored = _stream_events(redis_server)
    assert [e["data"]["stage"] for e in stored] == [f"s{i}" for i in range(25)]
    assert stored[0]["kind"] == "cycle.stage" and stored[0]["level"] == "info"
    assert [to_jsonable(e) for e in bus.recent()] == stored
    client = redis_server.client()
    _, fields = client.xrange(STREAM, count=1)[0]
    assert fields["kind"] == "cycle.stage" and fields["level"] == "info"
    client.close()
    assert mirror.connected and mirror.pending == 0
    bus.close()


def test_stream_length_is_capped(redis_server):
    bus, _ = _bus(redis_server, maxlen=50)
    for i in range(1000):
        bus.emit(DemoFed(rows=i))
    client = redis_server.client()
    length = client.xlen(STREAM)
    client.close()
    assert 50 <= length < 300  # MAXLEN ~ trims whole stream nodes (100 entries each)


def test_killed_redis_falls_back_to_memory_once_and_flushes_after_restart(redis_server):
    clock = FakeClock()
    bus, mirror = _bus(redis_server, clock=clock, retry_seconds=5)
    seen = []
    bus.subscribe(seen.append)
    for i in range(5):
        bus.emit(CycleStage(stage=f"before{i}"))
    assert len(_stream_events(redis_server)) == 5

    redis_server.kill()
    started = time.monotonic()
    for i in range(20):
        bus.emit(CycleStage(stage=f"during{i}"))
        clock.now += 0.4  # 8 s of fake time: one retry (5 s after the failure), no new warning
    assert time.monotonic() - started < 2.0  # the engine was never held up

    warnings = [e for e in bus.recent() if e.kind == BUS_WARNING]
    assert len(warnings) == 1
    assert warnings[0].level == "warning"
    assert warnings[0].data["message"] == (
        f"Redis at {redis_server.url} unreachable; events stay in memory")
    stages = [e.data.get("stage") for e in bus.recent() if e.kind == "cycle.stage"]
    assert stages == [f"before{i}" for i in range(5)] + [f"during{i}" for i in range(20)]
    assert seen == bus.recent()  # subscribers got everything, warning included
    assert not mirror.connected and mirror.pending == 21  # 20 events + the warning

    redis_server.start()  # same port, empty (no persistence)
    clock.now += 0.5  # the retry was at +5.2 s: the next one is due at +10.2 s
    bus.emit(CycleStage(stage="after0"))  # inside the retry gap: still buffered
    assert _stream_events(redis_server) == []
    clock.now += 10
    bus.emit(CycleStage(stage="after1"))
    stored = _stream_events(redis_server)
    kinds = [e["kind"] for e in stored]
    stages = [e["data"].get("stage") for e in stored]
    assert stages[:1] == ["during0"]
    assert kinds.count(BUS_WARNING) == 1 and kinds.count(BUS_INFO) == 1
    assert [s for s in stages if s] == [f"during{i}" for i in range(20)] + ["after0", "after1"]
    assert stored[-1]["kind"] == BUS_INFO and "reachable again" in stored[-1]["data"]["message"]
    # the buffered events went to Redis exactly as they were published
    published = [to_jsonable(e) for e in bus.recent()][5:]
    assert stored == published
    assert mirror.connected and mirror.pending == 0
    assert len([e for e in bus.recent() if e.kind == BUS_WARNING]) == 1


def test_unreachable_from_the_start_never_blocks(redis_server):
    port = redis_server.port
    redis_server.kill()
    bus = EventBus()
    bus.mirror = RedisMirror(f"redis://127.0.0.1:{port}/0", STREAM, bus, retry_seconds=60)
    started = time.monotonic()
    for i in range(200):
        bus.emit(DemoFed(rows=i))
    assert time.monotonic() - started < 1.0
    assert [e.kind for e in bus.recent()].count(BUS_WARNING) == 1
    assert len(bus.recent()) == 201
    bus.close()


def test_buffer_is_bounded_and_reconnect_says_what_was_dropped(redis_server):
    clock = FakeClock()
    bus, mirror = _bus(redis_server, clock=clock, buffer_max=10)
    redis_server.kill()
    for i in range(30):
        bus.emit(DemoFed(rows=i))
    assert mirror.pending == 10
    redis_server.start()
    clock.now += 60
    bus.emit(DemoFed(rows=30))
    stored = _stream_events(redis_server)
    assert [e["data"]["rows"] for e in stored if e["kind"] == "demo.fed"] == list(range(21, 31))
    assert "dropped (buffer full)" in stored[-1]["data"]["message"]


def test_read_events_and_follow(redis_server):
    bus, _ = _bus(redis_server)
    for i in range(10):
        bus.emit(DemoFed(rows=i))
    client = redis_server.client()
    client.xadd(STREAM, {"something": "else"})  # a foreign entry is skipped, not fatal
    client.close()
    last = read_events(redis_server.url, STREAM, count=3)
    assert [e.data["rows"] for e in last] == [8, 9]
    everything = read_events(redis_server.url, STREAM, count=100, last_id="0")
    assert [e.data["rows"] for e in everything] == list(range(10))
    assert everything[0] == bus.recent()[0]

    stop = threading.Event()
    got = []

    def follow() -> None:
        for event in follow_events(redis_server.url, STREAM, block_ms=100, stop=stop):
            got.append(event.data["rows"])
            if len(got) == 3:
                stop.set()

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.monotonic() + 10
    i = 100
    while reader.is_alive() and time.monotonic() < deadline:
        bus.emit(DemoFed(rows=i))
        i += 1
        time.sleep(0.05)
    stop.set()
    reader.join(timeout=5)
    assert len(got) == 3 and all(r >= 100 for r in got) and got == sorted(got)


def test_read_events_from_a_dead_redis_is_one_line_error(redis_server):
    redis_server.kill()
    with pytest.raises(EventStreamError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 is unr"):
        read_events(redis_server.url, STREAM)


def test_bad_url_is_a_config_error():
    with pytest.raises(ConfigError, match="QT_CLM_REDIS_URL"):
        RedisMirror("localhost:6379", STREAM, EventBus())


def test_publishing_from_many_threads_loses_nothing(redis_server):
    bus, _ = _bus(redis_server)

    def worker(n: int) -> None:
        for i in range(50):
            bus.emit(DemoFed(rows=n * 1000 + i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = _stream_events(redis_server)
    assert len(stored) == 200
    for n in range(4):
        assert [e["data"]["rows"] % 1000 for e in stored
                if e["data"]["rows"] // 1000 == n] == list(range(50))
