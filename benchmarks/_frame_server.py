"""A cheap TTA frame server for the receive benchmarks, in a process of its own.

It speaks just enough of the TTA protocol (SPEC §2) to feed a client, and is
built so that it is never the bottleneck:

* websockets' sans-I/O ``ServerProtocol`` under a plain ``asyncio.Protocol``
  does the handshake (permessage-deflate accepted with websockets' server
  defaults, so the vendor demo's default client negotiates it) and parses what
  the client sends; the server's own frames are **pre-encoded once** (WebSocket
  header included; for deflate connections pre-compressed, each message on its
  own, which any inflater with context takeover reads as well) and written
  straight to the transport;
* the media of a fast stream goes out in batches of about 1 MiB of whole
  frames, written straight from the prebuilt batch to the socket (no copy into
  the transport's buffer), so the client never waits on the server.

Protocol (header + payload):

* ``|CTL|00|…`` open → ``|MSG|00|{"code":1000,"message":"ok","type":0}``
* ``|CTL|02|text`` chat → ``|MSG|00|`` type-2 ack, ``|DAT|02|`` voice_start,
  the media frames, ``|DAT|02|`` voice_end.  ``key=value`` words in the text
  set the stream (defaults from the command line):

  - ``frames=N``: media frames, alternating ``|DAT|01|`` video (random bytes,
    incompressible like H.264) and ``|DAT|00|`` audio (speech-like 16 kHz PCM
    from :func:`avatarkit.emulator.media.synth_speech`);
  - ``video=B``/``audio=B``: payload bytes per video frame / audio chunk
    (audio 1280 = 40 ms);
  - ``mode=rt``: real time instead of as fast as possible: one video frame
    and one 40 ms audio chunk per 40 ms tick (25 fps video of 1080p-sized
    H.264: ``video=`` is the average P-frame, a keyframe ``key=`` bytes every
    250 frames, each stream at a random point of its GOP); the first 8 bytes
    of every media payload are its scheduled send time (``time.monotonic()``,
    little-endian double).  ``frames=`` counts ticks here.

* ``|CTL|03|`` interrupt (stops the stream; voice_end follows), ``|CTL|01|``
  close (type-1 reply).
* ``|CTL|77|`` (``|CTL|77|reset`` also clears the counters) → ``|MSG|00|``
  with the server's stats as JSON: its CPU seconds (``process_time``), media
  frames and bytes sent, bytes queued in the sockets of fast streams (the
  transport's buffer plus the kernel's send queue, sampled before each batch:
  in the MB range when the client is the one behind), and for real-time
  streams the server's own lag (when each tick actually ran against when it
  was due) and the frames it dropped because a client's buffer passed 4 MiB.

Prints ``PORT n`` when listening; exits when its stdin (a pipe) closes or on
SIGINT/SIGTERM, printing ``STATS {...}`` first.

    python benchmarks/_frame_server.py [--port 0] [--cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import random
import resource
import signal
import stat
import statistics
import struct
import sys
import termios
import time
import zlib
from dataclasses import dataclass
from typing import Any

from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

MIB = 1 << 20
BATCH_BYTES = MIB
# Media waits in the kernel's socket buffer, not in the transport's: a batch is written
# only once the last one has left (no copy into asyncio's buffer, no extra CPU).
HIGH_WATER = 0
RT_CAP = 4 * MIB  # a real-time stream drops frames past this much unsent
TICK = 0.040  # 25 fps; 40 ms of audio per tick
GOP = 250  # frames between keyframes (I_frame_interval's default)
OP_TEXT, OP_BINARY = 0x1, 0x2
STATS = b"|CTL|77|"


def ws_header(opcode: int, length: int, *, compressed: bool = False) -> bytes:
    """An unmasked (server) WebSocket frame header, FIN set."""
    b0 = 0x80 | opcode | (0x40 if compressed else 0)
    if length < 126:
        return bytes((b0, length))
    if length < 1 << 16:
        return struct.pack("!BBH", b0, 126, length)
    return struct.pack("!BBQ", b0, 127, length)


def deflate(payload: bytes) -> bytes:
    """One message compressed on its own, as websockets' server settings would."""
    c = zlib.compressobj(wbits=-12, memLevel=5)
    data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def wire(opcode: int, payload: bytes, compressed: bool) -> bytes:
    """One whole WebSocket message as written on the wire."""
    if compressed:
        body = deflate(payload)
        return ws_header(opcode, len(body), compressed=True) + body
    return ws_header(opcode, len(payload)) + payload


def status(code: int, message: str, kind: int) -> bytes:
    return b"|MSG|00|" + json.dumps({"code": code, "message": message, "type": kind}).encode()


def event(kind: str) -> bytes:
    return b"|DAT|02|" + json.dumps({"callback_info": {"type": kind, "data": {}}}).encode()


_speech: bytes | None = None


def speech() -> bytes:
    """About 20 s of speech-like PCM, made once."""
    global _speech
    if _speech is None:
        from avatarkit.emulator.media import synth_speech

        text = "今天天气真不错，我们一起去公园散步吧。" * 5
        _speech = synth_speech(text)
    return _speech


def audio_chunks(size: int, count: int) -> list[bytes]:
    pcm = speech()
    reps = -(-(size * count) // len(pcm)) + 1
    loop = pcm * reps
    return [loop[i * size : (i + 1) * size] for i in range(count)]


class FastMedia:
    """A fast stream's frames, pre-encoded once and grouped into ~1 MiB batches."""

    def __init__(self, video: int, audio: int, compressed: bool) -> None:
        rng = random.Random(f"{video}/{audio}")
        pairs = max(16, min(256, (16 * MIB) // (video + audio + 20)))
        chunks = audio_chunks(audio, pairs)
        self.frames: list[bytes] = []
        for i in range(pairs):
            self.frames.append(wire(OP_BINARY, b"|DAT|01|" + rng.randbytes(video), compressed))
            self.frames.append(wire(OP_BINARY, b"|DAT|00|" + chunks[i], compressed))
        # Batches of whole pairs, ~1 MiB each, cycling the pool until 8 MiB at least.
        self.batches: list[tuple[bytes, int]] = []
        total = i = 0
        while total < 8 * MIB or i < len(self.frames):
            parts: list[bytes] = []
            size = 0
            while size < BATCH_BYTES or len(parts) % 2:
                frame = self.frames[i % len(self.frames)]
                parts.append(frame)
                size += len(frame)
                i += 1
            self.batches.append((b"".join(parts), len(parts)))
            total += size

    def tail(self, count: int) -> bytes:
        return b"".join(self.frames[i % len(self.frames)] for i in range(count))


class RtMedia:
    """A real-time stream's frames: 1080p-sized H.264 (a keyframe per GOP) and 40 ms PCM."""

    def __init__(self, video: int, key: int, audio: int) -> None:
        rng = random.Random(f"rt/{video}/{key}/{audio}")
        sizes = [key] + [int(video * rng.uniform(0.6, 1.4)) for _ in range(GOP - 1)]
        # (prefix up to the timestamp, the rest): the payload's first 8 bytes are the time.
        self.video = [
            (ws_header(OP_BINARY, 8 + n) + b"|DAT|01|", rng.randbytes(n - 8)) for n in sizes
        ]
        self.audio = [
            (ws_header(OP_BINARY, 8 + audio) + b"|DAT|00|", chunk[8:])
            for chunk in audio_chunks(audio, GOP)
        ]
        self.bits_per_s = sum(sizes) * 8 / (GOP * TICK)


@dataclass
class Params:
    frames: int
    video: int
    audio: int
    key: int
    mode: str

    @classmethod
    def parse(cls, text: str, defaults: Params) -> Params:
        values: dict[str, Any] = dict(vars(defaults))
        for word in text.split():
            name, sep, value = word.partition("=")
            if sep and name in values:
                values[name] = value if name == "mode" else int(value)
        return cls(**values)


class Server:
    def __init__(self, defaults: Params) -> None:
        self.defaults = defaults
        self.loop = asyncio.get_running_loop()
        self._fast: dict[tuple[int, int, bool], FastMedia] = {}
        self._rt: dict[tuple[int, int, int], RtMedia] = {}
        self.connections = 0
        self.reset()

    def reset(self) -> None:
        self.frames_sent = 0
        self.bytes_sent = 0
        self.queued: list[list[int]] = []  # per fast stream, per batch
        self.rt_lags: list[float] = []
        self.rt_skipped = 0
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def fast_media(self, video: int, audio: int, compressed: bool) -> FastMedia:
        key = (video, audio, compressed)
        if key not in self._fast:
            self._fast[key] = FastMedia(video, audio, compressed)
        return self._fast[key]

    def rt_media(self, video: int, key: int, audio: int) -> RtMedia:
        k = (video, key, audio)
        if k not in self._rt:
            self._rt[k] = RtMedia(video, key, audio)
        return self._rt[k]

    def stats(self) -> dict[str, Any]:
        lags = sorted(self.rt_lags)

        def pct(q: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1e3, 2) if lags else None

        # The stream with the most batches; its first sample (an empty socket) left out.
        longest = max(self.queued, key=len, default=[])
        queued = sorted(longest[1:])
        return {
            "cpu_s": time.process_time(),
            "sys_s": resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            "cpu_since_reset_s": round(time.process_time() - self.cpu0, 4),
            "wall_since_reset_s": round(time.perf_counter() - self.wall0, 4),
            "frames": self.frames_sent,
            "bytes": self.bytes_sent,
            "connections": self.connections,
            "queued_samples": len(queued),
            "queued_min_bytes": queued[0] if queued else None,
            "queued_p10_bytes": queued[len(queued) // 10] if queued else None,
            "queued_median_bytes": int(statistics.median(queued)) if queued else None,
            "rt_ticks": len(lags),
            "rt_lag_p50_ms": pct(0.50),
            "rt_lag_p99_ms": pct(0.99),
            "rt_lag_max_ms": round(lags[-1] * 1e3, 2) if lags else None,
            "rt_skipped": self.rt_skipped,
        }


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def kernel_outq(transport: asyncio.Transport) -> int:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


class Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.ws = ServerProtocol(
            extensions=[
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5},
                )
            ],
            max_size=None,
        )
        self.transport: asyncio.Transport | None = None
        self.compressed = False
        self.task: asyncio.Task[None] | None = None
        self.rt: RtStream | None = None
        self._paused = False
        self._resumed: asyncio.Future[None] | None = None
        self._direct = False  # a batch is going out by direct_send: other writes wait
        self._held: list[bytes | None] = []  # (None: end of stream)
        self._wfd: int | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self.server.connections += 1

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for ev in ws.events_received():
            if isinstance(ev, Request):
                ws.send_response(ws.accept(ev))
                self.compressed = any(isinstance(e, PerMessageDeflate) for e in ws.extensions)
            elif isinstance(ev, Frame) and ev.opcode in (Opcode.TEXT, Opcode.BINARY):
                self.message(bytes(ev.data))
        self.flush()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections -= 1
        self.stop()
        if self._wfd is not None:  # after the cancelled batch has unregistered it
            self.server.loop.call_soon(os.close, self._wfd)
            self._wfd = None
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    # -- internals

    def flush(self) -> None:
        transport = self.transport
        assert transport is not None
        for data in self.ws.data_to_send():
            self.write(data or None)
        if self.ws.close_expected() and not transport.is_closing():
            self.stop()

    def write(self, data: bytes | None) -> None:
        """Everything the server sends but fast batches; None ends the stream."""
        transport = self.transport
        assert transport is not None
        if self._direct:
            self._held.append(data)  # after the batch on the wire: frames stay whole
        elif transport.is_closing():
            return
        elif data is not None:
            transport.write(data)
        elif transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    async def direct_send(self, batch: bytes) -> bool:
        """Write ``batch`` straight from its buffer to the socket (False: the client left).

        ``transport.write`` would copy what the socket does not take at once into
        the transport's buffer (twice, in 3.11); a fast stream always fills the
        socket, so that copy would be most of the server's CPU.
        """
        assert self.transport is not None
        loop = self.server.loop
        if self._wfd is None:  # a second descriptor: the transport owns the first one's events
            self._wfd = os.dup(self.transport.get_extra_info("socket").fileno())
        fd, view = self._wfd, memoryview(batch)
        self._direct = True
        try:
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    pass
                except OSError:
                    return False
                if view:
                    ready = loop.create_future()
                    loop.add_writer(fd, _resolve, ready)
                    try:
                        await ready
                    finally:
                        loop.remove_writer(fd)
            return True
        finally:
            self._direct = False
            held, self._held = self._held, []
            for data in held:
                self.write(data)

    def text(self, payload: bytes) -> None:
        self.write(wire(OP_TEXT, payload, self.compressed))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.rt is not None:
            self.rt.cancel()
            self.rt = None

    def message(self, data: bytes) -> None:
        header, payload = data[:8], data[8:]
        if header == b"|CTL|00|":
            self.text(status(1000, "ok", 0))
        elif header == b"|CTL|02|":
            params = Params.parse(payload.decode(errors="replace"), self.server.defaults)
            self.stop()
            self.text(status(1000, "ok", 2))
            self.text(event("voice_start"))
            if params.mode == "rt":
                media = self.server.rt_media(params.video, params.key, params.audio)
                self.rt = RtStream(self, media, params.frames)
            else:
                media_fast = self.server.fast_media(params.video, params.audio, self.compressed)
                self.task = self.server.loop.create_task(self.fast(media_fast, params.frames))
        elif header == b"|CTL|03|":
            self.stop()
            self.text(status(1000, "ok", 3))
            self.text(event("voice_end"))
        elif header == b"|CTL|01|":
            self.stop()
            self.text(status(1000, "ok", 1))
        elif header == STATS:
            if payload == b"reset":
                self.server.reset()
            self.text(b"|MSG|00|" + json.dumps(self.server.stats()).encode())

    async def fast(self, media: FastMedia, frames: int) -> None:
        assert self.transport is not None
        server = self.server
        remaining = frames
        i = 0
        queued: list[int] = []
        server.queued.append(queued)
        while remaining > 0:
            batch, count = media.batches[i % len(media.batches)]
            i += 1
            if count > remaining:
                batch, count = media.tail(remaining), remaining
            if self._paused:
                self._resumed = server.loop.create_future()
                await self._resumed
                if self.transport.is_closing():
                    return
            queued.append(self.transport.get_write_buffer_size() + kernel_outq(self.transport))
            if not await self.direct_send(batch):
                return
            server.frames_sent += count
            server.bytes_sent += len(batch)
            remaining -= count
        self.text(event("voice_end"))
        self.task = None


class RtStream:
    """One real-time stream: a timer per 40 ms tick, on a fixed schedule."""

    def __init__(self, conn: Connection, media: RtMedia, ticks: int) -> None:
        self.conn = conn
        self.media = media
        self.ticks = ticks
        self.k = 0
        self.gop0 = random.randrange(GOP)  # streams start anywhere in their GOP
        loop = conn.server.loop
        self.t0 = loop.time()
        self.handle: asyncio.TimerHandle | None = loop.call_at(self.t0, self.tick)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def tick(self) -> None:
        conn, server = self.conn, self.conn.server
        transport = conn.transport
        assert transport is not None
        due = self.t0 + self.k * TICK
        server.rt_lags.append(server.loop.time() - due)
        if transport.is_closing():
            self.handle = None
            return
        if transport.get_write_buffer_size() > RT_CAP:
            server.rt_skipped += 1
        else:
            j = (self.gop0 + self.k) % GOP
            stamp = struct.pack("<d", due)
            vp, vr = self.media.video[j]
            ap, ar = self.media.audio[j]
            if conn.compressed:  # not used by the benchmarks: compressed on the fly
                data = wire(OP_BINARY, vp[-8:] + stamp + vr, True)
                data += wire(OP_BINARY, ap[-8:] + stamp + ar, True)
            else:
                data = b"".join((vp, stamp, vr, ap, stamp, ar))
            transport.write(data)
            server.frames_sent += 2
            server.bytes_sent += len(data)
        self.k += 1
        if self.k >= self.ticks:
            self.handle = None
            conn.rt = None
            conn.text(event("voice_end"))
            return
        self.handle = server.loop.call_at(self.t0 + self.k * TICK, self.tick)


async def serve(args: argparse.Namespace) -> None:
    defaults = Params(
        frames=args.frames, video=args.video, audio=args.audio, key=args.key, mode="fast"
    )
    server = Server(defaults)
    speech()  # synthesised before the port is announced
    for spec in filter(None, args.prebuild.split(",")):
        video, audio = (int(x) for x in spec.split("/"))
        for compressed in (False, True):
            server.fast_media(video, audio, compressed)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: Connection(server), "127.0.0.1", args.port, backlog=4096
    )
    port = listener.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    done = loop.create_future()

    def stop() -> None:
        if not done.done():
            done.set_result(None)

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 65536):
            stop()

    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):  # run by a benchmark
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await done
    print("STATS " + json.dumps(server.stats()), flush=True)
    listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this core")
    parser.add_argument("--frames", type=int, default=2000, help="default media frames")
    parser.add_argument("--video", type=int, default=1280, help="default video frame bytes")
    parser.add_argument("--audio", type=int, default=1280, help="default audio chunk bytes")
    parser.add_argument("--key", type=int, default=120_000, help="real-time keyframe bytes")
    parser.add_argument(
        "--prebuild",
        default="",
        help="VIDEO/AUDIO byte pairs (comma-separated) whose fast-stream frames are "
        "encoded before the port is announced, plain and deflated",
    )
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
