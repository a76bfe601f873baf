"""Adopt what is deployed: the model a trader's backend already runs becomes a stored version.

A trader arriving from the seed's scripts has ``ai_engine/models/xgb_model.pkl`` deployed and a
backend that loads it. Before clm-tray changes anything it records those files as an *adopted*
version, ``v0000-adopted-YYYYMMDD`` (the UTC date of the newest file's modification time):
their names, sizes and sha256, their bytes copied into the store (a pickle stays bytes and is
never loaded), and the modification time as the model's age. It is the champion until a new
model replaces it; then it is ``previous``, so an automatic or manual rollback restores exactly
those files.

Adoption runs when an engine starts and again at the start of every cycle, rollback and
promotion (under the cycle lock, after crash recovery). It is idempotent: a file whose sha256
the store already knows (any version's file, or a file clm-tray deployed) is never adopted
twice. A model file copied in by hand later (its bytes unknown) is adopted the same way as the
next ``vNNNN-adopted-…`` version and becomes the champion, with the old champion as
``previous``: what runs is what the tray shows, and nothing the trader put there is ever lost.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import ShadowResult
from clm_tray.core.errors import StoreError
from clm_tray.core.fsutil import read_json, sha256_file
from clm_tray.core.registry.formats import layout_files
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.registry.version import ModelVersion

log = logging.getLogger(__name__)


@dataclass
class Adoption:
    """What adoption did: the new version, the champion it replaced (if any), one line."""

    version: ModelVersion
    replaced_champion: str | None
    message: str


def adopt_deployed(store: ModelStore, deploy_dir: Path | None, model_file: str,
                   now: dt.datetime | None = None) -> Adoption | None:
    """Record the deploy folder's model files as an adopted version when the store does not
    know them; make it the champion. None when there is nothing to adopt.

    The caller holds the cycle lock (nothing else writes the folder or the aliases meanwhile).
    """
    if deploy_dir is None:
        return None
    files = layout_files(deploy_dir, model_file)
    if not files:
        return None
    shas = {p.name: sha256_file(p) for p in files}
    aliases = store.aliases()
    known = store.known_sha256()
    _claim_written_with_champion(store, deploy_dir, model_file, files, shas, known)
    if all(sha in known for sha in shas.values()):
        if aliases["champion"] is None:
            _champion_from_known(store, set(shas.values()))
        return None
    champion = aliases["champion"]
    stem = Path(model_file).stem
    primary = next((n for n in (model_file, f"{stem}.pkl") if n in shas), files[0].name)
    mtime = max(p.stat().st_mtime for p in files)
    trained_at = dt.datetime.fromtimestamp(mtime, dt.timezone.utc)
    meta = _meta(deploy_dir / f"{stem}.meta.json")
    features: list[str] = []
    if meta.get("model_sha256") in shas.values():  # a model clm-tray made, for another store
        features = list(meta.get("features") or [])
        if meta.get("trained_at"):
            try:
                trained_at = dt.datetime.fromisoformat(str(meta["trained_at"]))
            except ValueError:
                pass
    at = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    version = store.add_adopted(files, {
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "trained_at_source": "file modification time" if not features else "metadata JSON",
        "adopted_at": at.isoformat(timespec="seconds"),
        "source": str(deploy_dir),
        "model_file": primary,
        "features": features,
        "metrics": {},
        "parent": champion,
    })
    if champion:
        store.set_aliases(champion=version.id, previous=champion)
    else:
        store.set_aliases(champion=version.id)
    names = ", ".join(sorted(shas))
    if champion:
        message = (f"{names} in {deploy_dir} changed outside clm-tray; recorded as "
                   f"{version.id}, now the champion ({champion} is previous)")
    else:
        message = (f"adopted the deployed model ({names} in {deploy_dir}) as {version.id}: "
                   "its bytes are kept in the store, never loaded, and put back on rollback")
    log.info("%s", message)
    return Adoption(version, champion, message)


def adopt_deployed_model(ctx: Any) -> None:
    """Record the deployed model clm-tray did not install as a version before anything can
    replace it (adopt.py). Called with the cycle lock held; a failure stops the cycle before
    it touches the folder."""
    s = ctx.settings
    try:
        done = adopt_deployed(ctx.store, s.resolved_deploy_dir, s.model_file)
    except OSError as exc:
        raise StoreError(
            f"cannot record the deployed model in the store at {ctx.store.root} "
            f"({exc.strerror or exc}); nothing was changed — free space there and retry"
        ) from exc
    if done is not None:
        ctx.bus.emit(ev.CycleStage(stage="adopt", message=done.message, version=done.version.id),
                     level="warning" if done.replaced_champion else "info")


def shadow_against_adopted(s: Any, candidate: Any, champion: ModelVersion,
                           frame: Any) -> ShadowResult:
    """The champion was adopted: compare only when it has a native model clm-tray can load
    (never a pickle), on the candidate's own held-out rows; otherwise say so plainly and let
    the candidate's own out-of-time test decide."""
    import pandas as pd

    from clm_tray.core.ml.modelfile import load_booster
    from clm_tray.core.monitor.shadow import shadow_test

    if champion.native is None:
        names = ", ".join(champion.adopted_files) or champion.model_path.name
        return ShadowResult("promote", f"the deployed model is an adopted pickle ({names}) "
                            "clm-tray does not load; judged on its own out-of-time test",
                            champion=champion.id)
    booster = load_booster(champion.native)
    features = list(candidate.manifest["features"])
    if list(booster.feature_names or champion.features) != features:
        return ShadowResult("promote", "the adopted model uses other features; judged on its "
                            "own out-of-time test", champion=champion.id)
    held_out = pd.Timestamp(candidate.manifest["split"]["test_start"])
    res = shadow_test(
        load_booster(candidate.model_path), booster, frame[frame["timestamp"] >= held_out],
        features, candidate.manifest["target"], min_rows=s.shadow_min,
        logloss_tol=s.shadow_logloss_tol,
    )
    return dataclasses.replace(res, champion=champion.id)


def _claim_written_with_champion(store: ModelStore, deploy_dir: Path, model_file: str,
                                 files: list[Path], shas: dict[str, str],
                                 known: set[str]) -> None:
    """A pickle an older clm-tray wrote beside the champion (before versions kept their
    formats) is ours, not a hand copy: the folder's metadata names the champion, the native
    model is the champion's, and the file is no newer than that metadata (written last)."""
    champion = store.aliases()["champion"]
    meta_path = deploy_dir / f"{Path(model_file).stem}.meta.json"
    meta = _meta(meta_path)
    if not champion or meta.get("version") != champion or shas.get(model_file) is None:
        return
    try:
        version = store.get(champion)
    except StoreError:
        return
    if version.adopted or shas[model_file] != version.sha256:
        return
    written = meta_path.stat().st_mtime
    ours = {p.name: shas[p.name] for p in files
            if shas[p.name] not in known and p.stat().st_mtime <= written}
    if ours:
        noted = dict(store.notes(champion).get("deployed_files") or {})
        store.annotate(champion, "deployed_files", {**noted, **ours})
        known.update(ours.values())


def _champion_from_known(store: ModelStore, shas: set[str]) -> None:
    """No champion, but the folder holds files the store knows: the version they are is it."""
    for v in reversed(store.list()):
        known = set(v.stored_files().values())
        known.update((store.notes(v.id).get("deployed_files") or {}).values())
        if shas <= known:
            store.set_aliases(champion=v.id)
            return


def _meta(path: Path) -> dict:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
