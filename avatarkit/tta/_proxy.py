"""WebSocket streams through an HTTP proxy: the CONNECT tunnel, sans-I/O, and its I/O.

httpx handles proxies for the HTTP services; the TTA WebSocket opens its own
socket, so it tunnels with ``CONNECT host:port`` (RFC 9110 §9.3.6) and then
speaks TLS and WebSocket through the tunnel as if connected directly.
Without an explicit proxy the environment decides, as for httpx and
websockets: ``HTTPS_PROXY`` for ``wss://``, ``HTTP_PROXY`` for ``ws://``, and
``NO_PROXY``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import urllib.parse
from typing import TYPE_CHECKING, Final, NamedTuple

from avatarkit._redact import redact_url
from avatarkit.errors import AuthenticationError, ConnectionLost, ValidationError

if TYPE_CHECKING:
    import ssl

__all__ = [
    "Proxy",
    "WsOptions",
    "connect_request",
    "from_environment",
    "open_tunnel",
    "parse_proxy",
    "read_reply",
]

#: The longest CONNECT reply head accepted: a proxy's reply is a few lines.
MAX_REPLY: Final = 16 * 1024


class WsOptions(NamedTuple):
    """How a stream's socket is opened: the session's TLS, proxy and extra headers."""

    ssl_context: ssl.SSLContext | None = None
    proxy: Proxy | None = None  # None: the environment's, if any
    headers: tuple[tuple[str, str], ...] = ()


class Proxy(NamedTuple):
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, from the URL's user:password
    password: str | None  # kept only to be registered as a secret

    def __repr__(self) -> str:  # the credentials never show
        auth = ", authorization='***'" if self.authorization else ""
        return f"Proxy({self.host!r}, {self.port}{auth})"


def parse_proxy(url: str, field: str = "proxy") -> Proxy:
    """``http://[user:password@]host[:port]`` (port 80 by default)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError(field, redact_url(url), "is not a valid URL") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ValidationError(
            field, redact_url(url), "WebSocket streams tunnel through http://host:port proxies"
        )
    authorization = password = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {token}"
    return Proxy(parts.hostname, port or 80, authorization, password or None)


def from_environment(secure: bool, host: str) -> Proxy | None:
    """The environment's proxy for a ``wss://`` (``secure``) or ``ws://`` URL to ``host``."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # the usual case, without loading urllib.request (and http.client)
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    url = proxies.get("https" if secure else "http")
    if not url or urllib.request.proxy_bypass(host):
        return None
    return parse_proxy(url, field="HTTPS_PROXY" if secure else "HTTP_PROXY")


def connect_request(host: str, port: int, proxy: Proxy) -> bytes:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def read_reply(head: bytes, proxy: Proxy) -> None:
    """Check a complete reply head (up to the blank line): a 2xx opens the tunnel."""
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ConnectionLost(f"the proxy {proxy.host}:{proxy.port} sent {status_line[:80]!r}")
    status = int(parts[1])
    if not 200 <= status < 300:
        reason = parts[2] if len(parts) > 2 else ""
        message = f"the proxy {proxy.host}:{proxy.port} refused the tunnel: {status} {reason}"
        if status == 407:
            raise AuthenticationError(
                "proxy_auth", message, status=status, credential="the proxy URL's user:password"
            )
        raise ConnectionLost(message)


async def open_tunnel(proxy: Proxy, host: str, port: int) -> socket.socket:
    """A connected socket through which ``host:port`` is reached (the caller's to close)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
            break
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            error = exc
    else:
        raise error or OSError(f"no address for the proxy {proxy.host}")
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_sendall(sock, connect_request(host, port, proxy))
        head = bytearray()
        # Byte-exact: nothing past the blank line may be consumed (the tunnel's first
        # bytes are the server's), so read in small steps until it.
        while not head.endswith(b"\r\n\r\n"):
            chunk = await loop.sock_recv(sock, 1)
            if not chunk:
                raise ConnectionLost(f"the proxy {proxy.host}:{proxy.port} closed the tunnel")
            head += chunk
            if len(head) > MAX_REPLY:
                raise ConnectionLost(f"the proxy {proxy.host}:{proxy.port} sent an oversized reply")
        read_reply(bytes(head), proxy)
    except BaseException:
        sock.close()
        raise
    return sock
