"""`clm-tray replay`: would the retraining policy have paid on my data?

Progress goes to stderr (one updating line on a terminal, a line per 10 % otherwise), the
answer to stdout; Ctrl-C stops it with exit code 130 and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clm_tray.cli.common import (
    add_json_flag,
    cancel_on_signals,
    load,
    open_cli_engine,
    print_json,
    say,
)
from clm_tray.core.app import events as ev
from clm_tray.core.app.wording import pct
from clm_tray.core.errors import TrainingCancelled


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay", help="replay the data's history: does retraining pay? (changes nothing)")
    p.add_argument("--from", dest="start", metavar="DATE",
                   help="start the replay here (default: a third into the data)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_replay)


class _Progress:
    """Shows replay.progress events on stderr."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = -1

    def __call__(self, event: ev.Event) -> None:
        p = event.payload
        if not isinstance(p, ev.ReplayProgress):
            return
        percent = int(p.progress * 100)
        text = f"replay {percent:3d} % — {p.message}"
        if self.tty:
            sys.stderr.write("\r" + text[:110].ljust(110))
        elif percent // 10 != self.last // 10:
            sys.stderr.write(text + "\n")
        self.last = percent
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty and self.last >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()


def cmd_replay(args: argparse.Namespace) -> int:
    if args.start is not None:
        from clm_tray.core.ml.replay import parse_start

        parse_start(args.start)  # a bad date is one line before any data is read
    engine = open_cli_engine(load(args))
    show = _Progress()
    unsubscribe = engine.bus.subscribe(show)
    try:
        with cancel_on_signals() as cancel:
            result = engine.replay(args.start, cancel=cancel)
    except TrainingCancelled:
        sys.stderr.write("clm-tray: interrupted\n")
        return 130
    finally:
        unsubscribe()
        show.end()
        engine.close()
    if args.json:
        print_json(result)  # {"rows", "baseline_accuracy", "policies": [...], ...}
    else:
        _print(result)
    return 0


def _print(r: Any) -> None:
    cfg, never = r.policy("configured"), r.policy("never")
    say(f"Replay of {r.rows:,} rows from {r.start[:16].replace('T', ' ')} to "
        f"{r.end[:16].replace('T', ' ')} UTC: {r.checks:,} simulated checks, "
        f"{r.trainings} models trained ({r.seconds:.0f} s).")
    say(f"{'policy':<12}{'accuracy':>10}{'retrains':>10}{'deploys':>9}{'no edge':>9}"
        f"{'rejected':>10}  rule")
    for p in r.policies:
        judged = p.name == "configured"
        say(f"{p.name:<12}{pct(p.accuracy):>10}{p.retrains:>10}{p.deploys:>9}"
            f"{p.gated if judged else '–':>9}{p.rejected if judged else '–':>10}  {p.rule}")
    say(f"{'baseline':<12}{pct(r.baseline_accuracy):>10}  ({r.baseline_label})")
    if cfg.triggers:
        why = ", ".join(f"{k} {v}" for k, v in cfg.triggers.items())
        say(f"The configured policy retrained because of: {why}.")
    gain = (cfg.accuracy - never.accuracy) * 100
    verdict = "paid" if gain > 0 else "did not pay"
    say(f"Retraining as configured {verdict}: {gain:+.1f} points over keeping the first model, "
        f"{(cfg.accuracy - r.baseline_accuracy) * 100:+.1f} over always guessing.")
    say("")
    say(f"{r.period:<12}{'configured':>12}{'never':>9}{'always':>9}{'baseline':>10}{'rows':>8}")
    by_name = {p.name: p.periods for p in r.policies}
    for i, period in enumerate(cfg.periods):
        say(f"{period.start[:10 if r.period == 'day' else 7]:<12}"
            f"{pct(period.accuracy):>12}{pct(by_name['never'][i].accuracy):>9}"
            f"{pct(by_name['always'][i].accuracy):>9}{pct(period.baseline):>10}"
            f"{period.rows:>8,}")
