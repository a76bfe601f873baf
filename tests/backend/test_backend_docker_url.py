"""Where DockerBackend looks for the engine, per platform, the way the docker CLI does."""

from __future__ import annotations

import hashlib
import json

from clm_tray.core.backend.docker_engine import LINUX_SOCKET, WINDOWS_PIPE, resolve_docker_url


def test_docker_host_wins(tmp_path):
    env = {"DOCKER_HOST": "tcp://10.0.0.5:2375"}
    assert resolve_docker_url(env, tmp_path, "linux") == "tcp://10.0.0.5:2375"


def test_current_context_from_docker_config(tmp_path):
    name = "desktop-linux"
    meta = tmp_path / ".docker" / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Endpoints": {"docker": {"Host": "unix:///ctx/docker.sock"}}}))
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"currentContext": name}))
    assert resolve_docker_url({}, tmp_path, "linux") == "unix:///ctx/docker.sock"
    # DOCKER_CONTEXT overrides config.json; "default" means the platform default.
    assert resolve_docker_url({"DOCKER_CONTEXT": "default"}, tmp_path, "win32") == WINDOWS_PIPE


def test_windows_uses_the_named_pipe(tmp_path):
    assert resolve_docker_url({}, tmp_path, "win32") == "npipe:////./pipe/docker_engine"


def test_macos_falls_back_to_docker_desktops_user_socket(tmp_path):
    sock = tmp_path / ".docker" / "run" / "docker.sock"
    sock.parent.mkdir(parents=True)
    sock.touch()
    url = resolve_docker_url({}, tmp_path, "darwin")
    assert url in (LINUX_SOCKET, f"unix://{sock}")  # the system socket wins where it exists
    from pathlib import Path

    if not Path("/var/run/docker.sock").exists():
        assert url == f"unix://{sock}"


def test_broken_docker_config_falls_back_to_the_default(tmp_path):
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text("{not json")
    assert resolve_docker_url({}, tmp_path, "win32") == WINDOWS_PIPE
