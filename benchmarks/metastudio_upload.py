"""MetaStudio presigned upload: concurrent parts vs the same parts one after another.

Against the emulator (its own process) shaped to 20 ms latency and
100 Mbit/s per connection, a file (1 GiB by default) split into 16 presigned
parts is uploaded twice, each time by a fresh child process:

  sdk         ``MetaStudio.upload_parts`` — parts PUT concurrently
              (``max_concurrency``, default 8), each streamed from disk
  sequential  the same client with ``max_concurrency=1``: one part after another

Prints one JSON line: each run's wall time and peak RSS above its baseline,
and sequential ÷ sdk.

    python benchmarks/metastudio_upload.py [--size-mib 1024] [--parts 16] [--mbit 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _measure import rss_kib  # benchmarks/ is on sys.path when a benchmark runs

from avatarkit.emulator.options import EmulatorOptions
from avatarkit.emulator.process import spawn_emulator

MIB = 1024 * 1024


def child(args: argparse.Namespace) -> None:
    import anyio

    from avatarkit.metastudio import MetaStudio

    opts = EmulatorOptions()
    baseline = rss_kib("VmRSS")

    async def run() -> float:
        async with MetaStudio(
            opts.metastudio_project_id,
            endpoint=args.endpoint,
            ak=opts.metastudio_ak,
            sk=opts.metastudio_sk,
            max_concurrency=args.concurrency,
        ) as ms:
            job = await ms.create_training_job("bench", video_multipart_count=args.parts)
            started = time.perf_counter()
            await ms.upload_parts(job.job_id, job.training_video_upload_url, args.file)
            wall = time.perf_counter() - started
            await ms.confirm_uploaded(job.job_id)
            return wall

    wall = anyio.run(run)
    print(
        json.dumps(
            {"wall_s": wall, "peak_rss_above_baseline_mib": (rss_kib("VmHWM") - baseline) / 1024}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--mbit", type=float, default=100, help="per-connection cap, Mbit/s")
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    bandwidth = args.mbit * 1e6 / 8
    shaping = ("--set", f"latency_ms={args.latency_ms}", "--set", f"bandwidth_bps={bandwidth}")
    with spawn_emulator(*shaping) as emu, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "talk.mp4"
        block = os.urandom(MIB)
        with path.open("wb") as f:
            for i in range(args.size_mib):
                f.write(block[i % 991 :] + block[: i % 991])
        endpoint = f"http://127.0.0.1:{emu.port}"
        runs: dict[str, Any] = {}
        for name, concurrency in (("sdk", args.concurrency), ("sequential", 1)):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--file",
                    str(path),
                    "--endpoint",
                    endpoint,
                    "--parts",
                    str(args.parts),
                    "--concurrency",
                    str(concurrency),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name] = {
                "wall_s": round(result["wall_s"], 2),
                "concurrency": concurrency,
                "peak_rss_above_baseline_mib": round(result["peak_rss_above_baseline_mib"], 1),
            }
    part_mib = args.size_mib / args.parts
    print(
        json.dumps(
            {
                "benchmark": "metastudio_upload",
                "size_mib": args.size_mib,
                "parts": args.parts,
                "part_mib": round(part_mib, 1),
                "mbit_per_connection": args.mbit,
                "latency_ms": args.latency_ms,
                **runs,
                "sequential_over_sdk": round(
                    runs["sequential"]["wall_s"] / runs["sdk"]["wall_s"], 2
                ),
                "sdk_peak_rss_in_parts": round(
                    runs["sdk"]["peak_rss_above_baseline_mib"] / part_mib, 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
