"""Streaming WAV (RIFF, PCM s16le) writer."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Final

from avatarkit.errors import AvatarError, ValidationError
from avatarkit.media._atomic import Partial, Sink, disk_errors

__all__ = ["WavWriter"]

_HEADER_SIZE: Final = 44
_MAX_DATA: Final = 0xFFFFFFFF - 36  # RIFF sizes are 32-bit


def _header(data_size: int, sample_rate: int, channels: int) -> bytes:
    block_align = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_size,
        b"WAVE",
        b"fmt ",
        16,  # PCM fmt chunk size
        1,  # WAVE_FORMAT_PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        16,  # bits per sample
        b"data",
        data_size,
    )


class WavWriter(Sink):
    """Streams s16le PCM into a ``.wav`` file; the header's sizes are patched at :meth:`close`.

    The file is written as ``.{name}.partial`` beside ``path`` and renamed on a successful
    close, so ``path`` never holds a truncated file; :meth:`abort` (or an exception inside
    ``with``) removes the temp file. The 44-byte header is written at once (sizes 0), the
    PCM is appended as it comes, with nothing held in memory. ``sample_rate`` in Hz
    (default 16000, the TTA audio's) and ``channels`` (1 to 16, default mono) go into the
    header; the writer does not resample.

    Raises:
        ValidationError: ``sample_rate`` is not a positive rate in Hz, or ``channels`` is
            not between 1 and 16.
        ValidationError: the temp file cannot be created or written (a missing directory, no
            permission).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, sample_rate: int = 16_000, channels: int = 1
    ) -> None:
        if not 1 <= sample_rate <= 0x7FFFFFFF // 4:
            raise ValidationError("sample_rate", sample_rate, "must be a positive rate in Hz")
        if not 1 <= channels <= 16:
            raise ValidationError("channels", channels, "must be between 1 and 16")
        self.sample_rate = sample_rate
        """Samples per second per channel, as written into the header."""
        self.channels = channels
        """Interleaved channels, as written into the header."""
        self._partial = Partial(path)
        self._size = 0
        self._closed: Path | None = None  # set by a successful close
        with disk_errors(path):
            self._file: BinaryIO | None = open(self._partial.temp, "wb")  # noqa: SIM115
            try:
                self._file.write(_header(0, sample_rate, channels))
            except BaseException:
                self.abort()
                raise

    @property
    def path(self) -> Path:
        """The target file; it exists only once :meth:`close` has succeeded."""
        return self._partial.path

    @property
    def frames(self) -> int:
        """Complete sample frames written so far."""
        return self._size // (2 * self.channels)

    @property
    def seconds(self) -> float:
        """Duration written so far, in seconds (:attr:`frames` / :attr:`sample_rate`)."""
        return self.frames / self.sample_rate

    def write(self, pcm: bytes | bytearray | memoryview) -> None:
        """Append PCM (s16le, interleaved) to the temp file.

        Any length is taken: a chunk may end mid-sample, and the next one continues it.

        Raises:
            AvatarError: the writer is closed or aborted, or the data would pass the 4 GiB
                a RIFF file can hold.
            ValidationError: the write failed (a full disk); the temp file stays until
                :meth:`abort`.
        """
        if self._file is None:
            raise AvatarError(f"{self.path.name}: the WAV writer is closed")
        if self._size + len(pcm) > _MAX_DATA:
            raise AvatarError(f"{self.path.name}: a WAV file cannot hold more than 4 GiB")
        with disk_errors(self.path):
            self._file.write(pcm)
        self._size += len(pcm)

    def close(self) -> Path:
        """Finish the header and move the file into place; returns its path (idempotent).

        Pads a trailing partial sample frame with zero bytes, writes the final RIFF and
        ``data`` sizes into the header, closes the temp file and renames it to
        :attr:`path` (atomically: same directory). A second call returns the same path.

        Raises:
            AvatarError: the writer was aborted.
            ValidationError: the write or the rename failed; the temp file is then removed.
        """
        if self._closed is not None:
            return self._closed
        if self._file is None:
            raise AvatarError(f"{self.path.name}: the WAV writer was aborted")
        with disk_errors(self.path):
            try:
                # A chunk may end mid-sample; pad so the data is whole frames.
                tail = -self._size % (2 * self.channels)
                if tail:
                    self._file.write(bytes(tail))
                    self._size += tail
                self._file.seek(0)
                self._file.write(_header(self._size, self.sample_rate, self.channels))
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
