"""What every sub-command shares: settings, the engine, Ctrl+C, JSON and plain output."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from clm_tray.core.app.port import EnginePort, Mode
from clm_tray.core.config.secrets import redact, redact_obj
from clm_tray.core.config.sources import LoadedSettings, load_settings
from clm_tray.core.serialize import to_jsonable

_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n))


def load(args: argparse.Namespace) -> LoadedSettings:
    """Settings for this invocation (honours the global --env-file)."""
    return load_settings(getattr(args, "env_file", None))


def open_cli_engine(loaded: LoadedSettings, mode: Mode = "inline", *,
                    verbose: bool = False) -> EnginePort:
    """The engine a sub-command talks to, with the log file set up first. One-shot commands
    run inline; the long-lived daemon (`clm-tray run`) uses ``"worker"`` so it never holds
    pandas or XGBoost between its checks."""
    from clm_tray.core.app.compose import open_engine
    from clm_tray.core.config.logsetup import configure

    configure(loaded.settings, verbose=verbose)
    return open_engine(loaded, mode)


@contextlib.contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """Ctrl+C or SIGTERM sets the yielded event (the engine stops at its next safe point); a
    second one interrupts at once. Installed explicitly, so it works even when the shell
    started us with SIGINT ignored."""
    cancel = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        sys.stderr.write("clm-tray: cancelling…\n")
        cancel.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    try:
        yield cancel
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def print_json(obj: Any) -> None:
    """`--json` output is always exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(redact_obj(to_jsonable(obj)), sort_keys=True) + "\n")
    sys.stdout.flush()


def say(line: str = "") -> None:
    sys.stdout.write(redact(line) + "\n")
    sys.stdout.flush()


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
