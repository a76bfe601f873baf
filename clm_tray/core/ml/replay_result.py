"""What a replay found, as plain data (see ``replay.py`` for how it is found).

Kept apart from ``replay.py`` on purpose: the tray runs the replay in a worker process and
gets this result back over a pipe, so the class must be importable without pandas, numpy or
XGBoost (the tray's process never imports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

POLICIES = ("configured", "never", "always")


@dataclass
class ReplayPeriod:
    """One day (hourly data) or month (daily data) of realized accuracy."""

    start: str  # ISO-8601 UTC start of the period
    accuracy: float  # fraction of the period's rows the deployed model got right
    rows: int
    baseline: float = 0.0  # always guessing the majority class, same rows


@dataclass
class PolicyResult:
    """One policy's realized accuracy on the rows that arrived after each deploy."""

    name: str  # "configured" | "never" | "always"
    accuracy: float
    retrains: int  # candidates trained
    deploys: int  # candidates that became the deployed model
    periods: list[ReplayPeriod] = field(default_factory=list)
    gated: int = 0  # no edge over always-guessing (the edge gate)
    rejected: int = 0  # worse than the deployed model in the shadow test, or leaky
    failed: int = 0  # too little data to train at that moment
    rule: str = ""  # the policy in one plain sentence
    triggers: dict[str, int] = field(default_factory=dict)  # retrains by reason (configured)
    deploy_times: list[str] = field(default_factory=list)


@dataclass
class ReplayResult:
    """The three policies side by side on one timeline, plus the always-guess baseline."""

    rows: int  # rows scored (those at or after ``start``)
    baseline_accuracy: float
    policies: list[PolicyResult]
    start: str = ""
    end: str = ""
    period: str = "day"  # "day" (hourly data) or "month" (daily data)
    baseline_label: str = ""  # e.g. "always guessing 'up'"
    checks: int = 0  # simulated checks of the configured policy
    trainings: int = 0  # distinct models trained (policies share identical ones)
    seconds: float = 0.0

    def policy(self, name: str) -> PolicyResult:
        for p in self.policies:
            if p.name == name:
                return p
        raise KeyError(name)
