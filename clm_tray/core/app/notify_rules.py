"""Which engine events become desktop notifications, and when a repeat stays silent.

Qt-free so it can be tested on its own; the GUI's notifier only delivers what ``NoticeRules``
hands it. Failures are always on; successes follow ``QT_CLM_NOTIFY_SUCCESS``; the same
message (summary and body) within ``QT_CLM_NOTIFY_THROTTLE_MINUTES`` is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import Outcome
from clm_tray.core.app.wording import pct, points, score, shadow_words
from clm_tray.core.config.secrets import redact

SUCCESS = "success"
WARNING = "warning"
ERROR = "error"

# Buttons a notification can carry: key -> the words on the button. A click runs the action.
OPEN, RESTART, ROLLBACK = "open", "restart", "rollback"
ACTION_TITLES = {OPEN: "Open dashboard", RESTART: "Restart backend", ROLLBACK: "Roll back"}
ON_FAILURE = (OPEN, RESTART, ROLLBACK)
# The summary of a failed cycle's notification, by outcome.
FAILURE_SUMMARY = {Outcome.FAILED: "Retrain failed",
                   Outcome.ROLLED_BACK_AFTER_FAILURE: "Retrain failed, rolled back",
                   Outcome.ROLLBACK_FAILED: "Rollback failed"}


@dataclass(frozen=True)
class Notice:
    """One desktop notification: what it says, how loud it is, where a click leads."""

    summary: str
    body: str
    level: str  # success / warning / error
    view: str  # dashboard tab a click opens: overview / drift / versions / activity
    kind: str = ""  # the event kind it came from
    actions: tuple[str, ...] = ()  # buttons (keys of ACTION_TITLES), failures only

    @property
    def key(self) -> tuple[str, str]:
        return (self.summary, self.body)


class NoticeRules:
    """Turns events into notices and applies the success switch and the repeat throttle.

    Stateful on purpose: while a cycle runs, its own backend checks and automatic rollback
    are not announced separately; the cycle's outcome says it once.
    """

    def __init__(self, notify_success: bool = True, throttle_minutes: float = 30,
                 clock: Callable[[], float] = time.time) -> None:
        self.notify_success = notify_success
        self.throttle_minutes = throttle_minutes
        self.clock = clock
        self._last_sent: dict[tuple[str, str], float] = {}
        self._in_cycle = False

    def configure(self, notify_success: bool, throttle_minutes: float) -> None:
        self.notify_success = notify_success
        self.throttle_minutes = throttle_minutes

    def notice_for(self, event: ev.Event) -> Notice | None:
        """The notice an event deserves (before the switch and the throttle), or None."""
        p, kind = event.payload, event.kind
        if isinstance(p, ev.CycleStarted):
            self._in_cycle = True
            return None
        if isinstance(p, ev.CycleFinished):
            self._in_cycle = False
            if p.outcome == Outcome.NO_EDGE:  # a decision worth knowing, said in words
                summary, _, body = p.reason.partition(": ")
                return Notice(summary or "New model has no edge", body, WARNING, "versions",
                              kind)
            if not p.failed:  # cancelled / unchanged / ...: no alarm
                return None
            return Notice(FAILURE_SUMMARY.get(p.outcome, f"Cycle {p.outcome}"), p.reason, ERROR,
                          "activity", kind, ON_FAILURE)
        if isinstance(p, ev.ModelDeployed):
            verified = " — backend verified" if p.verified else ""
            return Notice(f"Model {p.version or '?'} deployed",
                          f"Test accuracy {pct(p.test_accuracy)}{verified}",
                          SUCCESS, "versions", kind)
        if isinstance(p, ev.ModelRolledBack):
            if self._in_cycle or event.level == "error":
                return None  # an automatic rollback: the cycle's failure notice covers it
            return Notice(f"Rolled back to {p.version or '?'}",
                          f"Replaced {p.from_version or 'the previous model'} ({p.reason})",
                          SUCCESS, "versions", kind)
        if isinstance(p, ev.ChallengerWaiting):
            said = shadow_words(p.shadow)[0]
            if not said and "approval" in p.reason:
                said = "It passed the comparison and waits for you to promote it"
            return Notice(f"New model {p.version or '?'} waiting",
                          said or "It waits before it can be compared", WARNING,
                          "versions", kind)
        if isinstance(p, ev.DriftChecked) and p.drifted:
            body = f"Drift {score(p.score)} — above the alarm level {score(p.threshold)}"
            return Notice("Market data has drifted", body, WARNING, "drift", kind)
        if isinstance(p, ev.PerformanceChecked) and p.degraded:
            acc, test = p.accuracy, p.test_accuracy
            gap = (f", {points(test - acc)} below its test ({pct(test)})"
                   if acc is not None and test is not None else "")
            return Notice("Live accuracy dropped", f"Live {pct(acc)}{gap}",
                          WARNING, "overview", kind)
        if isinstance(p, ev.BackendHealth) and not p.ok and not self._in_cycle:
            return Notice("Backend unhealthy", p.reason, ERROR, "overview", kind, ON_FAILURE)
        return None

    def allow(self, notice: Notice) -> bool:
        """True when this notice should reach the desktop now (and remember that it did)."""
        if notice.level == SUCCESS and not self.notify_success:
            return False
        now = self.clock()
        last = self._last_sent.get(notice.key)
        if last is not None and now - last < self.throttle_minutes * 60:
            return False
        self._last_sent[notice.key] = now
        return True

    def error_notice(self, action: str, message: str) -> Notice:
        """A user action that raised (e.g. Restart backend): said once, like an event."""
        return Notice(f"{action} failed", redact(message), ERROR, "activity", "action", (OPEN,))
