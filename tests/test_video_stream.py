"""``stream.stream_video()``: the produced video's bytes as they arrive, over loopback."""

from __future__ import annotations

import io

import anyio
import av
import pytest

from avatarkit import StreamClosed, TimeoutError, ValidationError
from avatarkit.emulator import Emulator
from tests.conftest import SMALL_VIDEO, session_for

pytestmark = pytest.mark.anyio

TEXT = "你好，欢迎光临。今天天气真不错。"


def _frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


async def _whole(emu: Emulator, **fields: object) -> bytes:
    """What finish() gives for the same text: the reference."""
    async with session_for(emu) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
            await s.say(TEXT).collect()
            video = await s.finish()
            return await video.read()


async def test_the_packets_come_one_by_one_and_make_the_same_video() -> None:
    async with Emulator(media_chunk_bytes=4096) as emu:
        reference = await _whole(emu)
        async with session_for(emu) as av_session:
            async with av_session.tta.open(
                role="GuoXiaoyuan",
                codec="mp4",
                video={**SMALL_VIDEO, "subtitle_control": True},
            ) as s:
                await s.say(TEXT).collect()
                async with s.stream_video() as video:
                    chunks = [chunk async for chunk in video]
                assert s.closed
    data = b"".join(chunks)
    assert len(chunks) == -(-len(data) // 4096) > 2  # every |DAT|03| packet, in order
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert len(data) == len(reference) and _frames(data) == _frames(reference)
    assert video.bytes_received == len(data) and video.url is None
    assert [item.text for item in video.subtitles]  # collected, as finish() does


async def test_the_first_bytes_arrive_before_the_production_is_delivered() -> None:
    # The emulator lets the video out at 2 KB/s: whole, it would take minutes.  The
    # first packet is here while the emulator has not finished sending; lifting the
    # limit lets the rest through at once.
    async with Emulator(media_chunk_bytes=2048, video_send_bps=2048) as emu:
        async with session_for(emu) as av_session:
            async with av_session.tta.open(role="XiaoHuan", codec="mp4", video=SMALL_VIDEO) as s:
                await s.say(TEXT).collect()
                async with s.stream_video() as video:
                    first = await anext(video)
                    assert emu.stats.tta_videos_delivered == 0
                    emu.options.video_send_bps = None
                    rest = [chunk async for chunk in video]
        assert emu.stats.tta_videos_delivered == 1
    assert _frames(first + b"".join(rest)) > 0


async def test_a_video_url_is_streamed_as_it_downloads() -> None:
    async with Emulator(media_chunk_bytes=1024, video_send_bps=4096) as emu:
        async with session_for(emu) as av_session:
            async with av_session.tta.open(
                role="GuoXiaoyuan", codec="mp4", output_url=True, video=SMALL_VIDEO
            ) as s:
                await s.say(TEXT).collect()
                async with s.stream_video(chunk_bytes=1024) as video:
                    first = await anext(video)
                    assert s.closed  # the session is over; the bytes come over HTTP
                    assert emu.stats.tta_videos_delivered == 0
                    emu.options.video_send_bps = None
                    rest = [chunk async for chunk in video]
    assert video.url is not None and "signature=***" in repr(video)
    assert "signature=" not in repr(video).replace("signature=***", "")
    assert _frames(first + b"".join(rest)) > 0


async def test_leaving_early_closes_the_session(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
            await s.say(TEXT).collect()
            async with s.stream_video() as video:
                async for _chunk in video:
                    break
            assert s.closed
            with pytest.raises(StopAsyncIteration):
                await anext(video)
            with pytest.raises(StreamClosed):
                await s.say("再见。").collect()


async def test_the_whole_is_bounded_by_timeout() -> None:
    async with Emulator(media_chunk_bytes=1024, video_send_bps=1024) as emu:
        async with session_for(emu) as av_session:
            async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
                await s.say(TEXT).collect()
                video = s.stream_video(timeout=0.5)
                with pytest.raises(TimeoutError, match=r"within 0\.5s \(timeout\)"):
                    async for _chunk in video:
                        pass
                assert s.closed


async def test_what_stream_video_refuses(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(
            role="GuoXiaoyuan",
            rtmp={"addr": "rtmp://127.0.0.1:1935/live", "live_id": "x"},
        ) as s:
            with pytest.raises(ValidationError, match="codec"):
                s.stream_video()
        async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
            with pytest.raises(ValidationError, match="timeout"):
                s.stream_video(timeout=0)
            with pytest.raises(ValidationError, match="chunk_bytes"):
                s.stream_video(chunk_bytes=0)
        with pytest.raises(StreamClosed):
            s.stream_video()


async def test_a_caller_holding_a_chunk_pauses_reading_within_the_buffer_bound() -> None:
    # Backpressure, as for every stream: while the caller holds a chunk, the queue fills
    # to buffer_bytes, reading pauses (TCP pushes back on the emulator), and once the
    # caller goes on the rest arrives whole.
    from tests.test_liveness import _Watch

    chunk = 16 * 1024
    async with Emulator(media_chunk_bytes=chunk) as emu:
        async with session_for(emu) as av_session:
            async with av_session.tta.open(
                role="GuoXiaoyuan",
                codec="mp4",
                video={"video_width": 1280, "video_height": 720},
                buffer_bytes=64 * 1024,
            ) as s:
                await s.say(TEXT * 4).collect()  # a video larger than may be held
                async with s.stream_video() as video:
                    first = await anext(video)
                    queue, conn = s._queue, s._conn
                    assert conn is not None
                    watch = _Watch(conn._sink)
                    conn.attach(watch)  # type: ignore[arg-type]
                    while not conn._reading_paused:
                        watch.changed = anyio.Event()
                        if conn._reading_paused:
                            break
                        await watch.changed.wait()
                    # The documented bound: buffer_bytes, plus what one socket read had
                    # in hand when reading was asked to pause (the 256 KiB read buffer).
                    held = queue._bytes
                    assert held <= 64 * 1024 + 256 * 1024
                    rest = [c async for c in video]
    data = first + b"".join(rest)
    assert len(first) + held < len(data)  # paused short of the whole video
    assert _frames(data) > 0
