"""The deploy journal: ``journal.json`` in the store, present only while a deploy is unfinished.

It records what the deploy will write, with the sha256 each file must end up with, what it
replaces, the backup folder's name and the aliases before/after. A journal left behind by a
crash is how the next start knows to roll the deploy forward or back.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

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
