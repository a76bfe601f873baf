"""The journaled deploy's step boundaries, in order, and who is told when one is reached.

``DEPLOY_STEPS`` names every point between two durable actions of a deploy (journal written,
backup sealed, each file replaced, aliases moved...). The deploy calls ``step_reached(step)`` at
each; production registers no observer, so that is a loop over an empty list. Crash tests
register one (``add_step_observer``) that kills the process at a chosen step, which is how they
prove a kill anywhere leaves exactly one complete model in the folder.
"""

from __future__ import annotations

from collections.abc import Callable

# Every step boundary of a deploy, in order (a crash test may kill the process at any).
DEPLOY_STEPS: tuple[str, ...] = (
    "journal_written",  # journal on disk, nothing else done
    "backup_partial",  # first file copied into the backup folder, backup not sealed
    "backup_done",  # backup sealed with its manifest
    "temp_written_model",  # each new file written + fsynced under its temp name
    "temp_written_pickle",
    "temp_written_meta",
    "replaced_model",  # each os.replace done
    "replaced_pickle",
    "meta_written",  # the meta JSON replaced: every new file is in place
    "before_aliases",  # files re-hashed, about to move champion/previous
    "aliases_set",
    "before_journal_cleared",
)


# Observers of the step boundaries above, called in order with the step's name. Production
# adds none; crash tests add one (``add_step_observer``) that kills the process at a step.
_step_observers: list[Callable[[str], None]] = []


def add_step_observer(observer: Callable[[str], None]) -> Callable[[], None]:
    """Call ``observer(step)`` at every step boundary; returns the function that removes it."""
    _step_observers.append(observer)
    return lambda: _step_observers.remove(observer)


def step_reached(step: str) -> None:
    """A step boundary of the journaled path (DEPLOY_STEPS): tell the observers, if any."""
    for observer in list(_step_observers):
        observer(step)
