"""How many rows the training file holds, without parsing it.

The first-run preview and the dry-run plan tell the user "train a new model on 1,234,567 rows
of …" before anything is loaded, and must stay instant on a multi-gigabyte collector file and
light enough for the tray process (no pandas): a small file's lines are counted, a large one's
are estimated from its first megabyte.
"""

from __future__ import annotations

from pathlib import Path

EXACT_COUNT_BYTES = 8 << 20  # count rows exactly below this size, estimate above


def count_rows(path: Path, size: int | None = None) -> tuple[int, bool]:
    """Data rows of a CSV (header excluded): exact for small files, else from the first MB."""
    size = path.stat().st_size if size is None else size
    with open(path, "rb") as fh:
        if size <= EXACT_COUNT_BYTES:
            data = fh.read()
            lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
            return max(0, lines - 1), True
        head = fh.read(1 << 20)
    lines = head.count(b"\n")
    if lines < 2:
        return 0, False
    first = head.index(b"\n") + 1
    per_row = (head.rfind(b"\n") + 1 - first) / (lines - 1)
    return int((size - first) / per_row), False
