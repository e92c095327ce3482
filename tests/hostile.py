"""Hostile HTTP peers on 127.0.0.1: each one misbehaves in exactly one way.

A plain module of helpers (not a conftest): ``dead_port()`` is a port where
nothing listens; ``hostile_server(behaviour)`` is a real loopback server that
resets, stalls or answers garbage, yielding its base URL.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

NESTING: Final = 100_000
NESTED: Final = b"[" * NESTING + b"]" * NESTING

#: Response bodies of the garbage behaviours, all sent with HTTP 200.
GARBAGE: Final = {
    "not_json": b"<html><body>502 Bad Gateway, but with a 200</body></html>",
    "truncated": b'{"errno": 0, "errMsg": "success", "data": {"upload_id": "abc',
    "nested": NESTED,
    # Inside an object, so that typed decoders have to skip it (and recurse).
    "nested_field": b'{"x": ' + NESTED + b"}",
}
BEHAVIOURS: Final = ("dead", "reset", "stall", *GARBAGE)


_RESERVED: list[socket.socket] = []


def dead_port() -> int:
    """A loopback port nothing listens on.

    It stays bound (never listening) for the rest of the run, so a connect is
    refused at once and no other test's server can take the port meanwhile: a
    port that was merely bound and closed could be reused, and then stall.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    port: int = sock.getsockname()[1]
    return port


async def _read_request(reader: BufferedByteReceiveStream) -> None:
    """Read one request, head and body (Content-Length or chunked)."""
    head = await reader.receive_until(b"\r\n\r\n", 1 << 20)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.receive_until(b"\r\n", 1024)).split(b";")[0], 16)
            await reader.receive_exactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                return
    length = int(headers.get(b"content-length", b"0"))
    while length:
        length -= len(await reader.receive(min(length, 1 << 16)))


def _response(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@asynccontextmanager
async def hostile_server(behaviour: str) -> AsyncIterator[str]:
    """``http://127.0.0.1:PORT`` of a server that ``behaviour``s every request.

    ``dead``: nothing listens.  ``reset``: accepts and resets the connection
    at once (RST).  ``stall``: reads the request and never answers.  A
    :data:`GARBAGE` key: reads the request and answers that body with 200.
    """
    if behaviour == "dead":
        yield f"http://127.0.0.1:{dead_port()}"
        return
    stop = anyio.Event()

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            try:
                if behaviour == "reset":
                    raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
                    # linger on, timeout 0: close() sends RST instead of FIN.
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                reader = BufferedByteReceiveStream(client)
                await _read_request(reader)
                if behaviour == "stall":
                    await stop.wait()  # until the test ends: the client must give up first
                    return
                await client.send(_response(GARBAGE[behaviour]))
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.IncompleteRead):
                pass  # the client gave up first

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                stop.set()
                tg.cancel_scope.cancel()
