"""The tray icon: state at a glance, a tooltip with the numbers, a menu built when opened."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from clm_tray.core.app import wording
from clm_tray.core.app.status import Health
from clm_tray.core.app.wording import clock
from clm_tray.gui.controller import Controller
from clm_tray.gui.icons import state_icon
from clm_tray.gui.snapshot import Snapshot

APP_TITLE = "clm-tray"


CHECK_JOBS = ("age", "drift", "performance")  # the demo's data feed is not a check


def next_check(snap: Snapshot) -> float | None:
    runs = [j.next_run for j in snap.status.scheduler.jobs
            if j.next_run and j.name in CHECK_JOBS]
    return min(runs) if runs else None


def status_line(controller: Controller) -> str:
    """The disabled first menu line: what is happening, or when something happens next."""
    snap = controller.snapshot
    if controller.cycle_running:
        return controller.stage_text()
    if snap is None:
        return controller.start_error and f"Engine error: {controller.start_error}" \
            or "Starting…"
    sched = snap.status.scheduler
    if sched.paused:
        until = f" until {clock(sched.paused_until)}" if sched.paused_until else ""
        return f"Paused{until} — {sched.paused_reason}"
    if snap.status.health in (Health.ERROR, Health.ATTENTION) or not sched.running:
        return snap.status.summary
    nxt = next_check(snap)
    return f"Next check {clock(nxt)}" if nxt else snap.status.summary


def tooltip_text(controller: Controller) -> str:
    """The tray tooltip: the same facts, in the same words, as the dashboard's cards."""
    snap = controller.snapshot
    lines = [APP_TITLE]
    if controller.cycle_running:
        lines.append(controller.stage_text())
    if snap is None:
        if not controller.cycle_running:
            lines.append(status_line(controller))
        return "\n".join(lines)
    st, f = snap.status, snap.facts
    champ = st.champion
    if champ is not None:
        lines.append(f"Model {champ.id} · {f.age}")
        lines.append(f"{f.test} · {f.live}")
    else:
        lines.append("No model deployed yet")
    lines.append(f"Backend: {f.backend.lower()}")
    lines.append(f.drift)
    nxt = next_check(snap)
    if st.scheduler.paused:
        lines.append(status_line(controller))
    elif nxt:
        lines.append(f"Next check {clock(nxt)}")
    if not controller.cycle_running and st.health != Health.HEALTHY:
        lines.append(st.summary)
    return "\n".join(lines)


class Tray(QObject):
    """QSystemTrayIcon + the menu; asks the app to open the dashboard or settings."""

    def __init__(self, controller: Controller, *, open_dashboard: Callable[[str], None],
                 open_settings: Callable[[], None], quit_app: Callable[[], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._open_dashboard = open_dashboard
        self._open_settings = open_settings
        self._quit = quit_app
        self.state: Health = controller.health
        self.icon = QSystemTrayIcon(state_icon(self.state), self)
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        controller.health_changed.connect(self.set_state)
        controller.snapshot_changed.connect(lambda _s: self.update_tooltip())
        controller.progress.connect(lambda *_a: self.update_tooltip())
        controller.running_changed.connect(lambda _r: self.update_tooltip())
        self.rebuild_menu()
        self.update_tooltip()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def set_state(self, health: Health) -> None:
        if health != self.state:
            self.state = Health(health)
            self.icon.setIcon(state_icon(self.state))
        self.update_tooltip()

    def update_tooltip(self) -> None:
        self.icon.setToolTip(tooltip_text(self.controller))

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            self._open_dashboard("")

    def action(self, text: str) -> QAction:
        """The menu item with this text (tests and accessibility tools use it)."""
        for a in self.menu.actions():
            if a.text() == text:
                return a
        raise KeyError(text)

    def rebuild_menu(self) -> None:
        """Recreate the menu from the current state (called each time it opens)."""
        c = self.controller
        runner = c.runner
        for a in self.menu.actions():
            runner.unbind(a)
        self.menu.clear()
        snap = c.snapshot
        ready = c.engine is not None

        line = self.menu.addAction(status_line(c))
        line.setEnabled(False)
        self.menu.addSeparator()
        self.menu.addAction("Open dashboard").triggered.connect(lambda: self._open_dashboard(""))
        self.menu.addSeparator()

        if c.cycle_running:  # Cancel is always one click away, here and in the window
            cancel = self.menu.addAction(f"Cancel {wording.work_name(c.work).lower()}")
            cancel.triggered.connect(c.cancel)
            cancel.setEnabled(not runner.is_busy("cancel"))
            runner.bind("cancel", cancel)
        else:
            retrain = self.menu.addAction("Retrain now")
            retrain.triggered.connect(lambda: c.retrain())
            retrain.setEnabled(ready and not runner.is_busy("retrain"))
            runner.bind("retrain", retrain)

        has_previous = bool(snap and any(v.status == "previous" for v in snap.versions))
        rollback = self.menu.addAction("Roll back to previous…")
        rollback.triggered.connect(lambda: c.rollback(None))
        rollback.setEnabled(ready and has_previous and not runner.is_busy("rollback"))
        runner.bind("rollback", rollback)

        restart = self.menu.addAction("Restart backend")
        restart.triggered.connect(c.restart_backend)
        restart.setEnabled(ready and not runner.is_busy("restart"))
        runner.bind("restart", restart)

        paused = bool(snap and snap.status.scheduler.paused)
        if paused:
            resume = self.menu.addAction("Resume checks")
            resume.triggered.connect(c.resume)
            resume.setEnabled(ready)
        else:
            sub = self.menu.addMenu("Pause checks")
            for text, hours in (("For 1 hour", 1.0), ("For 4 hours", 4.0),
                                ("Until I resume", None)):
                sub.addAction(text).triggered.connect(lambda _=False, h=hours: c.pause(h))
            sub.setEnabled(ready)
        self.menu.addSeparator()
        self.menu.addAction("Settings…").triggered.connect(self._open_settings)
        self.menu.addAction("Open logs folder").triggered.connect(c.open_logs)
        self.menu.addSeparator()
        self.menu.addAction("Quit").triggered.connect(self._quit)
