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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from xml.sax.saxutils import quoteattr

import msgspec

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
    "OpenSession",
    "UnknownFrame",
    "decode",
    "decode_client",
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

HEADER_LEN: Final = 8
#: 1 s of 16 kHz mono s16le: the least a ``|CTL|08|`` frame may carry.
MIN_AUDIO_FRAME_BYTES: Final = 32_000
BITRATE_RANGE: Final = (400, 5000)

OPEN = "|CTL|00|"
CLOSE = "|CTL|01|"
CHAT = "|CTL|02|"
INTERRUPT = "|CTL|03|"
AUDIO = "|CTL|08|"
AUDIO_LAST = "|CTL|09|"
DAT_AUDIO = "|DAT|00|"
DAT_VIDEO = "|DAT|01|"
DAT_EVENT = "|DAT|02|"
DAT_MEDIA = "|DAT|03|"
DAT_MEDIA_END = "|DAT|04|"
MSG = "|MSG|00|"

_HEADER_RE: Final = re.compile(r"\|[A-Z]{3}\|[0-9]{2}\|")
_event_encoder: Final = msgspec.json.Encoder()


# --------------------------------------------------------------------------
# client → server


def encode_open(config_json: bytes | str) -> str:
    """``|CTL|00|`` + the session config JSON (see :mod:`avatarkit.tta.config`)."""
    text = config_json.decode() if isinstance(config_json, bytes) else config_json
    return OPEN + text


def encode_close() -> str:
    return CLOSE


def encode_chat(text: str) -> str:
    """``|CTL|02|`` + plain text, SSML, an ``<audio/>`` tag or a JSON object."""
    if not isinstance(text, str):
        raise ValidationError("text", text, "must be a string")
    if not text.strip():
        raise ValidationError("text", text, "must not be empty")
    return CHAT + text


def encode_bitrate(kbps: int) -> str:
    """``|CTL|02|{"bitrate": kbps}``, kbps in 400..5000."""
    low, high = BITRATE_RANGE
    if isinstance(kbps, bool) or not isinstance(kbps, int) or not low <= kbps <= high:
        raise ValidationError("bitrate", kbps, f"must be an integer from {low} to {high} kbps")
    return f'{CHAT}{{"bitrate":{kbps}}}'


AUDIO_URL_FORMATS: Final = ("pcm", "wav", "mp3", "aac", "ogg", "m4a")


def encode_audio_url(
    url: str, *, format: str, sample_rate: int | None = None, channels: int | None = None
) -> str:
    """``|CTL|02|<audio url=… format=… sample_rate=… ac=…/>`` (input_mode audio)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("url", url, "must be an http:// or https:// URL")
    if format not in AUDIO_URL_FORMATS:
        raise ValidationError("format", format, f"must be one of {', '.join(AUDIO_URL_FORMATS)}")
    attrs = [f"url={quoteattr(url)}", f"format={quoteattr(format)}"]
    if sample_rate is not None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValidationError("sample_rate", sample_rate, "must be a positive integer (Hz)")
        attrs.append(f'sample_rate="{sample_rate}"')
    if channels is not None:
        if channels not in (1, 2) or isinstance(channels, bool):
            raise ValidationError("channels", channels, "must be 1 or 2")
        attrs.append(f'ac="{channels}"')
    return f"{CHAT}<audio {' '.join(attrs)}/>"


def encode_styled_chat(text: str, subtitle: Mapping[str, Any]) -> str:
    """``|CTL|02|{"text": …, "subtitle": {…}}``: speech with subtitle styling."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text", text, "must be a non-empty string")
    if not isinstance(subtitle, Mapping):
        raise ValidationError("subtitle", subtitle, "must be an object")
    body = _event_encoder.encode({"text": text, "subtitle": dict(subtitle)})
    return CHAT + body.decode()


def encode_interrupt() -> str:
    return INTERRUPT


def encode_audio(pcm: bytes | bytearray | memoryview, *, last: bool = False) -> bytes:
    """``|CTL|08|`` (or the ``|CTL|09|`` tail) + 16 kHz mono s16le PCM.

    Every non-final frame must carry at least one second (32,000 bytes).
    """
    size = len(pcm)
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
    return ProtocolError(f"bad {what} JSON ({exc})", data)


def _subtitle(cls: type[ev.Subtitle], raw: msgspec.Raw) -> ev.Subtitle:
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
    except msgspec.DecodeError as exc:
        raise _json_error("event", payload, exc) from None
    build = _EVENT_BUILDERS.get(info.type)
    try:
        if build is None:
            original = payload if isinstance(payload, str) else bytes(payload)
            return ev.Unknown(DAT_EVENT, original, info.type, _any_decoder.decode(info.data))
        return build(info.data)
    except msgspec.DecodeError as exc:
        raise _json_error(f"{info.type!r} event", payload, exc) from None


def _decode_status(payload: _Payload) -> ev.Status:
    try:
        msg = _status_decoder.decode(payload)
    except msgspec.DecodeError as exc:
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


def decode(frame: str | bytes | bytearray | memoryview) -> ev.Event:
    """Decode one server frame into an event.

    Raises :class:`ProtocolError` for a short frame, a malformed header or a
    bad JSON payload.  Unknown headers and event types become
    :class:`~avatarkit.tta.events.Unknown`.
    """
    if isinstance(frame, str):
        text_handler = _TEXT.get(frame[:HEADER_LEN])
        if text_handler is not None:
            return text_handler(frame[HEADER_LEN:])
        header = _check_header(frame)
        return ev.Unknown(header, frame[HEADER_LEN:])
    if not isinstance(frame, bytes):
        frame = bytes(frame)
    handler = _BINARY.get(frame[:HEADER_LEN])
    if handler is not None:
        return handler(memoryview(frame)[HEADER_LEN:])
    header = _check_header(frame)
    return ev.Unknown(header, frame[HEADER_LEN:])


# --------------------------------------------------------------------------
# server → client: encoding (the emulator's side)


def server_audio(pcm: bytes) -> bytes:
    return DAT_AUDIO.encode() + pcm


def server_video(access_unit: bytes) -> bytes:
    return DAT_VIDEO.encode() + access_unit


def server_event(event_type: str, data: Any) -> str:
    body = _event_encoder.encode({"callback_info": {"type": event_type, "data": data}})
    return DAT_EVENT + body.decode()


def server_media(data: bytes, *, last: bool = False) -> bytes:
    return (DAT_MEDIA_END if last else DAT_MEDIA).encode() + data


def server_status(code: int, message: str, type: int) -> str:
    return MSG + _event_encoder.encode({"code": code, "message": message, "type": type}).decode()


# --------------------------------------------------------------------------
# client → server: decoding (the emulator's side)


class ClientFrame(msgspec.Struct, frozen=True):
    """Base of the frames a client sends."""


class OpenSession(ClientFrame, frozen=True):
    config: str


class CloseSession(ClientFrame, frozen=True):
    pass


class Chat(ClientFrame, frozen=True):
    text: str


class Interrupt(ClientFrame, frozen=True):
    pass


class AudioData(ClientFrame, frozen=True):
    pcm: bytes
    last: bool


class UnknownFrame(ClientFrame, frozen=True):
    header: str
    payload: bytes | str


def _text(payload: str | bytes) -> str:
    if isinstance(payload, str):
        return payload
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise ProtocolError("control frame payload is not UTF-8", payload) from None


def decode_client(frame: str | bytes | bytearray | memoryview) -> ClientFrame:
    """Decode one client frame (used by the emulator)."""
    if not isinstance(frame, str | bytes):
        frame = bytes(frame)
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
        pcm = payload.encode("latin-1") if isinstance(payload, str) else payload
        return AudioData(pcm, header == AUDIO_LAST)
    return UnknownFrame(header, payload)
