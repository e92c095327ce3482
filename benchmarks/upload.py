"""Upload throughput, CPU and memory: the SDK vs the vendor demo's way.

Against the emulator (its own process) shaped to 20 ms latency per request
and 400 Mbit/s per connection, one file (1 GiB by default) is uploaded by:

  sdk    ``session.digime.upload`` — streamed base64 bodies with read-ahead,
         one keep-alive connection
  naive  the vendor document's demo loop (doc 000 §7): a new connection per
         request, ``base64.b64encode`` + ``json.dumps``, sequential, whole parts
         held as strings (the previous part kept to merge a short tail)

Each uploader runs in a child process so that its CPU seconds and peak RSS
are its own.  Prints one JSON line: wall time, CPU seconds per GiB and peak
RSS above baseline for each, and the SDK's wall time over the link's limit
(bytes × 4/3 ÷ bandwidth + parts × latency).

    python benchmarks/upload.py [--size-mib 1024] [--latency-ms 20] [--mbit 400]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _measure import rss_kib  # benchmarks/ is on sys.path when a benchmark runs

from avatarkit.emulator.process import spawn_emulator

MIB = 1024 * 1024


# -- children ---------------------------------------------------------------


def child_sdk(args: argparse.Namespace) -> dict[str, Any]:
    import anyio

    from avatarkit import AvatarSession, Endpoints

    async def run() -> Any:
        endpoints = Endpoints(digime=args.digime)
        async with AvatarSession(args.appid, args.token, endpoints=endpoints) as av:
            return await av.digime.upload(
                args.file,
                conf_name="Bench-1",
                role_show_name="bench",
                input_resource="bench",
                check_resolution=False,
                resume=False,
            )

    return {"parts": anyio.run(run).parts}


def child_naive(args: argparse.Namespace) -> dict[str, Any]:
    """The demo's part_upload_file, with httpx standing in for requests."""
    import httpx

    url, token, appid = args.digime, args.token, args.appid

    def post(path: str, data: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Authorization": token}
        result = httpx.post(url + path, headers=headers, content=json.dumps(data), timeout=120)
        if result.status_code != 200:
            raise Exception(f"request code is not {result.status_code}")
        res = result.json()
        if res.get("errMsg") != "success" or res.get("errno") != 0:
            raise Exception(f"request err, msg: {res.get('errMsg')}")
        return res  # type: ignore[no-any-return]

    def read_file_by_chunk(file: str, chunk_size: int = 1024 * 1024 * 10) -> Any:
        with open(file, mode="rb") as f:
            while True:
                chunk = f.read(chunk_size)
                if not chunk:
                    return
                yield chunk

    file_path = args.file
    init_data = {
        "conf_name": "Bench-1",
        "type": 1,
        "role_show_name": "bench",
        "input_resource": "bench",
        "appid": appid,
        "file_suffix": file_path[-3:],
    }
    upload_id = post("/init_part_upload", init_data)["data"]["upload_id"]
    upload_data: dict[str, Any] = {
        "conf_name": "Bench-1",
        "type": 1,
        "upload_id": upload_id,
        "appid": appid,
        "file_suffix": file_path[-3:],
    }
    part_num = 1
    tmp_content_str = ""
    tmp_bytes = b""
    final_deal = True
    for chunk in read_file_by_chunk(file_path):
        if part_num == 1:
            tmp_content_str = base64.b64encode(bytes(chunk)).decode()
            tmp_bytes = bytes(chunk)
            part_num += 1
            continue
        if len(bytes(chunk)) >= 5242880:
            upload_data["part_num"] = part_num - 1
            upload_data["content"] = tmp_content_str
            post("/video_part_upload", upload_data)
            tmp_content_str = base64.b64encode(bytes(chunk)).decode()
            tmp_bytes = bytes(chunk)
        else:
            upload_data["part_num"] = part_num - 1
            upload_data["content"] = base64.b64encode(tmp_bytes + bytes(chunk)).decode()
            post("/video_part_upload", upload_data)
            final_deal = False
        part_num += 1
    if final_deal:
        upload_data["part_num"] = part_num - 1
        upload_data["content"] = tmp_content_str
        post("/video_part_upload", upload_data)
    complete = {
        "conf_name": "Bench-1",
        "type": 1,
        "upload_id": upload_id,
        "appid": appid,
        "file_suffix": file_path[-3:],
    }
    post("/video_complete_upload", complete)
    return {"parts": part_num - 1}


def run_child(args: argparse.Namespace) -> None:
    import httpx  # noqa: F401 - imported before the baseline, as both children use it

    import avatarkit  # noqa: F401

    baseline = rss_kib("VmRSS")
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    out = (child_sdk if args.child == "sdk" else child_naive)(args)
    wall = time.perf_counter() - wall0
    out.update(
        wall_s=wall,
        cpu_s=time.process_time() - cpu0,
        peak_rss_above_baseline_mib=(rss_kib("VmHWM") - baseline) / 1024,
    )
    print(json.dumps(out))


# -- parent -----------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--mbit", type=float, default=400, help="per-connection cap, Mbit/s")
    parser.add_argument("--child", choices=["sdk", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--digime", help=argparse.SUPPRESS)
    parser.add_argument("--appid", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    bandwidth = args.mbit * 1e6 / 8  # bytes per second
    shaping = ("--set", f"latency_ms={args.latency_ms}", "--set", f"bandwidth_bps={bandwidth}")
    with spawn_emulator(*shaping) as emu, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        block = os.urandom(MIB)
        with path.open("wb") as f:
            for i in range(args.size_mib):  # distinct blocks: nothing compresses or dedups
                f.write(block[i % 997 :] + block[: i % 997])
        size = path.stat().st_size
        results: dict[str, Any] = {}
        for variant in ("sdk", "naive"):
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    variant,
                    "--file",
                    str(path),
                    "--digime",
                    emu.endpoints.digime,
                    "--appid",
                    emu.appid,
                    "--token",
                    emu.token,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[variant] = json.loads(child.stdout.strip().splitlines()[-1])
    gib = size / 1024**3
    parts = results["sdk"]["parts"]
    link_limit = size * 4 / 3 / bandwidth + parts * args.latency_ms / 1000
    report: dict[str, Any] = {
        "benchmark": "upload",
        "size_mib": args.size_mib,
        "latency_ms": args.latency_ms,
        "mbit_per_connection": args.mbit,
        "parts": parts,
        "link_limit_s": round(link_limit, 2),
    }
    for name, r in results.items():
        report[name] = {
            "wall_s": round(r["wall_s"], 2),
            "cpu_s_per_gib": round(r["cpu_s"] / gib, 2),
            "peak_rss_above_baseline_mib": round(r["peak_rss_above_baseline_mib"], 1),
        }
    report["sdk_wall_over_link_limit"] = round(results["sdk"]["wall_s"] / link_limit, 3)
    report["naive_cpu_over_sdk_cpu"] = round(results["naive"]["cpu_s"] / results["sdk"]["cpu_s"], 2)
    report["sdk_peak_rss_in_parts"] = round(results["sdk"]["peak_rss_above_baseline_mib"] / 10, 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
