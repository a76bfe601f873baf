"""What every sub-command shares: loading settings, printing JSON, one-line failures."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from clm_tray.core.config.secrets import redact, redact_obj
from clm_tray.core.config.sources import LoadedSettings, load_settings
from clm_tray.core.serialize import to_jsonable


def load(args: argparse.Namespace) -> LoadedSettings:
    """Settings for this invocation (honours the global --env-file)."""
    return load_settings(getattr(args, "env_file", None))


def print_json(obj: Any) -> None:
    """`--json` output is always exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(redact_obj(to_jsonable(obj)), sort_keys=True) + "\n")
    sys.stdout.flush()


def say(line: str = "") -> None:
    sys.stdout.write(redact(line) + "\n")
    sys.stdout.flush()


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
