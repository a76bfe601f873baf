"""What opening an engine does before anything else may run: Redis, recovery, adoption.

Every engine (in the tray, the daemon, a CLI command, a worker process) opens the workspace
the same way, so a crash anywhere is repaired by whoever opens it next:

- ``attach_redis``: events are mirrored to Redis when ``QT_CLM_REDIS_URL`` is set;
- ``recover``: a deploy interrupted by a crash is finished or undone, the store's leftovers
  are swept, and a backend whose state was not seen since the folder last changed is
  restarted and verified (reconcile.py);
- ``adopt``: the model already deployed (the old scripts' pickle) becomes a stored version
  before anything can replace it (registry/adopt.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.backend_pending import mark_folder_changing, read_pending
from clm_tray.core.app.cycle_run import CycleContext
from clm_tray.core.app.reconcile import reconcile_backend
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import ClmError, CycleBusy, StoreError
from clm_tray.core.registry.adopt import adopt_deployed_model

log = logging.getLogger(__name__)


def attach_redis(settings: Settings, bus: ev.EventBus) -> None:
    """Mirror ``bus`` to Redis when configured (once: a bus that has a mirror keeps it)."""
    if not settings.redis_url or bus.mirror is not None:
        return
    from clm_tray.core.app.redis_mirror import RedisMirror

    bus.mirror = RedisMirror(settings.redis_url, settings.redis_stream, bus)


def recover(ctx: CycleContext, warnings: list[str],
            deployed_meta: Callable[[], dict[str, Any] | None]) -> None:
    """Repair what a crash left (see the module docstring); problems go to ``warnings``, the
    log and the bus, and never stop the engine from opening."""
    for message in ctx.history.warnings:  # already logged by History
        warnings.append(message)
        ctx.bus.emit(ev.CycleStage(stage="recover", message=message), level="warning")
    if ctx.settings.resolved_deploy_dir is None:
        return
    try:
        with ctx.store.cycle_lock():
            from clm_tray.core.registry.store import sweep_store_leftovers

            swept = sweep_store_leftovers(ctx.store)
            if swept:
                log.info("removed %d stale temporary file(s)/folder(s) from %s", swept,
                         ctx.store.root)
            note = ctx.deployer_factory().recover()
            ctx.history.close_dangling("the process running this cycle stopped")
            if note and not note.startswith("removed "):
                log.warning("recovered an interrupted deploy: %s", note)
                ctx.bus.emit(ev.CycleStage(stage="recover", message=note), level="warning")
                mark_folder_changing(ctx.store, ctx.history, "the recovery at start-up",
                                     ctx.clock())
            if read_pending(ctx.store) is not None:
                reconcile_backend(ctx, ctx.backend_factory(), deployed_meta())
    except CycleBusy:  # another process runs a cycle: it will finish its own work
        return
    except ClmError as exc:  # a rejected journal, a damaged store: say it, keep running
        log.error("%s", exc)
        warnings.append(str(exc))
        ctx.bus.emit(ev.CycleStage(stage="recover", message=str(exc)), level="error")


def adopt(ctx: CycleContext) -> None:
    """Record the deployed model as a version (adopt.py); a busy lock means a cycle runs and
    adopts it itself, first thing."""
    if ctx.settings.resolved_deploy_dir is None:
        return
    try:
        with ctx.store.cycle_lock():
            adopt_deployed_model(ctx)
    except CycleBusy:  # the running cycle adopts it itself, first thing
        return
    except StoreError as exc:  # a damaged store file: the command reading it says so once
        log.info("the deployed model was not adopted yet: %s", exc)
    except Exception as exc:  # the store cannot take the copy: said, not fatal here
        log.warning("the deployed model was not adopted yet: %s", exc)
