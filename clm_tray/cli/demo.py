"""`clm-tray demo [stop | feed]`: the demo workspace, its reference backend, its growing data.

`clm-tray demo` creates (or reuses) the workspace, starts the reference backend and opens the
tray on it, which runs the first cycle; `--headless` runs that cycle here and leaves the
backend running for `clm-tray demo stop`. `demo feed` appends hourly bars (with `--shift`, a
regime change that drift notices).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from clm_tray.cli.common import load, open_cli_engine, say
from clm_tray.cli.cycle import print_result, progress_printer
from clm_tray.core.app.port import EnginePort
from clm_tray.core.config.sources import LoadedSettings, load_settings


def register(sub: argparse._SubParsersAction) -> None:
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
    engine = open_cli_engine(loaded)
    backend = engine.backend()
    say(f"workspace: {ws.root}")
    say(f"starting the reference backend on http://127.0.0.1:{ws.port} …")
    backend.start()
    engine.bus.subscribe(progress_printer(True))
    if not args.headless:
        return _demo_gui(loaded, engine, backend)
    res = engine.retrain("demo")
    code = print_result(res, False)
    report = engine.health()
    say(f"backend:   {'healthy' if report.ok else 'UNHEALTHY'} — reports model "
        f"{(report.reported_sha256 or '?')[:16]}… ({report.reported_version or '?'})")
    _where(ws, loaded)
    pid = backend.pid()
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
    pid = backend.pid()
    if pid is None:
        say("The demo's reference backend is not running; nothing to stop.")
        return 0
    backend.stop()
    say(f"Stopped the demo's reference backend (pid {pid}).")
    return 0


def _demo_gui(loaded: LoadedSettings, engine: EnginePort, backend: Any) -> int:
    try:
        from clm_tray.gui.app import run_gui
    except ImportError as exc:
        backend.stop()
        raise SystemExit(f"clm-tray: the tray app is not available ({exc}); "
                         "use `clm-tray demo --headless`") from None
    engine.close()  # the tray opens its own engine (heavy work in workers), runs the first cycle
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
