"""One idle timer per stream: the bound on how long a wait for the service may last.

A timer per wait (a handle, a context, a cancel) is most of what a wait
allocates, and a stream at the real-time pace waits once per frame: at a
thousand streams that garbage kept the collector busy enough to lag every
stream (``benchmarks/tta_realtime.py``).  So a stream keeps one timer.  A
wait records its deadline; the timer is moved earlier only when a wait
needs it sooner, and when it fires for an earlier wait while a later one
is under way, it is set again for the later deadline.  A wait is never cut
short and never outlives its bound.
"""

from __future__ import annotations

import asyncio

__all__ = ["IdleWatch"]


class IdleWatch:
    """Resolves the current wait's future False once its bound has passed."""

    __slots__ = ("_armed_for", "_deadline", "_timer", "_waiter")

    def __init__(self) -> None:
        self._waiter: asyncio.Future[bool] | None = None
        self._deadline = 0.0  # the current wait's
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = 0.0  # the deadline the timer was set for (uvloop rounds when())

    def watch(self, waiter: asyncio.Future[bool], bound: float) -> None:
        """Resolve ``waiter`` False if it is still pending ``bound`` s from now."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound
        self._waiter, self._deadline = waiter, deadline
        timer = self._timer
        if timer is None or self._armed_for > deadline:
            if timer is not None:
                timer.cancel()
            self._arm(loop, deadline)

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._armed_for = deadline
        self._timer = loop.call_at(deadline, self._expired, deadline)

    def done(self) -> None:
        """The wait ended (the timer stays, for the next wait)."""
        self._waiter = None

    def cancel(self) -> None:
        """The stream is closed: no more waits."""
        self._waiter = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, armed_for: float) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # no wait under way: the next one arms the timer again
        if self._deadline <= armed_for:
            waiter.set_result(False)  # the bound passed: the waiter raises TimeoutError
        else:  # a later wait, with a later deadline
            self._arm(asyncio.get_running_loop(), self._deadline)
