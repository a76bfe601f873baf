"""Drives the real tray app on a real X display, as a user would (run by
test_real_desktop.py in its own process, because the test process's Qt is offscreen).

Clicks Retrain now, Cancel, Roll back (answering the confirmation) and a notification's
"Restart backend" button (through a recording org.freedesktop.Notifications service that
emits ActionInvoked), saving a screenshot after each step into ``sys.argv[2]``. Prints one
JSON line of what it saw.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from notify_service import NotificationService  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from clm_tray.core.app import events as ev  # noqa: E402
from clm_tray.core.app.service import Engine  # noqa: E402
from clm_tray.core.config.sources import load_settings  # noqa: E402
from clm_tray.core.demo.feed import feed  # noqa: E402
from clm_tray.gui.app import TrayApp, make_application  # noqa: E402


def main() -> int:
    workspace, shots = Path(sys.argv[1]), Path(sys.argv[2])
    shots.mkdir(parents=True, exist_ok=True)
    qapp = make_application()
    service = NotificationService()
    service.start(os.environ["DBUS_SESSION_BUS_ADDRESS"])
    engine = Engine(load_settings(workspace / ".env", cwd=workspace))
    app = TrayApp(engine.loaded, notify_channel="desktop")
    app.start(scheduler=False, engine=engine)
    seen: dict[str, object] = {"tray": app.has_tray}

    def wait(check, what: str, timeout: float = 180.0) -> None:  # noqa: ANN001
        sys.stderr.write(f"waiting for {what}\n")
        end = time.monotonic() + timeout
        while not check():
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what} (stage {app.controller.stage})")
            qapp.processEvents()
            time.sleep(0.02)

    def shot(name: str) -> None:
        for _ in range(5):
            qapp.processEvents()
        app.dashboard.flush()
        app.dashboard.grab().save(str(shots / f"{name}.png"))
        qapp.primaryScreen().grabWindow(0).save(str(shots / f"{name}-screen.png"))

    wait(lambda: app.controller.snapshot is not None, "the first snapshot")
    dash = app.open_dashboard("overview")
    idle = lambda: not app.runner.is_busy("retrain")  # noqa: E731

    # Retrain now, twice (the second on new rows, so there is something to roll back to)
    dash.retrain_button.click()
    wait(lambda: dash.progress_strip.isVisible(), "the progress strip")
    shot("1-retraining")
    wait(idle, "the first retrain")
    feed(engine.settings.resolved_data_path, hours=30)
    dash.retrain_button.click()
    wait(idle, "the second retrain")
    seen["versions"] = [v.id for v in engine.versions()]
    shot("2-two-versions")

    # Retrain now (on a few new bars: unchanged data is no reason to train), then Cancel
    feed(engine.settings.resolved_data_path, hours=3)
    os.environ["CLM_TRAY_TRAIN_SLEEP"] = "60"
    dash.retrain_button.click()
    wait(lambda: app.controller.stage[0] == "train", "the training stage")
    shot("3-training")
    dash.cancel_button.click()
    wait(idle, "the cancelled retrain to end")
    os.environ.pop("CLM_TRAY_TRAIN_SLEEP")
    seen["cancelled"] = engine.history_rows(1)[0].outcome + ": " + engine.history_rows(1)[0].reason

    # Roll back from the versions tab, answering Yes
    dash.show_view("versions")
    app.controller.refresh()
    wait(lambda: len(dash.versions.table.keys) == len(engine.versions()), "the versions table")
    previous = next(v.id for v in engine.versions() if v.status == "previous")
    dash.versions.select_version(previous)

    def yes() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(QMessageBox.StandardButton.Yes).click()
        else:
            QTimer.singleShot(20, yes)

    QTimer.singleShot(20, yes)
    dash.versions.rollback_button.click()
    wait(lambda: not app.runner.is_busy("rollback"), "the rollback")
    wait(lambda: dash.messages.done_notice.isVisible(), "the rollback notice")
    seen["rolled_back_to"] = engine.store.aliases()["champion"]
    seen["previous"] = previous
    seen["notice"] = dash.messages.done_notice.text()
    shot("4-rolled-back")

    # A failure notification; its "Restart backend" button is clicked on the desktop
    infos: list[str] = []
    errors: list[str] = []
    app.controller.info.connect(infos.append)
    app.controller.error.connect(errors.append)
    engine.bus.emit(ev.BackendHealth(ok=False, url=engine.settings.health_url, status_code=None,
                                     latency_ms=None, reported_sha256=None,
                                     reported_version=None, reason="no answer on :1"),
                    level="error")
    wait(lambda: any(c.summary == "Backend unhealthy" for c in service.calls),
         "the failure notification")
    failure = next(c for c in service.calls if c.summary == "Backend unhealthy")
    seen["actions"] = failure.actions
    # The click travels over D-Bus to desktop-notifier's listener. After a long test session
    # the first click has been seen to get no answer within 180 s (not reproduced alone), so
    # click again if nothing happened, and say on stderr how many clicks it took.
    for clicks in range(1, 4):
        service.click(failure.id, "restart")
        try:
            wait(lambda: bool(infos) or bool(errors), "the restart after the button", 60.0)
            break
        except SystemExit:
            if clicks == 3:
                raise
    sys.stderr.write(f"restart answered after {clicks} click(s): {(infos or errors)[-1]}\n")
    if not infos:
        raise SystemExit(f"the restart after the button failed: {errors[-1]}")
    seen["restart"] = infos[-1]
    shot("5-after-notification-action")
    seen["notifications"] = [c.summary for c in service.calls]

    app.quit(quit_app=False)
    service.stop()
    print(json.dumps(seen), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
