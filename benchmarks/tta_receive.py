"""TTA receive throughput: the SDK vs a raw websockets loop vs the vendor demo's way.

Runs the emulator in a child process (cheap media mode: a pre-encoded loop
padded to a fixed frame size, paced as fast as possible), then, against the
same stream, measures frames/s and MB/s of:

  raw    a bare ``async for message in ws`` loop (websockets, compression off)
  sdk    ``async for event in stream.say(text)`` — decoded, typed events
  naive  the vendor document's demo loop: ``websockets.connect`` with its
         defaults, header sliced and decoded per frame, payload copied
  naive_nodeflate  the same loop with compression off, to separate the two costs

for ~1.3 KB and ~40 KB frames.  Variants are interleaved over several rounds
(in a rotating order) and the median kept; ratios are medians of the
per-round ratios (these machines are noisy).  Besides wall-clock frames/s,
each variant's client CPU time per frame is reported: the emulator runs in
another process, so when it is the bottleneck the wall-clock rates tie and the
CPU cost is what tells the clients apart.  Prints one JSON line.

    python benchmarks/tta_receive.py [--frames 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

from avatarkit import AvatarSession, Endpoints, events
from avatarkit.emulator import media
from avatarkit.emulator.process import spawn_emulator
from avatarkit.tta import frames

CHAR = "好"  # one CJK character = 220 ms of speech = 5.5 video frames


def text_for(n_frames: int) -> str:
    return CHAR * max(1, round(n_frames * 40 / 220)) + "。"


class Server:
    """The emulator in its own process, cheap media paced as fast as possible."""

    def __init__(self, frame_bytes: int, audio_chunk_ms: int) -> None:
        self._spawned = spawn_emulator(
            "--pace",
            "fast",
            "--media",
            "cheap",
            "--frame-bytes",
            str(frame_bytes),
            "--audio-chunk-ms",
            str(audio_chunk_ms),
        )
        proc = self._spawned.__enter__()
        self.appid, self.token = proc.appid, proc.token
        self.tta = proc.endpoints.tta
        self.url = f"{self.tta}/2d?appid={self.appid}&access_token={self.token}"

    def close(self) -> None:
        self._spawned.__exit__(None, None, None)


CONFIG = '{"role":"GuoXiaoyuan","video":{"video_width":240,"video_height":240}}'
HEADERS = {"Resource-Id": "volc.avatar.2d"}

# What each measurement returns: frames, payload bytes, and the wall-clock and
# CPU seconds from the first frame to the end of the utterance.
Result = tuple[int, int, float, float]


class Clock:
    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def result(self, count: int, size: int) -> Result:
        return count, size, time.perf_counter() - self.wall, time.process_time() - self.cpu


async def start_utterance(ws: websockets.ClientConnection, text: str) -> None:
    """Open the TTA session and send the chat, as both hand-written clients do."""
    await ws.send(frames.encode_open(CONFIG))
    await ws.recv()
    await ws.send(frames.encode_chat(text))


async def raw(server: Server, text: str) -> Result:
    async with websockets.connect(
        server.url, additional_headers=HEADERS, compression=None, max_size=None
    ) as ws:
        await start_utterance(ws, text)
        count = size = 0
        clock = Clock()
        async for message in ws:
            if not count:
                clock.start()
            count += 1
            size += len(message)
            if type(message) is str and "voice_end" in message:
                break
        return clock.result(count, size)


async def sdk(server: Server, text: str) -> Result:
    endpoints = Endpoints(tta=server.tta)
    async with AvatarSession(server.appid, server.token, endpoints=endpoints) as av:
        async with av.tta.open(
            role="GuoXiaoyuan", video={"video_width": 240, "video_height": 240}
        ) as stream:
            count = size = 0
            clock = Clock()
            async for event in stream.say(text):
                if not count:
                    clock.start()
                count += 1
                match event:
                    case events.VideoChunk(nal=payload) | events.AudioChunk(pcm=payload):
                        size += len(payload) + 8
                    case _:
                        size += 8
            return clock.result(count, size)


# The vendor demo's constants and loop (doc 001 §5.1.1), minus its prints and files.
AUDIO_DATA_HEADER = "|DAT|00|"
VIDEO_DATA_HEADER = "|DAT|01|"
JSON_DATA_HEADER = "|DAT|02|"
MSG_HEADER = "|MSG|00|"
VOICE_END = "voice_end"


def parse_event(data: str) -> tuple[str, Any]:
    obj = json.loads(data)
    info = obj["callback_info"]
    return info["type"], info["data"]


async def _naive(server: Server, text: str, compression: str | None) -> Result:
    async with websockets.connect(
        server.url, additional_headers=HEADERS, compression=compression, max_size=None
    ) as ws:
        await start_utterance(ws, text)
        count = size = 0
        clock = Clock()
        while True:
            data = await ws.recv()
            if not count:
                clock.start()
            count += 1
            header = data[0:8]
            if header == JSON_DATA_HEADER:
                event, _ = parse_event(data[8:])
                size += len(data)
                if event == VOICE_END:
                    break
            elif header == MSG_HEADER:
                size += len(data)
                msg = json.loads(data[8:])
                if msg["code"] != 1000:
                    break
            elif bytes.decode(header) in (AUDIO_DATA_HEADER, VIDEO_DATA_HEADER):
                payload = data[8:]  # the demo writes this copy to a file
                size += len(payload) + 8
        return clock.result(count, size)


async def naive(server: Server, text: str) -> Result:
    return await _naive(server, text, "deflate")  # websockets.connect's default, as in the demo


async def naive_nodeflate(server: Server, text: str) -> Result:
    return await _naive(server, text, None)


VARIANTS: dict[str, Callable[[Server, str], Awaitable[Result]]] = {
    "raw": raw,
    "sdk": sdk,
    "naive": naive,
    "naive_nodeflate": naive_nodeflate,
}


async def measure(server: Server, n_frames: int, rounds: int) -> dict[str, Any]:
    text = text_for(n_frames)
    for variant in VARIANTS.values():  # warm up: imports, caches, the server's loop
        await variant(server, text_for(50))
    names = list(VARIANTS)
    samples: dict[str, list[Result]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            samples[name].append(await VARIANTS[name](server, text))
    out: dict[str, Any] = {}
    for name, results in samples.items():
        out[name] = {
            "frames": results[0][0],
            "avg_frame_bytes": results[0][1] // results[0][0],
            "frames_per_s": round(statistics.median(c / w for c, _, w, _ in results)),
            "MB_per_s": round(statistics.median(s / w / 1e6 for _, s, w, _ in results), 1),
            "cpu_us_per_frame": round(statistics.median(p / c * 1e6 for c, _, _, p in results), 1),
        }

    def paired(a: str, b: str, index: int, invert: bool = False) -> float:
        ratios = [
            (y[index] / x[index]) if invert else (x[index] / y[index])
            for x, y in zip(samples[a], samples[b], strict=True)
        ]
        return round(statistics.median(ratios), 3)

    # frames/s ratio = b's wall time / a's (same frame count); CPU ratio = b's CPU / a's.
    for other in ("raw", "naive", "naive_nodeflate"):
        out[f"sdk_vs_{other}"] = paired("sdk", other, 2, invert=True)
        out[f"cpu_{other}_over_sdk"] = paired("sdk", other, 3, invert=True)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000, help="video frames per utterance")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="1.3KB,40KB", help="which frame sizes to run")
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "tta_receive", "rounds": args.rounds}
    # 1.3 KB: 40 ms audio chunks (1280 B) and video frames padded to 1280 B.
    # 40 KB: 1280 ms audio chunks (40960 B) and video frames padded to 40960 B.
    for label, frame_bytes, chunk_ms in (("1.3KB", 1280, 40), ("40KB", 40960, 1280)):
        if label not in args.sizes.split(","):
            continue
        server = Server(frame_bytes, chunk_ms)
        try:
            report[label] = await measure(server, args.frames, args.rounds)
        finally:
            server.close()
    assert media.FRAME_MS == 40
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
