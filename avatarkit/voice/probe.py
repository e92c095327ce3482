"""How long an input lasts, where that can be read without decoding it all.

Synchronous (file headers, PyAV's demuxer): the client calls it from a worker
thread.  ``None`` means "unknown", and an unknown duration is not refused:
the service is the judge then.
"""

from __future__ import annotations

import contextlib
import io
import wave
from pathlib import Path
from typing import IO, Any

from avatarkit._redact import protected_logger
from avatarkit.voice.rules import PCM_BYTES_PER_SECOND

__all__ = ["probe_duration"]

log = protected_logger(__name__)


def _wav_seconds(source: IO[bytes] | str) -> float | None:
    try:
        with wave.open(source, "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else None
    except (wave.Error, EOFError):  # e.g. float or extensible WAV: PyAV's turn
        return None


def _pyav_seconds(source: IO[bytes] | str) -> float | None:
    try:
        import av
    except ImportError:
        log.debug("PyAV not installed: the input's duration is not checked")
        return None
    try:
        container: Any = av.open(source, "r")
    except Exception:  # not a format FFmpeg knows: leave it to the service
        return None
    with container:
        if container.duration is not None:
            return float(container.duration) / 1_000_000  # AV_TIME_BASE
        for stream in container.streams.audio:
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    return None


def probe_duration(*, path: Path | None = None, data: bytes | None = None) -> float | None:
    """Seconds of audio in the file at ``path`` or in ``data``, or ``None`` when unknown.

    WAV is read with :mod:`wave`; a ``.pcm`` file is taken as 16 kHz mono
    s16le; anything else is probed with PyAV when it is installed.
    """
    if path is not None:
        if path.suffix.lower() == ".pcm":
            return path.stat().st_size / PCM_BYTES_PER_SECOND
        with path.open("rb") as f:
            head = f.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            seconds = _wav_seconds(str(path))
            if seconds is not None:
                return seconds
        return _pyav_seconds(str(path))
    if data is None:
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        seconds = _wav_seconds(io.BytesIO(data))
        if seconds is not None:
            return seconds
    with contextlib.suppress(Exception):
        return _pyav_seconds(io.BytesIO(data))
    return None
