"""What the engine reports without doing anything: versions, backups, history, age, status.

Cheap reads of the store, the history database and the deploy folder, turned into the plain
rows of ``status.py``; ``engine_status`` also decides the one-word state and the one-line
summary the tray shows, so the GUI and ``clm-tray status`` never judge for themselves. Both
engine modes run these in the caller's process: nothing here imports pandas or XGBoost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from clm_tray.core.app import decide, wording
from clm_tray.core.app.backend_pending import backend_view
from clm_tray.core.app.status import (
    IDENTITY_HINT,
    IDENTITY_NOT_REPORTED,
    BackendUnknown,
    BackupRow,
    CycleRecord,
    DriftCheck,
    EngineStatus,
    Health,
    HealthReport,
    Outcome,
    PerformanceCheck,
    SchedulerState,
    ShadowResult,
    VersionRow,
)
from clm_tray.core.config.settings import Settings
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.core.registry.history import History
from clm_tray.core.registry.store import ModelStore
from clm_tray.core.serialize import read_or_none


def version_rows(store: ModelStore) -> list[VersionRow]:
    """Every stored version, oldest first, with its alias (or saved status) and scores."""
    aliases = store.aliases()
    by_id = {v: k for k, v in aliases.items() if v}
    rows = []
    for v in store.list():
        notes = store.notes(v.id)
        m = v.metrics
        rows.append(VersionRow(
            id=v.id, trained_at=v.manifest.get("trained_at", ""),
            test_accuracy=m.get("test_accuracy"), train_accuracy=m.get("train_accuracy"),
            auc=m.get("auc"), baseline=m.get("baseline_accuracy"),
            status=by_id.get(v.id) or notes.get("status") or "stored",
            size=int(v.manifest.get("model_size", 0)), sha256=v.sha256,
            leakage=bool(v.manifest.get("leakage")), shadow=noted_shadow(notes, v.id),
            adopted=v.adopted, files=sorted(v.adopted_files),
        ))
    return rows


def noted_shadow(notes: dict[str, Any], version_id: str) -> ShadowResult | None:
    """A version's last shadow verdict from its notes (``store.notes``): the one reader of it."""
    return read_or_none(ShadowResult, notes.get("shadow"), f"{version_id}'s shadow test note")


def backup_rows(backups: list[dict[str, Any]]) -> list[BackupRow]:
    """The deploy folder's backups (``Deployer.backups()``) as rows."""
    return [BackupRow(name=b["name"], created=str(b.get("created", "")),
                      version=b.get("version"), sha256=b.get("sha256"),
                      size=int(b.get("size", 0)))
            for b in backups]


def accuracy_history(history: History, champion: str | None,
                     rows: list[VersionRow]) -> list[dict[str, Any]]:
    """Per version: test accuracy, baseline, the last live accuracy measured for that very
    version, and its deployment: "in use", "rolled back", "deployed before" or "never
    deployed" (charts draw them differently)."""
    live: dict[str, float] = {}
    for _at, result in reversed(history.checks("performance", 500)):
        if result.get("enough") and result.get("version"):
            live[result["version"]] = result.get("accuracy")
    deployed: set[str] = set()
    rolled_back: set[str] = set()
    for c in history.cycles(1000):
        if c.outcome == Outcome.DEPLOYED and c.version:
            deployed.add(c.version)
        elif c.outcome == Outcome.ROLLED_BACK_AFTER_FAILURE and c.version:
            rolled_back.add(c.version)
        elif c.outcome == Outcome.ROLLED_BACK and c.champion_before:
            rolled_back.add(c.champion_before)

    def deployment(vid: str) -> str:
        if vid == champion:
            return "in use"
        if vid in rolled_back:
            return "rolled back"
        return "deployed before" if vid in deployed else "never deployed"

    return [{"version": r.id, "trained_at": r.trained_at, "test_accuracy": r.test_accuracy,
             "baseline": r.baseline, "live_accuracy": live.get(r.id),
             "deployment": deployment(r.id)}
            for r in rows]


def deployed_meta(settings: Settings, deployer: Callable[[], Any]) -> dict[str, Any] | None:
    """The deploy folder's record of the model in it (None when there is none or no folder)."""
    if settings.resolved_deploy_dir is None:
        return None
    try:
        return deployer().deployed_meta()
    except Exception:
        return None


def champion_age_hours(store: ModelStore, deployed_meta: dict[str, Any] | None,
                       deployed_model: Path | None, now: float) -> float | None:
    """Age of the model the backend runs: the champion's, else the deployed file's (its
    metadata, else its modification time); None when nothing is deployed."""
    cid = store.aliases().get("champion")
    if cid:
        return max(0.0, (now - store.get(cid).trained_at.timestamp()) / 3600)
    if deployed_meta and deployed_meta.get("trained_at"):
        t = datetime.fromisoformat(deployed_meta["trained_at"]).timestamp()
        return max(0.0, (now - t) / 3600)
    if deployed_model is not None and deployed_model.exists():
        return max(0.0, (now - deployed_model.stat().st_mtime) / 3600)
    return None


def engine_status(loaded: LoadedSettings, store: ModelStore, history: History,
                  age: float | None, sched: SchedulerState) -> EngineStatus:
    """Everything ``clm-tray status`` and the tray show, judged once here."""
    s = loaded.settings
    rows = {r.id: r for r in version_rows(store)}
    aliases = store.aliases()
    champion = rows.get(aliases.get("champion") or "")
    challenger = rows.get(aliases.get("challenger") or "")
    fresh = age is not None and age <= s.retrain_hours
    last = history.last_cycle()
    backend_now = backend_view(history)
    drift = history.last_report("drift", DriftCheck)
    perf = history.last_report("performance", PerformanceCheck)
    waits = ""
    if challenger is not None:
        data = store.get(challenger.id).manifest.get("data") or {}
        waits = decide.challenger_waits_for(challenger.shadow, data.get("symbols"),
                                            s.shadow_min, s.auto_promote)
    health, summary = judge(s, age, fresh, last, backend_now, drift[1] if drift else None,
                            challenger, sched, waits, champion)
    return EngineStatus(
        health=health, summary=summary, champion=champion, age_hours=age, fresh=fresh,
        retrain_hours=s.retrain_hours, challenger=challenger, last_cycle=last,
        backend=backend_now, drift=drift[1] if drift else None,
        performance=perf[1] if perf else None, scheduler=sched,
        workspace=str(loaded.env_file.parent) if loaded.env_file else "",
    )


def judge(s: Settings, age: float | None, fresh: bool, last: CycleRecord | None,
          backend: HealthReport | BackendUnknown | None, drift: DriftCheck | None,
          challenger: VersionRow | None, sched: SchedulerState, waits: str = "",
          champion: VersionRow | None = None) -> tuple[Health, str]:
    """The one-word state and one-line summary the tray shows, decided in the engine."""
    if sched.cycle_stage:
        return Health.WORKING, f"Retraining: {sched.cycle_stage}"
    if last is not None and last.failed:
        return Health.ERROR, f"Last cycle {last.outcome}: {last.reason}"
    if isinstance(backend, BackendUnknown):
        return Health.ATTENTION, f"Backend {backend.reason}"
    if backend is not None and not backend.ok:
        return Health.ERROR, f"Backend unhealthy: {backend.reason}"
    if not s.enabled:
        return Health.PAUSED, "Checks are switched off in the settings"
    if sched.paused:
        until = _hhmm(sched.paused_until)
        return Health.PAUSED, f"Paused{' until ' + until if until else ''} — {sched.paused_reason}"
    if age is None:
        return Health.ATTENTION, "No model deployed yet"
    adopted = f"{', '.join(champion.files)}, adopted, " if champion and champion.adopted else ""
    if not fresh:
        if adopted:
            return Health.ATTENTION, f"{adopted}{wording.age(age)} old → retrain due"
        return Health.ATTENTION, (f"Model is {wording.age(age)} old (retrained after "
                                  f"{s.retrain_hours:g} h)")
    if drift is not None and drift.drifted:
        return Health.ATTENTION, (f"Drift {wording.score(drift.score)} — above the "
                                  f"alarm level {wording.score(s.drift_threshold)}")
    if challenger is not None:
        return Health.ATTENTION, f"New model {challenger.id} {waits or 'waiting for approval'}"
    if isinstance(backend, HealthReport) and backend.identity == IDENTITY_NOT_REPORTED:
        return Health.ATTENTION, IDENTITY_HINT
    age_job = sched.job("age")
    nxt = age_job.next_run if age_job else None
    tail = f" · next check {_hhmm(nxt)}" if nxt else ""
    if adopted:
        return Health.HEALTHY, f"{adopted}{wording.age(age)} old{tail}"
    return Health.HEALTHY, f"Model {wording.age(age)} old{tail}"


def _hhmm(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts).strftime("%H:%M")
