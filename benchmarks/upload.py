"""Digime upload over a shaped link: the SDK vs the vendor document's demo as written.

The emulator runs in its own process, shaped like a real link: ``latency_ms``
before each response, request bodies read at most ``--mbit`` per connection
and ``--total-mbit`` for all connections together.  One file (1 GiB by
default, random bytes: nothing compresses) is uploaded by:

  sdk    ``session.digime.upload`` — streamed base64 bodies (encoded on the
         event loop while the page cache holds the file, else with a threaded
         read-ahead), one keep-alive connection; a default install (pybase64
         kept out, so base64 is msgspec's)
  sdk_speed  the same with the ``[speed]`` extra's pybase64 (SIMD base64), when
         it is installed
  naive  doc 000 §7's Python demo, copied as written (``requests.post(url,
         headers=..., data=json.dumps(body))`` per part, ``base64.b64encode(...)
         .decode()``, the file read part by part, the previous part held to
         merge a short tail); only the host and the credentials are ours.  The
         demo reads ``ret["data"]`` as the upload id, so the emulator answers
         ``/init_part_upload`` with the bare id (``digime_init_data_shape=bare``;
         the SDK reads either shape).

Every upload is a fresh child process with the same fixed glibc thresholds
(``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``, see PERF-NOTES), in
paired rounds whose order alternates.  What each child measures about
itself, from just before the upload to just after (imports excluded):
``time.process_time()`` (all its threads' CPU, user and system), wall time,
peak RSS above its RSS before the upload, minor page faults.  The parent
reads the emulator's CPU time (``/proc/PID/stat``) around each upload, to
show the server is not the bottleneck, and the load average.

Gates (medians of the rounds; min and max are printed beside them):

  wall ÷ link limit ≤ 1.05   the SDK's wall time over the least time the link
                             allows: body bytes ÷ bandwidth + one latency per
                             request (init, parts, complete: sequential by protocol)
  naive CPU ÷ SDK CPU ≥ 4    client CPU seconds per GiB, per-round ratios
  peak RSS ≤ 3 parts         the SDK's peak RSS above baseline, in 10 MiB parts

Prints one JSON line (the demo's own ``print`` lines go to the child's stdout,
which the parent reads past).

    python benchmarks/upload.py [--size-mib 1024] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import installed, rotated

MIB = 1024 * 1024
PART = 10 * MIB  # the doc's (and the SDK's default) part size
TARGETS = {"sdk_wall_over_link_limit": 1.05, "naive_cpu_over_sdk_cpu": 4.0, "sdk_peak_rss_parts": 3}
VARIANTS = ("sdk", "naive") + (("sdk_speed",) if installed("pybase64") else ())

# The same allocator state in every client process (PERF-NOTES).
CHILD_ENV = {
    **os.environ,
    "MALLOC_MMAP_THRESHOLD_": str(1 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(4 << 20),
    "PYTHONHASHSEED": "0",
}


# == the vendor demo (doc 000 §7, "script/init.py"), as written ===========================
# The one copy of its text is tests/conformance/digime_demo.py; the naive child execs it
# with UPLOAD_URL pointed at the emulator, nothing else changed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conformance.digime_demo import DEMO  # noqa: E402


def rss_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def child_sdk(args: argparse.Namespace) -> int:
    import anyio

    from avatarkit import AvatarSession, Endpoints

    async def run() -> int:
        endpoints = Endpoints(digime=args.digime)
        async with AvatarSession(args.appid, args.token, endpoints=endpoints) as av:
            result = await av.digime.upload(
                args.file,
                conf_name="Bench-1",
                role_show_name="bench",
                input_resource="bench",
                check_resolution=False,
                resume=False,
            )
            return result.parts

    return anyio.run(run)


def child_naive(args: argparse.Namespace, demo: dict[str, Any]) -> int:
    demo["UPLOAD_URL"] = args.digime
    demo["part_upload_file"](args.file, "Bench-1", "bench", 1, "bench", args.appid, args.token)
    return math.ceil(os.path.getsize(args.file) / PART)  # what the demo sent, roughly


def run_child(args: argparse.Namespace) -> None:
    if args.child != "sdk_speed":
        sys.modules["pybase64"] = None  # type: ignore[assignment]  # a default install
    # Every child imports the same modules before its baseline, the SDK's upload path
    # included (avatarkit imports it lazily): import time is not upload CPU.
    import anyio  # noqa: F401
    import httpx  # noqa: F401

    import avatarkit.digime.client
    import avatarkit.digime.upload  # noqa: F401
    from avatarkit import AvatarSession  # noqa: F401

    demo: dict[str, Any] = {}
    exec(DEMO, demo)  # the demo's own imports (requests…) load here, before the baseline too

    baseline = rss_kib("VmRSS")
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    parts = child_naive(args, demo) if args.child == "naive" else child_sdk(args)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "parts": parts,
        "wall_s": wall,
        "cpu_s": cpu,
        "user_s": ru1.ru_utime - ru0.ru_utime,
        "sys_s": ru1.ru_stime - ru0.ru_stime,
        "minor_faults": ru1.ru_minflt - ru0.ru_minflt,
        "peak_rss_mib": (rss_kib("VmHWM") - baseline) / 1024,
    }
    print("\n" + json.dumps(out))


# -- parent -------------------------------------------------------------------------------


def emulator_pid() -> int:
    """The spawned emulator: our child process whose command line runs ``emulator``."""
    me = os.getpid()
    for task in Path(f"/proc/{me}/task").iterdir():
        for pid in (task / "children").read_text().split():
            if b"emulator" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    raise RuntimeError("no emulator child process")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float], digits: int = 3) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def body_bytes(size: int, parts: int) -> int:
    """Bytes of all part bodies on the wire (base64 + about 170 bytes of JSON per part)."""
    return 4 * math.ceil(size / 3) + parts * 170


def make_file(path: Path, size_mib: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as f:
        for i in range(size_mib):  # distinct blocks: nothing compresses or dedups
            f.write(block[i % 997 :] + block[: i % 997])


def main() -> None:
    from avatarkit.emulator.process import spawn_emulator  # not in the clients' processes

    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds (default 3)")
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--mbit", type=float, default=400, help="per-connection cap, Mbit/s")
    parser.add_argument("--total-mbit", type=float, default=1000, help="total cap, Mbit/s")
    parser.add_argument("--quick", action="store_true", help="128 MiB, 2 rounds (< 1 minute)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--digime", help=argparse.SUPPRESS)
    parser.add_argument("--appid", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    if args.quick:
        args.size_mib, args.rounds = 128, 2

    per_conn, total = args.mbit * 1e6 / 8, args.total_mbit * 1e6 / 8  # bytes per second
    shaping = (
        *("--set", f"latency_ms={args.latency_ms}"),
        *("--set", f"bandwidth_bps={per_conn}"),
        *("--set", f"bandwidth_total_bps={total}"),
        *("--set", "digime_init_data_shape=bare"),
    )
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        make_file(path, args.size_mib)
        size = path.stat().st_size
        with spawn_emulator(*shaping) as emu:
            epid = emulator_pid()
            for r in range(args.rounds):
                loads.append(os.getloadavg()[0])
                for variant in rotated(VARIANTS, r):
                    e0 = proc_cpu_s(epid)
                    child = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            *("--child", variant, "--file", str(path)),
                            *("--digime", emu.endpoints.digime),
                            *("--appid", emu.appid, "--token", emu.token),
                        ],
                        env=CHILD_ENV,
                        capture_output=True,
                        text=True,
                        check=True,
                        timeout=3600,
                    )
                    result = json.loads(child.stdout.strip().splitlines()[-1])
                    result["server_cpu_s"] = proc_cpu_s(epid) - e0
                    runs[variant].append(result)
            loads.append(os.getloadavg()[0])

    gib = size / 1024**3
    parts = runs["sdk"][0]["parts"]
    rate = min(per_conn, total)
    link_limit = body_bytes(size, parts) / rate + (parts + 2) * args.latency_ms / 1000
    report: dict[str, Any] = {
        "benchmark": "upload",
        "size_mib": round(size / MIB),
        "rounds": args.rounds,
        "latency_ms": args.latency_ms,
        "mbit_per_connection": args.mbit,
        "mbit_total": args.total_mbit,
        "parts": parts,
        "link_limit_s": round(link_limit, 2),
        "malloc_env": {k: v for k, v in CHILD_ENV.items() if k.startswith("MALLOC_")},
        "load_avg_1m": spread(loads, 2),
    }
    for name, rs in runs.items():
        report[name] = {
            "wall_s": spread([r["wall_s"] for r in rs], 2),
            "cpu_s_per_gib": spread([r["cpu_s"] / gib for r in rs]),
            "user_s_per_gib": spread([r["user_s"] / gib for r in rs]),
            "sys_s_per_gib": spread([r["sys_s"] / gib for r in rs]),
            "minor_faults_per_gib": spread([r["minor_faults"] / gib for r in rs], 0),
            "peak_rss_mib": spread([r["peak_rss_mib"] for r in rs], 1),
            # The server's CPU during this client's upload, as a share of one core.
            "server_cpu_share_of_wall": spread([r["server_cpu_s"] / r["wall_s"] for r in rs]),
        }
    figures = {
        "sdk_wall_over_link_limit": spread([r["wall_s"] / link_limit for r in runs["sdk"]]),
        "naive_cpu_over_sdk_cpu": spread(
            [n["cpu_s"] / s["cpu_s"] for s, n in zip(runs["sdk"], runs["naive"], strict=True)], 2
        ),
        "sdk_peak_rss_parts": spread([r["peak_rss_mib"] * MIB / PART for r in runs["sdk"]], 2),
    }
    if "sdk_speed" in runs:
        figures["naive_cpu_over_sdk_speed_cpu"] = spread(
            [
                n["cpu_s"] / s["cpu_s"]
                for s, n in zip(runs["sdk_speed"], runs["naive"], strict=True)
            ],
            2,
        )
    report.update(figures)
    hit = {
        "sdk_wall_over_link_limit": figures["sdk_wall_over_link_limit"]["median"]
        <= TARGETS["sdk_wall_over_link_limit"],
        "naive_cpu_over_sdk_cpu": figures["naive_cpu_over_sdk_cpu"]["median"]
        >= TARGETS["naive_cpu_over_sdk_cpu"],
        "sdk_peak_rss_parts": figures["sdk_peak_rss_parts"]["median"]
        <= TARGETS["sdk_peak_rss_parts"],
    }
    report["targets"] = {
        "sdk_wall_over_link_limit": "<= 1.05",
        "naive_cpu_over_sdk_cpu": ">= 4",
        "sdk_peak_rss_parts": "<= 3",
    }
    report["targets_hit"] = sorted(k for k, v in hit.items() if v)
    report["targets_missed"] = sorted(k for k, v in hit.items() if not v)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
