"""The careful trader's rules the cycle applies, each with the plain sentence that explains it.

Kept apart from cycle.py so the cycle reads as a sequence of stages and each rule can be read
(and tested) on its own: no empty cycles, the edge gate, the feature-set rule, what a waiting
challenger waits for, and which stored versions may be pruned. README "How clm-tray decides".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from clm_tray.core.app.status import ShadowResult
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import ClmError
from clm_tray.core.ml.edge import EdgeResult
from clm_tray.core.serialize import from_jsonable

log = logging.getLogger(__name__)


def short_id(version_id: str | None) -> str:
    """``v0003`` for ``v0003-20261201T1200``: what people say and read."""
    return version_id.split("-", 1)[0] if version_id else ""


# ---- no empty cycles ------------------------------------------------------------------------
def training_key(dataset: Any, params: Any) -> dict[str, Any]:
    """What decides the model a cycle would train: the data's sha256 (over the bytes of the
    file, i.e. every row; the rows used follow from it and the settings below), the features,
    the target and the effective training parameters."""
    return {"data_sha256": dataset.fingerprint.sha256, "features": list(dataset.features),
            "target": dataset.target, "params": asdict(params)}


def unchanged_since(store: Any, key: dict[str, Any]) -> Any:
    """The newest version when it was trained from exactly ``key``, else None."""
    versions = store.list()
    if not versions:
        return None
    newest = versions[-1]
    m = newest.manifest
    seen = {"data_sha256": (m.get("data") or {}).get("sha256"),
            "features": list(m.get("features") or []), "target": m.get("target"),
            "params": m.get("params")}
    return newest if seen == key else None


def same_model(store: Any, sha256: str) -> Any:
    """A stored version whose model bytes are exactly these, else None (never store twice)."""
    return next((v for v in reversed(store.list()) if v.sha256 == sha256), None)


# ---- the edge gate --------------------------------------------------------------------------
def edge_verdict(raw: dict[str, Any] | None, s: Settings) -> EdgeResult | None:
    """The training child's edge evidence judged under the current limits (None: no evidence,
    e.g. a version trained before the gate existed)."""
    if not raw:
        return None
    return from_jsonable(EdgeResult, raw).judged(s.edge_p, s.min_edge)


def no_edge_reason(edge: EdgeResult, champion_id: str | None) -> str:
    kept = f"kept {short_id(champion_id)}" if champion_id else "nothing deployed"
    return f"New model has no edge: {edge.reason} — {kept}"


# ---- the feature-set rule -------------------------------------------------------------------
def feature_difference(champion: list[str], candidate: list[str]) -> str:
    """``missing: ret_1; new: x`` (order changes alone: ``same features, new order``)."""
    missing = [f for f in champion if f not in candidate]
    new = [f for f in candidate if f not in champion]
    parts = []
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    if new:
        parts.append(f"new: {', '.join(new)}")
    return "; ".join(parts) or "same features, new order"


def features_chosen_on_purpose(s: Settings, candidate: list[str]) -> bool:
    """A feature set the user named in QT_CLM_FEATURES is a deliberate change, not an accident
    of the data."""
    return bool(s.features) and [f.strip() for f in s.features] == list(candidate)


# ---- aliases stay true ---------------------------------------------------------------------
def already_deployed(store: Any, deployer_factory: Callable[[], Any], version: Any) -> bool:
    """The champion, and its bytes are what the deploy folder holds: installing it again (and
    restarting the backend for it) would change nothing."""
    if store.aliases().get("champion") != version.id:
        return False
    try:
        meta = deployer_factory().deployed_meta() or {}
    except ClmError:
        return False
    return meta.get("model_sha256") == version.sha256


def clear_older_challenger(store: Any, deployed: Any) -> None:
    """A challenger no newer than the model just deployed has nothing left to wait for."""
    cid = store.aliases().get("challenger")
    if not cid:
        return
    try:
        challenger = store.get(cid)
    except ClmError:
        store.set_aliases(challenger=None)
        return
    if cid == deployed.id or challenger.sequence <= deployed.sequence:
        store.set_aliases(challenger=None)


# ---- what a waiting challenger waits for ----------------------------------------------------
def challenger_waits_for(shadow: ShadowResult | None, symbols: int | None, shadow_min: int,
                         auto_promote: bool) -> str:
    """The tail of "Challenger v0005 …" in the status line."""
    if not auto_promote:
        return "waiting for approval"
    if shadow is not None and shadow.decision == "wait" and shadow.features_differ:
        return f"waits for `clm-tray promote`: {shadow.features_differ}"
    if shadow is not None and shadow.decision == "wait":
        missing = max(1, shadow_min - shadow.rows)
        bars = math.ceil(missing / max(1, int(symbols or 1)))
        return f"waits for {bars} more new bar{'s' if bars != 1 else ''} to compare"
    return "waits for the next check"


# ---- store retention ------------------------------------------------------------------------
def prunable(versions: list[Any], keep: int, protected: set[str], deployed: set[str]
             ) -> list[Any]:
    """Never-deployed, unprotected versions beyond the newest ``keep`` of them (oldest first).

    ``versions`` is oldest first. Protected: champion, previous, challenger and every version
    a backup folder holds; a version that was ever deployed is kept too, and so is every
    adopted one (the trader's own model from before clm-tray: it exists nowhere else).
    """
    spare = [v for v in versions if v.id not in protected and v.id not in deployed
             and not getattr(v, "adopted", False)]
    return spare[:-keep] if len(spare) > keep else []


def prune_store(store: Any, s: Settings, deployer_factory: Callable[[], Any]) -> list[str]:
    """Store retention at the end of a cycle (see ``prunable``); never fails the cycle."""
    try:
        protected = {v for v in store.aliases().values() if v}
        if s.resolved_deploy_dir is not None:
            protected |= {b["version"] for b in deployer_factory().backups() if b.get("version")}
        versions = store.list()
        deployed = {v.id for v in versions if store.notes(v.id).get("deployed_at")}
        doomed = prunable(versions, s.versions_keep, protected, deployed)
        for v in doomed:
            store.remove(v.id)
    except (ClmError, OSError) as exc:
        log.warning("store retention skipped: %s", exc)
        return []
    if doomed:
        log.info("pruned %d never-deployed version(s): %s", len(doomed),
                 ", ".join(v.id for v in doomed))
    return [v.id for v in doomed]
