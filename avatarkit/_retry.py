"""The one retry helper: capped, jittered exponential backoff, and visible.

Cancellation is never retried (it is a ``BaseException``); callers decide with
``retry_on`` which errors are transient (for HTTP: :func:`avatarkit._http.is_transient`).

Every retry is logged at WARNING on ``avatarkit._retry`` and reported to the
listeners installed with :func:`on_retry`, as a :class:`RetryEvent`::

    with on_retry(lambda e: print(f"{e.what}: attempt {e.attempt} failed: {e.reason}")):
        await av.digime.upload(...)
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import msgspec

from avatarkit._redact import protected_logger, scrub
from avatarkit.errors import ValidationError

__all__ = ["RetryEvent", "RetryListener", "RetryPolicy", "on_retry", "retry"]

T = TypeVar("T")
log = protected_logger(__name__)


class RetryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One retry: try number ``attempt`` of ``attempts`` of ``what`` failed for
    ``reason`` (redacted); the next try starts in ``delay`` seconds."""

    what: str
    """The operation, in words (``"PUT part 3 of job …"``); URLs in it are redacted."""
    attempt: int
    """The try that failed, counting from 1."""
    attempts: int
    """How many tries the policy allows in all."""
    reason: str
    """Why it failed (the error's message, redacted)."""
    delay: float
    """Seconds until the next try."""


RetryListener = Callable[[RetryEvent], None]

# A context variable, not a global: tasks started inside ``with on_retry(...)``
# inherit its listeners, and concurrent callers do not see each other's.
_listeners: ContextVar[tuple[RetryListener, ...]] = ContextVar(
    "avatarkit_retry_listeners", default=()
)


@contextlib.contextmanager
def on_retry(listener: RetryListener) -> Iterator[None]:
    """Call ``listener`` with a :class:`RetryEvent` for every retry made inside the block
    (and in tasks started from it).  Listeners nest; a failing listener is logged, never fatal.

    ::

        with avatarkit.on_retry(lambda e: print(f"retry {e.attempt}/{e.attempts}: {e.reason}")):
            await av.digime.upload("talk.mp4", ...)

    Raises nothing of its own.
    """
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)


def _seconds(field: str, value: Any, *, minimum: float, strict: bool = False) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        rule = f"must be a finite number {'>' if strict else '>='} {minimum:g}"
        raise ValidationError(f"RetryPolicy.{field}", value, rule)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry.

    ``attempts`` counts every try (1 = no retry).  Delays grow from
    ``base_delay`` by ``multiplier`` up to ``max_delay``, each drawn from
    ``[d/2, d]`` ("equal jitter") so that clients do not retry in lockstep.
    ``total_timeout`` (seconds, ``None`` for no limit) bounds the retrying: no
    wait runs past it and no try starts after it, so the whole call ends within
    ``total_timeout`` plus at most one try's own (transport) timeout.

    Raises:
        ValidationError: a field breaks its rule (``attempts`` below 1, a
            negative or infinite delay, ``multiplier`` below 1, a
            ``total_timeout`` that is not positive); the error names the field.
    """

    attempts: int = 5
    """Tries in all, the first included (1: no retry)."""
    base_delay: float = 0.25
    """Seconds before the first retry (before jitter)."""
    max_delay: float = 8.0
    """The longest wait between tries, in seconds (before jitter)."""
    multiplier: float = 2.0
    """How much each wait grows over the one before (at least 1)."""
    total_timeout: float | None = 120.0
    """Seconds the retrying may take in all (None: no limit)."""

    def __post_init__(self) -> None:
        if (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or self.attempts < 1
        ):
            raise ValidationError(
                "RetryPolicy.attempts", self.attempts, "must be an integer >= 1 (1 = no retry)"
            )
        _seconds("base_delay", self.base_delay, minimum=0)
        _seconds("max_delay", self.max_delay, minimum=0)
        _seconds("multiplier", self.multiplier, minimum=1)
        if self.total_timeout is not None:
            _seconds("total_timeout", self.total_timeout, minimum=0, strict=True)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits between tries (``attempts - 1`` of them), in seconds.  Raises nothing."""
        rand = rng or random
        delay = self.base_delay
        for _ in range(self.attempts - 1):
            capped = min(delay, self.max_delay)
            yield rand.uniform(capped / 2, capped)
            delay *= self.multiplier


def _notify(event: RetryEvent) -> None:
    for listener in _listeners.get():
        try:
            listener(event)
        except Exception:  # a broken progress display must not break the upload
            log.exception("retry listener %r failed", listener)


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retry_on: Callable[[Exception], bool],
    what: str = "operation",
    describe: Callable[[Exception], str] = str,
    rng: random.Random | None = None,
) -> T:
    """Run ``operation`` until it succeeds, retrying errors ``retry_on`` accepts.

    The last error is re-raised when the attempts or the time budget run out.
    ``describe`` turns an error into the short reason logged and reported.
    """
    started = time.monotonic()
    deadline = None if policy.total_timeout is None else started + policy.total_timeout
    delays = policy.delays(rng)
    attempt = 1
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not retry_on(exc):
                raise
            delay = next(delays, None)
            # Waiting past the deadline, or trying once it passed, would overrun it.
            if delay is None or (deadline is not None and deadline - time.monotonic() <= delay):
                log.info(
                    "giving up on %s after %d of %d attempts in %.1fs",
                    what,
                    attempt,
                    policy.attempts,
                    time.monotonic() - started,
                )
                raise
            event = RetryEvent(
                what=what,
                attempt=attempt,
                attempts=policy.attempts,
                reason=scrub(describe(exc)),
                delay=delay,
            )
            log.warning(
                "retrying %s: attempt %d/%d failed: %s; next try in %.1fs",
                what,
                attempt,
                policy.attempts,
                event.reason,
                delay,
            )
            _notify(event)
            await anyio.sleep(delay)
            attempt += 1
