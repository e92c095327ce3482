"""The reader's bounded queue: order, bound, backpressure, cancellation, close."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avatarkit._queue import Closed, EventQueue
from avatarkit.errors import ValidationError


@given(st.integers(1, 8), st.lists(st.booleans(), max_size=200))
def test_fifo_and_bound(size: int, ops: list[bool]) -> None:
    queue: EventQueue[int] = EventQueue(size)
    model: list[int] = []
    counter = 0
    for is_put in ops:
        if is_put:
            accepted = queue.put_nowait(counter)
            assert accepted == (len(model) < size)
            if accepted:
                model.append(counter)
            counter += 1
        else:
            assert queue.get_nowait() == (model.pop(0) if model else None)
        assert len(queue) == len(model) <= size


def test_close_drains_then_raises() -> None:
    queue: EventQueue[str] = EventQueue(2)
    queue.put_nowait("a")
    queue.close()
    with pytest.raises(Closed):
        queue.put_nowait("b")
    assert queue.get_nowait() == "a"
    with pytest.raises(Closed):
        queue.get_nowait()


def test_size_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="queue_size"):
        EventQueue(0)
    with pytest.raises(ValidationError, match="buffer_bytes"):
        EventQueue(4, max_bytes=0)


@pytest.mark.anyio
async def test_put_waits_while_full_until_a_get() -> None:
    queue: EventQueue[int] = EventQueue(1)
    queue.put_nowait(1)
    done = anyio.Event()

    async def producer() -> None:
        await queue.put(2)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(producer)
        await anyio.wait_all_tasks_blocked()
        assert not done.is_set() and len(queue) == 1  # backpressure: the producer waits
        assert await queue.get() == 1
        await done.wait()
    assert queue.get_nowait() == 2


@pytest.mark.anyio
async def test_get_waits_and_cancellation_takes_nothing() -> None:
    queue: EventQueue[int] = EventQueue(2)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await queue.get()
    queue.put_nowait(7)
    assert await queue.get() == 7

    got: list[int] = []

    async def consumer() -> None:
        got.append(await queue.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer)
        await anyio.wait_all_tasks_blocked()
        queue.put_nowait(8)
    assert got == [8]


@pytest.mark.anyio
async def test_close_wakes_a_waiting_getter_and_putter() -> None:
    queue: EventQueue[int] = EventQueue(1)
    outcomes: list[str] = []

    async def getter() -> None:
        try:
            await queue.get()
        except Closed:
            outcomes.append("get closed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(getter)
        await anyio.wait_all_tasks_blocked()
        queue.close()
    full: EventQueue[int] = EventQueue(1)
    full.put_nowait(1)

    async def putter() -> None:
        try:
            await full.put(2)
        except Closed:
            outcomes.append("put closed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(putter)
        await anyio.wait_all_tasks_blocked()
        full.close()
    assert outcomes == ["get closed", "put closed"]


def test_force_put_pauses_at_full_and_resumes_at_half() -> None:
    calls: list[str] = []
    queue: EventQueue[int] = EventQueue(4)
    queue.watermarks(lambda: calls.append("pause"), lambda: calls.append("resume"))
    for i in range(6):  # a producer that cannot wait overshoots a little
        queue.force_put(i)
    assert calls == ["pause"] and len(queue) == 6
    got = [queue.get_nowait() for _ in range(3)]
    assert got == [0, 1, 2] and calls == ["pause"]  # 3 left: above half
    assert queue.get_nowait() == 3
    assert calls == ["pause", "resume"]  # 2 left: half of 4
    queue.force_put(9)
    assert calls == ["pause", "resume"]  # not full again yet
    queue.close()
    queue.force_put(10)  # bytes still arriving after close are dropped, not raised
    assert len(queue) == 3


def test_force_put_pauses_at_the_byte_bound_and_resumes_below_half() -> None:
    calls: list[str] = []
    queue: EventQueue[int] = EventQueue(100, max_bytes=1000)
    queue.watermarks(lambda: calls.append("pause"), lambda: calls.append("resume"))
    queue.force_put(1, 600)
    assert calls == [] and queue.nbytes == 600
    queue.force_put(2, 600)  # over the byte bound with 2 of 100 items: pause
    assert calls == ["pause"] and queue.nbytes == 1200
    assert queue.get_nowait() == 1
    assert calls == ["pause"]  # 600 left: above half of 1000
    assert queue.get_nowait() == 2
    assert calls == ["pause", "resume"] and queue.nbytes == 0


@pytest.mark.anyio
async def test_readable_is_one_future_resolved_by_a_put_or_close() -> None:
    queue: EventQueue[int] = EventQueue(4)
    waiter = queue.readable()
    assert queue.readable() is waiter  # one wait, one future
    queue.force_put(1)
    assert waiter.done() and waiter.result() is True
    assert queue.get_nowait() == 1
    again = queue.readable()
    assert again is not waiter and not again.done()
    again.cancel()  # a cancelled wait is replaced, never resolved
    fresh = queue.readable()
    assert fresh is not again
    queue.close()
    assert fresh.result() is True
    with pytest.raises(Closed):
        queue.get_nowait()
