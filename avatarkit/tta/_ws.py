"""The WebSocket adapter: websockets' sans-I/O ``ClientProtocol`` on an asyncio transport.

This is websockets' documented integration path (its own asyncio client is
built the same way), so only its public API is used: ``ClientProtocol``,
``receive_data``/``events_received``/``data_to_send``, ``send_*`` and
``handshake_exc``.  Driving the protocol ourselves gives the stream what the
connection API hides:

* whole messages are handed to a :class:`FrameSink` from the read callback,
  with no task and no queue in between, split out of a reusable read buffer
  by :mod:`~avatarkit.tta._wsread` (websockets' protocol still handles the
  handshake, control frames, every irregular frame, and everything sent);
* the sink can pause and resume reading (backpressure from the event queue);
* keepalive pings whose deadline is suspended while reading is paused (a pong
  cannot be read then), so a slow consumer is never mistaken for a dead peer;
* every way the connection can end becomes one :class:`~avatarkit.AvatarError`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from typing import Final, NamedTuple, Protocol, cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from avatarkit._redact import protected_logger, redact_url
from avatarkit.errors import (
    AuthenticationError,
    AvatarError,
    ConnectionLost,
    ProtocolError,
    ServiceError,
    TimeoutError,
    ValidationError,
)
from avatarkit.tta._proxy import Proxy, from_environment, open_tunnel
from avatarkit.tta._wsread import FrameReader

__all__ = ["FrameSink", "Keepalive", "WsConnection", "connect"]

log = protected_logger(__name__)

_ssl_context: ssl.SSLContext | None = None
_Data = bytes | bytearray | memoryview


def _default_ssl() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:  # loading the CA bundle costs milliseconds: once per process
        _ssl_context = ssl.create_default_context()
    return _ssl_context


class FrameSink(Protocol):
    """Receives a connection's messages, in order, from the protocol callback."""

    def message(self, data: _Data, text: bool) -> None:
        """One whole message: a fresh buffer of its own (websockets makes one per frame)."""

    def lost(self, error: AvatarError | None) -> None:
        """The connection ended; ``error`` is None after a clean close handshake."""


class Keepalive(NamedTuple):
    """Ping every ``interval`` s; a pong missing ``timeout`` s later ends the connection
    (None disables either).  Checked by :class:`~avatarkit.tta.limits.StreamLimits`."""

    interval: float | None
    timeout: float | None


class WsConnection(asyncio.BufferedProtocol):
    """One client WebSocket.  Made by :func:`connect`; not for direct use."""

    def __init__(
        self,
        ws: ClientProtocol,
        *,
        keepalive: Keepalive,
        close_timeout: float,
        what: str,
        max_size: int,
    ) -> None:
        self._ws = ws
        self._max_size = max_size
        self._keepalive = keepalive
        self._close_timeout = close_timeout
        self._what = what  # the redacted URL, for messages
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._sink: FrameSink | None = None
        self._early: list[tuple[_Data, bool]] = []  # before a sink is attached
        self._reader = FrameReader(self, self._deliver, max_size=max_size)
        self._fragments: list[_Data] = []
        self._fragment_text = False
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._error: AvatarError | None = None  # why it ended, once known
        self._closing = False  # we asked for the close
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None  # the ping awaiting its pong
        self._close_timer: asyncio.TimerHandle | None = None

    # -- the stream's side ---------------------------------------------

    @property
    def open(self) -> bool:
        return self._ws.state is State.OPEN

    @property
    def error(self) -> AvatarError | None:
        return self._error

    def attach(self, sink: FrameSink) -> None:
        """Deliver messages (and the end) to ``sink``; those already parsed first."""
        self._sink = sink
        self._reader.on_message = sink.message  # the hot path: reader to router, no hop
        early, self._early = self._early, []
        for data, text in early:
            sink.message(data, text)
        if self._closed.done():
            sink.lost(self._error)

    def pause_reading(self) -> None:
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
            if self._pong_timer is not None:  # no pong can be read while paused
                self._pong_timer.cancel()
                self._pong_timer = None

    def resume_reading(self) -> None:
        if self.transport is not None and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
            if self._ping_payload is not None and self._keepalive.timeout is not None:
                self._pong_timer = self._loop.call_later(self._keepalive.timeout, self._no_pong)

    async def send(self, message: str | bytes) -> None:
        """Send one message; waits while the socket's write buffer is full."""
        if self._ws.state is not State.OPEN:
            raise self._error or ConnectionLost(f"the connection to {self._what} is closed")
        if isinstance(message, str):
            self._ws.send_text(message.encode())
        else:
            self._ws.send_binary(message)
        self._flush()
        if self._writing_paused:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                self._drain_waiters.remove(waiter)

    async def close(self) -> None:
        """The close handshake, bounded by ``close_timeout``; then the socket is gone."""
        self._closing = True
        if self.transport is None:
            return  # never connected
        if self._ws.state is State.OPEN:
            self._ws.send_close(1000)
            self._flush()
        if self._closed.done():
            return
        self._arm_close_timer()
        await asyncio.shield(self._closed)

    def abort(self, error: AvatarError | None = None) -> None:
        """Drop the connection now (``error`` says why)."""
        if error is not None and self._error is None:
            self._error = error
        self._reader.halted = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._reader.filled(nbytes)

    # -- what the frame reader leaves to websockets (FrameHandler) ---------

    def control(self, frame: bytes) -> bool:
        """Feed websockets' protocol; True while frames may follow (the connection is open)."""
        self.passthrough(frame)
        return self._ws.state is State.OPEN

    head = control  # the response head: open once the protocol accepted it

    def passthrough(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        events = ws.events_received()
        self._flush()  # pongs and close replies the protocol wrote
        for event in events:
            if type(event) is Frame:
                self._frame(event)
            else:  # the handshake response
                self._handshake_done()
        if ws.close_expected():
            self._arm_close_timer()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        ws = self._ws
        ws.receive_eof()  # idempotent: the state is CLOSED from here
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        if self._error is None:
            self._error = self._why_lost(exc)
        if not self._handshake.done():
            self._handshake.set_result(None)  # the opener reads the reason from `error`
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._closed.set_result(None)
        if self._sink is not None:
            self._sink.lost(self._error)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- internals -------------------------------------------------------

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self._ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._deliver(frame.data, opcode is Opcode.TEXT)
                return
            self._fragment_text = opcode is Opcode.TEXT
            self._fragments = [frame.data]
        elif opcode is Opcode.CONT:  # websockets bounds a whole message by max_size
            self._fragments.append(frame.data)
            if frame.fin:
                data, self._fragments = bytearray().join(self._fragments), []
                self._deliver(data, self._fragment_text)
        elif opcode is Opcode.PONG and frame.data == self._ping_payload:
            self._ping_payload = None
            if self._pong_timer is not None:
                self._pong_timer.cancel()
                self._pong_timer = None

    def _deliver(self, data: _Data, text: bool) -> None:
        if self._sink is not None:
            self._sink.message(data, text)
        else:
            self._early.append((data, text))

    def _handshake_done(self) -> None:
        if self._handshake.done():
            return
        self._handshake.set_result(None)
        if self._ws.handshake_exc is None and self._keepalive.interval is not None:
            self._ping_timer = self._loop.call_later(self._keepalive.interval, self._ping)

    def _ping(self) -> None:
        interval = self._keepalive.interval
        assert interval is not None
        if self._ws.state is not State.OPEN:
            return
        if self._ping_payload is None:  # one ping at a time: its pong is still due otherwise
            self._ping_payload = os.urandom(4)
            self._ws.send_ping(self._ping_payload)
            self._flush()
            if self._keepalive.timeout is not None and not self._reading_paused:
                self._pong_timer = self._loop.call_later(self._keepalive.timeout, self._no_pong)
        self._ping_timer = self._loop.call_later(interval, self._ping)

    def _no_pong(self) -> None:
        self._pong_timer = None
        self.abort(
            ConnectionLost(
                f"{self._what} did not answer a keepalive ping within "
                f"{self._keepalive.timeout}s (ping_timeout): the peer is gone or not reading"
            )
        )

    def _arm_close_timer(self) -> None:
        if self._close_timer is None and not self._closed.done():
            self._close_timer = self._loop.call_later(self._close_timeout, self._close_expired)

    def _close_expired(self) -> None:
        # The close handshake did not finish in time: drop the socket.  Whether
        # that was an error is decided from the close frames seen (_why_lost).
        self._close_timer = None
        self.abort()

    def _why_lost(self, exc: Exception | None) -> AvatarError | None:
        # Read from the close frames (public attributes of the sans-I/O protocol).
        received, sent = self._ws.close_rcvd, self._ws.close_sent
        if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
            return ProtocolError(
                f"the service sent a message larger than max_frame_bytes={self._max_size}; "
                "raise it in tta.open()"
            )
        if received is not None and sent is not None and received.code in _CLEAN:
            return None  # a clean close handshake: the stream decides what it means
        if received is not None:
            reason = f"closed by the service with code {received.code} {received.reason!r}"
        elif sent is not None and sent.code not in _CLEAN:
            reason = f"the service broke the protocol (close code {sent.code}: {sent.reason})"
        elif exc is not None:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = "the TCP connection closed without a close frame"
        return ConnectionLost(f"connection to {self._what} lost: {reason}")


_CLEAN: Final = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)
_OPEN_ERRORS: Final = (OSError, asyncio.TimeoutError, InvalidHandshake)


async def connect(
    url: str,
    *,
    headers: Mapping[str, str],
    max_size: int,
    open_timeout: float,
    close_timeout: float,
    keepalive: Keepalive,
    ssl_context: ssl.SSLContext | None = None,
    proxy: Proxy | None = None,
) -> WsConnection:
    """Open a client WebSocket, handshake included, within ``open_timeout``.

    Through ``proxy`` (a CONNECT tunnel) when given, else as the environment's
    ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` say.

    Refusals map to :class:`AuthenticationError` (401/403), :class:`ServiceError`
    (other statuses; 5xx retryable) or :class:`ConnectionLost`.
    """
    what = redact_url(url)
    try:
        uri = parse_uri(url)
    except InvalidURI:
        raise ValidationError("tta_url", what, "must be a ws:// or wss:// URL") from None
    ws = ClientProtocol(uri, max_size=max_size, logger=log)
    conn = WsConnection(
        ws, keepalive=keepalive, close_timeout=close_timeout, what=what, max_size=max_size
    )
    loop = asyncio.get_running_loop()
    if proxy is None:
        proxy = from_environment(uri.secure, uri.host)
    tls = (ssl_context or _default_ssl()) if uri.secure else None
    try:
        async with asyncio.timeout(open_timeout):
            if proxy is None:
                await loop.create_connection(
                    lambda: conn,
                    uri.host,
                    uri.port,
                    ssl=tls,
                    server_hostname=uri.host if uri.secure else None,
                )
            else:
                tunnel = await open_tunnel(proxy, uri.host, uri.port)
                try:
                    await loop.create_connection(
                        lambda: conn,
                        sock=tunnel,
                        ssl=tls,
                        server_hostname=uri.host if uri.secure else None,
                    )
                except BaseException:
                    tunnel.close()
                    raise
            request = ws.connect()
            for name, value in headers.items():
                request.headers[name] = value
            ws.send_request(request)
            conn._flush()
            await asyncio.shield(conn._handshake)
    except _OPEN_ERRORS as exc:
        conn.abort()
        if isinstance(exc, asyncio.TimeoutError):
            raise TimeoutError(
                f"could not open {what} within {open_timeout}s (open_timeout)"
            ) from None
        via = f" through {proxy.host}:{proxy.port}" if proxy is not None else ""
        raise ConnectionLost(
            f"could not connect to {what}{via}: {type(exc).__name__}: {exc}"
        ) from None
    except BaseException:
        conn.abort()
        raise
    failure = ws.handshake_exc
    if failure is None and not conn.open:
        conn.abort()
        raise conn.error or ConnectionLost(f"{what} closed the connection during the handshake")
    if isinstance(failure, InvalidStatus):
        conn.abort()
        status = failure.response.status_code
        body = failure.response.body
        text = body.decode(errors="replace")[:200] if body else ""
        message = text or "WebSocket handshake rejected"
        if status in (401, 403):
            raise AuthenticationError(
                "handshake_rejected",
                message,
                status=status,
                credential="appid/token (AVATARKIT_APPID / AVATARKIT_TOKEN)",
            )
        raise ServiceError("handshake_rejected", message, status=status, retryable=status >= 500)
    if failure is not None:
        conn.abort()
        if isinstance(failure.__cause__, EOFError):  # closed or reset before a response
            raise ConnectionLost(f"{what} closed the connection during the handshake")
        raise ProtocolError(f"bad WebSocket handshake from {what}: {failure}")
    return conn
