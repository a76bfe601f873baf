"""Desktop notifications observed at the OS service (a real org.freedesktop.Notifications
on a private session bus): a deploy and a failure each raise exactly one Notify, a repeat
within the throttle raises none, and clicking opens the dashboard at the right view."""

from __future__ import annotations

import time

from clm_tray.core.notify_rules import Notice


def settle(qtbot, seconds: float = 0.6) -> None:
    qtbot.wait(int(seconds * 1000))


def test_deploy_and_failure_each_notify_once_and_repeats_are_throttled(
        qtbot, make_tray_app, notifications):
    app = make_tray_app(channel="freedesktop")
    assert app.notifier.channel.name == "freedesktop"

    assert app.controller.retrain()
    qtbot.waitUntil(lambda: not app.runner.is_busy("retrain"), timeout=120_000)
    qtbot.waitUntil(lambda: len(notifications.calls) >= 1, timeout=10_000)
    settle(qtbot)
    assert len(notifications.calls) == 1, [c.summary for c in notifications.calls]
    deployed = notifications.calls[0]
    assert deployed.summary.startswith("Model v0001") and deployed.summary.endswith("deployed")
    assert "Test accuracy" in deployed.body
    assert deployed.app_name == "clm-tray"
    assert "default" in deployed.actions

    data = app.controller.engine.settings.resolved_data_path
    data.write_text("timestamp,symbol\nnot a date,XYZ\n")
    assert app.controller.retrain()
    qtbot.waitUntil(lambda: not app.runner.is_busy("retrain"), timeout=60_000)
    qtbot.waitUntil(lambda: len(notifications.calls) >= 2, timeout=10_000)
    settle(qtbot)
    assert len(notifications.calls) == 2, [c.summary for c in notifications.calls]
    failed = notifications.calls[1]
    assert failed.summary == "Retrain failed"
    assert failed.hints.get("urgency") == 2
    assert app.dashboard is None or "failed" in app.dashboard.banner_text.text()

    # the same failure again, inside QT_CLM_NOTIFY_THROTTLE_MINUTES: nothing reaches the desktop
    assert app.controller.retrain()
    qtbot.waitUntil(lambda: not app.runner.is_busy("retrain"), timeout=60_000)
    settle(qtbot, 1.0)
    assert len(notifications.calls) == 2, [c.summary for c in notifications.calls]

    # clicking the failure opens the dashboard at the activity view
    notifications.click(failed.id)
    qtbot.waitUntil(lambda: app.dashboard is not None and app.dashboard.isVisible(),
                    timeout=10_000)
    assert app.dashboard.current_view() == "activity"


def test_successes_follow_the_setting(qtbot, make_tray_app, notifications):
    app = make_tray_app(channel="freedesktop", notify_success="false")
    ok = Notice("Model v9 deployed", "Test accuracy 55.0 %", "success", "versions")
    assert app.notifier.deliver(ok) is False
    bad = Notice("Backend unhealthy", f"no answer {time.time()}", "error", "overview")
    assert app.notifier.deliver(bad) is True
    qtbot.waitUntil(lambda: len(notifications.calls) == 1, timeout=10_000)
    assert notifications.calls[0].summary == "Backend unhealthy"
