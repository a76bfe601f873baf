"""The demo workspace: created once, reused, and moved off a port someone else took."""

from __future__ import annotations

import socket

from clm_tray.core.settings import load_settings
from clm_tray.core.workspace import ensure_workspace


def test_workspace_is_created_then_reused_and_its_env_points_inside(tmp_path):
    ws = ensure_workspace(tmp_path / "demo", symbols=3, bars=120)
    assert ws.created and ws.data_path.stat().st_size > 0
    s = load_settings(ws.env_file, environ={}, cwd=tmp_path).settings
    assert s.resolved_data_path == ws.data_path
    assert s.resolved_deploy_dir == ws.deploy_dir
    assert s.resolved_store_dir == (ws.root / "store")
    assert s.resolved_backend == "process" and str(ws.port) in s.health_url
    assert "backend serve" in s.backend_command

    before = ws.data_path.read_bytes()
    again = ensure_workspace(tmp_path / "demo", symbols=3, bars=120)
    assert again.root == ws.root and again.data_path.read_bytes() == before


def test_a_taken_port_moves_the_demo_backend_to_a_free_one(tmp_path):
    ws = ensure_workspace(tmp_path / "demo", symbols=3, bars=120)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ws.port))
        squatter.listen()
        moved = ensure_workspace(tmp_path / "demo", symbols=3, bars=120)
    assert moved.port != ws.port
    s = load_settings(moved.env_file, environ={}, cwd=tmp_path).settings
    assert s.health_url == f"http://127.0.0.1:{moved.port}/health"
    assert f"--port {moved.port}" in s.backend_command
