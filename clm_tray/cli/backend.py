"""Backend sub-commands: restart-backend, health, and the reference backend itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from clm_tray.cli.common import add_json_flag, load, open_cli_engine, print_json, say
from clm_tray.core.app.wording import latency
from clm_tray.core.errors import BackendError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restart-backend", help="restart the backend and verify its model")
    add_json_flag(p)
    p.set_defaults(handler=cmd_restart)

    p = sub.add_parser("health", help="ask the backend's health URL once")
    add_json_flag(p)
    p.set_defaults(handler=cmd_health)

    p = sub.add_parser("backend", help="the reference backend")
    bsub = p.add_subparsers(dest="backend_command", metavar="")
    s = bsub.add_parser("serve", help="serve /health and /predict for a models folder")
    s.add_argument("--models-dir", type=Path, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--model-file", default="xgb_model.ubj")
    s.set_defaults(handler=cmd_serve)


def _show(report, as_json: bool) -> int:
    if as_json:
        print_json(report)
    elif report.skipped:
        say(f"skipped: {report.reason}")
    else:
        word = "healthy" if report.ok else "UNHEALTHY"
        say(f"{word}: {report.url} ({latency(report.latency_ms)}) model "
            f"{report.reported_version or '?'} "
            f"{(report.reported_sha256 or '')[:16]} {report.reason}".rstrip())
    return 0 if report.ok else 1


def cmd_restart(args: argparse.Namespace) -> int:
    return _show(open_cli_engine(load(args)).restart_backend(), args.json)


def cmd_health(args: argparse.Namespace) -> int:
    return _show(open_cli_engine(load(args)).health(), args.json)


def cmd_serve(args: argparse.Namespace) -> int:
    from clm_tray.core.backend.reference_server.server import serve

    try:
        serve(args.models_dir, host=args.host, port=args.port, model_file=args.model_file)
    except OSError as exc:  # port taken, address not available: one line, as the CLI does
        raise BackendError(f"cannot serve on {args.host}:{args.port} ({exc.strerror or exc}); "
                           "choose another --port or stop the program using it.") from None
    return 0
