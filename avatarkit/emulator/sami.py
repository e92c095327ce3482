"""The emulator's SAMI VoiceConversion service (SPEC §3, doc 002): ``POST /api/v1/invoke``.

The body is ``{appkey, token, namespace, payload, data}`` (credentials may
instead be in the query string with ``version=v4``, as in the doc's Go demo;
credentials in the body win when the body has any).  ``payload`` is a JSON
string ``{speaker, url?, enable_background?, audio_config?: {format,
sample_rate, channel}}``, checked with the SDK's own rules
(:mod:`avatarkit.voice.rules`); unknown payload fields are refused so that a
misplaced field (``format`` outside ``audio_config``) is not silently
ignored.  Unknown envelope fields are allowed (the common protocol the doc
refers to may add some).

The conversion is real: the input is decoded (WAV with :mod:`wave`, data
without a known container magic as raw 16 kHz mono s16le PCM, anything else
with PyAV), its pitch shifted by a speaker-dependent factor while its
duration is kept (FFmpeg's ``asetrate`` + ``aresample`` + ``atempo``:
female voices up ~4 semitones, male down ~4, children up ~6), and the result
encoded as asked (WAV with :mod:`wave`, mp3/aac with PyAV).  The work runs in
a worker thread.  ``enable_background`` is accepted and echoed, but there is
no background to separate: the output is the same either way.

Success is HTTP 200, ``status_code`` 20000000, ``status_text`` "OK", with
``payload`` a JSON string of our own (``speaker``, ``duration_ms``,
``format``, ``sample_rate``, ``channel``, ``enable_background``).  Errors
have the same shape without ``data``/``payload``.  Only 40000022 is
documented; the other codes are ours, and every text after the
``Kind:Reason`` names the field, its value and the rule:

====== ======== ==============================================================
HTTP   code     status_text
====== ======== ==============================================================
400    40000001 ``IllegalRequest:InvalidBody`` body not a JSON object, a field
                of the wrong type, Content-Type not application/json
400    40000002 ``IllegalRequest:InvalidNamespace`` missing, not
                VoiceConversion, or body and query disagree
400    40000003 ``IllegalRequest:InvalidVersion`` query credentials without
                ``version=v4``
400    40000010 ``IllegalPayload:InvalidPayload`` payload missing, not a JSON
                object, or with an unknown field
400    40000020 ``IllegalPayload:InvalidParam`` a payload field's type or value
                (``audio_config.format``, ``enable_background``…)
400    40000022 ``IllegalPayload:InvalidSpeaker`` speaker missing or not in
                the documented table (exactly this text, as documented)
400    40000023 ``IllegalPayload:InvalidUrl`` url not http(s), not loopback
                (the emulator fetches nothing else), or the fetch failed
400    40000024 ``IllegalPayload:UnsupportedFormat`` no encoder for the format
400    40000030 ``IllegalData:InvalidBase64`` data not standard padded base64
400    40000031 ``IllegalData:EmptyAudio`` neither data nor payload.url
400    40000032 ``IllegalData:AudioTooLarge`` over 100 MB
400    40000033 ``IllegalData:AudioTooLong`` over 10 minutes
400    40000034 ``IllegalData:UndecodableAudio`` not audio we can decode
401    40100001 ``Unauthorized:InvalidAppkey`` appkey missing or wrong
401    40100002 ``Unauthorized:InvalidToken`` token missing or wrong
405    40500000 ``MethodNotAllowed`` anything but POST
====== ======== ==============================================================
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import ipaddress
import itertools
import math
import secrets
import uuid
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import anyio
import av
import av.filter
import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from avatarkit._redact import protected_logger, redact_url
from avatarkit._schema_errors import field_problem
from avatarkit.errors import ValidationError
from avatarkit.voice.rules import (
    MAX_INPUT_BYTES,
    MAX_SECONDS,
    NAMESPACE,
    PCM_BYTES_PER_SECOND,
    SUCCESS_CODE,
    VERSION,
    check_audio_config,
    check_speaker,
    check_url,
)
from avatarkit.voice.speakers import SPEAKERS

if TYPE_CHECKING:
    from avatarkit.emulator.state import EmulatorState

__all__ = ["PATH", "convert_audio", "pitch_factor", "sami_routes"]

log = protected_logger("avatarkit.emulator.sami")

PATH: Final = "/api/v1/invoke"

INVALID_BODY: Final = 40_000_001
INVALID_NAMESPACE: Final = 40_000_002
INVALID_VERSION: Final = 40_000_003
INVALID_PAYLOAD: Final = 40_000_010
INVALID_PARAM: Final = 40_000_020
INVALID_SPEAKER: Final = 40_000_022
INVALID_URL: Final = 40_000_023
UNSUPPORTED_FORMAT: Final = 40_000_024
INVALID_BASE64: Final = 40_000_030
EMPTY_AUDIO: Final = 40_000_031
TOO_LARGE: Final = 40_000_032
TOO_LONG: Final = 40_000_033
UNDECODABLE: Final = 40_000_034
INVALID_APPKEY: Final = 40_100_001
INVALID_TOKEN: Final = 40_100_002
METHOD: Final = 40_500_000

_ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Base64 of the largest input plus room for the rest of the envelope; a body
# beyond it is drained unstored and refused.
_MAX_BODY: Final = (MAX_INPUT_BYTES + 2) // 3 * 4 + 64 * 1024
_FETCH_TIMEOUT: Final = 10.0
_FEED_SAMPLES: Final = 8192


class _Fail(Exception):
    def __init__(self, status: int, code: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text


def _param(exc: ValidationError) -> _Fail:
    return _Fail(400, INVALID_PARAM, f"IllegalPayload:InvalidParam {exc}")


# -- the request ----------------------------------------------------------------


class _Envelope(msgspec.Struct):
    appkey: str | None = None
    token: str | None = None
    namespace: str | None = None
    payload: str | None = None
    data: str = ""


class _AudioConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Strings and ints as sent: the values are judged by the SDK's rules, whose
    # messages name the allowed ones.
    format: str = "wav"
    sample_rate: int = 24000
    channel: int = 1


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    speaker: str
    url: str | None = None
    enable_background: bool = False
    audio_config: _AudioConfig = msgspec.field(default_factory=_AudioConfig)


_envelope_decoder: Final = msgspec.json.Decoder(_Envelope)
_payload_decoder: Final = msgspec.json.Decoder(_Payload)


def _msgspec_problem(text: str) -> tuple[str, str]:
    """``(field path, rule)`` of a msgspec validation message."""
    problem = field_problem(text)
    if problem.missing:
        return problem.path, "is required"
    if problem.unknown:
        return problem.path, "is not a documented field"
    return problem.path, problem.rule


def _decode_envelope(body: bytes) -> _Envelope:
    try:
        return _envelope_decoder.decode(body)
    except msgspec.ValidationError as exc:
        field, rule = _msgspec_problem(str(exc))
        where = field or "body"
        hint = "" if field else " (need a JSON object)"
        raise _Fail(
            400, INVALID_BODY, f"IllegalRequest:InvalidBody {where}: {rule}{hint}"
        ) from None
    except msgspec.DecodeError as exc:
        raise _Fail(
            400, INVALID_BODY, f"IllegalRequest:InvalidBody body is not JSON ({exc})"
        ) from None


def _decode_payload(text: str | None) -> _Payload:
    if text is None or not text:
        raise _Fail(
            400,
            INVALID_PAYLOAD,
            "IllegalPayload:InvalidPayload payload: is required (a JSON string)",
        )
    try:
        return _payload_decoder.decode(text)
    except msgspec.ValidationError as exc:
        field, rule = _msgspec_problem(str(exc))
        if field == "speaker":
            raise _Fail(400, INVALID_SPEAKER, "IllegalPayload:InvalidSpeaker") from None
        if not field or rule == "is not a documented field":
            where = f"payload.{field}" if field else "payload"
            raise _Fail(
                400, INVALID_PAYLOAD, f"IllegalPayload:InvalidPayload {where}: {rule}"
            ) from None
        raise _Fail(400, INVALID_PARAM, f"IllegalPayload:InvalidParam {field}: {rule}") from None
    except msgspec.DecodeError as exc:
        raise _Fail(
            400,
            INVALID_PAYLOAD,
            f"IllegalPayload:InvalidPayload payload: is not a JSON object string ({exc})",
        ) from None


def _check_payload(payload: _Payload) -> None:
    try:
        check_speaker(payload.speaker)
    except ValidationError:
        raise _Fail(400, INVALID_SPEAKER, "IllegalPayload:InvalidSpeaker") from None
    config = payload.audio_config
    try:
        check_audio_config(config.format, config.sample_rate, config.channel, "audio_config.")
    except ValidationError as exc:
        raise _param(exc) from None
    if payload.url is not None:
        try:
            check_url(payload.url, "url")
        except ValidationError as exc:
            raise _Fail(400, INVALID_URL, f"IllegalPayload:InvalidUrl {exc}") from None


def _same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _authorize(request: Request, state: EmulatorState, envelope: _Envelope) -> None:
    """Credentials from the body when it has any, else from the query string (with version)."""
    options = state.options
    appkey_expected = options.sami_appkey or options.appid
    token_expected = options.sami_token or options.token
    query = request.query_params
    if envelope.appkey is not None or envelope.token is not None:
        appkey, token = envelope.appkey, envelope.token
    else:
        appkey, token = query.get("appkey"), query.get("token")
        if appkey is not None or token is not None:
            version = query.get("version")
            if version != VERSION:
                problem = ValidationError(
                    "version", version, f"must be {VERSION} with credentials in the query"
                )
                raise _Fail(400, INVALID_VERSION, f"IllegalRequest:InvalidVersion {problem}")
    # Never echo a token: neither the one given nor the expected one.
    if not _same(appkey, appkey_expected):
        why = "missing" if appkey is None else "unknown appkey"
        raise _Fail(401, INVALID_APPKEY, f"Unauthorized:InvalidAppkey appkey: {why}")
    if not _same(token, token_expected):
        why = "missing" if token is None else "invalid token"
        raise _Fail(401, INVALID_TOKEN, f"Unauthorized:InvalidToken token: {why}")


def _namespace(request: Request, envelope: _Envelope) -> str:
    in_query = request.query_params.get("namespace")
    if envelope.namespace is not None and in_query is not None and envelope.namespace != in_query:
        raise _Fail(
            400,
            INVALID_NAMESPACE,
            f"IllegalRequest:InvalidNamespace namespace={envelope.namespace!r} in the body "
            f"but {in_query!r} in the query",
        )
    namespace = envelope.namespace if envelope.namespace is not None else in_query
    if namespace != NAMESPACE:
        problem = ValidationError("namespace", namespace, f"must be {NAMESPACE}")
        raise _Fail(400, INVALID_NAMESPACE, f"IllegalRequest:InvalidNamespace {problem}")
    return namespace


def _decode_data(text: str) -> bytes:
    if len(text) > (MAX_INPUT_BYTES + 2) // 3 * 4:
        raise _too_large(len(text) // 4 * 3)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        problem = ValidationError(
            "data", text[:16], "is not standard base64 (RFC 4648 alphabet, padded, no whitespace)"
        )
        raise _Fail(400, INVALID_BASE64, f"IllegalData:InvalidBase64 {problem}") from None


def _too_large(size: int) -> _Fail:
    return _Fail(
        400,
        TOO_LARGE,
        f"IllegalData:AudioTooLarge audio is {size} bytes; at most {MAX_INPUT_BYTES} (100 MB)",
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _fetch(url: str) -> bytes:
    """``payload.url``'s bytes; the emulator fetches only loopback URLs (never the internet)."""
    shown = redact_url(url)
    host = urlsplit(url).hostname or ""
    if not _is_loopback(host):
        raise _Fail(
            400,
            INVALID_URL,
            f"IllegalPayload:InvalidUrl url={shown!r}: the emulator fetches only loopback "
            "URLs (127.0.0.1, ::1, localhost)",
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async with (
            httpx.AsyncClient(timeout=_FETCH_TIMEOUT, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                status = response.status_code
                raise _Fail(
                    400,
                    INVALID_URL,
                    f"IllegalPayload:InvalidUrl url={shown!r}: answered HTTP {status}",
                )
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_INPUT_BYTES:
                    raise _too_large(size)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise _Fail(
            400,
            INVALID_URL,
            f"IllegalPayload:InvalidUrl url={shown!r}: could not be fetched ({type(exc).__name__})",
        ) from None
    return b"".join(chunks)


# -- the conversion -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pcm:
    """Interleaved s16 native-endian samples (little-endian on every platform we run on)."""

    data: bytes
    rate: int
    channels: int  # 1 or 2

    @property
    def seconds(self) -> float:
        return len(self.data) / (2 * self.channels * self.rate)


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


def _too_long(seconds: float) -> _Fail:
    return _Fail(
        400,
        TOO_LONG,
        f"IllegalData:AudioTooLong audio lasts {seconds:.1f} s; at most {MAX_SECONDS:.0f} s "
        "(10 minutes)",
    )


def _undecodable(reason: str) -> _Fail:
    return _Fail(400, UNDECODABLE, f"IllegalData:UndecodableAudio data: {reason}")


def _has_container_magic(head: bytes) -> bool:
    """Whether the bytes start like a file FFmpeg would recognise (else: raw PCM)."""
    return (
        head.startswith((b"RIFF", b"ID3", b"OggS", b"fLaC", b"FORM", b"caff", b"#!AMR"))
        or head.startswith(b"\x1a\x45\xdf\xa3")  # Matroska / WebM
        or head[4:8] == b"ftyp"  # MP4 / M4A
        or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # MPEG / ADTS sync
    )


def _decode_wav(audio: bytes) -> _Pcm | None:
    """16-bit PCM WAV with the stdlib; ``None`` for the rest (left to PyAV)."""
    try:
        with wave.open(io.BytesIO(audio), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            frames = wav.getnframes()
            if width != 2 or channels > 2 or rate <= 0:
                return None
            if frames / rate > MAX_SECONDS:
                raise _too_long(frames / rate)
            data = wav.readframes(frames)
    except (wave.Error, EOFError):
        return None
    if not data:
        raise _undecodable("the WAV holds no samples")
    return _Pcm(data, rate, channels)


def _decode_pyav(audio: bytes) -> _Pcm:
    try:
        container: Any = av.open(io.BytesIO(audio), "r")
    except av.FFmpegError as exc:
        raise _undecodable(f"not a format FFmpeg can read ({exc})") from None
    with container:
        if not container.streams.audio:
            raise _undecodable("no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or 0)
        channels = 1 if stream.codec_context.layout.nb_channels == 1 else 2
        if rate <= 0:
            raise _undecodable("no sample rate")
        resampler = av.AudioResampler(format="s16", layout=_layout(channels), rate=rate)
        out: list[bytes] = []
        samples = 0
        try:
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    out.append(bytes(converted.planes[0])[: converted.samples * 2 * channels])
                    samples += converted.samples
                if samples / rate > MAX_SECONDS:
                    raise _too_long(samples / rate)
            for converted in resampler.resample(None):
                out.append(bytes(converted.planes[0])[: converted.samples * 2 * channels])
        except av.FFmpegError as exc:
            raise _undecodable(f"decoding failed ({exc})") from None
    data = b"".join(out)
    if not data:
        raise _undecodable("no samples decoded")
    return _Pcm(data, rate, channels)


def _decode(audio: bytes) -> _Pcm:
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
        pcm = _decode_wav(audio)
        if pcm is not None:
            return pcm
    if _has_container_magic(audio[:12]):
        return _decode_pyav(audio)
    # No container: raw PCM, 16 kHz mono s16le (the SDK assumes the same for .pcm).
    seconds = len(audio) / PCM_BYTES_PER_SECOND
    if seconds > MAX_SECONDS:
        raise _too_long(seconds)
    if len(audio) < 2:
        raise _undecodable("too short for 16-bit PCM")
    return _Pcm(audio[: len(audio) // 2 * 2], 16_000, 1)


def pitch_factor(speaker: str) -> float:
    """How much a speaker raises (> 1) or lowers (< 1) the pitch; distinct per speaker."""
    info = SPEAKERS.get(speaker)
    child = speaker in ("zh_male_xiaohai", "zh_female_xiaopengyou", "zh_female_mengyatou")
    if child:
        base = 2 ** (6 / 12)
    elif info is not None and info.gender == "female":
        base = 2 ** (4 / 12)
    else:
        base = 2 ** (-4 / 12)
    # ±3 % by speaker, so that two speakers of a kind do not sound the same.
    return base * (1 + ((zlib.crc32(speaker.encode()) % 7) - 3) / 100)


def _frames(pcm: _Pcm) -> Iterator[av.AudioFrame]:
    step = _FEED_SAMPLES * 2 * pcm.channels
    pts = 0
    for start in range(0, len(pcm.data), step):
        chunk = pcm.data[start : start + step]
        samples = len(chunk) // (2 * pcm.channels)
        if samples == 0:
            break
        frame = av.AudioFrame(format="s16", layout=_layout(pcm.channels), samples=samples)
        frame.planes[0].update(chunk[: samples * 2 * pcm.channels])
        frame.sample_rate = pcm.rate
        frame.time_base = Fraction(1, pcm.rate)
        frame.pts = pts
        pts += samples
        yield frame


def _shift(pcm: _Pcm, factor: float, rate: int, channels: int) -> _Pcm:
    """Pitch times ``factor``, duration kept, at ``rate`` Hz with ``channels`` channels."""
    graph = av.filter.Graph()
    chain = [
        graph.add_abuffer(
            format="s16",
            sample_rate=pcm.rate,
            layout=_layout(pcm.channels),
            time_base=Fraction(1, pcm.rate),
        ),
        # Playing the samples faster raises the pitch (and shortens them) ...
        graph.add("asetrate", f"r={round(pcm.rate * factor)}"),
        graph.add("aresample", str(rate)),
        # ... and stretching time back restores the duration, not the pitch.
        graph.add("atempo", f"{1 / factor:.6f}"),
        graph.add(
            "aformat", f"sample_fmts=s16:sample_rates={rate}:channel_layouts={_layout(channels)}"
        ),
        graph.add("abuffersink"),
    ]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    out: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                frame: Any = graph.pull()
            except (BlockingIOError, av.EOFError):
                return
            out.append(bytes(frame.planes[0])[: frame.samples * 2 * channels])

    for frame in _frames(pcm):
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return _Pcm(b"".join(out), rate, channels)


_ENCODERS: Final = {"mp3": ("libmp3lame", "mp3"), "aac": ("aac", "libfdk_aac")}
_MUXERS: Final = {"mp3": "mp3", "aac": "adts"}


def _encoder(fmt: str) -> str:
    for name in _ENCODERS[fmt]:
        with contextlib.suppress(Exception):
            av.codec.Codec(name, "w")
            return name
    raise _Fail(
        400,
        UNSUPPORTED_FORMAT,
        f"IllegalPayload:UnsupportedFormat audio_config.format={fmt!r}: this emulator's FFmpeg "
        f"has no {fmt} encoder (tried {', '.join(_ENCODERS[fmt])})",
    )


def _encode(pcm: _Pcm, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "wav":
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(pcm.channels)
            wav.setsampwidth(2)
            wav.setframerate(pcm.rate)
            wav.writeframes(pcm.data)
        return buffer.getvalue()
    codec = _encoder(fmt)
    with av.open(buffer, "w", format=_MUXERS[fmt]) as container:
        stream: Any = container.add_stream(codec, rate=pcm.rate, layout=_layout(pcm.channels))
        # The encoder's own resampler converts s16 to its sample format and frame size.
        for frame in _frames(pcm):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def convert_audio(
    audio: bytes, *, speaker: str, format: str, sample_rate: int, channel: int
) -> tuple[bytes, float]:
    """``audio`` in ``speaker``'s voice, encoded as asked; also the output's seconds.

    CPU-bound: call it from a worker thread.  Raises ``_Fail`` for bad input.
    """
    pcm = _decode(audio)
    if pcm.seconds > MAX_SECONDS:
        raise _too_long(pcm.seconds)
    shifted = _shift(pcm, pitch_factor(speaker), sample_rate, channel)
    if not shifted.data:
        raise _undecodable("too short to convert")
    return _encode(shifted, format), shifted.seconds


# -- HTTP -----------------------------------------------------------------------


def _answer(status: int, body: dict[str, Any]) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def _error(fail: _Fail, task_id: str, namespace: str) -> Response:
    headers = {"Allow": "POST"} if fail.status == 405 else None
    response = _answer(
        fail.status,
        {
            "task_id": task_id,
            "namespace": namespace,
            "status_code": fail.code,
            "status_text": fail.text,
        },
    )
    if headers:
        response.headers.update(headers)
    return response


async def _read_body(request: Request) -> tuple[bytes, int]:
    """The body (up to the cap) and its full size; the rest is drained, not stored."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
    return b"".join(chunks), size


def _check_content_type(request: Request) -> None:
    value = request.headers.get("content-type", "")
    if value.split(";", 1)[0].strip().lower() != "application/json":
        problem = ValidationError("Content-Type", value, "must be application/json")
        raise _Fail(400, INVALID_BODY, f"IllegalRequest:InvalidBody {problem}")


async def _invoke(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    task_id = uuid.uuid4().hex
    namespace = ""
    # Read the body first even when refusing: an unread body would make the
    # client see a reset instead of our answer.
    body, size = await _read_body(request)
    try:
        if request.method != "POST":
            raise _Fail(405, METHOD, f"MethodNotAllowed: {request.method} (use POST)")
        _check_content_type(request)
        if size > _MAX_BODY:
            raise _too_large(size // 4 * 3)
        envelope = _decode_envelope(body)
        if isinstance(envelope.namespace, str):
            namespace = envelope.namespace
        _authorize(request, state, envelope)
        namespace = _namespace(request, envelope)
        payload = _decode_payload(envelope.payload)
        _check_payload(payload)
        if envelope.data:
            audio = _decode_data(envelope.data)
        elif payload.url is not None:
            audio = await _fetch(payload.url)
        else:
            raise _Fail(
                400,
                EMPTY_AUDIO,
                "IllegalData:EmptyAudio data: is empty and payload.url is not set",
            )
        if not audio:
            raise _Fail(400, EMPTY_AUDIO, "IllegalData:EmptyAudio the audio is empty")
        if len(audio) > MAX_INPUT_BYTES:
            raise _too_large(len(audio))
        config = payload.audio_config
        output, seconds = await anyio.to_thread.run_sync(
            lambda: convert_audio(
                audio,
                speaker=payload.speaker,
                format=config.format,
                sample_rate=config.sample_rate,
                channel=config.channel,
            )
        )
    except _Fail as fail:
        log.debug("invoke %s refused: HTTP %d %s", task_id, fail.status, fail.text)
        return _error(fail, task_id, namespace)
    result = {
        "speaker": payload.speaker,
        "duration_ms": math.floor(seconds * 1000),
        "format": config.format,
        "sample_rate": config.sample_rate,
        "channel": config.channel,
        "enable_background": payload.enable_background,
    }
    return _answer(
        200,
        {
            "task_id": task_id,
            "namespace": namespace,
            "data": base64.b64encode(output).decode("ascii"),
            "payload": msgspec.json.encode(result).decode(),
            "status_code": SUCCESS_CODE,
            "status_text": "OK",
        },
    )


def sami_routes() -> list[BaseRoute]:
    return [Route(PATH, _invoke, methods=_ALL_METHODS)]


# -- shared with the TTA emulator's audio-URL chats ------------------------------


class AudioFailure(Exception):
    """Audio could not be fetched or decoded; the message says why."""


async def fetch_loopback(url: str) -> bytes:
    """The bytes at ``url`` (loopback hosts only, as for ``payload.url``)."""
    try:
        return await _fetch(url)
    except _Fail as fail:
        raise AudioFailure(fail.text) from None


def decode_audio(data: bytes) -> _Pcm:
    """Decoded s16 PCM (WAV with the stdlib, anything else PyAV reads)."""
    try:
        return _decode(data)
    except _Fail as fail:
        raise AudioFailure(fail.text) from None
