"""session.voice: SAMI voice conversion against the emulator, over real loopback."""

from __future__ import annotations

import array
import io
import logging
import socket
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import av
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from avatarkit import AvatarSession, Endpoints, RetryPolicy
from avatarkit.emulator import Emulator
from avatarkit.emulator.media import synth_speech
from avatarkit.emulator.server import serve_asgi
from avatarkit.errors import (
    AuthenticationError,
    ConnectionLost,
    ProtocolError,
    ServiceError,
    ValidationError,
)
from avatarkit.voice import SPEAKERS, ConvertedAudio
from avatarkit.voice.rules import MAX_INPUT_BYTES, PCM_BYTES_PER_SECOND
from tests.audio_helpers import crossings_per_second, sine_wav
from tests.conftest import FAST_RETRY

pytestmark = pytest.mark.anyio

FEMALE, MALE = "zh_female_qingxin", "zh_male_chunhou"
TONE_HZ = 200.0


def read_wav(data: bytes) -> tuple[int, int, array.array[int]]:
    """(rate, channels, first channel's samples)."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        assert wav.getsampwidth() == 2
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return rate, channels, samples[::channels]


def read_with_pyav(data: bytes) -> tuple[str, int, int, array.array[int]]:
    """(format name, rate, channels, mono samples) of an encoded file."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.layout.nb_channels
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        samples = array.array("h")
        for frame in container.decode(stream):
            for mono in resampler.resample(frame):
                samples.frombytes(bytes(mono.planes[0])[: mono.samples * 2])
        return container.format.name, rate, channels, samples


def has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def file_server(files: dict[str, bytes]) -> AsyncIterator[str]:
    """Serves ``files`` at ``/<name>`` on loopback; yields the base URL."""

    async def get(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return Response(status_code=404)
        return Response(files[name], media_type="application/octet-stream")

    async with serve_asgi(Starlette(routes=[Route("/{name:str}", get)])) as base:
        yield base


@asynccontextmanager
async def scripted_sami(
    answers: list[tuple[int, dict[str, Any]]],
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A fake invoke endpoint giving ``answers`` in turn; yields its URL and the bodies it got."""
    bodies: list[bytes] = []

    async def invoke(request: Request) -> Response:
        bodies.append(await request.body())
        status, body = answers[min(len(bodies), len(answers)) - 1]
        return JSONResponse(body, status_code=status)

    app = Starlette(routes=[Route("/api/v1/invoke", invoke, methods=["POST"])])
    async with serve_asgi(app) as base:
        yield base + "/api/v1/invoke", bodies


WAV_B64 = msgspec.json.encode(sine_wav(seconds=0.1)).decode().strip('"')
OK_ANSWER = {
    "task_id": "t1",
    "namespace": "VoiceConversion",
    "data": WAV_B64,
    "payload": "",
    "status_code": 20000000,
    "status_text": "OK",
}


# -- conversion ----------------------------------------------------------------


async def test_converted_wav_has_the_requested_layout_and_another_pitch(
    emulator: Emulator,
) -> None:
    source = sine_wav()
    source_zcr = crossings_per_second(read_wav(source)[2], 16000)
    async with emulator.session() as av_:
        up = await av_.voice.convert(source, speaker=FEMALE)
        down = await av_.voice.convert(source, speaker=MALE, sample_rate=48000, channel=2)
    assert (up.format, up.sample_rate, up.channel) == ("wav", 24000, 1)
    assert up.task_id and len(up.task_id) == 32
    assert up.payload["speaker"] == FEMALE  # the payload string, parsed
    rate, channels, samples = read_wav(up.data)
    assert (rate, channels) == (24000, 1)
    assert abs(len(samples) / rate - 1.0) < 0.05  # the duration is kept
    assert crossings_per_second(samples, rate) > source_zcr * 1.15  # higher voice
    rate, channels, samples = read_wav(down.data)
    assert (rate, channels) == (48000, 2)
    assert crossings_per_second(samples, rate) < source_zcr * 0.9  # lower voice


@pytest.mark.parametrize(("fmt", "encoder"), [("mp3", "libmp3lame"), ("aac", "aac")])
async def test_compressed_outputs(emulator: Emulator, fmt: str, encoder: str) -> None:
    if not has_encoder(encoder):
        pytest.skip(f"FFmpeg has no {encoder} encoder")
    async with emulator.session() as av_:
        audio = await av_.voice.convert(
            sine_wav(), speaker=FEMALE, format=fmt, sample_rate=44100, channel=2
        )
    name, rate, channels, samples = read_with_pyav(audio.data)
    assert name == {"mp3": "mp3", "aac": "aac"}[fmt]
    assert (rate, channels) == (44100, 2)
    assert crossings_per_second(samples, rate) > 2 * TONE_HZ * 1.15


async def test_sources_path_pcm_and_url(emulator: Emulator, tmp_path: Path) -> None:
    wav_path = tmp_path / "in.wav"
    wav_path.write_bytes(sine_wav(seconds=0.5))
    pcm_path = tmp_path / "in.pcm"
    pcm_path.write_bytes(synth_speech("你好。", seed=1))
    async with file_server({"in.wav": sine_wav(seconds=0.5)}) as base, emulator.session() as av_:
        from_path = await av_.voice.convert(wav_path, speaker=FEMALE)
        from_str = await av_.voice.convert(str(wav_path), speaker=FEMALE)
        from_pcm = await av_.voice.convert(pcm_path, speaker=MALE)
        from_url = await av_.voice.convert(f"{base}/in.wav", speaker=FEMALE, auth="query")
        with pytest.raises(ServiceError) as missing:
            await av_.voice.convert(f"{base}/nope.wav", speaker=FEMALE)
    assert from_path.data == from_str.data == from_url.data  # the same audio, however sent
    pcm_seconds = pcm_path.stat().st_size / PCM_BYTES_PER_SECOND
    rate, _, samples = read_wav(from_pcm.data)
    assert abs(len(samples) / rate - pcm_seconds) < 0.05
    assert missing.value.status == 400 and "nope.wav" in missing.value.service_message


async def test_save_is_atomic(emulator: Emulator, tmp_path: Path) -> None:
    async with emulator.session() as av_:
        audio = await av_.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE)
    target = await audio.save(tmp_path / "out.wav")
    assert target.read_bytes() == audio.data
    assert [p.name async for p in anyio.Path(tmp_path).iterdir()] == ["out.wav"]
    assert "bytes>" in repr(audio) and "RIFF" not in repr(audio)


async def test_separate_sami_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Emulator(sami_appkey="sami-appkey", sami_token="sami-token-abcdef") as emu:
        async with emu.session(sami_appkey="sami-appkey", sami_token="sami-token-abcdef") as av_:
            audio = await av_.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE, auth="query")
            assert audio.data.startswith(b"RIFF")
        async with emu.session() as av_:  # appid/token are not SAMI's credentials here
            with pytest.raises(AuthenticationError) as refused:
                await av_.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE)
            assert refused.value.status == 401
    monkeypatch.setenv("AVATARKIT_APPID", "app")
    monkeypatch.setenv("AVATARKIT_TOKEN", "token-1234")
    monkeypatch.setenv("AVATARKIT_SAMI_APPKEY", "sami-app")
    monkeypatch.setenv("AVATARKIT_SAMI_TOKEN", "sami-token-5678")
    session = AvatarSession.from_env()
    assert (session.sami_appkey, session.sami_token) == ("sami-app", "sami-token-5678")
    monkeypatch.delenv("AVATARKIT_SAMI_APPKEY")
    monkeypatch.delenv("AVATARKIT_SAMI_TOKEN")
    session = AvatarSession.from_env()
    assert (session.sami_appkey, session.sami_token) == ("app", "token-1234")


# -- rules, before any request ---------------------------------------------------


def _lying_wav(seconds: int) -> bytes:
    """A WAV whose header claims ``seconds`` of 16 kHz mono audio (the data is not there)."""
    header = bytearray(sine_wav(seconds=0.01)[:44])
    size = seconds * PCM_BYTES_PER_SECOND
    header[40:44] = size.to_bytes(4, "little")
    header[4:8] = (36 + size).to_bytes(4, "little")
    return bytes(header)


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


CASES: list[tuple[str, Callable[[Path], Any], dict[str, Any]]] = [
    ("speaker", lambda p: sine_wav(), {"speaker": "zh_female_nobody"}),
    ("speaker", lambda p: sine_wav(), {"speaker": ""}),
    ("format", lambda p: sine_wav(), {"format": "flac"}),
    ("sample_rate", lambda p: sine_wav(), {"sample_rate": 12345}),
    ("sample_rate", lambda p: sine_wav(), {"sample_rate": True}),
    ("channel", lambda p: sine_wav(), {"channel": 3}),
    ("enable_background", lambda p: sine_wav(), {"enable_background": "yes"}),
    ("auth", lambda p: sine_wav(), {"auth": "header"}),
    ("source", lambda p: b"", {}),
    ("source", lambda p: _sparse(p / "empty.wav", 0), {}),
    ("source", lambda p: p / "missing.wav", {}),
    ("source", lambda p: p, {}),  # a directory
    ("source", lambda p: "ftp://127.0.0.1/in.wav", {}),
    ("source", lambda p: "http:///in.wav", {}),
    ("source", lambda p: 42, {}),
    ("source", lambda p: _sparse(p / "big.mp3", MAX_INPUT_BYTES + 1), {}),
    ("source", lambda p: _lying_wav(601), {}),
    ("source", lambda p: _sparse(p / "long.pcm", 601 * PCM_BYTES_PER_SECOND), {}),
]


@pytest.mark.parametrize(("field", "make_source", "kwargs"), CASES)
async def test_validation_errors_name_the_field(
    tmp_path: Path, field: str, make_source: Callable[[Path], Any], kwargs: dict[str, Any]
) -> None:
    # Nothing listens there: a request would fail with ConnectionLost instead.
    nowhere = Endpoints(sami=f"http://127.0.0.1:{unused_port()}/api/v1/invoke")
    async with AvatarSession("app", "token-1234", endpoints=nowhere) as av_:
        with pytest.raises(ValidationError) as error:
            await av_.voice.convert(make_source(tmp_path), **{"speaker": FEMALE, **kwargs})
    assert error.value.field == field
    assert error.value.rule and field in str(error.value)


async def test_unlisted_speaker_goes_through_without_the_check(emulator: Emulator) -> None:
    assert FEMALE in SPEAKERS and "en_male_cupid" in SPEAKERS and len(SPEAKERS) == 19
    async with emulator.session() as av_:
        with pytest.raises(ServiceError) as error:
            await av_.voice.convert(sine_wav(), speaker="zh_female_new", check_speaker=False)
    assert (error.value.status, error.value.code) == (400, 40000022)
    assert error.value.service_message == "IllegalPayload:InvalidSpeaker"
    assert not error.value.retryable


# -- service errors and retries ---------------------------------------------------


async def test_transient_errors_are_retried_and_others_are_not() -> None:
    busy = {"task_id": "t0", "status_code": 50300000, "status_text": "ServiceBusy"}
    async with scripted_sami([(503, busy), (429, busy), (200, OK_ANSWER)]) as (url, bodies):
        async with AvatarSession(
            "app", "token-1234", endpoints=Endpoints(sami=url), retry=FAST_RETRY
        ) as av_:
            audio = await av_.voice.convert(sine_wav(seconds=0.1), speaker=FEMALE)
    assert len(bodies) == 3 and audio.task_id == "t1" and audio.payload is None
    sent = msgspec.json.decode(bodies[0])
    assert set(sent) == {"appkey", "token", "namespace", "payload", "data"}
    assert msgspec.json.decode(sent["payload"]) == {
        "speaker": FEMALE,
        "enable_background": False,
        "audio_config": {"format": "wav", "sample_rate": 24000, "channel": 1},
    }

    refused = {"task_id": "t2", "status_code": 40000022, "status_text": "IllegalPayload:x"}
    not_ok = {**OK_ANSWER, "status_code": 40000099, "status_text": "Odd"}
    for answer, kind in (((400, refused), ServiceError), ((200, not_ok), ServiceError)):
        async with scripted_sami([answer]) as (url, bodies):
            async with AvatarSession(
                "app", "token-1234", endpoints=Endpoints(sami=url), retry=FAST_RETRY
            ) as av_:
                with pytest.raises(kind) as error:
                    await av_.voice.convert(sine_wav(seconds=0.1), speaker=FEMALE)
        assert len(bodies) == 1  # not retried
        assert error.value.code == answer[1]["status_code"]
        assert error.value.status == answer[0] and error.value.request_id == answer[1]["task_id"]

    for answer in ((200, {**OK_ANSWER, "data": ""}), (200, {"not": "sami"})):
        async with scripted_sami([answer]) as (url, _):
            async with AvatarSession("app", "token-1234", endpoints=Endpoints(sami=url)) as av_:
                with pytest.raises(ProtocolError):
                    await av_.voice.convert(sine_wav(seconds=0.1), speaker=FEMALE)


async def test_the_token_never_shows(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    token = emulator.token
    texts: list[str] = []
    async with emulator.session() as av_:
        for auth in ("body", "query"):
            audio: ConvertedAudio = await av_.voice.convert(
                sine_wav(seconds=0.2), speaker=FEMALE, auth=auth
            )
            texts += [repr(audio), repr(av_), repr(av_.voice)]
    bad_token = "wrong-token-" + "x" * 12
    async with emulator.session(sami_token=bad_token) as av_:
        with pytest.raises(AuthenticationError) as refused:
            await av_.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE, auth="query")
        texts.append(str(refused.value))
    nowhere = Endpoints(sami=f"http://127.0.0.1:{unused_port()}/api/v1/invoke")
    retry = RetryPolicy(attempts=2, base_delay=0, max_delay=0)
    async with AvatarSession("app", token, endpoints=nowhere, retry=retry) as av_:
        with pytest.raises(ConnectionLost) as lost:
            await av_.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE, auth="query")
        texts.append(str(lost.value))
    texts.append(caplog.text)
    assert any("/api/v1/invoke" in record.getMessage() for record in caplog.records)
    for text in texts:
        assert token not in text and bad_token not in text
