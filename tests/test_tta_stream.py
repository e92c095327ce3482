"""TtaStream against the emulator over real loopback WebSockets."""

from __future__ import annotations

import io
import logging
import math

import anyio
import av
import pytest
import websockets

from avatarkit import (
    AuthenticationError,
    AvatarSession,
    ConnectionLost,
    ServiceError,
    StreamClosed,
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
