"""How long a TTA stream takes to give up on a quiet or dead service, and how much
memory a stalled consumer holds.

Against the hostile server of ``tests/hostile_tta.py`` (in its own process),
each scenario runs ``--rounds`` times and reports the median, min and max:

  silent    the service answers pings but sends nothing after voice_start:
            seconds from the last frame to avatarkit.TimeoutError, against
            the configured ``idle_timeout``
  deaf      the service stops reading its socket: seconds to ConnectionLost,
            against the keepalive's bound ``ping_interval + ping_timeout``
            (default limits: 5 s + 5 s)
  memory    a consumer that stops reading after voice_start while the service
            sends 4 MiB frames: peak traced memory against the documented
            bound ``max_frame_bytes + buffer_bytes`` (and an unbounded control)

    python benchmarks/liveness.py [--rounds 3] [--idle 2]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from avatarkit import (
    AvatarSession,
    ConnectionLost,
    Endpoints,
    RetryPolicy,
    StreamLimits,
    TimeoutError,
    events,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import hostile_tta  # the tests' hostile server

MIB = 1024 * 1024


@contextmanager
def hostile(*args: str) -> Iterator[str]:
    with hostile_tta.spawn(*args) as port:
        yield hostile_tta.url(port)


def session(url: str, limits: StreamLimits) -> AvatarSession:
    return AvatarSession(
        "appid",
        "token",
        endpoints=Endpoints(tta=url),
        retry=RetryPolicy(attempts=1),
        stream_limits=limits,
    )


async def silent_once(url: str, idle: float) -> float:
    async with session(url, StreamLimits(idle_timeout=idle)) as av:
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            last = time.monotonic()
            try:
                async for _ in stream.say("你好"):
                    last = time.monotonic()
            except TimeoutError:
                return time.monotonic() - last
    raise AssertionError("the silent service did not end in TimeoutError")


async def deaf_once(url: str) -> float:
    async with session(url, StreamLimits()) as av:  # the default keepalive
        async with av.tta.open(role="GuoXiaoyuan") as stream:
            started = time.monotonic()  # the service stopped reading right after its reply
            try:
                async for _ in stream.events():
                    pass
            except ConnectionLost:
                return time.monotonic() - started
    raise AssertionError("the deaf service did not end in ConnectionLost")


async def stalled_peak(url: str, limits: StreamLimits, frames: int) -> tuple[int, int]:
    """(peak traced bytes, payload received) for a consumer that stalls, then drains."""
    received = 0
    tracemalloc.start()
    try:
        async with session(url, limits) as av:
            async with av.tta.open(role="GuoXiaoyuan") as stream:
                utterance = stream.say("你好")
                async for event in utterance:
                    if isinstance(event, events.VoiceStart):
                        break
                await asyncio.sleep(2.0)  # the stall itself (a benchmark, not a test)
                async for event in utterance:
                    if isinstance(event, events.VideoChunk):
                        received += len(event.nal)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, received


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=2.0, help="idle_timeout for 'silent' (s)")
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "liveness", "rounds": args.rounds}
    with hostile("silent") as url:
        waits = [await silent_once(url, args.idle) for _ in range(args.rounds)]
    out["silent"] = {"idle_timeout_s": args.idle, "seconds_to_error": summary(waits)}
    defaults = StreamLimits()
    with hostile("deaf") as url:
        waits = [await deaf_once(url) for _ in range(args.rounds)]
    bound = (defaults.ping_interval or 0) + (defaults.ping_timeout or 0)
    out["deaf"] = {
        "keepalive_bound_s": bound,
        "seconds_to_error": summary(waits),
        "within_bound": max(waits) <= bound + 0.5,
    }
    frame, count = 4 * MIB, 40
    with hostile("big", "--count", str(count), "--size", str(frame)) as url:
        bounded = defaults.replace(max_frame_bytes=frame + 64)
        peak, received = await stalled_peak(url, bounded, count)
        control, _ = await stalled_peak(url, bounded.replace(buffer_bytes=1 << 40), count)
    held = bounded.max_frame_bytes + bounded.buffer_bytes
    out["memory"] = {
        "frame_bytes": frame,
        "frames": count,
        "received_bytes": received,
        "buffer_bytes": bounded.buffer_bytes,
        "max_frame_bytes": bounded.max_frame_bytes,
        "bound_max_frame_plus_buffer": held,
        "peak_traced_bytes": peak,
        "peak_over_bound": round(peak / held, 3),
        "unbounded_control_peak_bytes": control,
    }
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
