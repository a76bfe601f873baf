"""The engine with QT_CLM_REDIS_URL against a real redis-server: a cycle's events land in the
stream and `clm-tray events` prints them; with Redis gone the cycle still deploys."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clm_tray.core.app import events as ev

pytestmark = pytest.mark.redis


def test_a_cycle_is_published_to_the_stream_and_events_prints_it(engine_factory,
                                                                  small_workspace,
                                                                  redis_server):
    engine = engine_factory(redis_url=redis_server.url)
    res = engine.retrain()
    assert res.outcome == "deployed", res.reason
    entries = redis_server.client().xrange("clm:events")
    kinds = [fields["kind"] for _id, fields in entries]
    assert kinds[0] == ev.CYCLE_STARTED and ev.CYCLE_FINISHED in kinds
    assert ev.MODEL_DEPLOYED in kinds and kinds.count(ev.CYCLE_STAGE) >= 5

    out = subprocess.run([sys.executable, "-m", "clm_tray", "events", "-n", "200"],
                         cwd=small_workspace, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "QT_CLM_REDIS_URL": redis_server.url})
    assert out.returncode == 0, out.stderr
    assert "cycle.finished" in out.stdout and "outcome=deployed" in out.stdout


def test_redis_gone_the_cycle_still_deploys_with_one_warning(engine_factory, redis_server):
    engine = engine_factory(redis_url=redis_server.url)
    redis_server.kill()
    seen: list[ev.Event] = []
    engine.bus.subscribe(seen.append)
    res = engine.retrain()
    assert res.outcome == "deployed", res.reason
    warnings = [e for e in seen if e.kind == ev.BUS_WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].data.get("message", "")
    kinds = [e.kind for e in engine.bus.recent()]
    assert ev.CYCLE_STARTED in kinds and ev.CYCLE_FINISHED in kinds
