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

This module is the transaction (``Deployer``). What it writes and how each file lands is
``deploy_files.py``; rolling an interrupted deploy forward or back ``deploy_recovery.py``; the
backup folders ``backups.py``, the journal file ``deploy_journal.py``, the step boundaries a
crash test can hook ``deploy_steps.py`` and the folder's chores (log line, temp names,
leftovers) ``deploy_folder.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from clm_tray.core.errors import ClmError, DeployError, StoreError
from clm_tray.core.fsutil import read_json, sha256_file
from clm_tray.core.registry.backups import list_backups, make_backup, new_backup_name, prune_backups
from clm_tray.core.registry.deploy_files import (
    PlannedFile,
    now_iso,
    plan_files,
    replace_files,
    stale_files,
)
from clm_tray.core.registry.deploy_folder import append_log, ensure_deploy_folder, remove_leftovers
from clm_tray.core.registry.deploy_journal import (
    check_targets,
    clear_journal,
    read_journal,
    untrusted_reason,
    write_journal,
)
from clm_tray.core.registry.deploy_recovery import reject_journal, resolve_interrupted
from clm_tray.core.registry.deploy_steps import step_reached
from clm_tray.core.registry.formats import model_bytes
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.registry.version import ModelVersion


@dataclass
class DeployResult:
    """What an install or rollback did: the version now deployed, its backup, the files."""

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
                reject_journal(self.store, self.deploy_dir,
                               "cannot be read or is not a deploy journal")
            if journal is not None:
                problem = untrusted_reason(journal, self.deploy_dir)
                if problem:
                    reject_journal(self.store, self.deploy_dir, problem)
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
            plan = plan_files(version, self.deploy_dir, self.model_file, self.write_pickle,
                              self._model_bytes)
            before = self.store.aliases()
            after = dict(before)
            after["champion"] = version.id
            if before["champion"] and before["champion"] != version.id:
                after["previous"] = before["champion"]
            if after["challenger"] == version.id:
                after["challenger"] = None
            wanted = {name for name, *_ in plan}
            stale = stale_files(version, self.deploy_dir, self.model_file, wanted)
            replaced = {
                name: sha256_file(self.deploy_dir / name)
                for name in [*wanted, *stale]
                if (self.deploy_dir / name).is_file()
            }
            journal = {
                "op": op,
                "version": version.id,
                "reason": reason,
                "started_at": now_iso(),
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
                step_reached("journal_written")
                backup = make_backup(self.deploy_dir, journal, self.model_file,
                                     self._backed_up_version(journal, before["champion"]),
                                     created=now_iso())
                step_reached("backup_done")
                journal["step"] = "install"
                write_journal(self.store.journal_path, journal)
                replace_files(self.deploy_dir, plan, stale)
                check_targets(journal)
                journal["step"] = "aliases"
                write_journal(self.store.journal_path, journal)
                step_reached("before_aliases")
                self.store.set_aliases(**after)
                step_reached("aliases_set")
                step_reached("before_journal_cleared")
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

    def _model_bytes(self, model_path: Path, suffix: str) -> bytes:
        """The new model in another format the folder needs (formats.py)."""
        if suffix == ".pkl":
            return self._pickle_bytes(model_path)
        return model_bytes(model_path, suffix)

    def _pickle_bytes(self, model_path: Path) -> bytes:
        """A pickled XGBClassifier for old backends; written only, never loaded by clm-tray."""
        return model_bytes(model_path, ".pkl")

    def _remember_deployed(self, version: ModelVersion, plan: list[PlannedFile]) -> None:
        """Note the bytes each file got, so adoption knows them as ours (never a hand copy)."""
        files = {name: sha for name, role, _s, sha in plan if role != "meta"}
        with contextlib.suppress(ClmError, OSError):
            self.store.annotate(version.id, "deployed_files", files)

    def _backed_up_version(self, journal: dict, hint: str | None) -> str | None:
        """Which stored version the files about to be backed up are (None for files clm-tray
        never knew, or when nothing is replaced)."""
        shas = set(journal["replaced"].values())
        if not shas:
            return None
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

    # ---- recovery -------------------------------------------------------------------------

    def _resolve(self, journal: dict, *, force_back: bool) -> str:
        """Roll an interrupted deploy forward or back (deploy_recovery.py), then prune."""
        outcome, forward = resolve_interrupted(self.store, journal, force_back=force_back)
        if forward and Path(journal["deploy_dir"]) == self.deploy_dir.resolve():
            self._apply_retention()
        return outcome

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
