"""TtaStream against the emulator over real loopback WebSockets."""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path

import anyio
import av
import pytest
import websockets

from avatarkit import (
    AuthenticationError,
    AvatarSession,
    ConnectionLost,
    ProducedVideo,
    ServiceError,
    StreamClosed,
    TrainingFailed,
    ValidationError,
    events,
)
from avatarkit.emulator import Emulator
from avatarkit.emulator import media as emu_media
from avatarkit.tta import frames
from tests.conftest import FAST_RETRY, SMALL_VIDEO, LoopbackProxy, session_for

pytestmark = pytest.mark.anyio

TEXT = "今天天气真不错。我们出去走走吧！"


def expected_frames(text: str) -> int:
    return math.ceil(emu_media.speech_duration_ms(text) / 40)


async def test_say_streams_audio_video_and_voice_events(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as stream:
            got = await stream.say(TEXT).collect()
    kinds = [type(e) for e in got]
    assert kinds[0] is events.Status and got[0].ok  # type: ignore[union-attr]
    assert kinds[1] is events.VoiceStart
    assert kinds[-1] is events.VoiceEnd
    video = [e for e in got if isinstance(e, events.VideoChunk)]
    audio = b"".join(e.pcm for e in got if isinstance(e, events.AudioChunk))
    assert len(video) == expected_frames(TEXT)
    assert len(audio) == emu_media.speech_duration_ms(TEXT) * 32
    assert bytes(video[0].nal[:4]) == b"\x00\x00\x00\x01"
    # the Annex-B stream decodes to frames of the configured size
    codec = av.CodecContext.create("h264", "r")
    decoded = []
    for chunk in video:  # each VideoChunk is one complete access unit
        decoded.extend(codec.decode(av.Packet(chunk.nal)))
    decoded.extend(codec.decode(None))
    assert len(decoded) == len(video)
    assert (decoded[0].width, decoded[0].height) == (256, 256)


async def test_offline_production_returns_playable_mp4(emulator: Emulator, tmp_path) -> None:
    texts = ["你好。", TEXT]
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
            for text in texts:
                await s.say(text).collect()
            video = await s.finish()
    assert video.data is not None and video.url is None
    path = await video.save(tmp_path / "out.mp4")
    assert path.read_bytes() == video.data
    expected_s = sum(emu_media.speech_duration_ms(t) for t in texts) / 1000
    with av.open(io.BytesIO(video.data)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        vstream = container.streams.video[0]
        assert vstream.codec_context.name == "h264"
        assert (vstream.width, vstream.height) == (256, 256)
        frames_decoded = sum(1 for _ in container.decode(video=0))
    assert frames_decoded == sum(expected_frames(t) for t in texts)
    with av.open(io.BytesIO(video.data)) as container:
        astream = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(audio=0))
        audio_s = samples / astream.codec_context.sample_rate
    assert audio_s == pytest.approx(expected_s, abs=0.1)


async def test_saving_where_nothing_can_be_written_is_a_validation_error(tmp_path) -> None:
    video = ProducedVideo(data=b"\0\0\0\x18ftypmp42", url=None, codec="mp4")
    with pytest.raises(ValidationError, match=r"path.*nowhere.*cannot be written"):
        await video.save(tmp_path / "nowhere" / "out.mp4")
    (tmp_path / "taken.mp4").mkdir()  # the rename's fault, not the write's
    with pytest.raises(ValidationError, match=r"taken\.mp4.*cannot be written"):
        await video.save(tmp_path / "taken.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.mp4"]  # no .partial left


async def test_output_url_delivers_a_downloadable_video(emulator: Emulator, tmp_path) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(
            role="XiaoHuan", codec="mp4", output_url=True, video=SMALL_VIDEO
        ) as s:
            await s.say("你好。").collect()
            video = await s.finish()
        assert video.data is None and video.url is not None
        assert "signature=***" in repr(video)
        path = await video.save(tmp_path / "url.mp4")
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1


async def test_subtitle_events_and_all_subtitles(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(
            role="GuoXiaoyuan", codec="mp4", video={**SMALL_VIDEO, "subtitle_control": True}
        ) as s:
            got = await s.say(TEXT).collect()
            video = await s.finish()
    subs = [e for e in got if isinstance(e, events.Subtitle)]
    assert [type(e) for e in subs] == [events.SubtitleOn, events.SubtitleOff] * 2
    assert [e.text for e in subs[::2]] == ["今天天气真不错。", "我们出去走走吧！"]
    assert [s.text for s in video.subtitles] == ["今天天气真不错。", "我们出去走走吧！"]
    assert video.subtitles[0].start_ms == 0
    assert video.subtitles[0].end_ms == video.subtitles[1].start_ms
    assert video.subtitles[1].end_ms == emu_media.speech_duration_ms(TEXT)


async def test_interrupt_ends_the_utterance_early(emulator: Emulator) -> None:
    long_text = "这是一段很长的话。" * 20
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            seen = 0
            last: events.Event | None = None
            async for event in s.say(long_text):
                last = event
                if isinstance(event, events.VideoChunk):
                    seen += 1
                    if seen == 3:
                        await s.interrupt()
            assert isinstance(last, events.VoiceEnd)
            assert last.data == {"interrupted": True}
            assert seen < expected_frames(long_text)
            # the stream is still usable
            after = await s.say("好的。").collect()
            assert isinstance(after[-1], events.VoiceEnd) and after[-1].data == {}


async def test_abandoned_utterance_does_not_leak_into_the_next(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            async for event in s.say("第一句话说得比较长一些。"):
                if isinstance(event, events.VideoChunk):
                    break  # abandon it mid-way
            second = await s.say("好。").collect()
    video = [e for e in second if isinstance(e, events.VideoChunk)]
    assert len(video) == expected_frames("好。")
    assert isinstance(second[1], events.VoiceStart)


async def test_set_bitrate_and_events_iterator(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            with pytest.raises(ValidationError) as info:
                await s.set_bitrate(399)
            assert info.value.field == "bitrate"
            await s.set_bitrate(2000)
            await s.chat("好。")
            seen: list[events.Event] = []
            async for event in s.events():
                seen.append(event)
                if isinstance(event, events.VoiceEnd):
                    break
    assert seen[0] == events.Status(1000, "bitrate updated", 2)
    assert any(isinstance(e, events.VideoChunk) for e in seen)


async def test_realtime_pacing_streams_the_same_media() -> None:
    async with Emulator(pace="realtime") as emu, session_for(emu) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            got = await s.say("好。").collect()
    assert sum(isinstance(e, events.VideoChunk) for e in got) == expected_frames("好。")


async def test_busy_open_is_retried() -> None:
    async with Emulator(busy_opens=2) as emu, session_for(emu) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            assert not s.closed
        assert emu.stats.tta_rejected_opens == 2
        assert emu.stats.tta_sessions_opened == 1


async def test_busy_open_gives_up_after_bounded_attempts() -> None:
    async with Emulator(busy_opens=100) as emu, session_for(emu) as av_session:
        with pytest.raises(ServiceError) as info:
            async with av_session.tta.open(role="GuoXiaoyuan"):
                pass
        assert info.value.code == 1002 and info.value.retryable
        assert emu.stats.tta_rejected_opens == FAST_RETRY.attempts


async def test_invalid_config_never_reaches_the_network(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        with pytest.raises(ValidationError) as info:
            av_session.tta.open(role="GuoXiaoyuan", video={"video_width": 100})
        assert info.value.field == "video.video_width"
        with pytest.raises(ValidationError) as info:
            av_session.tta.open(
                role="GuoXiaoyuan", codec="mp4", rtmp={"addr": "rtmp://x/live", "live_id": "1"}
            )
        assert info.value.field == "codec"
    assert emulator.stats.tta_sessions_opened == 0


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ('{"role":"GuoXiaoyuan","video":{"video_width":100}}', "video.video_width"),
        ('{"role":"GuoXiaoyuan","video":{"I_frame_interval":"x"}}', "video.I_frame_interval"),
        ('{"role":"GuoXiaoyuan","logo":{"logo_url":"http://x/l.png"}}', "logo."),
        ('{"uid":"u"}', "role"),
        ('{"role":"COCO"}', "role"),
        (
            '{"role":"GuoXiaoyuan","codec":"mp4","rtc":{"app_id":"a","room":"r","uid":"u",'
            '"token":"t"}}',
            "codec",
        ),
        ("not json", "config"),
    ],
)
async def test_emulator_rejects_bad_configs_with_1001(
    emulator: Emulator, config: str, field: str
) -> None:
    url = f"{emulator.endpoints.tta}/2d?appid={emulator.appid}&access_token={emulator.token}"
    async with websockets.connect(url, additional_headers={"Resource-Id": "volc.avatar.2d"}) as ws:
        await ws.send(frames.encode_open(config))
        reply = frames.decode(await ws.recv())
        assert isinstance(reply, events.Status)
        assert (reply.code, reply.type) == (1001, 0)
        assert field in reply.message
        with pytest.raises(websockets.ConnectionClosedOK):
            await ws.recv()


async def test_emulator_answers_control_frames_with_their_msg_type(emulator: Emulator) -> None:
    url = f"{emulator.endpoints.tta}/2d?appid={emulator.appid}&access_token={emulator.token}"
    async with websockets.connect(url, additional_headers={"Resource-Id": "volc.avatar.2d"}) as ws:
        await ws.send(frames.encode_open('{"role":"GuoXiaoyuan"}'))
        assert frames.decode(await ws.recv()) == events.Status(1000, "session opened", 0)
        await ws.send(frames.encode_interrupt())
        assert frames.decode(await ws.recv()) == events.Status(1000, "interrupted", 3)
        await ws.send("|CTL|02|<speak><image></speak>")
        bad = frames.decode(await ws.recv())
        assert isinstance(bad, events.Status) and (bad.code, bad.type) == (1001, 2)
        await ws.send(b"|CTL|08|" + bytes(32000))
        bad = frames.decode(await ws.recv())
        assert isinstance(bad, events.Status) and "input_mode=audio" in bad.message
        await ws.send("|XYZ|42|")
        bad = frames.decode(await ws.recv())
        assert isinstance(bad, events.Status) and "unknown frame header" in bad.message
        await ws.send(frames.encode_close())
        assert frames.decode(await ws.recv()) == events.Status(1000, "session closed", 1)


async def test_bad_credentials_are_refused(emulator: Emulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    from avatarkit import AvatarSession

    async with AvatarSession(
        emulator.appid, "wrong-token-value", endpoints=emulator.endpoints, retry=FAST_RETRY
    ) as av_session:
        with pytest.raises(AuthenticationError) as info:
            async with av_session.tta.open(role="GuoXiaoyuan"):
                pass
    assert info.value.status == 401
    assert "wrong-token-value" not in str(info.value)
    assert "wrong-token-value" not in caplog.text


async def test_emulator_drop_mid_utterance_raises_connection_lost() -> None:
    async with Emulator(drop_after_frames=5) as emu, session_for(emu) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            received = []
            with pytest.raises(ConnectionLost):
                async for event in s.say(TEXT):
                    received.append(event)
            # everything the server sent before the drop was delivered
            assert sum(isinstance(e, events.AudioChunk | events.VideoChunk) for e in received) == 5


async def test_tcp_cut_mid_utterance_raises_connection_lost(emulator: Emulator) -> None:
    """A real drop: a loopback proxy between client and emulator cuts the TCP stream."""
    async with LoopbackProxy(emulator.port).running() as proxy:
        async with AvatarSession(
            emulator.appid, emulator.token, endpoints=proxy.endpoints(), retry=FAST_RETRY
        ) as av_session:
            async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
                with pytest.raises(ConnectionLost):
                    async for event in s.say("这句话会被切断。" * 10):
                        if isinstance(event, events.VideoChunk):
                            proxy.cut()


async def test_close_is_bounded_when_the_peer_goes_silent(emulator: Emulator) -> None:
    async with LoopbackProxy(emulator.port).running() as proxy:
        async with AvatarSession(
            emulator.appid, emulator.token, endpoints=proxy.endpoints(), retry=FAST_RETRY
        ) as av_session:
            stream = await av_session.tta.open(
                role="GuoXiaoyuan", video=SMALL_VIDEO, close_timeout=0.2
            )
            proxy.freeze()
            failures: list[BaseException] = []

            async def waiter() -> None:
                try:
                    await stream.say("你好。").collect()
                except StreamClosed as exc:
                    failures.append(exc)

            with anyio.fail_after(10):  # a guard against hanging, not a timing assertion
                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiter)
                    await anyio.wait_all_tasks_blocked()
                    await stream.aclose()
            assert stream.closed
            assert len(failures) == 1


async def test_3d_endpoint_and_open_errors_that_are_not_retried(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="COCO", video=SMALL_VIDEO) as s:
            assert "/3d?" in repr(s)
            assert isinstance((await s.say("大家好。").collect())[-1], events.VoiceEnd)
        # the service refuses (1001): raised at once, not retried
        with pytest.raises(ServiceError) as info:
            await av_session.tta.open(role="COCO", dimension="2d")
        assert (info.value.code, info.value.retryable) == (1001, False)
        assert "3D role" in str(info.value)
    assert emulator.stats.tta_rejected_opens == 1


async def test_from_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATARKIT_APPID", emulator.appid)
    monkeypatch.setenv("AVATARKIT_TOKEN", emulator.token)
    monkeypatch.setenv("AVATARKIT_TTA_URL", emulator.endpoints.tta)
    async with AvatarSession.from_env(retry=FAST_RETRY) as av_session:
        assert av_session.endpoints.tta == emulator.endpoints.tta
        async with av_session.tta.open(role="XiaoHuan", video=SMALL_VIDEO) as s:
            await s.say("好。").collect()
    monkeypatch.delenv("AVATARKIT_TOKEN")
    with pytest.raises(ValidationError) as info:
        AvatarSession.from_env()
    assert info.value.field == "AVATARKIT_TOKEN"


async def test_many_streams_on_one_session_and_closing_the_session(emulator: Emulator) -> None:
    results: dict[int, int] = {}
    async with session_for(emulator) as av_session:

        async def produce(i: int) -> None:
            async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
                await s.say(f"第{i}个视频。").collect()
                video = await s.finish()
                results[i] = len(video.data or b"")

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(produce, i)

        # a stream left open is closed by the session; its waiting iterator fails clearly
        stream = await av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO)
        failure: list[BaseException] = []

        async def wait_forever() -> None:
            try:
                async for _ in stream.events():
                    pass
            except StreamClosed as exc:
                failure.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_forever)
            await anyio.wait_all_tasks_blocked()
            await av_session.aclose()
            await av_session.aclose()  # idempotent
    assert sorted(results) == [0, 1, 2, 3, 4] and all(results.values())
    assert stream.closed
    assert len(failure) == 1 and "closed" in str(failure[0])
    assert emulator.stats.tta_connections == 0


async def test_stream_close_is_idempotent_and_rejects_later_use(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        stream = await av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO)
        await stream.aclose()
        await stream.aclose()
        with pytest.raises(StreamClosed):
            await stream.say("好。").collect()
        assert "access_token=***" in repr(stream)
        assert emulator.token not in repr(stream) + repr(av_session)


async def test_say_needs_text_mode(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", input_mode="audio") as s:
            with pytest.raises(ValidationError) as info:
                s.say("好")
            assert info.value.field == "input_mode"
            with pytest.raises(ValidationError):
                await s.interrupt()


async def test_ssml_images_show_while_their_text_is_spoken(emulator: Emulator) -> None:
    text = (
        '<speak>第一句话没有图片。<image url="https://x/a.png" left="20" top="30" '
        'width="120" height="80" level="1">这句话有图片。</image>最后一句。</speak>'
    )
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            got = await s.say(text).collect()
    codec = av.CodecContext.create("h264", "r")
    shown = []
    for chunk in (e for e in got if isinstance(e, events.VideoChunk)):
        for frame in codec.decode(av.Packet(chunk.nal)):
            luma = frame.planes[0]
            row = bytes(luma)[31 * luma.line_size : 31 * luma.line_size + 256]
            shown.append(row[21] > 200)  # the box's white border
    first = shown.index(True)
    last = len(shown) - 1 - shown[::-1].index(True)
    before = emu_media.speech_duration_ms("第一句话没有图片。") // 40
    during = emu_media.speech_duration_ms("第一句话没有图片。这句话有图片。") // 40
    assert not any(shown[: before - 1])  # not while the first sentence is spoken
    assert abs(first - before) <= 1 and abs(last + 1 - during) <= 1
    assert all(shown[first : last + 1]) and not any(shown[last + 2 :])


# --- roles (issue 9): refused at open unless catalog or trained; near misses before I/O ----


def training_clip(path: Path) -> Path:
    """A few frames of 1920x1080 H.264 in mp4: what digime review accepts as a training video."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(3):
            frame = av.VideoFrame(1920, 1080, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([i * 60]) * plane.buffer_size)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


async def train_digime(emulator: Emulator, conf_name: str, tmp_path: Path) -> int:
    """Upload and train ``conf_name`` on the emulator through the SDK; its final state."""
    async with session_for(emulator) as av_session:
        clip = training_clip(tmp_path / f"{conf_name}.mp4")
        await av_session.digime.upload(
            clip, conf_name=conf_name, role_show_name="测试", input_resource="conformance"
        )
        await av_session.digime.start_training(
            conf_name, callback_url="http://127.0.0.1:9/callback"
        )
        try:
            info = await av_session.digime.wait(conf_name, timeout=30, poll_interval=0.02)
        except TrainingFailed as exc:
            return int(exc.info.state)  # type: ignore[attr-defined]
        return int(info.state)


async def open_raw(emulator: Emulator, config: str, dimension: str = "2d") -> events.Status:
    url = (
        f"{emulator.endpoints.tta}/{dimension}?appid={emulator.appid}&access_token={emulator.token}"
    )
    headers = {"Resource-Id": f"volc.avatar.{dimension}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(frames.encode_open(config))
        reply = frames.decode(await ws.recv())
        assert isinstance(reply, events.Status)
        return reply


@pytest.mark.parametrize(
    ("role", "dimension"),
    [
        ("NoSuchRole", "2d"),
        ("guoxiaoyuan", "2d"),
        ("GuoXiaoYuan", "2d"),
        ("xiaohuan", "2d"),
        ("coco", "3d"),
        ("LiuXuan", "2d"),  # a customer's avatar id, but not trained on this emulator
    ],
)
async def test_emulator_refuses_roles_outside_the_catalog_at_open(
    emulator: Emulator, role: str, dimension: str
) -> None:
    """Doc 001 §2.1.1: catalog roles by exact name, or the customer's own (trained) avatar."""
    reply = await open_raw(emulator, json.dumps({"role": role}), dimension)
    assert (reply.code, reply.type) == (1001, 0)
    assert f"role={role!r}" in reply.message and "unknown role" in reply.message
    assert emulator.stats.tta_sessions_opened == 0


async def test_sdk_flags_near_misses_before_io_and_sends_unknown_names(
    emulator: Emulator,
) -> None:
    async with session_for(emulator) as av_session:
        with pytest.raises(ValidationError) as info:
            await av_session.tta.open(role="guoxiaoyuan")
        assert "did you mean 'GuoXiaoyuan'?" in str(info.value)
        assert emulator.stats.tta_rejected_opens == 0  # nothing was sent
        # overridden: sent, and the service is the one to refuse it
        with pytest.raises(ServiceError) as refused:
            await av_session.tta.open(role="guoxiaoyuan", strict_role=False)
        assert refused.value.code == 1001 and "'guoxiaoyuan'" in str(refused.value)
        # an unknown name is never refused by the SDK
        with pytest.raises(ServiceError) as unknown:
            await av_session.tta.open(role="NoSuchRole")
        assert unknown.value.code == 1001 and "'NoSuchRole'" in str(unknown.value)
    assert emulator.stats.tta_rejected_opens == 2


async def test_a_trained_digime_is_a_role_and_its_actions_are_not_checked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Emulator(digime_training_seconds=0, digime_fail_conf_names=["Bad-Twin"]) as emu:
        assert await train_digime(emu, "My-Twin", tmp_path) == 2
        assert (await open_raw(emu, '{"role": "My-Twin"}')).code == 1000
        caplog.set_level(logging.WARNING, logger="avatarkit.tta")
        async with session_for(emu) as av_session:
            async with av_session.tta.open(role="My-Twin", video=SMALL_VIDEO) as stream:
                for _ in range(2):
                    got = await stream.say('<speak><action type="wave"/>你好。</speak>').collect()
                    assert isinstance(got[-1], events.VoiceEnd)  # the emulator did not check it
        skipped = [r for r in caplog.records if "action check skipped" in r.getMessage()]
        assert skipped and "'My-Twin'" in skipped[0].getMessage()
        # a failed training does not make a role
        assert await train_digime(emu, "Bad-Twin", tmp_path) == 3
        reply = await open_raw(emu, '{"role": "Bad-Twin"}')
        assert reply.code == 1001 and "'Bad-Twin'" in reply.message


async def test_emulator_catalog_roles_still_check_their_actions(emulator: Emulator) -> None:
    url = f"{emulator.endpoints.tta}/2d?appid={emulator.appid}&access_token={emulator.token}"
    async with websockets.connect(url, additional_headers={"Resource-Id": "volc.avatar.2d"}) as ws:
        await ws.send(frames.encode_open('{"role": "GuoXiaoyuan"}'))
        assert (frames.decode(await ws.recv())).code == 1000  # type: ignore[union-attr]
        await ws.send(frames.encode_chat('<speak><action type="OK"/>你好</speak>'))
        bad = frames.decode(await ws.recv())
        assert isinstance(bad, events.Status) and (bad.code, bad.type) == (1001, 2)
        assert "'OK' is not in GuoXiaoyuan's action library" in bad.message


@pytest.mark.parametrize(
    "config",
    [
        {"role": "GuoXiaoyuan", "role_conf": {"pose_type": "", "clothes_type": ""}},
        {"role": "GuoXiaoyuan", "role_conf": {"voice_type": ""}},
        {"role": "GuoXiaoyuan", "background": ""},
        {"role": "GuoXiaoyuan", "codec": "mp4", "role_conf": {"pose_type": ""}, "output_url": True},
    ],
)
async def test_emulator_reads_empty_optional_strings_as_not_given(
    emulator: Emulator, config: dict[str, object]
) -> None:
    """SPEC §6; doc 001 §2.1.1 background "不设置或者为空时使用默认背景"; the §5.1.1 demo."""
    reply = await open_raw(emulator, json.dumps(config))
    assert reply.code == 1000, reply.message


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"role": ""}, "role"),
        ({"role": "GuoXiaoyuan", "appid": "someone-else"}, "appid"),
        ({"role": "GuoXiaoyuan", "role_conf": {"pose_type": 5}}, "role_conf.pose_type"),
        ({"role": "GuoXiaoyuan", "role_conf": {"speed": 3.5}}, "role_conf.speed"),
        ({"role": "GuoXiaoyuan", "role_conf": {"role_top_offset": 1920}}, "role_top_offset"),
        ({"role": "GuoXiaoyuan", "video": {"video_height": 4000}}, "video.video_height"),
        ({"role": "GuoXiaoyuan", "video": {"video_height": 300}}, "video.video_width"),
        ({"role": "GuoXiaoyuan", "video": {"subtitle_control": True}}, "subtitle_control"),
        ({"role": "GuoXiaoyuan", "logo": {"logo_url": ""}}, "logo.logo_top_offset"),
        ({"role": "GuoXiaoyuan", "input_mode": "video"}, "input_mode"),
        ({"role": "GuoXiaoyuan", "codec": "avi"}, "codec"),
        ({"role": "GuoXiaoyuan", "rtmp": {"addr": "http://x/live", "live_id": "1"}}, "rtmp.addr"),
        ({"role": "GuoXiaoyuan", "rtc": {"app_id": "a", "room": "r", "uid": "u"}}, "rtc.token"),
        ({"role": "GuoXiaoyuan", "output_url": "yes"}, "output_url"),
        (["GuoXiaoyuan"], "config"),
    ],
)
async def test_emulator_config_rules_name_the_field(
    emulator: Emulator, config: object, field: str
) -> None:
    reply = await open_raw(emulator, json.dumps(config))
    assert (reply.code, reply.type) == (1001, 0)
    assert field in reply.message


async def test_emulator_never_quotes_rtc_tokens_or_stream_keys(emulator: Emulator) -> None:
    rtc = {"app_id": "a", "room": "r", "uid": "u", "token": 12345}
    reply = await open_raw(emulator, json.dumps({"role": "GuoXiaoyuan", "rtc": rtc}))
    assert reply.code == 1001 and "rtc.token" in reply.message and "12345" not in reply.message
    rtmp = {"addr": "ftp://host/app/streamkey-secret", "live_id": "1"}
    reply = await open_raw(emulator, json.dumps({"role": "GuoXiaoyuan", "rtmp": rtmp}))
    assert reply.code == 1001 and "streamkey-secret" not in reply.message
