"""Test audio: pure tones as PCM or WAV, and a pitch measure."""

from __future__ import annotations

import array
import io
import itertools
import math
import wave


def tone(seconds: float, rate: int, channels: int = 1, hz: float = 220.0) -> bytes:
    """A sine tone as s16le PCM (channels interleaved)."""
    n = int(seconds * rate)
    samples = array.array(
        "h",
        (
            int(8000 * math.sin(2 * math.pi * hz * i / rate))
            for i in range(n)
            for _ in range(channels)
        ),
    )
    return samples.tobytes()


def wav_bytes(pcm: bytes, rate: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def sine_wav(*, rate: int = 16000, seconds: float = 1.0, hz: float = 200.0) -> bytes:
    return wav_bytes(tone(seconds, rate, 1, hz), rate, 1)


def crossings_per_second(samples: array.array[int], rate: int) -> float:
    """Zero crossings per second: twice the frequency of a pure tone."""
    count = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return count * rate / len(samples)
