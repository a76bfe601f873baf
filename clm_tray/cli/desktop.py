"""`clm-tray gui`: the tray app (also what `clm-tray` alone starts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clm_tray.cli.common import load

VIEWS = ("overview", "drift", "versions", "activity", "replay")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gui", help="start the tray app (the default command)",
        description="Start the tray app: icon, dashboard, notifications, and the scheduler "
                    "in the background. A second launch brings the first one's dashboard "
                    "to the front.",
    )
    p.add_argument("--screenshot", metavar="FILE.png", type=Path,
                   help="render the dashboard offscreen into FILE.png and exit")
    p.add_argument("--view", choices=VIEWS, default="overview",
                   help="dashboard tab for --screenshot (default: overview)")
    p.add_argument("--size", type=_size, default=(1280, 860), metavar="WxH",
                   help="window size for --screenshot, e.g. 1024x768 (default 1280x860)")
    p.set_defaults(handler=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    loaded = load(args)
    try:
        from clm_tray.gui.app import run_gui
    except ImportError as exc:
        raise SystemExit(f"clm-tray: the tray app needs PySide6 ({exc}); use `clm-tray run` "
                         "for the headless scheduler") from None
    return run_gui(loaded, screenshot=args.screenshot, view=args.view, size=args.size)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: give WIDTHxHEIGHT, e.g. 1024x768") \
            from None
    if w < 320 or h < 240:
        raise argparse.ArgumentTypeError(f"--size {text!r}: at least 320x240")
    return w, h
