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

The optional ``xgb_model.pkl`` exists for old backends that unpickle their model. clm-tray
writes it and never loads it (nor any pickle).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from clm_tray.core.errors import ClmError, DeployError, StoreError
from clm_tray.core.fsutil import atomic_write_json, fsync_dir, read_json, sha256_file
from clm_tray.core.store import ModelStore, ModelVersion, copy_file_durably, write_file_durably

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

BACKUP_MANIFEST = "backup_manifest.json"
LOG_FILE = "retraining_log.txt"
TEMP_SUFFIX = ".clm-tray-tmp"
_TRASH_PREFIX = ".clm-tray-trash-"
_BACKUP_RE = re.compile(r"^backup_(\d{8}_\d{6})(?:_(\d+))?$")


def fault_point(step: str) -> None:
    """Kill this process at ``step`` when a crash test asks for it (never in production).

    Honoured only when ``CLM_TRAY_TESTING=1`` and ``CLM_TRAY_FAULT`` names the step.
    """
    if os.environ.get("CLM_TRAY_TESTING") != "1" or os.environ.get("CLM_TRAY_FAULT") != step:
        return
    if os.name == "nt":
        os._exit(137)
    os.kill(os.getpid(), signal.SIGKILL)


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
        write_pickle: bool = False,
    ) -> None:
        self.store = store
        self.deploy_dir = Path(deploy_dir)
        self.model_file = model_file
        stem = Path(model_file).stem
        self.meta_file = f"{stem}.meta.json"
        self.pickle_file = f"{stem}.pkl"
        self.backup_keep = max(1, int(backup_keep))
        self.write_pickle = write_pickle

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
            journal = self._read_journal()
            if journal is None:
                removed = _remove_leftovers(self.deploy_dir)
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
        if not self.deploy_dir.is_dir():
            return []
        found = [d for d in self.deploy_dir.iterdir() if d.is_dir() and _BACKUP_RE.match(d.name)]
        return [self._describe_backup(d) for d in sorted(found, key=_backup_order)]

    def append_log(self, message: str, now: dt.datetime | None = None) -> None:
        """Append one ``YYYY-MM-DD HH:MM:SS - message`` line (local time) to the log file."""
        stamp = (now.astimezone() if now and now.tzinfo else now) or dt.datetime.now()
        line = f"{stamp:%Y-%m-%d %H:%M:%S} - {' '.join(str(message).split())}\n"
        self._ensure_folder()
        path = self.deploy_dir / LOG_FILE
        try:
            with open(path, "ab") as fh:
                fh.write(line.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise DeployError(
                f"cannot append to {path} ({exc.strerror or exc}); check its permissions"
            ) from exc

    # ---- the one journaled path -----------------------------------------------------------

    def _deploy(self, version: ModelVersion, *, op: str, reason: str) -> DeployResult:
        with self.store.cycle_lock():
            self.recover()
            self.store.verify(version)
            self._ensure_folder()
            plan = self._plan(version)  # [(name, role, bytes | Path, sha256)]
            before = self.store.aliases()
            after = dict(before)
            after["champion"] = version.id
            if before["champion"] and before["champion"] != version.id:
                after["previous"] = before["champion"]
            if after["challenger"] == version.id:
                after["challenger"] = None
            wanted = {name for name, *_ in plan}
            stale = [self.pickle_file] if self.pickle_file not in wanted else []
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
                "backup_dir": self._new_backup_name() if replaced else None,
                "aliases_before": before,
                "aliases_after": after,
                "step": "backup",
            }
            try:
                self._write_journal(journal)
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
                self._write_journal(journal)
                self._replace_files(plan, stale)
                self._check_targets(journal)
                journal["step"] = "aliases"
                self._write_journal(journal)
                fault_point("before_aliases")
                self.store.set_aliases(**after)
                fault_point("aliases_set")
                fault_point("before_journal_cleared")
                self._clear_journal()
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
            self._apply_retention()
            return DeployResult(
                version=version.id,
                sha256=version.sha256,
                backup_dir=backup,
                files=[name for name, *_ in plan],
                previous=after["previous"],
            )

    def _plan(self, version: ModelVersion) -> list[tuple[str, str, bytes | Path, str]]:
        """What to write, in order: model, pickle (if asked), meta JSON last."""
        plan: list[tuple[str, str, bytes | Path, str]] = [
            (self.model_file, "model", version.model_path, version.sha256)
        ]
        if self.write_pickle:
            data = self._pickle_bytes(version.model_path)
            plan.append((self.pickle_file, "pickle", data, _sha256_bytes(data)))
        meta = {
            "version": version.id,
            "model_sha256": version.sha256,
            "features": version.features,
            "trained_at": version.trained_at.isoformat(timespec="seconds"),
            "deployed_at": _now_iso(),
        }
        data = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
        plan.append((self.meta_file, "meta", data, _sha256_bytes(data)))
        return plan

    def _pickle_bytes(self, model_path: Path) -> bytes:
        """A pickled XGBClassifier for old backends; written only, never loaded by clm-tray."""
        import pickle

        import xgboost

        clf = xgboost.XGBClassifier()
        clf.load_model(str(model_path))
        return pickle.dumps(clf, protocol=4)

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
        model_sha = files.get(self.model_file, {}).get("sha256")
        atomic_write_json(
            folder / BACKUP_MANIFEST,
            {
                "created": _now_iso(),
                "version": self._version_with_sha(model_sha, old_champion),
                "model_file": self.model_file,
                "reason": f"before {journal['op']} of {journal['version']}",
                "files": files,
            },
        )
        fsync_dir(self.deploy_dir)
        return folder

    def _version_with_sha(self, sha: str | None, hint: str | None) -> str | None:
        """Which stored version the backed-up model is (None for a model clm-tray never made)."""
        if not sha:
            return None
        meta = self.deployed_meta() or {}
        candidates = [meta.get("version"), hint]
        for vid in candidates:
            if vid:
                with contextlib.suppress(StoreError):
                    if self.store.get(vid).sha256 == sha:
                        return str(vid)
        return None

    def _replace_files(self, plan: list, stale: list[str]) -> None:
        temps = []
        for name, role, source, sha in plan:
            tmp = _temp_path(self.deploy_dir, name)
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

    def _check_targets(self, journal: dict) -> None:
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

    # ---- recovery -------------------------------------------------------------------------

    def _resolve(self, journal: dict, *, force_back: bool) -> str:
        """Roll an interrupted deploy forward (all new files in place) or back (restore)."""
        folder = Path(journal["deploy_dir"])
        op, vid = journal.get("op", "deploy"), journal.get("version")
        forward = not force_back and _targets_in_place(folder, journal["targets"])
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
        _remove_leftovers(folder)
        self._clear_journal()
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
            tmp = _temp_path(folder, name)
            copy_file_durably(source, tmp)
            _replace(tmp, live)
        for name in journal["targets"]:
            if name not in replaced:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / name)
        fsync_dir(folder)

    # ---- journal, folder, retention -------------------------------------------------------

    def _read_journal(self) -> dict | None:
        try:
            journal = read_json(self.store.journal_path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DeployError(
                f"{self.store.journal_path} cannot be read ({exc}); check the deploy folder "
                "holds one complete model, then delete the journal"
            ) from exc
        if not isinstance(journal, dict) or not {"targets", "deploy_dir"} <= journal.keys():
            raise DeployError(
                f"{self.store.journal_path} is not a deploy journal; check the deploy folder "
                "holds one complete model, then delete the journal"
            )
        return journal

    def _write_journal(self, journal: dict) -> None:
        atomic_write_json(self.store.journal_path, journal)

    def _clear_journal(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.store.journal_path)
        fsync_dir(self.store.root)

    def _ensure_folder(self) -> None:
        folder = self.deploy_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeployError(
                f"cannot create the deploy folder {folder} ({exc.strerror or exc}); "
                "check QT_CLM_DEPLOY_DIR and its permissions"
            ) from exc
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DeployError(f"the deploy folder {folder} is not writable; check its permissions")

    def _new_backup_name(self) -> str:
        """``backup_YYYYMMDD_HHMMSS`` (local time), suffixed ``_2``, ``_3``... within a second.

        The suffix is one more than the highest in use for that second (retention never deletes
        the newest backup), so name order stays creation order even after older ones are gone.
        """
        stamp = f"{dt.datetime.now():%Y%m%d_%H%M%S}"
        taken = [
            int(m.group(2) or 1)
            for entry in self.deploy_dir.iterdir()
            if (m := _BACKUP_RE.match(entry.name.removeprefix(_TRASH_PREFIX)))
            and m.group(1) == stamp
        ]
        n = max(taken, default=0) + 1
        return f"backup_{stamp}" if n == 1 else f"backup_{stamp}_{n}"

    def _describe_backup(self, folder: Path) -> dict:
        info: dict = {"name": folder.name, "path": folder, "created": None, "version": None,
                      "sha256": None, "size": None}
        manifest: dict = {}
        with contextlib.suppress(OSError, ValueError):
            loaded = read_json(folder / BACKUP_MANIFEST)
            manifest = loaded if isinstance(loaded, dict) else {}
        model_name = manifest.get("model_file", self.model_file)
        entry = (manifest.get("files") or {}).get(model_name) or {}
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

    def _apply_retention(self) -> None:
        """Keep the newest ``backup_keep`` backups, plus the one holding ``previous``."""
        backups = self.backups()
        if len(backups) <= self.backup_keep:
            return
        keep = {b["name"] for b in backups[-self.backup_keep :]}
        previous = self.store.aliases()["previous"]
        if previous:
            with contextlib.suppress(StoreError):
                sha = self.store.get(previous).sha256
                holding = [b["name"] for b in backups if b["sha256"] == sha]
                keep.update(holding[-1:])
        journal = None
        with contextlib.suppress(DeployError):
            journal = self._read_journal()
        if journal and journal.get("backup_dir"):
            keep.add(journal["backup_dir"])
        for b in backups:
            if b["name"] in keep:
                continue
            trash = self.deploy_dir / f"{_TRASH_PREFIX}{b['name']}"
            with contextlib.suppress(OSError):
                os.rename(b["path"], trash)  # gone from view at once; deleted below
                shutil.rmtree(trash, ignore_errors=True)


def _targets_in_place(folder: Path, targets: dict[str, str | None]) -> bool:
    for name, sha in targets.items():
        path = folder / name
        if sha is None:
            if path.exists():
                return False
        elif not path.is_file() or sha256_file(path) != sha:
            return False
    return True


def _remove_leftovers(folder: Path) -> int:
    """Delete our temp files and half-deleted backups; count what was removed."""
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
        elif entry.name.startswith(_TRASH_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    if removed:
        fsync_dir(folder)
    return removed


def _temp_path(folder: Path, name: str) -> Path:
    return folder / f".{name}{TEMP_SUFFIX}"


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


def _backup_order(folder: Path) -> tuple[str, int]:
    m = _BACKUP_RE.match(folder.name)
    return (m.group(1), int(m.group(2) or 1)) if m else (folder.name, 0)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
