"""Speech from streamed text: ``say_stream()`` against waiting for the whole text.

A fake LLM yields ``TEXT`` token by token at ``--tokens-per-s``.  Against the
emulator in its own process at ``pace=realtime`` (media leaves at its media
time, as from the real service), each round measures, from the first token:

* ``stream``: ``say_stream(tokens)`` (sentences sent as they complete, one ahead);
* ``stream_ahead0``: the same, each sentence sent only once the one before has
  ended (what a loop of ``say()`` per sentence does);
* ``whole``: collect every token, then ``say(text)``: what a user writes from
  the vendor documents (one chat per text).

It prints the time to the first ``AudioChunk``, the total, and for the
streamed variants the gap between sentences: from a sentence's ``voice_end``
to the next one's first ``AudioChunk``, as the client sees them.  Client CPU
is this process's ``process_time`` per round; the emulator's CPU comes from
``/proc``.  Medians over rounds, with min and max.  One JSON line.

    python benchmarks/say_stream.py [--rounds 3] [--tokens-per-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from _bench import cpu_of, loadavg, spread

from avatarkit import events
from avatarkit.emulator.process import spawn_emulator

TEXT = (
    "大家好，欢迎来到今天的直播。"
    "这款耳机重量只有四克，佩戴很舒适。"
    "它的续航可以达到三十个小时。"
    "现在下单还有限时优惠。"
    "感谢大家的关注！"
)
VIDEO = {"video_width": 256, "video_height": 256}


def llm_tokens(rate: float) -> tuple[AsyncIterator[str], list[float]]:
    """Tokens of ``TEXT`` (two characters each) at ``rate`` per second; the list gets
    the first token's time."""
    started: list[float] = []

    async def gen() -> AsyncIterator[str]:
        for i in range(0, len(TEXT), 2):
            if not started:
                started.append(time.perf_counter())
            else:
                await asyncio.sleep(1 / rate)
            yield TEXT[i : i + 2]

    return gen(), started


async def one(av: Any, variant: str, rate: float, pid: int) -> dict[str, Any]:
    cpu, emu_cpu = time.process_time(), cpu_of(pid)
    async with av.tta.open(role="GuoXiaoyuan", video=VIDEO) as stream:
        tokens, started = llm_tokens(rate)
        first_audio: float | None = None
        gaps: list[float] = []
        ended_at: float | None = None
        if variant == "whole":
            text = "".join([t async for t in tokens])
            source: AsyncIterator[events.Event] = aiter(stream.say(text))
        else:
            source = aiter(stream.say_stream(tokens, ahead=0 if variant == "stream_ahead0" else 1))
        async for event in source:
            now = time.perf_counter()
            if isinstance(event, events.AudioChunk):
                if first_audio is None:
                    first_audio = now
                if ended_at is not None:
                    gaps.append(now - ended_at)
                    ended_at = None
            elif isinstance(event, events.VoiceEnd):
                ended_at = now
        done = time.perf_counter()
    assert first_audio is not None
    return {
        "first_audio_ms": (first_audio - started[0]) * 1e3,
        "total_ms": (done - started[0]) * 1e3,
        "gap_ms": statistics.mean(gaps) * 1e3 if gaps else None,
        "gaps": len(gaps),
        "client_cpu_ms": (time.process_time() - cpu) * 1e3,
        "emulator_cpu_ms": (cpu_of(pid) - emu_cpu) * 1e3,
    }


VARIANTS = ("stream", "stream_ahead0", "whole")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens-per-s", type=float, default=20.0)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "say_stream",
        "what": "first token -> first AudioChunk; voice_end -> next sentence's first AudioChunk",
        "tokens_per_s": args.tokens_per_s,
        "text_chars": len(TEXT),
        "rounds": args.rounds,
        "loadavg_before": loadavg(),
    }
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with spawn_emulator("--pace", "realtime") as emu:

        async def run() -> None:
            async with emu.session() as av:
                await one(av, "stream", 1000.0, emu.pid)  # warm-up
                for k in range(args.rounds):
                    for variant in VARIANTS[k % 3 :] + VARIANTS[: k % 3]:
                        runs[variant].append(await one(av, variant, args.tokens_per_s, emu.pid))

        asyncio.run(run())
    for variant, results in runs.items():
        out: dict[str, Any] = {}
        for key in ("first_audio_ms", "total_ms", "gap_ms", "client_cpu_ms", "emulator_cpu_ms"):
            values = [r[key] for r in results if r[key] is not None]
            if values:
                out[key] = spread(values, 1)
        out["gaps_per_round"] = results[0]["gaps"]
        report[variant] = out
    report["loadavg_after"] = loadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
