"""`clm-tray ...`: argparse sub-commands that call the engine (the GUI is one of them).

Each area registers its sub-commands from its own module (``register(sub)``); a handler takes
the parsed args and returns the exit code. A ``ClmError`` becomes one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from clm_tray import __version__
from clm_tray.core.config.secrets import redact
from clm_tray.core.errors import ClmError, describe_os_error

AREAS = ("engine", "backend", "monitor", "replay", "desktop", "install")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clm-tray",
        description="Keep a trading backend's XGBoost model fresh and honest.",
    )
    parser.add_argument("--version", action="version", version=f"clm-tray {__version__}")
    parser.add_argument("--env-file", help="the .env to read (default: ./.env)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        try:
            module = importlib.import_module(f"clm_tray.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name != f"clm_tray.cli.{area}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        if args.command is None and "gui" in parser._subparsers._group_actions[0].choices:
            args = parser.parse_args(["gui", *(argv or [])])
        else:
            parser.print_help()
            return 2
    try:
        return int(args.handler(args) or 0)
    except ClmError as exc:
        sys.stderr.write(f"clm-tray: {redact(str(exc))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("clm-tray: interrupted\n")
        return 130
    except BrokenPipeError:  # `clm-tray drift | head`: the reader left, that is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # full disk, a folder that vanished: one line naming where
        sys.stderr.write(f"clm-tray: {redact(describe_os_error(exc))}\n")
        return 1
    except Exception as exc:  # a bug: the user gets one line, the log gets the traceback
        logging.getLogger("clm_tray").exception("clm-tray %s crashed", args.command)
        sys.stderr.write(f"clm-tray: internal error ({redact(f'{type(exc).__name__}: {exc}')})"
                         "; the log file has the details (`clm-tray diagnose` finds it)\n")
        return 70
