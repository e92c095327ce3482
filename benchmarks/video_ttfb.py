"""Time to first byte of a produced video: ``stream_video()`` against ``finish()``.

A backend that answers a request with the video can send its first byte when
``finish()`` returns (the whole file is in: what the vendor demo does, buffering
``|DAT|03|`` packets until ``|DAT|04|``), or as soon as ``stream_video()``
hands on the first packet.  Against the emulator in its own process, with the
service-to-client link set to ``--link-mbps`` (``video_send_bps``) and no
production delay (``production_factor=0``: it adds the same to both), each
round opens a stream, speaks ``TEXT`` (about 9 s of video), then measures from
the close request to the first byte the backend could send, and to the last.
Rounds alternate the order.  Client CPU is this process's ``process_time``
over the measured phase; the emulator's CPU over the same phase comes from
``/proc`` (it is paced by the link, not busy).  One JSON line.

    python benchmarks/video_ttfb.py [--rounds 7] [--link-mbps 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from _bench import cpu_of, loadavg, spread

from avatarkit.emulator.process import spawn_emulator

TEXT = "你好，欢迎来到我们的直播间。今天给大家介绍一款新产品，它小巧轻便，续航持久，价格也很实惠。"
VIDEO = {"video_width": 1280, "video_height": 720}


async def one(av: Any, variant: str, pid: int) -> dict[str, float]:
    async with av.tta.open(role="GuoXiaoyuan", codec="mp4", video=VIDEO) as stream:
        await stream.say(TEXT).collect()
        cpu, emu_cpu, start = time.process_time(), cpu_of(pid), time.perf_counter()
        if variant == "finish":
            video = await stream.finish()
            data = await video.read()
            first = last = time.perf_counter()
            size = len(data)
        else:
            size = 0
            async with stream.stream_video() as chunks:
                async for chunk in chunks:
                    if size == 0:
                        first = time.perf_counter()
                    size += len(chunk)
            last = time.perf_counter()
        return {
            "ttfb_ms": (first - start) * 1e3,
            "total_ms": (last - start) * 1e3,
            "client_cpu_ms": (time.process_time() - cpu) * 1e3,
            "emulator_cpu_ms": (cpu_of(pid) - emu_cpu) * 1e3,
            "bytes": size,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--link-mbps", type=float, default=20.0, help="megabits per second")
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    rate = args.link_mbps * 1e6 / 8
    report: dict[str, Any] = {
        "benchmark": "video_ttfb",
        "what": "close request -> first byte a backend can send, and -> last byte",
        "link_bytes_per_s": rate,
        "rounds": rounds,
        "loadavg_before": loadavg(),
    }
    runs: dict[str, list[dict[str, float]]] = {"finish": [], "stream_video": []}
    options = ["--set", f"video_send_bps={rate}", "--set", "media_chunk_bytes=65536"]
    with spawn_emulator("--pace", "fast", *options) as emu:

        async def run() -> None:
            async with emu.session() as av:
                await one(av, "finish", emu.pid)  # warm-up: imports, TLS-free loopback
                for k in range(rounds):
                    order = ("finish", "stream_video") if k % 2 == 0 else ("stream_video", "finish")
                    for variant in order:
                        runs[variant].append(await one(av, variant, emu.pid))

        asyncio.run(run())
    for variant, results in runs.items():
        report[variant] = {
            key: spread([r[key] for r in results], 1)
            for key in ("ttfb_ms", "total_ms", "client_cpu_ms", "emulator_cpu_ms")
        }
        report[variant]["video_bytes"] = results[0]["bytes"]
    ratios = [
        s["ttfb_ms"] / f["ttfb_ms"]
        for s, f in zip(runs["stream_video"], runs["finish"], strict=True)
    ]
    report["stream_over_finish_ttfb"] = spread(ratios, 3)
    report["loadavg_after"] = loadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
