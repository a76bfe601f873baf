"""The public engine API that the CLI, the daemon and the GUI call.

Every method is a plain blocking call returning plain data (status.py); long ones (retrain,
rollback, promote, restart) are meant to be run off the GUI thread. Progress and outcomes are
published on ``engine.bus``.

``Engine(..., isolate=True)`` (the tray app) runs the heavy calls (``worker.WORKER_METHODS``)
in a spawned worker process (worker.py) and keeps only the cheap reads here, so the caller's
process never imports pandas, XGBoost or scikit-learn. Keep it that way: this module and what
it imports at the top (cycle.py, history.py, store.py, status.py, settings.py) import the heavy
libraries only inside the functions that need them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clm_tray.core.app import decide, wording
from clm_tray.core.app import events as ev
from clm_tray.core.app.backend_pending import (
    backend_view,
    clear_pending,
    mark_folder_changing,
    read_pending,
)
from clm_tray.core.app.cycle import retrain_cycle
from clm_tray.core.app.cycle_run import CycleContext, record_action, record_outcome
from clm_tray.core.app.deploy_step import deploy_verified
from clm_tray.core.app.reconcile import reconcile_backend
from clm_tray.core.app.shadow_step import shadow_against_champion
from clm_tray.core.app.status import (
    IDENTITY_HINT,
    IDENTITY_NOT_REPORTED,
    BackupRow,
    CycleRecord,
    CycleResult,
    DriftReport,
    EngineStatus,
    Health,
    Outcome,
    PerformanceReport,
    SchedulerState,
    VersionRow,
)
from clm_tray.core.config.settings import Settings
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.core.errors import ClmError, ConfigError, CycleBusy, StoreError
from clm_tray.core.registry.history import History
from clm_tray.core.serialize import to_jsonable

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# PSI over 10 bins has a sampling floor of about 9 / rows even when nothing changed: below
# ~1,000 new rows that floor alone approaches the 0.05 threshold, so drift waits for more.
DRIFT_MIN_ROWS = 1000


class Engine:
    """One workspace's engine: store, deploy folder, backend, history, bus and scheduler."""

    def __init__(
        self,
        loaded: LoadedSettings,
        bus: ev.EventBus | None = None,
        clock: Callable[[], float] = time.time,
        isolate: bool = False,
    ) -> None:
        from clm_tray.core.registry.store import ModelStore

        self.isolate = isolate  # heavy calls in a worker process (its clock is time.time)
        self.loaded = loaded
        self.settings: Settings = loaded.settings
        self.bus = bus or ev.EventBus()
        self.clock = clock
        self.store = ModelStore(self.settings.resolved_store_dir)
        self.history = History(self.store.history_path)
        self.state_path = self.store.root / "scheduler_state.json"
        self._cancel = threading.Event()
        self._scheduler: Any = None
        self.startup_warnings: list[str] = []
        self._attach_redis()
        self._recover()
        self._adopt()

    # ---- wiring -------------------------------------------------------------------------
    def _ctx(self) -> CycleContext:
        return CycleContext(
            settings=self.settings, store=self.store, history=self.history, bus=self.bus,
            deployer_factory=self.deployer, backend_factory=self.backend, clock=self.clock,
        )

    def deployer(self) -> Any:
        from clm_tray.core.registry.deploy import Deployer

        s = self.settings
        deploy_dir = s.resolved_deploy_dir
        if deploy_dir is None:
            raise ConfigError(
                "QT_CLM_DEPLOY_DIR is not set; point it at the backend's models folder "
                "(or set QT_CLM_PROJECT_DIR)."
            )
        from clm_tray.core.registry.formats import check_model_file

        check_model_file(s.model_file)
        return Deployer(self.store, deploy_dir, model_file=s.model_file,
                        backup_keep=s.backup_keep, write_pickle=s.deploy_pickle)

    def backend(self) -> Any:
        from clm_tray.core.backend.factory import make_backend

        return make_backend(self.settings, self.store.root)

    def _attach_redis(self) -> None:
        if not self.settings.redis_url or self.bus.mirror is not None:
            return
        from clm_tray.core.app.redis_mirror import RedisMirror

        self.bus.mirror = RedisMirror(self.settings.redis_url, self.settings.redis_stream,
                                      self.bus)

    def _recover(self) -> None:
        """Before anything else runs: a deploy interrupted by a crash is finished or undone,
        the store's leftovers are swept, and a backend whose state was not seen since the
        folder last changed is restarted and verified (reconcile.py)."""
        for message in self.history.warnings:  # already logged by History
            self.startup_warnings.append(message)
            self.bus.emit(ev.CycleStage(stage="recover", message=message), level="warning")
        if self.settings.resolved_deploy_dir is None:
            return
        try:
            with self.store.cycle_lock():
                from clm_tray.core.registry.store import sweep_store_leftovers

                swept = sweep_store_leftovers(self.store)
                if swept:
                    log.info("removed %d stale temporary file(s)/folder(s) from %s", swept,
                             self.store.root)
                note = self.deployer().recover()
                self.history.close_dangling("the process running this cycle stopped")
                if note and not note.startswith("removed "):
                    log.warning("recovered an interrupted deploy: %s", note)
                    self.bus.emit(ev.CycleStage(stage="recover", message=note), level="warning")
                    mark_folder_changing(self.store, self.history, "the recovery at start-up",
                                         self.clock())
                if read_pending(self.store) is not None:
                    reconcile_backend(self._ctx(), self.backend(), self._deployed_meta())
        except CycleBusy:  # another process runs a cycle: it will finish its own work
            return
        except ClmError as exc:  # a rejected journal, a damaged store: say it, keep running
            self._startup_warning(str(exc))

    def _startup_warning(self, message: str) -> None:
        """A problem found at start-up: one line in the log and on the bus, kept for the CLI."""
        log.error("%s", message)
        self.startup_warnings.append(message)
        self.bus.emit(ev.CycleStage(stage="recover", message=message), level="error")

    def _adopt(self) -> None:
        """The model already deployed (the old scripts' pickle) becomes a stored version before
        anything can replace it (adopt.py); a busy lock means a cycle runs and adopts itself."""
        from clm_tray.core.errors import CycleBusy
        from clm_tray.core.registry.adopt import adopt_deployed_model

        if self.settings.resolved_deploy_dir is None:
            return
        try:
            with self.store.cycle_lock():
                adopt_deployed_model(self._ctx())
        except CycleBusy:  # the running cycle adopts it itself, first thing
            return
        except StoreError as exc:  # a damaged store file: the command reading it says so once
            log.info("the deployed model was not adopted yet: %s", exc)
        except Exception as exc:  # the store cannot take the copy: said, not fatal here
            log.warning("the deployed model was not adopted yet: %s", exc)

    def _in_worker(self, method: str, *args: Any, cancel: threading.Event | None = None,
                   **kwargs: Any) -> Any:
        """``self.<method>(...)`` run by a fresh Engine in a worker process (isolate=True)."""
        from clm_tray.core.app.worker import run_in_worker
        from clm_tray.core.errors import WorkerError

        try:
            return run_in_worker(self.loaded, method, args, kwargs, bus=self.bus, cancel=cancel)
        except WorkerError:
            self._recover()  # a worker that died mid-deploy leaves a journal / an open row
            raise

    # ---- the retrain cycle and manual actions ---------------------------------------------
    def retrain(self, trigger: str = "manual", deploy: bool = True,
                cancel: threading.Event | None = None, force: bool = False) -> CycleResult:
        """One retrain cycle; ``force`` trains even when nothing changed since the newest
        version (README "How clm-tray decides")."""
        self._cancel = cancel or threading.Event()
        if self.isolate:
            return self._in_worker("retrain", trigger, deploy=deploy, cancel=self._cancel,
                                   force=force)
        return retrain_cycle(self._ctx(), trigger, deploy=deploy, cancel=self._cancel,
                             force=force)

    def cancel_cycle(self) -> None:
        self._cancel.set()

    def rollback(self, version_id: str | None = None) -> CycleResult:
        if self.isolate:
            return self._in_worker("rollback", version_id)
        ctx = self._ctx()

        def act(run: Any) -> CycleResult:
            from clm_tray.core.app.deploy_step import restart_and_verify

            deployer = self.deployer()
            target = self.store.get(version_id) if version_id else None
            backend = self.backend()
            backend.preflight()  # a backend that cannot be driven: change nothing
            run.stage("deploy", f"rolling back to {version_id or 'previous'}")
            mark_folder_changing(self.store, self.history,
                                 f"the rollback to {version_id or 'previous'}", self.clock())
            result = deployer.rollback(target, reason="manual rollback")
            version = self.store.get(result.version)
            health = restart_and_verify(ctx, run, backend, version, "rollback")
            self.bus.emit(ev.ModelRolledBack(version=version.id, from_version=result.previous,
                                             reason="manual rollback",
                                             verified=health.ok and not health.skipped),
                          level="info" if health.ok else "error")
            outcome = Outcome.ROLLED_BACK if health.ok else Outcome.FAILED
            reason = f"rolled back to {version.id}" + (
                "" if health.ok and not health.skipped else f" ({health.reason})")
            return record_outcome(run, outcome, reason, version, version.metrics, None,
                           ok=health.ok, health=health)

        return record_action(ctx, "rollback", act)

    def promote(self, version_id: str | None = None) -> CycleResult:
        """Deploy a challenger (or any stored version) the user approved, verified."""
        if self.isolate:
            return self._in_worker("promote", version_id)
        ctx = self._ctx()
        vid = version_id or self.store.aliases().get("challenger")
        if not vid:
            raise StoreError("there is no challenger waiting; name a version "
                             "(`clm-tray versions` lists them).")
        version = self.store.get(vid)

        def act(run: Any) -> CycleResult:
            return deploy_verified(ctx, run, version, version.metrics,
                                   self.store.notes(vid).get("shadow"), reason="promote")

        return record_action(ctx, "promote", act)

    def restart_backend(self) -> Any:
        """Restart the backend and verify it reports the model in the deploy folder."""
        from clm_tray.core.backend.health import verify_deployed

        backend = self.backend()
        backend.preflight()
        backend.restart()
        meta = self._deployed_meta() or {}
        report = verify_deployed(backend, self.settings, expect_sha256=meta.get("model_sha256"),
                                 expect_version=meta.get("version"))
        self._record_health(report)
        clear_pending(self.store)
        return report

    def health(self) -> Any:
        """One probe of the health URL, judged against the model in the deploy folder."""
        from clm_tray.core.backend.health import probe_health, skipped_report

        s = self.settings
        if s.resolved_backend == "none":
            report = skipped_report(s.health_url)
        else:
            meta = self._deployed_meta() or {}
            report = probe_health(s.health_url, model_key=s.health_model_key,
                                  version_key=s.health_version_key,
                                  expect_sha256=meta.get("model_sha256"),
                                  expect_version=meta.get("version"))
        self._record_health(report)
        return report

    def _record_health(self, report: Any) -> None:
        self.history.add_check("health", to_jsonable(report), at=self.clock())
        self.bus.emit(ev.BackendHealth.of(report), level="info" if report.ok else "error")

    # ---- monitoring ---------------------------------------------------------------------
    def _load_data(self) -> Any:
        from clm_tray.core.ml.data import load_dataset

        s = self.settings
        if s.resolved_data_path is None:
            raise ConfigError("QT_CLM_DATA_PATH is not set; point it at your training data.")
        return load_dataset(s.resolved_data_path, target=s.target, features=s.features or None,
                            encoding=s.data_encoding or None,
                            cache_dir=self.store.root / "cache")

    def _champion(self) -> Any:
        cid = self.store.aliases().get("champion")
        return self.store.get(cid) if cid else None

    def _adopted_champion(self) -> Any:
        champion = self._champion()
        return champion if champion is not None and champion.adopted else None

    def _champion_and_data(self) -> tuple[Any, dict[str, Any], Any]:
        """The champion, its manifest and the current data: what every check starts from."""
        champion = self._champion()
        if champion is None:
            raise StoreError("no champion model yet; run `clm-tray retrain` first.")
        return champion, champion.manifest, self._load_data().frame

    def setup_problem(self) -> str | None:
        """Why no retrain can run yet (first run: nothing configured), else None."""
        s = self.settings
        if s.resolved_data_path is None:
            return "QT_CLM_DATA_PATH is not set (run `clm-tray setup` or open the demo)"
        if s.resolved_deploy_dir is None:
            return "QT_CLM_DEPLOY_DIR is not set (run `clm-tray setup` or open the demo)"
        return None

    def drift(self) -> Any:
        if self.isolate:
            return self._in_worker("drift")
        import pandas as pd

        from clm_tray.core.monitor.drift import drift_report

        s = self.settings
        adopted = self._adopted_champion()
        if adopted is not None:
            report = DriftReport(0.0, s.drift_threshold, False, 0, "", "", enough=False,
                                 reason=_not_measured(adopted), checked_at=self.clock())
            self._record_check("drift", ev.DriftChecked.of(report, version=adopted.id), "info")
            return report
        champion, m, frame = self._champion_and_data()
        ts = frame["timestamp"]
        reference = frame[ts <= pd.Timestamp(m["split"]["train_end"])]
        if s.drift_window_hours > 0:
            current = frame[ts > ts.max() - pd.Timedelta(hours=s.drift_window_hours)]
        else:
            current = frame[ts > pd.Timestamp(m["data_last_timestamp"])]
        report = drift_report(reference, current, m["reference_profile"], m["importance"],
                              s.drift_threshold, min_rows=max(s.shadow_min, DRIFT_MIN_ROWS))
        self._record_check("drift", ev.DriftChecked.of(report, version=champion.id),
                           "warning" if report.drifted else "info")
        return report

    def performance(self) -> Any:
        """Live accuracy of the champion on new rows; re-tests a waiting challenger too."""
        if self.isolate:
            return self._in_worker("performance")
        import pandas as pd

        from clm_tray.core.ml.modelfile import load_booster
        from clm_tray.core.monitor.performance import live_performance

        s = self.settings
        adopted = self._adopted_champion()
        if adopted is not None:
            report = PerformanceReport(0, None, None, None, None, None, None, False, False,
                                       _not_measured(adopted), self.clock())
            self._record_check("performance",
                               ev.PerformanceChecked.of(report, version=adopted.id), "info")
            return report
        champion, m, frame = self._champion_and_data()
        new = frame[frame["timestamp"] > pd.Timestamp(m["data_last_timestamp"])]
        report = live_performance(
            load_booster(champion.model_path), new, m["features"], m["target"],
            m["metrics"]["test_accuracy"], m["metrics"]["baseline_accuracy"],
            s.shadow_min, s.perf_drop,
        )
        self._record_check("performance", ev.PerformanceChecked.of(report, version=champion.id),
                           "warning" if report.degraded else "info")
        self._retest_challenger(frame)
        return report

    def _retest_challenger(self, frame: pd.DataFrame) -> None:
        cid = self.store.aliases().get("challenger")
        if not cid:
            return
        candidate = self.store.get(cid)
        shadow = shadow_against_champion(self._ctx(), candidate, frame)
        self.store.annotate(cid, "shadow", shadow)
        if shadow["decision"] == "reject":
            self.store.set_aliases(challenger=None)
            self.store.annotate(cid, "status", "rejected")
        elif shadow["decision"] == "promote":
            if self.settings.auto_promote:
                self.promote(cid)
            else:
                self.bus.emit(ev.ChallengerWaiting(
                    version=cid, reason="passed the shadow test; waiting for approval"))

    def _record_check(self, kind: str, checked: ev.Payload, level: str) -> None:
        """A check's report (with the version it was measured for) into history and onto the
        bus: the same fields in both."""
        self.history.add_check(kind, to_jsonable(checked), at=self.clock())
        self.bus.emit(checked, level=level)

    def feed_demo(self) -> int:
        """Demo only: append the next hourly bar for every symbol (the data keeps growing)."""
        if self.isolate:
            return int(self._in_worker("feed_demo"))
        from clm_tray.core.demo.feed import feed

        path = self.settings.resolved_data_path
        if path is None:
            return 0
        n = feed(path, hours=1)
        self.bus.emit(ev.DemoFed(rows=n))
        return n

    def replay(self, start: str | None = None, cancel: threading.Event | None = None) -> Any:
        """Would the configured policy have paid on this data? (``replay.py``; read-only:
        nothing in the store, the deploy folder or the backend is touched.) Progress goes
        out as ``replay.progress`` events; ``cancel`` stops it between trainings."""
        if self.isolate:
            return self._in_worker("replay", start, cancel=cancel)
        from clm_tray.core.ml.replay import run_replay

        def progress(done: float, message: str) -> None:
            self.bus.emit(ev.ReplayProgress(progress=round(done, 3), message=message))

        return run_replay(self._load_data(), self.settings, start=start, progress=progress,
                          cancel=cancel)

    # ---- reading state ------------------------------------------------------------------
    def champion_age_hours(self) -> float | None:
        """Age of the model the backend runs: the champion's, else the deployed file's."""
        champion = self._champion()
        if champion is not None:
            trained = champion.trained_at
            return max(0.0, (self.clock() - trained.timestamp()) / 3600)
        meta = self._deployed_meta()
        if meta and meta.get("trained_at"):
            t = datetime.fromisoformat(meta["trained_at"]).timestamp()
            return max(0.0, (self.clock() - t) / 3600)
        model = self._deployed_model_path()
        if model is not None and model.exists():
            return max(0.0, (self.clock() - model.stat().st_mtime) / 3600)
        return None

    def _deployed_model_path(self) -> Path | None:
        d = self.settings.resolved_deploy_dir
        return d / self.settings.model_file if d else None

    def _deployed_meta(self) -> dict[str, Any] | None:
        if self.settings.resolved_deploy_dir is None:
            return None
        try:
            return self.deployer().deployed_meta()
        except Exception:
            return None

    def versions(self) -> list[VersionRow]:
        aliases = self.store.aliases()
        by_id = {v: k for k, v in aliases.items() if v}
        rows = []
        for v in self.store.list():
            notes = self.store.notes(v.id)
            m = v.metrics
            rows.append(VersionRow(
                id=v.id, trained_at=v.manifest.get("trained_at", ""),
                test_accuracy=m.get("test_accuracy"), train_accuracy=m.get("train_accuracy"),
                auc=m.get("auc"), baseline=m.get("baseline_accuracy"),
                status=by_id.get(v.id) or notes.get("status") or "stored",
                size=int(v.manifest.get("model_size", 0)), sha256=v.sha256,
                leakage=bool(v.manifest.get("leakage")), shadow=notes.get("shadow"),
                adopted=v.adopted, files=sorted(v.adopted_files),
            ))
        return rows

    def backups(self) -> list[BackupRow]:
        if self.settings.resolved_deploy_dir is None:
            return []
        return [BackupRow(name=b["name"], created=str(b.get("created", "")),
                          version=b.get("version"), sha256=b.get("sha256"),
                          size=int(b.get("size", 0)))
                for b in self.deployer().backups()]

    def history_rows(self, n: int = 50) -> list[CycleRecord]:
        return self.history.cycles(n)

    def accuracy_history(self) -> list[dict[str, Any]]:
        """Per version: test accuracy, baseline, the last live accuracy measured for that
        very version, and its deployment: "in use", "rolled back", "deployed before" or
        "never deployed" (charts draw them differently)."""
        live: dict[str, float] = {}
        for _at, result in reversed(self.history.checks("performance", 500)):
            if result.get("enough") and result.get("version"):
                live[result["version"]] = result.get("accuracy")
        deployed: set[str] = set()
        rolled_back: set[str] = set()
        for c in self.history.cycles(1000):
            if c.outcome == Outcome.DEPLOYED and c.version:
                deployed.add(c.version)
            elif c.outcome == Outcome.ROLLED_BACK_AFTER_FAILURE and c.version:
                rolled_back.add(c.version)
            elif c.outcome == Outcome.ROLLED_BACK and c.champion_before:
                rolled_back.add(c.champion_before)
        champion = self.store.aliases().get("champion")

        def deployment(vid: str) -> str:
            if vid == champion:
                return "in use"
            if vid in rolled_back:
                return "rolled back"
            return "deployed before" if vid in deployed else "never deployed"

        return [{"version": r.id, "trained_at": r.trained_at, "test_accuracy": r.test_accuracy,
                 "baseline": r.baseline, "live_accuracy": live.get(r.id),
                 "deployment": deployment(r.id)}
                for r in self.versions()]

    def scheduler_state(self) -> SchedulerState:
        if self._scheduler is not None:
            return self._scheduler.state()
        try:
            from clm_tray.core.schedule.state import read_state
        except ImportError:
            return SchedulerState(running=False, enabled=self.settings.enabled)
        state = read_state(self.state_path, self.clock)
        return state or SchedulerState(running=False, enabled=self.settings.enabled,
                                       auto_retrain=self.settings.auto_retrain)

    def status(self) -> EngineStatus:
        s = self.settings
        rows = {r.id: r for r in self.versions()}
        aliases = self.store.aliases()
        champion = rows.get(aliases.get("champion") or "")
        challenger = rows.get(aliases.get("challenger") or "")
        age = self.champion_age_hours()
        fresh = age is not None and age <= s.retrain_hours
        last = self.history.last_cycle()
        backend_now = backend_view(self.history)
        drift = self.history.last_check("drift")
        perf = self.history.last_check("performance")
        sched = self.scheduler_state()
        waits = ""
        if challenger is not None:
            data = self.store.get(challenger.id).manifest.get("data") or {}
            waits = decide.challenger_waits_for(challenger.shadow, data.get("symbols"),
                                                s.shadow_min, s.auto_promote)
        health, summary = _judge(s, age, fresh, last, backend_now,
                                 drift[1] if drift else None, challenger, sched, waits,
                                 champion)
        return EngineStatus(
            health=health, summary=summary, champion=champion, age_hours=age, fresh=fresh,
            retrain_hours=s.retrain_hours, challenger=challenger, last_cycle=last,
            backend=backend_now, drift=drift[1] if drift else None,
            performance=perf[1] if perf else None, scheduler=sched,
            workspace=str(self.loaded.env_file.parent) if self.loaded.env_file else "",
        )

    # ---- scheduler ----------------------------------------------------------------------
    def start_scheduler(self, owner: str = "tray") -> None:
        from clm_tray.core.schedule.scheduler import Scheduler

        if self._scheduler is None:
            self._scheduler = Scheduler(self, owner=owner)
        self._scheduler.start()

    def stop_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None

    @property
    def scheduler(self) -> Any:
        return self._scheduler

    def pause(self, reason: str, until: datetime | None = None) -> None:
        """Pause checks here, or in the daemon / tray of another process (pause file)."""
        from clm_tray.core.schedule.state import write_pause

        if self._scheduler is not None:
            self._scheduler.pause(reason, until)
        else:
            write_pause(self.state_path, reason, until.timestamp() if until else None,
                        by="cli", at=self.clock())

    def resume(self) -> None:
        from clm_tray.core.schedule.state import clear_pause

        if self._scheduler is not None:
            self._scheduler.resume()
        else:
            clear_pause(self.state_path)

    def apply_settings(self, loaded: LoadedSettings) -> None:
        """New settings take effect now: the schedule is re-planned, nothing restarts."""
        self.loaded = loaded
        self.settings = loaded.settings
        self._adopt()  # a newly named deploy folder's model is recorded before anything else
        if self._scheduler is not None:
            self._scheduler.apply_settings(self.settings)

    def close(self) -> None:
        self.stop_scheduler()
        self.bus.close()


def _judge(s: Settings, age: float | None, fresh: bool, last: CycleRecord | None,
           backend: dict[str, Any] | None, drift: dict[str, Any] | None,
           challenger: VersionRow | None, sched: SchedulerState, waits: str = "",
           champion: VersionRow | None = None) -> tuple[Health, str]:
    """The one-word state and one-line summary the tray shows, decided in the engine."""
    if sched.cycle_stage:
        return Health.WORKING, f"Retraining: {sched.cycle_stage}"
    if last is not None and last.failed:
        return Health.ERROR, f"Last cycle {last.outcome}: {last.reason}"
    if backend is not None and backend.get("state") == "unknown":
        return Health.ATTENTION, f"Backend {backend.get('reason', 'unknown')}"
    if backend is not None and not backend.get("ok", True):
        return Health.ERROR, f"Backend unhealthy: {backend.get('reason', '')}"
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
    if drift is not None and drift.get("drifted"):
        return Health.ATTENTION, (f"Drift {wording.score(drift.get('score'))} — above the "
                                  f"alarm level {wording.score(s.drift_threshold)}")
    if challenger is not None:
        return Health.ATTENTION, f"New model {challenger.id} {waits or 'waiting for approval'}"
    if backend is not None and backend.get("identity") == IDENTITY_NOT_REPORTED:
        return Health.ATTENTION, IDENTITY_HINT
    nxt = sched.job("age").next_run if sched.job("age") else None
    tail = f" · next check {_hhmm(nxt)}" if nxt else ""
    if adopted:
        return Health.HEALTHY, f"{adopted}{wording.age(age)} old{tail}"
    return Health.HEALTHY, f"Model {wording.age(age)} old{tail}"


def _not_measured(champion: Any) -> str:
    """Why a check has nothing to say about an adopted champion (no invented numbers)."""
    return (f"not measured: {champion.id} was adopted (clm-tray did not train it, so it has no "
            "training data to compare with); measured from the first model clm-tray trains")


def _hhmm(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts).strftime("%H:%M")

