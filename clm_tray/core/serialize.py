"""The one way clm-tray turns its data into JSON and back.

Every file the engine writes (history rows, version manifests and notes, the scheduler's state
file), every ``--json`` answer, every event mirrored to Redis and every result the worker
process hands back goes through here, so a report, an enum, a path, a timestamp or a numpy
number is written the same way everywhere and read back into the same dataclass.

- ``to_jsonable(obj)``: dataclasses, enums, paths, datetimes and numpy / pandas values become
  plain dicts, lists, strings and numbers (exactly what ``json.dumps`` then writes). A
  dataclass may name fields left out when they are None in ``OMIT_NONE`` (a frozenset; a
  class attribute, or a property when it depends on the value): extras only some producers
  of a record have, so a record without them keeps the keys it always had.
- ``dumps(obj)``: ``to_jsonable`` plus ``json.dumps`` (sorted keys by default).
- ``from_jsonable(cls, data)``: the inverse, typed: pydantic validates ``data`` into ``cls``
  (a dataclass such as ``DriftReport``, a list of them, an enum ...), nested dataclasses
  included. Keys a newer clm-tray added are ignored; a value of the wrong type raises
  ``ValueError`` (pydantic's ``ValidationError`` is one).
- ``read_or_none(cls, data, what)``: ``from_jsonable`` for what was written to disk earlier
  (possibly by an older clm-tray): None and one log line instead of an exception.
- ``to_plain(obj)``: numpy / pandas values become Python ones while dataclasses and enums stay
  what they are, for results pickled across a process boundary to a caller that must not
  import numpy or pandas.

A foundation module: it imports nothing of clm-tray and never imports numpy or pandas (it
recognises their values by their methods); pydantic is imported on the first decode only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import functools
import json
import logging
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

_PRIMITIVE = (str, int, float, bool, type(None))
# Modules whose values are converted by their own methods (never imported here); a result
# holding one would make whoever unpickles it import that module.
_HEAVY_MODULES = frozenset({"numpy", "pandas", "pyarrow", "xgboost", "sklearn", "scipy"})


def to_jsonable(obj: Any) -> Any:
    """``obj`` as dicts, lists, str, int, float, bool and None only (dict keys as strings)."""
    if type(obj) in _PRIMITIVE:
        return obj
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        omit = getattr(obj, "OMIT_NONE", ())
        values = ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
        return {name: to_jsonable(value) for name, value in values
                if not (value is None and name in omit)}
    if isinstance(obj, Mapping):
        return {_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, _PRIMITIVE):  # subclasses: numpy.float64 is a float, a str-enum a str
        return _python_value(obj)
    converted = _python_value(obj)
    return str(obj) if converted is obj else to_jsonable(converted)


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = True) -> str:
    """The JSON text of ``obj`` (see ``to_jsonable``); NaN stays NaN, as ``json`` writes it."""
    return json.dumps(to_jsonable(obj), indent=indent, sort_keys=sort_keys)


def from_jsonable(cls: type[T] | Any, data: Any) -> T:
    """``data`` (parsed JSON) validated into ``cls``; see the module docstring."""
    return _adapter(cls).validate_python(data)  # type: ignore[no-any-return]


def read_or_none(cls: type[T] | Any, data: Any, what: str) -> T | None:
    """``data`` validated into ``cls``, or None (with one log line naming ``what``) when it
    cannot be: a record an older or damaged clm-tray wrote must never stop ``status`` or the
    tray, which then show "not checked yet" for it rather than a traceback."""
    if data is None:
        return None
    try:
        return from_jsonable(cls, data)
    except ValueError as exc:
        log.warning("ignoring %s that this clm-tray cannot read: %s", what,
                    " ".join(str(exc).split())[:300])
        return None


def to_plain(obj: Any) -> Any:
    """``obj`` with numpy / pandas values turned into Python ones; dataclasses, enums, tuples,
    paths and datetimes kept (for pickling to a process that must not import numpy)."""
    if type(obj) in _PRIMITIVE or isinstance(obj, enum.Enum):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        values = {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                  if f.init}
        return dataclasses.replace(obj, **values)
    if isinstance(obj, dict):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [to_plain(v) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    if type(obj).__module__.split(".")[0] in _HEAVY_MODULES:
        converted = _python_value(obj, ("item", "tolist", "isoformat"))  # a scalar stays one
        return str(obj) if converted is obj else to_plain(converted)
    return obj


def _python_value(obj: Any, order: tuple[str, ...] = ("tolist", "item", "isoformat")) -> Any:
    """A numpy / pandas value as the Python value it holds (``obj`` itself when it is none)."""
    if type(obj).__module__.split(".")[0] not in _HEAVY_MODULES:
        return obj
    for convert in order:
        method = getattr(obj, convert, None)
        if callable(method):
            with contextlib.suppress(Exception):
                return method()
    return obj


def _key(key: Any) -> str:
    if isinstance(key, enum.Enum):
        return str(key.value)
    return str(_python_value(key))


@functools.cache
def _adapter(cls: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(cls)
