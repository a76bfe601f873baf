"""Monitoring sub-commands: drift, performance, events, and the headless daemon `run`."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from clm_tray.cli.common import add_json_flag, load, open_cli_engine, print_json, say
from clm_tray.core.app.wording import decimal, pct
from clm_tray.core.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drift", help="data drift of new rows against the champion's training")
    add_json_flag(p)
    p.set_defaults(handler=cmd_drift)

    p = sub.add_parser("performance", help="the champion's accuracy on new labelled rows")
    add_json_flag(p)
    p.set_defaults(handler=cmd_performance)

    p = sub.add_parser("events", help="print engine events (from Redis when configured)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("-n", type=int, default=50, help="how many past events (default 50)")
    p.set_defaults(handler=cmd_events)

    p = sub.add_parser("pause", help="pause the scheduled checks (daemon or tray)")
    p.add_argument("--until", help="HH:MM or an ISO time; resumes by itself then")
    p.add_argument("--reason", default="paused by the user", help="shown in the status")
    p.set_defaults(handler=cmd_pause)

    p = sub.add_parser("resume", help="resume paused checks")
    p.set_defaults(handler=cmd_resume)

    p = sub.add_parser("run", help="the scheduler in the foreground (headless daemon)")
    p.add_argument("--once", action="store_true", help="run every due check once and exit")
    p.set_defaults(handler=cmd_run)


def cmd_drift(args: argparse.Namespace) -> int:
    r = open_cli_engine(load(args)).drift()
    if args.json:
        print_json(r)
        return 0
    if not r.enough:
        say(f"not enough data: {r.reason}")
        return 0
    say(f"drift score {r.score:.4f} (threshold {r.threshold:g}) — "
        f"{'DRIFT' if r.drifted else 'no drift'} on {r.window_rows:,} new rows "
        f"({r.window_start} … {r.window_end})")
    say(f"{'feature':<18} {'PSI':>8} {'KS D':>8} {'weight':>8}")
    for f in sorted(r.features, key=lambda f: -f.psi):
        say(f"{f.feature:<18} {f.psi:>8.4f} {f.ks_d:>8.4f} {f.importance:>8.3f}"
            f"{'  over' if f.over else ''}")
    return 0


def cmd_performance(args: argparse.Namespace) -> int:
    r = open_cli_engine(load(args)).performance()
    if args.json:
        print_json(r)
        return 0
    if not r.enough:
        say(r.reason)
        return 0
    auc = decimal(r.auc)
    say(f"live accuracy {pct(r.accuracy)} on {r.rows:,} new rows (test {pct(r.test_accuracy)}, "
        f"baseline {pct(r.baseline)}), AUC {auc}, log loss {r.log_loss:.4f}")
    say("DEGRADED: " + r.reason if r.degraded else "within tolerance")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    loaded = load(args)
    s = loaded.settings
    if not s.redis_url:
        say("QT_CLM_REDIS_URL is not set: events live only inside the running app "
            "(its log file has them); set it to share them.")
        return 0
    from clm_tray.core.app.redis_mirror import follow_events, read_events

    for e in read_events(s.redis_url, s.redis_stream, count=args.n):
        _print_event(e)
    if args.follow:
        for e in follow_events(s.redis_url, s.redis_stream):
            _print_event(e)
    return 0


def _print_event(e) -> None:
    when = datetime.fromtimestamp(e.ts).strftime("%Y-%m-%d %H:%M:%S")
    fields = " ".join(f"{k}={v}" for k, v in e.data.items() if not isinstance(v, (list, dict)))
    say(f"{when} {e.level:<7} {e.kind:<20} {fields}")


def _parse_until(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        if len(text) <= 5 and ":" in text:
            hh, mm = (int(x) for x in text.split(":"))
            now = datetime.now()
            until = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
            return until if until > now else until + timedelta(days=1)
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--until {text}: use HH:MM or an ISO time like 2026-11-28T15:00.")\
            from None


def cmd_pause(args: argparse.Namespace) -> int:
    until = _parse_until(args.until)
    open_cli_engine(load(args)).pause(args.reason, until)
    say(f"paused{' until ' + until.strftime('%Y-%m-%d %H:%M') if until else ''}: {args.reason}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    open_cli_engine(load(args)).resume()
    say("resumed")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from clm_tray.core.schedule.daemon import run_daemon

    # Like the tray: every cycle and check runs in a worker process that ends afterwards, so
    # the long-lived daemon stays small (README "Performance").
    engine = open_cli_engine(load(args), "worker", verbose=True)
    try:
        return run_daemon(engine, once=args.once)
    finally:
        engine.close()
