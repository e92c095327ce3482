"""Real media for the TTA emulator: speech-like PCM, an animated avatar as H.264, muxed files.

Everything here is synchronous and CPU-bound; the server calls it from worker threads
(``anyio.to_thread.run_sync``). PyAV releases the GIL inside the encoders, and the pure-Python
parts only concatenate precomputed byte strings, so several sessions can run side by side.

Timing model (shared by :func:`speech_duration_ms`, :func:`sentence_timings` and
:func:`synth_speech`, so the three always agree to the millisecond):

* a CJK character (Han, kana, Hangul) is one 220 ms syllable;
* any other letter or digit adds 65 ms to the word it belongs to;
* a run of punctuation pauses 150 ms if it holds sentence punctuation (``。！？!?.；;``),
  else 80 ms (commas ``,，、``); other characters take no time;
* non-blank text lasts at least 200 ms (silence is appended); blank text lasts 0 ms.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import random
import re
import sys
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import av

__all__ = [
    "AUDIO_BYTES_PER_FRAME",
    "FPS",
    "FRAME_MS",
    "SAMPLE_RATE",
    "MediaSession",
    "pad_access_unit",
    "pcm_rms",
    "plain_text",
    "sentence_timings",
    "speech_duration_ms",
    "split_sentences",
    "synth_speech",
]

SAMPLE_RATE: Final = 16_000  # Hz, mono, s16le
FPS: Final = 25
FRAME_MS: Final = 40  # one video frame per 40 ms of audio
AUDIO_BYTES_PER_FRAME: Final = 1280  # 40 ms of PCM

_BYTES_PER_MS: Final = SAMPLE_RATE * 2 // 1000  # 32
_BIG_ENDIAN: Final = sys.byteorder == "big"

# --------------------------------------------------------------------------------------------
# Text and timing
# --------------------------------------------------------------------------------------------

_CJK_MS: Final = 220
_LETTER_MS: Final = 65
_SENTENCE_PAUSE_MS: Final = 150
_COMMA_PAUSE_MS: Final = 80
_MIN_SPEECH_MS: Final = 200

_SENTENCE_PUNCT: Final = frozenset("。！？!?.；;")
_COMMA_PUNCT: Final = frozenset(",，、")
_PAUSE_PUNCT: Final = _SENTENCE_PUNCT | _COMMA_PUNCT
# Closing quotes/brackets stay with the sentence they close.
_CLOSERS: Final = frozenset("\"'”’」』）)】》]")
# Glue inside a word: "don't", "e-mail"; "." and "," only between digits ("3.14", "1,000").
_LETTER_GLUE: Final = frozenset("'’-")
_DIGIT_GLUE: Final = frozenset(".,")

_TAG_RE: Final = re.compile(r"<[^>]*>")
_WS_RE: Final = re.compile(r"\s+")


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0x3041 <= o <= 0x30FA  # hiragana + katakana (not the middle dot)
        or 0x30FC <= o <= 0x30FF
        or 0xAC00 <= o <= 0xD7AF  # Hangul syllables
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= o <= 0x2FA1F  # extensions B+
    )


def _is_letter(ch: str) -> bool:
    return ch.isalnum() and not _is_cjk(ch)


def plain_text(text: str) -> str:
    """Strip XML/SSML tags, unescape entities and collapse whitespace."""

    def _tag(m: re.Match[str]) -> str:
        # A tag between CJK characters must not become a space ("你<break/>好" -> "你好"),
        # but between Latin words it separates them ("Hello<break/>world").
        s, e = m.start(), m.end()
        before = m.string[s - 1] if s > 0 else " "
        after = m.string[e] if e < len(m.string) else " "
        return "" if _is_cjk(before) or _is_cjk(after) else " "

    return _WS_RE.sub(" ", html.unescape(_TAG_RE.sub(_tag, text))).strip()


@dataclass(frozen=True, slots=True)
class _Token:
    kind: int  # _CJK, _WORD or _PAUSE
    start: int
    end: int
    ms: int
    letters: int = 0  # _WORD only
    sentence_end: bool = False  # _PAUSE only


_CJK: Final = 0
_WORD: Final = 1
_PAUSE: Final = 2


def _tokens(text: str) -> list[_Token]:
    """Scan text into timed tokens; everything else (spaces, symbols) takes no time."""
    out: list[_Token] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if _is_cjk(ch):
            out.append(_Token(_CJK, i, i + 1, _CJK_MS))
            i += 1
        elif _is_letter(ch):
            j = i
            letters = 0
            while j < n:
                c = text[j]
                if _is_letter(c):
                    letters += 1
                    j += 1
                elif (
                    j + 1 < n
                    and _is_letter(text[j + 1])
                    and (
                        c in _LETTER_GLUE
                        or (c in _DIGIT_GLUE and text[j - 1].isdigit() and text[j + 1].isdigit())
                    )
                ):
                    j += 1
                else:
                    break
            out.append(_Token(_WORD, i, j, letters * _LETTER_MS, letters=letters))
            i = j
        elif ch in _PAUSE_PUNCT:
            j = i
            sentence = False
            while j < n and text[j] in _PAUSE_PUNCT:
                sentence = sentence or text[j] in _SENTENCE_PUNCT
                j += 1
            ms = _SENTENCE_PAUSE_MS if sentence else _COMMA_PAUSE_MS
            out.append(_Token(_PAUSE, i, j, ms, sentence_end=sentence))
            i = j
        else:
            i += 1
    return out


def _sentence_spans(text: str, tokens: list[_Token]) -> list[tuple[int, int]]:
    """Contiguous spans covering all of ``text``, cut after sentence-ending pause runs."""
    spans: list[tuple[int, int]] = []
    start = 0
    for tok in tokens:
        if tok.kind == _PAUSE and tok.sentence_end:
            end = tok.end
            while end < len(text) and text[end] in _CLOSERS:
                end += 1
            spans.append((start, end))
            start = end
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def split_sentences(text: str) -> list[str]:
    """Split plain text after ``。！？!?.；;`` (kept with the sentence); commas don't split."""
    spans = _sentence_spans(text, _tokens(text))
    return [s for s in (text[a:b].strip() for a, b in spans) if s]


def speech_duration_ms(text: str) -> int:
    """Duration of :func:`synth_speech` output for ``text`` (see the module docstring)."""
    if not text.strip():
        return 0
    return max(_MIN_SPEECH_MS, sum(t.ms for t in _tokens(text)))


def sentence_timings(text: str) -> list[tuple[str, int, int]]:
    """``(sentence, start_ms, end_ms)`` per sentence, contiguous from 0 to the speech duration."""
    tokens = _tokens(text)
    out: list[tuple[str, int, int]] = []
    t = 0
    ti = 0
    for a, b in _sentence_spans(text, tokens):
        ms = 0
        while ti < len(tokens) and tokens[ti].start < b:
            ms += tokens[ti].ms
            ti += 1
        sentence = text[a:b].strip()
        if sentence:  # blank spans hold no tokens, so dropping them loses no time
            out.append((sentence, t, t + ms))
            t += ms
    if out and t < _MIN_SPEECH_MS:
        s, a0, _ = out[-1]
        out[-1] = (s, a0, _MIN_SPEECH_MS)
    return out


# --------------------------------------------------------------------------------------------
# Speech-like audio
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# H.264 helpers
# --------------------------------------------------------------------------------------------

_FILLER_HEAD: Final = b"\x00\x00\x00\x01\x0c"  # start code + NAL type 12 (filler data)


def pad_access_unit(au: bytes, size: int) -> bytes:
    """Append a filler-data NAL so ``len(result) == size``; ``au`` itself if it can't fit."""
    extra = size - len(au) - 6
    if extra < 0:
        return au
    return b"".join((au, _FILLER_HEAD, b"\xff" * extra, b"\x80"))


# --------------------------------------------------------------------------------------------
# Avatar pictures
# --------------------------------------------------------------------------------------------

_MOUTH_LEVELS: Final = 12
_COUNTER_BITS: Final = 12
_BAR_PERIOD: Final = 10 * FPS  # the progress bar sweeps every 10 s


def _yuv(r: int, g: int, b: int, a: int = 255) -> tuple[int, int, int, int]:
    """BT.601 limited-range YUV (+ alpha) of an sRGB colour."""
    rr, gg, bb = r / 255, g / 255, b / 255
    y = 16 + 65.481 * rr + 128.553 * gg + 24.966 * bb
    u = 128 - 37.797 * rr - 74.203 * gg + 112.0 * bb
    v = 128 + 112.0 * rr - 93.786 * gg - 18.214 * bb
    return round(y), round(u), round(v), a


_BG: Final = _yuv(38, 56, 84, 0)  # transparent where the container supports alpha
_SHIRT: Final = _yuv(64, 104, 158)
_HAIR: Final = _yuv(58, 40, 32)
_SKIN: Final = _yuv(238, 198, 166)
_WHITE: Final = _yuv(245, 245, 245)
_PUPIL: Final = _yuv(40, 32, 36)
_LIPS: Final = _yuv(186, 78, 88)
_MOUTH: Final = _yuv(70, 18, 30)
_BAR_ON: Final = _yuv(118, 214, 140)
_BAR_OFF: Final = _yuv(24, 34, 54)
_BIT_ON: Final = _yuv(250, 230, 90)
_BIT_OFF: Final = _yuv(60, 70, 90)


class _Plane:
    """A window onto one picture plane: ``buf`` holds rows ``y0..y0+h`` cols ``x0..x0+w``."""

    __slots__ = ("buf", "h", "scale", "stride", "w", "x0", "y0")

    def __init__(
        self, buf: bytearray, stride: int, x0: int, y0: int, w: int, h: int, scale: float
    ) -> None:
        self.buf, self.stride, self.x0, self.y0, self.w, self.h = buf, stride, x0, y0, w, h
        self.scale = scale  # plane pixels per luma pixel (0.5 for 4:2:0 chroma)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, value: int) -> None:
        s = self.scale
        cx, cy, rx, ry = cx * s, cy * s, rx * s, ry * s
        if rx <= 0 or ry <= 0:
            return
        fill = bytes((value,)) * self.w
        for row in range(
            max(self.y0, math.floor(cy - ry)), min(self.y0 + self.h, math.ceil(cy + ry))
        ):
            dy = (row + 0.5 - cy) / ry
            if dy * dy >= 1.0:
                continue
            half = rx * math.sqrt(1.0 - dy * dy)
            a = max(self.x0, round(cx - half))
            b = min(self.x0 + self.w, round(cx + half))
            if b > a:
                off = (row - self.y0) * self.stride - self.x0
                self.buf[off + a : off + b] = fill[: b - a]

    def rect(self, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
        s = self.scale
        a = max(self.x0, round(x0 * s))
        b = min(self.x0 + self.w, round(x1 * s))
        if b <= a:
            return
        fill = bytes((value,)) * (b - a)
        for row in range(max(self.y0, round(y0 * s)), min(self.y0 + self.h, round(y1 * s))):
            off = (row - self.y0) * self.stride - self.x0
            self.buf[off + a : off + b] = fill


_Patch = tuple[int, int, bytes]  # (plane index, byte offset in plane, bytes)


class _Art:
    """Precomputed avatar planes for one size/format plus cached per-frame overlays."""

    def __init__(self, width: int, height: int, pix_fmt: str) -> None:
        self.width, self.height, self.pix_fmt = width, height, pix_fmt
        probe = av.VideoFrame(width, height, pix_fmt)
        self.line_sizes = tuple(p.line_size for p in probe.planes)
        self.dims = [(p.width, p.height) for p in probe.planes]
        self.scales = [p.width / width for p in probe.planes]
        self.nplanes = len(self.line_sizes)
        w, h = width, height
        # Geometry in luma pixels; the head fits portrait and landscape frames alike.
        unit = min(w, h / 1.4)
        self.cx = cx = w / 2
        self.cy = cy = h * 0.46
        self.rx = rx = 0.32 * unit
        self.ry = ry = 1.28 * rx
        self.mouth_cy = cy + 0.45 * ry
        self.mouth_rx = 0.36 * rx
        self.mouth_ry = 0.20 * ry
        self.lip = max(1.5, 0.035 * ry)
        self.eye_dx, self.eye_cy = 0.38 * rx, cy - 0.10 * ry
        self.eye_rx, self.eye_ry = 0.16 * rx, 0.11 * ry
        self.bar_h = max(2, round(h / 60)) & ~1
        self.bit = max(2, round(h / 48)) & ~1

        self.base: list[bytes] = []
        planes = self._full_planes()
        for i, pl in enumerate(planes):
            pl.rect(0, 0, w, h, _BG[i])
            pl.ellipse(cx, cy + 2.05 * ry, 1.75 * rx, 1.15 * ry, _SHIRT[i])  # shoulders
            pl.ellipse(cx, cy - 0.08 * ry, 1.06 * rx, 1.0 * ry, _HAIR[i])
            pl.ellipse(cx, cy + 0.04 * ry, rx, 0.96 * ry, _SKIN[i])
            pl.rect(0, h - self.bar_h, w, h, _BAR_OFF[i])
            for k in range(_COUNTER_BITS):  # unlit counter squares; frames light them in Y/U/V
                x = self.bit * (1 + 2 * k)
                pl.rect(x, self.bit, x + self.bit, 2 * self.bit, _BIT_OFF[i])
            self._eyes(pl, i, closed=False)
            self._mouth(pl, i, 0)
            self.base.append(bytes(pl.buf))

        self._mouth_patches: dict[int, list[_Patch]] = {}
        self._blink_patch = self._region_patch(
            cx - self.eye_dx - self.eye_rx - 2,
            self.eye_cy - self.eye_ry - 2,
            cx + self.eye_dx + self.eye_rx + 2,
            self.eye_cy + self.eye_ry + 2,
            lambda pl, i: self._eyes(pl, i, closed=True),
        )
        self._rows_on: list[bytes] = []
        self._rows_off: list[bytes] = []
        for i, (pw, _) in enumerate(self.dims):
            self._rows_on.append(bytes((_BAR_ON[i],)) * pw)
            self._rows_off.append(bytes((_BAR_OFF[i],)) * pw)

    def _full_planes(self) -> list[_Plane]:
        return [
            _Plane(bytearray(ls * ph), ls, 0, 0, pw, ph, s)
            for ls, (pw, ph), s in zip(self.line_sizes, self.dims, self.scales, strict=True)
        ]

    def _eyes(self, pl: _Plane, i: int, *, closed: bool) -> None:
        for sign in (-1, 1):
            ex = self.cx + sign * self.eye_dx
            if closed:
                pl.ellipse(ex, self.eye_cy, self.eye_rx + 1, self.eye_ry + 1, _SKIN[i])
                pl.ellipse(ex, self.eye_cy, self.eye_rx, max(1.0, self.eye_ry * 0.15), _PUPIL[i])
            else:
                pl.ellipse(ex, self.eye_cy, self.eye_rx, self.eye_ry, _WHITE[i])
                pl.ellipse(ex, self.eye_cy, self.eye_ry * 0.6, self.eye_ry * 0.6, _PUPIL[i])

    def _mouth(self, pl: _Plane, i: int, level: int) -> None:
        opening = self.mouth_ry * level / (_MOUTH_LEVELS - 1)
        mx, my = self.cx, self.mouth_cy
        pl.ellipse(mx, my, self.mouth_rx + 1, self.mouth_ry + self.lip + 1, _SKIN[i])
        pl.ellipse(mx, my, self.mouth_rx, opening + self.lip, _LIPS[i])
        if opening >= 1.0:
            pl.ellipse(mx, my, self.mouth_rx * 0.86, opening, _MOUTH[i])

    def _region_patch(self, x0: float, y0: float, x1: float, y1: float, paint: Any) -> list[_Patch]:
        """Repaint a luma-coordinate box on top of the base and return it as row patches."""
        patches: list[_Patch] = []
        for i in range(self.nplanes):
            s = self.scales[i]
            pw, ph = self.dims[i]
            ls = self.line_sizes[i]
            a, b = max(0, math.floor(x0 * s)), min(pw, math.ceil(x1 * s))
            top, bot = max(0, math.floor(y0 * s)), min(ph, math.ceil(y1 * s))
            if b <= a or bot <= top:
                continue
            w = b - a
            buf = bytearray()
            for row in range(top, bot):
                buf += self.base[i][row * ls + a : row * ls + b]
            pl = _Plane(buf, w, a, top, w, bot - top, s)
            paint(pl, i)
            for r in range(bot - top):
                patches.append((i, (top + r) * ls + a, bytes(buf[r * w : (r + 1) * w])))
        return patches

    def mouth_patch(self, level: int) -> list[_Patch]:
        got = self._mouth_patches.get(level)
        if got is None:
            rx = self.mouth_rx + 2
            ry = self.mouth_ry + self.lip + 2
            my = self.mouth_cy
            got = self._region_patch(
                self.cx - rx,
                my - ry,
                self.cx + rx,
                my + ry,
                lambda pl, i: self._mouth(pl, i, level),
            )
            self._mouth_patches[level] = got
        return got

    def frame(self, level: int, index: int, bar_period: int = _BAR_PERIOD) -> Any:
        """A new ``av.VideoFrame``: base picture + mouth + blink + counter + progress bar."""
        frame = av.VideoFrame(self.width, self.height, self.pix_fmt)
        views = [memoryview(p) for p in frame.planes]
        if tuple(p.line_size for p in frame.planes) != self.line_sizes:  # pragma: no cover
            raise RuntimeError("unexpected VideoFrame line sizes")
        for view, base in zip(views, self.base, strict=True):
            view[:] = base
        for i, off, data in self.mouth_patch(level):
            views[i][off : off + len(data)] = data
        if (index + 60) % 113 < 3:  # a short blink every ~4.5 s
            for i, off, data in self._blink_patch:
                views[i][off : off + len(data)] = data
        for i in range(min(3, self.nplanes)):
            pw, ph = self.dims[i]
            s, ls = self.scales[i], self.line_sizes[i]
            # Progress bar along the bottom edge.
            done = round(pw * ((index % bar_period) + 1) / bar_period)
            row = self._rows_on[i][:done] + self._rows_off[i][done:]
            for r in range(ph - round(self.bar_h * s), ph):
                views[i][r * ls : r * ls + pw] = row
            # Frame counter: one square per bit, LSB on the left, in the top-left corner.
            sq = round(self.bit * s)
            on, off_ = bytes((_BIT_ON[i],)) * sq, bytes((_BIT_OFF[i],)) * sq
            gap = bytes((_BG[i],)) * sq
            bits = b"".join((on if (index >> k) & 1 else off_) + gap for k in range(_COUNTER_BITS))[
                : pw - sq
            ]
            for r in range(sq, 2 * sq):
                views[i][r * ls + sq : r * ls + sq + len(bits)] = bits
        return frame


_art_cache: dict[tuple[int, int, str], _Art] = {}
_art_lock = threading.Lock()


def _art(width: int, height: int, pix_fmt: str) -> _Art:
    key = (width, height, pix_fmt)
    with _art_lock:
        got = _art_cache.get(key)
        if got is None:
            got = _art_cache[key] = _Art(width, height, pix_fmt)
        return got


def _mouth_level(rms: float) -> int:
    # Speech RMS spans roughly 0.01..0.2; a gentle curve keeps quiet syllables visible.
    x = max(0.0, min(1.0, (rms - 0.004) / 0.16))
    return round(math.pow(x, 0.7) * (_MOUTH_LEVELS - 1))


# --------------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------------

_TB_VIDEO: Final = Fraction(1, FPS)


def _h264_encoder(width: int, height: int, gop: int) -> Any:
    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = _TB_VIDEO
    ctx.framerate = Fraction(FPS)
    ctx.gop_size = gop
    ctx.max_b_frames = 0
    ctx.thread_count = 1
    # zerolatency: no lookahead/B-frames, so every frame in gives exactly one AU out.
    # repeat-headers: SPS/PPS in-band on every IDR; scenecut=0: keyframes only every `gop`.
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "crf": "23",
        "x264-params": f"keyint={gop}:scenecut=0:repeat-headers=1:bframes=0",
    }
    return ctx


def _webm_codec() -> tuple[str, str]:
    """(video encoder, audio encoder) for webm, preferring VP9 (faster here than VP8)."""
    have = av.codecs_available
    video = next((c for c in ("libvpx-vp9", "libvpx") if c in have), None)
    audio = next((c for c in ("libopus", "libvorbis") if c in have), None)
    if video is None or audio is None:
        missing = [
            what
            for what, found in (("libvpx-vp9/libvpx", video), ("libopus/libvorbis", audio))
            if found is None
        ]
        raise RuntimeError(f"webm output needs encoders missing from PyAV: {', '.join(missing)}")
    return video, audio


def _vpx_encoder(name: str, width: int, height: int, gop: int) -> Any:
    ctx: Any = av.CodecContext.create(name, "w")
    fmts = {f.name for f in ctx.codec.video_formats or ()}
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuva420p" if "yuva420p" in fmts else "yuv420p"
    ctx.time_base = _TB_VIDEO
    ctx.framerate = Fraction(FPS)
    ctx.gop_size = gop
    ctx.thread_count = 1
    ctx.bit_rate = max(300_000, width * height)  # ~1 bit/pixel/s: plenty for flat art
    opts = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    if name == "libvpx-vp9":
        opts["row-mt"] = "0"
    ctx.options = opts
    return ctx


@dataclass(frozen=True, slots=True)
class _Loop:
    """A pre-encoded closed loop of frames for cheap mode (starts with a keyframe)."""

    aus: tuple[bytes, ...]
    keys: tuple[bool, ...]
    packets: tuple[Any, ...]  # original av.Packets (VPX only: alpha travels as side data)


_LOOP_FRAMES: Final = 50
_loop_cache: dict[tuple[str, int, int, int], _Loop] = {}
_loop_lock = threading.Lock()


def _loop_levels() -> Iterator[int]:
    # A plausible talking pattern: a few open-close cycles with pauses.
    for i in range(_LOOP_FRAMES):
        phase = (i % 25) / 25
        talk = 0.0 if phase > 0.8 else abs(math.sin(phase * math.pi * 5))
        yield round(talk * (_MOUTH_LEVELS - 1))


def _loop(codec: str, width: int, height: int, gop: int) -> _Loop:
    key = (codec, width, height, gop)
    with _loop_lock:  # encode each loop once even if many sessions start together
        got = _loop_cache.get(key)
        if got is not None:
            return got
        if codec == "h264":
            enc = _h264_encoder(width, height, gop)
        else:
            enc = _vpx_encoder(codec, width, height, gop)
        art = _art(width, height, enc.pix_fmt)
        packets: list[Any] = []
        for i, level in enumerate(_loop_levels()):
            frame = art.frame(level, i, _LOOP_FRAMES)
            frame.pts = i
            packets.extend(enc.encode(frame))
        packets.extend(enc.encode(None))
        if len(packets) != _LOOP_FRAMES or not packets[0].is_keyframe:  # pragma: no cover
            raise RuntimeError(f"{codec} loop encoder returned {len(packets)} packets")
        got = _Loop(
            tuple(bytes(p) for p in packets),
            tuple(bool(p.is_keyframe) for p in packets),
            tuple(packets) if codec != "h264" else (),
        )
        _loop_cache[key] = got
        return got


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------

_CONTAINERS: Final = {"mp4": "mp4", "mov": "mov", "webm": "webm"}
_AUDIO_RATE: Final = 48_000  # AAC frames of 1024 samples are 21 ms here, < one video frame


_OVERLAY_BORDER: Final = _yuv(245, 245, 245)
_OVERLAY_FILL: Final = _yuv(70, 150, 220)
_OVERLAY_MARK: Final = _yuv(250, 200, 60)


@dataclass(frozen=True, slots=True)
class Overlay:
    """A picture-in-picture box (an SSML image or video) shown over a range of frames."""

    first_frame: int
    end_frame: int  # exclusive
    left: int
    top: int
    width: int
    height: int


def _fill(
    view: memoryview, stride: int, scale: float, box: tuple[float, float, float, float], value: int
) -> None:
    ax, ay, bx, by = box
    a, b = round(ax * scale), round(bx * scale)
    if b <= a:
        return
    row_bytes = bytes((value,)) * (b - a)
    for row in range(round(ay * scale), round(by * scale)):
        view[row * stride + a : row * stride + b] = row_bytes


def _paint_overlay(frame: Any, box: Overlay, width: int, height: int) -> None:
    """A framed box with a sun in it: plainly "a picture" in the rendered video."""
    x0, y0 = max(0, box.left), max(0, box.top)
    x1, y1 = min(width, box.left + box.width), min(height, box.top + box.height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    border = max(2, min(x1 - x0, y1 - y0) // 20)
    sun = (x1 - x0) // 5
    for i, plane in enumerate(frame.planes[:3]):
        view, stride, scale = memoryview(plane), plane.line_size, 1.0 if i == 0 else 0.5
        _fill(view, stride, scale, (x0, y0, x1, y1), _OVERLAY_BORDER[i])
        _fill(
            view,
            stride,
            scale,
            (x0 + border, y0 + border, x1 - border, y1 - border),
            _OVERLAY_FILL[i],
        )
        top = y0 + border + sun // 2
        _fill(view, stride, scale, (x1 - 2 * sun, top, x1 - sun, top + sun), _OVERLAY_MARK[i])


class MediaSession:
    """Renders PCM into H.264 access units of an animated avatar; optionally records a file.

    Frames are ``width & ~1`` x ``height & ~1`` (4:2:0 needs even sizes, so an odd size is
    rounded down). ``render`` returns Annex-B AUs, one per 40 ms of audio (the tail is padded
    with silence), with SPS/PPS in-band on every keyframe. With ``container`` set to
    ``"mp4"``/``"mov"`` the same H.264 packets (encoded once) are muxed with AAC 48 kHz mono;
    ``"webm"`` records a separate VP9 (VP8 fallback) + Opus encode, with alpha where libvpx
    supports yuva420p (transparent background). ``cheap=True`` cycles a cached pre-encoded
    loop instead of encoding. Methods are thread-safe; instances are not meant to be shared.
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        gop: int = 250,
        container: str | None = None,
        cheap: bool = False,
        frame_bytes: int | None = None,
    ) -> None:
        if not (16 <= width <= 8192 and 16 <= height <= 8192):
            raise ValueError(f"unsupported video size {width}x{height}")
        if gop < 1:
            raise ValueError(f"gop must be >= 1, got {gop}")
        if container is not None and container not in _CONTAINERS:
            raise ValueError(f"unsupported container {container!r} (mp4, mov, webm or None)")
        if frame_bytes is not None and frame_bytes < 1:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self.width = width & ~1
        self.height = height & ~1
        self.gop = gop
        self.container = container
        self.cheap = cheap
        self.frame_bytes = frame_bytes
        self._lock = threading.Lock()
        self._frames = 0
        self._overlays: list[Overlay] = []
        self._samples = 0  # audio samples (16 kHz) handed to the audio encoder
        self._produced = False
        self._closed = False

        webm = _webm_codec() if container == "webm" else None

        self._h264: Any = None
        self._h264_loop: _Loop | None = None
        if cheap:
            # The loop's own GOP: `gop` when it divides the loop, else one IDR per loop.
            loop_gop = gop if _LOOP_FRAMES % gop == 0 else _LOOP_FRAMES
            self._h264_loop = _loop("h264", self.width, self.height, loop_gop)
        else:
            self._h264 = _h264_encoder(self.width, self.height, gop)
            self._art = _art(self.width, self.height, "yuv420p")

        self._out: Any = None
        self._buf: io.BytesIO | None = None
        self._vstream: Any = None
        self._astream: Any = None
        self._vpx: Any = None
        self._vpx_loop: _Loop | None = None
        self._vpx_art: _Art | None = None
        if container is None:
            return
        self._buf = io.BytesIO()
        self._out = av.open(self._buf, "w", format=_CONTAINERS[container])
        try:
            if webm is None:
                # Mux the very packets `render` returns; PyAV derives avcC from the first
                # AU's in-band SPS/PPS, and movenc rewrites Annex-B to length prefixes.
                self._vstream = self._out.add_mux_stream(
                    "h264", rate=FPS, width=self.width, height=self.height
                )
                # The "fast" coder is ~4x cheaper than the default twoloop, plenty for speech.
                self._astream = self._out.add_stream(
                    "aac", rate=_AUDIO_RATE, layout="mono", options={"aac_coder": "fast"}
                )
                self._astream.bit_rate = 48_000
            else:
                vname, aname = webm
                if cheap:
                    loop_gop = gop if _LOOP_FRAMES % gop == 0 else _LOOP_FRAMES
                    self._vpx_loop = _loop(vname, self.width, self.height, loop_gop)
                    alpha = _loop_alpha(self._vpx_loop)
                else:
                    self._vpx = _vpx_encoder(vname, self.width, self.height, gop)
                    self._vpx_art = _art(self.width, self.height, self._vpx.pix_fmt)
                    alpha = self._vpx.pix_fmt == "yuva420p"
                self._vstream = self._out.add_mux_stream(
                    "vp9" if vname == "libvpx-vp9" else "vp8",
                    rate=FPS,
                    width=self.width,
                    height=self.height,
                )
                if alpha:
                    self._vstream.metadata["alpha_mode"] = "1"  # matroska AlphaMode
                self._astream = self._out.add_stream(aname, rate=_AUDIO_RATE, layout="mono")
                self._astream.bit_rate = 48_000
        except BaseException:
            self._out.close()
            raise

    def add_overlay(
        self, start_ms: int, end_ms: int, *, left: int, top: int, width: int, height: int
    ) -> None:
        """Show a picture box from ``start_ms`` to ``end_ms`` of the session's timeline."""
        box = Overlay(
            start_ms // FRAME_MS,
            max(start_ms // FRAME_MS + 1, -(-end_ms // FRAME_MS)),
            left,
            top,
            width,
            height,
        )
        with self._lock:
            self._overlays = [o for o in self._overlays if o.end_frame > self._frames] + [box]

    @property
    def duration_ms(self) -> int:
        """Media rendered so far: 40 ms per AU (each render's audio tail is padded)."""
        return self._frames * FRAME_MS

    def render(self, pcm: bytes) -> list[bytes]:
        """H.264 Annex-B access units for ``pcm``: ``ceil(len(pcm) / 1280)`` of them."""
        with self._lock:
            if self._closed:
                raise RuntimeError("MediaSession is closed")
            if self._produced:
                raise RuntimeError("render() after produce()")
            count = -(-len(pcm) // AUDIO_BYTES_PER_FRAME)
            if count == 0:
                return []
            padded = bytes(pcm) + bytes(count * AUDIO_BYTES_PER_FRAME - len(pcm))
            aus, keys = self._render_video(padded, count)
            if self._out is not None:
                self._record(padded, aus, keys)
            self._frames += count
            if self.frame_bytes is not None:
                aus = [pad_access_unit(au, self.frame_bytes) for au in aus]
            return aus

    def _render_video(self, padded: bytes, count: int) -> tuple[list[bytes], list[bool]]:
        if self._h264_loop is not None:
            loop = self._h264_loop
            idx = [(self._frames + k) % len(loop.aus) for k in range(count)]
            return [loop.aus[j] for j in idx], [loop.keys[j] for j in idx]
        aus: list[bytes] = []
        keys: list[bool] = []
        step = AUDIO_BYTES_PER_FRAME
        for k in range(count):
            index = self._frames + k
            level = _mouth_level(pcm_rms(padded[k * step : (k + 1) * step]))
            frame = self._art.frame(level, index)
            for box in self._overlays:
                if box.first_frame <= index < box.end_frame:
                    _paint_overlay(frame, box, self.width, self.height)
            frame.pts = index
            packets = self._h264.encode(frame)
            if len(packets) != 1:  # pragma: no cover - guaranteed by zerolatency settings
                raise RuntimeError(f"libx264 returned {len(packets)} packets for one frame")
            aus.append(bytes(packets[0]))
            keys.append(bool(packets[0].is_keyframe))
            if self._vpx is not None and self._vpx_art is not None:
                vframe = self._vpx_art.frame(level, index)
                vframe.pts = index
                self._mux_vpx(self._vpx.encode(vframe))
        return aus, keys

    def _record(self, padded: bytes, aus: list[bytes], keys: list[bool]) -> None:
        count = len(aus)
        if self._vpx_loop is not None:
            loop = self._vpx_loop
            for k in range(count):
                index = self._frames + k
                j = index % len(loop.aus)
                self._mux_video(loop.aus[j], index, loop.keys[j], loop.packets[j])
        elif self._vpx is None:  # mp4/mov: the H.264 AUs themselves
            for k, au in enumerate(aus):
                self._mux_video(au, self._frames + k, keys[k], None)
        samples = len(padded) // 2
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        frame.pts = self._samples
        pcm = padded
        if _BIG_ENDIAN:
            swapped = array("h", padded)
            swapped.byteswap()
            pcm = swapped.tobytes()
        memoryview(frame.planes[0])[: len(pcm)] = pcm
        self._samples += samples
        self._out.mux(self._astream.encode(frame))

    def _mux_video(self, data: bytes, index: int, key: bool, template: Any) -> None:
        packet = av.Packet(data)
        if template is not None:  # VPX alpha lives in matroska BlockAdditional side data
            for sd in template.iter_sidedata():
                packet.set_sidedata(sd)
        packet.stream = self._vstream
        packet.time_base = _TB_VIDEO
        packet.pts = packet.dts = index
        packet.duration = 1
        packet.is_keyframe = key
        self._out.mux(packet)

    def _mux_vpx(self, packets: list[Any]) -> None:
        for p in packets:
            self._mux_video(bytes(p), int(p.pts), bool(p.is_keyframe), p)

    def produce(self) -> bytes:
        """Finish and return the recorded file (only with ``container``; once)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("MediaSession is closed")
            if self._produced:
                raise RuntimeError("produce() was already called")
            if self._out is None or self._buf is None:
                raise RuntimeError("produce() needs a container (mp4, mov or webm)")
            if self._frames == 0:
                raise RuntimeError("produce() before anything was rendered")
            if self._vpx is not None:
                self._mux_vpx(self._vpx.encode(None))
            self._out.mux(self._astream.encode(None))
            self._out.close()
            data = self._buf.getvalue()
            self._produced = True
            self._release()
            return data

    def close(self) -> None:
        """Free encoder/container resources; idempotent, fine after :meth:`produce`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._out is not None:
                # An unfinished recording is being discarded anyway.
                with contextlib.suppress(av.FFmpegError):
                    self._out.close()
            self._release()

    def _release(self) -> None:
        # PyAV frees codec contexts when the last reference goes.
        self._out = self._buf = self._vstream = self._astream = None
        self._h264 = self._vpx = None

    def __enter__(self) -> MediaSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _loop_alpha(loop: _Loop) -> bool:
    return any(
        sd.data_type == "matroska_block_additional" for sd in loop.packets[0].iter_sidedata()
    )
