"""The process backend driving the real reference backend: deploy → restart → the backend
reports the new model; a model it cannot load ends in a clear reason; any clm-tray process can
stop the backend another one started, and never a process that merely reuses its pid."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import textwrap

import pytest

from clm_tray.core.backend.factory import make_backend
from clm_tray.core.backend.health import verify_backend
from clm_tray.core.backend.process import ProcessBackend
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import BackendError


def server_command(models, port) -> str:
    return shlex.join([sys.executable, "-m", "clm_tray.core.backend.reference_server",
                       "--models-dir",
                       str(models), "--port", str(port)])


@pytest.fixture
def backend_factory(tmp_path):
    made: list[ProcessBackend] = []

    def make(command: str, stop_timeout: float = 5.0) -> ProcessBackend:
        backend = ProcessBackend(command, log_path=tmp_path / "logs" / "backend.log",
                                 state_dir=tmp_path / "store", stop_timeout=stop_timeout)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.stop()


def test_restart_after_deploy_serves_the_new_model(tmp_path, port, write_model, backend_factory):
    models = tmp_path / "models"
    url = f"http://127.0.0.1:{port}/health"
    model_a = write_model(models, seed=1)
    backend = backend_factory(server_command(models, port))
    backend.preflight()
    backend.start()
    first = verify_backend(url, expect_sha256=model_a.sha256, expect_version=model_a.version,
                           deadline=60)
    assert first.ok, first.reason
    pid_a = backend.pid()

    model_b = write_model(models, seed=2)
    backend.restart()
    second = verify_backend(url, expect_sha256=model_b.sha256, expect_version=model_b.version,
                            deadline=60)
    assert second.ok, second.reason
    assert second.reported_sha256 == model_b.sha256 != model_a.sha256
    assert backend.pid() not in (None, pid_a)

    backend.stop()
    assert not backend.is_running()
    assert not backend.pid_path.exists()
    log = backend.log_path.read_text()
    assert log.count("clm-tray starts") == 2 and "reference backend stopped" in log


def test_model_the_backend_cannot_load_fails_verification_then_previous_is_healthy(
        tmp_path, port, write_model, backend_factory):
    models = tmp_path / "models"
    url = f"http://127.0.0.1:{port}/health"
    good = write_model(models, seed=1)
    backend = backend_factory(server_command(models, port))
    backend.start()
    assert verify_backend(url, expect_sha256=good.sha256, expect_version=None, deadline=60).ok

    bad = write_model(models, seed=2)
    bad.path.write_bytes(bad.path.read_bytes()[:150])  # behind the store's back
    backend.restart()
    report = verify_backend(url, expect_sha256=bad.sha256, expect_version=None, deadline=2.0)
    assert not report.ok
    assert report.status_code == 503
    assert report.reason.startswith(f"{url} answered HTTP 503: ")
    assert "(truncated or replaced?)" in report.reason

    write_model(models, seed=1)  # what a rollback puts back
    backend.restart()
    again = verify_backend(url, expect_sha256=good.sha256, expect_version=None, deadline=60)
    assert again.ok, again.reason


def test_another_clm_tray_process_stops_the_backend_this_one_started(
        tmp_path, port, write_model, backend_factory):
    models = tmp_path / "models"
    write_model(models, seed=1)
    command = server_command(models, port)
    backend = backend_factory(command)
    backend.start()
    assert backend.is_running()
    other = textwrap.dedent(f"""
        from pathlib import Path
        from clm_tray.core.backend.process import ProcessBackend
        b = ProcessBackend({command!r}, log_path=Path({str(backend.log_path)!r}),
                           state_dir=Path({str(backend.state_dir)!r}))
        assert b.is_running()
        b.stop()
        print(b.is_running())
    """)
    done = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert not backend.is_running()


def test_a_reused_pid_is_never_signalled(tmp_path, backend_factory):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        server = "clm_tray.core.backend.reference_server"
        backend = backend_factory(f"{shlex.quote(sys.executable)} -m {server}")
        backend.state_dir.mkdir(parents=True)
        backend.pid_path.write_text(json.dumps({
            "pid": bystander.pid, "argv": ["something", "else"], "command": "something else",
            "started_at": 0, "create_time": 0,
        }))
        assert not backend.is_running()
        backend.stop()
        assert bystander.poll() is None
        assert not backend.pid_path.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_backend_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path, backend_factory):
    script = tmp_path / "stubborn.py"  # run through its shebang: ps shows python in front
    script.write_text(f"#!{sys.executable}\nimport signal, time\n"
                      "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n")
    script.chmod(0o755)
    backend = backend_factory(shlex.quote(str(script)), stop_timeout=0.5)
    backend.start()
    assert backend.is_running()
    backend.stop()
    assert not backend.is_running()


def test_preflight_names_the_setting_and_the_fix(tmp_path, backend_factory):
    with pytest.raises(BackendError, match="needs QT_CLM_BACKEND_COMMAND"):
        backend_factory("").preflight()
    with pytest.raises(BackendError, match="program 'no-such-backend-xyz' not found on PATH"):
        backend_factory("no-such-backend-xyz --port 8000").preflight()
    with pytest.raises(BackendError, match="QT_CLM_BACKEND_COMMAND cannot be split"):
        backend_factory('python "unbalanced').preflight()


def test_a_command_that_dies_at_once_points_at_its_log(tmp_path, backend_factory):
    backend = backend_factory(shlex.join([sys.executable, "-c", "import sys; sys.exit(3)"]))
    with pytest.raises(BackendError, match="exited at once with code 3; see .*backend.log"):
        backend.start()
    assert not backend.pid_path.exists()


def test_make_backend_picks_the_kind_from_settings(tmp_path):
    assert make_backend(Settings(backend="none"), tmp_path).kind == "none"
    process = make_backend(Settings(backend="process", backend_command="x"), tmp_path)
    assert process.kind == "process" and process.pid_path.parent == tmp_path
    docker = make_backend(Settings(backend="docker", docker_container="c1",
                                   docker_stop_timeout=3), tmp_path)
    assert docker.kind == "docker" and docker.container == "c1" and docker.stop_timeout == 3
    assert make_backend(Settings(project_dir=tmp_path), tmp_path).kind == "docker"
