"""Desktop notifications observed at the OS service (a real org.freedesktop.Notifications
on a private session bus): a deploy and a failure each raise exactly one Notify, a repeat
within the throttle raises none, and clicking opens the dashboard at the right view."""

from __future__ import annotations

import time

# Imported here, at collection, not inside a test: a test module imported while the
# notification thread runs is parsed (assertion rewriting) concurrently with it, which
# CPython 3.11's AST recursion counter does not survive.
from test_tray_app import emit_from_engine_thread

from clm_tray.core.app import events as ev
from clm_tray.core.app.notify_rules import Notice
from clm_tray.core.app.status import Outcome


def settle(qtbot, seconds: float = 0.6) -> None:
    qtbot.wait(int(seconds * 1000))


def test_deploy_and_failure_each_notify_once_and_repeats_are_throttled(
        qtbot, make_tray_app, notifications):
    app = make_tray_app(channel="desktop")
    assert app.notifier.channel.name == "desktop"

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
    assert app.dashboard is None or "failed" in app.dashboard.messages.banner_text.text()

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
    app = make_tray_app(channel="desktop", notify_success="false")
    ok = Notice("Model v9 deployed", "Test accuracy 55.0 %", "success", "versions")
    assert app.notifier.deliver(ok) is False
    bad = Notice("Backend unhealthy", f"no answer {time.time()}", "error", "overview")
    assert app.notifier.deliver(bad) is True
    qtbot.waitUntil(lambda: len(notifications.calls) == 1, timeout=10_000)
    assert notifications.calls[0].summary == "Backend unhealthy"


def test_failure_notifications_carry_actions_and_clicking_one_runs_it(
        qtbot, make_tray_app, notifications):
    """A real session bus, a recording notification service that emits ActionInvoked like a
    desktop does when a button is clicked: the app runs the action the button names."""
    app = make_tray_app(channel="desktop")
    bus = app.controller.engine.bus

    def fail(reason: str):  # noqa: ANN202
        before, sent = len(notifications.calls), len(app.notifier.channel.sent)
        emit_from_engine_thread(
            bus, ev.CycleFinished(outcome=Outcome.FAILED, reason=reason, ok=False), "error")
        qtbot.waitUntil(lambda: len(notifications.calls) > before, timeout=10_000)
        # ... and the app has the service's answer (the id its buttons are matched by): a
        # click that arrives before it is dropped, as it would be on a desktop
        qtbot.waitUntil(lambda: len(app.notifier.channel.sent) > sent, timeout=10_000)
        return notifications.calls[-1]

    first = fail("the backend did not answer (1)")
    assert first.summary == "Retrain failed"
    pairs = dict(zip(first.actions[::2], first.actions[1::2], strict=True))
    assert pairs["restart"] == "Restart backend"
    assert pairs["rollback"] == "Roll back"
    assert pairs["open"] == "Open dashboard"

    with qtbot.waitSignal(app.controller.info, timeout=30_000) as restarted:
        notifications.click(first.id, "restart")
    assert "restart" in restarted.args[0].lower()

    second = fail("the backend did not answer (2)")
    with qtbot.waitSignal(app.controller.error, timeout=30_000) as rolled:
        notifications.click(second.id, "rollback")
    # nothing to roll back to on a fresh workspace: the engine itself said so
    assert rolled.args[0].startswith("Rollback failed") and "no previous version" in rolled.args[0]
    assert not app.runner.is_busy("rollback")

    third = fail("the backend did not answer (3)")
    notifications.click(third.id, "open")
    qtbot.waitUntil(lambda: app.dashboard is not None and app.dashboard.isVisible(),
                    timeout=10_000)
    assert app.dashboard.current_view() == "activity"
