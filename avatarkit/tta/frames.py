"""Sans-I/O codec for TTA frames: no sockets, no asyncio.

Every frame is an 8-character ASCII header ``|XXX|NN|`` and a payload; the
header may arrive in a text or a binary WebSocket frame, whatever its kind.

Client → server frames are built by the ``encode_*`` functions on the left
of SPEC §2.1; server → client frames (§2.2) are decoded by :func:`decode`
into :mod:`avatarkit.tta.events`.  The emulator uses the mirror pair
(:func:`decode_client` and the ``server_*`` encoders), so both directions
share one definition of the wire.

Hot path: a binary ``|DAT|00|``/``|DAT|01|`` frame costs one dict lookup on
its header and a zero-copy memoryview of its payload; JSON payloads are
decoded with module-level msgspec decoders, straight from a memoryview.

Failures: the decoders raise only :class:`~avatarkit.errors.ProtocolError` for
what a peer sent (:class:`~avatarkit.errors.ValidationError` for an argument of
the wrong type), the ``encode_*`` functions only ``ValidationError``.  JSON
nested deeper than msgspec's recursion limit (~1000 levels) and ``str`` frames
holding lone surrogates (which no WebSocket text frame can carry) are bad input.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from xml.sax.saxutils import quoteattr

import msgspec

from avatarkit._schema_errors import (
    JSON_DECODE_ERRORS,
    decode_failure,
    reportable,
    unicode_problem,
)
from avatarkit.errors import ProtocolError, ValidationError
from avatarkit.tta import events as ev

__all__ = [
    "CHAT",
    "HEADER_LEN",
    "MIN_AUDIO_FRAME_BYTES",
    "AudioData",
    "Chat",
    "ClientFrame",
    "CloseSession",
    "Interrupt",
    "MsgCode",
    "MsgType",
    "OpenSession",
    "UnknownFrame",
    "decode",
    "decode_client",
    "decode_owned",
    "encode_audio",
    "encode_audio_url",
    "encode_bitrate",
    "encode_chat",
    "encode_close",
    "encode_interrupt",
    "encode_open",
    "encode_styled_chat",
    "server_audio",
    "server_event",
    "server_media",
    "server_status",
    "server_video",
]

#: Length of every frame's header ``|XXX|NN|``: 8 ASCII characters (bytes), before the payload.
HEADER_LEN: Final = 8
#: 1 s of 16 kHz mono s16le: the least a ``|CTL|08|`` frame may carry.
MIN_AUDIO_FRAME_BYTES: Final = 32_000
#: Inclusive ``(low, high)`` bounds of ``{"bitrate": kbps}``, in kbps (doc 001 §2.2.3).
BITRATE_RANGE: Final = (400, 5000)

#: ``|CTL|00|``: open the session; the config JSON follows.
OPEN = "|CTL|00|"
#: ``|CTL|01|``: close the session (no payload).
CLOSE = "|CTL|01|"
#: ``|CTL|02|``: the chat header, followed by text, SSML, an ``<audio/>`` tag or a JSON object
#: (doc 001 §2.1, §2.2.3, §2.2.4.1).
CHAT = "|CTL|02|"
#: ``|CTL|03|``: interrupt the current utterance (text mode only).
INTERRUPT = "|CTL|03|"
#: ``|CTL|08|``: a streaming-audio frame of at least 1 s of 16 kHz mono s16le PCM.
AUDIO = "|CTL|08|"
#: ``|CTL|09|``: the last streaming-audio frame (may be shorter than 1 s).
AUDIO_LAST = "|CTL|09|"
#: ``|DAT|00|``: PCM audio from the service.
DAT_AUDIO = "|DAT|00|"
#: ``|DAT|01|``: H.264 video (Annex B) from the service.
DAT_VIDEO = "|DAT|01|"
#: ``|DAT|02|``: a JSON event ``{"callback_info": {"type": …, "data": {…}}}``.
DAT_EVENT = "|DAT|02|"
#: ``|DAT|03|``: a piece of the offline-produced media file.
DAT_MEDIA = "|DAT|03|"
#: ``|DAT|04|``: the last piece of the offline-produced media file.
DAT_MEDIA_END = "|DAT|04|"
#: ``|MSG|00|``: a JSON status ``{"code", "message", "type"}`` (doc 001 §2.2.1).
MSG = "|MSG|00|"


class MsgType(enum.IntEnum):
    """``type`` of a ``|MSG|00|`` reply: which control frame it answers (doc 001 §2.2.1.2).

    A reply without a ``type`` decodes as ``-1`` (:attr:`~avatarkit.tta.events.Status.type`);
    the stream takes such a reply, or one of type :attr:`OPEN`, as the answer to its open.
    """

    OPEN = 0
    """Reply to ``|CTL|00|``: the status of opening the session (joining the room)."""
    CLOSE = 1
    """Reply to ``|CTL|01|``: the status of closing the session."""
    CHAT = 2
    """Reply to a ``|CTL|02|`` chat; an error code here refuses that utterance."""
    INTERRUPT = 3
    """Reply to a ``|CTL|03|`` interrupt."""
    PRODUCTION = 4
    """The offline video-production callback (after the close, with ``codec`` set)."""


class MsgCode(enum.IntEnum):
    """``code`` of a ``|MSG|00|`` reply (doc 001 §2.2.1.1).  Unknown codes stay plain ints.

    The doc's demo names 1004 ``OTHER_ERR_CODE``; the table's meaning is kept
    (SPEC §2.2).  A reply to the open, a chat, the close or the production with any
    other code, known or not, is raised by the stream as a
    :class:`~avatarkit.errors.ServiceError` carrying that code.
    """

    OK = 1000
    """Success (处理正确)."""
    INVALID_PARAMETER = 1001
    """Invalid parameter (参数无效): e.g. a config field or a role the service refuses."""
    BUSY = 1002
    """Server busy (服务器忙): the only retryable code; the ServiceError says so, and an
    open answered with it is retried with backoff."""
    INTERNAL = 1003
    """Internal error (内部错误) of the service."""
    ENCODING = 1004
    """Encoding error (编码错误); the doc's demo calls it ``OTHER_ERR_CODE``."""
    OTHER = 1010
    """Any other error (其它错误)."""


_HEADER_RE: Final = re.compile(r"\|[A-Z]{3}\|[0-9]{2}\|")
_event_encoder: Final = msgspec.json.Encoder()


# --------------------------------------------------------------------------
# client → server


def _check_text(field: str, text: str) -> None:
    """A lone surrogate would fail only later, in the WebSocket's UTF-8 encoder."""
    problem = unicode_problem(text)
    if problem is not None:
        raise ValidationError(field, text, problem)


def encode_open(config_json: bytes | str) -> str:
    """``|CTL|00|`` + the session config JSON (see :mod:`avatarkit.tta.config`).

    The JSON is sent as given, not parsed or checked: build it with
    :func:`~avatarkit.tta.config.encode_config`.

    Raises:
        ValidationError: ``config_json`` is neither bytes nor str, bytes that are not
            UTF-8, or a str holding a lone surrogate (no excerpt: it may hold the rtc token).
    """
    if isinstance(config_json, bytes):
        try:
            text = config_json.decode()
        except UnicodeDecodeError as exc:
            # No excerpt: the config may hold the rtc token.
            raise ValidationError(
                "config_json", f"<{len(config_json)} bytes>", f"must be UTF-8 ({exc.reason})"
            ) from None
    elif isinstance(config_json, str):
        text = config_json
        problem = unicode_problem(text)
        if problem is not None:
            raise ValidationError("config_json", f"<{len(text)} chars>", problem)
    else:
        raise ValidationError("config_json", type(config_json).__name__, "must be bytes or str")
    return OPEN + text


def encode_close() -> str:
    """``|CTL|01|``: close the session; with ``codec`` set the service then produces the video.

    Raises nothing.
    """
    return CLOSE


def encode_chat(text: str) -> str:
    """``|CTL|02|`` + plain text, SSML, an ``<audio/>`` tag or a JSON object.

    Sent as given: SSML is not checked here (see :func:`avatarkit.tta.ssml.validate`).

    Raises:
        ValidationError: ``text`` is not a str, is empty or only whitespace, or holds a
            lone surrogate.
    """
    if not isinstance(text, str):
        raise ValidationError("text", reportable(text), "must be a string")
    if not text.strip():
        raise ValidationError("text", text, "must not be empty")
    _check_text("text", text)
    return CHAT + text


def encode_bitrate(kbps: int) -> str:
    """``|CTL|02|{"bitrate": kbps}``: change the stream's bitrate (doc 001 §2.2.3).

    Raises:
        ValidationError: ``kbps`` is not an int (a bool is refused) or not in 400..5000.
    """
    low, high = BITRATE_RANGE
    if isinstance(kbps, bool) or not isinstance(kbps, int) or not low <= kbps <= high:
        raise ValidationError(
            "bitrate", reportable(kbps), f"must be an integer from {low} to {high} kbps"
        )
    return f'{CHAT}{{"bitrate":{kbps}}}'


#: ``format`` values :func:`encode_audio_url` accepts for ``<audio url=… format=…/>``.
AUDIO_URL_FORMATS: Final = ("pcm", "wav", "mp3", "aac", "ogg", "m4a")


def encode_audio_url(
    url: str, *, format: str, sample_rate: int | None = None, channels: int | None = None
) -> str:
    """``|CTL|02|<audio url=… format=… sample_rate=… ac=…/>`` (input_mode audio).

    The avatar speaks the audio file at ``url`` (doc 001 §2.1).  ``sample_rate`` (Hz) and
    ``channels`` (sent as ``ac``) are left out when ``None``.  Attribute values are quoted
    and escaped.

    Raises:
        ValidationError: ``url`` is not an http(s) URL or holds a lone surrogate;
            ``format`` is not one of :data:`AUDIO_URL_FORMATS`; ``sample_rate`` is not a
            positive int; ``channels`` is not 1 or 2.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("url", reportable(url), "must be an http:// or https:// URL")
    _check_text("url", url)
    if not isinstance(format, str) or format not in AUDIO_URL_FORMATS:
        raise ValidationError(
            "format", reportable(format), f"must be one of {', '.join(AUDIO_URL_FORMATS)}"
        )
    attrs = [f"url={quoteattr(url)}", f"format={quoteattr(format)}"]
    if sample_rate is not None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValidationError(
                "sample_rate", reportable(sample_rate), "must be a positive integer (Hz)"
            )
        attrs.append(f'sample_rate="{sample_rate}"')
    if channels is not None:
        if isinstance(channels, bool) or not isinstance(channels, int) or channels not in (1, 2):
            raise ValidationError("channels", reportable(channels), "must be 1 or 2")
        attrs.append(f'ac="{channels}"')
    return f"{CHAT}<audio {' '.join(attrs)}/>"


def encode_styled_chat(text: str, subtitle: Mapping[str, Any]) -> str:
    """``|CTL|02|{"text": …, "subtitle": {…}}``: speech with subtitle styling.

    Doc 001 §2.2.4.1 (text mode, offline production); ``subtitle`` is sent as given:
    build and check it with :func:`avatarkit.tta.ssml.subtitle`.

    Raises:
        ValidationError: ``text`` is not a non-empty str or holds a lone surrogate;
            ``subtitle`` is not a mapping, or cannot be encoded as JSON (an unsupported
            object, a lone surrogate, a cycle or nesting too deep).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text", reportable(text), "must be a non-empty string")
    _check_text("text", text)
    if not isinstance(subtitle, Mapping):
        raise ValidationError("subtitle", reportable(subtitle), "must be an object")
    try:
        body = _event_encoder.encode({"text": text, "subtitle": dict(subtitle)})
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        # Unencodable values (objects, surrogates, cycles): see ssml.subtitle for the rules.
        why = decode_failure(exc)
        raise ValidationError(
            "subtitle", reportable(subtitle), f"cannot be encoded as JSON: {why}"
        ) from None
    return CHAT + body.decode()


def encode_interrupt() -> str:
    """``|CTL|03|``: interrupt the current utterance (text mode only, doc 001 §2.1).

    Raises nothing.
    """
    return INTERRUPT


def encode_audio(pcm: bytes | bytearray | memoryview, *, last: bool = False) -> bytes:
    """``|CTL|08|`` (or the ``|CTL|09|`` tail) + 16 kHz mono s16le PCM.

    Every non-final frame must carry at least one second (32,000 bytes,
    :data:`MIN_AUDIO_FRAME_BYTES`); the ``last`` frame may be shorter.  After it the
    avatar goes silent-idle.  The payload is copied into the returned frame.

    Raises:
        ValidationError: ``pcm`` is not bytes, bytearray or memoryview, is a released
            memoryview, has an odd length, or (when not ``last``) holds under 32,000 bytes.
    """
    if not isinstance(pcm, bytes | bytearray | memoryview):
        raise ValidationError("pcm", type(pcm).__name__, "must be bytes, bytearray or memoryview")
    try:
        # nbytes, not len: a memoryview of int16 items has half as many items as bytes.
        size = pcm.nbytes if isinstance(pcm, memoryview) else len(pcm)
    except ValueError:  # a released memoryview
        raise ValidationError("pcm", "memoryview", "must not be released") from None
    if size % 2:
        raise ValidationError("pcm", f"<{size} bytes>", "s16le PCM must have an even length")
    if not last and size < MIN_AUDIO_FRAME_BYTES:
        raise ValidationError(
            "pcm", f"<{size} bytes>", "a |CTL|08| frame must carry at least 1 s (32000 bytes)"
        )
    return (AUDIO_LAST if last else AUDIO).encode() + bytes(pcm)


# --------------------------------------------------------------------------
# server → client: decoding


class _CallbackInfo(msgspec.Struct):
    type: str
    data: msgspec.Raw = msgspec.Raw(b"{}")


class _Callback(msgspec.Struct):
    callback_info: _CallbackInfo


class _SubtitleData(msgspec.Struct):
    text: str = ""
    start_time_ms: int | None = None
    end_time_ms: int | None = None


class _SubtitleLine(msgspec.Struct):
    text: str
    start_time_ms: int
    end_time_ms: int


class _AllSubtitlesData(msgspec.Struct):
    subtitles: list[_SubtitleLine]


class _VideoUrlData(msgspec.Struct):
    video_url: str


class _Status(msgspec.Struct):
    code: int
    message: str = ""
    type: int = -1


_callback_decoder: Final = msgspec.json.Decoder(_Callback)
_status_decoder: Final = msgspec.json.Decoder(_Status)
_subtitle_decoder: Final = msgspec.json.Decoder(_SubtitleData)
_all_subtitles_decoder: Final = msgspec.json.Decoder(_AllSubtitlesData)
_video_url_decoder: Final = msgspec.json.Decoder(_VideoUrlData)
_dict_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_any_decoder: Final = msgspec.json.Decoder()

_Payload = bytes | memoryview | str


def _json_error(what: str, payload: _Payload, exc: Exception) -> ProtocolError:
    data = payload if isinstance(payload, str) else bytes(payload[:48])
    return ProtocolError(f"bad {what} JSON ({decode_failure(exc)})", data)


def _subtitle(
    cls: type[ev.SubtitleOn] | type[ev.SubtitleOff], raw: msgspec.Raw
) -> ev.SubtitleOn | ev.SubtitleOff:
    sub = _subtitle_decoder.decode(raw)
    return cls(sub.text, sub.start_time_ms, sub.end_time_ms)


def _all_subtitles(raw: msgspec.Raw) -> ev.AllSubtitles:
    lines = _all_subtitles_decoder.decode(raw).subtitles
    return ev.AllSubtitles(
        tuple(ev.SubtitleItem(s.text, s.start_time_ms, s.end_time_ms) for s in lines)
    )


_EVENT_BUILDERS: Final[dict[str, Callable[[msgspec.Raw], ev.Event]]] = {
    "voice_start": lambda raw: ev.VoiceStart(_dict_decoder.decode(raw)),
    "voice_end": lambda raw: ev.VoiceEnd(_dict_decoder.decode(raw)),
    "subtitle_on": lambda raw: _subtitle(ev.SubtitleOn, raw),
    "subtitle_off": lambda raw: _subtitle(ev.SubtitleOff, raw),
    "all_subtitles": _all_subtitles,
    "video_url": lambda raw: ev.VideoUrl(_video_url_decoder.decode(raw).video_url),
}


def _decode_event(payload: _Payload) -> ev.Event:
    try:
        info = _callback_decoder.decode(payload).callback_info
    except JSON_DECODE_ERRORS as exc:
        raise _json_error("event", payload, exc) from None
    build = _EVENT_BUILDERS.get(info.type)
    try:
        if build is None:
            original = payload if isinstance(payload, str) else bytes(payload)
            return ev.Unknown(DAT_EVENT, original, info.type, _any_decoder.decode(info.data))
        return build(info.data)
    except JSON_DECODE_ERRORS as exc:
        raise _json_error(f"{info.type!r} event", payload, exc) from None


def _decode_status(payload: _Payload) -> ev.Status:
    try:
        msg = _status_decoder.decode(payload)
    except JSON_DECODE_ERRORS as exc:
        raise _json_error("MSG", payload, exc) from None
    return ev.Status(msg.code, msg.message, msg.type)


def _as_bytes(payload: _Payload) -> bytes:
    if isinstance(payload, str):
        return payload.encode()
    return bytes(payload)


# Binary frames: the payload is a read-only memoryview into the received
# frame, so media is never copied here (a 40 KB copy per frame costs more than
# everything else the SDK does with it).
_BINARY: Final[dict[bytes, Callable[[memoryview], ev.Event]]] = {
    DAT_AUDIO.encode(): ev.AudioChunk,
    DAT_VIDEO.encode(): ev.VideoChunk,
    DAT_EVENT.encode(): _decode_event,
    DAT_MEDIA.encode(): ev.MediaChunk,
    DAT_MEDIA_END.encode(): ev.MediaEnd,
    MSG.encode(): _decode_status,
}
_TEXT: Final[dict[str, Callable[[str], ev.Event]]] = {
    DAT_AUDIO: lambda p: ev.AudioChunk(memoryview(p.encode())),
    DAT_VIDEO: lambda p: ev.VideoChunk(memoryview(p.encode())),
    DAT_EVENT: _decode_event,
    DAT_MEDIA: lambda p: ev.MediaChunk(memoryview(p.encode())),
    DAT_MEDIA_END: lambda p: ev.MediaEnd(memoryview(p.encode())),
    MSG: _decode_status,
}


def _check_header(frame: str | bytes) -> str:
    """The frame's header as text, or :class:`ProtocolError`."""
    if len(frame) < HEADER_LEN:
        raise ProtocolError("frame shorter than its 8-byte header", frame)
    head = frame[:HEADER_LEN]
    text = head.decode("latin-1") if isinstance(head, bytes) else head
    if _HEADER_RE.fullmatch(text) is None:
        raise ProtocolError("bad frame header (expected |XXX|NN|)", frame)
    return text


def _as_frame(frame: object) -> bytes:
    """A frame that is neither str nor bytes, as bytes; else ValidationError (not wire input)."""
    if isinstance(frame, bytearray | memoryview):
        try:
            return bytes(frame)
        except ValueError:  # a released memoryview
            raise ValidationError("frame", "memoryview", "must not be released") from None
    raise ValidationError(
        "frame", type(frame).__name__, "must be str, bytes, bytearray or memoryview"
    )


def decode(frame: str | bytes | bytearray | memoryview) -> ev.Event:
    """Decode one server frame into an event.

    Any header is accepted in either a text or a binary frame.  Binary media payloads
    are read-only memoryviews of ``frame`` (a ``bytearray`` or ``memoryview`` is copied
    first); a text frame's media payload is its UTF-8 encoding.  Unknown headers and
    event types become :class:`~avatarkit.tta.events.Unknown`.

    Raises:
        ProtocolError: a frame shorter than its header, a malformed header, a bad JSON
            payload (also one nested too deeply, or missing a required key) or a ``str``
            frame that is not valid Unicode.
        ValidationError: ``frame`` is not str, bytes, bytearray or memoryview, or is a
            released memoryview.
    """
    if isinstance(frame, str):
        text_handler = _TEXT.get(frame[:HEADER_LEN])
        if text_handler is not None:
            try:
                return text_handler(frame[HEADER_LEN:])
            except UnicodeEncodeError as exc:  # only a str from outside a WebSocket can do this
                raise ProtocolError(f"text frame payload is {decode_failure(exc)}", frame) from None
        header = _check_header(frame)
        return ev.Unknown(header, frame[HEADER_LEN:])
    if not isinstance(frame, bytes):
        frame = _as_frame(frame)
    handler = _BINARY.get(frame[:HEADER_LEN])
    if handler is not None:
        return handler(memoryview(frame)[HEADER_LEN:])
    header = _check_header(frame)
    return ev.Unknown(header, frame[HEADER_LEN:])


def decode_owned(frame: bytearray) -> ev.Event:
    """:func:`decode` for a binary frame whose buffer the caller hands over.

    Media payloads become read-only views of ``frame`` itself, not copies:
    the caller must not reuse the buffer (websockets makes a fresh one per
    frame, so the stream's router can hand each one over).  The type of ``frame``
    is not checked.

    Raises:
        ProtocolError: as :func:`decode`: a short frame, a malformed header or a bad
            JSON payload.
    """
    # startswith allocates nothing: the two media headers are most of the traffic.
    if frame.startswith(_VIDEO_HEADER):
        return ev.VideoChunk(memoryview(frame).toreadonly()[HEADER_LEN:])
    if frame.startswith(_AUDIO_HEADER):
        return ev.AudioChunk(memoryview(frame).toreadonly()[HEADER_LEN:])
    handler = _BINARY.get(bytes(frame[:HEADER_LEN]))
    if handler is not None:
        return handler(memoryview(frame).toreadonly()[HEADER_LEN:])
    return decode(bytes(frame))


_VIDEO_HEADER: Final = DAT_VIDEO.encode()
_AUDIO_HEADER: Final = DAT_AUDIO.encode()


# --------------------------------------------------------------------------
# server → client: encoding (the emulator's side)


def server_audio(pcm: bytes) -> bytes:
    """``|DAT|00|`` + PCM audio (the emulator's side; ``pcm`` is not checked).

    Raises:
        TypeError: ``pcm`` is not a bytes-like object.
    """
    return DAT_AUDIO.encode() + pcm


def server_video(access_unit: bytes) -> bytes:
    """``|DAT|01|`` + one H.264 access unit, Annex B (the emulator's side; not checked).

    Raises:
        TypeError: ``access_unit`` is not a bytes-like object.
    """
    return DAT_VIDEO.encode() + access_unit


def server_event(event_type: str, data: Any) -> str:
    """``|DAT|02|{"callback_info": {"type": event_type, "data": data}}`` as a text frame.

    The emulator's side: any ``event_type`` is sent, known to :func:`decode` or not.

    Raises:
        TypeError: ``data`` holds a value msgspec cannot encode as JSON.
        UnicodeEncodeError: ``event_type`` or a string in ``data`` holds a lone surrogate.
    """
    body = _event_encoder.encode({"callback_info": {"type": event_type, "data": data}})
    return DAT_EVENT + body.decode()


def server_media(data: bytes, *, last: bool = False) -> bytes:
    """``|DAT|03|`` (``|DAT|04|`` when ``last``) + a piece of the produced media file.

    Raises:
        TypeError: ``data`` is not a bytes-like object.
    """
    return (DAT_MEDIA_END if last else DAT_MEDIA).encode() + data


def server_status(code: int, message: str, type: int) -> str:
    """``|MSG|00|{"code": code, "message": message, "type": type}`` as a text frame.

    ``code`` is a :class:`MsgCode` (or any int), ``type`` a :class:`MsgType`.

    Raises:
        TypeError: an argument holds a value msgspec cannot encode as JSON.
        UnicodeEncodeError: ``message`` holds a lone surrogate.
    """
    return MSG + _event_encoder.encode({"code": code, "message": message, "type": type}).decode()


# --------------------------------------------------------------------------
# client → server: decoding (the emulator's side)


class ClientFrame(msgspec.Struct, frozen=True):
    """Base of the frames a client sends."""


class OpenSession(ClientFrame, frozen=True):
    """``|CTL|00|``: the client opens a session."""

    config: str
    """The config JSON as sent, not parsed (see :func:`~avatarkit.tta.config.decode_config`)."""


class CloseSession(ClientFrame, frozen=True):
    """``|CTL|01|``: the client closes the session (any payload is ignored)."""


class Chat(ClientFrame, frozen=True):
    """``|CTL|02|``: a chat frame."""

    text: str
    """The payload as sent: plain text, SSML, an ``<audio/>`` tag or a JSON object
    (bitrate or styled subtitles); not parsed or checked here."""


class Interrupt(ClientFrame, frozen=True):
    """``|CTL|03|``: the client interrupts the current utterance (any payload is ignored)."""


class AudioData(ClientFrame, frozen=True):
    """``|CTL|08|`` or ``|CTL|09|``: a frame of streamed audio."""

    pcm: bytes
    """The payload: 16 kHz mono s16le PCM as sent (its length is not checked here)."""
    last: bool
    """True for the ``|CTL|09|`` tail, False for a ``|CTL|08|`` frame."""


class UnknownFrame(ClientFrame, frozen=True):
    """A frame with a well-formed header this version does not know, kept as received."""

    header: str
    """The 8-character header, e.g. ``|CTL|05|``."""
    payload: bytes | str
    """Everything after the header: bytes for a binary frame, str for a text frame."""


def _text(payload: str | bytes) -> str:
    if isinstance(payload, str):
        # A lone surrogate cannot come over a WebSocket; it would fail later, when echoed.
        problem = unicode_problem(payload)
        if problem is not None:
            raise ProtocolError(f"control frame payload {problem}", payload)
        return payload
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise ProtocolError("control frame payload is not UTF-8", payload) from None


def decode_client(frame: str | bytes | bytearray | memoryview) -> ClientFrame:
    """Decode one client frame (used by the emulator).

    Payloads are not checked beyond their encoding: a config is not parsed, a chat not
    read, an audio frame's length not measured.  A text ``|CTL|08|``/``|CTL|09|`` frame's
    PCM is its UTF-8 encoding.

    Raises:
        ProtocolError: a frame shorter than its header, a malformed header, an open or
            chat payload that is not UTF-8, or a ``str`` frame whose open, chat or audio
            payload is not valid Unicode (a lone surrogate).
        ValidationError: ``frame`` is not str, bytes, bytearray or memoryview, or is a
            released memoryview.
    """
    if not isinstance(frame, str | bytes):
        frame = _as_frame(frame)
    header = _check_header(frame)
    payload = frame[HEADER_LEN:]
    if header == OPEN:
        return OpenSession(_text(payload))
    if header == CLOSE:
        return CloseSession()
    if header == CHAT:
        return Chat(_text(payload))
    if header == INTERRUPT:
        return Interrupt()
    if header in (AUDIO, AUDIO_LAST):
        # A text frame's bytes on the wire are the UTF-8 of its text, as in decode().
        pcm = _as_bytes(_text(payload)) if isinstance(payload, str) else payload
        return AudioData(pcm, header == AUDIO_LAST)
    return UnknownFrame(header, payload)
