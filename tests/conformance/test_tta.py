"""Doc 001 (TTA) conformance: every request example, JSON body and demo program, sent literally.

Each case sends the document's own text to the in-process emulator, changing only the
host, the appid/token and ids (a role placeholder or a customer's avatar id becomes a
catalog role; ``url_1``-style placeholders become loopback URLs), and checks the answer
the document describes.  Where the document contradicts itself — an example broken by
its rendering, against a rule stated in a table — the case says which sentence it
follows (SPEC §6: the stated rule wins, the example is also sent as repaired).
"""

# ruff: noqa: E501 - the document's examples are kept line for line as published

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from avatarkit.emulator import Emulator
from avatarkit.emulator.media import synth_speech
from avatarkit.emulator.server import serve_asgi
from tests.test_tta_stream import train_digime

pytestmark = pytest.mark.anyio

DOC = "doc 001"


class Raw:
    """A client written the way the doc's demo is: literal strings, nothing checked first."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def msg(self) -> dict[str, Any]:
        """The next ``|MSG|00|`` (skipping media and events)."""
        while True:
            data = await self.ws.recv()
            if isinstance(data, str) and data.startswith("|MSG|00|"):
                return dict(json.loads(data[8:]))

    async def until_event(self, kind: str) -> list[str | bytes]:
        """Every frame up to and including the event ``kind``; fails on an error MSG."""
        seen: list[str | bytes] = []
        while True:
            data = await self.ws.recv()
            seen.append(data)
            if isinstance(data, str) and data.startswith("|MSG|00|"):
                msg = json.loads(data[8:])
                assert msg["code"] == 1000, msg
            is_event = isinstance(data, str) and data.startswith("|DAT|02|")
            if is_event and json.loads(data[8:])["callback_info"]["type"] == kind:
                return seen


@contextlib.asynccontextmanager
async def connect(emu: Emulator, dimension: str = "2d") -> AsyncIterator[Raw]:
    # §三 接口地址: wss://…/tta/{2d|3d}?appid={appid}&access_token={token}; host changed.
    uri = f"{emu.endpoints.tta}/{dimension}?appid={emu.appid}&access_token={emu.token}"
    headers = {"Resource-Id": f"volc.avatar.{dimension}"}
    async with websockets.connect(uri, additional_headers=headers) as ws:
        yield Raw(ws)


async def open_with(emu: Emulator, frame: str, dimension: str = "2d") -> dict[str, Any]:
    async with connect(emu, dimension) as raw:
        await raw.send(frame)
        return await raw.msg()


async def chat(emu: Emulator, config: str, text: str, dimension: str = "2d") -> dict[str, Any]:
    """Open with ``config``, send ``|CTL|02|text``: the chat's first MSG (then its voice_end)."""
    async with connect(emu, dimension) as raw:
        await raw.send("|CTL|00|" + config)
        assert (await raw.msg())["code"] == 1000
        await raw.send("|CTL|02|" + text)
        reply = await raw.msg()
        if reply["code"] == 1000:
            await raw.until_event("voice_end")
        return reply


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(digime_training_seconds=0) as emulator:
        yield emulator


def refused(reply: dict[str, Any], kind: int, *words: str) -> None:
    """§2.2.1.1: 1001 参数无效, with the message type of the call (§2.2.1.2)."""
    assert (reply["code"], reply["type"]) == (1001, kind), reply
    for word in words:
        assert word in reply["message"], (word, reply["message"])


# ---------------------------------------------------------------------------------------
# §2.1 |CTL|00| open session
# ---------------------------------------------------------------------------------------

OPEN_DEFAULT = '|CTL|00|{"uid":"avatar_android", "role":"LiuXuan"}'
OPEN_CUSTOM = (
    '|CTL|00{"uid":"avatar_android","background":"http://xxx.jpeg","logo":{"logo_url":'
    '"http://xxx..png","logo_top_offset":20,"logo_left_offset":20,"logo_width":50,'
    '"logo_height":50},"video":{"video_width":1080,"video_height":1920},"role":"LiuXuan",'
    '"role_conf":{"voice_type":"BV009_DPE_ParaTaco","pose_type":"standing_fullbody",'
    '"clothes_type":"uniform","role_width":400,"role_left_offset":500,"role_top_offset":500}}'
)
OPEN_CODEC = '|CTL|00|{"uid":"avatar_android", "role":"LiuXuan", "codec":" mp4 }'


async def test_2_1_open_default_config(emu: Emulator, tmp_path: Path) -> None:
    """§2.1 "1.采用默认配置": role LiuXuan is a customer's avatar id (§二: "形象id填入role").

    Untrained on this emulator it is refused (§2.1.1: role must be one the account has);
    once a digime LiuXuan is trained here, the literal frame opens; a catalog role too.
    """
    refused(await open_with(emu, OPEN_DEFAULT), 0, "role='LiuXuan'")
    assert await train_digime(emu, "LiuXuan", tmp_path) == 2
    assert await open_with(emu, OPEN_DEFAULT) == {
        "code": 1000,
        "message": "session opened",
        "type": 0,
    }
    catalog = OPEN_DEFAULT.replace("LiuXuan", "GuoXiaoyuan")
    assert (await open_with(emu, catalog))["code"] == 1000


async def test_2_1_open_custom_config(emu: Emulator) -> None:
    """§2.1 "2.自定义配置": the example lost the header's last ``|`` (``|CTL|00{``).

    Follows §2.1's table (the header is ``|CTL|00|``): sent literally it is not an open
    frame and is refused; with the header repaired (and LiuXuan → GuoXiaoyuan) it opens,
    pose_type "standing_fullbody" and clothes_type "uniform" included.
    """
    refused(await open_with(emu, OPEN_CUSTOM), 0)
    repaired = "|CTL|00|" + OPEN_CUSTOM[len("|CTL|00") :].replace("LiuXuan", "GuoXiaoyuan")
    assert (await open_with(emu, repaired))["code"] == 1000


async def test_2_1_open_offline_codec(emu: Emulator) -> None:
    """§2.1 "3.…离线生产视频场景": the example's JSON is cut off (``"codec":" mp4 }``).

    Follows §2.1.1 (codec "合法值为mp4/webm/mov"): the literal is not JSON and is refused
    naming the config; repaired to ``"codec":"mp4"`` it opens.
    """
    refused(await open_with(emu, OPEN_CODEC.replace("LiuXuan", "GuoXiaoyuan")), 0, "config")
    repaired = '|CTL|00|{"uid":"avatar_android", "role":"GuoXiaoyuan", "codec":"mp4"}'
    assert (await open_with(emu, repaired))["code"] == 1000


async def test_2_2_2_i_frame_interval_example(emu: Emulator) -> None:
    """§2.2.2 示例 (role XiaoYu, a customer's avatar id → GuoXiaoyuan): every 25th frame is an I frame."""
    body = {
        "video": {"video_width": 1080, "video_height": 1920, "I_frame_interval": 25},
        "role": "GuoXiaoyuan",
        "role_conf": {"voice_type": "BV009_DPE_ParaTaco"},
        "input_mode": "text",
    }
    async with connect(emu) as raw:
        await raw.send("|CTL|00|" + json.dumps(body, indent=4))
        assert (await raw.msg())["code"] == 1000
        await raw.send("|CTL|02|今天天气真不错，我们出去走走吧。")
        seen = await raw.until_event("voice_end")
    video = [f[8:] for f in seen if isinstance(f, bytes) and f.startswith(b"|DAT|01|")]
    assert len(video) > 50
    codec = av.CodecContext.create("h264", "r")
    decoded = [frame for au in video for frame in codec.decode(av.Packet(au))]
    assert (decoded[0].width, decoded[0].height) == (1080, 1920)
    assert [i for i, f in enumerate(decoded) if f.key_frame] == list(range(0, len(decoded), 25))


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            '|CTL|00|{"role":"xx","rtc":{"app_id":"xxx","room":"xxx","uid":"xx","token":"xxx"}}',
            id="4-realtime-rtc",
        ),
        pytest.param(
            '|CTL|00|{"role":"xx","rtmp":{"addr":"rtmp://xxxxx","live_id":"xxx"}}',
            id="4-live-rtmp",
        ),
    ],
)
async def test_4_scenario_examples(emu: Emulator, frame: str) -> None:
    """§四 实时交互 / 实时直播: the rtc and rtmp examples (role "xx" → GuoXiaoyuan) open.

    RTC has no offline equivalent: the config is accepted and nothing is pushed.
    """
    assert (await open_with(emu, frame.replace('"xx"', '"GuoXiaoyuan"', 1)))["code"] == 1000
    refused(await open_with(emu, frame), 0, "role='xx'")  # the placeholder itself is no role


async def test_4_codec_is_refused_with_rtc_or_rtmp(emu: Emulator) -> None:
    """§四 "请求中不能配置codec字段" (both live scenarios); §2.1.1 codec 备注."""
    frame = (
        '|CTL|00|{"role":"GuoXiaoyuan","codec":"mp4","rtmp":{"addr":"rtmp://x/y","live_id":"1"}}'
    )
    refused(await open_with(emu, frame), 0, "codec")


# ---------------------------------------------------------------------------------------
# §2.1 |CTL|02| chat, |CTL|08|/|CTL|09| streamed audio
# ---------------------------------------------------------------------------------------

TEXT_MODE = '{"role":"GuoXiaoyuan"}'


async def test_2_1_chat_plain_text(emu: Emulator) -> None:
    """§2.1 文本驱动: ``|CTL|02|今天天气不错``, answered type 2 (§2.2.1.2) and spoken."""
    assert await chat(emu, TEXT_MODE, "今天天气不错") == {
        "code": 1000,
        "message": "chat accepted",
        "type": 2,
    }


async def test_2_1_chat_action(emu: Emulator) -> None:
    """§2.1 "2.将支持的动作放入标签中": ``<action type="OK"/>``.

    "OK" is in XiaoHuan's library (§2.1.2), not GuoXiaoyuan's (whose ok is "15"): the
    role id is XiaoHuan; for GuoXiaoyuan the same chat is refused (§2.1.2's rule).
    """
    text = '<speak>今天<action type="OK"/>天气真不错</speak>'
    assert (await chat(emu, '{"role":"XiaoHuan"}', text))["code"] == 1000
    refused(await chat(emu, TEXT_MODE, text), 2, "'OK'", "GuoXiaoyuan")


async def test_2_1_chat_image(emu: Emulator) -> None:
    """§2.1 "3.插入图片素材": the example lost a space (``<imageurl=``): not XML.

    Follows §2.1.3 (``<image url=…>``): literally refused; with the space it is shown.
    """
    literal = (
        '<speak>今天<imageurl="http://xxx.png" left="250" top="500" width="500" '
        'height="500" level="1">天气真不错。</image>阳光很好</speak>'
    )
    refused(await chat(emu, TEXT_MODE, literal), 2, "XML")
    assert (await chat(emu, TEXT_MODE, literal.replace("<imageurl", "<image url")))["code"] == 1000


async def test_2_1_chat_video(emu: Emulator) -> None:
    """§2.1 "4.插入视频素材": the example closes a ``</speak>`` it never opened.

    Follows §2.1 (SSML is ``<speak>…</speak>``): literally refused; with ``<speak>`` it plays.
    """
    literal = (
        '今天<video url="http://xxx.mp4" left="250" top="500" width="500" height="500" '
        'level="1"/>天气真不错。 阳光很好</speak>'
    )
    refused(await chat(emu, TEXT_MODE, literal), 2, "XML")
    assert (await chat(emu, TEXT_MODE, "<speak>" + literal))["code"] == 1000


def _pcm_server(routes: dict[str, bytes]) -> Starlette:
    async def serve(request: Request) -> Response:
        return Response(routes[request.path_params["name"]], media_type="application/octet-stream")

    return Starlette(routes=[Route("/{name:str}", serve)])


def _mp3(pcm: bytes, rate: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.sample_rate = rate
        memoryview(frame.planes[0])[: len(pcm)] = pcm
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


def _upsample(pcm16k: bytes, factor: int) -> bytes:
    """16 kHz s16le → factor × 16 kHz by repeating samples (enough for a test signal)."""
    out = bytearray()
    for i in range(0, len(pcm16k), 2):
        out += pcm16k[i : i + 2] * factor
    return bytes(out)


async def test_2_1_chat_audio_url(emu: Emulator) -> None:
    """§2.1 音频驱动: ``<audio url="http://xxx.pcm" format="pcm" sample_rate="48000" ac="1"/>``.

    Host changed to a loopback server holding 1 s of 48 kHz mono PCM: played as 1 s.
    """
    pcm48 = _upsample(synth_speech("今天天气不错")[:32000], 3)
    async with serve_asgi(_pcm_server({"xxx.pcm": pcm48})) as base:
        async with connect(emu) as raw:
            await raw.send('|CTL|00|{"role":"GuoXiaoyuan","input_mode":"audio"}')
            assert (await raw.msg())["code"] == 1000
            tag = f'<audio url="{base}/xxx.pcm" format="pcm" sample_rate="48000" ac="1"/>'
            await raw.send("|CTL|02|" + tag)
            assert (await raw.msg())["code"] == 1000
            seen = await raw.until_event("voice_end")
    audio = b"".join(f[8:] for f in seen if isinstance(f, bytes) and f.startswith(b"|DAT|00|"))
    assert abs(len(audio) - 32000) <= 1280


async def test_2_1_streamed_audio(emu: Emulator) -> None:
    """§2.1 流式音频驱动: ``|CTL|08|xxxx`` 1 s frames of 16 kHz mono PCM, ``|CTL|09|`` tail."""
    pcm = synth_speech("今天天气真不错，我们出去走走吧。")
    async with connect(emu) as raw:
        await raw.send('|CTL|00|{"role":"GuoXiaoyuan","input_mode":"audio"}')
        assert (await raw.msg())["code"] == 1000
        await raw.send(b"|CTL|08|" + pcm[:32000])
        await raw.send(b"|CTL|09|" + pcm[32000:40000])
        seen = await raw.until_event("voice_end")
        audio = b"".join(f[8:] for f in seen if isinstance(f, bytes) and f.startswith(b"|DAT|00|"))
        assert abs(len(audio) - 40000) <= 1280
        # "当前不支持单次送入低于1s长度的音频数据": a short |CTL|08| frame is refused
        await raw.send(b"|CTL|08|" + pcm[:16000])
        refused(await raw.msg(), 2, "at least 1 s")


async def test_2_1_interrupt_only_in_text_mode(emu: Emulator) -> None:
    """§2.1 |CTL|03| "当前只有文本驱动下生效": answered type 3 (§2.2.1.2)."""
    async with connect(emu) as raw:
        await raw.send("|CTL|00|" + TEXT_MODE)
        assert (await raw.msg())["code"] == 1000
        await raw.send("|CTL|03|")
        assert await raw.msg() == {"code": 1000, "message": "interrupted", "type": 3}
    async with connect(emu) as raw:
        await raw.send('|CTL|00|{"role":"GuoXiaoyuan","input_mode":"audio"}')
        assert (await raw.msg())["code"] == 1000
        await raw.send("|CTL|03|")
        refused(await raw.msg(), 3)


# ---------------------------------------------------------------------------------------
# §2.1.2 actions, §2.1.3 images and videos, §2.1.5/§2.1.6 3D camera and background
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('<action type="LISTENING" time="3s" />', id="listening-3s"),
        pytest.param('<action type="LISTENING" time="3000ms" />', id="listening-3000ms"),
        pytest.param('<action type="OK" is_silence="true" />', id="is-silence"),
    ],
)
async def test_2_1_2_silent_actions(emu: Emulator, text: str) -> None:
    """§2.1.2 "支持静默作为单个动作", "播放动作时不播报": a chat of one silent action plays.

    Role XiaoHuan (its library has "OK").  3D: "3D暂不支持" (refused on COCO).
    """
    assert (await chat(emu, '{"role":"XiaoHuan"}', text))["code"] == 1000
    refused(await chat(emu, '{"role":"COCO"}', text.replace("OK", "coco_ok_03_ANI"), "3d"), 2)


async def test_2_1_2_listening_needs_time_of_at_most_100_s(emu: Emulator) -> None:
    """§2.1.2 "使用该动作时time字段必填", "time最长为100s"."""
    refused(await chat(emu, TEXT_MODE, '<action type="LISTENING"/>你好'), 2, "time")
    refused(await chat(emu, TEXT_MODE, '<action type="LISTENING" time="101s"/>你好'), 2, "100 s")


IMG = "https://b-ssl.duitang.com/uploads/item/201804/17/20180417143206_kdpwj.png"


def _loopback_urls(text: str) -> str:
    # url_1/url_2 are placeholders for image addresses: a host, changed to a loopback one
    return text.replace("'url_1'", "'http://127.0.0.1/url_1.png'").replace(
        "'url_2'", "'http://127.0.0.1/url_2.png'"
    )


IMAGE_EXAMPLES = {
    "single": f'<speak><image url="{IMG}" left="500" top="500" width="600" height="600" '
    'level="1">开始下一次测试。这是图片显示范围中的第一句话。显示结束了</image></speak>',
    "block-single": """<speak>
    <image url='url_1' left='100' top='100' height='100' width='100' level='1'>
        这是图片内的文本
    </image>
</speak> <!-- 单张图片显示-->""",
    "block-same-as-first": """<speak>
    <image mode='opening' track_id='1' url='url_1' left='100' top='100' height='100' width='100' level='1'/>
        这是图片内的文本
    <image mode='closing' track_id='1'/>
</speak> <!-- 效果等同于第一个-->""",
    "block-two-tracks": """<speak>
    <image mode='opening' track_id='1' url='url_1' left='100' top='100' height='100' width='100' level='1'/>
    <image mode='opening' track_id='2' url='url_2' left='200' top='200' height='200' width='200' level='2'/>
        这是图片内的文本
    <image mode='closing' track_id='2'/>
    <image mode='closing' track_id='1'/>
</speak> <!-- 多张图片显示-->""",
    "block-mixed": """<speak>
    <image mode='opening' track_id='2' url='url_2' left='200' top='200' height='200' width='200' level='2'/>
    <image url='url_1' left='100' top='100' height='100' width='100' level='1'>
        这是图片内的文本
    </image>
    <image mode='closing' track_id='2'/>
</speak> <!--混合使用-->""",
}


@pytest.mark.parametrize("name", list(IMAGE_EXAMPLES))
async def test_2_1_3_image_examples(emu: Emulator, name: str) -> None:
    """§2.1.3 图片(image): each example (placeholder URLs → loopback) is shown."""
    assert (await chat(emu, TEXT_MODE, _loopback_urls(IMAGE_EXAMPLES[name])))["code"] == 1000


async def test_2_1_3_multi_track_example_missing_its_end(emu: Emulator) -> None:
    """§2.1.3 支持多轨道 example: it never closes ``<speak>``.

    Follows §2.1 (SSML is ``<speak>…</speak>``): literally refused; closed, it is shown.
    On 3D "支持多轨道:(3D暂不支持)" refuses the repaired one.
    """
    literal = (
        f'<speak>开始<image mode="opening" track_id="1" url="{IMG}" left="200" top="200" '
        'width="600" height="600" level="0"/>下一次测试。3、2、1,开始。这是一个包含图片的文本,'
        '这是图片显示范围中的第一句话。<image mode="closing" track_id="1"/>'
        "这是图片显示范围中的第二句话。显示结束了!"
    )
    refused(await chat(emu, TEXT_MODE, literal), 2, "XML")
    assert (await chat(emu, TEXT_MODE, literal + "</speak>"))["code"] == 1000
    refused(await chat(emu, '{"role":"COCO"}', literal + "</speak>", "3d"), 2, "3D")


async def test_2_1_3_the_documented_wrong_example_is_refused(emu: Emulator) -> None:
    """§2.1.3 "非自闭合image(mode=default)中不可嵌套image标签,下述为错误示例"."""
    wrong = """<speak>
    <image url='url_1' left='100' top='100' height='100' width='100' level='1'>
        <image mode='opening' track_id='2' url='url_2' left='200' top='200' height='200' width='200' level='2'/>
        这是图片内的文本
        <image mode='closing' track_id='2'/>
    </image>
</speak> <!--混合使用-->"""
    refused(await chat(emu, TEXT_MODE, _loopback_urls(wrong)), 2, "must not contain another")


async def test_2_1_3_level_rules(emu: Emulator) -> None:
    """§2.1.3 "同一时刻一个level最多支持出现一张图片,相邻图片的level不能相同" (and videos)."""
    geo = "url='http://127.0.0.1/a.png' left='1' top='1' width='10' height='10'"
    same_moment = (
        f"<speak><image mode='opening' track_id='1' {geo} level='1'/>甲"
        f"<image {geo} level='1'>乙</image><image mode='closing' track_id='1'/></speak>"
    )
    refused(await chat(emu, TEXT_MODE, same_moment), 2, "level 1")
    adjacent = f"<speak><image {geo} level='1'>甲</image><image {geo} level='1'>乙</image></speak>"
    refused(await chat(emu, TEXT_MODE, adjacent), 2, "adjacent")
    videos = f"<speak>甲<video {geo} level='0'/>乙<video {geo} level='0'/>丙</speak>"
    refused(await chat(emu, TEXT_MODE, videos), 2, "adjacent videos")


async def test_2_1_3_video_example(emu: Emulator) -> None:
    """§2.1.3 视频(video): the example ends ``</speak>。`` — prose punctuation after the root.

    Follows §2.1 (SSML is ``<speak>…</speak>``): with the trailing "。" it is not XML and is
    refused; the markup alone plays (host localhost:8000 kept: the clip is not fetched).
    """
    markup = (
        '<speak>文本一<video url="http://localhost:8000/test_xiaozhao.mp4" left="10" top="20" '
        'width="40" height="80" level="0"/>文本二</speak>'
    )
    refused(await chat(emu, TEXT_MODE, markup + "。"), 2, "XML")
    assert (await chat(emu, TEXT_MODE, markup))["code"] == 1000


CAMERA = (
    "那就让我们赶快看看今天有哪些<camera mode='Camera3D' scene='3dCameraFrontFace' "
    "sensor_height='36.0'/>好物,首先给大家介绍的这款手机。<camera mode='Camera3D' "
    "scene='3dCameraFrontHalf' sensor_height='36.0'/>哈喽,直播间的宝宝们,小琦刚跑完5公里,"
    "元气满满的跟大家见面啦,我可是一个很烫很烫的科技发烧友,对智能产品<camera mode='Camera3D' "
    "scene='3dCameraFrontAll' sensor_height='36.0'/>非常懂行的呦。"
)
BACKGROUND = (
    "<background type='image' url='https://lf3-speech.bytetos.com/obj/speech-tts-external/"
    "ec-live/xiaomi_whole_body.jpeg' transition_effect='shutters' scene_levelmap='0'/>"
    "那就让我们赶快看看今天有哪些好物。"
)


@pytest.mark.parametrize(
    "text", [pytest.param(CAMERA, id="2.1.5-camera"), pytest.param(BACKGROUND, id="2.1.6-bg")]
)
async def test_2_1_5_and_2_1_6_are_3d_only(emu: Emulator, text: str) -> None:
    """§2.1.5 切换镜头 / §2.1.6 切换背景 "(仅3D支持)": spoken on COCO, refused on 2D."""
    assert (await chat(emu, '{"role":"COCO"}', text, "3d"))["code"] == 1000
    refused(await chat(emu, TEXT_MODE, text), 2, "3D only")


async def test_2_1_4_pronunciation_examples_as_rendered(emu: Emulator) -> None:
    """§2.1.4 词条精修: the tags' syntax was lost in the doc's rendering; the text remains."""
    for text in ("指定读音的意思是,在田里除草", "以色列国的官方语言是什么?乌尔都语希伯来语"):
        assert (await chat(emu, TEXT_MODE, text))["code"] == 1000


# ---------------------------------------------------------------------------------------
# §2.2.3 bitrate, §2.2.4 subtitles
# ---------------------------------------------------------------------------------------


async def test_2_2_3_bitrate(emu: Emulator) -> None:
    """§2.2.3: ``|CTL|02|"今天天气真不错"`` (the original form) and ``{"bitrate": 400}``.

    The doc's JSON carries a ``//`` comment, which JSON has no room for: it annotates the
    field; the body sent is the JSON.  Out of [400, 5000] is refused.
    """
    assert (await chat(emu, TEXT_MODE, '"今天天气真不错"'))["code"] == 1000
    async with connect(emu) as raw:
        await raw.send("|CTL|00|" + TEXT_MODE)
        assert (await raw.msg())["code"] == 1000
        await raw.send('|CTL|02|{\n  "bitrate": 400\n}')
        assert await raw.msg() == {"code": 1000, "message": "bitrate updated", "type": 2}
        await raw.send('|CTL|02|{"bitrate": 5001}')
        refused(await raw.msg(), 2, "bitrate")


SUBTITLED = '{"role":"GuoXiaoyuan","codec":"mp4","video":{"subtitle_control":true}}'


async def test_2_2_4_1_subtitle_style_json(emu: Emulator) -> None:
    """§2.2.4.1 json示例: styled subtitles in the video-creation scenario."""
    styled = {
        "text": "<speak>今天天气真不错</speak>",
        "subtitle": {
            "global_style": {
                "fontname": "Source Han Serif CN",
                "fontsize": 18,
                "bold": True,
                "italic": True,
                "underline": True,
                "primary_colour": "0000ff00",
                "outline_colour": "0000ff00",
                "back_colour": "0000ff00",
                "margin_l": 100,
                "margin_r": 100,
                "margin_v": 140,
            }
        },
    }
    assert (await chat(emu, SUBTITLED, json.dumps(styled, indent=4)))["code"] == 1000


async def test_2_2_4_1_subtitles_need_video_production(emu: Emulator) -> None:
    """§2.2.4.1 "当前仅支持在视频创作场景下添加字幕,实时流场景暂不支持"."""
    refused(
        await open_with(emu, '|CTL|00|{"role":"GuoXiaoyuan","video":{"subtitle_control":true}}'),
        0,
        "subtitle_control",
    )


async def test_2_2_4_1_audio_mode_subtitle(emu: Emulator) -> None:
    """§2.2.4.1: ``<speak><audio url="http://xxxx/test.mp3" format="mp3"/><subtitle text="今天天气真不错"/></speak>``.

    Host changed (a loopback server holding an mp3); §2.2.4.3: one subtitle, lasting as
    long as the audio.
    """
    mp3 = _mp3(synth_speech("今天天气真不错")[:24000], 16000)
    async with serve_asgi(_pcm_server({"test.mp3": mp3})) as base:
        async with connect(emu) as raw:
            await raw.send(
                '|CTL|00|{"role":"GuoXiaoyuan","input_mode":"audio","codec":"mp4",'
                '"video":{"subtitle_control":true}}'
            )
            assert (await raw.msg())["code"] == 1000
            await raw.send(
                f'|CTL|02|<speak><audio url="{base}/test.mp3" format="mp3"/>'
                '<subtitle text="今天天气真不错"/></speak>'
            )
            await raw.until_event("voice_end")
            await raw.send("|CTL|01|")
            seen = await raw.until_event("all_subtitles")
    subtitles = json.loads(seen[-1][8:])["callback_info"]["data"]["subtitles"]  # type: ignore[index]
    assert [s["text"] for s in subtitles] == ["今天天气真不错"]
    assert subtitles[0]["start_time_ms"] == 0 and subtitles[0]["end_time_ms"] >= 700


async def test_2_2_4_3_all_subtitles_example(emu: Emulator) -> None:
    """§2.2.4.3 示例: the text's three sentences come back as all_subtitles, contiguous.

    Times are the emulator's own voice's (not the doc's 2880/4000/6760 ms): only the shape,
    the sentence split and their order are the document's.
    """
    text = "<speak>今天天气真不错,好想出去玩。玩什么呐?钓钓鱼,看看花享受大自然。</speak>"
    async with connect(emu) as raw:
        await raw.send("|CTL|00|" + SUBTITLED)
        assert (await raw.msg())["code"] == 1000
        await raw.send("|CTL|02|" + text)
        await raw.until_event("voice_end")
        await raw.send("|CTL|01|")
        seen = await raw.until_event("all_subtitles")
    event = json.loads(seen[-1][8:])  # type: ignore[index]
    subtitles = event["callback_info"]["data"]["subtitles"]
    assert [s["text"] for s in subtitles] == [
        "今天天气真不错,好想出去玩。",
        "玩什么呐?",
        "钓钓鱼,看看花享受大自然。",
    ]
    assert subtitles[0]["start_time_ms"] == 0
    for before, after in itertools.pairwise(subtitles):
        assert before["end_time_ms"] == after["start_time_ms"]
    assert set(subtitles[0]) == {"start_time_ms", "end_time_ms", "text"}


# ---------------------------------------------------------------------------------------
# §5.1.1 the Python demo, run as written
# ---------------------------------------------------------------------------------------

DEMO_SOURCE = """
import websockets
import asyncio
import json

SUCC_CODE = 1000
ILLEGAL_PARAM_CODE = 1001
SRV_BUSY_CODE = 1002
INNER_ERR_CODE = 1003
OTHER_ERR_CODE = 1004

AUDIO_DATA_HEADER = "|DAT|00|"
VIDEO_DATA_HEADER = "|DAT|01|"
JSON_DATA_HEADER = "|DAT|02|"
SELF_DATA_HEADER = "|DAT|03|"
SELF_DATA_END_HEADER = "|DAT|04|"

MSG_HEADER = "|MSG|00|"

OPEN_SESSION_HEADER = "|CTL|00|"
CLOSE_SESSION_HEADER = "|CTL|01|"
CHAT_HEADER = "|CTL|02|"

VOICE_START = "voice_start"
VOICE_END = "voice_end"
VIDEO_URL = "video_url"

conn_header = {"Resource-Id": "volc.avatar.2d"}

# 这部分需要授权下发,根据实际值进行替换
appid = "xxxx"
token = "xxxx"

uri = f"wss://openspeech.bytedance.com/api/v1/volc_virtual_human/tta/2d?appid={appid}&access_token={token}"
uid = "avatar_py_demo"
codec = "mp4"

# 使用说明:测试前替换为具体使用的形象
role = "xxx"
pose = ""
clothes = ""

param = json.dumps({
    "uid": uid,
    "role": role,
    "codec": codec,  # 视频生产需要传codec,实时场景不需要传codec
    "role_conf": {
        "pose_type": pose,
        "clothes_type": clothes
    },
    "output_url": True
})


def parse_event(data):
    obj = json.loads(data)
    info = obj["callback_info"]
    return info["type"], info["data"]


async def generate_video(text):
    try:
        # 建立连接
        print("start to connect {}".format(uri))
        async with websockets.connect(uri, extra_headers=conn_header) as ws:
            # 开启session
            data = OPEN_SESSION_HEADER + param
            print(f"<- {data}")
            await ws.send(data)
            data = await ws.recv()
            print(f"-> {data}")
            # 发送需要播报的文本
            data = CHAT_HEADER + text
            print(f"<- {data}")
            await ws.send(data)
            while True:
                data = await ws.recv()
                header = data[0:8]
                if type(data) is str:
                    print(f"-> {data}")
                # 事件相关回调
                if header == JSON_DATA_HEADER:
                    event, event_data = parse_event(data[8:])
                    if event == VOICE_END:
                        # 关闭session,等待视频合成
                        print(f"<- {CLOSE_SESSION_HEADER}")
                        await ws.send(CLOSE_SESSION_HEADER)
                    elif event == VIDEO_URL:
                        url = event_data["video_url"]
                        print(f"\\n Video produce success, url: {url}")
                        break
                # 控制指令相关回调
                elif header == MSG_HEADER:
                    msg = json.loads(data[8:])
                    if msg["code"] != 1000:
                        break
    except websockets.exceptions.ConnectionClosed as e:
        print(f"Connection closed, code: {e.code}, reason: {e.reason}")


async def generate_stream(text):
    audio_file = open("test.pcm", "wb")
    video_file = open("test.h264", "wb")
    try:
        # 建立连接
        async with websockets.connect(uri, extra_headers=conn_header) as ws:
            # 开启session
            data = OPEN_SESSION_HEADER + param
            print(f"<- {data}")
            await ws.send(data)
            data = await ws.recv()
            print(f"-> {data}")
            # 发送需要播报的文本
            data = CHAT_HEADER + text
            print(f"<- {data}")
            await ws.send(data)
            while True:
                data = await ws.recv()
                header = data[0:8]
                if type(data) is str:
                    print(f"-> {data}")
                # 事件相关回调
                if header == JSON_DATA_HEADER:
                    event, _ = parse_event(data[8:])
                    # 开始播报的事件
                    if event == VOICE_START:
                        pass
                    # 结束播报的事件
                    elif event == VOICE_END:
                        # 关闭session
                        print(f"<- {CLOSE_SESSION_HEADER}")
                        await ws.send(CLOSE_SESSION_HEADER)
                        break
                # 控制指令相关回调
                elif header == MSG_HEADER:
                    msg = json.loads(data[8:])
                    if msg["code"] != 1000:
                        break
                # 二进制相关数据回调
                else:
                    # 获取pcm格式音频数据
                    if bytes.decode(header) == AUDIO_DATA_HEADER:
                        audio_file.write(data[8:])
                    # 获取h264格式视频数据
                    elif bytes.decode(header) == VIDEO_DATA_HEADER:
                        video_file.write(data[8:])
    except websockets.exceptions.ConnectionClosed as e:
        print(f"Connection closed, code: {e.code}, reason: {e.reason}")
    finally:
        audio_file.close()
        video_file.close()
"""


def demo_module(emu: Emulator) -> dict[str, Any]:
    """The demo of §5.1.1, changing only: host, appid/token, the role placeholder, and the
    one keyword the demo's websockets version spelt ``extra_headers`` (websockets >= 14
    renamed it ``additional_headers``: a change of the demo's library version, not of the
    request — the same header goes out)."""
    source = DEMO_SOURCE.replace(
        '"wss://openspeech.bytedance.com/api/v1/volc_virtual_human/tta', f'"{emu.endpoints.tta}'
    )
    source = source.replace('appid = "xxxx"', f'appid = "{emu.appid}"')
    source = source.replace('token = "xxxx"', f'token = "{emu.token}"')
    source = source.replace('role = "xxx"', 'role = "GuoXiaoyuan"')
    source = source.replace("extra_headers=conn_header", "additional_headers=conn_header")
    assert source.count("additional_headers=conn_header") == 2
    namespace: dict[str, Any] = {}
    exec(compile(source, "doc001_demo_5_1_1.py", "exec"), namespace)
    return namespace


async def test_5_1_1_demo_generate_video(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """§5.1.1 generate_video("今天天气真不错。"), the demo's ``__main__``: a video URL.

    Its ``role_conf`` sends ``"pose_type": "", "clothes_type": ""`` — accepted (SPEC §6).
    """
    demo = demo_module(emu)
    await demo["generate_video"]("今天天气真不错。")
    out = capsys.readouterr().out
    assert "session opened" in out
    assert "Video produce success, url: " in out
    url = out.split("Video produce success, url: ")[1].split()[0]
    import httpx

    async with httpx.AsyncClient() as client:
        video = await client.get(url)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as container:
        assert container.streams.video and container.streams.audio


async def test_5_1_1_demo_generate_stream(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§5.1.1 generate_stream: test.pcm and test.h264 hold the streamed audio and video."""
    monkeypatch.chdir(tmp_path)  # the demo writes test.pcm / test.h264 where it runs
    demo = demo_module(emu)
    await demo["generate_stream"]("今天天气真不错。")
    pcm = (tmp_path / "test.pcm").read_bytes()
    h264 = (tmp_path / "test.h264").read_bytes()
    assert len(pcm) > 16000 and len(pcm) % 2 == 0
    with av.open(io.BytesIO(h264), format="h264") as container:
        frames = list(container.decode(video=0))
    assert len(frames) == -(-len(pcm) // 1280)  # one 40 ms frame per 1280 bytes of PCM


def test_demo_source_is_the_documents() -> None:
    """The demo above is doc 001 §5.1.1 verbatim (bar the coding line and ``__main__``)."""
    spec = (
        Path(
            os.environ.get(
                "AVATARKIT_SPECS", Path(__file__).resolve().parents[3] / "shared" / "specs"
            )
        )
        / "001_9ea778c65ad00994.txt"
    )
    if not spec.exists():
        pytest.skip(f"{DOC} not available at {spec}")
    text = spec.read_text()
    start = text.index("import websockets")
    end = text.index("if __name__ == '__main__':")
    assert DEMO_SOURCE.strip() == text[start:end].strip()
