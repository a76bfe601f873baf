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
        d = event.data
        kind = event.kind
        if kind == ev.CYCLE_STARTED:
            self._in_cycle = True
            return None
        if kind == ev.CYCLE_FINISHED:
            self._in_cycle = False
            outcome = str(d.get("outcome") or "failed")
            if outcome == Outcome.NO_EDGE:  # a decision worth knowing, said in words
                summary, _, body = str(d.get("reason") or "").partition(": ")
                return Notice(summary or "New model has no edge", body, WARNING, "versions",
                              kind)
            if not Outcome.is_failure(outcome):  # cancelled / unchanged / ...: no alarm
                return None
            summary = {"failed": "Retrain failed",
                       "failed, rolled back": "Retrain failed, rolled back",
                       "rollback failed": "Rollback failed"}.get(outcome, f"Cycle {outcome}")
            return Notice(summary, str(d.get("reason") or ""), ERROR, "activity", kind,
                          ON_FAILURE)
        if kind == ev.MODEL_DEPLOYED:
            verified = " — backend verified" if d.get("verified") else ""
            return Notice(f"Model {d.get('version', '?')} deployed",
                          f"Test accuracy {pct(d.get('test_accuracy'))}{verified}",
                          SUCCESS, "versions", kind)
        if kind == ev.MODEL_ROLLED_BACK:
            if self._in_cycle or event.level == "error":
                return None  # an automatic rollback: the cycle's failure notice covers it
            return Notice(f"Rolled back to {d.get('version', '?')}",
                          f"Replaced {d.get('from_version') or 'the previous model'} "
                          f"({d.get('reason', '')})", SUCCESS, "versions", kind)
        if kind == ev.CHALLENGER_WAITING:
            said = shadow_words(d.get("shadow"))[0]
            if not said and "approval" in str(d.get("reason") or ""):
                said = "It passed the comparison and waits for you to promote it"
            return Notice(f"New model {d.get('version', '?')} waiting",
                          said or "It waits before it can be compared", WARNING,
                          "versions", kind)
        if kind == ev.DRIFT_CHECKED and d.get("drifted"):
            body = (f"Drift {score(d.get('score'))} — above the alarm level "
                    f"{score(d.get('threshold'))}")
            return Notice("Market data has drifted", body, WARNING, "drift", kind)
        if kind == ev.PERFORMANCE_CHECKED and d.get("degraded"):
            acc, test = d.get("accuracy"), d.get("test_accuracy")
            gap = (f", {points(test - acc)} below its test ({pct(test)})"
                   if isinstance(acc, (int, float)) and isinstance(test, (int, float)) else "")
            return Notice("Live accuracy dropped", f"Live {pct(acc)}{gap}",
                          WARNING, "overview", kind)
        if kind == ev.BACKEND_HEALTH and d.get("ok") is False and not self._in_cycle:
            return Notice("Backend unhealthy", str(d.get("reason") or ""), ERROR,
                          "overview", kind, ON_FAILURE)
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
