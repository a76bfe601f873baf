"""Finish or undo a deploy that a crash interrupted, from the journal it left behind.

When every file the journal targets already carries its expected sha256, the deploy is rolled
forward (the aliases it meant to set are set); otherwise each replaced file is restored from
the sealed backup and files that were new are removed. Files are only replaced after the
backup is sealed, so an unsealed backup means nothing was touched yet. Either way the folder
ends with exactly one complete model, old or new, and the journal is cleared. A journal that
cannot be trusted (unreadable, or naming paths outside the deploy folder) is moved aside, never
acted on. The deployer (deploy.py) calls this at every start and after a failed install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import NoReturn

from clm_tray.core.errors import DeployError
from clm_tray.core.fsutil import copy_file_durably, fsync_dir, sha256_file
from clm_tray.core.registry.backups import BACKUP_MANIFEST
from clm_tray.core.registry.deploy_files import replace_file
from clm_tray.core.registry.deploy_folder import remove_leftovers, temp_path
from clm_tray.core.registry.deploy_journal import (
    clear_journal,
    move_journal_aside,
    targets_in_place,
)
from clm_tray.core.registry.store import ModelStore


def reject_journal(store: ModelStore, deploy_dir: Path, problem: str) -> NoReturn:
    """Move an untrusted journal aside (never delete it) and say so in one line."""
    aside = move_journal_aside(store.journal_path)
    raise DeployError(
        f"{store.journal_path.name} {problem}; it was not trusted and was moved to "
        f"{aside} with nothing changed — check {deploy_dir} holds one complete model"
    )


def resolve_interrupted(store: ModelStore, journal: dict, *, force_back: bool
                        ) -> tuple[str, bool]:
    """Roll an interrupted deploy forward (all new files in place) or back (restore).

    Returns what was done, in words, and whether it was rolled forward.
    """
    folder = Path(journal["deploy_dir"])
    op, vid = journal.get("op", "deploy"), journal.get("version")
    forward = not force_back and targets_in_place(folder, journal["targets"])
    if forward:
        store.set_aliases(**journal["aliases_after"])
        outcome = (
            f"finished the interrupted {op} of {vid} in {folder} "
            "(every new file was already in place)"
        )
    else:
        restore_from_backup(folder, journal)
        store.set_aliases(**journal["aliases_before"])
        kept = journal["aliases_before"].get("champion") or "the model that was there"
        outcome = f"undid the interrupted {op} of {vid} in {folder}; {kept} is still deployed"
    remove_leftovers(folder)
    clear_journal(store.journal_path)
    return outcome, forward


def restore_from_backup(folder: Path, journal: dict) -> None:
    """Put back every replaced file from the sealed backup; drop files that were new."""
    replaced: dict[str, str] = journal.get("replaced") or {}
    backup = folder / journal["backup_dir"] if journal.get("backup_dir") else None
    sealed = backup is not None and (backup / BACKUP_MANIFEST).is_file()
    if replaced and not sealed:
        # Files are replaced only after the backup is sealed: nothing was touched yet.
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    for name, sha in replaced.items() if sealed else ():
        live = folder / name
        if live.is_file() and sha256_file(live) == sha:
            continue
        source = backup / name  # type: ignore[operator]
        if not source.is_file() or sha256_file(source) != sha:
            raise DeployError(
                f"cannot undo the interrupted deploy: {source} is missing or damaged; "
                f"restore {live} by hand from another backup_* folder"
            )
        tmp = temp_path(folder, name)
        copy_file_durably(source, tmp)
        replace_file(tmp, live)
    for name in journal["targets"]:
        if name not in replaced:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)
    fsync_dir(folder)
