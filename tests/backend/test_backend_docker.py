"""A real Docker engine (no mocks): deploy a new model into the bind-mounted models folder,
restart the container through DockerBackend, and verify the backend reports the new sha256;
a stopped engine or a missing container is a one-line pre-flight refusal."""

from __future__ import annotations

import json
import time

import pytest

from clm_tray.core.backend.docker_engine import DockerBackend, resolve_docker_url
from clm_tray.core.backend.health import verify_backend
from clm_tray.core.errors import BackendError

pytestmark = pytest.mark.docker


def deploy_through_the_store(tmp_path, models, seed, write_model):
    """Install a model the way the cycle does (store + Deployer) when those modules exist."""
    try:
        from clm_tray.core.registry.deploy import Deployer
        from clm_tray.core.registry.store import ModelStore
    except ImportError:  # pragma: no cover - before deploy.py existed
        deployed = write_model(models, seed=seed)
        return deployed.sha256, deployed.version
    scratch = write_model(tmp_path / f"trained-{seed}", seed=seed)
    store = ModelStore(tmp_path / "store")
    version = store.add_version(scratch.path, {"features": ["f0", "f1", "f2"], "target": "t"})
    result = Deployer(store, models).install(version, reason="test")
    return result.sha256, result.version


def test_restart_container_then_backend_reports_the_new_model(tmp_path, write_model,
                                                              run_container):
    models = tmp_path / "models"
    sha_a, version_a = deploy_through_the_store(tmp_path, models, 1, write_model)
    box = run_container(models)
    first = verify_backend(box.health_url, expect_sha256=sha_a, expect_version=version_a,
                           deadline=20)
    assert first.ok, first.reason

    sha_b, version_b = deploy_through_the_store(tmp_path, models, 2, write_model)
    backend = DockerBackend(box.name, stop_timeout=5, base_url=box.engine_url)
    backend.preflight()
    started = time.monotonic()
    backend.restart()
    report = verify_backend(box.health_url, expect_sha256=sha_b, expect_version=version_b,
                            deadline=20)
    assert report.ok, report.reason
    assert report.reported_sha256 == sha_b != sha_a
    assert report.reported_version == version_b
    assert time.monotonic() - started < 10  # --init: the restart is quick
    assert backend.is_running()


def test_restart_waits_for_the_containers_healthcheck(tmp_path, write_model, run_container):
    models = tmp_path / "models"
    write_model(models, seed=1)
    box = run_container(models, healthcheck=True)
    backend = DockerBackend(box.name, stop_timeout=5, health_wait=30, base_url=box.engine_url)
    backend.restart()
    box.container.reload()
    assert box.container.health == "healthy"


def test_unhealthy_container_after_restart_is_a_backend_error(tmp_path, run_container):
    box = run_container(tmp_path / "empty-models", healthcheck=True)  # no model → 503 → wget fails
    backend = DockerBackend(box.name, stop_timeout=5, health_wait=15, base_url=box.engine_url)
    with pytest.raises(BackendError, match=f"container {box.name} is (unhealthy|starting)"):
        backend.restart()


def test_missing_container_is_named_in_the_preflight_error(docker_engine):
    backend = DockerBackend("clm-no-such-container", base_url=docker_engine)
    with pytest.raises(BackendError) as err:
        backend.preflight()
    assert str(err.value) == (
        f"no container named clm-no-such-container on {docker_engine}; check "
        "QT_CLM_DOCKER_CONTAINER (docker ps -a lists them).")
    assert not backend.is_running()


def test_dead_socket_is_docker_not_running(tmp_path):
    url = f"unix://{tmp_path / 'docker.sock'}"
    with pytest.raises(BackendError) as err:
        DockerBackend("quantum_backend_prod", base_url=url).preflight()
    assert str(err.value) == (
        f"Docker is not running (tried {url}); start Docker Desktop / the docker service, "
        "or set QT_CLM_BACKEND=none.")


def test_stopping_the_daemon_turns_preflight_into_a_refusal(tmp_path, private_dockerd,
                                                            rootfs_tar):
    import docker

    client = docker.DockerClient(base_url=private_dockerd.url, timeout=60)
    client.api.import_image_from_data(rootfs_tar, repository="clm-test-backend", tag="1",
                                      changes=['ENTRYPOINT ["/entrypoint.sh"]'])
    (tmp_path / "models").mkdir()
    client.containers.create("clm-test-backend:1", name="quantum_backend_prod",
                             network_mode="none", volumes={str(tmp_path / "models"): {
                                 "bind": "/models", "mode": "ro"}})
    client.close()
    backend = DockerBackend("quantum_backend_prod", base_url=private_dockerd.url)
    backend.preflight()  # engine up, container there

    private_dockerd.stop()
    with pytest.raises(BackendError) as err:
        backend.preflight()
    assert str(err.value).startswith(f"Docker is not running (tried {private_dockerd.url})")
    assert not backend.is_running()


def test_docker_host_and_current_context_are_honoured(tmp_path, docker_engine, monkeypatch):
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    config = tmp_path / "dotdocker"
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    (config / "contexts" / "meta" / "abc123").mkdir(parents=True)
    (config / "config.json").write_text(json.dumps({"currentContext": "clm-test"}))
    (config / "contexts" / "meta" / "abc123" / "meta.json").write_text(json.dumps(
        {"Name": "clm-test", "Endpoints": {"docker": {"Host": docker_engine}}}))
    assert resolve_docker_url() == docker_engine
    with pytest.raises(BackendError, match="no container named clm-nope"):
        DockerBackend("clm-nope").preflight()  # reached the engine through the context

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(BackendError, match=r"Docker is not running \(tried unix:///nonexistent"):
        DockerBackend("clm-nope").preflight()
