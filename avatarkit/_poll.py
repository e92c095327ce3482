"""The one "poll until done, failed or out of time" loop: digime's and MetaStudio's waits.

What is polled, what "done" means and how a pause may end early (a training
callback arriving) are the caller's; the schedule, the argument checks and the
timeout's words are here, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import anyio

from avatarkit.errors import TimeoutError, ValidationError

__all__ = ["FACTOR", "Pause", "check_poll_args", "intervals", "poll"]

T = TypeVar("T")

#: A pause between two polls: sleeps up to the delay given, may return sooner.
Pause = Callable[[float], Awaitable[None]]
#: How much each pause grows over the one before, up to the maximum.
FACTOR = 1.5


def intervals(first: float, maximum: float) -> Iterator[float]:
    """The pauses between polls: ``first``, then 1.5x the one before, at most ``maximum``.

    ``first`` itself is not capped: a long first pause with a shorter maximum
    is a caller relying on something else (a callback) to wake it.
    """
    delay = first
    while True:
        yield delay
        delay = min(delay * FACTOR, maximum)


def _seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def check_poll_args(timeout: float | None, poll_interval: float, max_poll_interval: float) -> None:
    """Each argument a positive number of seconds (``timeout`` may be None: no limit)."""
    positive = "must be a positive number of seconds"
    if timeout is not None and not _seconds(timeout):
        raise ValidationError("timeout", timeout, f"{positive}, or None")
    if not _seconds(poll_interval):
        raise ValidationError("poll_interval", poll_interval, positive)
    if not _seconds(max_poll_interval):
        raise ValidationError("max_poll_interval", max_poll_interval, positive)


async def poll(
    fetch: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    what: str,
    state: Callable[[T], str],
    timeout: float | None,
    poll_interval: float,
    max_poll_interval: float,
    pause: Pause = anyio.sleep,
) -> T:
    """Call ``fetch`` until ``done`` holds for its answer, and return that answer.

    ``done`` raises to end the wait with an error (a failed training).  Between
    two calls, ``pause`` for the next of :func:`intervals`.  After ``timeout``
    seconds, :class:`~avatarkit.TimeoutError` naming ``what`` and the last
    answer's ``state``.
    """
    check_poll_args(timeout, poll_interval, max_poll_interval)
    last = "no answer yet"  # the deadline may come before the first answer
    with anyio.move_on_after(timeout):
        for delay in intervals(poll_interval, max_poll_interval):
            answer = await fetch()
            if done(answer):
                return answer
            last = state(answer)
            await pause(delay)
    raise TimeoutError(f"{what} not finished after {timeout:g} s (last state: {last})")
