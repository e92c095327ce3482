"""Opening TTA streams: the SDK vs raw websockets, client CPU and wall per open.

Against ``_frame_server.py`` (its own process, its CPU printed), N streams
(500 by default) are each opened — connect, WebSocket handshake, ``|CTL|00|``
and its ``|MSG|00|`` reply — and closed, by:

  sdk  ``async with av.tta.open(role=…, video=…)`` on one ``AvatarSession``
  raw  ``websockets.connect(url, compression=None)``, send ``|CTL|00|``,
       ``recv()`` the reply, close

one after another (``sequential``) and in concurrent batches (``batch50``),
the same way for both.  Each measurement is a fresh client process (the same
``MALLOC_*`` thresholds in each) that warms up with a few opens first; rounds
rotate the order, ratios are paired within a round.  The gate is client CPU
per open (``process_time``); the target is SDK ÷ raw ≤ 1.2.  One JSON line.

    python benchmarks/tta_open.py [--opens 500] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _bench import APPID, CONFIG, HEADERS, TOKEN, FrameServer, loadavg, run_child, spread

VARIANTS = ("sdk", "raw")
MODES = {"sequential": 1, "batch50": 50}
WARMUP = 20
TARGET = 1.2


def opener(variant: str, port: int) -> Callable[[], Awaitable[Callable[[], Awaitable[None]]]]:
    base = f"ws://127.0.0.1:{port}"
    url = f"{base}/2d?appid={APPID}&access_token={TOKEN}"

    async def make() -> Callable[[], Awaitable[None]]:
        if variant == "raw":
            import websockets

            async def raw() -> None:
                async with websockets.connect(
                    url, additional_headers=HEADERS, compression=None
                ) as ws:
                    await ws.send("|CTL|00|" + CONFIG)
                    await ws.recv()

            return raw
        from avatarkit import AvatarSession, Endpoints

        av = AvatarSession(APPID, TOKEN, endpoints=Endpoints(tta=base))
        await av.__aenter__()

        async def sdk() -> None:
            async with av.tta.open(
                role="GuoXiaoyuan", video={"video_width": 240, "video_height": 240}
            ):
                pass

        return sdk

    return make


def child(args: argparse.Namespace) -> None:
    async def run() -> dict[str, Any]:
        one = await opener(args.variant, args.port)()

        async def batch(n: int) -> None:
            if args.batch == 1:
                for _ in range(n):
                    await one()
                return
            for start in range(0, n, args.batch):
                await asyncio.gather(*(one() for _ in range(min(args.batch, n - start))))

        await batch(WARMUP)
        wall, cpu = time.perf_counter(), time.process_time()
        await batch(args.opens)
        return {
            "opens": args.opens,
            "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - wall,
        }

    # The SDK's session stays open to the end (closing it is not part of an open).
    print(json.dumps(asyncio.run(run())))


def measure(server: FrameServer, batch: int, opens: int, rounds: int) -> dict[str, Any]:
    script = Path(__file__).resolve()
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for round_ in range(rounds):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            server.stats(reset=True)
            result = run_child(
                script,
                ["--variant", variant, "--port", str(server.port), "--opens", str(opens),
                 "--batch", str(batch)],
            )  # fmt: skip
            srv = server.stats()
            result["server_cpu_ms"] = srv["cpu_since_reset_s"] / (opens + WARMUP) * 1e3
            runs[variant].append(result)
    out: dict[str, Any] = {}
    for variant, results in runs.items():
        out[variant] = {
            "cpu_ms_per_open": spread([r["cpu_s"] / opens * 1e3 for r in results], 3),
            "wall_ms_per_open": spread([r["wall_s"] / opens * 1e3 for r in results], 3),
            "server_cpu_ms_per_open": spread([r["server_cpu_ms"] for r in results], 3),
        }
    for key in ("cpu_s", "wall_s"):
        ratios = [s[key] / r[key] for s, r in zip(runs["sdk"], runs["raw"], strict=True)]
        out[f"sdk_over_raw_{key[:-2]}"] = spread(ratios, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default=",".join(MODES), help="sequential,batch50")
    parser.add_argument("--quick", action="store_true", help="3 rounds (< 1 min)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.rounds = 3
    report: dict[str, Any] = {
        "benchmark": "tta_open",
        "gate": "client CPU per open (process_time): connect, handshake, |CTL|00|, reply, close",
        "opens": args.opens,
        "rounds": args.rounds,
        "loadavg_before": loadavg(),
    }
    with FrameServer() as server:
        for mode in args.modes.split(","):
            report[mode] = measure(server, MODES[mode], args.opens, args.rounds)
    report["loadavg_after"] = loadavg()
    targets = {
        f"sdk_over_raw_cpu_{mode}<={TARGET}": report[mode]["sdk_over_raw_cpu"]["median"] <= TARGET
        for mode in args.modes.split(",")
    }
    report["targets"] = targets
    report["missed"] = [name for name, ok in targets.items() if not ok] or None
    print(json.dumps(report))


if __name__ == "__main__":
    main()
