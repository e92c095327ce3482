"""Speech-like PCM for the emulator: deterministic voiced syllables, pauses and bursts.

The durations follow :mod:`avatarkit.emulator.media.timing` exactly:
``len(synth_speech(text)) == speech_duration_ms(text) * 32``.
"""

from __future__ import annotations

import math
import random
from array import array
from typing import Final

from avatarkit.emulator.media.timing import (
    _BIG_ENDIAN,
    _BYTES_PER_MS,
    _CJK,
    _PAUSE,
    SAMPLE_RATE,
    _tokens,
    speech_duration_ms,
)

__all__ = ["pcm_rms", "synth_speech"]

_LEVELS: Final = 32  # amplitude steps of the bank; gain and envelope pick a step per period
_PEAK: Final = 0.55 * 32767  # full-scale syllable peak: loud but far from clipping
_P_MIN: Final = 67  # pitch period in samples: 16000/67 ≈ 239 Hz
_P_MAX: Final = 145  # 16000/145 ≈ 110 Hz
# (F1, F2) of five vowels; harmonics near them are boosted, which gives audible vowel colour.
_VOWELS: Final = ((780, 1250), (520, 1850), (320, 2250), (540, 900), (360, 780))
_NOISE_LENS: Final = (192, 320, 448)  # consonant bursts: 12, 20, 28 ms
_NOISE_VARIANTS: Final = 4
_NOISE_LEVELS: Final = 8

# Lazily filled banks. Entries are deterministic, so a race only computes one twice.
_shape_bank: dict[tuple[int, int], list[float]] = {}
_period_bank: dict[tuple[int, int, int], bytes] = {}
_noise_shape_bank: dict[tuple[int, int], list[float]] = {}
_noise_bank: dict[tuple[int, int, int], bytes] = {}


def _to_pcm(values: list[float], amp: float) -> bytes:
    arr = array("h", [round(v * amp) for v in values])
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr.tobytes()


def _shape(period: int, vowel: int) -> list[float]:
    """One pitch period (sum of sines, so it starts and ends at 0), peak-normalised."""
    got = _shape_bank.get((period, vowel))
    if got is not None:
        return got
    f0 = SAMPLE_RATE / period
    f1, f2 = _VOWELS[vowel]
    table = [math.sin(2 * math.pi * m / period) for m in range(period)]
    acc = [0.0] * period
    k = 1
    while k * f0 < 3800:
        f = k * f0
        a = k**-0.7 * (0.3 + 1 / (1 + ((f - f1) / 110) ** 2) + 0.7 / (1 + ((f - f2) / 160) ** 2))
        for idx in range(period):
            acc[idx] += a * table[(k * idx) % period]
        k += 1
    peak = max(abs(v) for v in acc) or 1.0
    got = [v / peak for v in acc]
    _shape_bank[(period, vowel)] = got
    return got


def _period_pcm(period: int, vowel: int, level: int) -> bytes:
    key = (period, vowel, level)
    got = _period_bank.get(key)
    if got is None:
        got = _to_pcm(_shape(period, vowel), _PEAK * level / (_LEVELS - 1))
        _period_bank[key] = got
    return got


def _noise_pcm(length_idx: int, variant: int, level: int) -> bytes:
    key = (length_idx, variant, level)
    got = _noise_bank.get(key)
    if got is None:
        shape = _noise_shape_bank.get((length_idx, variant))
        if shape is None:
            n = _NOISE_LENS[length_idx]
            rng = random.Random(1000 * length_idx + variant)
            white = [rng.uniform(-1.0, 1.0) for _ in range(n + 1)]
            # First difference = crude high-pass: hiss rather than rumble, like s/sh/t.
            hp = [white[i + 1] - 0.85 * white[i] for i in range(n)]
            shape = [v * math.sin(math.pi * i / n) for i, v in enumerate(hp)]
            peak = max(abs(v) for v in shape) or 1.0
            shape = [v / peak for v in shape]
            _noise_shape_bank[(length_idx, variant)] = shape
        got = _to_pcm(shape, 0.22 * 32767 * level / (_NOISE_LEVELS - 1))
        _noise_bank[key] = got
    return got


def _contour(kind: int, t: float) -> float:
    """Relative pitch deviation over a syllable (flat, rise, fall, dip: roughly Mandarin tones)."""
    if kind == 0:
        return 0.03 * math.sin(math.pi * t)
    if kind == 1:
        return -0.10 + 0.25 * t
    if kind == 2:
        return 0.15 - 0.30 * t
    return 0.3 * (2 * t - 1) ** 2 - 0.08 if t > 0.5 else 0.12 * (2 * t - 1) ** 2 - 0.08


def _syllable(out: list[bytes], n: int, rng: random.Random, f0: float, word_final: bool) -> None:
    """Append exactly ``n`` samples: optional consonant burst, voiced vowel, trailing gap."""
    gap = int(n * (0.2 if word_final else 0.07))
    voiced = n - gap
    gain = rng.uniform(0.55, 1.0)
    if rng.random() < 0.55:
        li = rng.randrange(len(_NOISE_LENS))
        while li > 0 and _NOISE_LENS[li] > voiced * 0.35:
            li -= 1
        if _NOISE_LENS[li] <= voiced * 0.35:
            level = max(1, round(gain * (_NOISE_LEVELS - 1)))
            out.append(_noise_pcm(li, rng.randrange(_NOISE_VARIANTS), level))
            voiced -= _NOISE_LENS[li]
    vowel = rng.randrange(len(_VOWELS))
    kind = rng.randrange(4)
    attack = min(0.3, 400 / max(voiced, 1))  # ~25 ms rise
    pos = 0
    top = gain * (_LEVELS - 1)
    while True:
        t = pos / voiced
        period = min(_P_MAX, max(_P_MIN, round(SAMPLE_RATE / (f0 * (1 + _contour(kind, t))))))
        if pos + period > voiced:
            break
        env = min(1.0, t / attack, (1.0 - t) / 0.35)
        out.append(_period_pcm(period, vowel, round(top * env)))
        pos += period
    out.append(bytes(2 * (voiced - pos + gap)))


def synth_speech(text: str, *, seed: int = 0) -> bytes:
    """Speech-like s16le mono 16 kHz PCM for plain ``text``; deterministic for ``(text, seed)``.

    ``len(result) == speech_duration_ms(text) * 32``. The seed picks the voice's pitch.
    """
    total_ms = speech_duration_ms(text)
    if total_ms == 0:
        return b""
    base_f0 = random.Random(seed).uniform(130.0, 190.0)
    rng = random.Random(f"{seed}\x00{text}")  # str seeds hash via SHA-512: stable across runs
    out: list[bytes] = []
    used_ms = 0
    in_sentence = 0  # syllables since the last sentence end, for pitch declination
    for tok in _tokens(text):
        used_ms += tok.ms
        if tok.kind == _PAUSE:
            out.append(bytes(tok.ms * _BYTES_PER_MS))
            if tok.sentence_end:
                in_sentence = 0
            continue
        if tok.kind == _CJK:
            parts = [tok.ms]
        else:
            count = max(1, (tok.letters + 1) // 3)
            q, r = divmod(tok.ms, count)
            parts = [q + (1 if i < r else 0) for i in range(count)]
        for i, ms in enumerate(parts):
            f0 = base_f0 * max(0.85, 1 - 0.012 * in_sentence) * rng.uniform(0.92, 1.08)
            _syllable(out, ms * SAMPLE_RATE // 1000, rng, f0, i == len(parts) - 1)
            in_sentence += 1
    out.append(bytes((total_ms - used_ms) * _BYTES_PER_MS))  # minimum-duration padding
    return b"".join(out)


def pcm_rms(pcm: bytes) -> float:
    """RMS of s16le PCM scaled to 0..1 (a trailing odd byte is ignored)."""
    arr = array("h")
    arr.frombytes(pcm[: len(pcm) & ~1])
    if not arr:
        return 0.0
    if _BIG_ENDIAN:
        arr.byteswap()
    return min(1.0, math.sqrt(math.fsum(v * v for v in arr) / len(arr)) / 32768)
