"""Is a model file one whole UBJSON document? Checked before XGBoost ever sees the bytes.

XGBoost's own parser can read past the end of a truncated buffer and crash the process, so a
cut-off ``.ubj`` file (a copy still in progress, a full disk) must be caught here, by walking
the document's structure without building it. Standard library only.
"""

from __future__ import annotations

import struct

_FIXED = {ord("Z"): 0, ord("N"): 0, ord("T"): 0, ord("F"): 0, ord("i"): 1, ord("U"): 1,
          ord("C"): 1, ord("I"): 2, ord("l"): 4, ord("d"): 4, ord("L"): 8, ord("D"): 8}
_INTS = {ord("i"): ("b", 1), ord("U"): ("B", 1), ord("I"): (">h", 2), ord("l"): (">i", 4),
         ord("L"): (">q", 8)}


def ubjson_complete(buf: bytes) -> bool:
    """True when ``buf`` is exactly one whole UBJSON document."""

    def need(pos: int, n: int) -> None:
        if n < 0 or pos + n > len(buf):
            raise ValueError("truncated")

    def integer(pos: int) -> tuple[int, int]:
        need(pos, 1)
        fmt = _INTS.get(buf[pos])
        if fmt is None:
            raise ValueError("bad length")
        need(pos + 1, fmt[1])
        return struct.unpack_from(fmt[0], buf, pos + 1)[0], pos + 1 + fmt[1]

    def value(pos: int, marker: int | None = None) -> int:
        if marker is None:
            need(pos, 1)
            marker, pos = buf[pos], pos + 1
        if marker in _FIXED:
            need(pos, _FIXED[marker])
            return pos + _FIXED[marker]
        if marker in (ord("S"), ord("H")):
            size, pos = integer(pos)
            need(pos, size)
            return pos + size
        if marker in (ord("["), ord("{")):
            return container(pos, marker == ord("{"))
        raise ValueError("unknown marker")

    def container(pos: int, keyed: bool) -> int:
        close = ord("}") if keyed else ord("]")
        typ: int | None = None
        count: int | None = None
        need(pos, 1)
        if buf[pos] == ord("$"):
            need(pos, 2)
            typ, pos = buf[pos + 1], pos + 2
            need(pos, 1)
            if buf[pos] != ord("#"):
                raise ValueError("typed container without count")
        if buf[pos] == ord("#"):
            count, pos = integer(pos + 1)
            if count < 0:
                raise ValueError("negative count")
        if count is not None and typ is not None and typ in _FIXED and not keyed:
            need(pos, count * _FIXED[typ])  # a typed numeric array: skip it in one step
            return pos + count * _FIXED[typ]
        done = 0
        while count is None or done < count:
            need(pos, 1)
            if count is None and buf[pos] == close:
                return pos + 1
            if keyed:
                size, pos = integer(pos)
                need(pos, size)
                pos += size
            pos = value(pos, typ)
            done += 1
        return pos

    try:
        return len(buf) > 0 and value(0) == len(buf)
    except (ValueError, struct.error, RecursionError):
        return False
