"""GUI latency figures under Xvfb: prints numbers, asserts nothing.

1. longest GUI event-loop stall while a real retrain (demo data, reference backend) runs from
   the dashboard's "Retrain now" button — a 5 ms QTimer records the gaps between its ticks
   (target <= 50 ms);
2. cold start to tray icon visible: `python -m clm_tray gui` as a subprocess, timed from
   launch to the app's "tray icon visible" line (target <= 1.5 s);
3. that process's RSS after --idle-seconds (default 60) of idling (target <= 150 MB).

The engine is opened as the tray app opens it (mode "worker": heavy work in a worker
process); --in-process measures the old way, everything in the GUI's process.
Starts its own `Xvfb :N` and `trayer` unless --display is given.
Usage: python bench/gui_latency.py [--workspace DIR] [--idle-seconds 60] [--symbols 91 --bars 1500]
                                   [--in-process]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def start_display(display: str | None) -> tuple[str, list[subprocess.Popen]]:
    if display:
        return display, []
    for exe in ("Xvfb", "trayer"):
        if shutil.which(exe) is None:
            raise SystemExit(f"{exe} is not installed (apt-get install xvfb trayer)")
    num = 90 + os.getpid() % 50
    procs = [subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "1600x1000x24", "-nolisten",
                               "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    disp = f":{num}"
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{num}").exists():
        if time.monotonic() > deadline:
            raise SystemExit("Xvfb did not start")
        time.sleep(0.05)
    procs.append(subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height",
         "32"], env={**os.environ, "DISPLAY": disp},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # let trayer claim the system-tray selection
    return disp, procs


def retrain_stall(ws_env: Path, isolate: bool = True) -> dict[str, float]:
    """In this process: open the dashboard, click Retrain now, measure event-loop gaps."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    from clm_tray.core.app.compose import open_engine
    from clm_tray.core.config.sources import load_settings
    from clm_tray.gui.app import TrayApp, make_application

    app = make_application()
    loaded = load_settings(ws_env, cwd=ws_env.parent)
    engine = open_engine(loaded, "worker" if isolate else "inline")
    backend = engine.backend()
    backend.start()
    tray_app = TrayApp(loaded, demo_backend=backend, notify_channel="tray")
    tray_app.start(scheduler=False, engine=engine)
    t0 = time.monotonic()
    while tray_app.controller.snapshot is None and time.monotonic() - t0 < 60:
        app.processEvents()
        time.sleep(0.01)
    dash = tray_app.open_dashboard("overview")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)

    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    slow: dict[str, float] = {}  # stage -> longest gap seen while it ran (gaps > 30 ms)

    def tick() -> None:
        now = clock.nsecsElapsed()
        gap = (now - last[0]) / 1e6
        gaps.append(gap)
        last[0] = now
        if gap > 30:
            stage = tray_app.controller.stage[0] or "idle"
            slow[stage] = max(slow.get(stage, 0.0), gap)

    meter = QTimer()
    meter.setInterval(5)
    meter.timeout.connect(tick)
    meter.start()
    started = time.perf_counter()
    QTimer.singleShot(50, dash.retrain_button.click)
    done: dict[str, object] = {}

    def poll() -> None:
        if not tray_app.runner.is_busy("retrain") and time.perf_counter() - started > 1:
            done["at"] = time.perf_counter()
            app.quit()

    checker = QTimer()
    checker.setInterval(100)
    checker.timeout.connect(poll)
    checker.start()
    app.exec()
    meter.stop()
    checker.stop()
    last = engine.history_rows(1)
    outcome = last[0] if last else None
    tray_app.quit(quit_app=False)  # stops the backend it was given
    backend.stop()  # and once more, in case the cycle's restart replaced the process
    gaps = gaps[1:] or [0.0]
    gaps_sorted = sorted(gaps)
    return {
        "retrain_s": float(done.get("at", time.perf_counter())) - started,  # type: ignore[arg-type]
        "max_stall_ms": max(gaps),
        "p99_gap_ms": gaps_sorted[int(len(gaps_sorted) * 0.99) - 1],
        "ticks": float(len(gaps)),
        "outcome": outcome.outcome if outcome else "?",  # type: ignore[dict-item]
        "slow": slow,  # type: ignore[dict-item]
    }


def cold_start_and_idle(ws: Path, display: str, idle_seconds: float) -> dict[str, float]:
    import psutil

    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "CLM_TRAY_REPORT_READY": "1", "CLM_TRAY_INSTANCE_NAME": f"bench-{uuid.uuid4().hex}"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "clm_tray", "gui"], cwd=ws, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    cold = time.perf_counter() - t0
    if "tray icon visible" not in line:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise SystemExit(f"the tray icon did not appear: {line!r} {err[-2000:]}")
    time.sleep(idle_seconds)
    p = psutil.Process(proc.pid)
    rss = p.memory_info().rss
    children = sum(c.memory_info().rss for c in p.children(recursive=True))
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    return {"cold_start_s": cold, "idle_rss_mb": rss / 2**20,
            "idle_children_rss_mb": children / 2**20, "exit_code": float(proc.returncode or 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, help="demo workspace (default: a temp folder)")
    ap.add_argument("--display", help="use this X display instead of starting Xvfb + trayer")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--symbols", type=int, default=91)
    ap.add_argument("--bars", type=int, default=1500)
    ap.add_argument("--in-process", action="store_true",
                    help="retrain in the GUI's process (the inline engine), for comparison")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="clm-gui-bench-"))
    os.environ.setdefault("XDG_CONFIG_HOME", str(tmp / "config"))  # never the user's settings
    os.environ.setdefault("XDG_DATA_HOME", str(tmp / "data"))
    display, procs = start_display(args.display)
    os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    try:
        from clm_tray.core.config.workspace import ensure_workspace

        ws = ensure_workspace(args.workspace or tmp / "demo", symbols=args.symbols,
                              bars=args.bars)
        print(f"workspace {ws.root} ({args.symbols} symbols x {args.bars} bars), "
              f"display {display}")
        stall = retrain_stall(ws.env_file, isolate=not args.in_process)
        where = "in the GUI's process" if args.in_process else "in a worker process"
        print(f"retrain from the dashboard ({where}): {stall['retrain_s']:.1f} s, outcome "
              f"{stall['outcome']}, {int(stall['ticks'])} timer ticks")
        print(f"longest GUI event-loop stall: {stall['max_stall_ms']:.1f} ms "
              f"(p99 gap {stall['p99_gap_ms']:.1f} ms; target <= 50 ms)")
        slow = ", ".join(f"{k} {v:.0f} ms" for k, v in stall["slow"].items())  # type: ignore
        print(f"  gaps > 30 ms by cycle stage: {slow or 'none'}")
        idle = cold_start_and_idle(ws.root, display, args.idle_seconds)
        print(f"cold start to tray icon visible: {idle['cold_start_s']:.2f} s "
              "(target <= 1.5 s)")
        print(f"idle RSS after {args.idle_seconds:g} s: {idle['idle_rss_mb']:.0f} MB "
              f"(+ {idle['idle_children_rss_mb']:.0f} MB in child processes; "
              "target <= 150 MB)")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
