"""Network shaping and fault injection for the emulator's HTTP services.

:class:`Shaper` is an ASGI middleware.  On paths under its ``path_prefixes``
it

- waits ``options.latency_ms`` before each response starts;
- caps how fast each TCP connection's request bodies are read
  (``options.bandwidth_bps``, a :class:`TokenBucket` per connection), and how
  fast all of them together are (``options.bandwidth_total_bps``, one
  :class:`TokenBucket` shared by every connection: a link's total capacity,
  so that parallel connections cannot each get the per-connection rate).
  While the app does not ``receive``, uvicorn stops reading the socket, so
  the client's upload really slows down (give or take uvicorn's 64 KiB
  buffer and the kernel's socket buffers);
- fails ``options.failure_rate`` of the requests its :class:`FaultTarget` s
  select, as ``options.failure_mode`` says:

  ``"5xx"``
      the body is read and thrown away, then HTTP 503 with the target's
      error body: the service never sees the request;
  ``"drop"``
      the body is read; the service gets it or not (a coin toss: a server
      may or may not have acted on a request whose reply was lost); then the
      response is cut short and the connection torn down, so the client sees
      a transport error (``httpx.RemoteProtocolError`` / ``ReadError``);
  ``"mixed"``
      either, at random.

Every random choice comes from one ``random.Random(options.fault_seed)``, in
a fixed order per faultable request: fail or not (drawn only when
``failure_rate > 0``), then for ``"mixed"`` the mode (< 0.5 is ``"5xx"``),
then for ``"drop"`` whether the service gets the request (< 0.5 it does).  A
seeded run with sequential requests therefore injects the same faults every
time.  Options are read on every request, so a test may change them while
the emulator runs.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from avatarkit.emulator.options import EmulatorOptions
    from avatarkit.emulator.state import EmulatorState

__all__ = ["FaultTarget", "Pacer", "Shaper", "TokenBucket", "check_shaping_options"]

_MAX_BUCKETS: Final = 1024  # connections remembered; the oldest is forgotten first
_DROP_DECLARED_LENGTH: Final = 64
_DROP_PARTIAL_BODY: Final = b'{"errno": 0, "er'


class _InjectedDrop(Exception):
    """Raised after a partial response so that uvicorn tears the connection down."""


class _QuietInjectedDrops(logging.Filter):
    """Keeps uvicorn from logging our own injected drops as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BaseExceptionGroup):
            return not all(isinstance(e, _InjectedDrop) for e in exc.exceptions)
        return not isinstance(exc, _InjectedDrop)


_QUIET: Final = _QuietInjectedDrops()


def _silence_injected_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


def check_shaping_options(options: EmulatorOptions) -> None:
    """Refuse shaping options that make no sense (at startup, not at the first request)."""
    if options.latency_ms < 0:
        raise ValidationError("latency_ms", options.latency_ms, "must be >= 0")
    if options.bandwidth_bps is not None and not options.bandwidth_bps > 0:
        raise ValidationError("bandwidth_bps", options.bandwidth_bps, "must be > 0 (or None)")
    total = options.bandwidth_total_bps
    if total is not None and not total > 0:
        raise ValidationError("bandwidth_total_bps", total, "must be > 0 (or None)")
    if not 0.0 <= options.failure_rate <= 1.0:
        raise ValidationError("failure_rate", options.failure_rate, "must be between 0 and 1")
    if options.failure_mode not in ("5xx", "drop", "mixed"):
        raise ValidationError("failure_mode", options.failure_mode, "must be 5xx, drop or mixed")
    if options.frame_bytes is not None and not options.frame_bytes >= 1:
        raise ValidationError("frame_bytes", options.frame_bytes, "must be >= 1 (or None)")
    cap = options.tta_max_sessions
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValidationError("tta_max_sessions", cap, "must be an integer >= 1 (or None)")
    rate = options.video_send_bps
    if rate is not None and not rate > 0:
        raise ValidationError("video_send_bps", rate, "must be > 0 (or None)")


class Pacer:
    """Lets bytes through at ``rate()`` bytes per second, read at each :meth:`wait` (so a
    test may change it mid-delivery); None lets them through at once."""

    def __init__(self, rate: Callable[[], float | None]) -> None:
        self._rate = rate
        self._bucket: TokenBucket | None = None

    async def wait(self, amount: int) -> None:
        """Wait until ``amount`` more bytes may pass."""
        per_second = self._rate()
        if per_second is None:
            self._bucket = None
            return
        if self._bucket is None or self._bucket.rate != per_second:
            self._bucket = TokenBucket(per_second)
        await anyio.sleep(self._bucket.take(amount))


class TokenBucket:
    """A token bucket in bytes: ``rate`` per second, at most ``burst`` saved up.

    :meth:`take` spends tokens at once and says how long to wait until the
    spending is covered.  The balance may go negative (a debt the refill
    repays first), so the long-run rate is exact even for chunks larger than
    the burst.  ``clock`` is injectable so the arithmetic can be tested
    without time passing.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        # 50 ms worth by default: small enough to shape, large enough not to
        # make every small chunk wait.
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 20)
        self._clock = clock
        self.tokens = self.burst
        self._stamp = clock()

    def take(self, amount: float) -> float:
        """Spend ``amount`` tokens; the seconds to wait before the bytes may pass."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(frozen=True)
class FaultTarget:
    """Requests that failure injection applies to, and how a 503 looks there.

    ``path`` is matched exactly, or as a prefix when ``prefix`` is true (for
    per-object URLs such as presigned PUTs).  ``counter`` names the
    :class:`~avatarkit.emulator.state.Stats` field counting the faults
    injected here.
    """

    path: str
    counter: str
    error_body: bytes
    methods: frozenset[str] = frozenset({"POST"})
    prefix: bool = False
    content_type: str = "application/json"

    def matches(self, method: str, path: str) -> bool:
        if method not in self.methods:
            return False
        return path.startswith(self.path) if self.prefix else path == self.path


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _discard(message: Message) -> None:
    pass


class Shaper:
    """ASGI middleware shaping the HTTP paths under ``path_prefixes`` (see module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        options: EmulatorOptions,
        state: EmulatorState,
        path_prefixes: Collection[str] = (),
        fault_targets: Collection[FaultTarget] = (),
    ) -> None:
        self.app = app
        self.options = options
        self.state = state
        self.path_prefixes = tuple(path_prefixes)
        self.fault_targets = tuple(fault_targets)
        self.rng = random.Random(options.fault_seed)
        self._buckets: OrderedDict[Any, TokenBucket] = OrderedDict()
        self._total: TokenBucket | None = None
        _silence_injected_drops()

    def bucket_for(self, scope: Scope) -> TokenBucket:
        """The token bucket of the request's TCP connection."""
        client = scope.get("client")
        key = tuple(client) if client else ("unknown", id(scope))
        bucket = self._buckets.get(key)
        rate = self.options.bandwidth_bps or 1.0
        if bucket is None or bucket.rate != rate:
            bucket = TokenBucket(rate)
            self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        while len(self._buckets) > _MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return bucket

    def total_bucket(self) -> TokenBucket | None:
        """The token bucket all connections share (``bandwidth_total_bps``), if any."""
        rate = self.options.bandwidth_total_bps
        if rate is None:
            self._total = None
        elif self._total is None or self._total.rate != rate:
            self._total = TokenBucket(rate)
        return self._total

    def _buckets_of(self, scope: Scope) -> tuple[TokenBucket, ...]:
        buckets = (self.bucket_for(scope),) if self.options.bandwidth_bps is not None else ()
        total = self.total_bucket()
        return buckets if total is None else (*buckets, total)

    def _fault(self, scope: Scope) -> tuple[FaultTarget, Literal["5xx", "drop"]] | None:
        rate = self.options.failure_rate
        if rate <= 0:
            return None
        method, path = scope["method"], scope["path"]
        target = next((t for t in self.fault_targets if t.matches(method, path)), None)
        if target is None or not self.rng.random() < rate:
            return None
        mode = self.options.failure_mode
        if mode == "mixed":
            return target, "5xx" if self.rng.random() < 0.5 else "drop"
        return target, mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefixes):
            await self.app(scope, receive, send)
            return
        buckets = self._buckets_of(scope)
        if buckets:
            receive = self._throttled(buckets, receive)
        if self.options.latency_ms > 0:
            send = self._delayed(self.options.latency_ms / 1000, send)
        fault = self._fault(scope)
        if fault is None:
            await self.app(scope, receive, send)
            return
        target, mode = fault
        stats = self.state.stats
        setattr(stats, target.counter, getattr(stats, target.counter) + 1)
        body = await _read_body(receive)
        if body is None:
            return
        if mode == "5xx":
            await self._unavailable(target, send)
        else:
            await self._drop(scope, body, receive, send)

    @staticmethod
    def _throttled(buckets: tuple[TokenBucket, ...], receive: Receive) -> Receive:
        async def receive_throttled() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                # Every bucket is charged; the bytes pass once the slowest is covered.
                delay = max([bucket.take(size) for bucket in buckets])
                if delay > 0:
                    await anyio.sleep(delay)
            return message

        return receive_throttled

    @staticmethod
    def _delayed(seconds: float, send: Send) -> Send:
        async def send_delayed(message: Message) -> None:
            if message["type"] == "http.response.start":
                await anyio.sleep(seconds)
            await send(message)

        return send_delayed

    @staticmethod
    async def _unavailable(target: FaultTarget, send: Send) -> None:
        headers = [
            (b"content-type", target.content_type.encode("latin-1")),
            (b"content-length", str(len(target.error_body)).encode("ascii")),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": target.error_body})

    async def _drop(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        if self.rng.random() < 0.5:
            # The service acts on the request; only its reply is lost.
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, _discard)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(_DROP_DECLARED_LENGTH).encode("ascii")),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": _DROP_PARTIAL_BODY, "more_body": True})
        # After a started response, uvicorn answers an exception by closing
        # the transport: the client reads a truncated body, then EOF.
        raise _InjectedDrop("injected connection drop")
