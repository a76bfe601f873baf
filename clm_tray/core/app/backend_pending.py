"""The "not checked since the deploy folder changed" record: ``backend_pending.json``.

Never claim a backend state that was not seen after the deploy folder last changed. Two records
make that possible:

- ``backend_pending.json`` in the store: written just before the deploy folder changes
  (install, rollback, recovery) and removed once the backend has been restarted and its
  health recorded. A process killed in between leaves it behind, so the next engine start
  (CLI, daemon or tray) restarts the backend and verifies it serves the champion
  (``reconcile.py``).
- a ``deploy_folder`` check in history at the same moment, so that ``backend_view`` can tell a
  health result older than the last change ("unknown — not checked since …") from a current one.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from clm_tray.core.app.status import BackendUnknown, HealthReport
from clm_tray.core.fsutil import atomic_write_json, read_json

PENDING_FILE = "backend_pending.json"
FOLDER_CHECK = "deploy_folder"


def pending_path(store: Any) -> Path:
    """Where the store keeps the record (``backend_pending.json`` in its root)."""
    return Path(store.root) / PENDING_FILE


def mark_folder_changing(store: Any, history: Any, what: str, at: float) -> None:
    """Say, durably, that the backend must be restarted and checked before it is trusted."""
    atomic_write_json(pending_path(store), {"since": at, "what": what, "pid": os.getpid()})
    history.add_check(FOLDER_CHECK, {"what": what}, at=at)


def clear_pending(store: Any) -> None:
    """The backend was restarted and checked (healthy or not): its state is known again."""
    with contextlib.suppress(FileNotFoundError):
        pending_path(store).unlink()


def read_pending(store: Any) -> dict[str, Any] | None:
    """What changed the folder unchecked (``{"since", "what"}``), or None when nothing did."""
    try:
        data = read_json(pending_path(store))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"since": None, "what": "an interrupted deploy"}  # damaged: still reconcile
    return data if isinstance(data, dict) else {"since": None, "what": "an interrupted deploy"}


def backend_view(history: Any) -> HealthReport | BackendUnknown | None:
    """The last health result, or an 'unknown' one when the folder changed after it."""
    health = history.last_report("health", HealthReport)
    change = history.last_check(FOLDER_CHECK)
    if change is None or (health is not None and health[0] >= change[0]):
        return health[1] if health else None
    at = datetime.fromtimestamp(change[0]).strftime("%Y-%m-%d %H:%M")
    what = change[1].get("what") or "the last deploy"
    return BackendUnknown(url=health[1].url if health else None,
                          reason=f"unknown — not checked since {what} at {at}",
                          checked_at=health[0] if health else None, changed_at=change[0])
