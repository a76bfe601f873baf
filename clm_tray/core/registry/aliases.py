"""The names that point at versions: ``champion``, ``previous`` and ``challenger``.

``aliases.json`` in the store root is the one record of which version is deployed (champion),
which one a rollback puts back (previous) and which one waits for a verdict (challenger). It is
rewritten whole and atomically, so a crash leaves the old aliases or the new ones, never a mix;
a damaged file is one sentence saying how to choose the champion again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clm_tray.core.errors import StoreError
from clm_tray.core.fsutil import atomic_write_json, read_json
from clm_tray.core.registry.version import STORE_FORMAT

ALIAS_NAMES = ("champion", "previous", "challenger")


def read_aliases(path: Path) -> dict[str, str | None]:
    """Current champion / previous / challenger ids (None where unset or no file yet)."""
    out: dict[str, str | None] = dict.fromkeys(ALIAS_NAMES)
    try:
        data = read_json(path)
    except FileNotFoundError:
        return out
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{path} cannot be read ({exc}); fix or delete it and run "
            "`clm-tray rollback VERSION` to choose the champion again"
        ) from exc
    if isinstance(data, dict):
        for name in ALIAS_NAMES:
            value = data.get(name)
            out[name] = str(value) if value else None
    return out


def write_aliases(path: Path, names: dict[str, str | None]) -> None:
    """Change some aliases at once, atomically; the others keep their value."""
    unknown = sorted(set(names) - set(ALIAS_NAMES))
    if unknown:
        raise StoreError(f"unknown alias {unknown[0]!r}; use one of {', '.join(ALIAS_NAMES)}")
    current: dict[str, Any] = dict(read_aliases(path))
    current.update({k: (v or None) for k, v in names.items()})
    current["format"] = STORE_FORMAT
    atomic_write_json(path, current)
