"""What every sub-command shares: loading settings, printing JSON, one-line failures."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from clm_tray.core.config.secrets import redact, redact_obj
from clm_tray.core.config.sources import LoadedSettings, load_settings


def load(args: argparse.Namespace) -> LoadedSettings:
    """Settings for this invocation (honours the global --env-file)."""
    return load_settings(getattr(args, "env_file", None))


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def print_json(obj: Any) -> None:
    """`--json` output is always exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(redact_obj(to_jsonable(obj)), sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def say(line: str = "") -> None:
    sys.stdout.write(redact(line) + "\n")
    sys.stdout.flush()


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
