"""What the next retrain would do to the deploy folder and the backend, without doing any of it.

``clm-tray retrain --dry-run``, ``clm-tray setup`` and the tray's first-run dialog all show this
one plan: which model would first be adopted, which files would be backed up, written (and
why each), which are left alone, what is restarted and how the result is checked. It only
looks: no store folder is created, no file hashed into the store, nothing trained or started.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import ConfigError
from clm_tray.core.fsutil import sha256_file
from clm_tray.core.ml.rowcount import count_rows
from clm_tray.core.registry.formats import (
    LAYOUT_SUFFIXES,
    WRITABLE,
    check_model_file,
    extra_formats,
    layout_files,
)
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.registry.version import parse_version_id


@dataclass
class FileStep:
    name: str
    why: str


@dataclass
class RetrainPlan:
    """The next retrain, step by step, in plain data (``lines()`` says it in words)."""

    deploy_dir: str | None
    data_path: str | None
    data_rows: int | None
    adopt: list[str] = field(default_factory=list)  # files first recorded as a version
    adopt_as: str | None = None
    backup: list[str] = field(default_factory=list)
    write: list[FileStep] = field(default_factory=list)
    untouched: list[FileStep] = field(default_factory=list)
    restart: str = ""
    check: str = ""
    fallback: str = ""  # what a failed deploy puts back
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.problems:
            return [f"Nothing can be planned yet: {p}" for p in self.problems]
        out = [f"Deploy folder: {self.deploy_dir}"]
        if self.adopt:
            out.append(f"- first record the model deployed now ({', '.join(self.adopt)}) as "
                       f"{self.adopt_as}: its bytes are copied into the store, never loaded")
        rows = f"{self.data_rows:,} rows of " if self.data_rows is not None else ""
        missing = "" if self.data_rows is not None else " (not found yet)"
        out.append(f"- train a new model on {rows}{self.data_path}{missing}; it is deployed "
                   "only if it passes its checks")
        if self.backup:
            out.append(f"- back up into backup_<date>_<time>/: {', '.join(self.backup)}")
        else:
            out.append("- back up: nothing (no model file there yet)")
        for i, step in enumerate(self.write):
            head = "- write " if i == 0 else "        "
            out.append(f"{head}{step.name}: {step.why}")
        for step in self.untouched:
            out.append(f"- leave {step.name} as it is: {step.why}")
        out.append("- remove: nothing")
        out.append(f"- restart: {self.restart}")
        out.append(f"- check: {self.check}")
        out.append(f"- if that fails: {self.fallback}")
        return out


def plan_retrain(s: Settings) -> RetrainPlan:
    """What a retrain with settings ``s`` would do, read from the folders as they are now."""
    from clm_tray.core.backend.factory import make_backend
    deploy_dir, data = s.resolved_deploy_dir, s.resolved_data_path
    plan = RetrainPlan(str(deploy_dir) if deploy_dir else None, str(data) if data else None,
                       None)
    if data is None:
        plan.problems.append("the training data is not set (QT_CLM_DATA_PATH)")
    if deploy_dir is None:
        plan.problems.append("the deploy folder is not set (QT_CLM_DEPLOY_DIR)")
    try:
        check_model_file(s.model_file)
    except ConfigError as exc:
        plan.problems.append(str(exc))
    if plan.problems:
        return plan
    assert deploy_dir is not None and data is not None
    if data.is_file():
        try:
            plan.data_rows = count_rows(data)[0]
        except OSError:
            plan.data_rows = None
    store = ModelStore(s.resolved_store_dir, create=False)
    stored = store.versions_dir.is_dir()
    champion = store.aliases()["champion"] if stored else None
    layout = layout_files(deploy_dir, s.model_file)
    known = store.known_sha256() if stored else set()
    if layout and any(sha256_file(p) not in known for p in layout):
        plan.adopt = [p.name for p in layout]
        plan.adopt_as = _adopted_id(store if stored else None, layout)
    stem = Path(s.model_file).stem
    plan.write.append(FileStep(s.model_file, "the new model, " + WRITABLE.get(
        Path(s.model_file).suffix.lower(), "XGBoost native format")))
    present = {p.name for p in layout}
    for suffix in extra_formats(deploy_dir, s.model_file, s.deploy_pickle):
        name = f"{stem}{suffix}"
        because = (f"because the folder holds {name} (your backend loads it)" if name in present
                   else "because QT_CLM_DEPLOY_PICKLE=true")
        plan.write.append(FileStep(name, f"the new model as {WRITABLE[suffix]}, {because}"))
    plan.write.append(FileStep(f"{stem}.meta.json", "the new model's version and sha256, for "
                               "a /health that reports them"))
    written = {step.name for step in plan.write}
    for p in layout:
        if p.name not in written:
            why = ("QT_CLM_DEPLOY_PICKLE=false" if p.suffix == ".pkl"
                   else "clm-tray cannot write this format")
            plan.untouched.append(FileStep(p.name, f"{why}; a backend loading it keeps the "
                                           "old model"))
    for other in _other_models(deploy_dir, {p.name for p in layout}, s.model_file):
        plan.untouched.append(FileStep(other, f"not named like the model ({stem}.*); if it "
                                       "is the model your backend loads, set "
                                       f"QT_CLM_MODEL_FILE={Path(other).stem}.ubj"))
    plan.backup = sorted(n for n in written if (deploy_dir / n).is_file())
    backend = make_backend(s, store.root)
    plan.restart = ("nothing (QT_CLM_BACKEND=none: files only)" if backend.kind == "none"
                    else backend.describe())
    plan.check = ("not checked (files only)" if backend.kind == "none" else
                  f"{s.health_url} must answer healthy within {s.health_timeout:g} s, "
                  "after a real restart")
    previous = plan.adopt_as or champion
    if previous:
        plan.fallback = (f"{previous} is put back from the store, byte for byte, and the "
                         "backend restarted and checked again")
    else:
        plan.fallback = "nothing to put back (the folder holds no model yet)"
    return plan


def _other_models(folder: Path, layout: set[str], model_file: str) -> list[str]:
    """Model-looking files named unlike the model: a deploy leaves them alone, say so."""
    if not folder.is_dir():
        return []
    meta = f"{Path(model_file).stem}.meta.json"
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in LAYOUT_SUFFIXES
                  and p.name not in layout and p.name != meta
                  and not p.name.endswith(".meta.json") and not p.name.startswith("."))


def _adopted_id(store: ModelStore | None, layout: list[Path]) -> str:
    """The id adoption would give these files (see ModelStore.add_adopted)."""
    mtime = max(p.stat().st_mtime for p in layout)
    day = dt.datetime.fromtimestamp(mtime, dt.timezone.utc)
    seqs = set()
    if store is not None:
        seqs = {p[0] for p in (parse_version_id(v.id) for v in store.list()) if p}
    seq = max(seqs) + 1 if seqs else 0
    return f"v{seq:04d}-adopted-{day:%Y%m%d}"
