"""Install a stored version into the backend's models folder without ever leaving it broken.

One journaled code path serves both install and rollback:

1. verify the version's bytes against its manifest;
2. write ``journal.json`` in the store (what will be written, with the sha256 each file must
   end up with, what is being replaced, the backup folder's name, the aliases before/after);
3. back up the files being replaced into ``backup_YYYYMMDD_HHMMSS/`` inside the deploy folder
   and seal it with ``backup_manifest.json`` (written last: no manifest = incomplete backup);
4. write each new file to a temp name in the same folder, fsync, then ``os.replace`` them:
   model, pickle (if any), and the ``<stem>.meta.json`` last;
5. re-hash what is now in the folder, move the aliases, clear the journal, apply retention.

If the process dies anywhere in between, ``recover()`` reads the journal at the next start:
when every target file already carries its expected sha256 the deploy is rolled forward
(aliases moved, journal cleared), otherwise the replaced files are restored from the sealed
backup. Files are only replaced after the backup is sealed, so an unsealed backup means nothing
was touched yet. Either way the folder ends with exactly one complete model, old or new.

The formats written follow the folder (formats.py): a folder whose backend loads
``xgb_model.pkl`` gets a new ``xgb_model.pkl`` at every deploy. A deploy never removes a file of
that layout without writing its replacement; only a rollback to an *adopted* version (the files
that were there before clm-tray) removes the files clm-tray added, so the folder holds exactly
the adopted files again. clm-tray writes pickles and never loads one.

The backup folders live in ``backups.py``, the journal file in ``deploy_journal.py`` and the
deploy folder's own chores (log line, temp names, leftovers) in ``deploy_folder.py``; the
public names are re-exported here, so callers import from ``clm_tray.core.registry.deploy`` alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from clm_tray.core.errors import ClmError, DeployError, StoreError
from clm_tray.core.fsutil import (
    copy_file_durably,
    fsync_dir,
    read_json,
    sha256_file,
    write_file_durably,
)
from clm_tray.core.registry.backups import (
    BACKUP_MANIFEST,
    list_backups,
    new_backup_name,
    prune_backups,
    seal_backup,
)
from clm_tray.core.registry.deploy_folder import (
    append_log,
    ensure_deploy_folder,
    remove_leftovers,
    temp_path,
)
from clm_tray.core.registry.deploy_journal import (
    check_targets,
    clear_journal,
    move_journal_aside,
    read_journal,
    targets_in_place,
    untrusted_reason,
    write_journal,
)
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.registry.version import ModelVersion

# Step boundaries where a crash test may kill the deploying process, in the order they occur.
FAULT_STEPS: tuple[str, ...] = (
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


def fault_point(step: str) -> None:
    """A step boundary of the journaled path (FAULT_STEPS): tell the observers, if any."""
    for observer in list(_step_observers):
        observer(step)


@dataclass
class DeployResult:
    version: str
    sha256: str
    backup_dir: Path | None
    files: list[str]
    previous: str | None


class Deployer:
    """Installs versions from a ModelStore into one deploy folder, journaled and backed up."""

    def __init__(
        self,
        store: ModelStore,
        deploy_dir: Path,
        model_file: str = "xgb_model.ubj",
        backup_keep: int = 10,
        write_pickle: bool | None = None,
    ) -> None:
        self.store = store
        self.deploy_dir = Path(deploy_dir)
        self.model_file = model_file
        stem = Path(model_file).stem
        self.meta_file = f"{stem}.meta.json"
        self.pickle_file = f"{stem}.pkl"
        self.backup_keep = max(1, int(backup_keep))
        self.write_pickle = write_pickle  # None: when the folder holds one (formats.py)

    # ---- public API -----------------------------------------------------------------------

    def install(self, version: ModelVersion, *, reason: str) -> DeployResult:
        """Make ``version`` the deployed champion; the replaced one becomes ``previous``."""
        return self._deploy(version, op="install", reason=reason)

    def rollback(self, version: ModelVersion | None = None, *, reason: str) -> DeployResult:
        """Put ``version`` (default: the ``previous`` alias) back, journaled like an install."""
        if version is None:
            previous = self.store.aliases()["previous"]
            if not previous:
                raise DeployError(
                    f"there is no previous version to roll back to ({self.store.aliases_path} "
                    "has no 'previous'); name one: `clm-tray rollback VERSION` "
                    "(see `clm-tray versions`)"
                )
            version = self.store.get(previous)
        return self._deploy(version, op="rollback", reason=reason)

    def recover(self) -> str | None:
        """Finish or undo a deploy that a crash interrupted; describe what was done, or None."""
        with self.store.cycle_lock():
            try:
                journal = read_journal(self.store.journal_path)
            except DeployError:
                self._reject_journal("cannot be read or is not a deploy journal")
            if journal is not None:
                self._check_journal_paths(journal)
            if journal is None:
                removed = remove_leftovers(self.deploy_dir)
                if removed:
                    return f"removed {removed} left-over temporary file(s) from {self.deploy_dir}"
                return None
            return self._resolve(journal, force_back=False)

    def deployed_sha256(self) -> str | None:
        path = self.deploy_dir / self.model_file
        return sha256_file(path) if path.is_file() else None

    def deployed_meta(self) -> dict | None:
        try:
            data = read_json(self.deploy_dir / self.meta_file)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def backups(self) -> list[dict]:
        """Backup folders in the deploy folder, oldest first."""
        return list_backups(self.deploy_dir, self.model_file)

    def append_log(self, message: str, now: dt.datetime | None = None) -> None:
        """Append one ``YYYY-MM-DD HH:MM:SS - message`` line (local time) to the log file."""
        append_log(self.deploy_dir, message, now)

    # ---- the one journaled path -----------------------------------------------------------

    def _deploy(self, version: ModelVersion, *, op: str, reason: str) -> DeployResult:
        with self.store.cycle_lock():
            self.recover()
            self.store.verify(version)
            ensure_deploy_folder(self.deploy_dir)
            plan = self._plan(version)  # [(name, role, bytes | Path, sha256)]
            before = self.store.aliases()
            after = dict(before)
            after["champion"] = version.id
            if before["champion"] and before["champion"] != version.id:
                after["previous"] = before["champion"]
            if after["challenger"] == version.id:
                after["challenger"] = None
            wanted = {name for name, *_ in plan}
            stale = self._stale(version, wanted)
            replaced = {
                name: sha256_file(self.deploy_dir / name)
                for name in [*wanted, *stale]
                if (self.deploy_dir / name).is_file()
            }
            journal = {
                "op": op,
                "version": version.id,
                "reason": reason,
                "started_at": _now_iso(),
                "pid": os.getpid(),
                "deploy_dir": str(self.deploy_dir.resolve()),
                "model_file": self.model_file,
                "targets": {**{n: sha for n, _r, _s, sha in plan}, **dict.fromkeys(stale)},
                "replaced": replaced,
                "backup_dir": new_backup_name(self.deploy_dir) if replaced else None,
                "aliases_before": before,
                "aliases_after": after,
                "step": "backup",
            }
            try:
                write_journal(self.store.journal_path, journal)
            except OSError as exc:
                raise StoreError(
                    f"cannot write {self.store.journal_path} ({exc.strerror or exc}); "
                    "check the store folder's permissions and free space"
                ) from exc
            try:
                fault_point("journal_written")
                backup = self._make_backup(journal, before["champion"])
                fault_point("backup_done")
                journal["step"] = "install"
                write_journal(self.store.journal_path, journal)
                self._replace_files(plan, stale)
                check_targets(journal)
                journal["step"] = "aliases"
                write_journal(self.store.journal_path, journal)
                fault_point("before_aliases")
                self.store.set_aliases(**after)
                fault_point("aliases_set")
                fault_point("before_journal_cleared")
                clear_journal(self.store.journal_path)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    self._resolve(journal, force_back=True)
                if isinstance(exc, ClmError) or not isinstance(exc, Exception):
                    raise
                hint = "; check its permissions" if isinstance(exc, PermissionError) else ""
                raise DeployError(
                    f"installing {version.id} into {self.deploy_dir} failed ({exc}); "
                    f"the model that was there is still deployed{hint}"
                ) from exc
            self._remember_deployed(version, plan)
            self._apply_retention()
            return DeployResult(
                version=version.id,
                sha256=version.sha256,
                backup_dir=backup,
                files=[name for name, *_ in plan],
                previous=after["previous"],
            )

    def _plan(self, version: ModelVersion) -> list[tuple[str, str, bytes | Path, str]]:
        """What to write, in order: model, pickle / other formats, meta JSON last.

        The version's own files first (an adopted version: exactly its files); then any format
        the folder needs that the version does not carry, made from its native model.
        """
        from clm_tray.core.registry.formats import extra_formats

        plan: list[tuple[str, str, bytes | Path, str]] = []
        for name, source, sha in version.deploy_files(self.model_file):
            if self.write_pickle is False and name == self.pickle_file and not version.adopted:
                continue
            role = "model" if name == self.model_file else (
                "pickle" if name == self.pickle_file else "format")
            plan.append((name, role, source, sha))
        if not version.adopted:
            have = {name for name, *_ in plan}
            stem = Path(self.model_file).stem
            for suffix in extra_formats(self.deploy_dir, self.model_file, self.write_pickle):
                name = f"{stem}{suffix}"
                if name in have:
                    continue
                data = (self._pickle_bytes(version.model_path) if suffix == ".pkl"
                        else self._format_bytes(version.model_path, suffix))
                plan.append((name, "pickle" if suffix == ".pkl" else "format", data,
                             _sha256_bytes(data)))
        plan.sort(key=lambda p: ("model", "pickle", "format").index(p[1]))
        meta = {
            "version": version.id,
            "model_sha256": version.sha256,
            "features": version.features,
            "trained_at": version.trained_at.isoformat(timespec="seconds"),
            "deployed_at": _now_iso(),
            "files": {name: sha for name, _r, _s, sha in plan},
        }
        if version.adopted:
            meta["adopted"] = True
        data = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
        plan.append((self.meta_file, "meta", data, _sha256_bytes(data)))
        return plan

    def _stale(self, version: ModelVersion, wanted: set[str]) -> list[str]:
        """Files to remove: only when an adopted version comes back, the model files
        clm-tray added since (they are backed up first), so the folder holds exactly the
        adopted files again. Installing a trained version never removes anything."""
        if not version.adopted:
            return []
        from clm_tray.core.registry.formats import WRITABLE

        stem = Path(self.model_file).stem
        ours = {self.model_file, *(f"{stem}{suffix}" for suffix in WRITABLE)}
        return sorted(n for n in ours - wanted if (self.deploy_dir / n).is_file())

    def _pickle_bytes(self, model_path: Path) -> bytes:
        """A pickled XGBClassifier for old backends; written only, never loaded by clm-tray."""
        return self._format_bytes(model_path, ".pkl")

    def _format_bytes(self, model_path: Path, suffix: str) -> bytes:
        from clm_tray.core.registry.formats import model_bytes

        return model_bytes(model_path, suffix)

    def _remember_deployed(self, version: ModelVersion, plan: list) -> None:
        """Note the bytes each file got, so adoption knows them as ours (never a hand copy)."""
        files = {name: sha for name, role, _s, sha in plan if role != "meta"}
        with contextlib.suppress(ClmError, OSError):
            self.store.annotate(version.id, "deployed_files", files)

    def _make_backup(self, journal: dict, old_champion: str | None) -> Path | None:
        """Copy the files about to be replaced into a new backup folder and seal it."""
        if not journal["backup_dir"]:
            return None
        folder = self.deploy_dir / journal["backup_dir"]
        folder.mkdir()
        files: dict[str, dict] = {}
        for i, (name, expected) in enumerate(journal["replaced"].items()):
            sha, size = copy_file_durably(self.deploy_dir / name, folder / name)
            if sha != expected:
                raise DeployError(
                    f"{self.deploy_dir / name} changed while it was being backed up; "
                    "stop whatever else writes to the deploy folder and retry"
                )
            files[name] = {"sha256": sha, "size": size}
            if i == 0:
                fault_point("backup_partial")
        seal_backup(
            folder,
            created=_now_iso(),
            version=self._backed_up_version(files, old_champion),
            model_file=self.model_file,
            reason=f"before {journal['op']} of {journal['version']}",
            files=files,
        )
        return folder

    def _backed_up_version(self, files: dict[str, dict], hint: str | None) -> str | None:
        """Which stored version the backed-up files are (None for files clm-tray never knew)."""
        shas = {f["sha256"] for f in files.values()}
        meta = self.deployed_meta() or {}
        for vid in (meta.get("version"), hint):
            if not vid:
                continue
            with contextlib.suppress(StoreError):
                v = self.store.get(str(vid))
                known = set(v.stored_files().values())
                known.update((self.store.notes(v.id).get("deployed_files") or {}).values())
                if shas & known:
                    return str(vid)
        return None

    def _replace_files(self, plan: list, stale: list[str]) -> None:
        temps = []
        for name, role, source, sha in plan:
            tmp = temp_path(self.deploy_dir, name)
            if isinstance(source, Path):
                got, _size = copy_file_durably(source, tmp)
            else:
                write_file_durably(tmp, source)
                got = _sha256_bytes(source)
            if got != sha:
                raise DeployError(
                    f"{source if isinstance(source, Path) else name} changed while it was being "
                    "copied; run `clm-tray versions` and retry"
                )
            temps.append((name, role, tmp))
            fault_point(f"temp_written_{role}")
        for name, role, tmp in temps:
            if role == "meta":
                for gone in stale:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.deploy_dir / gone)
                    fsync_dir(self.deploy_dir)
                    fault_point("replaced_pickle")
            _replace(tmp, self.deploy_dir / name)
            fsync_dir(self.deploy_dir)
            fault_point("meta_written" if role == "meta" else f"replaced_{role}")

    # ---- recovery -------------------------------------------------------------------------

    def _check_journal_paths(self, journal: dict) -> None:
        problem = untrusted_reason(journal, self.deploy_dir)
        if problem:
            self._reject_journal(problem)

    def _reject_journal(self, problem: str) -> NoReturn:
        """Move an untrusted journal aside (never delete it) and say so in one line."""
        aside = move_journal_aside(self.store.journal_path)
        raise DeployError(
            f"{self.store.journal_path.name} {problem}; it was not trusted and was moved to "
            f"{aside} with nothing changed — check {self.deploy_dir} holds one complete model"
        )

    def _resolve(self, journal: dict, *, force_back: bool) -> str:
        """Roll an interrupted deploy forward (all new files in place) or back (restore)."""
        folder = Path(journal["deploy_dir"])
        op, vid = journal.get("op", "deploy"), journal.get("version")
        forward = not force_back and targets_in_place(folder, journal["targets"])
        if forward:
            self.store.set_aliases(**journal["aliases_after"])
            outcome = (
                f"finished the interrupted {op} of {vid} in {folder} "
                "(every new file was already in place)"
            )
        else:
            self._restore(folder, journal)
            self.store.set_aliases(**journal["aliases_before"])
            kept = journal["aliases_before"].get("champion") or "the model that was there"
            outcome = f"undid the interrupted {op} of {vid} in {folder}; {kept} is still deployed"
        remove_leftovers(folder)
        clear_journal(self.store.journal_path)
        if forward and folder == self.deploy_dir.resolve():
            self._apply_retention()
        return outcome

    def _restore(self, folder: Path, journal: dict) -> None:
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
            _replace(tmp, live)
        for name in journal["targets"]:
            if name not in replaced:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / name)
        fsync_dir(folder)

    # ---- retention ------------------------------------------------------------------------

    def _apply_retention(self) -> None:
        """Keep the newest ``backup_keep`` backups, plus the one holding ``previous``."""
        backups = self.backups()
        if len(backups) <= self.backup_keep:
            return
        previous_sha = None
        previous = self.store.aliases()["previous"]
        if previous:
            with contextlib.suppress(StoreError):
                previous_sha = self.store.get(previous).sha256
        journal = None
        with contextlib.suppress(DeployError):
            journal = read_journal(self.store.journal_path)
        prune_backups(
            self.deploy_dir,
            backups,
            keep=self.backup_keep,
            previous_sha=previous_sha,
            journal_backup=journal.get("backup_dir") if journal else None,
            previous_id=previous,
        )


def _replace(src: Path, dst: Path) -> None:
    """os.replace, retried briefly: on Windows a reader holding the file blocks the rename."""
    for attempt in range(10):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 9:
                raise
            time.sleep(0.2)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
