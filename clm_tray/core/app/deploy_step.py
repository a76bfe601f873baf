"""Steps 5–8 of the cycle: pre-flight, journaled install, restart, verify; roll back on failure.

A version reaches this step once it has passed its checks (the retrain cycle), or when the user
promotes one; a start-up reconcile reuses ``restart_and_verify``. The deploy folder is marked
as changing (backend_pending.py) before it changes, and the mark is cleared only once the
backend has been restarted and seen, so a kill in between is reconciled at the next start.
A backend that does not load the new model gets the previous one back, restarted and verified
again; the outcome says which of those happened.
"""

from __future__ import annotations

from typing import Any

from clm_tray.core.app import decide
from clm_tray.core.app import events as ev
from clm_tray.core.app.backend_pending import clear_pending, mark_folder_changing
from clm_tray.core.app.cycle_run import CycleContext, CycleRun, record_outcome
from clm_tray.core.app.status import (
    IDENTITY_NOT_REPORTED,
    CycleResult,
    HealthReport,
    Outcome,
    ShadowResult,
)
from clm_tray.core.errors import BackendError
from clm_tray.core.serialize import to_jsonable


def deploy_verified(
    ctx: CycleContext, run: CycleRun, version: Any, metrics: dict[str, Any],
    shadow: ShadowResult | None, *, reason: str = "retrain",
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


def restart_and_verify(ctx: CycleContext, run: CycleRun, backend: Any, version: Any,
                        attempt: str) -> HealthReport:
    """Restart the backend and wait until it reports ``version``; one attempt in history."""
    from clm_tray.core.backend.health import verify_deployed

    s = ctx.settings
    run.stage("restart", f"restarting {backend.describe()}")
    stamp = backend.start_stamp
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
