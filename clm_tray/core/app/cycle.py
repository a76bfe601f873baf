"""The retrain cycle, read top-down (DESIGN.md "The retrain cycle").

load → train (child process) → version → shadow test → deploy (journaled) → restart →
verify → on failure roll back, restart, verify → record. Every stage is announced on the bus
and timed; the cycle ends in exactly one history row and one retraining_log.txt line.

This module is the cycle's story; each step it names lives beside it: the run's stages and
its record (cycle_run.py), the version's manifest (manifest.py), the shadow test against the
champion (shadow_step.py), and deploy–restart–verify–roll back (deploy_step.py).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from clm_tray.core.app import decide
from clm_tray.core.app import events as ev
from clm_tray.core.app.cycle_run import (
    PROGRESS_AT,
    STOPPED,
    CycleContext,
    CycleRun,
    record_outcome,
)
from clm_tray.core.app.deploy_step import deploy_verified
from clm_tray.core.app.manifest import build_manifest, deploy_formats
from clm_tray.core.app.shadow_step import shadow_against_champion
from clm_tray.core.app.status import CycleResult, Outcome
from clm_tray.core.app.wording import pct
from clm_tray.core.errors import ClmError, ConfigError, TrainingCancelled
from clm_tray.core.fsutil import sha256_file
from clm_tray.core.registry.adopt import adopt_deployed_model
from clm_tray.core.serialize import to_jsonable

log = logging.getLogger(__name__)


def retrain_cycle(
    ctx: CycleContext,
    trigger: str = "manual",
    *,
    deploy: bool = True,
    cancel: threading.Event | None = None,
    force: bool = False,
) -> CycleResult:
    """One full cycle under the store's machine-wide lock (CycleBusy when another runs).

    ``force`` trains even when the data and settings are those of the newest version.
    """
    with ctx.store.cycle_lock():
        result = _retrain_locked(ctx, trigger, deploy=deploy, cancel=cancel, force=force)
        if result.outcome != Outcome.CANCELLED:
            decide.prune_store(ctx.store, ctx.settings, ctx.deployer_factory)
        return result


def _retrain_locked(
    ctx: CycleContext, trigger: str, *, deploy: bool, cancel: threading.Event | None,
    force: bool,
) -> CycleResult:
    """The cycle's steps in order; every way out of it ends in ``record_outcome``."""
    import pandas as pd

    from clm_tray.core.ml.data import load_dataset
    from clm_tray.core.ml.prepared import read_prepared, write_prepared
    from clm_tray.core.ml.train_result import TrainParams
    from clm_tray.core.ml.trainprocess import TrainingProcess, starts_early
    from clm_tray.core.monitor.drift import reference_profile

    s = ctx.settings
    adopt_deployed_model(ctx)
    champion_id = ctx.store.aliases().get("champion")
    run = CycleRun(ctx, ctx.history.start_cycle(trigger, champion_id, at=ctx.clock()))
    ctx.bus.emit(ev.CycleStarted(trigger=trigger, cycle=run.cycle_id, champion=champion_id))
    version = None
    metrics: dict[str, Any] = {}
    trainer: TrainingProcess | None = None
    try:
        # 1. Load
        run.stage("load", "loading training data")
        data_path = s.resolved_data_path
        if data_path is None:
            raise ConfigError(
                "QT_CLM_DATA_PATH is not set; point it at your training CSV/Parquet "
                "(or set QT_CLM_PROJECT_DIR)."
            )
        if ctx.train_ahead and starts_early(data_path):  # it imports while the data loads
            trainer = TrainingProcess(dask_scheduler=s.dask_scheduler)
        dataset = load_dataset(data_path, target=s.target, features=s.features or None,
                               coerce_bad_cells=s.coerce_bad_cells,
                               encoding=s.data_encoding or None,
                               cache_dir=ctx.store.root / "cache")
        for w in dataset.warnings:
            ctx.bus.emit(ev.CycleStage(stage="load", message=w, cycle=run.cycle_id, progress=0.0),
                         level="warning")
        params = TrainParams.from_settings(s)
        same = None if force else decide.unchanged_since(
            ctx.store, decide.training_key(dataset, params))
        if same is not None:
            return record_outcome(
                run, Outcome.UNCHANGED, f"data unchanged since {decide.short_id(same.id)} — "
                "nothing to retrain", None, {}, None, ok=True)
        _check_cancel(cancel)

        # 2. Train in a child process (killable on timeout / cancel)
        run.stage("train", f"training on {dataset.fingerprint.rows:,} rows")
        work = ctx.store.root / "work"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            # One load per cycle: the child reads these validated rows, not the file again.
            handoff = write_prepared(dataset, Path(tmp) / "dataset.arrow")
            # Not held twice while the child trains. A copy: `iloc[:0]` alone is a view that
            # keeps every column alive (10 M rows: the parent stayed at 1.4 GB, not 0.26 GB).
            dataset.frame = dataset.frame.iloc[:0].copy()
            trainer = trainer or TrainingProcess(dask_scheduler=s.dask_scheduler)
            result = trainer.train(
                # A cluster's workers read the training file itself, at the same path.
                data_path if s.dask_scheduler else handoff, target=s.target,
                features=dataset.features, params=params,
                workdir=Path(tmp), timeout=s.train_timeout, cancel=cancel,
                coerce_bad_cells=s.coerce_bad_cells, on_round=run.train_rounds,
                encoding=s.data_encoding or None,
            )
            dataset.frame = read_prepared(handoff).frame  # for the profile and the shadow test
            metrics = dict(result.metrics)
            _check_cancel(cancel)

            # 3. Version (immutable; a model already stored is reused, never stored twice)
            run.stage("version", "saving the new version")
            version = decide.same_model(ctx.store, sha256_file(Path(result.model_path)))
            if version is None:
                # Rows are sorted by time: the training rows are a prefix (a view, no copy).
                frame = dataset.frame
                train_rows = frame.iloc[:int(frame["timestamp"].searchsorted(
                    pd.Timestamp(result.split.train_end), side="right"))]
                manifest = build_manifest(dataset, result, champion_id, reference_profile(
                    train_rows, dataset.features))
                version = ctx.store.add_version(
                    Path(result.model_path), manifest,
                    formats=deploy_formats(s, Path(result.model_path)))
        if version.id == champion_id:
            return record_outcome(
                run, Outcome.UNCHANGED, f"the new model is identical to "
                f"{decide.short_id(champion_id)}, which is deployed — nothing to do",
                version, metrics, None, ok=True)
        ctx.bus.emit(ev.CycleStage(
            stage="version", progress=PROGRESS_AT["version"], cycle=run.cycle_id,
            message=f"{version.id}: test accuracy {pct(metrics['test_accuracy'])}",
            version=version.id))

        # 3b. Edge gate: no deploy without an edge over guessing (the first model included)
        edge = decide.edge_verdict(result.edge, s)
        if edge is not None:
            metrics["edge"] = to_jsonable(edge)
            ctx.store.annotate(version.id, "edge", metrics["edge"])
        if s.edge_gate and edge is not None and not edge.passed and not result.leakage:
            ctx.store.annotate(version.id, "status", "no edge")
            return record_outcome(run, Outcome.NO_EDGE, decide.no_edge_reason(edge, champion_id),
                                  version, metrics, None, ok=True)

        # 4. Shadow test against the champion
        run.stage("shadow", "shadow test against the champion")
        shadow = shadow_against_champion(ctx, version, dataset.frame)
        ctx.store.annotate(version.id, "shadow", shadow)
        decision = shadow.decision
        if result.leakage:
            decision = "reject"
            shadow.reason = f"probable leakage: {result.leakage_reason}"
        if decision == "reject":
            ctx.store.annotate(version.id, "status", "rejected")
            return record_outcome(run, Outcome.REJECTED, shadow.reason, version, metrics, shadow,
                           ok=True, leakage=result.leakage)
        if decision == "wait":
            ctx.store.set_aliases(challenger=version.id)
            ctx.bus.emit(ev.ChallengerWaiting(version=version.id, reason=shadow.reason,
                                              shadow=shadow))
            return record_outcome(run, Outcome.WAITING, shadow.reason, version, metrics, shadow,
                                  ok=True)
        if not deploy:
            return record_outcome(run, Outcome.TRAINED, "not deployed (--no-deploy)", version,
                                  metrics, shadow, ok=True)
        if not s.auto_promote and trigger != "promote":
            ctx.store.set_aliases(challenger=version.id)
            reason = "passed the shadow test; QT_CLM_AUTO_PROMOTE=false, waiting for approval"
            ctx.bus.emit(ev.ChallengerWaiting(version=version.id, reason=reason))
            return record_outcome(run, Outcome.AWAITING_APPROVAL, reason, version, metrics, shadow,
                                  ok=True)

        # 5-8. Deploy, restart, verify, roll back on failure
        return deploy_verified(ctx, run, version, metrics, shadow)
    except TrainingCancelled:
        return record_outcome(run, Outcome.CANCELLED, "cancelled; nothing was stored", None,
                              {}, None, ok=False)
    except SystemExit:  # the process was asked to end (worker.py): a cancel, said so, then end
        record_outcome(run, Outcome.CANCELLED, STOPPED, version, metrics, None, ok=False)
        raise
    except ClmError as exc:
        return record_outcome(run, Outcome.FAILED, str(exc), version, metrics, None, ok=False)
    except Exception as exc:  # a bug must still end the cycle cleanly and visibly
        log.exception("cycle %s crashed", run.cycle_id)
        return record_outcome(run, Outcome.FAILED, f"internal error: {exc}", version, metrics, None,
                              ok=False)
    finally:
        if trainer is not None:
            trainer.close()


def _check_cancel(cancel: threading.Event | None) -> None:
    """Stop between steps when the user cancelled (the child is stopped by the trainer)."""
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("cancelled; nothing was stored")
