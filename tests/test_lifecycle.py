"""Opened in one task, closed in another: what Jupyter does with every cell.

ipykernel runs each cell as its own task.  Each ``cell(...)`` below runs its
step in a task of its own, so a cancel scope held from one step to the next
would fail exactly as it does in a notebook.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio
import pytest

from avatarkit import AvatarError, ConvertedAudio, ProducedVideo, events
from avatarkit._display import EMBED_LIMIT
from avatarkit.emulator import Emulator
from tests.audio_helpers import tone
from tests.conftest import FAST_RETRY, SMALL_VIDEO

pytestmark = pytest.mark.anyio

T = TypeVar("T")


async def cell(step: Callable[[], Awaitable[T]]) -> T:
    """Run ``step`` in a task of its own, as Jupyter runs a cell, and return its result."""
    result: list[T] = []

    async def run() -> None:
        result.append(await step())

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
    return result[0]


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_a_session_and_its_streams_live_across_cells() -> None:
    before = asyncio.all_tasks()
    emu = await cell(lambda: _await(Emulator()))
    port = emu.port
    av = await cell(lambda: _await(emu.session(retry=FAST_RETRY)))
    assert "state='open'" in repr(av)
    stream = await cell(
        lambda: _await(av.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO))
    )

    async def speak() -> list[events.Event]:
        return [event async for event in stream.say("你好！")]

    said = await cell(speak)
    assert isinstance(said[-1], events.VoiceEnd)
    video = await cell(stream.finish)
    assert video.data and video.data[4:8] == b"ftyp"

    # Audio sent from the session's own task group, whose source never ends:
    # closing the session (in another cell) must stop it.
    gate = anyio.Event()
    source_closed = anyio.Event()
    audio = await cell(
        lambda: _await(av.tta.open(role="GuoXiaoyuan", input_mode="audio", video=SMALL_VIDEO))
    )

    async def microphone() -> AsyncIterator[bytes]:
        try:
            yield tone(1.5, 16000, 1)  # one whole 1-second frame goes out
            await gate.wait()  # never set: a live microphone
            yield b""
        finally:
            source_closed.set()

    drive = audio.drive_audio(microphone())

    async def first_event() -> events.Event:
        return await drive.__anext__()  # starts the sending task in the session's group

    assert isinstance(await cell(first_event), events.VoiceStart)
    await cell(av.aclose)
    assert source_closed.is_set()  # the sending task was cancelled, and waited for
    assert stream.closed and audio.closed
    assert "state='closed'" in repr(av)

    await cell(emu.aclose)
    assert refused(port)
    assert asyncio.all_tasks() <= before  # no host, sender or server task left behind


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def test_await_opens_session_and_emulator() -> None:
    # ``x = await X()`` is the notebook spelling of ``async with X() as x``.
    emu = await Emulator()
    try:
        av = await emu.session(retry=FAST_RETRY)
        try:
            async with av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as stream:
                assert not stream.closed
        finally:
            await av.aclose()
        with pytest.raises(AvatarError, match="session is closed, not open"):
            await av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO)
    finally:
        await emu.aclose()
    with pytest.raises(AvatarError, match="not running"):
        _ = emu.port


async def test_closing_survives_a_cancelled_caller(emulator: Emulator) -> None:
    av = await emulator.session(retry=FAST_RETRY)
    stream = await av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO)
    with anyio.CancelScope() as scope:
        scope.cancel()  # the caller is cancelled before it even starts closing
        await av.aclose()
    assert stream.closed and "state='closed'" in repr(av)


async def test_lifecycle_misuse_is_refused_clearly(emulator: Emulator) -> None:
    av = emulator.session()
    with pytest.raises(AvatarError, match=r"session is new, not open.*await AvatarSession"):
        _ = av.http
    await av.aclose()  # closing a session never opened is harmless
    with pytest.raises(AvatarError, match="can be opened once"):
        await av.open()

    twice = await emulator.session()
    with pytest.raises(AvatarError, match="can be opened once"):
        await twice.open()
    await twice.aclose()
    await twice.aclose()  # idempotent

    emu = Emulator()
    await emu.aclose()  # never started: nothing to stop
    with pytest.raises(AvatarError, match="can be started once"):
        await emu.open()


async def test_an_emulator_that_cannot_bind_leaves_nothing_running(emulator: Emulator) -> None:
    clash = Emulator(port=emulator.port)
    with pytest.raises(OSError, match="in use"):
        await clash.open()
    await clash.aclose()
    assert emulator.port  # the first one still serves


# -- rich display ---------------------------------------------------------------------


def embedded(bundle: dict[str, str], tag: str, mime: str) -> bytes:
    found = re.fullmatch(
        rf'<{tag} controls src="data:{re.escape(mime)};base64,([A-Za-z0-9+/=]*)"></{tag}>',
        bundle["text/html"],
    )
    assert found is not None, bundle["text/html"][:200]
    return base64.b64decode(found.group(1))


@pytest.mark.parametrize(
    ("codec", "mime"), [("mp4", "video/mp4"), ("mov", "video/mp4"), ("webm", "video/webm")]
)
def test_a_produced_video_shows_as_an_inline_player(codec: str, mime: str) -> None:
    data = bytes(range(256)) * 40
    video = ProducedVideo(data=data, url=None, codec=codec)
    bundle = video._repr_mimebundle_()
    assert embedded(bundle, "video", mime) == data
    assert bundle["text/plain"] == repr(video)


def test_a_video_known_only_by_url_is_not_put_in_the_page() -> None:
    url = "https://cdn.example/v.mp4?X-Amz-Signature=s3cr3t&Expires=1"
    video = ProducedVideo(data=None, url=url, codec="mp4")
    html = video._repr_mimebundle_()["text/html"]
    assert "s3cr3t" not in html and "<video" not in html
    assert "await video.read()" in html


def test_media_past_the_embed_limit_is_described_not_embedded() -> None:
    big = ProducedVideo(data=b"\0" * (EMBED_LIMIT + 1), url=None, codec="mp4")
    html = big._repr_mimebundle_()["text/html"]
    assert "too large to embed" in html and "base64" not in html


@pytest.mark.parametrize(
    ("fmt", "mime"), [("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("aac", "audio/aac")]
)
def test_converted_audio_shows_as_an_audio_player(fmt: str, mime: str) -> None:
    audio = ConvertedAudio(data=b"RIFF-ish", format=fmt, sample_rate=24000, channel=1, task_id="t")
    assert embedded(audio._repr_mimebundle_(), "audio", mime) == b"RIFF-ish"
