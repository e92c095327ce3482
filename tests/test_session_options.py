"""Client options: timeouts as numbers or httpx.Timeout, with_options views, proxies, headers."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avatarkit import (
    AuthenticationError,
    AvatarSession,
    ConnectionLost,
    Endpoints,
    RetryPolicy,
    TimeoutError,
    ValidationError,
    events,
)
from avatarkit.emulator import Emulator
from avatarkit.tta._proxy import Proxy, connect_request, parse_proxy, read_reply
from tests.audio_helpers import sine_wav
from tests.conftest import FAST_RETRY, SMALL_VIDEO

pytestmark = pytest.mark.anyio


# -- a loopback HTTP proxy: CONNECT tunnels, and absolute-form requests ------------------


class LoopbackHttpProxy:
    """Records each request head it gets and what went through its tunnels."""

    def __init__(self, *, require: str | None = None) -> None:
        self.require = require  # the Proxy-Authorization it insists on (407 otherwise)
        self.heads: list[str] = []
        self.tunnelled = bytearray()  # client → server bytes inside CONNECT tunnels
        self.port = 0

    async def _head(self, client: anyio.abc.SocketStream) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await client.receive()
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            head, rest = await self._head(client)
            text = head.decode("latin-1")
            self.heads.append(text)
            method, target, _ = text.split("\r\n", 1)[0].split(" ", 2)
            if self.require is not None and f"Proxy-Authorization: {self.require}" not in text:
                await client.send(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = await anyio.connect_tcp(host.strip("[]"), int(port))
                await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = rest
            else:  # absolute-form: forwarded in origin-form, as proxies do (one request)
                url = urlsplit(target)
                upstream = await anyio.connect_tcp(url.hostname or "", url.port or 80)
                _, _, headers = head.partition(b"\r\n")
                origin = f"{method} {url.path or '/'}{'?' + url.query if url.query else ''}"
                first = f"{origin} HTTP/1.1".encode() + b"\r\n" + headers + b"\r\n\r\n" + rest
            async with upstream, anyio.create_task_group() as tg:
                tg.start_soon(self._pipe, client, upstream, first, method == "CONNECT")
                tg.start_soon(self._pipe, upstream, client, b"", False)

    async def _pipe(
        self,
        src: anyio.abc.ByteStream,
        dst: anyio.abc.ByteStream,
        first: bytes,
        record: bool,
    ) -> None:
        try:
            if first:
                await dst.send(first)
                if record:
                    self.tunnelled += first
            async for chunk in src:
                if record:
                    self.tunnelled += chunk
                await dst.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            await dst.aclose()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LoopbackHttpProxy]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._handle)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()


async def test_streams_and_http_calls_go_through_the_proxy(emulator: Emulator) -> None:
    auth = "Basic " + base64.b64encode(b"alice:pa:ss w0rd").decode()
    async with LoopbackHttpProxy(require=auth).running() as proxy:
        url = f"http://alice:pa%3Ass%20w0rd@127.0.0.1:{proxy.port}"
        async with emulator.session(
            retry=FAST_RETRY, proxy=url, ws_headers={"X-Trace-Id": "trace-42"}
        ) as av:
            assert "w0rd" not in repr(av)
            async with av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as stream:
                said = [event async for event in stream.say("你好")]
            converted = await av.voice.convert(sine_wav(), speaker="zh_female_qingxin")
    assert isinstance(said[-1], events.VoiceEnd) and converted.data
    connects = [h for h in proxy.heads if h.startswith("CONNECT ")]
    assert connects and connects[0].startswith(f"CONNECT 127.0.0.1:{emulator.port} HTTP/1.1")
    # the WebSocket handshake went through the tunnel, with the extra header
    assert b"GET /" in proxy.tunnelled and b"X-Trace-Id: trace-42\r\n" in proxy.tunnelled
    assert b"Resource-Id: volc.avatar.2d\r\n" in proxy.tunnelled
    # httpx sent the SAMI call to the same proxy (absolute-form, with the credentials)
    assert any(h.startswith("POST http://127.0.0.1:") for h in proxy.heads)


async def test_a_refused_proxy_login_is_an_authentication_error(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with LoopbackHttpProxy(require="Basic nobody").running() as proxy:
        url = f"http://alice:s3cret-pass@127.0.0.1:{proxy.port}"
        async with emulator.session(retry=FAST_RETRY, proxy=url) as av:
            with pytest.raises(AuthenticationError) as info:
                await av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO)
    assert "407" in str(info.value) and "user:password" in str(info.value)
    assert "s3cret-pass" not in str(info.value) and "s3cret-pass" not in caplog.text


async def test_the_environment_proxy_is_used_unless_no_proxy_says_otherwise(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LoopbackHttpProxy().running() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with emulator.session(retry=FAST_RETRY) as av:
            async with av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO):
                pass
            assert len(proxy.heads) == 1 and proxy.heads[0].startswith("CONNECT ")
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            async with av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO):
                pass
        assert len(proxy.heads) == 1  # bypassed


async def test_a_dead_proxy_names_itself() -> None:
    with anyio.fail_after(10):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()  # nothing listens there now
        av = AvatarSession(
            "appid",
            "token-dead-proxy",
            retry=RetryPolicy(attempts=1),
            proxy=f"http://127.0.0.1:{port}",
        )
        async with av:
            with pytest.raises(ConnectionLost, match=f"through 127.0.0.1:{port}"):
                await av.tta.open(role="GuoXiaoyuan")


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://proxy.example:3128", "http://host:port"),
        ("socks5://proxy.example:1080", "http://host:port"),
        ("http://:3128", "http://host:port"),
        ("http://proxy.example:99999", "not a valid URL"),
    ],
)
def test_proxy_urls_are_checked(url: str, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule) as info:
        AvatarSession("appid", "token-proxy-check", proxy=url)
    assert info.value.field == "proxy"


def test_a_proxy_password_never_shows() -> None:
    with pytest.raises(ValidationError) as info:
        AvatarSession("appid", "token-proxy-pw", proxy="https://bob:hunter2-pw@proxy:1")
    assert "hunter2-pw" not in str(info.value) and "bob:***@proxy" in str(info.value)
    assert "hunter2" not in repr(parse_proxy("http://bob:hunter2-pw@proxy:1"))


# -- the CONNECT exchange, sans-I/O ------------------------------------------------------


def test_connect_request_bytes() -> None:
    proxy = parse_proxy("http://u:p%40ss@proxy.example")
    assert proxy.port == 80
    assert connect_request("::1", 443, proxy) == (
        b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n"
        b"Proxy-Authorization: Basic " + base64.b64encode(b"u:p@ss") + b"\r\n\r\n"
    )
    assert connect_request("h", 80, Proxy("p", 1, None, None)) == (
        b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n"
    )


@given(st.integers(min_value=100, max_value=599))
def test_only_a_2xx_reply_opens_the_tunnel(status: int) -> None:
    proxy = Proxy("p", 1, None, None)
    head = f"HTTP/1.1 {status} Whatever\r\nVia: x\r\n\r\n".encode()
    if 200 <= status < 300:
        read_reply(head, proxy)
    elif status == 407:
        with pytest.raises(AuthenticationError, match="407"):
            read_reply(head, proxy)
    else:
        with pytest.raises(ConnectionLost, match=f"refused the tunnel: {status}"):
            read_reply(head, proxy)


@pytest.mark.parametrize("head", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b"\r\n\r\n"])
def test_a_reply_that_is_not_http_is_refused(head: bytes) -> None:
    with pytest.raises(ConnectionLost, match="the proxy p:1 sent"):
        read_reply(head, Proxy("p", 1, None, None))


# -- timeouts and with_options --------------------------------------------------------------


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, list[int]]]:
    """Accepts connections and never answers; counts them."""
    accepted: list[int] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def hold(stream: anyio.abc.SocketStream) -> None:
        accepted.append(1)
        async with stream:
            await anyio.sleep_forever()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hold)
        try:
            yield port, accepted
        finally:
            tg.cancel_scope.cancel()


async def test_a_view_with_its_own_timeout_and_retry(emulator: Emulator) -> None:
    async with silent_server() as (port, accepted):
        endpoints = Endpoints(
            tta=emulator.endpoints.tta,
            digime=emulator.endpoints.digime,
            sami=f"http://127.0.0.1:{port}/api/v1/invoke",
        )
        async with AvatarSession(
            emulator.appid, emulator.token, endpoints=endpoints, retry=FAST_RETRY, timeout=60
        ) as av:
            quick = av.with_options(
                timeout=httpx.Timeout(0.3), retry=RetryPolicy(attempts=1, total_timeout=5)
            )
            assert quick.retry.attempts == 1 and av.retry is FAST_RETRY
            with anyio.fail_after(20):  # the view's 0.3 s, not the session's 60 s
                with pytest.raises(TimeoutError):
                    await quick.voice.convert(sine_wav(), speaker="zh_female_qingxin")
            assert len(accepted) == 1  # one attempt: the view's policy
            assert quick.http is not av.http  # its own timeout, over the session's pool
            # the view shares the session: streams it opens belong to it
            stream = await quick.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO)
        assert stream.closed and "state='closed'" in repr(quick)


async def test_with_options_keeps_what_it_is_not_given(emulator: Emulator) -> None:
    async with emulator.session(retry=FAST_RETRY, timeout=httpx.Timeout(5.0, connect=2.0)) as av:
        view = av.with_options()
        assert view.http is av.http  # the same timeout: the same client
        assert view.retry is av.retry and view.upload_retry is av.upload_retry
        response = await av.http.get(emulator.http_url + "/")
        assert response.request.extensions["timeout"]["connect"] == 2.0


@pytest.mark.parametrize(
    ("options", "field", "rule"),
    [
        ({"timeout": 0}, "timeout", "> 0"),
        ({"timeout": "30"}, "timeout", "httpx.Timeout"),
        ({"timeout": True}, "timeout", "httpx.Timeout"),
        ({"retry": 3}, "retry", "RetryPolicy"),
        ({"upload_retry": {}}, "upload_retry", "RetryPolicy"),
        ({"stream_limits": {}}, "stream_limits", "StreamLimits"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], field: str, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule) as info:
        AvatarSession("appid", "token-options", **options)  # type: ignore[arg-type]
    assert info.value.field == field
    session = AvatarSession("appid", "token-options")
    with pytest.raises(ValidationError, match=rule) as info:
        session.with_options(**options)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        ({"Resource-Id": "x"}, "set by the SDK"),
        ({"Sec-WebSocket-Key": "x"}, "set by the SDK"),
        ({"X-A": "one\r\nInjected: yes"}, "one-line value"),
        ({"": "x"}, "non-empty name"),
        ({"X-A": 1}, "must be strings"),
    ],
)
def test_ws_headers_are_checked(headers: dict[str, object], rule: str) -> None:
    with pytest.raises(ValidationError, match=rule) as info:
        AvatarSession("appid", "token-headers", ws_headers=headers)  # type: ignore[dict-item]
    assert (info.value.field or "").startswith("ws_headers[")
    assert "Injected" not in str(info.value)  # values (maybe keys) never shown
