"""MetaStudio presigned upload over a link capped per connection AND in total.

The emulator runs in its own process, shaped like a real link: ``latency_ms``
before each response, request bodies read at most ``--mbit`` per connection
and ``--total-mbit`` for all connections together (so parallel connections
share one link instead of each getting the per-connection rate).  A file
(1 GiB by default, random bytes), split into ``--parts`` presigned parts as
doc 003 has it (``video_multipart_count``), is uploaded by:

  sdk    ``MetaStudio.upload`` — parts PUT concurrently, then confirmed
         (``max_concurrency``, default 8), each streamed from disk
  naive  what a user writes from doc 003: a sequential loop of
         ``requests.put(url, data=f.read(part_size), headers=...)`` over the
         job's ``training_video_upload_url`` list

The parent creates a fresh job before each upload and confirms it after
(``CONFIRM``; never submitted, so the random payload is never reviewed); only
the PUTs are measured, in a fresh child process each time (same fixed glibc
thresholds, see PERF-NOTES), paired rounds in alternating order.  Each child
reports its CPU seconds (``process_time``, all threads), wall time and peak
RSS above its baseline; the parent reads the emulator's CPU around each
upload (it must not be the bottleneck) and the load average.

Limits the link allows (body bytes ÷ rate + one latency per request wave):

  total-cap limit   size ÷ min(total, concurrency × per-connection)
                    + ceil(parts ÷ concurrency) × latency
  sequential limit  size ÷ per-connection + parts × latency

Target: SDK wall ≤ 1.1 × the total-cap limit; the naive loop should be
slower by about total ÷ per-connection.  Prints one JSON line.

    python benchmarks/metastudio_upload.py [--size-mib 1024] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when a benchmark runs
from upload import CHILD_ENV, MIB, emulator_pid, make_file, proc_cpu_s, rss_kib, spread

TARGET = 1.1


def child_sdk(args: argparse.Namespace, urls: list[str]) -> None:
    import anyio

    from avatarkit.emulator.options import EmulatorOptions
    from avatarkit.metastudio import MetaStudio

    opts = EmulatorOptions()

    async def run() -> None:
        async with MetaStudio(
            opts.metastudio_project_id,
            endpoint=args.endpoint,
            ak=opts.metastudio_ak,
            sk=opts.metastudio_sk,
            max_concurrency=args.concurrency,
        ) as ms:
            await ms.upload(args.job_id, args.file, urls=urls)  # the PUTs, then one confirm

    anyio.run(run)


def child_naive(args: argparse.Namespace, urls: list[str]) -> None:
    import requests

    part_size = math.ceil(os.path.getsize(args.file) / len(urls))
    with open(args.file, "rb") as f:
        for url in urls:
            data = f.read(part_size)
            r = requests.put(url, data=data, headers={"Content-Type": "application/octet-stream"})
            r.raise_for_status()


def run_child(args: argparse.Namespace) -> None:
    import anyio  # noqa: F401 - both children import the same modules before the baseline
    import httpx  # noqa: F401
    import requests  # noqa: F401

    import avatarkit.metastudio.client  # noqa: F401 - imported lazily by avatarkit

    urls = json.loads(Path(args.urls).read_text())
    baseline = rss_kib("VmRSS")
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    (child_sdk if args.child == "sdk" else child_naive)(args, urls)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "wall_s": wall,
        "cpu_s": cpu,
        "user_s": ru1.ru_utime - ru0.ru_utime,
        "sys_s": ru1.ru_stime - ru0.ru_stime,
        "peak_rss_mib": (rss_kib("VmHWM") - baseline) / 1024,
    }
    print(json.dumps(out))


def new_job(endpoint: str, parts: int) -> tuple[str, list[str]]:
    import anyio

    from avatarkit.emulator.options import EmulatorOptions
    from avatarkit.metastudio import MetaStudio

    opts = EmulatorOptions()

    async def run() -> tuple[str, list[str]]:
        async with MetaStudio(
            opts.metastudio_project_id,
            endpoint=endpoint,
            ak=opts.metastudio_ak,
            sk=opts.metastudio_sk,
        ) as ms:
            job = await ms.create_training_job("bench", video_multipart_count=parts)
            return job.job_id, list(job.training_video_upload_url)

    return anyio.run(run)


def confirm(endpoint: str, job_id: str) -> None:
    import anyio

    from avatarkit.emulator.options import EmulatorOptions
    from avatarkit.metastudio import MetaStudio

    opts = EmulatorOptions()

    async def run() -> None:
        async with MetaStudio(
            opts.metastudio_project_id,
            endpoint=endpoint,
            ak=opts.metastudio_ak,
            sk=opts.metastudio_sk,
        ) as ms:
            await ms.confirm_uploaded(job_id)  # raises unless every part arrived

    anyio.run(run)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="paired rounds (default 2)")
    parser.add_argument("--mbit", type=float, default=100, help="per-connection cap, Mbit/s")
    parser.add_argument("--total-mbit", type=float, default=400, help="total cap, Mbit/s")
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8, help="the SDK's max_concurrency")
    parser.add_argument("--quick", action="store_true", help="128 MiB, 2 rounds (< 1 minute)")
    parser.add_argument("--child", choices=["sdk", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    if args.quick:
        args.size_mib, args.rounds = 128, 2

    from avatarkit.emulator.process import spawn_emulator  # not in the clients' processes

    per_conn, total = args.mbit * 1e6 / 8, args.total_mbit * 1e6 / 8  # bytes per second
    shaping = (
        *("--set", f"latency_ms={args.latency_ms}"),
        *("--set", f"bandwidth_bps={per_conn}"),
        *("--set", f"bandwidth_total_bps={total}"),
    )
    runs: dict[str, list[dict[str, Any]]] = {"sdk": [], "naive": []}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "talk.mp4"
        make_file(path, args.size_mib)
        size = path.stat().st_size
        urls_file = Path(tmp) / "urls.json"
        with spawn_emulator(*shaping) as emu:
            epid = emulator_pid()
            endpoint = f"http://127.0.0.1:{emu.port}"
            for r in range(args.rounds):
                loads.append(os.getloadavg()[0])
                for variant in ("sdk", "naive") if r % 2 == 0 else ("naive", "sdk"):
                    job_id, urls = new_job(endpoint, args.parts)
                    urls_file.write_text(json.dumps(urls))
                    e0 = proc_cpu_s(epid)
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            *("--child", variant, "--file", str(path)),
                            *("--endpoint", endpoint, "--job-id", job_id),
                            *("--urls", str(urls_file), "--concurrency", str(args.concurrency)),
                        ],
                        env=CHILD_ENV,
                        capture_output=True,
                        text=True,
                        check=True,
                        timeout=3600,
                    )
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    result["server_cpu_s"] = proc_cpu_s(epid) - e0
                    confirm(endpoint, job_id)
                    runs[variant].append(result)
            loads.append(os.getloadavg()[0])

    gib = size / 1024**3
    waves = math.ceil(args.parts / args.concurrency)
    latency = args.latency_ms / 1000
    total_cap_limit = size / min(total, args.concurrency * per_conn) + waves * latency
    sequential_limit = size / per_conn + args.parts * latency
    part_mib = size / args.parts / MIB
    report: dict[str, Any] = {
        "benchmark": "metastudio_upload",
        "size_mib": round(size / MIB),
        "parts": args.parts,
        "part_mib": round(part_mib, 1),
        "rounds": args.rounds,
        "mbit_per_connection": args.mbit,
        "mbit_total": args.total_mbit,
        "latency_ms": args.latency_ms,
        "sdk_concurrency": args.concurrency,
        "total_cap_limit_s": round(total_cap_limit, 2),
        "sequential_limit_s": round(sequential_limit, 2),
        "load_avg_1m": spread(loads, 2),
    }
    for name, rs in runs.items():
        report[name] = {
            "wall_s": spread([r["wall_s"] for r in rs], 2),
            "cpu_s_per_gib": spread([r["cpu_s"] / gib for r in rs]),
            "user_s_per_gib": spread([r["user_s"] / gib for r in rs]),
            "sys_s_per_gib": spread([r["sys_s"] / gib for r in rs]),
            "peak_rss_mib": spread([r["peak_rss_mib"] for r in rs], 1),
            "server_cpu_share_of_wall": spread([r["server_cpu_s"] / r["wall_s"] for r in rs]),
        }
    sdk_ratio = spread([r["wall_s"] / total_cap_limit for r in runs["sdk"]])
    report["sdk_wall_over_total_cap_limit"] = sdk_ratio
    report["naive_wall_over_sequential_limit"] = spread(
        [r["wall_s"] / sequential_limit for r in runs["naive"]]
    )
    report["naive_over_sdk_wall"] = spread(
        [n["wall_s"] / s["wall_s"] for s, n in zip(runs["sdk"], runs["naive"], strict=True)], 2
    )
    report["expected_naive_over_sdk"] = round(sequential_limit / total_cap_limit, 2)
    report["naive_cpu_over_sdk_cpu"] = spread(
        [n["cpu_s"] / s["cpu_s"] for s, n in zip(runs["sdk"], runs["naive"], strict=True)], 2
    )
    report["sdk_peak_rss_parts"] = spread([r["peak_rss_mib"] / part_mib for r in runs["sdk"]])
    report["target"] = f"sdk_wall_over_total_cap_limit <= {TARGET}"
    hit = sdk_ratio["median"] <= TARGET
    report["targets_hit" if hit else "targets_missed"] = ["sdk_wall_over_total_cap_limit"]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
