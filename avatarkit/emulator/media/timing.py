"""Text timing for the emulator's speech: one model shared by duration, subtitles and audio.

Timing model (shared by :func:`speech_duration_ms`, :func:`sentence_timings` and
:func:`avatarkit.emulator.media.speech.synth_speech`, so the three always agree to the
millisecond):

* a CJK character (Han, kana, Hangul) is one 220 ms syllable;
* any other letter or digit adds 65 ms to the word it belongs to;
* a run of punctuation pauses 150 ms if it holds sentence punctuation (``。！？!?.；;``),
  else 80 ms (commas ``,，、``); other characters take no time;
* non-blank text lasts at least 200 ms (silence is appended); blank text lasts 0 ms.
"""

from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AUDIO_BYTES_PER_FRAME",
    "FPS",
    "FRAME_MS",
    "SAMPLE_RATE",
    "plain_text",
    "sentence_timings",
    "speech_duration_ms",
    "split_sentences",
]

SAMPLE_RATE: Final = 16_000  # Hz, mono, s16le
FPS: Final = 25
FRAME_MS: Final = 40  # one video frame per 40 ms of audio
AUDIO_BYTES_PER_FRAME: Final = 1280  # 40 ms of PCM

_BYTES_PER_MS: Final = SAMPLE_RATE * 2 // 1000  # 32
_BIG_ENDIAN: Final = sys.byteorder == "big"

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
