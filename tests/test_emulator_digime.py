"""The emulator's digime service and HTTP shaping, over real loopback HTTP."""

from __future__ import annotations

import base64
import io
import logging
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import av
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from avatarkit.digime.plan import plan_parts
from avatarkit.emulator import Emulator
from avatarkit.emulator.server import _InProcessServer, bind
from avatarkit.emulator.shaping import Shaper, TokenBucket
from avatarkit.errors import ValidationError

pytestmark = pytest.mark.anyio

MIN = 1024  # digime_min_part_bytes in these tests
CONF = "Liu-Xuan1"
OPTS: dict[str, Any] = {"digime_min_part_bytes": MIN, "digime_training_seconds": 0.0}


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Api:
    """Hand-built digime requests against one emulator."""

    def __init__(self, emu: Emulator, client: httpx.AsyncClient) -> None:
        self.emu = emu
        self.client = client

    async def post(
        self,
        op: str,
        body: Any,
        *,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if token != "":
            headers["Authorization"] = self.emu.token if token is None else token
        content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        return await self.client.post(
            f"{self.emu.endpoints.digime}/{op}", content=content, headers=headers
        )

    def init_body(self, **over: Any) -> dict[str, Any]:
        body = {
            "conf_name": CONF,
            "role_show_name": "刘璇",
            "type": 1,
            "input_resource": "ACME Corp",
            "appid": self.emu.appid,
            "file_suffix": "mp4",
        }
        return drop_none({**body, **over})

    def part_body(self, upload_id: str, part_num: int, data: bytes, **over: Any) -> dict[str, Any]:
        body = {
            "conf_name": CONF,
            "type": 1,
            "upload_id": upload_id,
            "file_suffix": "mp4",
            "part_num": part_num,
            "content": b64(data),
            "appid": self.emu.appid,
        }
        return drop_none({**body, **over})

    def complete_body(self, upload_id: str, **over: Any) -> dict[str, Any]:
        body = {
            "conf_name": CONF,
            "type": 1,
            "upload_id": upload_id,
            "file_suffix": "mp4",
            "appid": self.emu.appid,
        }
        return drop_none({**body, **over})

    async def init(self, **over: Any) -> str:
        data = ok(await self.post("init_part_upload", self.init_body(**over)))
        return data if isinstance(data, str) else data["upload_id"]

    async def part(self, upload_id: str, part_num: int, data: bytes, **over: Any) -> Any:
        return await self.post(
            "video_part_upload", self.part_body(upload_id, part_num, data, **over)
        )

    async def complete(self, upload_id: str, **over: Any) -> httpx.Response:
        return await self.post("video_complete_upload", self.complete_body(upload_id, **over))

    async def upload(self, data: bytes, part_size: int = 2 * MIN, **over: Any) -> str:
        """A whole upload, parts laid out as the SDK would."""
        upload_id = await self.init(**over)
        over.pop("role_show_name", None)
        over.pop("input_resource", None)
        over.pop("tts_type", None)
        for part in plan_parts(len(data), part_size, MIN):
            chunk = data[part.offset : part.offset + part.length]
            ok(await self.part(upload_id, part.number, chunk, **over))
        ok(await self.complete(upload_id, **over))
        return upload_id

    async def train(self, conf_name: str, callback_url: str) -> httpx.Response:
        body = {"appid": self.emu.appid, "conf_name": conf_name, "callback_url": callback_url}
        return await self.post("init_train_digime", body)

    async def info(self, conf_name: str) -> httpx.Response:
        return await self.post(
            "digime_training_info", {"appid": self.emu.appid, "conf_name": conf_name}
        )


def drop_none(body: dict[str, Any]) -> dict[str, Any]:
    """None in an override means: leave the field out."""
    return {k: v for k, v in body.items() if v is not None}


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    env = response.json()
    assert env["errno"] == 0 and env["errMsg"] == "success", env
    return env["data"]


def fails(response: httpx.Response, status: int, errno: int, *words: str) -> str:
    assert response.status_code == status, response.text
    env = response.json()
    assert env["errno"] == errno, env
    assert env["data"] is None
    for word in words:
        assert word in env["errMsg"], (word, env["errMsg"])
    return str(env["errMsg"])


@asynccontextmanager
async def digime(**options: Any) -> AsyncIterator[Api]:
    async with Emulator(**{**OPTS, **options}) as emu:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            yield Api(emu, client)


# -- upload ---------------------------------------------------------------------


async def test_happy_path_assembles_the_file() -> None:
    data = data_of(4 * MIN + 300)
    async with digime() as api:
        upload_id = await api.init()
        assert re.fullmatch(r"[0-9a-f]{24}", upload_id)
        parts = plan_parts(len(data), 2 * MIN, MIN)
        assert [p.length for p in parts] == [2 * MIN, 2 * MIN + 300]  # short tail merged
        for part in parts:
            chunk = data[part.offset : part.offset + part.length]
            assert ok(await api.part(upload_id, part.number, chunk)) == "video part upload success"
        assert ok(await api.complete(upload_id)) == "finish video part upload successs"

        state = api.emu.state
        record = state.digime.uploads[upload_id]
        assert record.completed and record.part_sizes == [p.length for p in parts]
        assert (record.appid, record.conf_name, record.type) == (api.emu.appid, CONF, 1)
        assert (record.file_suffix, record.role_show_name) == ("mp4", "刘璇")
        assert (record.input_resource, record.tts_type) == ("ACME Corp", None)
        assert state.digime.completed_file(conf_name=CONF).read_bytes() == data
        assert state.digime.completed_file(upload_id=upload_id) == record.path
        assert api.emu.stats.digime_parts_received == 2
        assert api.emu.stats.digime_part_bytes == len(data)
        directory = record.path.parent
    assert not directory.exists()  # removed on shutdown


async def test_init_shapes_and_audio_upload(voice_tar: bytes) -> None:
    async with digime() as api:
        response = await api.post("init_part_upload", api.init_body())
        assert set(ok(response)) == {"upload_id"}
    async with digime(digime_init_data_shape="bare") as api:
        data = voice_tar
        audio: dict[str, Any] = {"type": 11, "file_suffix": "tar", "tts_type": "tts_model_v2"}
        upload_id = await api.upload(data, conf_name=None, role_show_name=None, **audio)
        assert re.fullmatch(r"[0-9a-f]{24}", upload_id)
        record = api.emu.state.digime.uploads[upload_id]
        assert (record.type, record.tts_type, record.conf_name) == (11, "tts_model_v2", None)
        assert api.emu.state.digime.completed_file(upload_id=upload_id).read_bytes() == data


async def test_audio_conf_name_is_optional_but_checked() -> None:
    audio = {"type": 11, "file_suffix": "zip", "tts_type": "tts_model_v1", "role_show_name": None}
    async with digime() as api:
        assert await api.init(conf_name="", **audio)  # the doc's example sends ""
        upload_id = await api.init(conf_name="Voice-1", **audio)
        assert api.emu.state.digime.uploads[upload_id].conf_name == "Voice-1"
        response = await api.post("init_part_upload", api.init_body(conf_name="a b", **audio))
        fails(response, 400, 40001, "conf_name", "'a b'")


INIT_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"conf_name": None}, "conf_name", "required"),
    ({"conf_name": "Liu Xuan"}, "conf_name", "A-Za-z0-9-"),
    ({"type": 4}, "type", "training=1"),
    ({"type": "1"}, "type", "`int`"),
    ({"type": True}, "type", "`bool`"),
    ({"file_suffix": "zip"}, "file_suffix", "mp4 or mov"),
    ({"type": 11, "file_suffix": "mp4", "tts_type": "tts_model_v1"}, "file_suffix", "zip or tar"),
    ({"appid": "someone-else"}, "appid", "someone-else"),
    ({"type": 11, "file_suffix": "zip"}, "tts_type", "tts_model_v1"),
    ({"type": 11, "file_suffix": "zip", "tts_type": "v3"}, "tts_type", "'v3'"),
    ({"tts_type": "tts_model_v1"}, "tts_type", "only for audio"),
    ({"role_show_name": None}, "role_show_name", "required"),
    ({"role_show_name": " "}, "role_show_name", "non-empty"),
    ({"input_resource": None}, "input_resource", "required"),
    ({"tts_type": "tts_model_v1", "role_show_name": None}, "tts_type", "only for audio"),
    ({"appid": 7}, "appid", "`str`"),
]


async def test_init_errors_name_the_field() -> None:
    async with digime() as api:  # one emulator for all cases: starting one takes ~0.2 s
        for over, name, rule in INIT_ERRORS:
            response = await api.post("init_part_upload", api.init_body(**over))
            message = fails(response, 400, 40001)
            assert message.startswith(f"invalid parameter: {name}="), (over, message)
            assert rule in message, (over, message)
        assert not api.emu.state.digime.uploads


async def test_request_level_errors() -> None:
    async with digime() as api:
        body = api.init_body()
        fails(await api.post("init_part_upload", body, token=""), 401, 40100, "Authorization")
        bearer = await api.post("init_part_upload", body, token=f"Bearer {api.emu.token}")
        fails(bearer, 401, 40100, 'without "Bearer "')
        wrong = await api.post("init_part_upload", body, token="nope")
        fails(wrong, 401, 40100, "invalid token")
        text = await api.post("init_part_upload", body, content_type="text/plain")
        fails(text, 400, 40001, "Content-Type", "application/json")
        charset = await api.post(
            "init_part_upload", body, content_type="application/json; charset=utf-8"
        )
        ok(charset)
        fails(await api.post("init_part_upload", b"{nope"), 400, 40001, "not JSON")
        fails(await api.post("init_part_upload", b"[1, 2]"), 400, 40001, "body", "object")

        get = await api.client.get(f"{api.emu.endpoints.digime}/init_part_upload")
        fails(get, 405, 40500, "GET")
        assert get.headers["allow"] == "POST"
        fails(await api.post("no_such_thing", body), 404, 40400, "no_such_thing")


async def test_part_and_complete_errors() -> None:
    async with digime() as api:
        upload_id = await api.init()
        big, small = data_of(2 * MIN), data_of(MIN - 1)

        fails(await api.part("0" * 24, 1, big), 400, 40002, "upload_id", "unknown")
        fails(await api.complete("0" * 24), 400, 40002, "unknown")
        fails(await api.complete(upload_id), 400, 40006, upload_id)
        fails(await api.part(upload_id, 2, big), 400, 40003, "part_num=2", "expected 1")
        fails(await api.part(upload_id, 0, big), 400, 40003, "expected 1")
        fails(await api.part(upload_id, 1, b""), 400, 40004, "empty")

        # Field checks of a part: 40001 for a bad value, 40007 for a change since init.
        fails(await api.part(upload_id, 1, big, conf_name=None), 400, 40001, "conf_name")
        fails(await api.part(upload_id, 1, big, file_suffix="avi"), 400, 40001, "file_suffix")
        fails(await api.part(upload_id, 1, big, appid="x"), 400, 40001, "appid")
        fails(await api.part(upload_id, 1, big, type=2), 400, 40007, "type=2", "type=1")
        fails(await api.part(upload_id, 1, big, file_suffix="mov"), 400, 40007, "file_suffix")
        fails(await api.part(upload_id, 1, big, conf_name="Other"), 400, 40007, "'Other'")
        fails(await api.complete(upload_id, conf_name="Other"), 400, 40007, "conf_name")
        fails(await api.complete(upload_id, type=3), 400, 40007, "type=3")
        no_id = api.complete_body(upload_id)
        del no_id["upload_id"]
        fails(await api.post("video_complete_upload", no_id), 400, 40001, "upload_id", "required")

        # Content: missing or wrong-typed is 40001, undecodable base64 is 40005.
        no_content = api.part_body(upload_id, 1, big, content=None)
        fails(await api.post("video_part_upload", no_content), 400, 40001, "content", "required")
        as_int = api.part_body(upload_id, 1, big, content=12)
        fails(await api.post("video_part_upload", as_int), 400, 40001, "content", "base64")
        for bad in (
            "@@@@",
            "-_-_",
            b64(big).rstrip("="),
            b64(b"hello")[:4] + "\n" + b64(b"hello")[4:],
        ):
            body = api.part_body(upload_id, 1, big, content=bad)
            fails(await api.post("video_part_upload", body), 400, 40005, "content", "base64")
        bad_num = {**api.part_body(upload_id, 1, big), "part_num": "1"}
        fails(await api.post("video_part_upload", bad_num), 400, 40001, "part_num", "`int`")

        # Part size: a short part may only be the last one.
        ok(await api.part(upload_id, 1, small))
        fails(await api.part(upload_id, 2, big), 400, 40004, "part 1 has 1023 bytes", str(MIN))
        ok(await api.part(upload_id, 1, big))  # resend part 1 at full size
        ok(await api.part(upload_id, 2, small))
        fails(await api.complete(upload_id), 400, 40004, "last part", "merged")
        fails(await api.part(upload_id, 4, big), 400, 40003, "expected 3", "or 2")
        ok(await api.part(upload_id, 2, big + small))  # merged, as the rule wants
        ok(await api.complete(upload_id))

        fails(await api.part(upload_id, 3, big), 400, 40002, "already completed")
        fails(await api.complete(upload_id), 400, 40002, "already completed")
        path = api.emu.state.digime.completed_file(upload_id=upload_id)
        assert path.read_bytes() == big + big + small
        assert api.emu.stats.digime_parts_received == 4

        # A lone short part is fine.
        lone = await api.init()
        ok(await api.part(lone, 1, b"x"))
        ok(await api.complete(lone))


async def test_resending_the_last_part_replaces_it() -> None:
    async with digime() as api:
        upload_id = await api.init()
        a, b, c, d = (data_of(2 * MIN, seed=n) for n in range(4))
        ok(await api.part(upload_id, 1, a))
        ok(await api.part(upload_id, 1, b))  # the reply to the first try was "lost"
        ok(await api.part(upload_id, 2, c + c))
        ok(await api.part(upload_id, 2, d))  # shorter: the file is truncated back
        fails(await api.part(upload_id, 1, a), 400, 40003, "expected 3")
        ok(await api.complete(upload_id))
        record = api.emu.state.digime.uploads[upload_id]
        assert record.part_sizes == [2 * MIN, 2 * MIN]
        assert record.path.read_bytes() == b + d


# -- training -------------------------------------------------------------------


@dataclass
class CallbackSink:
    """A tiny HTTP server receiving training callbacks."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: anyio.Event = field(default_factory=anyio.Event)

    async def endpoint(self, request: Request) -> Response:
        assert request.headers["content-type"] == "application/json"
        self.received.append(await request.json())
        self.arrived.set()
        return JSONResponse({"ok": True})


@asynccontextmanager
async def callback_sink() -> AsyncIterator[CallbackSink]:
    sink = CallbackSink()
    app = Starlette(routes=[Route("/cb", sink.endpoint, methods=["POST"])])
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning")
    server = _InProcessServer(config)
    sink.url = f"http://127.0.0.1:{sock.getsockname()[1]}/cb?sig=s3cret"
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(server.serve, sockets=[sock]))
            try:
                yield sink
            finally:
                server.should_exit = True
    finally:
        sock.close()


async def test_training_success_calls_back(training_clip: bytes) -> None:
    async with digime() as api, callback_sink() as sink:
        await api.upload(training_clip)
        assert ok(await api.train(CONF, sink.url)) == "init train digime succ"
        with anyio.fail_after(5):
            await sink.arrived.wait()
            await api.emu.state.digime.trainings[CONF].finished.wait()
        [callback] = sink.received
        assert set(callback) == {"conf_name", "role_pic", "pre_pic", "state"}
        assert (callback["conf_name"], callback["state"]) == (CONF, 2)
        base = f"{api.emu.http_url}/digime/pics/{CONF}"
        assert (callback["role_pic"], callback["pre_pic"]) == (
            f"{base}/role.png",
            f"{base}/pre.png",
        )
        assert ok(await api.info(CONF)) == callback
        assert api.emu.stats.digime_callbacks_sent == 1

        for pic, fmt in (("role_pic", "rgb24"), ("pre_pic", "rgba")):
            response = await api.client.get(callback[pic])
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/png"
            with av.open(io.BytesIO(response.content), "r", format="png_pipe") as container:
                frame = next(container.decode(video=0))
                assert (frame.width, frame.height, frame.format.name) == (64, 64, fmt)


async def test_training_failure_state_3(training_clip: bytes) -> None:
    async with digime(digime_fail_conf_names=("Bad-1",)) as api, callback_sink() as sink:
        await api.upload(training_clip, conf_name="Bad-1")
        ok(await api.train("Bad-1", sink.url))
        with anyio.fail_after(5):
            await api.emu.state.digime.trainings["Bad-1"].finished.wait()
        reason = "the training failed on purpose (the emulator's digime_fail_conf_names)"
        [callback] = sink.received
        assert callback == {
            "conf_name": "Bad-1",
            "role_pic": "",
            "pre_pic": "",
            "state": 3,
            "fail_reason": reason,
        }
        info = ok(await api.info("Bad-1"))
        assert info == callback
        missing = await api.client.get(f"{api.emu.http_url}/digime/pics/Bad-1/role.png")
        assert missing.status_code == 404


async def test_empty_optional_strings_are_accepted() -> None:
    """Doc 000's init examples send ``"input_resource": ""`` and (audio) ``"conf_name": ""``;
    an empty tts_type on a video is "not given" (SPEC §6)."""
    async with digime() as api:
        upload_id = await api.init(input_resource="", tts_type="")
        record = api.emu.state.digime.uploads[upload_id]
        assert (record.input_resource, record.tts_type) == ("", None)


@pytest.mark.parametrize(
    ("clip", "words"),
    [
        ("small_clip", ("1280x720", "1080p", "mp4 or mov")),
        (None, ("not a readable video",)),
    ],
)
async def test_training_review_fails_media_outside_the_doc(
    request: pytest.FixtureRequest, clip: str | None, words: tuple[str, ...]
) -> None:
    """制作分身: "训练视频:允许格式 1080p/4K mp4/mov"; anything else ends in state 3."""
    data = request.getfixturevalue(clip) if clip else data_of(3 * MIN)
    async with digime() as api, callback_sink() as sink:
        await api.upload(data)
        ok(await api.train(CONF, sink.url))
        with anyio.fail_after(10):
            await api.emu.state.digime.trainings[CONF].finished.wait()
        info = ok(await api.info(CONF))
        assert (info["state"], info["role_pic"], info["pre_pic"]) == (3, "", "")
        for word in words:
            assert word in info["fail_reason"], info
        assert sink.received == [info]


async def test_training_review_takes_portrait_and_mov(training_clip: bytes) -> None:
    import tests.conftest as helpers

    portrait = helpers._training_clip(1080, 1920)
    async with digime() as api:
        await api.upload(portrait)
        ok(await api.train(CONF, "http://127.0.0.1:9/cb"))
        await api.upload(training_clip, conf_name="Mov-1", file_suffix="mov")
        ok(await api.train("Mov-1", "http://127.0.0.1:9/cb"))
        with anyio.fail_after(10):
            await api.emu.state.digime.trainings[CONF].finished.wait()
            await api.emu.state.digime.trainings["Mov-1"].finished.wait()
        assert ok(await api.info(CONF))["state"] == 2
        assert ok(await api.info("Mov-1"))["state"] == 2


async def test_voice_archive_review(voice_tar: bytes) -> None:
    """制作音色: audio files in one folder, zip or tar; checked at complete (40008)."""
    import tarfile
    import zipfile

    def tar_of(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        with tarfile.open(fileobj=io.BytesIO(voice_tar)) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member)
                assert extracted is not None
                z.writestr(member.name, extracted.read())
        z.writestr("__MACOSX/._0.wav", b"resource fork")  # ignored, as are hidden files
    audio = {"type": 11, "tts_type": "tts_model_v1", "conf_name": None, "role_show_name": None}
    async with digime() as api:
        await api.upload(zipped.getvalue(), file_suffix="zip", **audio)
        cases = [
            (data_of(3 * MIN), "tar", "not a readable tar archive"),
            (voice_tar, "zip", "not a readable zip archive"),
            (tar_of({}), "tar", "holds no audio file"),
            (tar_of({"voice/notes.txt": b"hello"}), "tar", "'voice/notes.txt'"),
        ]
        for data, suffix, words in cases:
            upload_id = await api.init(file_suffix=suffix, **audio)
            ok(await api.part(upload_id, 1, data, file_suffix=suffix, type=11, conf_name=None))
            response = await api.complete(upload_id, file_suffix=suffix, type=11, conf_name=None)
            fails(response, 400, 40008, words, "upload it again")
            assert not api.emu.state.digime.uploads[upload_id].completed


async def test_training_in_progress_restart_and_shutdown() -> None:
    async with digime(digime_training_seconds=60) as api, callback_sink() as sink:
        await api.upload(data_of(MIN))  # reviewed only when the timer ends
        ok(await api.train(CONF, sink.url))
        first = api.emu.state.digime.trainings[CONF]
        info = ok(await api.info(CONF))
        assert info == {"conf_name": CONF, "role_pic": "", "pre_pic": "", "state": 1}
        ok(await api.train(CONF, sink.url))  # training again restarts it
        second = api.emu.state.digime.trainings[CONF]
        assert second is not first and first.scope.cancel_called
        assert ok(await api.info(CONF))["state"] == 1
    # Leaving the emulator cancelled the 60-second timer instead of waiting for it.
    assert not second.finished.is_set() and sink.received == []


async def test_training_errors() -> None:
    async with digime() as api:
        url = "http://127.0.0.1:9/cb"
        fails(await api.train(CONF, url), 404, 40401, CONF, "type 1")
        await api.upload(data_of(MIN), conf_name="Tmpl", type=2)
        fails(await api.train("Tmpl", url), 404, 40401, "Tmpl")
        await api.upload(data_of(MIN))
        fails(await api.train(CONF, "ftp://127.0.0.1/cb"), 400, 40001, "callback_url", "http(s)")
        fails(await api.train(CONF, "not a url"), 400, 40001, "callback_url")
        fails(await api.train("a_b", url), 400, 40001, "conf_name", "A-Za-z0-9-")
        fails(await api.info("Nobody"), 404, 40401, "conf_name='Nobody'")
        fails(await api.info("a b"), 400, 40001, "conf_name")
        no_cb = {"appid": api.emu.appid, "conf_name": CONF}
        fails(await api.post("init_train_digime", no_cb), 400, 40001, "callback_url", "required")


async def test_unreachable_callback_is_logged_redacted_and_not_fatal(
    caplog: pytest.LogCaptureFixture, training_clip: bytes
) -> None:
    sock = bind("127.0.0.1", 0)
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/cb?token=very-secret"
    sock.close()  # nobody listens there any more: connections are refused
    caplog.set_level(logging.WARNING, logger="avatarkit.emulator.digime.training")
    async with digime() as api:
        await api.upload(training_clip)
        ok(await api.train(CONF, dead))
        with anyio.fail_after(5):
            await api.emu.state.digime.trainings[CONF].finished.wait()
        assert ok(await api.info(CONF))["state"] == 2  # the emulator is still fine
        assert api.emu.stats.digime_callbacks_sent == 0
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "avatarkit.emulator.digime.training"
    ]
    assert len(warnings) == 3
    assert all("token=***" in w and "very-secret" not in w for w in warnings)


# -- shaping and fault injection -------------------------------------------------


async def test_injected_5xx_stores_nothing() -> None:
    async with digime(failure_rate=1.0, failure_mode="5xx") as api:
        upload_id = await api.init()  # only part uploads are faulted
        for _ in range(3):
            response = await api.part(upload_id, 1, data_of(MIN))
            fails(response, 503, 50300, "injected")
        assert api.emu.state.digime.uploads[upload_id].part_sizes == []
        assert api.emu.stats.digime_parts_received == 0
        assert api.emu.stats.digime_injected_failures == 3
        fails(await api.complete(upload_id), 400, 40006)


async def test_injected_drop_is_a_transport_error_and_resend_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed, tries = 7, 6
    rng = random.Random(seed)  # per request: fail? then stored?
    stored = [rng.random() < 1.0 and rng.random() < 0.5 for _ in range(tries)]
    assert any(stored) and not all(stored)  # the seed exercises both outcomes
    async with digime(failure_rate=1.0, failure_mode="drop", fault_seed=seed) as api:
        upload_id = await api.init()
        data = data_of(MIN)
        for _ in range(tries):
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await api.part(upload_id, 1, data)
        assert api.emu.stats.digime_injected_failures == tries
        assert api.emu.stats.digime_parts_received == sum(stored)
        assert api.emu.state.digime.uploads[upload_id].part_sizes == [MIN]

        api.emu.options.failure_rate = 0.0  # the network heals
        ok(await api.part(upload_id, 1, data))  # the same part_num again: replaced
        ok(await api.complete(upload_id))
        assert api.emu.state.digime.completed_file(upload_id=upload_id).read_bytes() == data
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]


async def test_seeded_faults_are_deterministic() -> None:
    seed, n = 1234, 20
    rng = random.Random(seed)
    expected_5xx = sum(rng.random() < 0.5 for _ in range(n))
    assert 0 < expected_5xx < n
    async with digime(failure_rate=0.5, failure_mode="5xx", fault_seed=seed) as api:
        upload_id = await api.init()
        statuses = [(await api.part(upload_id, 1, data_of(MIN))).status_code for _ in range(n)]
        assert statuses.count(503) == expected_5xx == api.emu.stats.digime_injected_failures
        assert statuses.count(200) == n - expected_5xx

    rng = random.Random(seed)  # mixed: fail? then 5xx (< 0.5) or drop, then stored?
    expected: list[str] = []
    for _ in range(6):
        rng.random()
        if rng.random() < 0.5:
            expected.append("5xx")
        else:
            rng.random()
            expected.append("drop")
    async with digime(failure_rate=1.0, fault_seed=seed) as api:  # mode "mixed" by default
        upload_id = await api.init()
        seen = []
        for _ in expected:
            try:
                response = await api.part(upload_id, 1, data_of(MIN))
            except (httpx.RemoteProtocolError, httpx.ReadError):
                seen.append("drop")
            else:
                fails(response, 503, 50300)
                seen.append("5xx")
        assert seen == expected


async def test_shaped_upload_succeeds() -> None:
    data = data_of(40 * MIN, seed=9)
    async with digime(latency_ms=5, bandwidth_bps=2_000_000) as api:
        upload_id = await api.upload(data, part_size=8 * MIN)
        assert api.emu.state.digime.completed_file(upload_id=upload_id).read_bytes() == data


def test_token_bucket_math() -> None:
    # Powers of two keep the float arithmetic exact.
    now = [100.0]
    bucket = TokenBucket(1024, burst=256, clock=lambda: now[0])
    assert bucket.take(192) == 0  # within the burst
    assert bucket.take(128) == 0.0625  # 64 bytes short at 1024 B/s
    now[0] += 0.0625  # the debt is repaid exactly
    assert bucket.take(0) == 0 and bucket.tokens == 0
    assert bucket.take(3072) == 3.0  # a chunk larger than the burst
    now[0] += 10.0  # idle time refills at most the burst
    assert bucket.take(0) == 0 and bucket.tokens == 256
    assert TokenBucket(2000, clock=lambda: 0.0).burst == pytest.approx(100)  # 50 ms worth
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)


async def test_shaper_keeps_one_bucket_per_connection() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    emu = Emulator(bandwidth_bps=1000)
    shaper = Shaper(app, emu.options, emu.state, path_prefixes=("/x",))
    one = {"type": "http", "client": ("127.0.0.1", 5000)}
    assert shaper.bucket_for(one) is shaper.bucket_for(dict(one))
    assert shaper.bucket_for({"type": "http", "client": ("127.0.0.1", 5001)}) is not (
        shaper.bucket_for(one)
    )
    assert shaper.bucket_for(one).rate == 1000


async def test_shaper_caps_all_connections_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bandwidth_total_bps`` is one bucket for every connection, on top of each one's own."""
    import types

    from avatarkit.emulator import shaping

    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(shaping, "anyio", types.SimpleNamespace(sleep=sleep))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    emu = Emulator(bandwidth_bps=1024, bandwidth_total_bps=2048)
    shaper = Shaper(app, emu.options, emu.state, path_prefixes=("/x",))
    a = {"type": "http", "path": "/x", "method": "PUT", "client": ("127.0.0.1", 5000)}
    b = {**a, "client": ("127.0.0.1", 5001)}
    total = shaper.total_bucket()
    assert total is not None and total.rate == 2048 and shaper.total_bucket() is total
    assert shaper._buckets_of(a)[1] is shaper._buckets_of(b)[1] is total
    # A frozen clock and powers of two keep the arithmetic exact.
    clock = lambda: 0.0  # noqa: E731
    shaper._total = TokenBucket(2048, burst=256, clock=clock)
    for scope in (a, b):
        shaper._buckets[tuple(scope["client"])] = TokenBucket(1024, burst=256, clock=clock)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"x" * 512, "more_body": False}

    await shaper(a, receive, _no_send)
    await shaper(b, receive, _no_send)
    # a: its own bucket (256 short at 1 KiB/s) is the slower; b: the shared one,
    # now 768 short at 2 KiB/s, is (per connection alone it would wait 0.25 s).
    assert delays == [0.25, 0.375]

    emu.options.bandwidth_bps = None  # the total cap alone
    assert shaper._buckets_of(a) == (shaper._total,)
    emu.options.bandwidth_total_bps = None
    assert shaper._buckets_of(a) == () and shaper.total_bucket() is None


async def _no_send(message: Any) -> None:
    pass


@pytest.mark.parametrize(
    "bad",
    [
        {"failure_rate": 1.5},
        {"failure_mode": "explode"},
        {"bandwidth_bps": 0},
        {"bandwidth_total_bps": -1},
        {"latency_ms": -1},
        {"frame_bytes": 0},
        {"digime_min_part_bytes": 0},
        {"digime_init_data_shape": "list"},
    ],
)
def test_bad_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=next(iter(bad))):
        Emulator(**bad)
