"""Engine sub-commands: status, versions, history and config (the reads), and the
registration of the cycle commands (cycle.py: retrain, rollback, promote) and the demo
(demo.py), in the order `clm-tray --help` lists them."""

from __future__ import annotations

import argparse
from datetime import datetime

from clm_tray.cli import cycle, demo
from clm_tray.cli.common import add_json_flag, load, open_cli_engine, print_json, say
from clm_tray.core.app.status import BackendUnknown
from clm_tray.core.app.wording import ago, clock, decimal, pct
from clm_tray.core.config.settings import FIELDS, describe
from clm_tray.core.serialize import to_jsonable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="the champion, its age and quality, the last cycle")
    add_json_flag(p)
    p.set_defaults(handler=cmd_status)

    cycle.register(sub)

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

    demo.register(sub)


# ---- status -------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    engine = open_cli_engine(load(args))
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
    b = st.backend
    if isinstance(b, BackendUnknown):  # the folder changed after the last check
        say(f"backend:    {b.reason}")
    elif b is not None:
        word = "skipped" if b.skipped else ("healthy" if b.ok else "UNHEALTHY")
        say(f"backend:    {word} (checked {ago(b.checked_at)}) — {b.reason or b.url}")
    sch = st.scheduler
    if sch.running:
        nxt = ", ".join(f"{j.name} {clock(j.next_run)}" for j in sch.jobs if j.next_run)
        say(f"scheduler:  running ({sch.owner}) — next: {nxt or 'none'}")
    else:
        say("scheduler:  not running (start `clm-tray run` or the tray app)")
    return code


# ---- reading ----------------------------------------------------------------------------
def cmd_versions(args: argparse.Namespace) -> int:
    engine = open_cli_engine(load(args))
    rows = engine.versions()
    if args.json:
        print_json({"versions": rows, "aliases": engine.aliases(),
                    "backups": engine.backups()})
        return 0
    if not rows:
        say("no versions yet — run `clm-tray retrain`")
    for r in rows:
        shadow = ""
        sh = r.shadow
        if sh is not None and sh.decision:
            shadow = f"  shadow: {sh.decision}"
            if sh.rows:
                shadow += (f" ({sh.rows} rows, {pct(sh.candidate_accuracy)} vs "
                           f"{pct(sh.champion_accuracy)}, p={decimal(sh.p_value)})")
        leak = "  LEAKAGE?" if r.leakage else ""
        if r.adopted:
            say(f"{r.id}  {r.status:<10} adopted: {', '.join(r.files)} "
                f"({r.size / 1024:.0f} KiB), accuracy not measured")
            continue
        say(f"{r.id}  {r.status:<10} test {pct(r.test_accuracy)}  AUC {decimal(r.auc)}  "
            f"{r.size / 1024:.0f} KiB{leak}{shadow}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    engine = open_cli_engine(load(args))
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
        if r.shadow is not None and r.shadow.rows:
            shadow = f" [shadow p={decimal(r.shadow.p_value)}]"
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
