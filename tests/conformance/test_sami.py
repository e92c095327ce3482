"""Doc 002 (SAMI VoiceConversion) conformance: the demos, the payload table, the errors.

Each case sends what the document sends to the in-process emulator, changing only the
host, the appkey/token and the audio file.  The Python demo (参考示例 Python) is run
literally with ``requests`` in a worker thread; the Go demo (参考示例 Golang) is
translated request for request: the same URL with ``version``, ``token``, ``appkey`` and
``namespace`` in the query, the same body text (``fmt.Sprintf`` of a JSON literal), the
same ``Content-Type`` (``http.Post(url, "application/json", …)``), and its response
struct's required fields checked.
"""

# ruff: noqa: E501, UP031 - the document's examples (and the Go demo's Sprintf) are kept as published

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import av
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from avatarkit.emulator import Emulator
from avatarkit.emulator.server import serve_asgi
from tests.audio_helpers import sine_wav

pytestmark = pytest.mark.anyio

# 参考示例 Python, as published; only the host changes (and the __main__ guard, so that
# it runs when called).
PYTHON_DEMO = """
import base64
import json
import sys

import requests

# Construct HTTP request
payload = json.dumps({"speaker": "zh_female_qingxin"})
with open("/path/to/audio", "rb") as f:
    data = f.read()
    data = base64.b64encode(data).decode('utf-8')
req = {
    "appkey": "your_appkey",
    "token": "your_token",
    "namespace": "VoiceConversion",
    "payload": payload,
    "data": data
}

if True:
    # HTTP POST request
    resp = requests.post("https://sami.bytedance.com/api/v1/invoke", json=req)

    # Parse HTTP SAMI response
    try:
        sami_resp = resp.json()
        if resp.status_code != 200:
            print(sami_resp)
            sys.exit(1)
    except:
        print(resp)
        sys.exit(1)

    print("response task_id=%s status_code=%d status_text=%s" % (
        sami_resp["task_id"], sami_resp["status_code"], sami_resp["status_text"]), end=" ")
    if "payload" in sami_resp and len(sami_resp["payload"]) > 0:
        print("payload=%s" % sami_resp["payload"], end=" ")
    if "data" in sami_resp and len(sami_resp["data"]) > 0:
        # Save audio data into file
        data = base64.b64decode(sami_resp["data"])
        print("data=[%d]bytes" % len(data))
        with open("output.wav", "wb") as f:
            f.write(data)
"""


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


def wav_info(data: bytes) -> tuple[int, int, float]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnchannels(), w.getnframes() / w.getframerate()


def run_python_demo(emu: Emulator, audio: Path, workdir: Path, speaker: str) -> str:
    """The demo in this interpreter (a worker thread); returns what it printed."""
    import contextlib

    source = (
        PYTHON_DEMO.replace("https://sami.bytedance.com", emu.http_url)
        .replace('"your_appkey"', repr(emu.options.sami_appkey or emu.appid))
        .replace('"your_token"', repr(emu.options.sami_token or emu.token))
        .replace('"/path/to/audio"', repr(str(audio)))
        .replace('"output.wav"', repr(str(workdir / "output.wav")))
        .replace('"zh_female_qingxin"', repr(speaker))
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            exec(source, {"__name__": "doc002_demo"})
        except SystemExit as exc:
            return f"exit {exc.code}: {out.getvalue()}"
    return out.getvalue()


async def test_python_demo_runs_literally(emu: Emulator, tmp_path: Path) -> None:
    """参考示例 Python: 200, task_id/status_code/status_text/payload/data; the output is the
    default 24 kHz mono wav (输出结果格式), as long as the input."""
    audio = tmp_path / "audio"
    audio.write_bytes(sine_wav(rate=16000, seconds=1.5))
    printed = await anyio.to_thread.run_sync(
        run_python_demo, emu, audio, tmp_path, "zh_female_qingxin"
    )
    assert (
        printed.startswith("response task_id=") and "status_code=20000000 status_text=OK" in printed
    )
    assert "payload=" in printed and "data=[" in printed
    rate, channels, seconds = wav_info((tmp_path / "output.wav").read_bytes())
    assert (rate, channels) == (24000, 1) and abs(seconds - 1.5) < 0.1


async def test_python_demo_with_an_unknown_speaker_gets_the_documented_error(
    emu: Emulator, tmp_path: Path
) -> None:
    """常见问题: HTTP 400, 40000022, ``IllegalPayload:InvalidSpeaker`` (the demo exits 1)."""
    audio = tmp_path / "audio"
    audio.write_bytes(sine_wav(seconds=0.5))
    printed = await anyio.to_thread.run_sync(
        run_python_demo, emu, audio, tmp_path, "zh_female_nobody"
    )
    assert printed.startswith("exit 1: ")
    assert "40000022" in printed and "'status_text': 'IllegalPayload:InvalidSpeaker'" in printed


async def test_go_demo_translated(emu: Emulator) -> None:
    """参考示例 Golang: credentials, version and namespace in the query; the body is the
    demo's ``fmt.Sprintf`` literal; the response has its struct's required fields."""
    data = base64.b64encode(sine_wav(seconds=1.0)).decode()
    body = '{"data": "%s","payload":"{\\"speaker\\":\\"zh_female_qingxin\\"}"}' % data
    url = "%s/api/v1/invoke?version=%s&token=%s&appkey=%s&namespace=%s" % (
        emu.http_url,
        "v4",
        emu.token,
        emu.appid,
        "VoiceConversion",
    )
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        resp = await client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    # InvokeResponse: status_code, status_text, task_id, namespace "required"
    assert isinstance(answer["status_code"], int) and answer["status_code"] == 20000000
    assert answer["status_text"] == "OK" and answer["task_id"]
    assert answer["namespace"] == "VoiceConversion"
    assert isinstance(answer["payload"], str) and json.loads(answer["payload"])
    rate, channels, _ = wav_info(base64.b64decode(answer["data"]))  # []byte: std base64
    assert (rate, channels) == (24000, 1)


def request(emu: Emulator, payload: dict[str, Any], audio: bytes) -> dict[str, Any]:
    """The documented body (公共参数 / the Python demo's ``req``)."""
    return {
        "appkey": emu.appid,
        "token": emu.token,
        "namespace": "VoiceConversion",
        "payload": json.dumps(payload),
        "data": base64.b64encode(audio).decode(),
    }


async def invoke(emu: Emulator, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        return await client.post(f"{emu.http_url}/api/v1/invoke", json=body)


@pytest.mark.parametrize(
    "audio_config",
    [
        *({"format": f} for f in ("wav", "mp3", "aac")),
        *({"sample_rate": r} for r in (8000, 16000, 22050, 24000, 32000, 44100, 48000)),
        *({"channel": c} for c in (1, 2)),
    ],
)
async def test_every_audio_config_value_of_the_table(
    emu: Emulator, audio_config: dict[str, Any]
) -> None:
    """配置参数: audio_config.format wav/mp3/aac, sample_rate the seven rates, channel 1/2."""
    body = request(emu, {"speaker": "zh_male_chunhou", "audio_config": audio_config}, sine_wav())
    resp = await invoke(emu, body)
    assert resp.status_code == 200, resp.text
    out = base64.b64decode(resp.json()["data"])
    fmt = audio_config.get("format", "wav")
    with av.open(io.BytesIO(out)) as container:
        stream = container.streams.audio[0]
        assert (
            container.format.name.split(",")[0]
            in {"wav": ("wav",), "mp3": ("mp3",), "aac": ("aac",)}[fmt]
        )
        assert stream.codec_context.sample_rate == audio_config.get("sample_rate", 24000)
        assert stream.codec_context.layout.nb_channels == audio_config.get("channel", 1)


async def test_every_speaker_of_the_appendix(emu: Emulator) -> None:
    """附录 发音人列表: every speaker id converts."""
    speakers = [
        "zh_female_qingxin", "zh_male_chunhou", "zh_male_xiaohai", "zh_male_huoli",
        "zh_female_tianmei", "zh_male_silang", "zh_male_rap", "zh_female_sichuan",
        "zh_female_mengyatou", "zh_female_guli", "zh_male_xionger", "zh_female_lindaiyu",
        "zh_female_tvb", "zh_male_sunwukong", "zh_male_commentate", "zh_female_xiaoqian",
        "zh_male_xiaojian", "zh_female_xiaopengyou", "en_male_cupid",
    ]  # fmt: skip
    audio = sine_wav(seconds=0.3)
    for speaker in speakers:
        resp = await invoke(emu, request(emu, {"speaker": speaker}, audio))
        assert resp.status_code == 200, (speaker, resp.text)
        assert json.loads(resp.json()["payload"])["speaker"] == speaker


async def test_payload_url_is_used_when_data_is_empty(emu: Emulator) -> None:
    """配置参数 url: "若data字段为空,则使用该url下载音频数据" (the emulator fetches loopback only)."""
    clip = sine_wav(seconds=0.8)

    async def audio(_: Any) -> Response:
        return Response(clip, media_type="audio/wav")

    async with serve_asgi(Starlette(routes=[Route("/a.wav", audio)])) as base:
        body = {
            **request(emu, {"speaker": "zh_female_tianmei", "url": f"{base}/a.wav"}, b""),
            "data": "",
        }
        resp = await invoke(emu, body)
    assert resp.status_code == 200, resp.text
    assert abs(wav_info(base64.b64decode(resp.json()["data"]))[2] - 0.8) < 0.1


async def test_empty_optional_strings_mean_not_given(emu: Emulator) -> None:
    """SPEC §6: ``url: ""`` with data is no URL; ``audio_config.format: ""`` is the default wav."""
    payload = {"speaker": "zh_female_qingxin", "url": "", "audio_config": {"format": ""}}
    resp = await invoke(emu, request(emu, payload, sine_wav(seconds=0.5)))
    assert resp.status_code == 200, resp.text
    assert json.loads(resp.json()["payload"])["format"] == "wav"


async def test_audio_over_ten_minutes_is_refused(emu: Emulator) -> None:
    """使用备注 音频时长限制: "小于等于10分钟" — 10 min 1 s of raw 16 kHz pcm is refused."""
    pcm = bytes(32_000 * 601)
    resp = await invoke(emu, request(emu, {"speaker": "zh_female_qingxin"}, pcm))
    assert resp.status_code == 400
    answer = resp.json()
    assert answer["status_code"] == 40000033 and "IllegalData:AudioTooLong" in answer["status_text"]
    assert "data" not in answer and "payload" not in answer


async def test_undecodable_audio_is_refused(emu: Emulator) -> None:
    """输入音频格式 "wav、pcm、mp3、aac等常见格式": a file FFmpeg cannot read is refused."""
    junk = b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100)
    resp = await invoke(emu, request(emu, {"speaker": "zh_female_qingxin"}, junk))
    assert resp.status_code == 400 and resp.json()["status_code"] == 40000034
