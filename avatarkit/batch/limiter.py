"""The account's concurrency, found as the batch runs: additive increase, multiplicative
decrease (AIMD, as TCP does).  The rule is pure (:class:`AdaptiveLimit`); the permits
around it (:class:`Permits`) are the only async part.

A "busy" answer (TTA MSG 1002) halves the limit; each success adds ``1/limit``, so
the limit grows by about one per round of successes, never past ``cap``.  Several
jobs that started under the old limit may come back busy together: only the first
busy answer after a decrease halves it again (one decrease per "window", as TCP).
"""

from __future__ import annotations

import math

import anyio

from avatarkit.errors import ValidationError

__all__ = ["AdaptiveLimit", "Permits"]


class AdaptiveLimit:
    """The AIMD rule: how many jobs may run at once now.

    Raises:
        ValidationError: ``cap`` is not an integer >= 1, or ``start`` is not in 1..cap.
    """

    __slots__ = ("_epoch", "cap", "value")

    def __init__(self, cap: int, *, start: int | None = None) -> None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValidationError("cap", cap, "must be an integer >= 1")
        first = cap if start is None else start
        if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= cap:
            raise ValidationError("start", start, f"must be an integer from 1 to cap ({cap})")
        self.cap = cap
        """The most jobs at once, whatever the successes."""
        self.value = float(first)
        """The limit now, fractional (additive increase moves it by ``1/limit``)."""
        self._epoch = 0  # bumped at each decrease

    @property
    def permits(self) -> int:
        """Jobs that may run at once: the limit, rounded down (at least 1)."""
        return max(1, math.floor(self.value))

    @property
    def epoch(self) -> int:
        """Which decrease the limit is at: a permit remembers the epoch it was taken in."""
        return self._epoch

    def success(self) -> None:
        """A job was accepted: grow by ``1/limit`` (about one per round), up to ``cap``.

        Raises nothing.
        """
        self.value = min(float(self.cap), self.value + 1.0 / self.value)

    def busy(self, epoch: int) -> bool:
        """A job taken in ``epoch`` was refused as busy: halve the limit, once per epoch.

        Returns whether it decreased (False: an older job's busy, already counted).
        Raises nothing.
        """
        if epoch != self._epoch:
            return False
        self.value = max(1.0, self.value / 2)
        self._epoch += 1
        return True


class Permits:
    """Waits for a free place under an :class:`AdaptiveLimit`."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        """The rule the places follow."""
        self.in_use = 0
        """Places taken now."""
        self.peak = 0
        """The most places taken at once."""
        self._changed = anyio.Condition()

    async def acquire(self) -> int:
        """Wait for a place; the epoch it was taken in (give it back to :meth:`release`).

        Raises nothing of its own.

        Cancellation:
            Safe: no place is taken.
        """
        async with self._changed:
            while self.in_use >= self.limit.permits:
                await self._changed.wait()
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)
            return self.limit.epoch

    async def release(self, epoch: int, outcome: str) -> None:
        """Give a place back: ``outcome`` is ``"success"``, ``"busy"`` or anything else.

        Raises nothing of its own.

        Cancellation:
            Shielded: the place is always given back.
        """
        with anyio.CancelScope(shield=True):
            async with self._changed:
                self.in_use -= 1
                if outcome == "success":
                    self.limit.success()
                elif outcome == "busy":
                    self.limit.busy(epoch)
                self._changed.notify_all()
