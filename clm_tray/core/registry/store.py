"""The model store: immutable versions, the aliases that point at them, and the cycle lock.

Layout under the store root::

    versions/<id>/model.ubj       the model, XGBoost native format (never rewritten)
    versions/<id>/model.pkl       the same model in another format the deploy folder needs
                                  (``formats`` in the manifest; written, never loaded)
    versions/<id>/manifest.json   what it is and how it scored (never rewritten)
    versions/<id>/notes.json      later findings (shadow tests, decisions); mutable
    aliases.json                  {"champion", "previous", "challenger"}
    history.sqlite                cycle history (history.py)
    journal.json                  only while a deploy is in flight (deploy.py)
    cycle.lock                    held by the one running retrain cycle on this machine

An *adopted* version (``v0000-adopted-YYYYMMDD``, adopt.py) holds the files that were already
deployed before clm-tray managed the folder, byte for byte under their own names (a pickle is
stored as bytes and never loaded); its manifest says ``"adopted": true`` and lists them.

A version's folder is assembled under a temporary name inside ``versions/`` and renamed into
place in one step, so a reader never sees half a version. Its files are then made read-only:
anything that changes later belongs in ``notes.json``, not in the manifest.

This module is the store's front door (``ModelStore``) and its sweep of leftovers; what one
version is lives in ``version.py``, how its folder is committed in ``version_folder.py``, the
aliases in ``aliases.py`` and the cycle lock in ``cycle_lock.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import shutil
from pathlib import Path
from typing import Any

from clm_tray.core.errors import StoreError
from clm_tray.core.fsutil import (
    atomic_write_json,
    copy_file_durably,
    read_json,
    sha256_file,
    write_file_durably,
)
from clm_tray.core.registry.aliases import read_aliases, write_aliases
from clm_tray.core.registry.cycle_lock import hold_cycle_lock
from clm_tray.core.registry.version import (
    MANIFEST_FILE,
    MODEL_FILE,
    NOTES_FILE,
    STORE_FORMAT,
    VERSION_ID_RE,
    ModelVersion,
    as_utc,
    parse_version_id,
)
from clm_tray.core.registry.version_folder import (
    TMP_PREFIX,
    commit_version,
    delete_version_folder,
    new_incoming,
    taken_sequences,
    version_dirs,
)
from clm_tray.core.serialize import to_jsonable


class ModelStore:
    """Immutable model versions plus the aliases, journal and lock that go with them."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        """``create=False`` opens the store read-only-ish: a missing folder is not made (the
        dry run and the first-run preview look without touching anything)."""
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.aliases_path = self.root / "aliases.json"
        self.history_path = self.root / "history.sqlite"
        self.journal_path = self.root / "journal.json"
        self.lock_path = self.root / "cycle.lock"
        if not create:
            return
        try:
            self.versions_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the model store at {self.root} ({exc.strerror or exc}); "
                "check QT_CLM_STORE_DIR and the folder's permissions"
            ) from exc

    # ---- versions -------------------------------------------------------------------------

    def add_version(
        self,
        model_file: Path,
        manifest: dict,
        now: dt.datetime | None = None,
        formats: dict[str, bytes] | None = None,
    ) -> ModelVersion:
        """Copy a trained model into a new immutable version and return it.

        ``formats`` ({".pkl": bytes, ...}) are the same model in the other formats the deploy
        folder needs, made where the version is made so that the store holds exactly the bytes
        that get deployed (and a rollback restores them byte for byte).

        The id is the next sequence number plus the UTC creation minute. The folder is built
        under a temporary name and renamed into place, so it appears whole or not at all.
        """
        model_file = Path(model_file)
        if not model_file.is_file():
            raise StoreError(f"model file {model_file} does not exist; train a model first")
        created = as_utc(now)
        tmp = new_incoming(self.versions_dir)
        try:
            digest, size = copy_file_durably(model_file, tmp / MODEL_FILE)
            body = dict(manifest)
            body.setdefault("trained_at", created.isoformat(timespec="seconds"))
            body.setdefault("format", STORE_FORMAT)
            body.update(model_file=MODEL_FILE, model_sha256=digest, model_size=size)
            extra = {}
            for suffix, data in sorted((formats or {}).items()):
                name = f"model{suffix}"
                write_file_durably(tmp / name, data)
                extra[suffix] = {"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                                 "size": len(data)}
            if extra:
                body["formats"] = extra
            names = [MODEL_FILE, *(f["file"] for f in extra.values())]
            return commit_version(self.versions_dir, tmp, body,
                                  lambda seq: f"v{seq:04d}-{created:%Y%m%dT%H%M}", names)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def add_adopted(self, files: list[Path], manifest: dict) -> ModelVersion:
        """Record files that were deployed before clm-tray as a version, byte for byte.

        Each file is copied under its own name and hashed; nothing is parsed or loaded (a
        pickle stays bytes). The id is ``v0000-adopted-YYYYMMDD`` in an empty store, else the
        next sequence number (a hand copy adopted later sorts after what it replaced); the date
        is the UTC date of ``manifest["trained_at"]`` (the file's modification time).
        """
        body = dict(manifest)
        stamp = as_utc(dt.datetime.fromisoformat(str(body["trained_at"])))
        tmp = new_incoming(self.versions_dir)
        try:
            listed: dict[str, dict] = {}
            for src in files:
                sha, size = copy_file_durably(src, tmp / src.name)
                listed[src.name] = {"sha256": sha, "size": size}
            primary = body.get("model_file") or next(iter(listed))
            body.update(adopted=True, files=listed, model_file=primary,
                        model_sha256=listed[primary]["sha256"],
                        model_size=listed[primary]["size"])
            taken = taken_sequences(self.versions_dir)
            return commit_version(
                self.versions_dir, tmp, body,
                lambda seq: f"v{seq if taken else 0:04d}-adopted-{stamp:%Y%m%d}",
                list(listed))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def get(self, id: str) -> ModelVersion:
        """Return a version by id (or by its ``v0007`` prefix); StoreError if there is none."""
        wanted = str(id).strip()
        folder = self.versions_dir / wanted
        if not (VERSION_ID_RE.match(wanted) and folder.is_dir()):
            matches = [d for d in version_dirs(self.versions_dir)
                       if d.name.split("-", 1)[0] == wanted]
            if len(matches) != 1:
                raise StoreError(
                    f"no model version '{wanted}' in {self.versions_dir}; "
                    "run `clm-tray versions` to see the stored versions"
                )
            folder = matches[0]
        return self._load(folder)

    def _load(self, folder: Path) -> ModelVersion:
        manifest_path = folder / MANIFEST_FILE
        try:
            manifest = read_json(manifest_path)
        except FileNotFoundError as exc:
            raise StoreError(
                f"{manifest_path} is missing; the version is damaged — "
                "remove that folder or roll back to another version"
            ) from exc
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{manifest_path} cannot be read ({exc}); the version is damaged — "
                "remove that folder or roll back to another version"
            ) from exc
        if not isinstance(manifest, dict):
            raise StoreError(f"{manifest_path} is not a JSON object; the version is damaged")
        return ModelVersion(folder.name, folder, manifest)

    def list(self) -> list[ModelVersion]:
        """Every stored version, oldest first."""
        dirs = sorted(version_dirs(self.versions_dir),
                      key=lambda d: (parse_version_id(d.name) or (0,))[0])
        return [self._load(d) for d in dirs]

    def remove(self, id: str) -> None:
        """Delete a version (store retention), whole or not at all. Aliased ones are refused."""
        version = self.get(id)
        if version.id in self.aliases().values():
            raise StoreError(f"{version.id} is champion, previous or challenger; it cannot be "
                             "removed")
        delete_version_folder(self.versions_dir, version.path)

    def verify(self, v: ModelVersion) -> None:
        """Prove a version's files are the bytes its manifest recorded."""
        for name, sha in v.stored_files().items():
            rel = f"versions/{v.id}/{name}"
            path = v.path / name
            if not path.is_file():
                raise StoreError(
                    f"{rel} is missing from the store at {self.root}; "
                    "roll back to another version"
                )
            if not sha or sha256_file(path) != sha:
                raise StoreError(
                    f"{rel} does not match its manifest's sha256; the file was changed or "
                    "damaged — roll back to another version"
                )

    def known_sha256(self) -> set[str]:
        """Every model file sha256 the store holds or has deployed (adoption skips these)."""
        known: set[str] = set()
        for v in self.list():
            known.update(sha for sha in v.stored_files().values() if sha)
            with contextlib.suppress(StoreError):
                deployed = self.notes(v.id).get("deployed_files") or {}
                known.update(str(sha) for sha in deployed.values() if sha)
        return known

    # ---- aliases --------------------------------------------------------------------------

    def aliases(self) -> dict[str, str | None]:
        """Current champion / previous / challenger ids (None where unset)."""
        return read_aliases(self.aliases_path)

    def set_aliases(self, **names: str | None) -> None:
        """Change some aliases at once, atomically; the others keep their value."""
        write_aliases(self.aliases_path, names)

    # ---- lock -----------------------------------------------------------------------------

    def cycle_lock(self) -> contextlib.AbstractContextManager[None]:
        """The machine-wide "one retrain cycle at a time" lock (cycle_lock.py); CycleBusy
        at once when another thread or process holds it."""
        return hold_cycle_lock(self.lock_path)

    # ---- notes ----------------------------------------------------------------------------

    def annotate(self, id: str, key: str, value: Any) -> None:
        """Record a later finding about a version (shadow result, decision) beside it."""
        version = self.get(id)
        notes = self.notes(version.id)
        notes[key] = to_jsonable(value)
        atomic_write_json(version.path / NOTES_FILE, notes)

    def notes(self, id: str) -> dict:
        """Everything annotate() recorded about a version ({} when nothing yet)."""
        path = self.get(id).path / NOTES_FILE
        try:
            data = read_json(path)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path} cannot be read ({exc}); fix or delete it") from exc
        return data if isinstance(data, dict) else {}


def sweep_store_leftovers(store: ModelStore) -> int:
    """Remove what killed processes leave in the store; call it holding the cycle lock.

    Temp files of atomic writes (``.aliases.json.*.tmp``, ``.journal.json.*.tmp``, and the
    same beside each version's notes), half-assembled versions (``versions/.incoming-*``) and
    the work folders of trainings that never finished (``work/tmp*``). Returns how many.
    """
    removed = 0
    folders = [store.root, *version_dirs(store.versions_dir)]
    for folder in folders:
        for entry in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
    for entry in store.versions_dir.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    work = store.root / "work"
    for entry in work.glob("tmp*") if work.is_dir() else ():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
