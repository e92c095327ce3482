"""Pure audio plumbing for streaming audio drive (``|CTL|08|``/``|CTL|09|``).

* :class:`PcmConverter` turns s16le PCM of any rate and channel count into the
  16 kHz mono s16le the service takes, chunk by chunk (state is carried
  across chunks, so the output is the same however the input is split).
* :class:`Rechunker` cuts a PCM stream into 1-second frames (32,000 bytes,
  the least a ``|CTL|08|`` frame may carry) and leaves the rest for the
  ``|CTL|09|`` tail.
* :func:`wav_chunks` reads a 16-bit PCM WAV file in pieces.

Stdlib only: the base install can drive audio without PyAV.
"""

from __future__ import annotations

import array
import os
import sys
from collections.abc import Iterator
from typing import Final

from avatarkit.errors import ValidationError

__all__ = ["RATE", "SECOND_BYTES", "PcmConverter", "Rechunker", "wav_chunks"]

RATE: Final = 16_000
SECOND_BYTES: Final = 32_000  # 1 s of 16 kHz mono s16le
_BIG_ENDIAN: Final = sys.byteorder == "big"


def _samples(data: bytes) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(data)
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples


def _to_bytes(samples: array.array[int]) -> bytes:
    if _BIG_ENDIAN:
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


class PcmConverter:
    """s16le PCM at ``rate`` Hz with ``channels`` channels → 16 kHz mono s16le.

    Channels are averaged; the rate is changed by linear interpolation, with
    the position carried across :meth:`feed` calls (less than one output
    sample may be left unsaid at the very end).
    """

    def __init__(self, rate: int = RATE, channels: int = 1) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int) or not 4000 <= rate <= 384_000:
            raise ValidationError("sample_rate", rate, "must be an integer from 4000 to 384000 Hz")
        if channels not in (1, 2) or isinstance(channels, bool):
            raise ValidationError("channels", channels, "must be 1 or 2")
        self.rate = rate
        self.channels = channels
        self._pending = b""  # an odd byte or an incomplete frame
        # Exact integer positions: output sample k reads input position k * rate / 16000,
        # so the output does not depend on how the input was split into pieces.
        self._k = 0  # output samples produced
        self._base = 0  # input index of _window[0]
        self._window: list[int] = []  # input samples still needed

    @property
    def passthrough(self) -> bool:
        return self.rate == RATE and self.channels == 1

    def feed(self, data: bytes) -> bytes:
        """Convert the next piece of input; returns what can be output so far."""
        frame_bytes = 2 * self.channels
        data = self._pending + bytes(data)
        usable = len(data) - len(data) % frame_bytes
        data, self._pending = data[:usable], data[usable:]
        if self.passthrough:
            return data
        samples = _samples(data)
        if self.channels == 2:
            mono = [(samples[i] + samples[i + 1]) // 2 for i in range(0, len(samples), 2)]
        else:
            mono = samples.tolist()
        if self.rate == RATE:
            return _to_bytes(array.array("h", mono))
        window = self._window + mono
        end = self._base + len(window)  # one past the last input sample we have
        out = array.array("h")
        k, base, rate = self._k, self._base, self.rate
        while True:
            src = k * rate
            i = src // RATE
            if i + 1 >= end:  # interpolation needs the sample after i
                break
            a = window[i - base]
            out.append(a + (window[i + 1 - base] - a) * (src % RATE) // RATE)
            k += 1
        keep = min(k * rate // RATE, end) - base  # samples before the next position are done
        self._window = window[keep:]
        self._base = base + keep
        self._k = k
        return _to_bytes(out)


class Rechunker:
    """Cuts PCM into frames of exactly ``size`` bytes; the remainder is the tail."""

    def __init__(self, size: int = SECOND_BYTES) -> None:
        if size < 2 or size % 2:
            raise ValidationError("size", size, "must be an even number of bytes >= 2")
        self.size = size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        size = self.size
        full = len(self._buffer) // size * size
        chunks = [bytes(self._buffer[i : i + size]) for i in range(0, full, size)]
        del self._buffer[:full]
        return chunks

    def tail(self) -> bytes:
        """What is left (shorter than a frame, maybe empty): the ``|CTL|09|`` payload."""
        tail = bytes(self._buffer[: len(self._buffer) // 2 * 2])
        self._buffer.clear()
        return tail


def wav_chunks(
    path: str | os.PathLike[str], frames: int = 16_000
) -> Iterator[tuple[bytes, int, int]]:
    """(pcm, rate, channels) pieces of a 16-bit PCM WAV file."""
    import wave  # only this path reads WAV files

    try:
        wav = wave.open(os.fspath(path), "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise ValidationError("source", os.fspath(path), "does not exist") from None
    except (wave.Error, EOFError) as exc:
        raise ValidationError("source", os.fspath(path), f"is not a PCM WAV file ({exc})") from None
    with wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        if width != 2:
            raise ValidationError(
                "source", os.fspath(path), f"has {8 * width}-bit samples: 16-bit PCM WAV is needed"
            )
        if channels not in (1, 2):
            raise ValidationError(
                "source", os.fspath(path), f"has {channels} channels: mono or stereo is needed"
            )
        while data := wav.readframes(frames):
            yield data, rate, channels
