"""The deploy folder itself: make sure it is usable, append to its log, sweep up after a crash.

Besides the model files and ``backup_*/`` folders, the folder holds ``retraining_log.txt`` (one
line per cycle, for people who read the folder rather than the app) and, only mid-deploy, our
hidden temp files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from pathlib import Path

from clm_tray.core.errors import DeployError
from clm_tray.core.fsutil import fsync_dir
from clm_tray.core.registry.backups import TRASH_PREFIX

LOG_FILE = "retraining_log.txt"
TEMP_SUFFIX = ".clm-tray-tmp"


def ensure_deploy_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeployError(
            f"cannot create the deploy folder {folder} ({exc.strerror or exc}); "
            "check QT_CLM_DEPLOY_DIR and its permissions"
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DeployError(f"the deploy folder {folder} is not writable; check its permissions")


def append_log(folder: Path, message: str, now: dt.datetime | None = None) -> None:
    """Append one ``YYYY-MM-DD HH:MM:SS - message`` line (local time) to the log file."""
    stamp = (now.astimezone() if now and now.tzinfo else now) or dt.datetime.now()
    line = f"{stamp:%Y-%m-%d %H:%M:%S} - {' '.join(str(message).split())}\n"
    ensure_deploy_folder(folder)
    path = folder / LOG_FILE
    try:
        with open(path, "ab") as fh:
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise DeployError(
            f"cannot append to {path} ({exc.strerror or exc}); check its permissions"
        ) from exc


def temp_path(folder: Path, name: str) -> Path:
    return folder / f".{name}{TEMP_SUFFIX}"


def remove_leftovers(folder: Path) -> int:
    """Delete our temp files and half-deleted backups; count what was removed."""
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
        elif entry.name.startswith(TRASH_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    if removed:
        fsync_dir(folder)
    return removed
