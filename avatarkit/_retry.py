"""The one retry helper: capped, jittered exponential backoff.

Cancellation is never retried (it is a ``BaseException``); callers decide with
``retry_on`` which errors are transient.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import anyio

from avatarkit._redact import protected_logger

T = TypeVar("T")
log = protected_logger("avatarkit.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry.

    ``attempts`` counts every try (1 = no retry).  Delays grow from
    ``base_delay`` by ``multiplier`` up to ``max_delay``, each drawn from
    ``[d/2, d]`` ("equal jitter") so that clients do not retry in lockstep.
    ``total_timeout`` caps the time spent including the tries themselves.
    """

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    multiplier: float = 2.0
    total_timeout: float | None = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits between tries (``attempts - 1`` of them)."""
        rand = rng or random
        delay = self.base_delay
        for _ in range(self.attempts - 1):
            capped = min(delay, self.max_delay)
            yield rand.uniform(capped / 2, capped)
            delay *= self.multiplier


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retry_on: Callable[[Exception], bool],
    what: str = "operation",
    rng: random.Random | None = None,
) -> T:
    """Run ``operation`` until it succeeds, retrying errors ``retry_on`` accepts.

    The last error is re-raised when the attempts or the time budget run out.
    """
    started = time.monotonic()
    delays = policy.delays(rng)
    attempt = 1
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not retry_on(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            if policy.total_timeout is not None:
                remaining = policy.total_timeout - (time.monotonic() - started)
                if remaining <= delay:
                    raise
            log.info(
                "%s failed (attempt %d/%d: %s); retrying in %.2fs",
                what,
                attempt,
                policy.attempts,
                exc,
                delay,
            )
            await anyio.sleep(delay)
            attempt += 1
