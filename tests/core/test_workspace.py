"""The demo workspace: created once, reused, and moved off a port someone else took."""

from __future__ import annotations

import socket

from clm_tray.core.config.sources import load_settings
from clm_tray.core.config.workspace import ensure_workspace


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


def test_the_demo_never_takes_port_8000_and_keeps_its_port_per_workspace(tmp_path):
    ws = ensure_workspace(tmp_path / "demo", symbols=3, bars=120)
    assert ws.port != 8000
    again = ensure_workspace(tmp_path / "demo", symbols=3, bars=120)
    assert again.port == ws.port and not again.created
    # a workspace made by an older clm-tray on 8000 (the trader's real backend) moves off it
    text = ws.env_file.read_text().replace(f":{ws.port}", ":8000").replace(
        f"--port {ws.port}", "--port 8000")
    ws.env_file.write_text(text)
    moved = ensure_workspace(tmp_path / "demo", symbols=3, bars=120)
    assert moved.port == ws.port
    assert "8000" not in moved.env_file.read_text()


def test_headless_demo_leaves_its_backend_running_says_so_and_demo_stop_stops_it(tmp_path):
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    ws = ensure_workspace(tmp_path / "demo", symbols=6, bars=300)
    env = dict(os.environ, QT_CLM_N_ESTIMATORS="40", QT_CLM_TRAIN_THREADS="1")
    env.pop("CLM_TRAY_BACKEND_OWNER", None)
    stop_cmd = [sys.executable, "-m", "clm_tray", "demo", "stop", "--workspace", str(ws.root)]
    try:
        run = subprocess.run([sys.executable, "-m", "clm_tray", "demo", "--headless", "--workspace",
                              str(ws.root)], env=env, capture_output=True, text=True, timeout=180)
        # (a demo this small may find no edge and deploy nothing: exit 1, backend says 503)
        last = run.stdout.strip().splitlines()[-1]
        assert "keeps running (pid " in last and "clm-tray demo stop" in last
        pid = int(last.split("(pid ")[1].split(")")[0])
        url = f"http://127.0.0.1:{ws.port}/health"
        try:  # still serving after the command returned
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert resp.status == 200
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
    finally:  # never leave a backend behind, even when an assertion above fails
        stop = subprocess.run(stop_cmd, env=env, capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0 and f"pid {pid}" in stop.stdout, stop.stdout + stop.stderr
    try:
        urllib.request.urlopen(url, timeout=2)
        raise AssertionError("the backend still answers after `clm-tray demo stop`")
    except urllib.error.HTTPError as exc:
        raise AssertionError("the backend still answers after `clm-tray demo stop`") from exc
    except OSError:
        pass
