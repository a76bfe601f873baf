"""The tray icon: state at a glance, a tooltip with the numbers, a menu built when opened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from clm_tray.core.status import Health
from clm_tray.gui.controller import Controller, Snapshot
from clm_tray.gui.icons import state_icon


def hhmm(ts: float | None) -> str:
    if not ts:
        return ""
    when = datetime.fromtimestamp(ts)
    if when.date() == datetime.now().date():
        return when.strftime("%H:%M")
    return when.strftime("%a %H:%M")


def age_text(hours: float | None) -> str:
    if hours is None:
        return "no model"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def next_check(snap: Snapshot) -> float | None:
    runs = [j.next_run for j in snap.status.scheduler.jobs if j.next_run]
    return min(runs) if runs else None


def status_line(controller: Controller) -> str:
    """The disabled first menu line: what is happening, or when something happens next."""
    snap = controller.snapshot
    if controller.cycle_running:
        stage, progress, _ = controller.stage
        return f"Retraining: {stage} ({progress * 100:.0f} %)"
    if snap is None:
        return controller.start_error and f"Engine error: {controller.start_error}" \
            or "Starting…"
    sched = snap.status.scheduler
    if sched.paused:
        until = f" until {hhmm(sched.paused_until)}" if sched.paused_until else ""
        return f"Paused{until} — {sched.paused_reason}"
    if snap.status.health in (Health.ERROR, Health.ATTENTION) or not sched.running:
        return snap.status.summary
    nxt = next_check(snap)
    return f"Next check {hhmm(nxt)}" if nxt else snap.status.summary


def tooltip_text(controller: Controller) -> str:
    snap = controller.snapshot
    lines = ["clm-tray"]
    if controller.cycle_running:
        stage, progress, message = controller.stage
        lines.append(f"Retraining: {stage} ({progress * 100:.0f} %) {message}".rstrip())
    if snap is None:
        lines.append(status_line(controller))
        return "\n".join(lines)
    st = snap.status
    champ = st.champion
    if champ is not None:
        lines.append(f"Model {champ.id} · {age_text(st.age_hours)} old")
        lines.append(f"Test accuracy {pct(champ.test_accuracy)}")
    else:
        lines.append("No model deployed yet")
    b = st.backend
    if b is None:
        lines.append("Backend: not checked yet")
    elif b.get("skipped"):
        lines.append("Backend: not checked (files only)")
    else:
        lat = b.get("latency_ms")
        lat_txt = f" ({lat:.0f} ms)" if isinstance(lat, (int, float)) else ""
        lines.append(f"Backend: {'healthy' if b.get('ok') else 'UNHEALTHY'}{lat_txt}")
    nxt = next_check(snap)
    if st.scheduler.paused:
        lines.append(status_line(controller))
    elif nxt:
        lines.append(f"Next check {hhmm(nxt)}")
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

        retrain = self.menu.addAction("Retrain now")
        retrain.triggered.connect(lambda: c.retrain())
        retrain.setEnabled(ready and not c.cycle_running and not runner.is_busy("retrain"))
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
