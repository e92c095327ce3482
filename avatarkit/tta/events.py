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
    """The audio: 16-bit little-endian mono samples at 16 kHz (2 bytes per sample), a
    read-only view of the received frame without its 8-byte header."""

    def __repr__(self) -> str:
        return _bytes_repr("AudioChunk", self.pcm)


class VideoChunk(EventBase, frozen=True, gc=False):
    """``|DAT|01|``: H.264 video, Annex B (one access unit per frame)."""

    nal: memoryview
    """One H.264 access unit in Annex B form (start codes included), a read-only view of
    the received frame without its 8-byte header."""

    def __repr__(self) -> str:
        return _bytes_repr("VideoChunk", self.nal)


class MediaChunk(EventBase, frozen=True, gc=False):
    """``|DAT|03|``: a piece of the produced video file (offline production)."""

    data: memoryview
    """The piece's bytes, in order, of the file in the session's ``codec`` (mp4, webm or
    mov); a read-only view of the received frame."""

    def __repr__(self) -> str:
        return _bytes_repr("MediaChunk", self.data)


class MediaEnd(EventBase, frozen=True):
    """``|DAT|04|``: the last piece of the produced video file."""

    data: memoryview
    """The file's last bytes (may be empty); a read-only view of the received frame."""

    def __repr__(self) -> str:
        return _bytes_repr("MediaEnd", self.data)


class VoiceStart(EventBase, frozen=True):
    """The avatar started speaking an utterance (``|DAT|02|`` event ``voice_start``)."""

    data: dict[str, JSON] = {}
    """The event's ``data`` object as the service sent it (doc 001 names no keys); ``{}``
    when absent."""


class VoiceEnd(EventBase, frozen=True):
    """The avatar finished (or was interrupted in) an utterance (event ``voice_end``)."""

    data: dict[str, JSON] = {}
    """The event's ``data`` object as the service sent it (doc 001 names no keys); ``{}``
    when absent."""


class Subtitle(EventBase, frozen=True):
    """A subtitle boundary; see :class:`SubtitleOn` and :class:`SubtitleOff`."""

    text: str = ""
    """The subtitle's text; ``""`` when the event carries none."""
    start_ms: int | None = None
    """When it starts, in ms on the stream's media timeline (``start_time_ms``); ``None``
    when the event carries no time."""
    end_ms: int | None = None
    """When it ends, in ms on the stream's media timeline (``end_time_ms``); ``None``
    when the event carries no time."""


class SubtitleOn(Subtitle, frozen=True):
    """A subtitle starts showing (event ``subtitle_on``, ``subtitle_control`` sessions)."""


class SubtitleOff(Subtitle, frozen=True):
    """A subtitle stops showing (event ``subtitle_off``, ``subtitle_control`` sessions)."""


class SubtitleItem(msgspec.Struct, frozen=True):
    """One line of :class:`AllSubtitles`."""

    text: str
    """The line's text."""
    start_ms: int
    """When it starts, in ms on the media timeline (``start_time_ms``)."""
    end_ms: int
    """When it ends, in ms on the media timeline (``end_time_ms``); in audio mode the end
    is set by the length of the audio received (doc 001 §2.2.4.3)."""


class AllSubtitles(EventBase, frozen=True):
    """Every subtitle of the produced video with its timing (event ``all_subtitles``).

    Sent in offline production with ``video.subtitle_control`` (doc 001 §2.2.4.3).
    """

    subtitles: tuple[SubtitleItem, ...]
    """The lines in the order sent (``data.subtitles``)."""


class VideoUrl(EventBase, frozen=True):
    """The produced video is available at ``url`` (``output_url`` sessions)."""

    url: str
    """Where to download the video (``data.video_url``); often presigned, so its query is a
    credential: ``repr`` redacts it."""

    def __repr__(self) -> str:  # presigned URLs carry credentials in the query
        return f"VideoUrl(url={redact_url(self.url)!r})"


class Status(EventBase, frozen=True):
    """``|MSG|00|``: the service's reply to a control frame.

    ``type``: 0 open, 1 close, 2 chat, 3 interrupt, 4 video production.
    ``code``: 1000 ok, 1001 invalid parameter, 1002 busy, 1003 internal,
    1004 encoding, 1010 other.
    """

    code: int
    """The result code: a :class:`~avatarkit.tta.frames.MsgCode` value, or another int as
    sent."""
    message: str = ""
    """The service's description of the result; ``""`` when absent."""
    type: int = -1
    """Which frame it answers (4: the production callback), a
    :class:`~avatarkit.tta.frames.MsgType` value or another int as sent; ``-1`` when the
    reply has no ``type``."""

    @property
    def ok(self) -> bool:
        """True when :attr:`code` is 1000 (:attr:`~avatarkit.tta.frames.MsgCode.OK`)."""
        from avatarkit.tta.frames import MsgCode  # frames imports this module

        return self.code == MsgCode.OK


class Unknown(EventBase, frozen=True):
    """A frame or event this version does not know, delivered as received.

    ``header`` is the frame header (``|MSG|02|``); ``event_type`` and ``data``
    are set for ``|DAT|02|`` events of an unknown ``type``.
    """

    header: str
    """The 8-character frame header, e.g. ``|MSG|02|`` (``|DAT|02|`` for an unknown event)."""
    payload: bytes | str = b""
    """Everything after the header as received: bytes for a binary frame, str for a text
    frame."""
    event_type: str | None = None
    """The event's ``callback_info.type`` for a ``|DAT|02|`` event; else ``None``."""
    data: JSON = None
    """The event's decoded ``callback_info.data`` for a ``|DAT|02|`` event (``{}`` when it
    has none); ``None`` for any other frame."""

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
