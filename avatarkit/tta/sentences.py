"""Cutting streamed text (an LLM's tokens) into sentences, as they complete.  Pure.

::

    splitter = SentenceSplitter(max_chars=80)
    for fragment in ["今天天气", "真不错。明天", "呢？"]:
        for sentence in splitter.feed(fragment):
            ...  # "今天天气真不错。", then "明天呢？"
    rest = splitter.flush()  # what is left when the stream ends

A sentence ends at Chinese ``。！？；…`` (and their fullwidth/ASCII forms ``！？；``),
at Latin ``.!?;`` followed by whitespace, or at a line break.  Closing quotes and
brackets right after the mark stay with the sentence.  Run-on text is cut once it
reaches ``max_chars``: at its last comma, colon or space if there is one in the
second half, else right there.

The cuts depend only on the text, never on how it was split into fragments: the
same text fed in any pieces gives the same sentences, and joined they are the text.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SentenceSplitter"]

#: Marks that end a sentence wherever they are (CJK text has no spaces to wait for).
_HARD_ENDS: Final = frozenset("。！？；…!?;\n")
#: Marks that end one only when whitespace follows ("3.14", "e.g." do not end one).
_SOFT_ENDS: Final = frozenset(".")
#: Closing quotes and brackets that stay with the sentence they close.
_CLOSERS: Final = frozenset("\"'”’」』）)】》〉]")
#: Where run-on text is best cut.
_PAUSES: Final = frozenset("，、,：:—– \t")


class SentenceSplitter:
    """Collects text fragments and hands out each sentence once it is complete.

    Raises:
        ValidationError: ``max_chars`` is not an integer of at least 2.
    """

    __slots__ = ("_buffer", "_max", "_scan")

    def __init__(self, *, max_chars: int = 80) -> None:
        from avatarkit.errors import ValidationError

        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 2:
            raise ValidationError("max_chars", max_chars, "must be an integer >= 2")
        self._max = max_chars
        self._buffer = ""
        self._scan = 0  # characters of _buffer already known not to end a sentence

    def feed(self, fragment: str) -> list[str]:
        """Add ``fragment``; the sentences it completes, in order (often none).

        Raises nothing: any string is taken.
        """
        self._buffer += fragment
        out: list[str] = []
        while (cut := self._next_cut()) is not None:
            out.append(self._buffer[:cut])
            self._buffer = self._buffer[cut:]
            self._scan = 0
        return out

    def flush(self) -> str:
        """What is left (the last sentence, unfinished), and a fresh start.

        Raises nothing.
        """
        rest, self._buffer, self._scan = self._buffer, "", 0
        return rest

    def _next_cut(self) -> int | None:
        """Where the first complete sentence of the buffer ends, or None (need more)."""
        text, limit = self._buffer, self._max
        i = self._scan
        while i < len(text) and i < limit:
            ch = text[i]
            if ch in _HARD_ENDS or (
                ch in _SOFT_ENDS and i + 1 < len(text) and text[i + 1].isspace()
            ):
                end = i + 1
                while end < len(text) and (text[end] in _CLOSERS or text[end] in _HARD_ENDS):
                    end += 1  # "？！", "……", "。”": one end
                if end == len(text):
                    self._scan = i
                    return None  # a closer (or more marks) may still come
                return end
            if ch in _SOFT_ENDS and i + 1 == len(text):
                self._scan = i
                return None  # "." at the end: a space (an end) or a digit (not) may follow
            i += 1
        self._scan = i
        if len(text) < limit:
            return None
        # Run-on text: cut at the last pause in its second half, else at the limit.
        for j in range(limit - 1, limit // 2 - 1, -1):
            if text[j] in _PAUSES:
                return j + 1
        return limit
