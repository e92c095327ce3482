"""Cancellation, backpressure and secrecy, against the emulator in a child process.

The emulator runs as ``avatarkit emulator`` in its own process here, so every
task and socket in this process belongs to the SDK under test.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import Iterator

import anyio
import pytest

from avatarkit import AuthenticationError, AvatarSession, ConnectionLost, events
from avatarkit.emulator.process import EmulatorProcess
from tests.conftest import FAST_RETRY, SMALL_VIDEO, emulator_process, open_sockets

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def emu_proc() -> Iterator[EmulatorProcess]:
    with emulator_process("--pace", "fast") as proc:
        yield proc


async def _flow(proc: EmulatorProcess, cancel_at: str, scope: anyio.CancelScope) -> None:
    kind, _, n = cancel_at.partition(":")
    count = int(n or 0)
    async with proc.session() as av:
        async with av.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as stream:
            seen = 0
            async for _ in stream.say("你好，世界。"):
                seen += 1
                if kind == "event" and seen == count:
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()
            if kind == "finish":
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stream.finish)
                    for _ in range(count):
                        await anyio.lowlevel.checkpoint()
                    scope.cancel()
            await stream.finish()


@pytest.mark.parametrize(
    "cancel_at",
    [
        "open:0",
        "open:1",
        "open:2",
        "open:3",
        "open:5",
        "open:8",
        "open:9",
        "open:10",
        "open:11",
        "open:12",
        "open:13",
        "open:21",
        "event:1",
        "event:2",
        "event:10",
        "event:30",
        "finish:0",
        "finish:2",
        "finish:6",
    ],
)
async def test_cancelling_at_any_await_leaves_no_task_and_no_socket(
    emu_proc: EmulatorProcess, cancel_at: str
) -> None:
    tasks_before = asyncio.all_tasks()
    sockets_before = open_sockets()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_flow, emu_proc, cancel_at, scope)
            if cancel_at.startswith("open:"):
                for _ in range(int(cancel_at.split(":")[1])):
                    await anyio.lowlevel.checkpoint()
                scope.cancel()
    assert scope.cancel_called
    assert asyncio.all_tasks() == tasks_before
    assert open_sockets() == sockets_before


async def test_flow_completes_when_not_cancelled(emu_proc: EmulatorProcess) -> None:
    """The control for the test above: the same flow, left alone, produces a video."""
    sockets_before = open_sockets()
    async with emu_proc.session() as av:
        async with av.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as stream:
            await stream.say("你好，世界。").collect()
            video = await stream.finish()
    assert video.data and video.data[4:8] == b"ftyp"
    assert open_sockets() == sockets_before


# -- backpressure ---------------------------------------------------------

BIG_FRAME = 40_960


@pytest.fixture(scope="module")
def big_frames_proc() -> Iterator[EmulatorProcess]:
    with emulator_process(
        "--pace",
        "fast",
        "--media",
        "cheap",
        "--frame-bytes",
        str(BIG_FRAME),
        "--audio-chunk-ms",
        "1280",
    ) as proc:
        yield proc


async def _peak_while_consuming_slowly(proc: EmulatorProcess, queue_size: int) -> tuple[int, int]:
    """(peak traced bytes, payload bytes received) for a consumer slower than the socket."""
    text = "好" * 110 + "。"  # ~24 s of speech: ~600 frames of 40 KiB, ~25 MB in all
    received = 0
    tracemalloc.start()
    try:
        async with proc.session() as av:
            async with av.tta.open(
                role="GuoXiaoyuan", video=SMALL_VIDEO, queue_size=queue_size
            ) as stream:
                async for event in stream.say(text):
                    if isinstance(event, events.VideoChunk | events.AudioChunk):
                        received += len(
                            event.nal if isinstance(event, events.VideoChunk) else event.pcm
                        )
                        await anyio.sleep(0.002)  # a consumer slower than the network
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, received


async def test_slow_consumer_keeps_memory_bounded(big_frames_proc: EmulatorProcess) -> None:
    bounded_peak, received = await _peak_while_consuming_slowly(big_frames_proc, queue_size=8)
    assert received > 20_000_000
    # queue (8) + websockets' own buffer (16) + a few in flight, of 40 KiB frames
    assert bounded_peak < 40 * BIG_FRAME + 3_000_000, bounded_peak
    # the control: without a bound the same consumer lets memory grow with the stream
    unbounded_peak, _ = await _peak_while_consuming_slowly(big_frames_proc, queue_size=100_000)
    assert unbounded_peak > 2 * bounded_peak, (unbounded_peak, bounded_peak)


# -- secrets --------------------------------------------------------------


async def test_no_token_in_logs_reprs_or_errors(emu_proc: EmulatorProcess, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = emu_proc.token
    texts: list[str] = []
    async with emu_proc.session() as av:
        texts += [repr(av), repr(av.tta)]
        async with av.tta.open(
            role="GuoXiaoyuan", codec="mp4", output_url=True, video=SMALL_VIDEO
        ) as stream:
            texts.append(repr(stream))
            await stream.say("你好。").collect()
            video = await stream.finish()
            texts.append(repr(video))
    # a refused token and an unreachable host: both error paths
    wrong = "not-the-token-4242"
    async with AvatarSession(
        emu_proc.appid, wrong, endpoints=emu_proc.endpoints, retry=FAST_RETRY
    ) as av:
        with pytest.raises(AuthenticationError) as refused:
            await av.tta.open(role="GuoXiaoyuan")
        texts += [str(refused.value), repr(refused.value)]
    from avatarkit import Endpoints

    async with AvatarSession(
        emu_proc.appid, token, retry=FAST_RETRY, endpoints=Endpoints(tta="ws://127.0.0.1:9/tta")
    ) as av:
        with pytest.raises(ConnectionLost) as unreachable:
            await av.tta.open(role="GuoXiaoyuan")
        texts += [str(unreachable.value), repr(unreachable.value)]
    log_text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    # websockets' debug log of the request line was captured, with the token masked
    assert "access_token=***" in log_text
    for secret in (token, wrong):
        assert secret not in log_text
        for text in texts:
            assert secret not in text
