"""Import time: ``import avatarkit`` vs ``import httpx, websockets, anyio, msgspec``.

Every measurement is a fresh interpreter (``sys.executable -c …``), so nothing
is cached in ``sys.modules``; the ``.pyc`` files are warm (one untimed import of
each variant first).  Variants, run in interleaved rounds in a rotating order:

  empty    ``python -c pass``: the interpreter's own start-up (baseline)
  deps     ``import httpx, websockets, anyio, msgspec``: the SDK's dependencies
  sdk      ``import avatarkit``
  session  ``import avatarkit`` then ``AvatarSession("appid", "token")``
  stream   the same, then ``av.tta.open("GuoXiaoyuan")`` (not connected): what the
           first TTA stream loads (the WebSocket client, SSML…); context, not gated

What is timed: inside each child, ``time.perf_counter()`` and
``time.process_time()`` (CPU) around the import statement itself, so start-up
noise is not in the figure; the parent also times the whole process (wall) and
reports ``process wall − empty`` as context.  The gate is the median of the
per-round ratios sdk ÷ deps of import CPU time (the figure stable on this
machine, per PERF-NOTES); the same ratio of in-process wall time is printed
beside it.  Target: ≤ 1.2.

It also lists what ``import avatarkit`` loads beyond what the dependencies'
import loads (from ``sys.modules``), which of the dependencies' modules it does
*not* load, and the top self-times from ``-X importtime`` (median of several
runs).  Prints one JSON line.

    python benchmarks/import_time.py [--pairs 40] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

TARGET = 1.2

STATEMENTS = {
    "empty": "pass",
    "deps": "import httpx, websockets, anyio, msgspec",
    "sdk": "import avatarkit",
    "session": "import avatarkit; avatarkit.AvatarSession('appid', 'token')",
    # Context, not gated: all that the first TTA stream needs before it connects.
    "stream": "import avatarkit; avatarkit.AvatarSession('appid', 'token').tta.open('GuoXiaoyuan')",
}

# The timed child: the clock is read just around the statement under test.
CHILD = """\
import time
_w0 = time.perf_counter(); _c0 = time.process_time()
{stmt}
_c1 = time.process_time(); _w1 = time.perf_counter()
print(_w1 - _w0, _c1 - _c0)
"""

# The same allocator state in every child (PERF-NOTES): fixed glibc thresholds.
ENV = {
    **os.environ,
    "MALLOC_MMAP_THRESHOLD_": str(1 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(4 << 20),
    "PYTHONHASHSEED": "0",
}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)


def run_child(stmt: str) -> tuple[float, float, float]:
    """(import wall s, import CPU s, whole-process wall s) of one fresh interpreter."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(stmt=stmt)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    proc_wall = time.perf_counter() - t0
    wall, cpu = (float(x) for x in out.split())
    return wall, cpu, proc_wall


def modules_after(stmt: str) -> set[str]:
    code = f"import sys\n{stmt}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def importtime_self_us(stmt: str, runs: int) -> dict[str, float]:
    """Median ``-X importtime`` self time (µs) per module over ``runs`` fresh processes."""
    samples: dict[str, list[int]] = {}
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", stmt],
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for line in err.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _cumulative, name = line[len("import time:") :].split("|")
            samples.setdefault(name.strip(), []).append(int(self_us))
    return {name: statistics.median(v) for name, v in samples.items()}


def spread(values: list[float], scale: float = 1e3, digits: int = 1) -> dict[str, float]:
    return {
        "median": round(statistics.median(values) * scale, digits),
        "min": round(min(values) * scale, digits),
        "max": round(max(values) * scale, digits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="interleaved rounds (default 40)")
    parser.add_argument("--importtime-runs", type=int, default=5, help="-X importtime runs")
    parser.add_argument("--quick", action="store_true", help="10 rounds, 3 importtime runs")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.importtime_runs = 10, 3
    load_before = os.getloadavg()

    names = list(STATEMENTS)
    for name in names:  # warm: .pyc files written, page cache filled
        run_child(STATEMENTS[name])

    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    proc: dict[str, list[float]] = {n: [] for n in names}
    ratio_cpu: list[float] = []
    ratio_wall: list[float] = []
    ratio_proc: list[float] = []
    ratio_stream_cpu: list[float] = []
    for i in range(args.pairs):
        order = names[i % len(names) :] + names[: i % len(names)]  # rotate
        got = {}
        for name in order:
            got[name] = run_child(STATEMENTS[name])
            w, c, p = got[name]
            wall[name].append(w)
            cpu[name].append(c)
            proc[name].append(p)
        ratio_wall.append(got["sdk"][0] / got["deps"][0])
        ratio_cpu.append(got["sdk"][1] / got["deps"][1])
        base = got["empty"][2]
        ratio_stream_cpu.append(got["stream"][1] / got["deps"][1])
        ratio_proc.append((got["sdk"][2] - base) / max(got["deps"][2] - base, 1e-6))

    base_mods = modules_after("pass")
    deps_mods = modules_after(STATEMENTS["deps"])
    sdk_mods = modules_after(STATEMENTS["sdk"])
    session_mods = modules_after(STATEMENTS["session"])
    stream_mods = modules_after(STATEMENTS["stream"])
    beyond = sorted(sdk_mods - deps_mods)
    self_times = importtime_self_us(STATEMENTS["sdk"], args.importtime_runs)
    top = sorted(self_times.items(), key=lambda kv: -kv[1])[:10]
    top_beyond = sorted(
        ((n, t) for n, t in self_times.items() if n in sdk_mods - deps_mods),
        key=lambda kv: -kv[1],
    )[:10]
    heavy = ["websockets", "httpx", "avatarkit.tta.ssml", "avatarkit.tta.stream", "xml.etree"]
    heavy += ["tarfile", "wave", "avatarkit.digime.upload", "avatarkit.tta._ws", "av", "asyncio"]

    cpu_ratio = statistics.median(ratio_cpu)
    wall_ratio = statistics.median(ratio_wall)
    out: dict[str, Any] = {
        "benchmark": "import_time",
        "python": sys.version.split()[0],
        "pairs": args.pairs,
        "method": (
            "fresh interpreter per sample; perf_counter/process_time around the import "
            "statement inside the child; process_wall_minus_empty_ms = whole-process wall "
            "minus `python -c pass` of the same round"
        ),
        "import_cpu_ms": {n: spread(cpu[n]) for n in names if n != "empty"},
        "import_wall_ms": {n: spread(wall[n]) for n in names if n != "empty"},
        "process_wall_ms": {n: spread(proc[n]) for n in names},
        "process_wall_minus_empty_ms": {
            n: spread([p - e for p, e in zip(proc[n], proc["empty"], strict=True)])
            for n in names
            if n != "empty"
        },
        "ratio_sdk_over_deps": {
            "cpu": spread(ratio_cpu, 1, 3),
            "wall": spread(ratio_wall, 1, 3),
            "process_wall_minus_empty": spread(ratio_proc, 1, 3),
        },
        "ratio_stream_over_deps_cpu": spread(ratio_stream_cpu, 1, 3),
        "target": f"import avatarkit / import deps (CPU, median) <= {TARGET}",
        "target_met": cpu_ratio <= TARGET,
        "wall_target_met": wall_ratio <= TARGET,
        "modules": {
            "empty": len(base_mods),
            "deps": len(deps_mods),
            "sdk": len(sdk_mods),
            "session": len(session_mods),
            "stream": len(stream_mods),
        },
        "sdk_loads_beyond_deps": beyond,
        "sdk_loads_beyond_deps_count": len(beyond),
        "session_loads_beyond_sdk": sorted(session_mods - sdk_mods),
        "stream_loads_beyond_session_count": len(stream_mods - session_mods),
        "deps_modules_sdk_does_not_load": len(deps_mods - sdk_mods),
        "heavy_loaded_by_sdk": {m: m in sdk_mods for m in heavy},
        "heavy_loaded_by_session": {m: m in session_mods for m in heavy},
        "heavy_loaded_by_stream": {m: m in stream_mods for m in heavy},
        "importtime_top10_self_us": dict(top),
        "importtime_top10_self_us_beyond_deps": dict(top_beyond),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    if not out["target_met"]:
        out["note"] = f"TARGET MISSED: sdk/deps import CPU ratio {cpu_ratio:.3f} > {TARGET}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
