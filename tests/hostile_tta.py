"""A small hostile TTA server for liveness and memory tests (not the emulator).

Each scenario misbehaves in one way that a real service or network can:

* ``silent``: answers the open, acks a chat and sends ``voice_start``, then
  says nothing more — while still answering pings;
* ``silent_close``: speaks one utterance properly, then ignores ``|CTL|01|``;
* ``no_open_reply``: never answers the open;
* ``deaf``: answers the open, then stops reading its socket (so no pongs);
* ``stray``: sends a ``voice_end`` right after the open reply, then speaks
  every chat with two audio frames that name the chat;
* ``big``: speaks every chat as ``count`` video frames of ``size`` bytes of
  incompressible data.

In-process: ``async with serve("silent") as port``.  As a process (so that
its memory is not counted with the client's):
``python tests/hostile_tta.py big --count 24 --size 3145728`` prints ``PORT n``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

SCENARIOS = ("silent", "silent_close", "no_open_reply", "deaf", "stray", "big")


def status(code: int, kind: int, message: str = "") -> str:
    return "|MSG|00|" + json.dumps({"code": code, "message": message, "type": kind})


def event(kind: str, data: dict[str, Any] | None = None) -> str:
    return "|DAT|02|" + json.dumps({"callback_info": {"type": kind, "data": data or {}}})


class Hostile:
    def __init__(self, scenario: str, *, count: int = 4, size: int = 1024) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        self.scenario = scenario
        self.count = count
        self.block = os.urandom(size)  # incompressible, like H.264

    async def handler(self, ws: ServerConnection) -> None:
        with suppress(ConnectionClosed):
            await self._run(ws)

    async def _run(self, ws: ServerConnection) -> None:
        first = await ws.recv()
        assert str(first).startswith("|CTL|00|")
        if self.scenario == "no_open_reply":
            await ws.wait_closed()
            return
        await ws.send(status(1000, 0, "session opened"))
        if self.scenario == "deaf":
            ws.transport.pause_reading()  # reads nothing more: no pong ever comes back
            await ws.wait_closed()
            return
        if self.scenario == "stray":
            await ws.send(event("voice_end"))
        spoken = 0
        async for message in ws:
            text = message if isinstance(message, str) else message.decode("latin-1")
            if text.startswith("|CTL|01|"):
                if self.scenario == "silent_close":
                    await ws.wait_closed()
                    return
                await ws.send(status(1000, 1, "session closed"))
                await ws.close()
                return
            if not text.startswith(("|CTL|02|", "|CTL|09|")):
                continue
            spoken += 1
            await ws.send(status(1000, 2, "chat accepted"))
            await ws.send(event("voice_start"))
            if self.scenario == "silent" or (self.scenario == "silent_close" and spoken > 1):
                continue  # from here on: nothing, though pings are answered
            if self.scenario == "big":
                for _ in range(self.count):
                    await ws.send(b"|DAT|01|" + self.block)
            else:
                for part in (1, 2):
                    await ws.send(b"|DAT|00|" + f"chat {spoken} part {part}".encode())
            await ws.send(event("voice_end"))


@asynccontextmanager
async def serve(scenario: str, *, count: int = 4, size: int = 1024) -> AsyncIterator[int]:
    """Serve ``scenario`` on 127.0.0.1; yields the port."""
    hostile = Hostile(scenario, count=count, size=size)
    async with ws_serve(
        hostile.handler,
        "127.0.0.1",
        0,
        ping_interval=None,  # the client's keepalive is under test, not ours
        compression=None,
        max_size=None,
        close_timeout=0.2,  # a deaf connection never finishes closing: don't wait for it
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield port


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/api/v1/volc_virtual_human/tta"


@contextmanager
def spawn(*args: str) -> Iterator[int]:
    """This server in its own process (so its memory is not the client's); yields the port."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield int(line.split()[1])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # EOF: the server exits
        proc.wait(timeout=30)


async def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    async with serve(args.scenario, count=args.count, size=args.size) as port:
        print(f"PORT {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


if __name__ == "__main__":
    asyncio.run(_main())
