"""Subtitle cues from TTA events, rendered as SubRip (``.srt``) or WebVTT (``.vtt``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from avatarkit.errors import ValidationError
from avatarkit.media._atomic import Partial, disk_errors
from avatarkit.tta.events import AllSubtitles, Event, SubtitleItem, SubtitleOff, SubtitleOn

__all__ = ["SUBTITLE_SUFFIXES", "SubtitleTrack"]

SUBTITLE_SUFFIXES: Final = (".srt", ".vtt")


def _timestamp(ms: int, sep: str) -> str:
    ms = max(0, ms)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{millis:03d}"


def _clean(text: str) -> str:
    # A blank line would end the cue early in both formats.
    return "\n".join(s for line in text.splitlines() if (s := line.strip()))


class SubtitleTrack:
    """Subtitle cues collected from events; :meth:`to_srt`, :meth:`to_vtt`, :meth:`write`.

    Feed it every event (:meth:`add` ignores the ones that are not subtitles). Cues come
    from ``SubtitleOn``/``SubtitleOff`` pairs, or from ``AllSubtitles``, which replaces
    them when it arrives (it is the service's final word on the timing). Times are the
    events' own ``start_ms``/``end_ms`` (the stream's media timeline); when an event lacks
    them, ``now_ms`` given to :meth:`add` (the caller's media clock) stands in.
    ``items`` seeds the track with cues already known (``SubtitleItem`` objects, times in ms).
    Everything stays in memory (a few bytes per line) until :meth:`write`.
    """

    def __init__(self, items: Iterable[SubtitleItem] = ()) -> None:
        self._paired: list[SubtitleItem] = list(items)
        self._all: tuple[SubtitleItem, ...] | None = None
        self._open: tuple[str, int | None, int | None] | None = None  # (text, start, end)

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> SubtitleTrack:
        """A track built from a sequence of events (e.g. ``await utterance.collect()``).

        Each event goes through :meth:`add`, with no ``now_ms``. Raises nothing.
        """
        track = cls()
        for event in events:
            track.add(event)
        return track

    def add(self, event: Event, *, now_ms: int | None = None) -> None:
        """Take a ``SubtitleOn``, ``SubtitleOff`` or ``AllSubtitles``; ignore anything else.

        An ``On`` opens a cue (closing a previous one still open at its start), an ``Off``
        closes it; ``AllSubtitles`` replaces the paired cues. ``now_ms`` stands in for a
        time the event lacks; a cue with no time at all is dropped. Raises nothing.
        """
        if isinstance(event, AllSubtitles):
            self._all = tuple(event.subtitles)
        elif isinstance(event, SubtitleOn):
            start = event.start_ms if event.start_ms is not None else now_ms
            if self._open is not None:  # no Off came: the new line replaces the old one
                self._close_open(start)
            self._open = (event.text, start, event.end_ms)
        elif isinstance(event, SubtitleOff):
            end = event.end_ms if event.end_ms is not None else now_ms
            if self._open is not None:
                self._close_open(end)
            elif event.start_ms is not None and end is not None:  # an Off without its On
                self._append(event.text, event.start_ms, end)

    def _close_open(self, end: int | None) -> None:
        assert self._open is not None
        text, start, planned_end = self._open
        self._open = None
        stop = end if end is not None else planned_end
        if start is not None and stop is not None:
            self._append(text, start, stop)

    def _append(self, text: str, start: int, end: int) -> None:
        self._paired.append(SubtitleItem(text=text, start_ms=start, end_ms=max(start, end)))

    @property
    def cues(self) -> tuple[SubtitleItem, ...]:
        """The cues to render, by start time (a line still showing counts until its end)."""
        items = list(self._all) if self._all is not None else list(self._paired)
        if self._all is None and self._open is not None:
            text, start, end = self._open
            if start is not None and end is not None:
                items.append(SubtitleItem(text=text, start_ms=start, end_ms=max(start, end)))
        cues = [
            SubtitleItem(text=_clean(i.text), start_ms=i.start_ms, end_ms=max(i.start_ms, i.end_ms))
            for i in items
        ]
        return tuple(sorted((c for c in cues if c.text), key=lambda c: (c.start_ms, c.end_ms)))

    def __len__(self) -> int:
        return len(self.cues)

    def to_srt(self) -> str:
        """SubRip text: 1-based cues, ``HH:MM:SS,mmm`` times, a blank line between cues.

        Blank lines inside a cue's text are removed (they would end it early); an empty
        track gives ``""``. Raises nothing.
        """
        blocks = []
        for n, c in enumerate(self.cues, 1):
            start, end = _timestamp(c.start_ms, ","), _timestamp(c.end_ms, ",")
            blocks.append(f"{n}\n{start} --> {end}\n{c.text}\n")
        return "\n".join(blocks)

    def to_vtt(self) -> str:
        """WebVTT text: the ``WEBVTT`` header, then ``HH:MM:SS.mmm`` cues.

        ``&``, ``<`` and ``>`` in the text are escaped (WebVTT cue text is markup); blank
        lines inside a cue are removed. Raises nothing.
        """
        blocks = ["WEBVTT\n"]
        for c in self.cues:
            # Cue text is HTML-like in WebVTT: escape the characters that start markup.
            text = c.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            start, end = _timestamp(c.start_ms, "."), _timestamp(c.end_ms, ".")
            blocks.append(f"{start} --> {end}\n{text}\n")
        return "\n".join(blocks)

    def render(self, path: str | os.PathLike[str]) -> str:
        """The text for ``path``'s format, chosen by its suffix (``.srt`` or ``.vtt``).

        Nothing is written; ``path`` only names the format.

        Raises:
            ValidationError: the suffix is neither ``.srt`` nor ``.vtt`` (any case).
        """
        suffix = Path(path).suffix.lower()
        if suffix == ".srt":
            return self.to_srt()
        if suffix == ".vtt":
            return self.to_vtt()
        raise ValidationError("subtitles", str(path), "the file name must end in .srt or .vtt")

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the track to ``path`` (UTF-8; atomically: a temp file renamed at the end).

        The text (:meth:`render`) goes to ``.{name}.partial`` beside ``path``, which is then
        renamed over ``path``; returns ``path``. Lines end in LF.

        Raises:
            ValidationError: the suffix is neither ``.srt`` nor ``.vtt``; nothing is written.
            ValidationError: writing or renaming failed (a missing directory, a full disk); the
                temp file is removed.
        """
        text = self.render(path)
        partial = Partial(path)
        with disk_errors(path):
            try:
                with open(partial.temp, "w", encoding="utf-8", newline="\n") as f:
                    f.write(text)
                return partial.commit()
            except BaseException:
                partial.discard()
                raise
