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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from clm_tray.core.errors import CycleBusy, StoreError
from clm_tray.core.fsutil import atomic_write_json, fsync_dir, read_json, sha256_file
from clm_tray.core.serialize import dumps, to_jsonable

MODEL_FILE = "model.ubj"
MANIFEST_FILE = "manifest.json"
NOTES_FILE = "notes.json"
ALIAS_NAMES = ("champion", "previous", "challenger")
# Written into every manifest and aliases.json; a file without it is format 1 (read as is).
STORE_FORMAT = 1

_ID_RE = re.compile(r"^v(\d{4,})-(?:(\d{8}T\d{4})|adopted-(\d{8}))$")
_TMP_PREFIX = ".incoming-"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH

# One FileLock object per lock file in this process, so the cycle lock is re-entrant for the
# thread that holds it (a cycle may call install(), which takes it again) and exclusive for
# every other thread and process.
_cycle_locks: dict[str, FileLock] = {}
_cycle_locks_guard = threading.Lock()


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.timezone.utc)
    return now.astimezone(dt.timezone.utc)


def parse_version_id(name: str) -> tuple[int, dt.datetime] | None:
    """Return (sequence number, creation time UTC) for a well-formed id, else None."""
    m = _ID_RE.match(name)
    if not m:
        return None
    if m.group(3):  # adopted: the UTC date of the adopted model file's modification time
        created = dt.datetime.strptime(m.group(3), "%Y%m%d")
    else:
        created = dt.datetime.strptime(m.group(2), "%Y%m%dT%H%M")
    return int(m.group(1)), created.replace(tzinfo=dt.timezone.utc)


@dataclass
class ModelVersion:
    """One immutable trained model in the store."""

    id: str
    path: Path
    manifest: dict = field(repr=False)

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.get("model_file", MODEL_FILE)

    @property
    def sha256(self) -> str:
        return str(self.manifest.get("model_sha256", ""))

    @property
    def size(self) -> int:
        return int(self.manifest.get("model_size", 0))

    @property
    def trained_at(self) -> dt.datetime:
        raw = self.manifest.get("trained_at")
        if raw:
            with contextlib.suppress(ValueError, TypeError):
                return _utc(dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00")))
        parsed = parse_version_id(self.id)
        return parsed[1] if parsed else dt.datetime.fromtimestamp(0, dt.timezone.utc)

    @property
    def metrics(self) -> dict:
        return dict(self.manifest.get("metrics") or {})

    @property
    def features(self) -> list[str]:
        return list(self.manifest.get("features") or [])

    @property
    def sequence(self) -> int:
        parsed = parse_version_id(self.id)
        return parsed[0] if parsed else 0

    @property
    def adopted(self) -> bool:
        """A model that was deployed before clm-tray (never trained or measured by it)."""
        return bool(self.manifest.get("adopted"))

    @property
    def native(self) -> Path | None:
        """A file of this version XGBoost can load natively (.ubj / .json), else None."""
        if not self.adopted:
            return self.model_path
        for name in self.adopted_files:
            if Path(name).suffix.lower() in (".ubj", ".json"):
                return self.path / name
        return None

    @property
    def adopted_files(self) -> dict[str, dict]:
        """Adopted versions: {deployed file name: {"sha256", "size"}}; {} otherwise."""
        return dict(self.manifest.get("files") or {}) if self.adopted else {}

    @property
    def formats(self) -> dict[str, dict]:
        """Extra formats stored beside model.ubj: {".pkl": {"file", "sha256", "size"}}."""
        return dict(self.manifest.get("formats") or {})

    def stored_files(self) -> dict[str, str]:
        """Every model file of this version: {file name in the version folder: sha256}."""
        if self.adopted:
            return {name: str(f.get("sha256", "")) for name, f in self.adopted_files.items()}
        out = {self.model_path.name: self.sha256}
        out.update({str(f["file"]): str(f.get("sha256", "")) for f in self.formats.values()})
        return out

    def deploy_files(self, model_file: str) -> list[tuple[str, Path, str]]:
        """(name in the deploy folder, file in the store, sha256) for every file to install.

        A trained version installs its model as ``model_file`` and each stored format as the
        same stem with that suffix; an adopted one installs its files under their own names.
        """
        if self.adopted:
            return [(name, self.path / name, str(f.get("sha256", "")))
                    for name, f in self.adopted_files.items()]
        stem = Path(model_file).stem
        out = [(model_file, self.model_path, self.sha256)]
        for suffix, f in sorted(self.formats.items()):
            name = f"{stem}{suffix}"
            if name != model_file:
                out.append((name, self.path / str(f["file"]), str(f.get("sha256", ""))))
        return out


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
        created = _utc(now)
        tmp = self.versions_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.mkdir()
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
            return self._commit(tmp, body, lambda seq: f"v{seq:04d}-{created:%Y%m%dT%H%M}",
                                names)
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
        stamp = _utc(dt.datetime.fromisoformat(str(body["trained_at"])))
        tmp = self.versions_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            listed: dict[str, dict] = {}
            for src in files:
                sha, size = copy_file_durably(src, tmp / src.name)
                listed[src.name] = {"sha256": sha, "size": size}
            primary = body.get("model_file") or next(iter(listed))
            body.update(adopted=True, files=listed, model_file=primary,
                        model_sha256=listed[primary]["sha256"],
                        model_size=listed[primary]["size"])
            taken = {p[0] for p in (parse_version_id(d.name) for d in self._version_dirs()) if p}
            return self._commit(
                tmp, body,
                lambda seq: f"v{seq if taken else 0:04d}-adopted-{stamp:%Y%m%d}",
                list(listed))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _commit(self, tmp: Path, body: dict, make_id: Any, names: list[str]) -> ModelVersion:
        """Write the manifest, rename the folder to a free id and make its files read-only."""
        for _attempt in range(1000):
            vid = make_id(self._next_sequence())
            body["id"] = vid
            text = dumps(body, indent=2) + "\n"
            write_file_durably(tmp / MANIFEST_FILE, text.encode("utf-8"))
            fsync_dir(tmp)
            target = self.versions_dir / vid
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
            raise StoreError(f"could not allocate a version id in {self.versions_dir}")
        fsync_dir(self.versions_dir)
        for name in (*names, MANIFEST_FILE):
            with contextlib.suppress(OSError):
                os.chmod(target / name, _READ_ONLY)
        return ModelVersion(vid, target, json.loads(text))

    def _next_sequence(self) -> int:
        seqs = [p[0] for p in (parse_version_id(d.name) for d in self._version_dirs()) if p]
        return max(seqs, default=0) + 1

    def _version_dirs(self) -> list[Path]:
        if not self.versions_dir.is_dir():
            return []
        return [d for d in self.versions_dir.iterdir() if d.is_dir() and _ID_RE.match(d.name)]

    def get(self, id: str) -> ModelVersion:
        """Return a version by id (or by its ``v0007`` prefix); StoreError if there is none."""
        wanted = str(id).strip()
        folder = self.versions_dir / wanted
        if not (_ID_RE.match(wanted) and folder.is_dir()):
            matches = [d for d in self._version_dirs() if d.name.split("-", 1)[0] == wanted]
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
        dirs = sorted(self._version_dirs(), key=lambda d: (parse_version_id(d.name) or (0,))[0])
        return [self._load(d) for d in dirs]

    def remove(self, id: str) -> None:
        """Delete a version (store retention). Aliased versions are refused.

        The folder is first renamed out of the versions' namespace in one step, so a reader
        sees the version whole or not at all, then deleted (read-only files included).
        """
        version = self.get(id)
        if version.id in self.aliases().values():
            raise StoreError(f"{version.id} is champion, previous or challenger; it cannot be "
                             "removed")
        doomed = self.versions_dir / f"{_TMP_PREFIX}removed-{uuid.uuid4().hex}"
        os.rename(version.path, doomed)
        fsync_dir(self.versions_dir)

        def writable_then_retry(func: Any, path: str, _exc: Any) -> None:
            os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
            func(path)

        shutil.rmtree(doomed, onerror=writable_then_retry)

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
        out: dict[str, str | None] = dict.fromkeys(ALIAS_NAMES)
        try:
            data = read_json(self.aliases_path)
        except FileNotFoundError:
            return out
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{self.aliases_path} cannot be read ({exc}); fix or delete it and run "
                "`clm-tray rollback VERSION` to choose the champion again"
            ) from exc
        if isinstance(data, dict):
            for name in ALIAS_NAMES:
                value = data.get(name)
                out[name] = str(value) if value else None
        return out

    def set_aliases(self, **names: str | None) -> None:
        """Change some aliases at once, atomically; the others keep their value."""
        unknown = sorted(set(names) - set(ALIAS_NAMES))
        if unknown:
            raise StoreError(f"unknown alias {unknown[0]!r}; use one of {', '.join(ALIAS_NAMES)}")
        current: dict[str, Any] = dict(self.aliases())
        current.update({k: (v or None) for k, v in names.items()})
        current["format"] = STORE_FORMAT
        atomic_write_json(self.aliases_path, current)

    # ---- lock -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def cycle_lock(self) -> Iterator[None]:
        """Hold the machine-wide "one retrain cycle at a time" lock, or raise CycleBusy.

        Never waits. Re-entrant for the thread that already holds it, exclusive for every
        other thread and process. The OS releases it if the holder dies.
        """
        key = str(self.lock_path.resolve())
        with _cycle_locks_guard:
            lock = _cycle_locks.get(key)
            if lock is None:
                lock = _cycle_locks[key] = FileLock(key, timeout=0, thread_local=True)
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise CycleBusy(
                f"another retrain cycle is already running (lock: {self.lock_path}); "
                "wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            lock.release()

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
    folders = [store.root, *store._version_dirs()]
    for folder in folders:
        for entry in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
    for entry in store.versions_dir.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    work = store.root / "work"
    for entry in work.glob("tmp*") if work.is_dir() else ():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def copy_file_durably(src: Path, dst: Path) -> tuple[str, int]:
    """Copy a file, hashing what was written, and fsync it; returns (sha256, size)."""
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(1 << 20):
            fout.write(block)
            h.update(block)
            size += len(block)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest(), size


def write_file_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
