"""Never claim a backend state that was not seen after the deploy folder last changed.

Two records make that possible:

- ``backend_pending.json`` in the store: written just before the deploy folder changes
  (install, rollback, recovery) and removed once the backend has been restarted and its
  health recorded. A process killed in between leaves it behind, so the next engine start
  (CLI, daemon or tray) restarts the backend and verifies it serves the champion —
  ``reconcile_backend`` — and records that as a cycle in history.
- a ``deploy_folder`` check in history at the same moment, so that ``backend_view`` can tell a
  health result older than the last change ("unknown — not checked since …") from a current one.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import Outcome
from clm_tray.core.fsutil import atomic_write_json, read_json

PENDING_FILE = "backend_pending.json"
FOLDER_CHECK = "deploy_folder"


def pending_path(store: Any) -> Path:
    return Path(store.root) / PENDING_FILE


def mark_folder_changing(store: Any, history: Any, what: str, at: float) -> None:
    """Say, durably, that the backend must be restarted and checked before it is trusted."""
    atomic_write_json(pending_path(store), {"since": at, "what": what, "pid": os.getpid()})
    history.add_check(FOLDER_CHECK, {"what": what}, at=at)


def clear_pending(store: Any) -> None:
    with contextlib.suppress(FileNotFoundError):
        pending_path(store).unlink()


def read_pending(store: Any) -> dict[str, Any] | None:
    try:
        data = read_json(pending_path(store))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"since": None, "what": "an interrupted deploy"}  # damaged: still reconcile
    return data if isinstance(data, dict) else {"since": None, "what": "an interrupted deploy"}


def backend_view(history: Any) -> dict[str, Any] | None:
    """The last health result, or an 'unknown' one when the folder changed after it."""
    health = history.last_check("health")
    change = history.last_check(FOLDER_CHECK)
    if change is None or (health is not None and health[0] >= change[0]):
        return health[1] if health else None
    at = datetime.fromtimestamp(change[0]).strftime("%Y-%m-%d %H:%M")
    what = change[1].get("what") or "the last deploy"
    return {
        "ok": None, "state": "unknown", "url": (health[1].get("url") if health else None),
        "reason": f"unknown — not checked since {what} at {at}",
        "checked_at": health[0] if health else None, "changed_at": change[0],
    }


def reconcile_backend(ctx: Any, backend: Any, deployed_meta: dict[str, Any] | None) -> Any:
    """Restart the backend and verify it serves the champion; one history row says how it went.

    Runs at engine start-up under the cycle lock, when ``backend_pending.json`` says a deploy,
    rollback or recovery changed the folder without the backend being checked afterwards.
    """
    from clm_tray.core.app.cycle import record_action, record_outcome, restart_and_verify
    from clm_tray.core.errors import StoreError

    pending = read_pending(ctx.store) or {}
    what = pending.get("what") or "an interrupted deploy"

    def act(run: Any) -> Any:
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
