"""One run of a cycle: what it touches, how its stages are timed and announced, and the record
it ends with.

Every path through the retrain cycle, and every manual action that changes the deploy folder
(rollback, promote, start-up reconcile), is a *run*: it starts a history row under the cycle
lock, announces each stage on the bus with its share of the progress bar, and ends in exactly
one history row, one ``retraining_log.txt`` line and one ``cycle.finished`` event
(``record_outcome``). The cycle itself (cycle.py) and the deploy step (deploy_step.py) build on
this; it knows nothing of training or deploying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import CycleResult, HealthReport, Outcome, ShadowResult
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import ClmError
from clm_tray.core.registry.adopt import adopt_deployed_model
from clm_tray.core.registry.history import History

log = logging.getLogger(__name__)

STAGES = ("load", "train", "version", "shadow", "deploy", "restart", "verify", "record")


# Where each stage starts on the progress bar: training is most of a cycle's time, and within
# it the bar follows XGBoost's boosting rounds (see CycleRun.train_rounds).
PROGRESS_AT = {"load": 0.0, "train": 0.08, "version": 0.70, "shadow": 0.72, "deploy": 0.78,
               "restart": 0.82, "verify": 0.86, "record": 0.96}


@dataclass
class CycleContext:
    """Everything a cycle touches, built once by the Engine."""

    settings: Settings
    store: Any  # ModelStore
    history: History
    bus: ev.EventBus
    deployer_factory: Callable[[], Any]  # -> Deployer (raises ConfigError without a deploy dir)
    backend_factory: Callable[[], Any]  # -> Backend
    clock: Callable[[], float] = time.time
    # Start the training process as the load begins, so its start-up overlaps the load: for a
    # person waiting on the CLI. Off in a worker (tray, daemon): there nobody waits on that
    # second, and three busy processes on two cores would cost the tray's smoothness.
    train_ahead: bool = True


@dataclass
class CycleRun:
    """Book-keeping of one cycle: stage timings and the attempts made."""

    ctx: CycleContext
    cycle_id: int
    stages: dict[str, float] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = 0.0
    _stage: str = ""
    _last_rounds_event: float = 0.0

    def stage(self, name: str, message: str = "") -> None:
        self._close_stage()
        self._stage, self._t0 = name, time.perf_counter()
        progress = PROGRESS_AT.get(name, 0.0)
        self.ctx.bus.emit(ev.CycleStage(stage=name, progress=round(progress, 3),
                                        message=message, cycle=self.cycle_id))

    def train_rounds(self, done: int, total: int) -> None:
        """A boosting-round report from the training child: progress and time left, as an
        event at most every 0.25 s (and always the last, where ``done == total``)."""
        now = time.perf_counter()
        if done < total and now - self._last_rounds_event < 0.25:
            return
        self._last_rounds_event = now
        elapsed = now - self._t0
        share = min(1.0, done / max(1, total))
        span = PROGRESS_AT["version"] - PROGRESS_AT["train"]
        left = elapsed / done * (total - done) if done else None
        self.ctx.bus.emit(ev.CycleStage(
            stage="train", progress=round(PROGRESS_AT["train"] + span * share, 3),
            message=f"round {done} of {total}", rounds_done=done, rounds_total=total,
            seconds_left=None if left is None else round(left, 1), cycle=self.cycle_id,
        ))

    def _close_stage(self) -> None:
        if self._stage:
            self.stages[self._stage] = round(
                self.stages.get(self._stage, 0.0) + time.perf_counter() - self._t0, 4
            )
            self._stage = ""


#: A cycle's reason when its process was asked to end (SIGTERM: the app quitting, a logout,
#: a shutdown) before it finished; the cycle is recorded as cancelled, never as failed.
STOPPED = ("stopped before it finished: clm-tray was asked to end (the app quitting, a logout "
           "or a shutdown)")


def record_outcome(
    run: CycleRun, outcome: str, reason: str, version: Any, metrics: dict[str, Any],
    shadow: ShadowResult | None, *, ok: bool, leakage: bool = False,
    health: HealthReport | None = None,
) -> CycleResult:
    """Step 9: one history row, one retraining_log.txt line, one cycle.finished event.

    The event's level is "error" only for a failure (``Outcome.failed``): a cancelled,
    gated or unchanged cycle is news, not an alarm.
    """
    ctx = run.ctx
    outcome = Outcome(outcome)
    run.stage("record", outcome)
    run._close_stage()
    vid = version.id if version is not None else None
    ctx.history.finish_cycle(
        run.cycle_id, outcome=outcome.value, reason=reason, version=vid, metrics=metrics,
        stages=run.stages, shadow=shadow, attempts=run.attempts, at=ctx.clock(),
    )
    _log_line(ctx, outcome, reason)
    ctx.bus.emit(ev.CycleFinished(outcome=outcome, reason=reason, version=vid, ok=ok,
                                  cycle=run.cycle_id, test_accuracy=metrics.get("test_accuracy")),
                 level="error" if outcome.failed else "info")
    return CycleResult(
        ok=ok, outcome=outcome, reason=reason, version=vid, metrics=metrics,
        stages=run.stages, shadow=shadow, health=health,
        leakage=leakage, history_id=run.cycle_id,
    )


def _log_line(ctx: CycleContext, outcome: Outcome, reason: str) -> None:
    """The seed's retraining_log.txt line; never fails the cycle."""
    if ctx.settings.resolved_deploy_dir is None:
        return
    if outcome in (Outcome.DEPLOYED, Outcome.DEPLOYED_UNIDENTIFIED):
        message = "Retraining completed successfully"
    elif outcome.failed:
        message = f"Retraining failed: {reason}"
    else:
        message = f"Retraining finished ({outcome}): {reason}"
    try:
        ctx.deployer_factory().append_log(message)
    except (ClmError, OSError) as exc:  # the cycle's own outcome already says what failed
        log.info("could not write retraining_log.txt: %s", exc)


def record_action(ctx: CycleContext, trigger: str, fn: Callable[[CycleRun], CycleResult]
                  ) -> CycleResult:
    """Run a manual action (rollback, promote) as a cycle: locked, recorded, announced."""
    with ctx.store.cycle_lock():
        adopt_deployed_model(ctx)
        champion_id = ctx.store.aliases().get("champion")
        run = CycleRun(ctx, ctx.history.start_cycle(trigger, champion_id, at=ctx.clock()))
        ctx.bus.emit(ev.CycleStarted(trigger=trigger, cycle=run.cycle_id, champion=champion_id))
        try:
            return fn(run)
        except ClmError as exc:
            return record_outcome(run, Outcome.FAILED, str(exc), None, {}, None, ok=False)
        except SystemExit:  # asked to end mid-action: recorded as cancelled, not left running
            record_outcome(run, Outcome.CANCELLED, STOPPED, None, {}, None, ok=False)
            raise
