"""Doc 000 (digime) conformance: every request example, JSON body and the demo, sent literally.

Each case sends the document's own body to the in-process emulator, changing only the
host, the appid/token and ids (``upload_id`` from the init; a ``callback_url`` host
becomes a loopback receiver; the ``"content": "base64"`` placeholder becomes real
base64).  The doc's bodies are JSON with ``//`` comments and trailing commas; they are
kept as published and the comments stripped.  Where the document contradicts itself,
the case says which sentence it follows (SPEC §6).

The Python demo (§7) is run literally with ``requests`` in a worker thread, its
``UPLOAD_URL`` pointed at the emulator.  Contradiction: its ``upload_id = ret["data"]``
reads the init's ``data`` as the bare id, while §1 返回 shows ``data: {"upload_id": …}``.
The emulator answers the documented object (SPEC §1.1: the SDK accepts both); with it,
the demo sends the object as ``upload_id`` and is refused (40001).  With
``digime_init_data_shape="bare"`` the demo runs through.
"""

# ruff: noqa: E501 - the document's examples are kept line for line as published

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from avatarkit.emulator import Emulator
from avatarkit.emulator.server import serve_asgi
from tests.audio_helpers import sine_wav

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def doc_json(text: str, **values: Any) -> dict[str, Any]:
    """A body as doc 000 prints it: ``//`` comments and trailing commas removed, and
    bare placeholders (``conf_name``, ``upload_id``, ``video_type``) replaced by ``values``."""
    # A comment runs from "//" to the end of the line and holds no '"' (a URL's "//" does).
    lines = [re.sub(r'\s*//[^"]*$', "", line) for line in text.strip().splitlines()]
    body = "\n".join(lines)
    body = re.sub(r",(\s*})", r"\1", body)
    for name, value in values.items():
        body = re.sub(rf":\s*{name}\b(?!\")", ": " + json.dumps(value), body)
    # 制作音色 §2/§3 print a line without its comma ("file_suffix": "zip" then "part_num").
    body = re.sub(r'("[^"]*")\n(\s*")', r"\1,\n\2", body)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


# -- the document's bodies, as published ----------------------------------------

VIDEO_INIT = """
{
    "conf_name": "LiuXuan",    //string 必传 用户上传形象调用conf_name,格式要求:允许大小写字母数字以及'-'
    "role_show_name": "刘璇",   //string 必传 用户上传形象展示中文名
    "type": 1,   //int 必传  视频类型1:训练视频 2:模版视频 3:审核视频
    "input_resource": "",  //string 必传 视频上传来源,建议填写公司名称
    "appid": "xxxx",  //string 必传 appid
    "file_suffix": "mp4" //string 必传 视频格式尾缀 mp4或mov
}
"""
VIDEO_PART = """
{
        "conf_name": conf_name,  // string 必传 用户上传形象调用conf_name,格式要求:允许大小写字母数字以及'-'
        "type": video_type,   //int 必传  视频类型1:训练视频 2:模版视频 3:审核视频
        "upload_id": upload_id, //string 必传  init_part_upload接口返回的upload_id
        "file_suffix": "mp4", //string 必传 视频格式尾缀 mp4或mov
        "part_num": 1,  //int 必传  分片顺序:1,2,3,4... 要求第一个分片必须从1开始
        "content": "base64", //string 必传 分片内容,base64字符串
        "appid": "xxxx",  //string 必传 appid
}
"""
VIDEO_COMPLETE = """
{
        "conf_name": conf_name,  // string 必传 用户上传形象调用conf_name,格式要求:允许大小写字母数字以及'-'
        "type": video_type,  //int 必传 视频类型1:训练视频 2:模版视频 3:审核视频
        "upload_id": upload_id,  //string 必传 init_part_upload接口返回的upload_id
        "file_suffix": "mp4", //string 必传 视频格式尾缀 mp4或mov
        "appid": "xxxx",  //string 必传 appid
}
"""
INIT_TRAIN = """
{
    "appid": "xxx",  //string 必传 appid
    "conf_name": "xxx",  //string 必传 用户上传形象调用conf_name,格式要求:允许大小写字母数字以及'-'
    "callback_url": "http://xxx.net/xx"    // 回调地址,POST,用于接收制作状态回调
}
"""
TRAINING_INFO = """
{
    "appid": "xxx",  //string appid
    "conf_name": "xxx"  //string 用户上传形象调用conf_name,格式要求:允许大小写字母数字以及'-'
}
"""
AUDIO_INIT = """
{
    "conf_name": "",    //string 可选 音色对应分身形象conf_name
    "type": 11,   //int 必传  数据类型 11:音频压缩包数据
    "input_resource": "",  //string 必传 视频上传来源,建议填写公司名称
    "appid": "xxxx",  //string 必传 appid
    "file_suffix": "zip", //string 必传 压缩格式尾缀 zip或tar
    "tts_type": "xxx" //tts_model_v1 30min复刻 tts_model_v2 10min复刻
}
"""
AUDIO_PART = """
{
        "type": 11,   //int 必传  数据类型 11:音频压缩包数据
        "upload_id": upload_id, //string 必传  init_part_upload接口返回的upload_id
        "file_suffix": "zip" //string 必传 压缩格式尾缀 zip或tar
        "part_num": 1,  //int 必传  分片顺序:1,2,3,4... 要求第一个分片必须从1开始
        "content": "base64", //string 必传 分片内容,base64字符串
        "appid": "xxxx",  //string 必传 appid
}
"""
AUDIO_COMPLETE = """
{
        "type": 11,   //int 必传  数据类型 11:音频压缩包数据
        "upload_id": upload_id,  //string 必传 init_part_upload接口返回的upload_id
        "file_suffix": "zip" //string 必传 压缩格式尾缀 zip或tar
        "appid": "xxxx",  //string 必传 appid
}
"""


class Doc:
    """The doc's requests against one emulator: ``headers = {'Content-Type':
    'application/json', 'Authorization': token}`` (every section's Headers)."""

    def __init__(self, emu: Emulator, client: httpx.AsyncClient) -> None:
        self.emu = emu
        self.client = client

    async def post(self, op: str, body: dict[str, Any]) -> httpx.Response:
        if "appid" in body:
            body = {**body, "appid": self.emu.appid}
        headers = {"Content-Type": "application/json", "Authorization": self.emu.token}
        return await self.client.post(
            f"{self.emu.endpoints.digime}/{op}", content=json.dumps(body), headers=headers
        )


def success(response: httpx.Response) -> Any:
    """返回: HTTP 200, ``errno`` 0, ``errMsg`` "success" (and the demo's ``check_res``)."""
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert set(envelope) == {"errno", "errMsg", "data"}
    assert (envelope["errno"], envelope["errMsg"]) == (0, "success"), envelope
    return envelope["data"]


@pytest.fixture
async def doc() -> AsyncIterator[Doc]:
    async with (
        Emulator(digime_training_seconds=0.0) as emu,
        httpx.AsyncClient(trust_env=False, timeout=30) as client,
    ):
        yield Doc(emu, client)


class Receiver:
    """A callback receiver: §4 "传递的URL地址需支持POST method"."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = anyio.Event()

    async def endpoint(self, request: Request) -> Response:
        self.bodies.append(await request.json())
        self.arrived.set()
        return JSONResponse({})


async def _upload_video(doc: Doc, data: bytes, conf_name: str) -> str:
    init = {**doc_json(VIDEO_INIT), "conf_name": conf_name}
    upload_id = success(await doc.post("init_part_upload", init))["upload_id"]
    part = doc_json(VIDEO_PART, conf_name=conf_name, video_type=1, upload_id=upload_id)
    part["content"] = base64.b64encode(data).decode()
    assert success(await doc.post("video_part_upload", part)) == "video part upload success"
    complete = doc_json(VIDEO_COMPLETE, conf_name=conf_name, video_type=1, upload_id=upload_id)
    assert success(await doc.post("video_complete_upload", complete)) == (
        "finish video part upload successs"  # sic, §3 返回
    )
    return str(upload_id)


# -- 制作分身 (making an avatar) -----------------------------------------------------


async def test_1_init_part_upload_example(doc: Doc) -> None:
    """§1: the example as published, ``"input_resource": ""`` included (SPEC §6)."""
    data = success(await doc.post("init_part_upload", doc_json(VIDEO_INIT)))
    assert set(data) == {"upload_id"}  # 返回 data: {"upload_id": "48501f0206918d1b5db63714"}
    assert re.fullmatch(r"[0-9a-f]{24}", data["upload_id"])
    record = doc.emu.state.digime.uploads[data["upload_id"]]
    assert (record.conf_name, record.role_show_name, record.input_resource) == (
        "LiuXuan",
        "刘璇",
        "",
    )


async def test_1_to_5_the_whole_avatar_flow(doc: Doc, training_clip: bytes) -> None:
    """§1 → §2 → §3 → §4 (and its callback) → §5, each body as published."""
    receiver = Receiver()
    app = Starlette(routes=[Route("/xx", receiver.endpoint, methods=["POST"])])
    async with serve_asgi(app) as base:
        # conf_name "xxx" in §4/§5, "LiuXuan" in §1: the same avatar must be named alike.
        await _upload_video(doc, training_clip, "xxx")
        train = doc_json(INIT_TRAIN)
        train["callback_url"] = train["callback_url"].replace("http://xxx.net", base)
        assert success(await doc.post("init_train_digime", train)) == "init train digime succ"
        with anyio.fail_after(20):
            await receiver.arrived.wait()
    [callback] = receiver.bodies
    # 制作状态回调: {"conf_name", "role_pic", "pre_pic", "state": 2}
    assert set(callback) == {"conf_name", "role_pic", "pre_pic", "state"}
    assert (callback["conf_name"], callback["state"]) == ("xxx", 2)
    assert callback["role_pic"].endswith(".png") and callback["pre_pic"].endswith(".png")
    info = success(await doc.post("digime_training_info", doc_json(TRAINING_INFO)))
    assert info == callback  # §5 返回: the same four fields, state 2 制作成功


async def test_2_content_placeholder_is_not_base64(doc: Doc) -> None:
    """§2's ``"content": "base64"`` is a placeholder: as sent it is not valid standard base64
    (6 characters, unpadded), and the stated rule ("base64字符串") refuses it."""
    upload_id = success(await doc.post("init_part_upload", doc_json(VIDEO_INIT)))["upload_id"]
    part = doc_json(VIDEO_PART, conf_name="LiuXuan", video_type=1, upload_id=upload_id)
    response = await doc.post("video_part_upload", part)
    assert response.status_code == 400 and response.json()["errno"] == 40005


async def test_training_video_outside_the_doc_fails_with_state_3(
    doc: Doc, small_clip: bytes
) -> None:
    """制作分身: "训练视频:允许格式 1080p/4K mp4/mov" — a 720p video trains to state 3."""
    await _upload_video(doc, small_clip, "xxx")
    train = {**doc_json(INIT_TRAIN), "callback_url": "http://127.0.0.1:9/xx"}
    success(await doc.post("init_train_digime", train))
    with anyio.fail_after(20):
        await doc.emu.state.digime.trainings["xxx"].finished.wait()
    info = success(await doc.post("digime_training_info", doc_json(TRAINING_INFO)))
    assert info["state"] == 3 and "1280x720" in info["fail_reason"]  # fail_reason: emulator-only


# -- 制作音色 (making a voice) ---------------------------------------------------------


def _voice_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:  # "多条音频文件放到一个文件夹下压缩"
        for i in range(2):
            z.writestr(f"voice/{i}.wav", sine_wav(seconds=0.4, hz=180.0 + 40 * i))
    return buffer.getvalue()


async def test_audio_1_init_tts_type_placeholder(doc: Doc) -> None:
    """制作音色 §1 as published: ``"tts_type": "xxx"`` is a placeholder; its comment states
    the two values, and the stated rule wins (SPEC §6): refused, naming them.  With a stated
    value (and the example's ``"conf_name": ""`` and ``"input_resource": ""``) it is accepted."""
    response = await doc.post("init_part_upload", doc_json(AUDIO_INIT))
    assert response.status_code == 400 and response.json()["errno"] == 40001
    assert "tts_model_v1" in response.json()["errMsg"]
    for tts_type in ("tts_model_v1", "tts_model_v2"):
        data = success(
            await doc.post("init_part_upload", {**doc_json(AUDIO_INIT), "tts_type": tts_type})
        )
        record = doc.emu.state.digime.uploads[data["upload_id"]]
        assert (record.conf_name, record.tts_type, record.type) == (None, tts_type, 11)


async def test_audio_1_to_3_the_whole_voice_upload(doc: Doc) -> None:
    """制作音色 §1 → §2 → §3 as published (§2/§3 lack a comma after ``"zip"``: repaired)."""
    init = {**doc_json(AUDIO_INIT), "tts_type": "tts_model_v2"}
    upload_id = success(await doc.post("init_part_upload", init))["upload_id"]
    archive = _voice_zip()
    part = doc_json(AUDIO_PART, upload_id=upload_id)
    part["content"] = base64.b64encode(archive).decode()
    assert success(await doc.post("video_part_upload", part)) == "video part upload success"
    complete = doc_json(AUDIO_COMPLETE, upload_id=upload_id)
    assert success(await doc.post("video_complete_upload", complete)) == (
        "finish video part upload successs"
    )
    assert doc.emu.state.digime.completed_file(upload_id=upload_id).read_bytes() == archive


# -- §7 Demo ---------------------------------------------------------------------------

from tests.conformance.digime_demo import DEMO  # noqa: E402


def load_demo(emu: Emulator) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "doc000_demo"}
    exec(DEMO.replace("https://openspeech.bytedance.com", emu.http_url), namespace)
    return namespace


@pytest.mark.parametrize(
    ("size", "parts"),
    [
        (300 * 1024, [300 * 1024]),  # smaller than a chunk: one part
        (10 * MIB + 1 * MIB, [11 * MIB]),  # a last chunk under 5 MiB is merged
        (10 * MIB + 6 * MIB, [10 * MIB, 6 * MIB]),  # a last chunk of 5 MiB or more is its own
    ],
)
async def test_7_demo_runs_literally_with_the_bare_data_shape(
    tmp_path: Path, size: int, parts: list[int]
) -> None:
    """The demo reads ``ret["data"]`` as the id: run against ``digime_init_data_shape="bare"``."""
    async with Emulator(digime_init_data_shape="bare") as emu:
        demo = load_demo(emu)
        video = tmp_path / "2.mp4"
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        video.write_bytes(data)
        # conf_name: the demo's placeholder "conf_name" breaks 说明 2 (no '_'): an id of ours.
        await anyio.to_thread.run_sync(
            demo["part_upload_file"],
            str(video),
            "Conf-Name",
            "role_show_name",
            1,
            "input_resource",
            emu.appid,
            emu.token,
        )
        [record] = emu.state.digime.uploads.values()
        assert record.completed and record.part_sizes == parts
        assert record.path.read_bytes() == data


async def test_7_demo_against_the_documented_data_shape(tmp_path: Path) -> None:
    """With §1's documented ``data: {"upload_id": …}``, the demo sends that object as its
    ``upload_id``; the emulator follows §1 返回 (SPEC §6) and refuses the part (40001)."""
    async with Emulator() as emu:
        demo = load_demo(emu)
        (tmp_path / "2.mp4").write_bytes(bytes(1000))
        # check_res raises on the non-200 status first (its message says "is not 400").
        with pytest.raises(Exception, match="request code is not 400"):
            await anyio.to_thread.run_sync(
                demo["part_upload_file"],
                str(tmp_path / "2.mp4"),
                "Conf-Name",
                "role_show_name",
                1,
                "input_resource",
                emu.appid,
                emu.token,
            )
        [record] = emu.state.digime.uploads.values()
        assert record.part_sizes == [] and not record.completed
        async with httpx.AsyncClient(trust_env=False) as client:  # the answer it got
            part = {
                "conf_name": "Conf-Name",
                "type": 1,
                "upload_id": {"upload_id": record.upload_id},
                "appid": emu.appid,
                "file_suffix": "mp4",
                "part_num": 1,
                "content": "AAAA",
            }
            headers = {"Content-Type": "application/json", "Authorization": emu.token}
            answer = await client.post(
                f"{emu.endpoints.digime}/video_part_upload", json=part, headers=headers
            )
        assert answer.status_code == 400 and answer.json()["errno"] == 40001
        assert answer.json()["errMsg"].startswith("invalid parameter: upload_id=")


async def test_7_demo_placeholder_conf_name_breaks_the_stated_rule(tmp_path: Path) -> None:
    """The demo's __main__ passes ``"conf_name"``; 说明 2 allows letters, digits and '-'
    only, and the stated rule wins (SPEC §6): the init is refused, naming the rule."""
    async with Emulator(digime_init_data_shape="bare") as emu:
        demo = load_demo(emu)
        (tmp_path / "2.mp4").write_bytes(bytes(1000))
        with pytest.raises(Exception, match="request code is not 400"):
            await anyio.to_thread.run_sync(
                demo["part_upload_file"],
                str(tmp_path / "2.mp4"),
                "conf_name",
                "role_show_name",
                1,
                "input_resource",
                emu.appid,
                emu.token,
            )
        assert not emu.state.digime.uploads  # refused at init: 40001 naming the rule
