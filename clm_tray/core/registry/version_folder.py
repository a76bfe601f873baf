"""A version's folder appears whole or not at all, and is never changed afterwards.

A new version is assembled under a temporary name inside ``versions/`` (``.incoming-*``), its
manifest written last, then renamed to a free id in one step; its files are then made
read-only. Removing one (store retention) is the same in reverse: one rename out of the
versions' namespace, then the delete. A reader of ``versions/`` therefore never sees half a
version, and what a killed writer leaves is a ``.incoming-*`` folder the next start sweeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clm_tray.core.errors import StoreError
from clm_tray.core.fsutil import fsync_dir, write_file_durably
from clm_tray.core.registry.version import (
    MANIFEST_FILE,
    VERSION_ID_RE,
    ModelVersion,
    parse_version_id,
)
from clm_tray.core.serialize import dumps

TMP_PREFIX = ".incoming-"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def version_dirs(versions_dir: Path) -> list[Path]:
    """The folders under ``versions/`` named like a version id (never a temporary one)."""
    if not versions_dir.is_dir():
        return []
    return [d for d in versions_dir.iterdir() if d.is_dir() and VERSION_ID_RE.match(d.name)]


def taken_sequences(versions_dir: Path) -> set[int]:
    """The sequence numbers the stored versions already use."""
    return {p[0] for p in (parse_version_id(d.name) for d in version_dirs(versions_dir)) if p}


def new_incoming(versions_dir: Path) -> Path:
    """An empty temporary folder inside ``versions/`` to assemble a version in."""
    tmp = versions_dir / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    tmp.mkdir()
    return tmp


def commit_version(versions_dir: Path, tmp: Path, body: dict,
                   make_id: Callable[[int], str], names: list[str]) -> ModelVersion:
    """Write the manifest, rename the folder to a free id and make its files read-only.

    ``make_id`` turns the next sequence number into an id; when another process takes that id
    first, the next number is tried.
    """
    for _attempt in range(1000):
        vid = make_id(max(taken_sequences(versions_dir), default=0) + 1)
        body["id"] = vid
        text = dumps(body, indent=2) + "\n"
        write_file_durably(tmp / MANIFEST_FILE, text.encode("utf-8"))
        fsync_dir(tmp)
        target = versions_dir / vid
        if target.exists():
            continue
        try:
            os.rename(tmp, target)
        except OSError:
            if target.exists():  # another process took this id first
                continue
            raise
        break
    else:  # pragma: no cover - a thousand collisions means something else is wrong
        raise StoreError(f"could not allocate a version id in {versions_dir}")
    fsync_dir(versions_dir)
    for name in (*names, MANIFEST_FILE):
        with contextlib.suppress(OSError):
            os.chmod(target / name, _READ_ONLY)
    return ModelVersion(vid, target, json.loads(text))


def delete_version_folder(versions_dir: Path, folder: Path) -> None:
    """Rename a version out of the versions' namespace in one step, then delete it (read-only
    files included), so a reader sees the version whole or not at all."""
    doomed = versions_dir / f"{TMP_PREFIX}removed-{uuid.uuid4().hex}"
    os.rename(folder, doomed)
    fsync_dir(versions_dir)

    def writable_then_retry(func: Any, path: str, _exc: Any) -> None:
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        func(path)

    shutil.rmtree(doomed, onerror=writable_then_retry)
