"""The pictures a successful training yields (doc 000 §4: ``role_pic``, ``pre_pic``)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable
from typing import Final

__all__ = ["PICS"]

_PIC_SIZE: Final = 64


def _png(width: int, height: int, color_type: int, rows: list[bytes]) -> bytes:
    """A minimal valid PNG (8-bit; color type 2 RGB or 6 RGBA)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _tint(conf_name: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(conf_name.encode()).digest()
    return digest[0], digest[1], digest[2]


def _role_png(conf_name: str) -> bytes:
    """The avatar picture (形象图): an opaque gradient tinted by the conf_name."""
    r, g, b = _tint(conf_name)
    n = _PIC_SIZE
    rows = [bytes((r * y // n, g, b * (n - y) // n) * n) for y in range(n)]
    return _png(n, n, 2, rows)


def _pre_png(conf_name: str) -> bytes:
    """The foreground (前景图): a disc on a transparent background."""
    r, g, b = _tint(conf_name)
    n, half = _PIC_SIZE, _PIC_SIZE / 2
    rows = []
    for y in range(n):
        row = bytearray()
        for x in range(n):
            inside = (x - half + 0.5) ** 2 + (y - half + 0.5) ** 2 <= (half * 0.8) ** 2
            row += bytes((r, g, b, 255 if inside else 0))
        rows.append(bytes(row))
    return _png(n, n, 6, rows)


#: File name -> the picture of a conf_name.
PICS: Final[dict[str, Callable[[str], bytes]]] = {"role.png": _role_png, "pre.png": _pre_png}
