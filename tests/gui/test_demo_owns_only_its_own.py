"""The demo never touches what it does not own (issue 13, point 9), on a real X display.

A running demo tray keeps its backend and its .env when a second `clm-tray demo` starts (the
second one hands over and exits), and when the X display dies the backend it started stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from xvfb import start_xvfb

from clm_tray.core.config.workspace import ensure_workspace

CI = os.environ.get("CI", "").lower() == "true"


def answers(url: str) -> bool:
    """The backend is up (a 503 "no model yet" counts: the tiny demo may not deploy)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_for(check, timeout: float, what: str) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def backend_pid(ws: Path) -> int | None:
    rec = ws / "store" / "backend.pid.json"
    return json.loads(rec.read_text())["pid"] if rec.exists() else None


def test_second_demo_hands_over_and_the_backend_stops_when_the_display_dies(tmp_path):
    display = start_xvfb()
    if display is None:
        if CI:
            pytest.fail("CI=true but Xvfb is not installed (apt-get install xvfb)")
        pytest.skip("Xvfb is not installed")
    ws = ensure_workspace(tmp_path / "demo", symbols=6, bars=300)
    env = dict(os.environ, DISPLAY=display.name, QT_QPA_PLATFORM="xcb",
               CLM_TRAY_INSTANCE_NAME=f"clm-tray-test-{os.getpid()}-{time.time_ns()}",
               QT_CLM_N_ESTIMATORS="40", QT_CLM_TRAIN_THREADS="1")
    env.pop("CLM_TRAY_BACKEND_OWNER", None)
    cmd = [sys.executable, "-m", "clm_tray", "demo", "--workspace", str(ws.root)]
    url = f"http://127.0.0.1:{ws.port}/health"
    assert ws.port != 8000
    tray = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: answers(url) and backend_pid(ws.root) is not None, 90,
                 "the demo backend")
        env_before = ws.env_file.read_bytes()
        pid = backend_pid(ws.root)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already running" in second.stdout
        assert ws.env_file.read_bytes() == env_before
        assert backend_pid(ws.root) == pid and answers(url)

        display.kill()  # the X session ends under the app's feet
        tray.wait(60)
        wait_for(lambda: not psutil.pid_exists(pid) or
                 psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 15,
                 "the demo backend to stop with its app")
        assert not answers(url)
    finally:
        display.kill()
        if tray.poll() is None:
            tray.kill()
        subprocess.run([sys.executable, "-m", "clm_tray", "demo", "stop", "--workspace",
                        str(ws.root)], env=env, capture_output=True, timeout=60)
