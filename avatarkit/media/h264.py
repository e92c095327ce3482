"""H.264 Annex-B helpers and the raw ``.h264`` writer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from avatarkit.errors import AvatarError
from avatarkit.media._atomic import Partial, Sink

__all__ = ["H264Writer", "is_keyframe", "nal_types"]

_START: Final = b"\x00\x00\x01"  # a 4-byte start code ends with the same 3 bytes
NAL_IDR: Final = 5
NAL_SPS: Final = 7
NAL_PPS: Final = 8


def nal_types(au: bytes | bytearray | memoryview) -> Iterator[int]:
    """``nal_unit_type`` of each NAL unit of an Annex-B access unit, in order."""
    data = bytes(au) if isinstance(au, memoryview) else au
    # Emulation prevention keeps 00 00 01 out of NAL payloads, so every hit is a start code.
    i = data.find(_START)
    while 0 <= i < len(data) - 3:
        yield data[i + 3] & 0x1F
        i = data.find(_START, i + 3)


def is_keyframe(au: bytes | bytearray | memoryview) -> bool:
    """Whether the access unit holds an IDR slice (decoding can start here)."""
    return NAL_IDR in nal_types(au)


class H264Writer(Sink):
    """Writes H.264 access units as a raw Annex-B ``.h264`` elementary stream.

    Access units before the first keyframe are skipped (nothing could decode them), so
    the file always starts with SPS/PPS + IDR. Written to ``.{name}.partial`` beside
    ``path`` and renamed on :meth:`close`; :meth:`abort` removes the temp file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._partial = Partial(path)
        self._file: BinaryIO | None = open(self._partial.temp, "wb")  # noqa: SIM115
        self._closed: Path | None = None
        self.frames = 0  # access units written
        self.skipped = 0  # access units dropped while waiting for the first keyframe

    @property
    def path(self) -> Path:
        return self._partial.path

    def write(self, au: bytes | bytearray | memoryview) -> None:
        """Append one access unit (Annex-B, start codes included)."""
        if self._file is None:
            raise AvatarError(f"{self.path.name}: the H.264 writer is closed")
        if self.frames == 0 and not is_keyframe(au):
            self.skipped += 1
            return
        self._file.write(au)
        self.frames += 1

    def close(self) -> Path:
        """Move the file into place; returns its path (idempotent)."""
        if self._closed is not None:
            return self._closed
        if self._file is None:
            raise AvatarError(f"{self.path.name}: the H.264 writer was aborted")
        try:
            self._file.close()
            self._file = None
            self._closed = self._partial.commit()
            return self._closed
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard everything not yet closed; idempotent, a no-op after :meth:`close`."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
        self._partial.discard()
