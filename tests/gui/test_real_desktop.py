"""The real desktop (Xvfb + a tray + a private session bus + a recording notification
service): Retrain now, Cancel, Roll back and a notification button, clicked as a user
would; screenshots of each step are kept as CI artifacts (CLM_TRAY_ARTIFACTS, which
.ci/run sets and prints)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from notify_service import start_private_bus
from xvfb import start_xvfb

CI = os.environ.get("CI", "").lower() == "true"
DRIVER = Path(__file__).parent / "desktop_driver.py"


def test_retrain_cancel_rollback_and_a_notification_button_on_a_real_desktop(
        tmp_path, small_workspace):
    display = start_xvfb("1600x1000x24")
    # its own bus: the driver's notification service must own the name, and the session's
    # test service may already hold it on the shared one
    bus = start_private_bus(tmp_path) if display is not None else None
    if display is None or bus is None:
        if display is not None:
            display.kill()
        if CI:
            pytest.fail("CI=true but Xvfb or dbus-daemon is missing")
        pytest.skip("needs Xvfb and dbus-daemon")
    shots = Path(os.environ.get("CLM_TRAY_ARTIFACTS") or tmp_path / "shots") / "real-desktop"
    with (small_workspace / ".env").open("a") as env_file:
        env_file.write("QT_CLM_SHADOW_MIN=50\n")
    env = dict(os.environ, DISPLAY=display.name, QT_QPA_PLATFORM="xcb",
               DBUS_SESSION_BUS_ADDRESS=bus.address,
               CLM_TRAY_INSTANCE_NAME=f"clm-tray-desktop-{time.time_ns()}")
    tray = None
    if shutil.which("trayer"):
        tray = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype",
                                 "request", "--height", "32"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    try:
        run = subprocess.run([sys.executable, str(DRIVER), str(small_workspace), str(shots)],
                             env=env, capture_output=True, text=True, timeout=400,
                             cwd=small_workspace)
    finally:
        if tray is not None:
            tray.kill()
            tray.wait(5)
        display.kill()
        bus.stop()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["tray"] is (tray is not None)
    assert len(seen["versions"]) == 2
    assert "cancel" in seen["cancelled"].lower()
    assert seen["rolled_back_to"] == seen["previous"]
    assert seen["notice"].startswith(f"Rolled back to {seen['previous']}")
    assert "restart" in seen["actions"] and "rollback" in seen["actions"]
    assert "restart" in seen["restart"].lower()
    assert "Backend unhealthy" in seen["notifications"]
    for name in ("1-retraining", "2-two-versions", "3-training", "4-rolled-back",
                 "5-after-notification-action"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
