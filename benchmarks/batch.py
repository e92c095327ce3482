"""Batch throughput: the sequential loop, the local batch and the Ray engine, under a quota.

200 short jobs (one sentence each) against the emulator in its own process, at
``pace=realtime`` (a session lasts as long as its speech, as on the real
service) with ``media=cheap`` (pre-encoded frames: the emulator's encoder is not
what is measured) and a quota of 8 sessions per appid (``tta_max_sessions``):

* ``sequential``: what a user writes from the vendor documents: for each job,
  open, say, finish, save (``--sequential-jobs`` of them: it is slow);
* ``local``: ``run_batch(…, cap=8)`` in this process;
* ``ray``: ``run_batch_ray(…, cap=8)`` on a local Ray instance (``--no-ray`` skips).

"What the cap allows" is 8 / (a job's median wall time in the sequential loop);
the target is local ≥ 90 % of it.  Peak concurrency is the emulator's count of
sessions open at once.  Client CPU is this process's (for Ray, the driver's);
the emulator's comes from ``/proc``.  One JSON line.

    python benchmarks/batch.py [--jobs 200] [--sequential-jobs 40] [--no-ray]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _bench import cpu_of, loadavg, spread

from avatarkit.batch import BatchJob, parse_jobs, run_batch
from avatarkit.emulator.process import spawn_emulator

CAP = 8
TARGET = 0.9
VIDEO = {"video_width": 256, "video_height": 256}


def make_jobs(n: int) -> list[BatchJob]:
    names = ["张三", "李四", "王五", "赵六", "孙七", "周八", "吴九", "郑十"]
    return parse_jobs(
        json.dumps(
            {
                "id": f"job-{i:04d}",
                "role": "GuoXiaoyuan",
                "text": f"{names[i % len(names)]}，你好！",
                "config": {"video": VIDEO},
            },
            ensure_ascii=False,
        )
        for i in range(n)
    )


async def sequential(av: Any, jobs: list[BatchJob], out: Path) -> list[float]:
    times = []
    for job in jobs:
        start = time.perf_counter()
        async with av.tta.open(job.role, **job.open_fields()) as stream:
            await stream.say(str(job.text)).collect()
            video = await stream.finish()
        await video.save(out / job.output_name)
        times.append(time.perf_counter() - start)
    return times


def measure(emu: Any, variant: str, jobs: list[BatchJob]) -> dict[str, Any]:
    stats_url = f"{emu.url}/emulator/stats"
    httpx.post(stats_url)  # peaks from now
    cpu, emu_cpu, wall = time.process_time(), cpu_of(emu.pid), time.perf_counter()
    result: dict[str, Any] = {"jobs": len(jobs)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if variant == "sequential":

            async def go() -> None:
                async with emu.session() as av:
                    result["job_wall_s"] = spread(await sequential(av, jobs, out), 3)

            asyncio.run(go())
        elif variant == "local":

            async def go() -> None:
                async with emu.session() as av:
                    summary = await run_batch(av, jobs, out, cap=CAP)
                    result.update(done=summary.done, failed=summary.failed, busy=summary.busy)

            asyncio.run(go())
        else:
            from avatarkit.batch.ray_engine import run_batch_ray

            async def go() -> None:
                summary = await run_batch_ray(jobs, out, cap=CAP, session_env=emu.env)
                result.update(done=summary.done, failed=summary.failed, busy=summary.busy)

            asyncio.run(go())
    elapsed = time.perf_counter() - wall
    stats = httpx.get(stats_url).json()
    result.update(
        elapsed_s=round(elapsed, 2),
        jobs_per_s=round(len(jobs) / elapsed, 3),
        peak_sessions=stats["tta_sessions_peak"],
        client_cpu_ms_per_job=round((time.process_time() - cpu) / len(jobs) * 1e3, 2),
        emulator_cpu_ms_per_job=round((cpu_of(emu.pid) - emu_cpu) / len(jobs) * 1e3, 2),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--sequential-jobs", type=int, default=40)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    jobs = make_jobs(args.jobs)
    report: dict[str, Any] = {"benchmark": "batch", "cap": CAP, "loadavg_before": loadavg()}
    options = ["--pace", "realtime", "--media", "cheap", "--set", f"tta_max_sessions={CAP}"]
    with spawn_emulator(*options) as emu:
        report["sequential"] = measure(emu, "sequential", jobs[: args.sequential_jobs])
        report["local"] = measure(emu, "local", jobs)
        if not args.no_ray:
            report["ray"] = measure(emu, "ray", jobs)
    job_s = report["sequential"]["job_wall_s"]["median"]
    allowed = CAP / job_s
    report["cap_allows_jobs_per_s"] = round(allowed, 3)
    for variant in ("local", "ray"):
        if variant in report:
            report[variant]["of_cap"] = round(report[variant]["jobs_per_s"] / allowed, 3)
    report["target"] = f"local >= {TARGET} of what the cap allows, peak <= {CAP}"
    ok = report["local"]["of_cap"] >= TARGET and report["local"]["peak_sessions"] <= CAP
    report["missed"] = None if ok else ["local"]
    report["loadavg_after"] = loadavg()
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
