"""Never claim a backend state that was not seen after the deploy folder last changed.

When ``backend_pending.json`` (backend_pending.py) says a deploy, rollback or recovery changed
the folder and the process died before the backend was restarted and checked, the next engine
start (CLI, daemon or tray) calls ``reconcile_backend``: it restarts the backend, verifies it
serves the champion (or, with no champion of ours, whatever the folder holds) and records that
as a run in history, like any other action that touches the backend.
"""

from __future__ import annotations

import contextlib
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.backend_pending import read_pending
from clm_tray.core.app.cycle_run import record_action, record_outcome
from clm_tray.core.app.deploy_step import restart_and_verify
from clm_tray.core.app.status import CycleResult, Outcome
from clm_tray.core.errors import StoreError


def reconcile_backend(ctx: Any, backend: Any, deployed_meta: dict[str, Any] | None
                      ) -> CycleResult:
    """Restart the backend and verify it serves the champion; one history row says how it went.

    Runs at engine start-up under the cycle lock, when ``backend_pending.json`` says a deploy,
    rollback or recovery changed the folder without the backend being checked afterwards.
    """
    pending = read_pending(ctx.store) or {}
    what = pending.get("what") or "an interrupted deploy"

    def act(run: Any) -> CycleResult:
        champion_id = ctx.store.aliases().get("champion")
        target = None
        if champion_id:
            with contextlib.suppress(StoreError):
                target = ctx.store.get(champion_id)
        if target is None:  # no champion of ours: check what the folder holds
            target = _FolderModel(deployed_meta or {})
        health = restart_and_verify(ctx, run, backend, target, "reconcile")
        label = target.id or "the model in the deploy folder"
        if health.ok:
            note = f" ({health.reason})" if health.skipped else ""
            return record_outcome(run, Outcome.RECONCILED, f"after {what}: backend restarted and "
                                  f"serving {label}{note}", None, {}, None, ok=True,
                                  health=health)
        return record_outcome(run, Outcome.FAILED, f"after {what}: the backend does not serve "
                              f"{label}: {health.reason}", None, {}, None, ok=False,
                              health=health)

    result = record_action(ctx, "recover", act)
    ctx.bus.emit(ev.CycleStage(stage="recover", message=result.reason),
                 level="info" if result.ok else "error")
    return result


class _FolderModel:
    """What restart_and_verify needs to know about a model that is not in the store."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.id = str(meta.get("version") or "")
        self.sha256 = meta.get("model_sha256")

