"""Shared helpers of the TTA benchmarks: the frame server, fresh child processes, figures."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# The same allocator state in every process (PERF-NOTES: glibc's adaptive mmap/trim
# thresholds make about half of fresh processes fault on every read otherwise).
ENV = {
    **os.environ,
    "MALLOC_MMAP_THRESHOLD_": str(1 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(4 << 20),
    "PYTHONHASHSEED": "0",
}

CONFIG = '{"role":"GuoXiaoyuan","video":{"video_width":240,"video_height":240}}'
HEADERS = {"Resource-Id": "volc.avatar.2d"}
APPID = TOKEN = "bench"


def installed(module: str) -> bool:
    """Whether an optional package is there (its variant is measured only then)."""
    return importlib.util.find_spec(module) is not None


# The [speed] extra's event loop, measured beside the default one when installed.
HAVE_UVLOOP = installed("uvloop")


def rotated(variants: tuple[str, ...], k: int) -> tuple[str, ...]:
    """Round ``k``'s order: every variant goes first in turn."""
    k %= len(variants)
    return variants[k:] + variants[:k]


def run_variant(variant: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """``asyncio.run(main())``, on uvloop for a variant named ``…_uvloop``."""
    if variant.endswith("_uvloop"):
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main())
    return asyncio.run(main())


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``): the other side's
    CPU over a measured phase, to show it is not the bottleneck."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def spread(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


class FrameServer:
    """``_frame_server.py`` in its own process; stopped by closing its stdin."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_frame_server.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=ENV,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"frame server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"ws://127.0.0.1:{self.port}"
        self.url = f"{self.base}/2d?appid={APPID}&access_token={TOKEN}"
        self._control: Any = None

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """The server's counters (``|CTL|77|``), on a control connection of its own."""
        from websockets.sync.client import connect

        if self._control is None:
            self._control = connect(self.url, compression=None, max_size=None)
        self._control.send("|CTL|77|reset" if reset else "|CTL|77|")
        reply = self._control.recv()
        return dict(json.loads(reply[8:]))

    def close(self) -> dict[str, Any]:
        if self._control is not None:
            self._control.close()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        self.proc.wait(timeout=30)
        for line in out.splitlines():
            if line.startswith("STATS "):
                return dict(json.loads(line[6:]))
        return {}

    def __enter__(self) -> FrameServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            try:
                self.close()
            except Exception:
                self.proc.kill()
                self.proc.wait()


def run_child(script: Path, args: Sequence[str], timeout: float = 300) -> dict[str, Any]:
    """Run ``script --child …`` in a fresh interpreter; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, str(script), "--child", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
