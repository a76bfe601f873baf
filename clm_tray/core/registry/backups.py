"""Backup folders in the deploy folder: the files a deploy replaced, kept so they can come back.

Before a deploy replaces anything it copies the old files into ``backup_YYYYMMDD_HHMMSS/``
inside the deploy folder and seals that folder with ``backup_manifest.json`` (written last: no
manifest = incomplete backup). This module makes, names, seals, lists and prunes those folders;
the deployer decides when, and what retention must spare.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
from pathlib import Path

from clm_tray.core.errors import DeployError
from clm_tray.core.fsutil import (
    atomic_write_json,
    copy_file_durably,
    fsync_dir,
    read_json,
    sha256_file,
)
from clm_tray.core.registry.deploy_steps import step_reached

BACKUP_MANIFEST = "backup_manifest.json"
TRASH_PREFIX = ".clm-tray-trash-"
_BACKUP_RE = re.compile(r"^backup_(\d{8}_\d{6})(?:_(\d+))?$")


def new_backup_name(deploy_dir: Path) -> str:
    """``backup_YYYYMMDD_HHMMSS`` (local time), suffixed ``_2``, ``_3``... within a second.

    The suffix is one more than the highest in use for that second (retention never deletes
    the newest backup), so name order stays creation order even after older ones are gone.
    """
    stamp = f"{dt.datetime.now():%Y%m%d_%H%M%S}"
    taken = [
        int(m.group(2) or 1)
        for entry in deploy_dir.iterdir()
        if (m := _BACKUP_RE.match(entry.name.removeprefix(TRASH_PREFIX)))
        and m.group(1) == stamp
    ]
    n = max(taken, default=0) + 1
    return f"backup_{stamp}" if n == 1 else f"backup_{stamp}_{n}"


def make_backup(deploy_dir: Path, journal: dict, model_file: str, version: str | None,
                created: str) -> Path | None:
    """Copy the files the journal says are about to be replaced into its backup folder, check
    each copy against the sha256 the journal recorded, and seal it (None: nothing to back up).

    ``version`` is the stored version the files are (None for files clm-tray never knew);
    ``created`` the ISO time the backup manifest records.
    """
    if not journal["backup_dir"]:
        return None
    folder = deploy_dir / journal["backup_dir"]
    folder.mkdir()
    files: dict[str, dict] = {}
    for i, (name, expected) in enumerate(journal["replaced"].items()):
        sha, size = copy_file_durably(deploy_dir / name, folder / name)
        if sha != expected:
            raise DeployError(
                f"{deploy_dir / name} changed while it was being backed up; "
                "stop whatever else writes to the deploy folder and retry"
            )
        files[name] = {"sha256": sha, "size": size}
        if i == 0:
            step_reached("backup_partial")
    seal_backup(
        folder,
        created=created,
        version=version,
        model_file=model_file,
        reason=f"before {journal['op']} of {journal['version']}",
        files=files,
    )
    return folder


def seal_backup(
    folder: Path,
    *,
    created: str,
    version: str | None,
    model_file: str,
    reason: str,
    files: dict[str, dict],
) -> None:
    """Write the backup manifest, the last step of a backup: from now on it can be restored."""
    atomic_write_json(
        folder / BACKUP_MANIFEST,
        {
            "created": created,
            "version": version,
            "model_file": model_file,
            "reason": reason,
            "files": files,
        },
    )
    fsync_dir(folder.parent)


def list_backups(deploy_dir: Path, model_file: str) -> list[dict]:
    """Backup folders in the deploy folder, oldest first."""
    if not deploy_dir.is_dir():
        return []
    found = [d for d in deploy_dir.iterdir() if d.is_dir() and _BACKUP_RE.match(d.name)]
    return [describe_backup(d, model_file) for d in sorted(found, key=_backup_order)]


def describe_backup(folder: Path, model_file: str) -> dict:
    """One backup as a row: name, path, when, which version, the model's sha256 and size."""
    info: dict = {"name": folder.name, "path": folder, "created": None, "version": None,
                  "sha256": None, "size": None}
    manifest: dict = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = read_json(folder / BACKUP_MANIFEST)
        manifest = loaded if isinstance(loaded, dict) else {}
    model_name = manifest.get("model_file", model_file)
    listed = manifest.get("files") or {}
    # A backup of an adopted layout may hold no native model (only xgb_model.pkl): show that.
    entry = listed.get(model_name) or next(iter(listed.values()), {})
    info["version"] = manifest.get("version")
    info["created"] = manifest.get("created")
    if entry:
        info["sha256"], info["size"] = entry.get("sha256"), entry.get("size")
    elif (folder / model_name).is_file():  # a backup made before clm-tray
        info["sha256"] = sha256_file(folder / model_name)
        info["size"] = (folder / model_name).stat().st_size
    if not info["created"]:
        m = _BACKUP_RE.match(folder.name)
        stamp = dt.datetime.strptime(m.group(1), "%Y%m%d_%H%M%S") if m else None
        info["created"] = stamp.astimezone().isoformat(timespec="seconds") if stamp else None
    return info


def prune_backups(
    deploy_dir: Path,
    backups: list[dict],
    *,
    keep: int,
    previous_sha: str | None,
    journal_backup: str | None,
    previous_id: str | None = None,
) -> None:
    """Delete all but the newest ``keep`` backups, sparing the newest one holding the
    ``previous`` model (``previous_sha`` / ``previous_id``) and the one a journal still needs."""
    kept = {b["name"] for b in backups[-keep:]}
    if previous_sha is not None or previous_id is not None:
        holding = [b["name"] for b in backups if (previous_sha and b["sha256"] == previous_sha)
                   or (previous_id and b.get("version") == previous_id)]
        kept.update(holding[-1:])
    if journal_backup:
        kept.add(journal_backup)
    for b in backups:
        if b["name"] in kept:
            continue
        trash = deploy_dir / f"{TRASH_PREFIX}{b['name']}"
        with contextlib.suppress(OSError):
            os.rename(b["path"], trash)  # gone from view at once; deleted below
            shutil.rmtree(trash, ignore_errors=True)


def _backup_order(folder: Path) -> tuple[str, int]:
    m = _BACKUP_RE.match(folder.name)
    return (m.group(1), int(m.group(2) or 1)) if m else (folder.name, 0)
