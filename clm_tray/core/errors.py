"""Errors the user can act on.

Every error carries one sentence that names the file or variable at fault and says what to do.
The CLI prints that sentence and exits non-zero; the GUI shows it and notifies. No traceback
ever reaches the user for one of these.
"""

from __future__ import annotations

import errno
import os


class ClmError(Exception):
    """Base of every error clm-tray reports to the user as one line."""

    exit_code = 2

    def __str__(self) -> str:  # one line, always
        return " ".join(str(self.args[0]).split()) if self.args else self.__class__.__name__


class ConfigError(ClmError):
    """A setting is missing, malformed or out of range."""


class DataError(ClmError):
    """The training data cannot be used as it is."""


class TrainingError(ClmError):
    """Training failed in the child process."""


class TrainingTimeout(TrainingError):
    """Training ran past QT_CLM_TRAIN_TIMEOUT and was killed."""


class TrainingCancelled(TrainingError):
    """The user (or shutdown) cancelled a running training."""


class StoreError(ClmError):
    """The model store is inconsistent or a version's bytes do not match its manifest."""


class DeployError(ClmError):
    """Installing a model into the deploy folder failed."""


class BackendError(ClmError):
    """The backend cannot be controlled or did not come up healthy."""


class CycleBusy(ClmError):
    """Another retrain cycle holds the store's lock."""

    exit_code = 3


class Stopped(ClmError):
    """Work ended unfinished because its process was asked to end (the app quitting, a
    logout or shutdown sending SIGTERM): like a Cancel, never a failure (no back-off, no
    error notification)."""


class WorkerError(ClmError):
    """The engine's worker process died, or failed in a way that is not a ClmError."""


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC / EDQUOT, or SQLite's own words for it."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return True
    return "database or disk is full" in str(exc)


def describe_os_error(exc: OSError, folder: os.PathLike[str] | str | None = None) -> str:
    """One line for an operating-system failure, naming the folder it happened in."""
    where = folder or (os.path.dirname(os.fsdecode(exc.filename)) if exc.filename else "")
    place = f" in {where}" if where else ""
    if is_disk_full(exc):
        return f"disk full: cannot write{place}; free some space on that disk and retry"
    name = f" ({os.fsdecode(exc.filename)})" if exc.filename else ""
    return f"{exc.strerror or exc}{name}; check that folder exists and is writable, then retry"
