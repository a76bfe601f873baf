"""`clm-tray retrain / rollback / promote`: the commands that change the deployed model.

All three are one engine call that publishes its progress on the bus (shown on stderr) and
returns a ``CycleResult`` (printed on stdout, or as one JSON object with ``--json``); the exit
code says whether it worked (130 after a cancel). `retrain --dry-run` prints the plan instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from clm_tray.cli.common import (
    add_json_flag,
    cancel_on_signals,
    load,
    open_cli_engine,
    print_json,
    say,
)
from clm_tray.core.app import events as ev
from clm_tray.core.app.port import EnginePort
from clm_tray.core.app.status import CycleResult, Outcome
from clm_tray.core.app.wording import decimal, pct
from clm_tray.core.config.secrets import redact


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="run one full retrain cycle now")
    p.add_argument("--no-deploy", action="store_true", help="train and version, do not deploy")
    p.add_argument("--force", action="store_true",
                   help="train even when the data and settings are unchanged since the newest "
                        "version")
    p.add_argument("--dry-run", action="store_true",
                   help="print which files would be backed up, written and restarted; do nothing")
    add_json_flag(p)
    p.set_defaults(handler=cmd_retrain)

    p = sub.add_parser("rollback", help="restore `previous` (or VERSION) into the deploy folder")
    p.add_argument("version", nargs="?", help="a stored version id (default: previous)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_rollback)

    p = sub.add_parser("promote", help="deploy the waiting challenger (or VERSION)")
    p.add_argument("version", nargs="?", help="a stored version id (default: challenger)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_promote)


def progress_printer(enabled: bool) -> Callable[[ev.Event], None]:
    """A bus subscriber that shows the cycle's stages (and the backend's answer) on stderr."""
    last_round_line = [0.0]

    def show(e: ev.Event) -> None:
        if not enabled:
            return
        p = e.payload
        if isinstance(p, ev.CycleStage) and p.rounds_total:
            # boosting rounds: a line every 2 s and the last, not one per report
            done = p.rounds_done == p.rounds_total
            if not done and time.monotonic() - last_round_line[0] < 2.0:
                return
            last_round_line[0] = time.monotonic()
        if isinstance(p, ev.CycleStage):
            sys.stderr.write(f"  [{int(100 * p.progress):3d}%] {p.stage}: {p.message}\n")
        elif isinstance(p, ev.BackendHealth) and not p.skipped:
            sys.stderr.write(f"  backend: {p.reason}\n")
        sys.stderr.flush()

    return show


def print_result(res: CycleResult, as_json: bool) -> int:
    """The cycle's result on stdout; returns the exit code (0 ok, 1 failed, 130 cancelled)."""
    if as_json:
        print_json(res)
    else:
        m = res.metrics or {}
        say(f"{res.outcome}: {res.reason}")
        if m:
            say(f"  version {res.version}: train {pct(m.get('train_accuracy'))}  "
                f"test {pct(m.get('test_accuracy'))}  AUC {decimal(m.get('auc'))}  "
                f"baseline {pct(m.get('baseline_accuracy'))}  "
                f"({m.get('test_rows', '?')} out-of-time test rows)")
        edge = m.get("edge") if isinstance(m.get("edge"), dict) else None
        if edge:
            verdict = "an edge" if edge.get("passed") else "no edge (not more than luck)"
            say(f"  edge gate: {edge.get('reason')} over {edge.get('bars')} test bars — {verdict}")
        if res.leakage:
            say("  WARNING: probable leakage — the model looks too good to be true")
        s = res.shadow
        if s is not None and s.rows:
            say(f"  shadow test on {s.rows} new rows: candidate "
                f"{pct(s.candidate_accuracy)} vs champion "
                f"{pct(s.champion_accuracy)}, McNemar p={decimal(s.p_value)}")
    if res.outcome == Outcome.CANCELLED:
        if not as_json:
            sys.stderr.write(f"clm-tray: {res.outcome}: {res.reason}\n")
        return 130  # what a shell expects after Ctrl+C
    if not res.ok and not as_json:
        sys.stderr.write(redact(f"clm-tray: {res.outcome}: {res.reason}") + "\n")
    return 0 if res.ok else 1


def _run_cycle(args: argparse.Namespace, call: Callable[[EnginePort], CycleResult]) -> int:
    """Retrain, rollback and promote alike: progress on stderr, the result on stdout."""
    engine = open_cli_engine(load(args))
    engine.bus.subscribe(progress_printer(not args.json))
    return print_result(call(engine), args.json)


def cmd_retrain(args: argparse.Namespace) -> int:
    """Ctrl+C or SIGTERM cancels the cycle (outcome ``cancelled``, exit 130); a second Ctrl+C
    interrupts at once. ``--dry-run`` only prints the plan."""
    if args.dry_run:
        return _dry_run(args)
    with cancel_on_signals() as cancel:
        return _run_cycle(args, lambda engine: engine.retrain(
            "manual", deploy=not args.no_deploy, cancel=cancel, force=args.force))


def _dry_run(args: argparse.Namespace) -> int:
    """The plan only: no engine is built (it would recover and adopt), nothing is touched."""
    from clm_tray.core.registry.plan import plan_retrain

    plan = plan_retrain(load(args).settings)
    if args.json:
        print_json(plan)
    else:
        say("Dry run: nothing is trained, written or restarted. A retrain would:")
        for line in plan.lines():
            say(f"  {line}")
    return 1 if plan.problems else 0


def cmd_rollback(args: argparse.Namespace) -> int:
    return _run_cycle(args, lambda engine: engine.rollback(args.version))


def cmd_promote(args: argparse.Namespace) -> int:
    return _run_cycle(args, lambda engine: engine.promote(args.version))
