"""Engine sub-commands: status, retrain, rollback, promote, versions, history, config, demo."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from clm_tray.cli.common import add_json_flag, load, print_json, say
from clm_tray.core.app import events as ev
from clm_tray.core.app.status import Outcome
from clm_tray.core.app.wording import ago, clock, decimal, pct
from clm_tray.core.config.secrets import redact
from clm_tray.core.config.settings import FIELDS, describe
from clm_tray.core.config.sources import LoadedSettings, load_settings
from clm_tray.core.serialize import to_jsonable

_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="the champion, its age and quality, the last cycle")
    add_json_flag(p)
    p.set_defaults(handler=cmd_status)

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

    p = sub.add_parser("versions", help="every stored model version")
    add_json_flag(p)
    p.set_defaults(handler=cmd_versions)

    p = sub.add_parser("history", help="the last retrain cycles")
    p.add_argument("-n", type=int, default=20, help="how many (default 20)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_history)

    p = sub.add_parser("config", help="every effective setting with its source")
    add_json_flag(p)
    p.set_defaults(handler=cmd_config)

    p = sub.add_parser("demo", help="create and run the demo workspace")
    p.add_argument("--workspace", type=Path, help="folder of the demo workspace")
    p.add_argument("--headless", action="store_true",
                   help="no tray: run one cycle and exit (the reference backend keeps "
                        "running until `clm-tray demo stop`)")
    p.set_defaults(handler=cmd_demo)
    dsub = p.add_subparsers(dest="demo_command", metavar="")
    st = dsub.add_parser("stop", help="stop the demo's reference backend")
    st.add_argument("--workspace", type=Path, dest="feed_workspace", help=argparse.SUPPRESS)
    st.set_defaults(handler=cmd_demo_stop)
    f = dsub.add_parser("feed", help="append the next N hourly bars to the demo data")
    f.add_argument("--hours", type=int, default=24, help="bars per symbol (default 24)")
    f.add_argument("--shift", action="store_true", help="shift the regime (drift appears)")
    f.add_argument("--workspace", type=Path, dest="feed_workspace", help=argparse.SUPPRESS)
    f.set_defaults(handler=cmd_demo_feed)


def make_engine(loaded: LoadedSettings, bus: ev.EventBus | None = None,
                verbose: bool = False, isolate: bool = False) -> Any:
    """``isolate=True`` (the daemon): heavy calls run in a worker process, so this process
    never holds pandas or XGBoost."""
    from clm_tray.core.app.service import Engine
    from clm_tray.core.config.logsetup import configure

    configure(loaded.settings, verbose=verbose)
    from clm_tray.core.ml.lean_imports import keep_scikit_learn_out_unless_pickling

    keep_scikit_learn_out_unless_pickling(loaded.settings)  # only a .pkl writer needs it
    return Engine(loaded, bus=bus, isolate=isolate)


# ---- status -------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    engine = make_engine(load(args))
    st = engine.status()
    last = st.last_cycle
    failed = last is not None and last.failed
    code = 0 if (st.fresh and not failed and st.age_hours is not None) else 1
    if args.json:
        d = to_jsonable(st)
        d["exit_code"] = code
        print_json(d)
        return code
    c = st.champion
    say(f"state:      {st.health.value} — {st.summary}")
    if c and c.adopted:
        say(f"champion:   {c.id} — {', '.join(c.files)}, adopted (deployed before clm-tray; "
            "kept byte for byte, never loaded)")
        say(f"age:        {st.age_hours:.1f} h from the file's modification time "
            f"({'fresh' if st.fresh else 'retrain due'}, limit {st.retrain_hours:g} h)")
        say("accuracy:   not measured (clm-tray did not train this model)")
    elif c:
        say(f"champion:   {c.id} (trained {c.trained_at})")
        say(f"age:        {st.age_hours:.1f} h ({'fresh' if st.fresh else 'STALE'}, "
            f"limit {st.retrain_hours:g} h)")
        say(f"accuracy:   train {pct(c.train_accuracy)}  test {pct(c.test_accuracy)}  "
            f"AUC {decimal(c.auc)}  baseline {pct(c.baseline)}")
    elif st.age_hours is not None:
        say(f"deployed:   a model not trained by clm-tray, {st.age_hours:.1f} h old")
    else:
        say("champion:   none yet — run `clm-tray retrain`")
    if st.challenger:
        say(f"challenger: {st.challenger.id} (test {pct(st.challenger.test_accuracy)})")
    if last:
        say(f"last cycle: {last.outcome} ({ago(last.finished_at or last.started_at)}, "
            f"trigger {last.trigger}) {last.reason}")
    if st.backend:
        b = st.backend
        if b.get("state") == "unknown":  # the folder changed after the last check
            say(f"backend:    {b.get('reason')}")
        else:
            word = "skipped" if b.get("skipped") else ("healthy" if b.get("ok") else "UNHEALTHY")
            say(f"backend:    {word} (checked {ago(b.get('checked_at'))}) — "
                f"{b.get('reason') or b.get('url')}")
    sch = st.scheduler
    if sch.running:
        nxt = ", ".join(f"{j.name} {clock(j.next_run)}" for j in sch.jobs if j.next_run)
        say(f"scheduler:  running ({sch.owner}) — next: {nxt or 'none'}")
    else:
        say("scheduler:  not running (start `clm-tray run` or the tray app)")
    return code


# ---- retrain and friends ------------------------------------------------------------------
def _progress_printer(enabled: bool) -> Any:
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


def _print_result(res: Any, as_json: bool) -> int:
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
        if res.shadow and res.shadow.get("rows"):
            s = res.shadow
            say(f"  shadow test on {s['rows']} new rows: candidate "
                f"{pct(s.get('candidate_accuracy'))} vs champion "
                f"{pct(s.get('champion_accuracy'))}, McNemar p={decimal(s.get('p_value'))}")
    if res.outcome == Outcome.CANCELLED:
        if not as_json:
            sys.stderr.write(f"clm-tray: {res.outcome}: {res.reason}\n")
        return 130  # what a shell expects after Ctrl+C
    if not res.ok and not as_json:
        sys.stderr.write(redact(f"clm-tray: {res.outcome}: {res.reason}") + "\n")
    return 0 if res.ok else 1


def _run_cycle(args: argparse.Namespace, action: str, *call_args: Any, **kw: Any) -> int:
    """Retrain, rollback and promote alike: progress on stderr, the result on stdout."""
    engine = make_engine(load(args))
    engine.bus.subscribe(_progress_printer(not args.json))
    return _print_result(getattr(engine, action)(*call_args, **kw), args.json)


def cmd_retrain(args: argparse.Namespace) -> int:
    """Ctrl+C or SIGTERM cancels the cycle (outcome ``cancelled``, exit 130); a second Ctrl+C
    interrupts at once. ``--dry-run`` only prints the plan."""
    if args.dry_run:
        return _dry_run(args)
    with cancel_on_signals() as cancel:
        return _run_cycle(args, "retrain", "manual", deploy=not args.no_deploy, cancel=cancel,
                          force=args.force)


@contextlib.contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """Ctrl+C or SIGTERM sets the yielded event (the engine stops at its next safe point); a
    second one interrupts at once. Installed explicitly, so it works even when the shell
    started us with SIGINT ignored."""
    cancel = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        sys.stderr.write("clm-tray: cancelling…\n")
        cancel.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    try:
        yield cancel
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
    return _run_cycle(args, "rollback", args.version)


def cmd_promote(args: argparse.Namespace) -> int:
    return _run_cycle(args, "promote", args.version)


def cmd_versions(args: argparse.Namespace) -> int:
    engine = make_engine(load(args))
    rows = engine.versions()
    if args.json:
        print_json({"versions": rows, "aliases": engine.store.aliases(),
                    "backups": engine.backups()})
        return 0
    if not rows:
        say("no versions yet — run `clm-tray retrain`")
    for r in rows:
        shadow = ""
        if r.shadow and r.shadow.get("decision"):
            sh = r.shadow
            shadow = f"  shadow: {sh['decision']}"
            if sh.get("rows"):
                shadow += (f" ({sh['rows']} rows, {pct(sh.get('candidate_accuracy'))} vs "
                           f"{pct(sh.get('champion_accuracy'))}, p={decimal(sh.get('p_value'))})")
        leak = "  LEAKAGE?" if r.leakage else ""
        if r.adopted:
            say(f"{r.id}  {r.status:<10} adopted: {', '.join(r.files)} "
                f"({r.size / 1024:.0f} KiB), accuracy not measured")
            continue
        say(f"{r.id}  {r.status:<10} test {pct(r.test_accuracy)}  AUC {decimal(r.auc)}  "
            f"{r.size / 1024:.0f} KiB{leak}{shadow}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    engine = make_engine(load(args))
    rows = engine.history_rows(args.n)
    if args.json:
        print_json({"cycles": rows})
        return 0
    if not rows:
        say("no cycles yet")
    for r in rows:
        when = datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M:%S")
        dur = f"{r.duration_s:.1f}s" if r.duration_s is not None else "…"
        shadow = ""
        if r.shadow and r.shadow.get("rows"):
            shadow = f" [shadow p={decimal(r.shadow.get('p_value'))}]"
        say(f"{when}  {r.trigger:<10} {r.outcome:<20} {dur:>7}  {r.version or ''} "
            f"{r.reason}{shadow}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    loaded = load(args)
    s = loaded.settings
    folders = {
        "data": s.resolved_data_path, "store": s.resolved_store_dir,
        "deploy": s.resolved_deploy_dir, "logs": s.resolved_log_dir,
        "user config file": loaded.user_file, ".env": loaded.env_file,
        "backend": s.resolved_backend,
    }
    if args.json:
        print_json({
            "settings": {var: {"value": getattr(s, f), "source": loaded.sources[f]}
                         for var, f in FIELDS.items()},
            "resolved": folders,
        })
        return 0
    for var, f in FIELDS.items():
        value = getattr(s, f)
        if isinstance(value, list):
            value = ",".join(value)
        say(f"{var:<28} {'' if value is None else value!s:<32} [{loaded.sources[f]}]  "
            f"{describe(f)}")
    say("")
    for name, value in folders.items():
        say(f"{name + ':':<18} {value if value is not None else '(not set)'}")
    return 0


# ---- demo ---------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from clm_tray.core.config.workspace import default_workspace, ensure_workspace

    if not args.headless and _hand_over_to_running_app():
        say("clm-tray is already running; brought its dashboard to the front. Its backend and "
            "the demo's .env were left as they are.")
        return 0
    say("Preparing the demo workspace (91 symbols × 1,500 hourly bars)…")
    ws = ensure_workspace(args.workspace)
    loaded = load_settings(ws.env_file)
    if not args.headless:
        # The backend (and every restart of it by the engine's workers, which inherit this)
        # stops by itself when this app is gone, even when it dies without cleaning up.
        from clm_tray.core.backend.reference_server.owner import OWNER_ENV

        os.environ[OWNER_ENV] = str(os.getpid())
    engine = make_engine(loaded)
    backend = engine.backend()
    say(f"workspace: {ws.root}")
    say(f"starting the reference backend on http://127.0.0.1:{ws.port} …")
    backend.start()
    engine.bus.subscribe(_progress_printer(True))
    if not args.headless:
        return _demo_gui(loaded, engine, backend)
    res = engine.retrain("demo")
    code = _print_result(res, False)
    report = engine.health()
    say(f"backend:   {'healthy' if report.ok else 'UNHEALTHY'} — reports model "
        f"{(report.reported_sha256 or '?')[:16]}… ({report.reported_version or '?'})")
    _where(ws, loaded)
    pid = backend.pid() if hasattr(backend, "pid") else None
    where = "" if ws.root == default_workspace().resolve() else f" --workspace {ws.root}"
    say("")
    say(f"The reference backend keeps running (pid {pid or '?'}) on "
        f"http://127.0.0.1:{ws.port}; stop it with `clm-tray demo stop{where}`.")
    engine.close()
    return code if report.ok else 1


def _hand_over_to_running_app() -> bool:
    """True when a tray app already runs (it was asked to show its dashboard)."""
    try:
        from clm_tray.gui.single_instance import SingleInstance
    except ImportError:  # no PySide6: there is no tray app to hand over to
        return False
    return SingleInstance().hand_over("show")


def cmd_demo_stop(args: argparse.Namespace) -> int:
    """Stop the reference backend a headless demo left running (any clm-tray can: pid file)."""
    from clm_tray.core.backend.factory import make_backend
    from clm_tray.core.config.workspace import default_workspace

    root = args.feed_workspace or args.workspace or default_workspace()
    env = Path(root) / ".env"
    if not env.exists():
        raise SystemExit(f"clm-tray: no demo workspace at {root}; nothing to stop.")
    s = load_settings(env).settings
    backend = make_backend(s, s.resolved_store_dir)
    pid = backend.pid() if hasattr(backend, "pid") else None
    if pid is None:
        say("The demo's reference backend is not running; nothing to stop.")
        return 0
    backend.stop()
    say(f"Stopped the demo's reference backend (pid {pid}).")
    return 0


def _demo_gui(loaded: LoadedSettings, engine: Any, backend: Any) -> int:
    try:
        from clm_tray.gui.app import run_gui
    except ImportError as exc:
        backend.stop()
        raise SystemExit(f"clm-tray: the tray app is not available ({exc}); "
                         "use `clm-tray demo --headless`") from None
    engine.close()  # the tray builds its own (isolated) engine and runs the first cycle
    return int(run_gui(loaded, demo_backend=backend, first_cycle=True))


def _where(ws: Any, loaded: LoadedSettings) -> None:
    s = loaded.settings
    say("")
    say("Where everything is:")
    say(f"  settings      {ws.env_file}")
    say(f"  data          {s.resolved_data_path}")
    say(f"  model store   {s.resolved_store_dir}")
    say(f"  deploy folder {s.resolved_deploy_dir}  (backups and retraining_log.txt too)")
    say(f"  logs          {s.resolved_log_dir}")
    say(f"Try: cd {ws.root} && clm-tray status")


def cmd_demo_feed(args: argparse.Namespace) -> int:
    from clm_tray.core.config.workspace import default_workspace
    from clm_tray.core.demo.feed import feed

    root = args.feed_workspace or args.workspace
    if root is not None or args.env_file is None and not Path(".env").exists():
        loaded = load_settings((root or default_workspace()) / ".env")
    else:
        loaded = load(args)
    path = loaded.settings.resolved_data_path
    if path is None:
        raise SystemExit("clm-tray: QT_CLM_DATA_PATH is not set; run this in the demo workspace")
    n = feed(path, hours=args.hours, shift=args.shift)
    say(f"appended {n:,} rows ({args.hours} h per symbol{', shifted regime' if args.shift else ''})"
        f" to {path}")
    return 0
