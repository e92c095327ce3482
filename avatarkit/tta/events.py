"""Typed events a TTA stream delivers (server → client), as msgspec Structs.

Match on them::

    match event:
        case events.AudioChunk(pcm=pcm): ...
        case events.Subtitle(text=text, start_ms=start): ...   # SubtitleOn and SubtitleOff

:data:`Event` is the closed union of every event type, so a ``match`` that
handles each can end in ``case _: assert_never(event)`` and a type checker
proves it exhaustive.  :class:`EventBase` is their common base class.

Nothing the server sends is dropped: an event type or frame header this
version does not know arrives as :class:`Unknown`.

Media payloads (``pcm``, ``nal``, ``data``) are read-only ``memoryview``
objects into the received frame: no copy is made.  They work wherever bytes
are accepted by the buffer protocol (``file.write``, ``b"".join``, PyAV
packets, ``len``); call ``bytes(...)`` for an independent copy.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from avatarkit._redact import redact_url

__all__ = [
    "JSON",
    "AllSubtitles",
    "AudioChunk",
    "Event",
    "EventBase",
    "MediaChunk",
    "MediaEnd",
    "Status",
    "Subtitle",
    "SubtitleItem",
    "SubtitleOff",
    "SubtitleOn",
    "Unknown",
    "VideoChunk",
    "VideoUrl",
    "VoiceEnd",
    "VoiceStart",
]


#: A decoded JSON value, as the service sent it.
JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"


def _bytes_repr(name: str, data: memoryview) -> str:
    return f"{name}(<{len(data)} bytes>)"


class EventBase(msgspec.Struct, frozen=True):
    """Base class of every event (annotate with the closed union :data:`Event`)."""


# Media chunks are untracked by the garbage collector (gc=False): a real-time
# stream makes 50 a second, and they hold only a view of bytes, so no cycle.
class AudioChunk(EventBase, frozen=True, gc=False):
    """``|DAT|00|``: PCM audio (16 kHz mono s16le)."""

    pcm: memoryview

    def __repr__(self) -> str:
        return _bytes_repr("AudioChunk", self.pcm)


class VideoChunk(EventBase, frozen=True, gc=False):
    """``|DAT|01|``: H.264 video, Annex B (one access unit per frame)."""

    nal: memoryview

    def __repr__(self) -> str:
        return _bytes_repr("VideoChunk", self.nal)


class MediaChunk(EventBase, frozen=True, gc=False):
    """``|DAT|03|``: a piece of the produced video file (offline production)."""

    data: memoryview

    def __repr__(self) -> str:
        return _bytes_repr("MediaChunk", self.data)


class MediaEnd(EventBase, frozen=True):
    """``|DAT|04|``: the last piece of the produced video file."""

    data: memoryview

    def __repr__(self) -> str:
        return _bytes_repr("MediaEnd", self.data)


class VoiceStart(EventBase, frozen=True):
    """The avatar started speaking an utterance."""

    data: dict[str, JSON] = {}


class VoiceEnd(EventBase, frozen=True):
    """The avatar finished (or was interrupted in) an utterance."""

    data: dict[str, JSON] = {}


class Subtitle(EventBase, frozen=True):
    """A subtitle boundary; see :class:`SubtitleOn` and :class:`SubtitleOff`."""

    text: str = ""
    start_ms: int | None = None
    end_ms: int | None = None


class SubtitleOn(Subtitle, frozen=True):
    """A subtitle starts showing."""


class SubtitleOff(Subtitle, frozen=True):
    """A subtitle stops showing."""


class SubtitleItem(msgspec.Struct, frozen=True):
    """One line of :class:`AllSubtitles`."""

    text: str
    start_ms: int
    end_ms: int


class AllSubtitles(EventBase, frozen=True):
    """Every subtitle of the produced video with its timing."""

    subtitles: tuple[SubtitleItem, ...]


class VideoUrl(EventBase, frozen=True):
    """The produced video is available at ``url`` (``output_url`` sessions)."""

    url: str

    def __repr__(self) -> str:  # presigned URLs carry credentials in the query
        return f"VideoUrl(url={redact_url(self.url)!r})"


class Status(EventBase, frozen=True):
    """``|MSG|00|``: the service's reply to a control frame.

    ``type``: 0 open, 1 close, 2 chat, 3 interrupt, 4 video production.
    ``code``: 1000 ok, 1001 invalid parameter, 1002 busy, 1003 internal,
    1004 encoding, 1010 other.
    """

    code: int
    message: str = ""
    type: int = -1

    @property
    def ok(self) -> bool:
        from avatarkit.tta.frames import MsgCode  # frames imports this module

        return self.code == MsgCode.OK


class Unknown(EventBase, frozen=True):
    """A frame or event this version does not know, delivered as received.

    ``header`` is the frame header (``|MSG|02|``); ``event_type`` and ``data``
    are set for ``|DAT|02|`` events of an unknown ``type``.
    """

    header: str
    payload: bytes | str = b""
    event_type: str | None = None
    data: JSON = None

    def __repr__(self) -> str:
        size = len(self.payload)
        kind = f", event_type={self.event_type!r}" if self.event_type is not None else ""
        return f"Unknown(header={self.header!r}{kind}, <{size} payload>)"


#: Every event a stream delivers: a closed union, for exhaustive ``match``.
Event: TypeAlias = (
    AudioChunk
    | VideoChunk
    | MediaChunk
    | MediaEnd
    | VoiceStart
    | VoiceEnd
    | SubtitleOn
    | SubtitleOff
    | AllSubtitles
    | VideoUrl
    | Status
    | Unknown
)
