"""One tray app per user: a second `clm-tray gui` hands over and exits; the first raises its
dashboard."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from clm_tray.gui.single_instance import ENV_NAME, SingleInstance


def test_second_launch_hands_over_and_the_first_raises_its_dashboard(
        qtbot, make_tray_app, small_workspace):
    name = f"clm-tray-test-{uuid.uuid4().hex[:10]}"
    first = SingleInstance(name)
    assert first.listen()
    app = make_tray_app()
    app.instance = first
    first.message.connect(app._on_instance_message)
    assert app.dashboard is None

    env = {**os.environ, ENV_NAME: name, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "clm_tray", "gui"], cwd=small_workspace,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30_000)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "already running" in out
    qtbot.waitUntil(lambda: app.dashboard is not None and app.dashboard.isVisible(),
                    timeout=5_000)
    first.close()


def test_with_no_other_instance_hand_over_says_so(qapp):
    lone = SingleInstance(f"clm-tray-test-{uuid.uuid4().hex[:10]}")
    assert lone.hand_over("show", timeout_ms=200) is False
