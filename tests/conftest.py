"""Shared fixtures: the emulator in-process and in a subprocess, on loopback only."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from avatarkit import AvatarSession, Endpoints, RetryPolicy
from avatarkit.emulator import Emulator
from avatarkit.emulator.process import spawn_emulator

# Fast retries: the backoff itself is not what these tests measure.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, total_timeout=10)
SMALL_VIDEO = {"video_width": 256, "video_height": 256}


@pytest.fixture
def anyio_backend() -> str | tuple[str, dict[str, bool]]:
    # AVATARKIT_TEST_LOOP=uvloop runs every async test on uvloop (the [speed] extra).
    if os.environ.get("AVATARKIT_TEST_LOOP") == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return "asyncio"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as emu:
        yield emu


def session_for(emu: Emulator, **kwargs: object) -> AvatarSession:
    kwargs.setdefault("retry", FAST_RETRY)
    return emu.session(**kwargs)  # type: ignore[arg-type]


# The emulator in a child process, so that every task and socket in this
# process belongs to the SDK under test.
emulator_process = spawn_emulator


def open_sockets() -> int:
    """How many socket file descriptors this process holds."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


class LoopbackProxy:
    """A TCP proxy on 127.0.0.1 between the SDK and a server, for network faults.

    ``cut()`` drops every connection at once (a real mid-stream TCP loss);
    ``freeze()`` stops forwarding but keeps the sockets open (a silent peer).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._cut = anyio.Event()
        self._frozen = anyio.Event()

    def cut(self) -> None:
        self._cut.set()

    def freeze(self) -> None:
        self._frozen.set()

    async def _pipe(self, src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
        try:
            async for chunk in src:
                if self._frozen.is_set():
                    await self._cut.wait()  # hold the data: the peer hears nothing
                await dst.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        upstream = await anyio.connect_tcp("127.0.0.1", self.upstream_port)
        async with client, upstream, anyio.create_task_group() as tg:
            tg.start_soon(self._pipe, client, upstream)
            tg.start_soon(self._pipe, upstream, client)
            await self._cut.wait()
            tg.cancel_scope.cancel()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LoopbackProxy]:
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, self._handle)
                try:
                    yield self
                finally:
                    self._cut.set()
                    tg.cancel_scope.cancel()

    def endpoints(self) -> Endpoints:
        return Endpoints(tta=f"ws://127.0.0.1:{self.port}/api/v1/volc_virtual_human/tta")


def _training_clip(width: int = 1920, height: int = 1080, frames: int = 2) -> bytes:
    """An mp4 at 1 fps (libx264 ultrafast): the cheapest valid training video (doc 000)."""
    import io

    from avatarkit.emulator.media import still_clip

    buffer = io.BytesIO()
    still_clip(buffer, frames, width=width, height=height)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def training_clip() -> bytes:
    """A valid 1080p mp4 training video (passes the emulator's training review)."""
    return _training_clip()


@pytest.fixture(scope="session")
def small_clip() -> bytes:
    """A 1280x720 mp4: readable, but not 1080p/4K (fails the training review)."""
    return _training_clip(1280, 720)


@pytest.fixture(scope="session")
def voice_tar() -> bytes:
    """A voice-clone archive as doc 000 asks: WAV files in one folder, tarred."""
    import io
    import tarfile

    from tests.audio_helpers import sine_wav

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i in range(2):
            data = sine_wav(seconds=0.5, hz=200.0 + 50 * i)
            info = tarfile.TarInfo(f"voice/{i}.wav")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def long_training_clip() -> bytes:
    """A 1080p mp4 of 3 minutes at 1 fps: passes MetaStudio's review too (doc 003: 3–10 min)."""
    return _training_clip(frames=181)
