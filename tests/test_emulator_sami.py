"""The emulator's SAMI VoiceConversion endpoint, spoken to with raw httpx: each rule."""

from __future__ import annotations

import array
import base64
import io
import json
import os
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from avatarkit.emulator import Emulator
from avatarkit.emulator.media import synth_speech
from avatarkit.emulator.sami import pitch_factor
from avatarkit.emulator.server import serve_asgi
from avatarkit.voice.rules import MAX_INPUT_BYTES
from tests.audio_helpers import crossings_per_second, sine_wav
from tests.conftest import emulator_process

pytestmark = pytest.mark.anyio

SPEAKER = "zh_female_qingxin"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def emulator(anyio_backend: str) -> AsyncIterator[Emulator]:
    """One emulator for the module: these tests only send it requests."""
    async with Emulator() as emu:
        yield emu


def mp3_of(wav: bytes) -> bytes:
    with wave.open(io.BytesIO(wav)) as src:
        rate, pcm = src.getframerate(), src.readframes(src.getnframes())
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream: Any = container.add_stream("libmp3lame", rate=rate, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope(emu: Emulator, **changes: Any) -> dict[str, Any]:
    """A valid body; ``payload`` may be given as a dict (encoded here) or a raw string."""
    body: dict[str, Any] = {
        "appkey": emu.appid,
        "token": emu.token,
        "namespace": "VoiceConversion",
        "payload": {"speaker": SPEAKER},
        "data": b64(sine_wav(seconds=0.5)),
    }
    body.update(changes)
    if isinstance(body.get("payload"), dict):
        body["payload"] = json.dumps(body["payload"])
    return {k: v for k, v in body.items() if v is not None}


@asynccontextmanager
async def client(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emu.http_url, timeout=30) as http:
        yield http


async def invoke(http: httpx.AsyncClient, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    if isinstance(body, bytes):
        response = await http.post("/api/v1/invoke", content=body, **kwargs)
    else:
        response = await http.post("/api/v1/invoke", json=body, **kwargs)
    return response.status_code, response.json()


async def test_a_conversion_as_documented(emulator: Emulator) -> None:
    async with client(emulator) as http:
        status, answer = await invoke(
            http,
            envelope(
                emulator,
                payload={
                    "speaker": "zh_male_xiaohai",
                    "enable_background": True,
                    "audio_config": {"format": "wav", "sample_rate": 48000, "channel": 2},
                },
            ),
        )
    assert status == 200
    assert set(answer) == {"task_id", "namespace", "data", "payload", "status_code", "status_text"}
    assert (answer["status_code"], answer["status_text"]) == (20000000, "OK")
    assert answer["namespace"] == "VoiceConversion" and len(answer["task_id"]) == 32
    assert json.loads(answer["payload"])["enable_background"] is True
    with wave.open(io.BytesIO(base64.b64decode(answer["data"]))) as out:
        assert (out.getframerate(), out.getnchannels(), out.getsampwidth()) == (48000, 2, 2)
        samples = array.array("h", out.readframes(out.getnframes()))[::2]
    # a child's voice: about six semitones up from the 200 Hz input
    ratio = crossings_per_second(samples, 48000) / 400
    assert ratio == pytest.approx(pitch_factor("zh_male_xiaohai"), rel=0.05) and ratio > 1.3


async def test_inputs_mp3_and_raw_pcm(emulator: Emulator) -> None:
    pcm = synth_speech("你好，世界。", seed=2)
    async with client(emulator) as http:
        status, from_mp3 = await invoke(
            http, envelope(emulator, data=b64(mp3_of(sine_wav(seconds=0.5))))
        )
        assert status == 200, from_mp3
        status, from_pcm = await invoke(http, envelope(emulator, data=b64(pcm)))
        assert status == 200, from_pcm
        # unknown envelope fields are let through
        status, _ = await invoke(http, {**envelope(emulator), "version": "v4", "extra": 1})
        assert status == 200
    assert json.loads(from_pcm["payload"])["duration_ms"] == pytest.approx(len(pcm) / 32, abs=40)


async def test_credentials_in_the_query(emulator: Emulator) -> None:
    query = {"appkey": emulator.appid, "token": emulator.token, "namespace": "VoiceConversion"}
    body = {"payload": json.dumps({"speaker": SPEAKER}), "data": b64(sine_wav(seconds=0.5))}
    async with client(emulator) as http:
        status, answer = await invoke(http, body, params={**query, "version": "v4"})
        assert status == 200 and answer["status_code"] == 20000000
        for version in (None, "v3"):
            params = {**query, "version": version} if version else query
            status, answer = await invoke(http, body, params=params)
            assert (status, answer["status_code"]) == (400, 40000003)
            assert "version" in answer["status_text"]
        status, answer = await invoke(
            http, body, params={**query, "version": "v4", "token": "nope-nope"}
        )
        assert (status, answer["status_code"]) == (401, 40100002)


@pytest.mark.parametrize(
    ("changes", "status", "code", "text"),
    [
        ({"appkey": "other"}, 401, 40100001, "Unauthorized:InvalidAppkey"),
        ({"appkey": None, "token": None}, 401, 40100001, "appkey: missing"),
        ({"token": "wrong-token-xyz"}, 401, 40100002, "Unauthorized:InvalidToken"),
        ({"token": None}, 401, 40100002, "token: missing"),
        ({"namespace": "Other"}, 400, 40000002, "namespace='Other'"),
        ({"namespace": None}, 400, 40000002, "IllegalRequest:InvalidNamespace"),
        ({"namespace": 7}, 400, 40000001, "namespace"),
        ({"payload": None}, 400, 40000010, "payload: is required"),
        ({"payload": "{not json"}, 400, 40000010, "not a JSON object"),
        ({"payload": "[1]"}, 400, 40000010, "IllegalPayload:InvalidPayload"),
        ({"payload": {"speaker": SPEAKER, "format": "mp3"}}, 400, 40000010, "payload.format"),
        ({"payload": {"speaker": "nobody"}}, 400, 40000022, "IllegalPayload:InvalidSpeaker"),
        ({"payload": {}}, 400, 40000022, "IllegalPayload:InvalidSpeaker"),
        ({"payload": {"speaker": 5}}, 400, 40000022, "IllegalPayload:InvalidSpeaker"),
        (
            {"payload": {"speaker": SPEAKER, "audio_config": {"format": "flac"}}},
            400,
            40000020,
            "audio_config.format='flac'",
        ),
        (
            {"payload": {"speaker": SPEAKER, "audio_config": {"sample_rate": 12345}}},
            400,
            40000020,
            "audio_config.sample_rate=12345",
        ),
        (
            {"payload": {"speaker": SPEAKER, "audio_config": {"sample_rate": "24000"}}},
            400,
            40000020,
            "audio_config.sample_rate",
        ),
        (
            {"payload": {"speaker": SPEAKER, "audio_config": {"channel": 3}}},
            400,
            40000020,
            "audio_config.channel=3",
        ),
        (
            {"payload": {"speaker": SPEAKER, "audio_config": {"bitrate": 1}}},
            400,
            40000010,
            "audio_config.bitrate",
        ),
        (
            {"payload": {"speaker": SPEAKER, "enable_background": "yes"}},
            400,
            40000020,
            "enable_background",
        ),
        ({"data": "not base64!"}, 400, 40000030, "IllegalData:InvalidBase64"),
        ({"data": "UklGRg"}, 400, 40000030, "data="),  # unpadded
        ({"data": "UklG\nRg=="}, 400, 40000030, "data="),  # whitespace
        ({"data": ""}, 400, 40000031, "payload.url is not set"),
        ({"data": b64(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")}, 400, 40000034, "UndecodableAudio"),
        ({"data": b64(b"OggS" + b"\x00" * 64)}, 400, 40000034, "UndecodableAudio"),
        (
            {"payload": {"speaker": SPEAKER, "url": "ftp://127.0.0.1/a.wav"}, "data": ""},
            400,
            40000023,
            "url='ftp://127.0.0.1/a.wav'",
        ),
        (
            {"payload": {"speaker": SPEAKER, "url": "http://example.com/a.wav"}, "data": ""},
            400,
            40000023,
            "url='http://example.com/a.wav': the emulator fetches only loopback",
        ),
    ],
)
async def test_each_rule(
    emulator: Emulator, changes: dict[str, Any], status: int, code: int, text: str
) -> None:
    async with client(emulator) as http:
        got_status, answer = await invoke(http, envelope(emulator, **changes))
    assert (got_status, answer["status_code"]) == (status, code), answer
    assert text in answer["status_text"]
    assert set(answer) == {"task_id", "namespace", "status_code", "status_text"}
    assert emulator.token not in json.dumps(answer)
    if code == 40000022:
        assert answer["status_text"] == "IllegalPayload:InvalidSpeaker"  # exactly, as documented


def _lying_wav(seconds: int) -> bytes:
    header = bytearray(sine_wav(seconds=0.01)[:44])
    header[40:44] = (seconds * 32000).to_bytes(4, "little")
    return bytes(header)


async def test_request_shape_and_limits(emulator: Emulator) -> None:
    async with client(emulator) as http:
        response = await http.get("/api/v1/invoke")
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert response.json()["status_code"] == 40500000
        body = json.dumps(envelope(emulator)).encode()
        status, answer = await invoke(http, body, headers={"Content-Type": "text/plain"})
        assert (status, answer["status_code"]) == (400, 40000001)
        assert "Content-Type" in answer["status_text"]
        for raw in (b"{oops", b"[1, 2]"):
            status, answer = await invoke(http, raw, headers={"Content-Type": "application/json"})
            assert (status, answer["status_code"]) == (400, 40000001)
        status, answer = await invoke(http, envelope(emulator, data=b64(_lying_wav(601))))
        assert (status, answer["status_code"]) == (400, 40000033)
        assert "601.0 s" in answer["status_text"]
        body_and_query = envelope(emulator)
        status, answer = await invoke(http, body_and_query, params={"namespace": "Other"})
        assert (status, answer["status_code"]) == (400, 40000002)


async def test_payload_url_is_fetched_from_loopback_only(emulator: Emulator) -> None:
    wav = sine_wav(seconds=0.5)

    async def get(request: Request) -> Response:
        if request.path_params["name"] == "in.wav":
            return Response(wav)
        if request.path_params["name"] == "huge":

            async def zeros() -> AsyncIterator[bytes]:
                for _ in range(MAX_INPUT_BYTES // (1 << 20) + 2):
                    yield bytes(1 << 20)

            return StreamingResponse(zeros())
        return Response(status_code=404)

    async with serve_asgi(Starlette(routes=[Route("/{name:str}", get)])) as base:
        async with client(emulator) as http:

            def with_url(url: str) -> dict[str, Any]:
                return envelope(emulator, data="", payload={"speaker": SPEAKER, "url": url})

            status, answer = await invoke(http, with_url(f"{base}/in.wav"))
            assert status == 200 and answer["status_code"] == 20000000
            status, answer = await invoke(http, with_url(f"{base}/missing"))
            assert (status, answer["status_code"]) == (400, 40000023)
            assert "answered HTTP 404" in answer["status_text"]
            status, answer = await invoke(http, with_url(f"{base}/huge"))
            assert (status, answer["status_code"]) == (400, 40000032)
            # data wins over the url when both are sent (the url is for empty data only)
            status, answer = await invoke(
                http, envelope(emulator, payload={"speaker": SPEAKER, "url": f"{base}/missing"})
            )
            assert status == 200


async def test_separate_sami_credentials() -> None:
    async with Emulator(sami_appkey="sami-key", sami_token="sami-token-0001") as emu:
        async with client(emu) as http:
            status, _ = await invoke(http, envelope(emu))  # appid/token: not SAMI's
            assert status == 401
            body = envelope(emu, appkey="sami-key", token="sami-token-0001")
            status, _ = await invoke(http, body)
            assert status == 200


def test_cli_voice_convert(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    source.write_bytes(sine_wav(seconds=0.5))
    out = tmp_path / "out.mp3"
    with emulator_process() as proc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
        env |= {
            "AVATARKIT_APPID": proc.appid,
            "AVATARKIT_TOKEN": proc.token,
            "AVATARKIT_SAMI_URL": proc.endpoints.sami,
        }
        command = [sys.executable, "-m", "avatarkit", "voice", "convert", str(source)]
        result = subprocess.run(
            [*command, "-o", str(out), "--speaker", SPEAKER, "--format", "mp3", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert set(report) == {"path", "bytes", "format", "sample_rate", "channel", "task_id"}
        assert report["path"] == str(out) and report["bytes"] == out.stat().st_size
        assert (report["format"], report["sample_rate"], report["channel"]) == ("mp3", 24000, 1)
        with av.open(str(out)) as container:
            assert container.streams.audio[0].codec_context.sample_rate == 24000
        bad = subprocess.run(
            [*command, "-o", str(out), "--speaker", "nobody"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert bad.returncode == 2 and "speaker" in bad.stderr
