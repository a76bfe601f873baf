"""The whole loop through the Engine with real backends: the reference backend as a process
on 127.0.0.1, and a container on a real Docker engine. Deploy → restart → the backend reports
the new sha256; a model it cannot load → automatic, verified rollback; Docker down → nothing
deployed."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from clm_tray.core.demo.feed import feed
from clm_tray.core.fsutil import sha256_file


def _process_engine(engine_factory, small_workspace, port, **extra):
    models = small_workspace / "models"
    command = shlex.join([sys.executable, "-m", "clm_tray.core.backend.reference_server",
                          "--models-dir",
                          str(models), "--host", "127.0.0.1", "--port", str(port)])
    settings = {"backend": "process", "backend_command": command,
                "health_url": f"http://127.0.0.1:{port}/health", "health_timeout": 30}
    return engine_factory(**{**settings, **extra})


def test_process_backend_reports_each_new_champion(engine_factory, small_workspace, port):
    engine = _process_engine(engine_factory, small_workspace, port, shadow_min=1,
                             shadow_logloss_tol=10)
    try:
        first = engine.retrain()
        assert first.outcome == "deployed", first.reason
        a = engine.store.get(first.version)
        assert engine.health().reported_sha256 == a.sha256

        feed(small_workspace / "data" / "train.csv", hours=48)
        second = engine.retrain()
        assert second.outcome == "deployed", second.reason
        b = engine.store.get(second.version)
        report = engine.health()
        assert report.ok and report.reported_sha256 == b.sha256 != a.sha256
        assert report.reported_version == b.id
        assert second.health is not None and second.health.reported_sha256 == b.sha256
    finally:
        engine.backend().stop()


def test_model_the_backend_cannot_load_is_rolled_back_and_verified(engine_factory,
                                                                   small_workspace, port,
                                                                   tmp_path):
    engine = _process_engine(engine_factory, small_workspace, port, health_timeout=8)
    try:
        good = engine.retrain()
        assert good.outcome == "deployed", good.reason
        champion = engine.store.get(good.version)
        # A version whose bytes are truncated but whose manifest matches them: it passes the
        # store's sha256 check, and only the backend can tell it is broken.
        broken = tmp_path / "broken.ubj"
        broken.write_bytes(champion.model_path.read_bytes()[: champion.size // 2])
        manifest = {k: v for k, v in champion.manifest.items()
                    if k not in ("id", "model_sha256", "model_size")}
        bad = engine.store.add_version(broken, manifest)

        res = engine.promote(bad.id)

        assert not res.ok and res.outcome == "failed, rolled back", res.reason
        assert bad.id in res.reason and champion.id in res.reason
        deployed = small_workspace / "models" / "xgb_model.ubj"
        assert sha256_file(deployed) == champion.sha256
        report = engine.health()
        assert report.ok and report.reported_sha256 == champion.sha256
        rec = engine.history.last_cycle()
        assert rec.outcome == "failed, rolled back"
        assert [a["attempt"] for a in rec.attempts] == ["deploy", "rollback"]
        assert rec.attempts[0]["ok"] is False and rec.attempts[1]["ok"] is True
        assert engine.store.aliases()["champion"] == champion.id
        log = (small_workspace / "models" / "retraining_log.txt").read_text().splitlines()
        assert log[-1].split(" - ", 1)[1].startswith("Retraining failed:")
    finally:
        engine.backend().stop()


def test_restart_backend_command_verifies_the_deployed_model(engine_factory, small_workspace,
                                                             port):
    import subprocess

    engine = _process_engine(engine_factory, small_workspace, port)
    try:
        res = engine.retrain()
        assert res.outcome == "deployed", res.reason
        out = subprocess.run([sys.executable, "-m", "clm_tray", "restart-backend", "--json"],
                             cwd=small_workspace, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        d = json.loads(out.stdout)
        assert d["ok"] and d["reported_sha256"] == engine.store.get(res.version).sha256
    finally:
        engine.backend().stop()


@pytest.mark.docker
def test_docker_backend_through_the_engine(engine_factory, small_workspace, run_container,
                                           monkeypatch):
    box = run_container(small_workspace / "models")
    monkeypatch.setenv("DOCKER_HOST", box.engine_url)
    engine = engine_factory(backend="docker", docker_container=box.name,
                            health_url=box.health_url, health_timeout=30, shadow_min=1,
                            shadow_logloss_tol=10, docker_stop_timeout=2)
    first = engine.retrain()
    assert first.outcome == "deployed", first.reason
    feed(small_workspace / "data" / "train.csv", hours=48)
    second = engine.retrain()
    assert second.outcome == "deployed", second.reason
    b = engine.store.get(second.version)
    assert second.health is not None and second.health.reported_sha256 == b.sha256
    assert second.health.restarted is True  # the container's StartedAt moved
    assert engine.store.get(first.version).sha256 != b.sha256


@pytest.mark.docker
def test_docker_down_refuses_before_deploying(engine_factory, small_workspace, private_dockerd,
                                              rootfs_tar, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", private_dockerd.url)
    engine = engine_factory(backend="docker", docker_container="quantum_backend_prod")
    private_dockerd.stop()
    res = engine.retrain()
    assert not res.ok and res.outcome == "failed"
    assert res.reason.startswith("pre-flight: Docker is not running")
    assert "\n" not in res.reason
    assert not (small_workspace / "models" / "xgb_model.ubj").exists()
    assert engine.store.aliases()["challenger"] == res.version


def test_health_says_when_the_backend_runs_another_model_than_deployed(engine_factory,
                                                                      health_peer, send):
    """`clm-tray health` judges the answer like the post-deploy check does: a backend still
    serving an old model is not healthy, and the reason names both sha256s."""
    engine = engine_factory()  # backend none while deploying: files only
    deployed = engine.retrain()
    assert deployed.outcome == "deployed", deployed.reason
    sha = engine.store.get(deployed.version).sha256
    url = health_peer(lambda handler, release: send(handler, 200, {
        "status": "ok", "model_sha256": "0" * 64}))
    stale = engine_factory(backend="process", backend_command="true", health_url=url).health()
    assert not stale.ok
    assert stale.reason == f"backend reports model sha256 {'0' * 12}… but deployed {sha[:12]}…"
