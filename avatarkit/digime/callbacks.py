"""Receiving training callbacks: a small pure-ASGI app (SPEC §1.2).

When training ends the service POSTs ``{"conf_name", "role_pic", "pre_pic",
"state"}`` (state 2 success, 3 failure) to the ``callback_url`` given to
``/init_train_digime``.  :class:`CallbackReceiver` accepts those POSTs and
hands them to the program::

    receiver = CallbackReceiver(secret=os.environ["CALLBACK_SECRET"])
    app.mount("/avatarkit/callback", receiver)          # Starlette / FastAPI
    url = receiver.callback_url("https://example.com/avatarkit/callback")
    ...                                                  # start training with `url`
    done = await receiver.wait_for(conf_name)

It needs no web framework: ``uvicorn module:receiver`` serves it alone.
Behind another server, :func:`parse_callback_body` reads a body on its own.

The service can only be given a URL (it sends no header of ours), so the
shared secret travels in its query string.  This module never logs URLs,
but a server's access log does; :attr:`CallbackReceiver.log_filter` masks
the secret there::

    logging.getLogger("uvicorn.access").addFilter(receiver.log_filter)
"""

from __future__ import annotations

import hmac
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import msgspec

from avatarkit._redact import SecretFilter, protected_logger, redact_url, register_secret, scrub
from avatarkit._schema_errors import JSON_DECODE_ERRORS, decode_failure, reportable
from avatarkit.digime._wire import TrainingCallback, TrainingState
from avatarkit.errors import ProtocolError, StreamClosed, ValidationError

__all__ = ["BadCallbackBody", "CallbackReceiver", "parse_callback_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_log = protected_logger(__name__)

# Strict: a state of "2" or a numeric conf_name is the sender's bug, not ours to guess at.
_decoder: Final = msgspec.json.Decoder(TrainingCallback, strict=True)
_any_json: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()

_DONE_STATES: Final = frozenset({TrainingState.SUCCESS, TrainingState.FAILED})
_LATEST_LIMIT: Final = 1024  # conf_names remembered for wait_for()/latest()
_LOG_FILTER: Final = SecretFilter()  # stateless: one serves every receiver
_MIN_SECRET: Final = 8  # shorter secrets are guessable and too short to scrub
_SECRET_HEADER: Final = b"x-avatarkit-secret"
_OK_BODY: Final = _encoder.encode({"errno": 0, "errMsg": "success"})


class _Rejected(Exception):
    """A request the receiver answers with an error status."""

    def __init__(self, status: int, reason: str, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


def _reject(status: int, reason: str, *headers: tuple[bytes, bytes]) -> _Rejected:
    return _Rejected(status, reason, list(headers))


class BadCallbackBody(ProtocolError):
    """A callback body that is not JSON (``status`` 400) or not a training callback (422)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)  # no excerpt: role_pic/pre_pic may be presigned URLs
        self.status = status
        """The HTTP status to answer the sender with: 400 (not JSON) or 422 (JSON, but not
        a training callback)."""


def parse_callback_body(body: bytes | bytearray | memoryview) -> TrainingCallback:
    """The training callback in a POSTed body; :class:`BadCallbackBody` if it is not one.

    Pure: the receiver's HTTP side answers ``status`` with the error's reason.  Strict:
    ``conf_name`` must be a non-empty string and ``state`` the number 2 (success) or 3
    (failure); ``role_pic`` and ``pre_pic`` may be missing or ``null``.

    Raises:
        ValidationError: ``body`` is not ``bytes``, ``bytearray`` or ``memoryview``.
        BadCallbackBody: the body is not JSON (``status`` 400), or not a training
            callback: a field missing or of the wrong type, an empty ``conf_name``, a
            ``state`` other than 2 or 3 (``status`` 422).
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ValidationError("body", reportable(body), "must be bytes")
    try:
        callback = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        # A syntax error after a type error shows up as the type error: tell them apart.
        try:
            _any_json.decode(body)
        except JSON_DECODE_ERRORS as syntax:
            raise BadCallbackBody(400, f"malformed JSON: {decode_failure(syntax)}") from None
        raise BadCallbackBody(422, f"not a training callback: {exc}") from None
    except JSON_DECODE_ERRORS as exc:
        raise BadCallbackBody(400, f"malformed JSON: {decode_failure(exc)}") from None
    if not callback.conf_name:
        raise BadCallbackBody(422, "not a training callback: conf_name is empty")
    if callback.state not in _DONE_STATES:
        raise BadCallbackBody(
            422,
            f"not a training callback: state must be 2 (success) or 3 (failure), "
            f"got {int(callback.state)}",
        )
    return callback


class _Waiter:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: TrainingCallback | None = None


class _Mailbox:
    """Bounded FIFO with any number of consumers; the producer never waits.

    (:class:`avatarkit._queue.EventQueue` serves one consumer only, and users
    may iterate the receiver from several tasks.)
    """

    __slots__ = ("_closed", "_items", "_not_empty", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: deque[TrainingCallback] = deque()
        self._closed = False
        # Created lazily: anyio.Event needs a running loop, construction may not have one.
        self._not_empty: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self._items)

    def _wake(self) -> None:
        if self._not_empty is not None:
            self._not_empty.set()
            self._not_empty = None

    def put_nowait(self, item: TrainingCallback) -> bool:
        if len(self._items) >= self._size:
            return False
        self._items.append(item)
        self._wake()
        return True

    def close(self) -> None:
        self._closed = True
        self._wake()

    async def get(self) -> TrainingCallback:
        """The next item; :class:`StreamClosed` once closed and drained."""
        while True:
            if self._items:
                return self._items.popleft()
            if self._closed:
                raise StreamClosed("callback receiver closed")
            if self._not_empty is None:
                self._not_empty = anyio.Event()
            await self._not_empty.wait()  # cancelled here: nothing was taken


class CallbackReceiver:
    """An ASGI app that receives training callbacks and delivers them.

    * ``async for cb in receiver`` (or ``await receiver.get()``) yields every
      accepted callback once, from a queue of ``queue_size``; when it is full
      the sender is answered 503 so it retries later (read it, or expect 503s
      once ``queue_size`` callbacks are pending).
    * ``await receiver.wait_for(conf_name)`` returns the callback for one
      avatar, also when it came before the call; independent of the queue.

    ``secret``, when given, must come as query parameter ``secret`` (see
    :meth:`callback_url`) or header ``X-Avatarkit-Secret``.  Bodies over
    ``max_body`` bytes are refused.  All on one event loop.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        max_body: int = 64 * 1024,
        queue_size: int = 256,
    ) -> None:
        if secret is not None and len(secret) < _MIN_SECRET:
            # Never put the value itself in the message: it is not registered yet.
            raise ValidationError("secret", "***", f"at least {_MIN_SECRET} characters")
        for name, value in (("max_body", max_body), ("queue_size", queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(name, reportable(value), "must be an integer >= 1")
        register_secret(secret)
        self._secret = secret.encode() if secret is not None else None
        self._secret_text = secret
        self.max_body = max_body
        """The largest request body accepted, in bytes (default 64 KiB); a bigger one is
        answered 413."""
        self.queue_size = queue_size
        """How many accepted callbacks may wait to be read through ``async for`` or
        :meth:`get` (default 256); when they are all pending, senders get 503."""
        self._queue = _Mailbox(queue_size)
        self._latest: OrderedDict[str, TrainingCallback] = OrderedDict()
        self._waiters: dict[str, list[_Waiter]] = {}
        self._closed = False

    def __repr__(self) -> str:
        secret = "***" if self._secret is not None else "None"
        state = "closed" if self._closed else f"queued={len(self._queue)}"
        return f"CallbackReceiver(secret={secret}, max_body={self.max_body}, {state})"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: new callbacks are then answered 503."""
        return self._closed

    @property
    def log_filter(self) -> logging.Filter:
        """A logging filter that masks this receiver's secret (and every URL query
        value) in a record: add it to your server's access logger, for example
        ``logging.getLogger("uvicorn.access").addFilter(receiver.log_filter)``."""
        return _LOG_FILTER

    # -- the program's side --------------------------------------------------

    def callback_url(self, base: str) -> str:
        """``base`` with ``secret=…`` added to its query: the URL to give the service.

        A ``secret`` already in ``base`` is replaced; the rest of its query is kept as
        written.  Without a secret, ``base`` comes back unchanged.

        Raises:
            ValidationError: ``base`` cannot be parsed (an unclosed ``[`` of an IPv6
                host, say); only with a secret.
        """
        if self._secret_text is None:
            return base
        try:
            parts = urlsplit(base)
        except ValueError as exc:
            raise ValidationError("base", redact_url(base), f"cannot be parsed: {exc}") from None
        # Drop a stale secret rather than send two; keep everything else as written.
        kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] != "secret"]
        kept.append(urlencode({"secret": self._secret_text}))
        return urlunsplit(parts._replace(query="&".join(kept)))

    def latest(self, conf_name: str) -> TrainingCallback | None:
        """The last callback received for ``conf_name`` (of the last 1024 names), or None.

        Raises nothing.
        """
        return self._latest.get(conf_name)

    async def wait_for(self, conf_name: str) -> TrainingCallback:
        """The callback for ``conf_name``: the one already received, else the next.

        Independent of the queue: it neither takes the callback from ``async for`` nor
        needs it to have room.  Bound the wait with ``anyio.fail_after``: training takes
        minutes to hours.

        Raises:
            StreamClosed: the receiver was closed before a callback for ``conf_name``
                came (at once when it is closed already and has none).

        Cancellation:
            Safe: the wait is unregistered and nothing is left running; a callback
            that comes later is still recorded, for :meth:`latest` and the next
            :meth:`wait_for`.
        """
        found = self._latest.get(conf_name)
        if found is not None:
            return found
        if self._closed:
            raise StreamClosed(f"callback receiver closed; no callback for {conf_name!r}")
        waiter = _Waiter()
        waiters = self._waiters.setdefault(conf_name, [])
        waiters.append(waiter)
        try:
            await waiter.event.wait()
        finally:
            # Cancelled: unregister, or the list would grow with abandoned waiters.
            if waiter in waiters:
                waiters.remove(waiter)
                if not waiters and self._waiters.get(conf_name) is waiters:
                    del self._waiters[conf_name]
        if waiter.result is None:
            raise StreamClosed(f"callback receiver closed; no callback for {conf_name!r}")
        return waiter.result

    async def get(self) -> TrainingCallback:
        """The next queued callback, taken from the queue (each is delivered once).

        Raises:
            StreamClosed: the receiver is closed and its queue drained.

        Cancellation:
            Safe: nothing is taken from the queue; the callback stays for the next
            reader.
        """
        return await self._queue.get()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> TrainingCallback:
        try:
            return await self._queue.get()
        except StreamClosed:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop accepting callbacks (503); iterators end after the queued ones, waiters now.

        Idempotent.  Waiting :meth:`wait_for` calls raise :class:`StreamClosed`; ``async
        for`` ends once the queue is drained.  Raises nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._queue.close()
        waiters, self._waiters = self._waiters, {}
        for group in waiters.values():
            for waiter in group:
                waiter.event.set()  # result None: StreamClosed

    def _deliver(self, callback: TrainingCallback) -> bool:
        """Record ``callback`` and wake its waiters; False when the queue is full."""
        name = callback.conf_name
        self._latest[name] = callback
        self._latest.move_to_end(name)
        while len(self._latest) > _LATEST_LIMIT:
            self._latest.popitem(last=False)
        for waiter in self._waiters.pop(name, ()):
            waiter.result = callback
            waiter.event.set()
        return self._queue.put_nowait(callback)

    # -- the ASGI side ---------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # Closing before accepting refuses the handshake (HTTP 403).
            await send({"type": "websocket.close", "code": 1008})

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = []
        try:
            callback = await self._accept(scope, receive)
            if callback is None:
                return  # the client left; nobody to answer
            if not self._deliver(callback):
                raise _reject(503, "callback queue is full; retry later", (b"retry-after", b"1"))
            status, body = 200, _OK_BODY
            _log.info(
                "training callback: conf_name=%r state=%s", callback.conf_name, callback.state.name
            )
        except _Rejected as exc:
            status, headers = exc.status, exc.headers
            reason = scrub(exc.reason)
            body = _encoder.encode({"errno": status, "errMsg": reason})
            _log.warning("rejected training callback request: %d %s", status, reason)
        except Exception as exc:  # a bug here must not take down the host application
            status = 500
            body = _encoder.encode({"errno": 500, "errMsg": "internal error"})
            _log.error("training callback handler failed: %s: %s", type(exc).__name__, exc)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        except OSError:
            pass  # the client disconnected while we answered

    async def _accept(self, scope: Scope, receive: Receive) -> TrainingCallback | None:
        """The request's callback, None when the client disconnected; else :class:`_Rejected`."""
        if self._closed:
            raise _reject(503, "callback receiver is closed")
        if scope.get("method") != "POST":
            raise _reject(405, "method not allowed; use POST", (b"allow", b"POST"))
        raw_headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or ())
        if self._secret is not None and not self._authorized(scope, raw_headers):
            raise _reject(401, "missing or wrong secret")
        lengths = [value for name, value in raw_headers if name.lower() == b"content-length"]
        if lengths:
            try:
                (length,) = {int(value) for value in lengths}
            except ValueError:
                raise _reject(400, "invalid Content-Length") from None
            if length > self.max_body:
                raise _reject(
                    413,
                    f"body of {length} bytes exceeds {self.max_body}",
                    (b"connection", b"close"),
                )
        body = await self._read_body(receive)
        return None if body is None else self._decode(body)

    def _authorized(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
        assert self._secret is not None
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        offered = [v.encode() for k, v in parse_qsl(query, keep_blank_values=True) if k == "secret"]
        offered += [value for name, value in headers if name.lower() == _SECRET_HEADER]
        # Compare every candidate so timing says nothing about which one matched.
        matches = [hmac.compare_digest(value, self._secret) for value in offered]
        return any(matches)

    async def _read_body(self, receive: Receive) -> bytes | None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            if message["type"] != "http.request":
                continue
            body += message.get("body", b"")
            if len(body) > self.max_body:
                # Stop reading now: a sender without Content-Length gets no more memory.
                raise _reject(413, f"body exceeds {self.max_body} bytes", (b"connection", b"close"))
            if not message.get("more_body", False):
                return bytes(body)

    @staticmethod
    def _decode(body: bytes) -> TrainingCallback:
        try:
            return parse_callback_body(body)
        except BadCallbackBody as exc:
            raise _reject(exc.status, exc.reason) from None
