"""A bounded single-producer, single-consumer queue for the socket reader.

anyio's memory streams do the same job, but their ``receive()`` always yields
to the event loop once before waiting; on a stream of thousands of frames a
second that extra loop pass per wake-up is measurable (see
``benchmarks/tta_receive.py``).  This queue only suspends when it must.

It is bounded twice: in items and in payload bytes, because a count alone
lets a few huge frames hold gigabytes.

The consumer's wake-up is one bare asyncio future (:meth:`EventQueue.readable`),
not an ``anyio.Event`` and its coroutines: a waiting consumer costs one future
per wait, resolved by the producer's put.  (The SDK's streams run on asyncio:
websockets' protocol layer is asyncio's.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

from avatarkit.errors import ValidationError

T = TypeVar("T")

__all__ = ["Closed", "EventQueue"]


class Closed(Exception):
    """The producer closed the queue and every item was taken."""


class EventQueue(Generic[T]):
    """Bounded FIFO: ``put`` waits while full (backpressure), ``get`` while empty.

    Full means ``size`` items, or ``max_bytes`` of payload (each item's size is
    given to :meth:`force_put`).  Cancellation-safe: a cancelled ``get`` or
    ``put`` takes or adds nothing.
    """

    __slots__ = (
        "_bytes",
        "_closed",
        "_items",
        "_max_bytes",
        "_not_empty",
        "_not_full",
        "_pause",
        "_paused",
        "_resume",
        "_size",
        "_sizes",
    )

    def __init__(self, size: int, *, max_bytes: int | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValidationError("queue_size", size, "must be an integer >= 1")
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
        ):
            raise ValidationError("buffer_bytes", max_bytes, "must be an integer >= 1 (bytes)")
        self._size = size
        self._max_bytes = max_bytes if max_bytes is not None else 1 << 62
        self._bytes = 0
        self._items: deque[T] = deque()
        self._sizes: deque[int] = deque()
        self._closed = False
        self._not_empty: asyncio.Future[bool] | None = None
        self._not_full: anyio.Event | None = None
        self._pause: Callable[[], None] | None = None
        self._resume: Callable[[], None] | None = None
        self._paused = False

    def watermarks(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """For a producer that cannot wait (a protocol callback): ``pause`` is called when
        :meth:`force_put` fills the queue, ``resume`` once it has drained to half."""
        self._pause, self._resume = pause, resume

    def __len__(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Payload bytes held now."""
        return self._bytes

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def close(self) -> None:
        """No more puts; ``get`` raises :class:`Closed` once the queue is drained."""
        self._closed = True
        self._wake_getter()
        if self._not_full is not None:
            self._not_full.set()

    def _wake_getter(self) -> None:
        waiter = self._not_empty
        if waiter is not None:
            self._not_empty = None
            if not waiter.done():  # a cancelled wait left it behind
                waiter.set_result(True)

    def readable(self) -> asyncio.Future[bool]:
        """A future resolved (True) at the next put or close: await it when
        :meth:`get_nowait` returned None.  Another party may resolve it False
        (a timeout); cancelling it is safe."""
        waiter = self._not_empty
        if waiter is None or waiter.done():
            waiter = self._not_empty = asyncio.get_running_loop().create_future()
        return waiter

    def put_nowait(self, item: T) -> bool:
        """Add ``item`` if there is room; False when full."""
        if self._closed:
            raise Closed
        if len(self._items) >= self._size:
            return False
        self._items.append(item)
        self._sizes.append(0)
        self._wake_getter()
        return True

    def force_put(self, item: T, nbytes: int = 0) -> None:
        """Add ``item`` (``nbytes`` of payload) even when full, and ask the producer
        to pause once full (see :meth:`watermarks`).

        The overshoot is bounded by what the producer already had in hand when
        it was asked to pause (one socket read); a closed queue drops the item."""
        if self._closed:
            return
        self._items.append(item)
        self._sizes.append(nbytes)
        self._bytes += nbytes
        self._wake_getter()
        if (
            not self._paused
            and (len(self._items) >= self._size or self._bytes >= self._max_bytes)
            and self._pause is not None
        ):
            self._paused = True
            self._pause()

    async def put(self, item: T) -> None:
        while not self.put_nowait(item):
            event = self._not_full = anyio.Event()
            await event.wait()

    def get_nowait(self) -> T | None:
        """The next item, None when empty; :class:`Closed` when closed and drained."""
        if self._items:
            item = self._items.popleft()
            self._bytes -= self._sizes.popleft()
            if self._not_full is not None:
                self._not_full.set()
                self._not_full = None
            if (
                self._paused
                and len(self._items) <= self._size // 2
                and self._bytes <= self._max_bytes // 2
            ):
                self._paused = False
                assert self._resume is not None
                self._resume()
            return item
        if self._closed:
            raise Closed
        return None

    async def get(self) -> T:
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            await self.readable()
