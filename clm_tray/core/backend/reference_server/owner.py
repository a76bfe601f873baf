"""The demo backend stops with the app that started it, even when that app dies uncleanly.

Only the desktop demo names an owner (``CLM_TRAY_BACKEND_OWNER``); a backend in Docker or one
started by hand never does, so psutil is imported only when there is an owner to watch.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from http.server import ThreadingHTTPServer

OWNER_ENV = "CLM_TRAY_BACKEND_OWNER"  # "pid" of the app that started the demo backend


def watch_owner(server: ThreadingHTTPServer, environ: dict[str, str] | None = None,
                every: float = 1.0) -> threading.Thread | None:
    """Stop serving when the app that started us is gone.

    The tray app can die without running any clean-up (its X display went away and Qt calls
    exit(), or it was killed); the demo backend it started must not outlive it. The owner is
    named in the environment, so backends restarted by the engine's worker processes (which
    inherit it) follow the same app. A headless demo leaves it unset: that backend is meant
    to keep running until `clm-tray demo stop`.
    """
    raw = (environ if environ is not None else os.environ).get(OWNER_ENV, "")
    if not raw.strip().isdigit():
        return None
    import psutil

    owner = int(raw)
    try:
        born = psutil.Process(owner).create_time()
    except psutil.Error:
        born = None

    def alive() -> bool:
        if born is None:
            return False
        try:
            proc = psutil.Process(owner)
            return (abs(proc.create_time() - born) < 0.05
                    and proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def watch() -> None:
        while alive():
            time.sleep(every)
        sys.stderr.write(f"clm-tray reference backend: the app that started it (pid {owner}) "
                         "is gone; stopping\n")
        sys.stderr.flush()
        server.shutdown()

    t = threading.Thread(target=watch, name="owner-watch", daemon=True)
    t.start()
    return t
