"""The manual actions besides a retrain: rollback, promote, backend restart and health probe.

Each runs in the process that does the heavy work (``service.Engine``: the CLI, a worker
process) on one workspace's ``CycleContext``. A rollback and a promote are recorded in the
history like a cycle (``record_action``) and verified against the backend like a deploy; a
restart and a probe record what the backend said, so the tray's state never goes stale.
"""

from __future__ import annotations

from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.backend_pending import clear_pending, mark_folder_changing
from clm_tray.core.app.cycle_run import CycleContext, record_action, record_outcome
from clm_tray.core.app.deploy_step import deploy_verified, restart_and_verify
from clm_tray.core.app.readmodels import deployed_meta, noted_shadow
from clm_tray.core.app.status import CycleResult, HealthReport, Outcome
from clm_tray.core.errors import StoreError
from clm_tray.core.serialize import to_jsonable


def rollback(ctx: CycleContext, version_id: str | None = None) -> CycleResult:
    """Put ``previous`` (or ``version_id``) back into the deploy folder and verify it."""

    def act(run: Any) -> CycleResult:
        deployer = ctx.deployer_factory()
        target = ctx.store.get(version_id) if version_id else None
        backend = ctx.backend_factory()
        backend.preflight()  # a backend that cannot be driven: change nothing
        run.stage("deploy", f"rolling back to {version_id or 'previous'}")
        mark_folder_changing(ctx.store, ctx.history,
                             f"the rollback to {version_id or 'previous'}", ctx.clock())
        result = deployer.rollback(target, reason="manual rollback")
        version = ctx.store.get(result.version)
        health = restart_and_verify(ctx, run, backend, version, "rollback")
        ctx.bus.emit(ev.ModelRolledBack(version=version.id, from_version=result.previous,
                                        reason="manual rollback",
                                        verified=health.ok and not health.skipped),
                     level="info" if health.ok else "error")
        outcome = Outcome.ROLLED_BACK if health.ok else Outcome.FAILED
        reason = f"rolled back to {version.id}" + (
            "" if health.ok and not health.skipped else f" ({health.reason})")
        return record_outcome(run, outcome, reason, version, version.metrics, None,
                              ok=health.ok, health=health)

    return record_action(ctx, "rollback", act)


def promote(ctx: CycleContext, version_id: str | None = None) -> CycleResult:
    """Deploy a challenger (or any stored version) the user approved, verified."""
    vid = version_id or ctx.store.aliases().get("challenger")
    if not vid:
        raise StoreError("there is no challenger waiting; name a version "
                         "(`clm-tray versions` lists them).")
    version = ctx.store.get(vid)

    def act(run: Any) -> CycleResult:
        return deploy_verified(ctx, run, version, version.metrics,
                               noted_shadow(ctx.store.notes(vid), vid), reason="promote")

    return record_action(ctx, "promote", act)


def restart_backend(ctx: CycleContext) -> HealthReport:
    """Restart the backend and verify it reports the model in the deploy folder."""
    from clm_tray.core.backend.health import verify_deployed

    backend = ctx.backend_factory()
    backend.preflight()
    backend.restart()
    meta = deployed_meta(ctx.settings, ctx.deployer_factory) or {}
    report = verify_deployed(backend, ctx.settings, expect_sha256=meta.get("model_sha256"),
                             expect_version=meta.get("version"))
    record_health(ctx, report)
    clear_pending(ctx.store)
    return report


def health(ctx: CycleContext) -> HealthReport:
    """One probe of the health URL, judged against the model in the deploy folder."""
    from clm_tray.core.backend.health import probe_health, skipped_report

    s = ctx.settings
    if s.resolved_backend == "none":
        report = skipped_report(s.health_url)
    else:
        meta = deployed_meta(s, ctx.deployer_factory) or {}
        report = probe_health(s.health_url, model_key=s.health_model_key,
                              version_key=s.health_version_key,
                              expect_sha256=meta.get("model_sha256"),
                              expect_version=meta.get("version"))
    record_health(ctx, report)
    return report


def record_health(ctx: CycleContext, report: HealthReport) -> None:
    ctx.history.add_check("health", to_jsonable(report), at=ctx.clock())
    ctx.bus.emit(ev.BackendHealth.of(report), level="info" if report.ok else "error")
