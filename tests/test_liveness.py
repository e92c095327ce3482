"""A stream never hangs, and its memory is bounded in bytes: against a hostile server.

The server (``tests/hostile_tta.py``) runs over real loopback sockets; each
test asserts which typed error arrives, never how fast (the bounds are
measured in ``benchmarks/liveness.py``).
"""

from __future__ import annotations

import tracemalloc

import anyio
import pytest

from avatarkit import (
    AvatarSession,
    ConnectionLost,
    Endpoints,
    ProtocolError,
    RetryPolicy,
    StreamLimits,
    TimeoutError,
    ValidationError,
    events,
)
from tests import hostile_tta

pytestmark = pytest.mark.anyio

NO_RETRY = RetryPolicy(attempts=1)
# Short bounds: what is tested is that the error comes, and which.
QUICK = StreamLimits(
    idle_timeout=0.3, ping_interval=0.2, ping_timeout=0.3, open_timeout=2, close_timeout=0.3
)


def session(port: int, limits: StreamLimits = QUICK) -> AvatarSession:
    return AvatarSession(
        "appid",
        "token-liveness",
        endpoints=Endpoints(tta=hostile_tta.url(port)),
        retry=NO_RETRY,
        stream_limits=limits,
    )


async def test_a_silent_peer_that_answers_pings_ends_say_with_timeout() -> None:
    async with hostile_tta.serve("silent") as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            seen: list[events.Event] = []
            with pytest.raises(TimeoutError) as caught:
                async for event in stream.say("你好"):
                    seen.append(event)
            assert any(isinstance(e, events.VoiceStart) for e in seen)
            message = str(caught.value)
            assert "voice_end" in message and "idle_timeout=0.3" in message
            assert isinstance(caught.value, builtins_timeout())


def builtins_timeout() -> type[BaseException]:
    import builtins

    return builtins.TimeoutError


async def test_idle_timeout_set_per_stream_overrides_the_session() -> None:
    async with hostile_tta.serve("silent") as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan", idle_timeout=0.2) as stream:
            assert stream.limits.idle_timeout == 0.2
            with pytest.raises(TimeoutError, match=r"idle_timeout=0\.2"):
                await stream.say("你好").collect()


async def test_events_after_chat_time_out_while_the_chat_is_under_way() -> None:
    async with hostile_tta.serve("silent") as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            await stream.chat("你好")
            with pytest.raises(TimeoutError):
                async for _ in stream.events():
                    pass


async def test_drive_audio_times_out_against_a_silent_peer() -> None:
    async with hostile_tta.serve("silent") as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan", input_mode="audio") as stream:
            with pytest.raises(TimeoutError):
                await stream.drive_audio(b"\x00\x00" * 16_000).collect()


async def test_finish_times_out_when_the_close_goes_unanswered() -> None:
    async with hostile_tta.serve("silent_close") as port, session(port) as av:
        stream = await av.tta.open(role="GuoXiaoyuan", codec="mp4")
        await stream.say("你好").collect()
        with pytest.raises(TimeoutError, match="produced video"):
            await stream.finish()
        assert stream.closed


async def test_finish_timeout_raises_our_timeout_with_a_message() -> None:
    limits = QUICK.replace(idle_timeout=30.0)
    async with hostile_tta.serve("silent_close") as port, session(port, limits) as av:
        stream = await av.tta.open(role="GuoXiaoyuan", codec="mp4")
        await stream.say("你好").collect()
        with pytest.raises(TimeoutError, match=r"within 0\.2s") as caught:
            await stream.finish(timeout=0.2)
        assert caught.value.args and stream.closed


async def test_open_times_out_without_an_open_reply() -> None:
    async with hostile_tta.serve("no_open_reply") as port, session(port) as av:
        with pytest.raises(TimeoutError, match="open reply"):
            await av.tta.open(role="GuoXiaoyuan", open_timeout=0.3)


async def test_a_peer_that_stops_reading_is_noticed_by_the_keepalive() -> None:
    async with hostile_tta.serve("deaf") as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            # Nothing is under way, so only the keepalive can notice the peer.
            with pytest.raises(ConnectionLost, match="keepalive") as caught:
                async for _ in stream.events():
                    pass
            assert "ping_timeout" in str(caught.value)


async def test_sends_to_a_peer_that_stops_reading_end_in_connection_lost() -> None:
    limits = QUICK.replace(idle_timeout=60.0)  # only the keepalive can end this
    async with hostile_tta.serve("deaf") as port, session(port, limits) as av:
        async with av.tta.open(role="GuoXiaoyuan", input_mode="audio") as stream:
            one_minute = b"\x01\x00" * 16_000 * 60  # far more than the socket buffers hold
            with pytest.raises(ConnectionLost, match="keepalive"):
                await stream.drive_audio(one_minute).collect()


async def test_keepalive_can_be_disabled() -> None:
    limits = QUICK.replace(ping_interval=None, ping_timeout=None)
    async with hostile_tta.serve("deaf") as port, session(port, limits) as av:
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            assert stream.limits.ping_interval is None
            with anyio.move_on_after(0.5) as scope:  # nothing ends the wait now
                async for _ in stream.events():
                    pass
            assert scope.cancelled_caught


async def test_a_stray_voice_end_does_not_desynchronise_utterances() -> None:
    async with hostile_tta.serve("stray") as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            first = await stream.say("a").collect()
            second = await stream.say("b").collect()
    for got, n in ((first, 1), (second, 2)):
        kinds = [type(e).__name__ for e in got]
        assert kinds == ["Status", "VoiceStart", "AudioChunk", "AudioChunk", "VoiceEnd"], kinds
        audio = [bytes(e.pcm) for e in got if isinstance(e, events.AudioChunk)]
        assert audio == [f"chat {n} part 1".encode(), f"chat {n} part 2".encode()]


async def test_a_stray_event_is_still_seen_by_events() -> None:
    async with hostile_tta.serve("stray") as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            async for event in stream.events():
                assert isinstance(event, events.VoiceEnd)
                break


async def test_a_frame_over_max_frame_bytes_is_a_protocol_error_naming_the_limit() -> None:
    async with hostile_tta.serve("big", count=1, size=200_000) as port, session(port) as av:
        async with av.tta.open(role="GuoXiaoyuan", max_frame_bytes=100_000) as stream:
            with pytest.raises(ProtocolError, match="max_frame_bytes=100000"):
                await stream.say("你好").collect()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("idle_timeout", 0),
        ("idle_timeout", float("inf")),
        ("ping_interval", -1),
        ("ping_timeout", "5"),
        ("buffer_bytes", 0),
        ("queue_size", True),
        ("max_frame_bytes", 1.5),
    ],
)
def test_bad_limits_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        StreamLimits(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


def test_an_unknown_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a stream limit"):
        StreamLimits().replace(idle_timout=3)


# -- memory: bounded in bytes, not in events -------------------------------

FRAME = 3 * 1024 * 1024
FRAMES = 24  # 72 MiB in all: far more than the bound and the kernel's buffers


class _Watch:
    """Wraps a stream's router: wakes the test each time a message was routed."""

    def __init__(self, sink: object) -> None:
        self.sink = sink
        self.changed = anyio.Event()

    def message(self, data: bytes, text: bool) -> None:
        self.sink.message(data, text)  # type: ignore[attr-defined]
        self.changed.set()

    def lost(self, error: object) -> None:
        self.sink.lost(error)  # type: ignore[attr-defined]
        self.changed.set()


async def _peak_with_stalled_consumer(port: int, limits: StreamLimits) -> tuple[int, int, int]:
    """(peak traced bytes at the stall, peak over the whole run, payload bytes received).

    The consumer waits until reading paused (the bound was reached) or every
    frame arrived (no bound), then drains the stream.
    """
    received = 0
    tracemalloc.start()
    try:
        async with session(port, limits) as av:
            stream = await av.tta.open(role="GuoXiaoyuan")
            queue, conn = stream._queue, stream._conn
            assert conn is not None
            watch = _Watch(conn._sink)
            conn.attach(watch)  # type: ignore[arg-type]
            utterance = stream.say("你好")
            async for event in utterance:
                if isinstance(event, events.VoiceStart):
                    break
            while True:
                watch.changed = anyio.Event()
                if conn._reading_paused or len(queue) >= FRAMES + 1:  # the bound, or all
                    break
                await watch.changed.wait()
            peak_at_stall = tracemalloc.get_traced_memory()[1]
            async for event in utterance:
                if isinstance(event, events.VideoChunk):
                    received += len(event.nal)
            await stream.aclose()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak_at_stall, max(peak, peak_at_stall), received


async def test_a_stalled_consumer_holds_at_most_max_frame_plus_buffer_bytes() -> None:
    bound = StreamLimits(
        queue_size=10_000,  # the count alone would allow ~30 GB of these frames
        buffer_bytes=4 * 1024 * 1024,
        max_frame_bytes=FRAME + 64,
        idle_timeout=30,
    )
    unbounded = bound.replace(buffer_bytes=1 << 40)
    with hostile_tta.spawn("big", "--count", str(FRAMES), "--size", str(FRAME)) as port:
        bounded_peak, whole_run, received = await _peak_with_stalled_consumer(port, bound)
        control_peak, _, control_received = await _peak_with_stalled_consumer(port, unbounded)
    assert received == control_received == FRAMES * FRAME
    # The documented bound: max frame + buffer bytes held, plus the connection's
    # 256 KiB read buffer (a frame this large is read straight into its own buffer).
    held = bound.max_frame_bytes + bound.buffer_bytes
    # tracemalloc counts every allocation in the process, the session's own objects
    # included (uvloop's callbacks, the host task…), not only payload: 256 KiB of those.
    slack = 256 * 1024 + 256 * 1024
    assert bounded_peak <= held + slack, (bounded_peak, held)
    # Draining, the consumer also holds the event it is looking at, while reading
    # refills the queue behind it: one frame more, never more than that.
    assert whole_run <= held + FRAME + slack, (whole_run, held)
    assert control_peak > 3 * bounded_peak, (control_peak, bounded_peak)
