"""Plain words for what the engine knows: the one place numbers become text.

Percentages, decimals, ages, intervals, sizes, row counts, clock times, and the sentences built
from the engine's
reports (live accuracy, drift, backend, shadow test, progress) are written here once, so the
tray, the dashboard, the notifications and the CLI cannot disagree. Sentences a trader
reads say what it means ("below always-guessing"); the figures behind them (p-values,
setting names, PSI method) go into a ``detail`` for a tooltip or details pane.

Qt-free on purpose: the notifier rules in core use it too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime

from clm_tray.core.app.status import (
    IDENTITY_NOT_REPORTED,
    BackendUnknown,
    EngineStatus,
    ShadowResult,
)

ADOPTED = "not measured (adopted model)"  # clm-tray did not train it: no figures invented

DASH = "–"


# ---- numbers ------------------------------------------------------------------------------
def pct(x: object) -> str:
    """An accuracy or share: always a percentage with one decimal ("55.2 %")."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return DASH
    return f"{x * 100:.1f} %"


def points(x: float) -> str:
    """A difference of two percentages, in percentage points ("6.3 points")."""
    return f"{abs(x) * 100:.1f} points"


def count(n: int, noun: str) -> str:
    """'4,823 new rows', '1 new row'."""
    if n == 1 and noun.endswith("s"):
        noun = noun.replace("rows", "row", 1) if "rows" in noun else noun[:-1]
    return f"{n:,} {noun}"


def decimal(x: object, places: int = 3) -> str:
    """A figure that is no percentage (AUC, a p-value, a drift score): fixed decimals."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return DASH
    return f"{x:.{places}f}"


def score(x: object) -> str:
    """A drift score: three decimals everywhere it is shown."""
    return decimal(x, 3)


def latency(ms: object) -> str:
    """How fast the backend answered: '12 ms'."""
    return f"{ms:.0f} ms" if isinstance(ms, (int, float)) and not isinstance(ms, bool) else DASH


def size(n: float | None) -> str:
    """A file size: '512 B', '1.4 MB'."""
    if n is None:
        return DASH
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # not reached


def age(hours: float | None) -> str:
    """How old a model is: minutes under an hour, hours (whole from 10 h) under two days,
    then days."""
    if hours is None:
        return "no model"
    if hours < 1:
        return f"{max(0.0, hours) * 60:.0f} min"
    if hours < 10:
        return f"{hours:.1f} h"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.1f} days"


def interval(seconds: float) -> str:
    """How often or how long ago, exactly: '40 min', '6.0 h', '3.5 days'."""
    h = seconds / 3600
    if h < 1:
        return f"{seconds / 60:.0f} min"
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def ago(ts: float | None, now: float | None = None) -> str:
    """How long ago something happened: '12 min ago', '3.4 h ago', 'never'."""
    if not ts:
        return "never"
    mins = ((now if now is not None else time.time()) - ts) / 60
    return f"{mins:.0f} min ago" if mins < 120 else f"{mins / 60:.1f} h ago"


def duration(seconds: float | None) -> str:
    """Time left or taken: 'about 20 s', 'about 3 min'."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds)):.0f} s"
    return f"about {round(seconds / 60):.0f} min"


def clock(ts: float | None, now: float | None = None) -> str:
    """A time of day ('14:30'), with the weekday when it is not today ('Tue 14:30')."""
    if not ts:
        return ""
    when = datetime.fromtimestamp(ts)
    today = datetime.fromtimestamp(now).date() if now else datetime.now().date()
    return when.strftime("%H:%M") if when.date() == today else when.strftime("%a %H:%M")


def when(ts: float | str | None) -> str:
    """A date and time in a table: '2026-11-28 14:30' (an ISO text is shortened the same)."""
    if ts is None or ts == "":
        return DASH
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
    return str(ts).replace("T", " ")[:16]


# ---- what is running ------------------------------------------------------------------------
STAGES = {
    "starting": "starting", "load": "loading data", "train": "training",
    "version": "saving the new version", "shadow": "comparing with the current model",
    "deploy": "installing the model", "restart": "restarting the backend",
    "verify": "checking the backend", "record": "finishing", "recover": "recovering",
}


def work_name(trigger: str) -> str:
    """What a running cycle is, in the user's words: rollback and promote are named so."""
    t = (trigger or "").lower()
    if "rollback" in t or "roll back" in t:
        return "Rolling back"
    if "promote" in t:
        return "Promoting"
    return "Retraining"


def stage_line(trigger: str, stage: str, progress: float, message: str = "",
               seconds_left: float | None = None) -> str:
    """The one line the header, the progress strip, the tray tooltip and menu all show."""
    words = STAGES.get(stage, stage or "starting")
    line = f"{work_name(trigger)} — {words} ({progress * 100:.0f} %)"
    if stage == "train" and message.startswith("round "):
        line += f" · {message}"
    left = duration(seconds_left)
    return f"{line} · {left} left" if left else line


# ---- sentences from reports -----------------------------------------------------------------
def shadow_words(shadow: ShadowResult | None) -> tuple[str, str]:
    """(plain sentence, detail) for a shadow-test result."""
    if shadow is None:
        return "", ""
    decision, rows, need = shadow.decision, shadow.rows, shadow.min_rows or 0
    cand, champ = shadow.candidate_accuracy, shadow.champion_accuracy
    detail = shadow.reason
    if decision == "wait":
        if need > rows:
            more = count(need - rows, "more rows with a known outcome")
            return f"New model waits for {more} before it can be compared", detail
        return "New model waits to be compared", detail
    if decision == "reject":
        if shadow.reason.startswith("probable leakage"):
            return "New model not used: it looks too good to be true (probable leak)", detail
        return (f"New model not used: worse than the current one ({pct(cand)} vs "
                f"{pct(champ)})"), detail
    if decision == "promote":
        if champ is None:
            return "New model used: there was no model yet", detail
        if isinstance(cand, (int, float)) and isinstance(champ, (int, float)) and cand >= champ:
            return f"New model used: better ({pct(cand)} vs {pct(champ)})", detail
        return (f"New model used: no clear difference ({pct(cand)} vs {pct(champ)})",
                detail)
    return decision, detail


@dataclass(frozen=True)
class Facts:
    """Every figure shown in more than one place, as text, made once per snapshot.

    The cards, the tray tooltip and menu, and the drift tab all read these, so the same
    figure is always the same text. ``*_detail`` texts are for tooltips only.
    """

    age: str  # "45 min old" ('' without a model)
    test: str  # "Test accuracy 55.2 %"
    live: str  # "Live 48.9 % — below always-guessing (51.0 %)" / "Live not measured yet …"
    live_detail: str
    new_rows: str  # "4,823 new rows since training" ('' before the first drift check)
    drift: str  # "Drift 0.031 — normal (alarm above 0.250)" / "Drift not measured yet …"
    drift_detail: str
    backend: str  # "Healthy" / "Unhealthy" / "Not checked yet" / "Not checked (files only)"
    backend_detail: str
    live_bad: bool = False
    drift_bad: bool = False


def _live(status: EngineStatus) -> tuple[str, str, bool]:
    champ, perf = status.champion, status.performance
    if champ is None:
        return "Live not measured (no model yet)", "", False
    if champ.adopted:
        return f"Live {ADOPTED}", perf.reason if perf else "", False
    if perf is None:
        return "Live not measured yet", "", False
    detail = perf.reason
    if perf.version and perf.version != champ.id:
        return f"Live not measured yet for {champ.id}", detail, False
    acc, base = perf.accuracy, perf.baseline
    if not perf.enough:
        need, has = perf.min_rows, perf.rows
        if need:
            return (f"Live not measured yet (needs {need:,} known outcomes, has {has:,})",
                    "Live accuracy needs new rows whose next bar has arrived. " + detail,
                    False)
        return "Live not measured yet (too few new rows)", detail, False
    if acc is None:
        return "Live not measured yet", detail, False
    detail = f"measured on {perf.rows:,} known outcomes since training; {detail}".strip("; ")
    if base is not None and acc < base:
        return f"Live {pct(acc)} — below always-guessing ({pct(base)})", detail, True
    test = perf.test_accuracy
    if perf.degraded and test is not None:
        return (f"Live {pct(acc)} — {points(test - acc)} below its test ({pct(test)})",
                detail, True)
    if base is not None:
        return f"Live {pct(acc)} — above always-guessing ({pct(base)})", detail, False
    return f"Live {pct(acc)}", detail, False


def _drift(status: EngineStatus) -> tuple[str, str, str, bool]:
    d = status.drift
    if status.champion is not None and status.champion.adopted:
        return f"Drift {ADOPTED}", d.reason if d else "", "", False
    if d is None:
        return "Drift not measured yet", "", "", False
    rows = d.window_rows
    new_rows = f"{count(rows, 'new rows')} since training"
    checked = clock(d.checked_at)
    detail = (f"Importance-weighted PSI on the training data's quantile bins over "
              f"{count(rows, 'rows')}" + (f", checked {checked}" if checked else "") + ". "
              + d.reason)
    if not d.enough:
        need = d.min_rows
        text = (f"Drift not measured yet (needs {need:,} new rows, has {rows:,})" if need
                else f"Drift not measured yet (has {count(rows, 'new rows')})")
        return text, detail, new_rows, False
    if d.drifted:
        return (f"Drift {score(d.score)} — above the alarm level {score(d.threshold)}", detail,
                new_rows, True)
    return (f"Drift {score(d.score)} — normal (alarm above {score(d.threshold)})", detail,
            new_rows, False)


def _backend(status: EngineStatus) -> tuple[str, str]:
    b = status.backend
    if b is None:
        return "Not checked yet", ""
    if isinstance(b, BackendUnknown):  # the deploy folder changed after the last check
        detail = f"{b.url or ''}, checked {clock(b.checked_at)}".strip(", ")
        return "Unknown", f"{b.reason} ({detail})"
    if b.skipped:
        return "Not checked (files only)", ("No backend is set up: clm-tray installs the model "
                                            "files only. " + b.reason)
    detail = f"{b.url}, checked {clock(b.checked_at)}".strip(", ")
    if b.ok and b.identity == IDENTITY_NOT_REPORTED:
        return "Healthy (model not reported)", f"{b.reason} ({detail})"
    if b.ok:
        return "Healthy", detail
    return "Unhealthy", f"{b.reason} ({detail})"


def facts(status: EngineStatus) -> Facts:
    """The shared figures of one snapshot, as text."""
    champ = status.champion
    live, live_detail, live_bad = _live(status)
    drift, drift_detail, new_rows, drift_bad = _drift(status)
    backend, backend_detail = _backend(status)
    return Facts(
        age=f"{age(status.age_hours)} old" if champ is not None else "",
        test=("" if champ is None else f"Test accuracy {ADOPTED}"
              if getattr(champ, "adopted", False) else f"Test accuracy {pct(champ.test_accuracy)}"),
        live=live, live_detail=live_detail, live_bad=live_bad,
        new_rows=new_rows, drift=drift, drift_detail=drift_detail, drift_bad=drift_bad,
        backend=backend, backend_detail=backend_detail,
    )
