"""The retrain cycle, read top-down (DESIGN.md "The retrain cycle").

load → train (child process) → version → shadow test → deploy (journaled) → restart →
verify → on failure roll back, restart, verify → record. Every stage is announced on the bus
and timed; the cycle ends in exactly one history row and one retraining_log.txt line.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clm_tray.core.app import decide
from clm_tray.core.app import events as ev
from clm_tray.core.app.reconcile import clear_pending, mark_folder_changing
from clm_tray.core.app.status import IDENTITY_NOT_REPORTED, CycleResult, Outcome
from clm_tray.core.app.wording import pct
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import BackendError, ClmError, ConfigError, TrainingCancelled
from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry.adopt import adopt_deployed_model, shadow_against_adopted
from clm_tray.core.registry.history import History
from clm_tray.core.serialize import to_jsonable

if TYPE_CHECKING:  # the cycle's parts import pandas when they run, never at import
    import pandas as pd

log = logging.getLogger(__name__)

STAGES = ("load", "train", "version", "shadow", "deploy", "restart", "verify", "record")
# Where each stage starts on the progress bar: training is most of a cycle's time, and within
# it the bar follows XGBoost's boosting rounds (see _Run.train_rounds).
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


@dataclass
class _Run:
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


def retrain_cycle(
    ctx: CycleContext,
    trigger: str = "manual",
    *,
    deploy: bool = True,
    cancel: threading.Event | None = None,
    force: bool = False,
) -> CycleResult:
    """One full cycle under the store's machine-wide lock (CycleBusy when another runs).

    ``force`` trains even when the data and settings are those of the newest version.
    """
    with ctx.store.cycle_lock():
        result = _retrain_locked(ctx, trigger, deploy=deploy, cancel=cancel, force=force)
        if result.outcome != Outcome.CANCELLED:
            decide.prune_store(ctx.store, ctx.settings, ctx.deployer_factory)
        return result


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("cancelled; nothing was stored")


def _retrain_locked(
    ctx: CycleContext, trigger: str, *, deploy: bool, cancel: threading.Event | None,
    force: bool,
) -> CycleResult:
    import pandas as pd

    from clm_tray.core.ml.data import load_dataset
    from clm_tray.core.ml.prepared import read_prepared, write_prepared
    from clm_tray.core.ml.training import TrainParams, train_in_child
    from clm_tray.core.monitor.checks import reference_profile

    s = ctx.settings
    adopt_deployed_model(ctx)
    champion_id = ctx.store.aliases().get("champion")
    run = _Run(ctx, ctx.history.start_cycle(trigger, champion_id, at=ctx.clock()))
    ctx.bus.emit(ev.CycleStarted(trigger=trigger, cycle=run.cycle_id, champion=champion_id))
    version = None
    metrics: dict[str, Any] = {}
    try:
        # 1. Load
        run.stage("load", "loading training data")
        data_path = s.resolved_data_path
        if data_path is None:
            raise ConfigError(
                "QT_CLM_DATA_PATH is not set; point it at your training CSV/Parquet "
                "(or set QT_CLM_PROJECT_DIR)."
            )
        dataset = load_dataset(data_path, target=s.target, features=s.features or None,
                               coerce_bad_cells=s.coerce_bad_cells,
                               encoding=s.data_encoding or None,
                               cache_dir=ctx.store.root / "cache")
        for w in dataset.warnings:
            ctx.bus.emit(ev.CycleStage(stage="load", message=w, cycle=run.cycle_id, progress=0.0),
                         level="warning")
        params = TrainParams.from_settings(s)
        same = None if force else decide.unchanged_since(
            ctx.store, decide.training_key(dataset, params))
        if same is not None:
            return record_outcome(
                run, Outcome.UNCHANGED, f"data unchanged since {decide.short_id(same.id)} — "
                "nothing to retrain", None, {}, None, ok=True)
        _check_cancel(cancel)

        # 2. Train in a child process (killable on timeout / cancel)
        run.stage("train", f"training on {dataset.fingerprint.rows:,} rows")
        work = ctx.store.root / "work"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            # One load per cycle: the child reads these validated rows, not the file again.
            handoff = write_prepared(dataset, Path(tmp) / "dataset.arrow")
            dataset.frame = dataset.frame.iloc[:0]  # not held twice while the child trains
            result = train_in_child(
                # A cluster's workers read the training file itself, at the same path.
                data_path if s.dask_scheduler else handoff, target=s.target,
                features=dataset.features, params=params,
                workdir=Path(tmp), timeout=s.train_timeout, cancel=cancel,
                coerce_bad_cells=s.coerce_bad_cells,
                dask_scheduler=s.dask_scheduler, on_round=run.train_rounds,
                encoding=s.data_encoding or None,
            )
            dataset.frame = read_prepared(handoff).frame  # for the profile and the shadow test
            metrics = dict(result.metrics)
            _check_cancel(cancel)

            # 3. Version (immutable; a model already stored is reused, never stored twice)
            run.stage("version", "saving the new version")
            version = decide.same_model(ctx.store, sha256_file(Path(result.model_path)))
            if version is None:
                # Rows are sorted by time: the training rows are a prefix (a view, no copy).
                frame = dataset.frame
                train_rows = frame.iloc[:int(frame["timestamp"].searchsorted(
                    pd.Timestamp(result.split.train_end), side="right"))]
                manifest = _manifest(dataset, result, champion_id, reference_profile(
                    train_rows, dataset.features))
                version = ctx.store.add_version(
                    Path(result.model_path), manifest,
                    formats=_deploy_formats(s, Path(result.model_path)))
        if version.id == champion_id:
            return record_outcome(
                run, Outcome.UNCHANGED, f"the new model is identical to "
                f"{decide.short_id(champion_id)}, which is deployed — nothing to do",
                version, metrics, None, ok=True)
        ctx.bus.emit(ev.CycleStage(
            stage="version", progress=PROGRESS_AT["version"], cycle=run.cycle_id,
            message=f"{version.id}: test accuracy {pct(metrics['test_accuracy'])}",
            version=version.id))

        # 3b. Edge gate: no deploy without an edge over guessing (the first model included)
        edge = decide.edge_verdict(result.edge, s)
        if edge is not None:
            metrics["edge"] = to_jsonable(edge)
            ctx.store.annotate(version.id, "edge", metrics["edge"])
        if s.edge_gate and edge is not None and not edge.passed and not result.leakage:
            ctx.store.annotate(version.id, "status", "no edge")
            return record_outcome(run, Outcome.NO_EDGE, decide.no_edge_reason(edge, champion_id),
                                  version, metrics, None, ok=True)

        # 4. Shadow test against the champion
        run.stage("shadow", "shadow test against the champion")
        shadow = shadow_against_champion(ctx, version, dataset.frame)
        ctx.store.annotate(version.id, "shadow", shadow)
        decision = shadow["decision"]
        if result.leakage:
            decision = "reject"
            shadow["reason"] = f"probable leakage: {result.leakage_reason}"
        if decision == "reject":
            ctx.store.annotate(version.id, "status", "rejected")
            return record_outcome(run, Outcome.REJECTED, shadow["reason"], version, metrics, shadow,
                           ok=True, leakage=result.leakage)
        if decision == "wait":
            ctx.store.set_aliases(challenger=version.id)
            ctx.bus.emit(ev.ChallengerWaiting(version=version.id, reason=shadow["reason"],
                                              shadow=shadow))
            return record_outcome(run, Outcome.WAITING, shadow["reason"], version, metrics, shadow,
                                  ok=True)
        if not deploy:
            return record_outcome(run, Outcome.TRAINED, "not deployed (--no-deploy)", version,
                                  metrics, shadow, ok=True)
        if not s.auto_promote and trigger != "promote":
            ctx.store.set_aliases(challenger=version.id)
            reason = "passed the shadow test; QT_CLM_AUTO_PROMOTE=false, waiting for approval"
            ctx.bus.emit(ev.ChallengerWaiting(version=version.id, reason=reason))
            return record_outcome(run, Outcome.AWAITING_APPROVAL, reason, version, metrics, shadow,
                                  ok=True)

        # 5-8. Deploy, restart, verify, roll back on failure
        return deploy_verified(ctx, run, version, metrics, shadow)
    except TrainingCancelled:
        return record_outcome(run, Outcome.CANCELLED, "cancelled; nothing was stored", None,
                              {}, None, ok=False)
    except ClmError as exc:
        return record_outcome(run, Outcome.FAILED, str(exc), version, metrics, None, ok=False)
    except Exception as exc:  # a bug must still end the cycle cleanly and visibly
        log.exception("cycle %s crashed", run.cycle_id)
        return record_outcome(run, Outcome.FAILED, f"internal error: {exc}", version, metrics, None,
                              ok=False)


def deploy_verified(
    ctx: CycleContext, run: _Run, version: Any, metrics: dict[str, Any],
    shadow: dict[str, Any] | None, *, reason: str = "retrain",
) -> CycleResult:
    """Steps 5–8: pre-flight, journaled install, restart, verify; roll back when it fails.

    A version that already runs (champion, same bytes in the deploy folder) is not installed
    again and the backend is not restarted for it.
    """
    if decide.already_deployed(ctx.store, ctx.deployer_factory, version):
        return record_outcome(run, Outcome.UNCHANGED, f"{decide.short_id(version.id)} is "
                              "already deployed — nothing to do", version, metrics, shadow,
                              ok=True)
    backend = ctx.backend_factory()
    run.stage("deploy", f"pre-flight: {backend.describe()}")
    try:
        backend.preflight()
    except BackendError as exc:
        ctx.store.set_aliases(challenger=version.id)
        return record_outcome(run, Outcome.FAILED, f"pre-flight: {exc} (nothing deployed; "
                              f"{version.id} waits as challenger)", version, metrics, shadow,
                              ok=False)
    deployer = ctx.deployer_factory()
    run.stage("deploy", f"installing {version.id}")
    previous_before = ctx.store.aliases().get("previous")
    mark_folder_changing(ctx.store, ctx.history, f"the deploy of {version.id}", ctx.clock())
    try:
        result = deployer.install(version, reason=reason)
    except BaseException:
        clear_pending(ctx.store)  # the install undid itself: the backend was never touched
        raise
    decide.clear_older_challenger(ctx.store, version)

    health = restart_and_verify(ctx, run, backend, version, "deploy")
    if health.ok:
        ctx.store.annotate(version.id, "deployed_at", ctx.clock())
        unidentified = health.identity == IDENTITY_NOT_REPORTED
        ctx.bus.emit(ev.ModelDeployed(
            version=version.id, sha256=version.sha256, test_accuracy=metrics.get("test_accuracy"),
            backup=str(result.backup_dir) if result.backup_dir else None,
            verified=not health.skipped and not unidentified, identity=health.identity))
        note = ""
        if health.skipped:
            note = f" ({health.reason})"
        elif unidentified:
            note = (" (the backend restarted and answers healthy but does not report which "
                    "model it loaded)")
        outcome = Outcome.DEPLOYED_UNIDENTIFIED if unidentified else Outcome.DEPLOYED
        return record_outcome(run, outcome, f"deployed {version.id}{note}", version, metrics,
                              shadow, ok=True, health=health)

    # 8. Roll back to what ran before, restart, verify again.
    failed_reason = health.reason
    previous_id = result.previous
    if not previous_id:
        return record_outcome(run, Outcome.FAILED, f"backend did not load {version.id}: "
                              f"{failed_reason}; no previous model to roll back to", version,
                              metrics, shadow, ok=False, health=health)
    run.stage("restart", f"rolling back to {previous_id}")
    prev = ctx.store.get(previous_id)
    mark_folder_changing(ctx.store, ctx.history, f"the rollback to {prev.id}", ctx.clock())
    deployer.rollback(prev, reason=f"automatic rollback: {failed_reason}")
    ctx.store.annotate(version.id, "status", "rejected")
    # The failed version is not a model to roll back to: `previous` is what it was before.
    ctx.store.set_aliases(previous=previous_before)
    health2 = restart_and_verify(ctx, run, backend, prev, "rollback")
    ctx.bus.emit(ev.ModelRolledBack(version=prev.id, from_version=version.id,
                                    reason=failed_reason, verified=health2.ok), level="error")
    if health2.ok:
        return record_outcome(run, Outcome.ROLLED_BACK_AFTER_FAILURE,
                       f"backend did not load {version.id} ({failed_reason}); "
                       f"rolled back to {prev.id} and verified", version, metrics, shadow,
                       ok=False, health=health2)
    return record_outcome(run, Outcome.ROLLBACK_FAILED,
                   f"backend did not load {version.id} ({failed_reason}); rolled back to "
                   f"{prev.id} but the backend is still unhealthy: {health2.reason}",
                   version, metrics, shadow, ok=False, health=health2)


def restart_and_verify(ctx: CycleContext, run: _Run, backend: Any, version: Any,
                        attempt: str) -> Any:
    """Restart the backend and wait until it reports ``version``; one attempt in history."""
    from clm_tray.core.app.status import HealthReport
    from clm_tray.core.backend.health import verify_deployed

    s = ctx.settings
    run.stage("restart", f"restarting {backend.describe()}")
    stamp = getattr(backend, "start_stamp", lambda: None)
    before = stamp()
    try:
        backend.restart()
    except BackendError as exc:
        health = HealthReport(ok=False, url=s.health_url, status_code=None, latency_ms=None,
                              reported_sha256=None, reported_version=None,
                              reason=f"restart failed: {exc}", checked_at=ctx.clock())
    else:
        after = stamp()
        run.stage("verify", f"waiting for {s.health_url} to report {version.id}")
        health = verify_deployed(backend, s, expect_sha256=version.sha256 or None,
                                 expect_version=version.id or None)
        if before is not None or after is not None:
            health.restarted = after is not None and after != before
        if health.ok and health.restarted is False:
            # Healthy, but still the process that loaded the old files (or none at all).
            health.ok = False
            was, now = before or "not running", after or "not running"
            health.reason = (f"the backend did not restart after the install ({was} → {now}); "
                             "restart it by hand")
    report = to_jsonable(health)
    run.attempts.append({"attempt": attempt, "version": version.id, **report})
    ctx.history.add_check("health", report, at=ctx.clock())
    clear_pending(ctx.store)  # restarted and seen: healthy or not, the state is now known
    ctx.bus.emit(ev.BackendHealth.of(health), level="info" if health.ok else "error")
    return health


def shadow_against_champion(ctx: CycleContext, candidate: Any, frame: pd.DataFrame
                            ) -> dict[str, Any]:
    """Shadow-test ``candidate`` against the champion on rows neither has trained on.

    Rows: newer than the champion's training data AND inside the candidate's own held-out
    test period (so the candidate never saw them). No champion → promote.
    """
    import pandas as pd

    from clm_tray.core.ml.training import load_booster
    from clm_tray.core.monitor.checks import shadow_test

    s = ctx.settings
    champion_id = ctx.store.aliases().get("champion")
    if not champion_id or champion_id == candidate.id:
        return {"decision": "promote", "reason": "no champion yet", "rows": 0}
    champion = ctx.store.get(champion_id)
    if champion.adopted:
        return shadow_against_adopted(ctx.settings, candidate, champion, frame)
    since = pd.Timestamp(champion.manifest["data_last_timestamp"])
    held_out = pd.Timestamp(candidate.manifest["split"]["test_start"])
    rows = frame[(frame["timestamp"] > since) & (frame["timestamp"] >= held_out)]
    if list(champion.manifest["features"]) != list(candidate.manifest["features"]):
        # Different feature sets cannot be compared row by row. Only a change the user made on
        # purpose (QT_CLM_FEATURES) may be judged on the candidate's own out-of-time test.
        diff = decide.feature_difference(champion.features, candidate.features)
        if decide.features_chosen_on_purpose(s, candidate.features):
            return {"decision": "promote", "rows": 0, "features_differ": diff,
                    "reason": f"feature set changed by QT_CLM_FEATURES ({diff}); judged on "
                              "its own out-of-time test"}
        return {"decision": "wait", "rows": 0, "features_differ": diff, "champion": champion_id,
                "reason": f"features differ from the champion's ({diff}); waits for "
                          "`clm-tray promote` or a QT_CLM_FEATURES change"}
    res = shadow_test(
        load_booster(candidate.model_path), load_booster(champion.model_path), rows,
        candidate.manifest["features"], candidate.manifest["target"],
        min_rows=s.shadow_min, logloss_tol=s.shadow_logloss_tol,
    )
    out = asdict(res)
    out["champion"] = champion_id
    return out


def _deploy_formats(s: Settings, model_path: Path) -> dict[str, bytes]:
    """The new model in every other format the deploy folder holds (``xgb_model.pkl`` for a
    backend that unpickles it), made now so the version holds exactly what gets deployed."""
    from clm_tray.core.registry.formats import extra_formats, model_bytes

    if s.resolved_deploy_dir is None:
        return {}
    return {suffix: model_bytes(model_path, suffix)
            for suffix in extra_formats(s.resolved_deploy_dir, s.model_file, s.deploy_pickle)}


def _manifest(dataset: Any, result: Any, parent: str | None, profile: dict[str, Any]
              ) -> dict[str, Any]:
    import pandas as pd
    import xgboost

    return {
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parent": parent,
        "features": list(dataset.features),
        "target": dataset.target,
        "params": result.params,
        "metrics": result.metrics,
        "importance": result.importance,
        "leakage": result.leakage,
        "leakage_reason": result.leakage_reason,
        "split": asdict(result.split),
        "data": asdict(dataset.fingerprint),
        "data_last_timestamp": dataset.fingerprint.end,
        "reference_profile": profile,
        "training_seconds": result.duration_s,
        **result.trainer,  # "trainer": "local" | "dask" (+ scheduler address, workers)
        "library_versions": {
            "xgboost": xgboost.__version__,
            "pandas": pd.__version__,
            "scikit-learn": _version("scikit-learn"),
        },
    }


def _version(dist: str) -> str:
    """A library's version from its metadata (importing scikit-learn only to read it would
    cost more than half a second)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def record_outcome(
    run: _Run, outcome: str, reason: str, version: Any, metrics: dict[str, Any],
    shadow: dict[str, Any] | None, *, ok: bool, leakage: bool = False, health: Any = None,
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
        stages=run.stages, shadow=shadow, health=to_jsonable(health) if health else None,
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


def record_action(ctx: CycleContext, trigger: str, fn: Callable[[_Run], CycleResult]
                  ) -> CycleResult:
    """Run a manual action (rollback, promote) as a cycle: locked, recorded, announced."""
    with ctx.store.cycle_lock():
        adopt_deployed_model(ctx)
        champion_id = ctx.store.aliases().get("champion")
        run = _Run(ctx, ctx.history.start_cycle(trigger, champion_id, at=ctx.clock()))
        ctx.bus.emit(ev.CycleStarted(trigger=trigger, cycle=run.cycle_id, champion=champion_id))
        try:
            return fn(run)
        except ClmError as exc:
            return record_outcome(run, Outcome.FAILED, str(exc), None, {}, None, ok=False)

