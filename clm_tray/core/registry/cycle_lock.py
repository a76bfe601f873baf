"""One retrain cycle at a time on this machine: the store's ``cycle.lock``.

Every change to the store and the deploy folder (a cycle, a rollback, a promotion, crash
recovery) runs under this lock, so two processes (the tray, the daemon, a CLI call) never
deploy at once. It never waits: a second cycle is told one is running (``CycleBusy``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from clm_tray.core.errors import CycleBusy

# One FileLock object per lock file in this process, so the cycle lock is re-entrant for the
# thread that holds it (a cycle may call install(), which takes it again) and exclusive for
# every other thread and process.
_cycle_locks: dict[str, FileLock] = {}
_cycle_locks_guard = threading.Lock()


@contextlib.contextmanager
def hold_cycle_lock(lock_path: Path) -> Iterator[None]:
    """Hold the machine-wide "one retrain cycle at a time" lock, or raise CycleBusy.

    Never waits. Re-entrant for the thread that already holds it, exclusive for every
    other thread and process. The OS releases it if the holder dies.
    """
    key = str(lock_path.resolve())
    with _cycle_locks_guard:
        lock = _cycle_locks.get(key)
        if lock is None:
            lock = _cycle_locks[key] = FileLock(key, timeout=0, thread_local=True)
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise CycleBusy(
            f"another retrain cycle is already running (lock: {lock_path}); "
            "wait for it to finish"
        ) from exc
    try:
        yield
    finally:
        lock.release()
