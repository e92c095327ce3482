"""The SAMI emulator's audio: fetched (loopback only), decoded, pitch-shifted, encoded.

The conversion is real: the input is decoded (WAV with :mod:`wave`, data
without a known container magic as raw 16 kHz mono s16le PCM, anything else
with PyAV), its pitch shifted by a speaker-dependent factor while its
duration is kept (FFmpeg's ``asetrate`` + ``aresample`` + ``atempo``: female
voices up ~4 semitones, male down ~4, children up ~6), and the result encoded
as asked (WAV with :mod:`wave`, mp3/aac with PyAV).  CPU-bound parts run in a
worker thread.  ``enable_background`` is accepted and echoed, but there is no
background to separate: the output is the same either way.  The limits are
doc 002's (see :mod:`.models`).
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import itertools
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final
from urllib.parse import urlsplit

import av
import av.filter
import httpx

from avatarkit._redact import redact_url
from avatarkit.emulator.sami import errors as E
from avatarkit.emulator.sami.errors import SamiError
from avatarkit.emulator.sami.models import (
    MAX_INPUT_BYTES,
    MAX_SECONDS,
    PCM_BYTES_PER_SECOND,
    SPEAKERS,
)

__all__ = [
    "AudioFailure",
    "convert_audio",
    "decode_audio",
    "fetch",
    "fetch_loopback",
    "pitch_factor",
    "too_large",
]

_FETCH_TIMEOUT: Final = 10.0
_FEED_SAMPLES: Final = 8192


def too_large(size: int) -> SamiError:
    return SamiError(
        400,
        E.TOO_LARGE,
        f"IllegalData:AudioTooLarge audio is {size} bytes; at most {MAX_INPUT_BYTES} (100 MB)",
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def fetch(url: str) -> bytes:
    """``payload.url``'s bytes; the emulator fetches only loopback URLs (never the internet)."""
    shown = redact_url(url)
    host = urlsplit(url).hostname or ""
    if not _is_loopback(host):
        raise SamiError(
            400,
            E.INVALID_URL,
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
                raise SamiError(
                    400,
                    E.INVALID_URL,
                    f"IllegalPayload:InvalidUrl url={shown!r}: answered HTTP {status}",
                )
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_INPUT_BYTES:
                    raise too_large(size)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise SamiError(
            400,
            E.INVALID_URL,
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


def _too_long(seconds: float) -> SamiError:
    return SamiError(
        400,
        E.TOO_LONG,
        f"IllegalData:AudioTooLong audio lasts {seconds:.1f} s; at most {MAX_SECONDS:.0f} s "
        "(10 minutes)",
    )


def _undecodable(reason: str) -> SamiError:
    return SamiError(400, E.UNDECODABLE, f"IllegalData:UndecodableAudio data: {reason}")


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
    if info is not None and info.child:
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
    raise SamiError(
        400,
        E.UNSUPPORTED_FORMAT,
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

    CPU-bound: call it from a worker thread.  Raises :class:`SamiError` for bad input.
    """
    pcm = _decode(audio)
    if pcm.seconds > MAX_SECONDS:
        raise _too_long(pcm.seconds)
    shifted = _shift(pcm, pitch_factor(speaker), sample_rate, channel)
    if not shifted.data:
        raise _undecodable("too short to convert")
    return _encode(shifted, format), shifted.seconds


# -- shared with the TTA emulator's audio-URL chats ------------------------------


class AudioFailure(Exception):
    """Audio could not be fetched or decoded; the message says why."""


async def fetch_loopback(url: str) -> bytes:
    """The bytes at ``url`` (loopback hosts only, as for ``payload.url``)."""
    try:
        return await fetch(url)
    except SamiError as fail:
        raise AudioFailure(fail.message) from None


def decode_audio(data: bytes) -> _Pcm:
    """Decoded s16 PCM (WAV with the stdlib, anything else PyAV reads)."""
    try:
        return _decode(data)
    except SamiError as fail:
        raise AudioFailure(fail.message) from None
