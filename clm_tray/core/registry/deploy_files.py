"""What a deploy writes into the folder, and how each file lands there whole.

``plan_files`` lists the files in the order they are written: the model, the other formats the
folder needs (a pickle for a backend that unpickles one, made from the native model, never
loaded), and ``<stem>.meta.json`` last, since a backend reading the meta finds every file it
names already in place. ``replace_files`` writes each under a temporary name, fsyncs it, checks
its sha256 against the plan, and only then swaps them in with ``os.replace``, reporting each
step boundary (deploy_steps.py) as it goes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from clm_tray.core.errors import DeployError
from clm_tray.core.fsutil import copy_file_durably, fsync_dir, write_file_durably
from clm_tray.core.registry.deploy_folder import temp_path
from clm_tray.core.registry.deploy_steps import step_reached
from clm_tray.core.registry.formats import WRITABLE, extra_formats, model_bytes
from clm_tray.core.registry.version import ModelVersion

# One file of a deploy: (name in the deploy folder, role, bytes or a stored file, its sha256);
# role is "model", "pickle", "format" or "meta".
PlannedFile = tuple[str, str, bytes | Path, str]


def plan_files(version: ModelVersion, deploy_dir: Path, model_file: str,
               write_pickle: bool | None,
               make_bytes: Callable[[Path, str], bytes] = model_bytes) -> list[PlannedFile]:
    """What to write, in order: model, pickle / other formats, meta JSON last.

    The version's own files first (an adopted version: exactly its files); then any format
    the folder needs that the version does not carry, made from its native model by
    ``make_bytes(model_path, suffix)`` (formats.model_bytes).
    """
    stem = Path(model_file).stem
    pickle_file = f"{stem}.pkl"
    plan: list[PlannedFile] = []
    for name, source, sha in version.deploy_files(model_file):
        if write_pickle is False and name == pickle_file and not version.adopted:
            continue
        role = "model" if name == model_file else (
            "pickle" if name == pickle_file else "format")
        plan.append((name, role, source, sha))
    if not version.adopted:
        have = {name for name, *_ in plan}
        for suffix in extra_formats(deploy_dir, model_file, write_pickle):
            name = f"{stem}{suffix}"
            if name in have:
                continue
            data = make_bytes(version.model_path, suffix)
            plan.append((name, "pickle" if suffix == ".pkl" else "format", data,
                         sha256_bytes(data)))
    plan.sort(key=lambda p: ("model", "pickle", "format").index(p[1]))
    meta = {
        "version": version.id,
        "model_sha256": version.sha256,
        "features": version.features,
        "trained_at": version.trained_at.isoformat(timespec="seconds"),
        "deployed_at": now_iso(),
        "files": {name: sha for name, _r, _s, sha in plan},
    }
    if version.adopted:
        meta["adopted"] = True
    data = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
    plan.append((f"{stem}.meta.json", "meta", data, sha256_bytes(data)))
    return plan


def stale_files(version: ModelVersion, deploy_dir: Path, model_file: str,
                wanted: set[str]) -> list[str]:
    """Files to remove: only when an adopted version comes back, the model files
    clm-tray added since (they are backed up first), so the folder holds exactly the
    adopted files again. Installing a trained version never removes anything."""
    if not version.adopted:
        return []
    stem = Path(model_file).stem
    ours = {model_file, *(f"{stem}{suffix}" for suffix in WRITABLE)}
    return sorted(n for n in ours - wanted if (deploy_dir / n).is_file())


def replace_files(deploy_dir: Path, plan: list[PlannedFile], stale: list[str]) -> None:
    """Write every planned file under a temp name and check it, then swap them all in (the
    stale files go just before the meta JSON, the last file)."""
    temps = []
    for name, role, source, sha in plan:
        tmp = temp_path(deploy_dir, name)
        if isinstance(source, Path):
            got, _size = copy_file_durably(source, tmp)
        else:
            write_file_durably(tmp, source)
            got = sha256_bytes(source)
        if got != sha:
            raise DeployError(
                f"{source if isinstance(source, Path) else name} changed while it was being "
                "copied; run `clm-tray versions` and retry"
            )
        temps.append((name, role, tmp))
        step_reached(f"temp_written_{role}")
    for name, role, tmp in temps:
        if role == "meta":
            for gone in stale:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(deploy_dir / gone)
                fsync_dir(deploy_dir)
                step_reached("replaced_pickle")
        replace_file(tmp, deploy_dir / name)
        fsync_dir(deploy_dir)
        step_reached("meta_written" if role == "meta" else f"replaced_{role}")


def replace_file(src: Path, dst: Path) -> None:
    """os.replace, retried briefly: on Windows a reader holding the file blocks the rename."""
    for attempt in range(10):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 9:
                raise
            time.sleep(0.2)


def sha256_bytes(data: bytes) -> str:
    """The sha256 a file holding ``data`` will have."""
    return hashlib.sha256(data).hexdigest()


def now_iso() -> str:
    """Now, UTC, to the second: the time stamps of journals, metas and backups."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
