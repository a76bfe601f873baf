"""Installation sub-commands: `autostart`, `setup` (first run) and `diagnose`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clm_tray.cli.common import add_json_flag, load, print_json, say
from clm_tray.core.config import autostart, firstrun
from clm_tray.core.config.settings import PREFIX
from clm_tray.core.config.sources import LoadedSettings, user_config_file
from clm_tray.core.errors import ClmError, ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("autostart", help="start clm-tray at login: enable, disable or status")
    p.set_defaults(handler=cmd_autostart_status, json=False)
    acts = p.add_subparsers(dest="autostart_action", metavar="ACTION")
    a = acts.add_parser("enable", help="start the tray app at login")
    add_json_flag(a)
    a.set_defaults(handler=cmd_autostart_enable)
    a = acts.add_parser("disable", help="stop starting at login")
    add_json_flag(a)
    a.set_defaults(handler=cmd_autostart_disable)
    a = acts.add_parser("status", help="whether it starts at login, and what it starts")
    add_json_flag(a)
    a.set_defaults(handler=cmd_autostart_status)

    p = sub.add_parser("setup", help="point clm-tray at your existing project folder")
    p.add_argument("project_dir", nargs="?", metavar="PROJECT_DIR",
                   help="the project root, the folder that holds .env (default: look around)")
    p.add_argument("--yes", "-y", action="store_true", help="save without asking")
    add_json_flag(p)
    p.set_defaults(handler=cmd_setup)

    p = sub.add_parser("diagnose", help="print versions, folders, settings, backend, errors "
                                        "(paste it into a bug report)")
    add_json_flag(p)
    p.add_argument("--no-probe", action="store_true",
                   help="do not contact Docker or the health URL")
    p.set_defaults(handler=cmd_diagnose)


def _log(args: argparse.Namespace) -> LoadedSettings | None:
    """Settings and log files for commands that must work even when settings are broken."""
    try:
        loaded = load(args)
    except ConfigError:
        return None
    from clm_tray.core.config.logsetup import configure

    configure(loaded.settings, getattr(args, "verbose", False))
    return loaded


# ---- autostart ---------------------------------------------------------------------------


def cmd_autostart_enable(args: argparse.Namespace) -> int:
    _log(args)
    plan = autostart.enable()
    st = autostart.status()
    if args.json:
        print_json(st)
    else:
        say(f"Start at login: enabled ({plan.location}).")
        say(f"It runs: {' '.join(plan.command)}")
    return 0


def cmd_autostart_disable(args: argparse.Namespace) -> int:
    _log(args)
    removed = autostart.disable()
    st = autostart.status()
    if args.json:
        print_json({**_dict(st), "removed": removed})
    else:
        say(f"Start at login: disabled ({'removed ' if removed else 'there was no '}"
            f"{st.location}).")
    return 0


def cmd_autostart_status(args: argparse.Namespace) -> int:
    st = autostart.status()
    if getattr(args, "json", False):
        print_json(st)
        return 0
    say(f"Start at login: {'enabled' if st.enabled else 'disabled'} ({st.location})")
    if st.command:
        say(f"It runs: {' '.join(st.command)}")
    if st.note:
        say(f"Note: {st.note}")
    if not st.enabled:
        say("Turn it on with: clm-tray autostart enable")
    return 0


def _dict(obj: object) -> dict:
    from clm_tray.core.serialize import to_jsonable

    return to_jsonable(obj)


# ---- setup (first run) -------------------------------------------------------------------


def cmd_setup(args: argparse.Namespace) -> int:
    loaded = _log(args)
    if args.project_dir:
        folder = Path(args.project_dir).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"{folder}: no such folder; give the project root, the folder "
                              f"that holds .env, data/ and ai_engine/.")
        finding = firstrun.detect_project(folder)
    else:
        finding = firstrun.find_project(loaded)
        if finding is None:
            return _nothing_found(args, loaded)
    if not finding.looks_like_project:
        if args.json:
            print_json({"finding": finding.to_dict(), "saved": False, "config_file": None,
                        "reason": "not a project folder"})
        else:
            for line in finding.summary_lines():
                say(line)
            say("")
            say("This does not look like a project folder (no .env, no "
                "data/binance_futures_training_data.csv, no ai_engine/models/).")
            say("Give the folder that holds them, e.g. `clm-tray setup C:\\quantum_trader`, "
                "or try clm-tray with `clm-tray demo`.")
        return 1
    if not args.json:
        for line in finding.summary_lines():
            say(line)
        say("")
    target = user_config_file()
    saved, reason = False, ""
    if args.yes:
        saved = True
    else:
        answer = _ask(f"Save {PREFIX}PROJECT_DIR={finding.folder} to {target}? [y/N] ",
                      quiet=args.json)
        if answer is None:
            reason = ("not saved: no answer on standard input; run `clm-tray setup "
                      f"{_quote_arg(str(finding.folder))} --yes` to save without asking")
        elif answer.strip().lower() in ("y", "yes"):
            saved = True
        else:
            reason = "not saved: you said no"
    path = firstrun.save(finding) if saved else None
    overridden = _overridden(loaded, finding) if saved else ""
    if args.json:
        print_json({"finding": finding.to_dict(), "saved": saved,
                    "config_file": str(path) if path else None, "reason": reason,
                    "warning": overridden})
    elif saved:
        say(f"Saved {PREFIX}PROJECT_DIR={finding.folder} to {path}.")
        say("Your .env was not changed. Start the tray app with `clm-tray gui`, and "
            "`clm-tray autostart enable` to start it at login.")
        say("`clm-tray retrain --dry-run` shows again what a retrain would do, doing nothing.")
        if overridden:
            say(f"Warning: {overridden}")
    else:
        say(reason[0].upper() + reason[1:] + ".")
    return 0 if saved else 1


def _ask(prompt: str, *, quiet: bool) -> str | None:
    """One line from stdin (a terminal or a pipe); None when there is nothing to read."""
    if sys.stdin is None or sys.stdin.closed:
        return None
    stream = sys.stderr if quiet else sys.stdout
    stream.write(prompt)
    stream.flush()
    try:
        line = sys.stdin.readline()
    except (OSError, ValueError):
        return None
    if not line:
        if not quiet:
            say("")
        return None
    return line


def _quote_arg(text: str) -> str:
    return f'"{text}"' if " " in text else text


def _overridden(loaded: LoadedSettings | None, finding: firstrun.ProjectFinding) -> str:
    """The saved folder is ignored when the environment or a .env names another one."""
    if loaded is None:
        return ""
    source = loaded.sources.get("project_dir", "default")
    current = loaded.settings.project_dir
    if source not in ("default", str(user_config_file())) and current and \
            Path(current).absolute() != finding.folder:
        return (f"{PREFIX}PROJECT_DIR={current} from {source} takes precedence over the saved "
                f"folder; remove it there to use {finding.folder}.")
    return ""


def _nothing_found(args: argparse.Namespace, loaded: LoadedSettings | None) -> int:
    looked = [str(p) for p in firstrun.candidate_folders(loaded)]
    if args.json:
        print_json({"finding": None, "saved": False, "config_file": None,
                    "reason": "no project found", "looked_in": looked})
        return 1
    say("No project folder found. Looked in:")
    for p in looked:
        say(f"  {p}")
    say("")
    say("If you have one, name it: clm-tray setup /path/to/quantum_trader")
    say("(the folder holding .env, data/binance_futures_training_data.csv, ai_engine/models/).")
    say("To try clm-tray without a project, run `clm-tray demo`: it makes a demo workspace "
        "with generated data and a local reference backend.")
    return 1


# ---- diagnose ----------------------------------------------------------------------------


def cmd_diagnose(args: argparse.Namespace) -> int:
    from clm_tray.core.app import diagnose

    error = ""
    try:
        loaded: LoadedSettings | None = load(args)
    except ClmError as exc:
        loaded, error = None, str(exc)
    report = diagnose.collect(loaded, settings_error=error, probe_backend=not args.no_probe)
    if args.json:
        print_json(report)
    else:
        sys.stdout.write(diagnose.format_text(report))
        sys.stdout.flush()
    return 0
