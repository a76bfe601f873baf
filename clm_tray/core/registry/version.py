"""What one stored model version is: its id, its folder's files and what its manifest says.

A version id is ``v<sequence>-<YYYYMMDDTHHMM UTC>`` for a model clm-tray trained, or
``v<sequence>-adopted-<YYYYMMDD>`` for the files that were deployed before clm-tray managed the
folder (adopt.py). ``ModelVersion`` reads everything else from the manifest, which never
changes once written; the store (store.py) makes and finds versions, this module only reads one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

MODEL_FILE = "model.ubj"
MANIFEST_FILE = "manifest.json"
NOTES_FILE = "notes.json"
# Written into every manifest and aliases.json; a file without it is format 1 (read as is).
STORE_FORMAT = 1

VERSION_ID_RE = re.compile(r"^v(\d{4,})-(?:(\d{8}T\d{4})|adopted-(\d{8}))$")


def as_utc(now: dt.datetime | None) -> dt.datetime:
    """``now`` in UTC (a naive time is taken as UTC already); the current time for None."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.timezone.utc)
    return now.astimezone(dt.timezone.utc)


def parse_version_id(name: str) -> tuple[int, dt.datetime] | None:
    """Return (sequence number, creation time UTC) for a well-formed id, else None."""
    m = VERSION_ID_RE.match(name)
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
                return as_utc(dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00")))
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
