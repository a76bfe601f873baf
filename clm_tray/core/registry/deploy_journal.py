"""The deploy journal: ``journal.json`` in the store, present only while a deploy is unfinished.

It records what the deploy will write, with the sha256 each file must end up with, what it
replaces, the backup folder's name and the aliases before/after. A journal left behind by a
crash is how the next start knows to roll the deploy forward or back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path

from clm_tray.core.config.settings import is_bare_name
from clm_tray.core.errors import DeployError
from clm_tray.core.fsutil import atomic_write_json, fsync_dir, read_json, sha256_file


def read_journal(path: Path) -> dict | None:
    try:
        journal = read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DeployError(
            f"{path} cannot be read ({exc}); check the deploy folder "
            "holds one complete model, then delete the journal"
        ) from exc
    if not isinstance(journal, dict) or not {"targets", "deploy_dir"} <= journal.keys():
        raise DeployError(
            f"{path} is not a deploy journal; check the deploy folder "
            "holds one complete model, then delete the journal"
        )
    return journal


def untrusted_reason(journal: dict, deploy_dir: Path) -> str | None:
    """Why a journal must not be acted on, or None: it is trusted only for ``deploy_dir`` and
    plain file names inside it. Recovery deletes and replaces what a journal names, so one
    that was edited, copied from elsewhere or crafted must touch nothing."""
    folder = str(journal.get("deploy_dir") or "")
    names = [*dict(journal.get("targets") or {}), *dict(journal.get("replaced") or {})]
    backup = journal.get("backup_dir")
    if not folder or Path(folder).resolve() != Path(deploy_dir).resolve():
        return f"names the folder {folder or '(none)'}, not the deploy folder"
    bad = [n for n in names if not is_bare_name(str(n))]
    if bad:
        return f"names {bad[0]!r}, which is not a file inside the deploy folder"
    if backup is not None and not (is_bare_name(str(backup))
                                   and str(backup).startswith("backup_")):
        return f"names the backup folder {backup!r}, which is not inside the deploy folder"
    return None


def move_journal_aside(path: Path) -> Path:
    """Keep an untrusted journal for inspection as ``journal.rejected-<time>.json``."""
    stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}"
    aside = path.with_name(f"journal.rejected-{stamp}.json")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"journal.rejected-{stamp}-{n}.json")
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, aside)
    fsync_dir(path.parent)
    return aside


def write_journal(path: Path, journal: dict) -> None:
    atomic_write_json(path, journal)


def clear_journal(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fsync_dir(path.parent)


def check_targets(journal: dict) -> None:
    """Re-hash the folder: every target file must now hold exactly the bytes planned."""
    folder = Path(journal["deploy_dir"])
    for name, sha in journal["targets"].items():
        path = folder / name
        if sha is None:
            if path.exists():
                raise DeployError(f"{path} should have been removed; retry the deploy")
        elif not path.is_file() or sha256_file(path) != sha:
            raise DeployError(
                f"{path} does not hold the bytes just installed; check the disk and retry"
            )


def targets_in_place(folder: Path, targets: dict[str, str | None]) -> bool:
    for name, sha in targets.items():
        path = folder / name
        if sha is None:
            if path.exists():
                return False
        elif not path.is_file() or sha256_file(path) != sha:
            return False
    return True
