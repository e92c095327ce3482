"""H.264 Annex-B helpers and the raw ``.h264`` writer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from avatarkit.errors import AvatarError
from avatarkit.media._atomic import Partial, Sink, disk_errors

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
    """Whether the access unit holds an IDR slice (decoding can start here).

    ``au`` is one Annex-B access unit (start codes included), as a
    :class:`~avatarkit.tta.events.VideoChunk`'s ``nal``. Raises nothing: malformed input is
    simply not a keyframe.
    """
    return NAL_IDR in nal_types(au)


class H264Writer(Sink):
    """Writes H.264 access units as a raw Annex-B ``.h264`` elementary stream.

    Access units before the first keyframe are skipped (nothing could decode them), so
    the file always starts with SPS/PPS + IDR. Written to ``.{name}.partial`` beside
    ``path`` and renamed on :meth:`close`; :meth:`abort` (or an exception inside ``with``)
    removes the temp file, so ``path`` never holds a truncated stream. Nothing is held in
    memory.

    Raises:
        ValidationError: the temp file cannot be created (a missing directory, no permission).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._partial = Partial(path)
        with disk_errors(path):
            self._file: BinaryIO | None = open(self._partial.temp, "wb")  # noqa: SIM115
        self._closed: Path | None = None
        self.frames = 0
        """Access units written so far."""
        self.skipped = 0
        """Access units dropped while waiting for the first keyframe."""

    @property
    def path(self) -> Path:
        """The target file; it exists only once :meth:`close` has succeeded."""
        return self._partial.path

    def write(self, au: bytes | bytearray | memoryview) -> None:
        """Append one access unit (Annex-B, start codes included), as it is.

        Until the first keyframe, units are counted in :attr:`skipped` and not written.

        Raises:
            AvatarError: the writer is closed or aborted.
            ValidationError: the write failed (a full disk); the temp file stays until
                :meth:`abort`.
        """
        if self._file is None:
            raise AvatarError(f"{self.path.name}: the H.264 writer is closed")
        if self.frames == 0 and not is_keyframe(au):
            self.skipped += 1
            return
        with disk_errors(self.path):
            self._file.write(au)
        self.frames += 1

    def close(self) -> Path:
        """Close the temp file and rename it to :attr:`path`; returns the path (idempotent).

        A stream with no keyframe yields an empty file.

        Raises:
            AvatarError: the writer was aborted.
            ValidationError: closing or renaming failed; the temp file is then removed.
        """
        if self._closed is not None:
            return self._closed
        if self._file is None:
            raise AvatarError(f"{self.path.name}: the H.264 writer was aborted")
        with disk_errors(self.path):
            try:
                self._file.close()
                self._file = None
                self._closed = self._partial.commit()
                return self._closed
            except BaseException:
                self.abort()
                raise

    def abort(self) -> None:
        """Discard everything not yet closed; idempotent, a no-op after :meth:`close`.

        Closes and removes the ``.partial`` temp file; :attr:`path` is never touched.

        Raises:
            ValidationError: flushing or removing the temp file failed (rare); calling
                :meth:`abort` again retries the removal.
        """
        file, self._file = self._file, None
        with disk_errors(self.path):
            if file is not None:
                file.close()
            self._partial.discard()
