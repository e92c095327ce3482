"""The websockets adapter (``tta/_ws.py``) and the router, over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from avatarkit import (
    AvatarSession,
    ConnectionLost,
    Endpoints,
    ProtocolError,
    RetryPolicy,
    events,
)
from avatarkit.tta import frames
from tests.hostile import dead_port

pytestmark = pytest.mark.anyio

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(after_chat: Handler) -> AsyncIterator[AvatarSession]:
    """A server that opens the session, then runs ``after_chat`` once a chat arrives."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(frames.server_status(1000, "ok", 0))
        await ws.recv()
        await after_chat(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=None) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/tta"
        async with AvatarSession(
            "appid", "token-ws", endpoints=Endpoints(tta=url), retry=RetryPolicy(attempts=1)
        ) as av:
            yield av


async def test_fragmented_messages_are_reassembled() -> None:
    payload = bytes(range(256)) * 100
    video = frames.server_video(payload)
    start = frames.server_event("voice_start", {"字": "幕"})

    async def send(ws: ServerConnection) -> None:
        await ws.send([start[:9], start[9:]])  # a text message in two fragments
        await ws.send([video[:1000], video[1000:5000], video[5000:]])
        await ws.send(frames.server_event("voice_end", {}))

    async with server(send) as av, av.tta.open(role="GuoXiaoyuan") as stream:
        got = await stream.say("你好").collect()
    assert got[0] == events.VoiceStart({"字": "幕"})
    assert isinstance(got[1], events.VideoChunk) and bytes(got[1].nal) == payload
    assert isinstance(got[2], events.VoiceEnd)


async def test_a_text_frame_that_is_not_utf8_is_a_protocol_error() -> None:
    async def send(ws: ServerConnection) -> None:
        await ws.send(b"|DAT|02|\xff\xfe", text=True)

    async with server(send) as av, av.tta.open(role="GuoXiaoyuan") as stream:
        with pytest.raises(ProtocolError, match="UTF-8"):
            await stream.say("你好").collect()


async def test_a_malformed_frame_fails_the_stream_with_a_protocol_error() -> None:
    async def send(ws: ServerConnection) -> None:
        await ws.send(b"|DA")

    async with server(send) as av, av.tta.open(role="GuoXiaoyuan") as stream:
        with pytest.raises(ProtocolError, match="header"):
            await stream.say("你好").collect()


async def test_deeply_nested_event_data_is_a_protocol_error_not_a_lost_connection() -> None:
    deep = "[" * 100_000 + "]" * 100_000

    async def send(ws: ServerConnection) -> None:
        await ws.send('|DAT|02|{"callback_info":{"type":"voice_start","data":' + deep + "}}")

    async with server(send) as av, av.tta.open(role="GuoXiaoyuan") as stream:
        with pytest.raises(ProtocolError):
            await stream.say("你好").collect()


async def test_media_payloads_are_read_only_views() -> None:
    async def send(ws: ServerConnection) -> None:
        await ws.send(frames.server_event("voice_start", {}))
        await ws.send(frames.server_audio(b"\x01\x02" * 8))
        await ws.send(frames.server_event("voice_end", {}))

    async with server(send) as av, av.tta.open(role="GuoXiaoyuan") as stream:
        got = [e async for e in stream.say("你好")]
    audio = next(e for e in got if isinstance(e, events.AudioChunk))
    assert audio.pcm.readonly and bytes(audio.pcm) == b"\x01\x02" * 8


# -- frames the reader leaves to websockets, over real sockets -------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (bytes([0x82, 0x85]) + b"mask" + b"hello", 1002),  # a server must not mask
        (bytes([0xC2, 0x03]) + b"abc", 1002),  # RSV1: compression was never negotiated
        (bytes([0x83, 0x00]), 1002),  # a reserved opcode
        (bytes([0x80, 0x01]) + b"x", 1002),  # a continuation with nothing to continue
    ],
)
async def test_an_irregular_frame_fails_the_stream_with_the_protocol_close_code(
    raw: bytes, code: int
) -> None:
    async def send(ws: ServerConnection) -> None:
        await ws.send(frames.server_event("voice_start", {}))
        ws.transport.write(raw)  # below websockets' own framing

    async with server(send) as av, av.tta.open(role="GuoXiaoyuan") as stream:
        utterance = stream.say("你好")
        assert isinstance(await anext(utterance), events.VoiceStart)
        with pytest.raises(ConnectionLost, match=f"broke the protocol \\(close code {code}"):
            await anext(utterance)


async def test_over_tls_frames_pings_and_the_close_all_work() -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    keyframe = bytes(range(256)) * 1000  # read straight into its own buffer
    small = [bytes([i]) * 1280 for i in range(50)]
    pongs: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(frames.server_status(1000, "ok", 0))
        await ws.recv()
        await ws.send(frames.server_event("voice_start", {}))
        pongs.append(await (await ws.ping(b"are you there")))  # answered by the client
        await ws.send(frames.server_video(keyframe))
        for chunk in small:
            await ws.send(frames.server_audio(chunk))
        await ws.send(frames.server_event("voice_end", {}))
        await ws.wait_closed()

    async with serve(
        handler, "127.0.0.1", 0, ssl=server_ctx, ping_interval=None, compression=None
    ) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        endpoints = Endpoints(tta=f"wss://127.0.0.1:{port}/tta")
        async with (
            AvatarSession("appid", "token-tls", endpoints=endpoints, ssl_context=client_ctx) as av,
            av.tta.open(role="GuoXiaoyuan") as stream,
        ):
            got = await stream.say("你好").collect()
        # An untrusted certificate is a typed error, not ssl's.
        async with AvatarSession(
            "appid", "token-tls", endpoints=endpoints, retry=RetryPolicy(attempts=1)
        ) as av:
            with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
                await av.tta.open(role="GuoXiaoyuan")
    assert len(pongs) == 1
    assert isinstance(got[1], events.VideoChunk) and got[1].nal == keyframe
    assert [bytes(e.pcm) for e in got if isinstance(e, events.AudioChunk)] == small
    assert isinstance(got[-1], events.VoiceEnd)


def test_ssl_context_must_be_an_ssl_context() -> None:
    from avatarkit import ValidationError

    with pytest.raises(ValidationError, match="ssl_context"):
        AvatarSession("appid", "token-ssl-check", ssl_context="yes")  # type: ignore[arg-type]


# -- opening against broken servers: only AvatarError subclasses come out ----


@asynccontextmanager
async def tcp_server(behaviour: str) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that resets, stalls, or answers garbage."""
    import socket
    import struct

    import anyio
    import anyio.abc

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            if behaviour == "reset":
                sock = client.extra(anyio.abc.SocketAttribute.raw_socket)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return  # closing with linger 0 sends RST
            if behaviour == "garbage":
                await client.receive()
                await client.send(b"\x00\xffnot http at all\r\n\r\n")
                return
            await anyio.sleep_forever()  # "stall": accepts, then says nothing

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            yield port
            tg.cancel_scope.cancel()


def _session(port: int) -> AvatarSession:
    from avatarkit import StreamLimits

    return AvatarSession(
        "appid",
        "token-broken",
        endpoints=Endpoints(tta=f"ws://127.0.0.1:{port}/tta"),
        retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001),
        stream_limits=StreamLimits(open_timeout=0.3),
    )


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("dead", "ConnectionLost"),
        ("reset", "ConnectionLost"),
        ("stall", "TimeoutError"),
        ("garbage", "ProtocolError"),
    ],
)
async def test_open_against_a_broken_server_raises_only_our_errors(
    behaviour: str, expected: str
) -> None:
    import avatarkit

    async def attempt(port: int) -> None:
        async with _session(port) as av:
            with pytest.raises(avatarkit.AvatarError) as caught:
                await av.tta.open(role="GuoXiaoyuan")
            assert type(caught.value).__name__ == expected, repr(caught.value)
            assert "token-broken" not in str(caught.value)

    if behaviour == "dead":
        await attempt(dead_port())
        return
    async with tcp_server(behaviour) as port:
        await attempt(port)
