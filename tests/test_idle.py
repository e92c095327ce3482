"""The per-stream idle timer (tta/_idle.py): deadlines kept exactly, one timer per stream.

The timer's callback is called by hand with the deadline it was armed for, so
these run without waiting for a clock.
"""

from __future__ import annotations

import asyncio

import pytest

from avatarkit.tta._idle import IdleWatch

pytestmark = pytest.mark.anyio


def armed(watch: IdleWatch) -> float | None:
    """The deadline the live timer is set for (its when(), to uvloop's millisecond)."""
    timer = watch._timer
    if timer is None or timer.cancelled():
        return None
    assert timer.when() == pytest.approx(watch._armed_for, abs=2e-3)
    return watch._armed_for


async def test_a_wait_past_its_bound_is_resolved_false() -> None:
    loop = asyncio.get_running_loop()
    watch, waiter = IdleWatch(), loop.create_future()
    watch.watch(waiter, 0.01)
    assert await waiter is False  # the real timer fired
    assert armed(watch) is None


async def test_waits_reuse_one_timer_and_a_sooner_bound_moves_it_earlier() -> None:
    loop = asyncio.get_running_loop()
    watch = IdleWatch()
    first = loop.create_future()
    watch.watch(first, 100)
    timer, when = watch._timer, armed(watch)
    first.set_result(True)
    watch.done()
    second = loop.create_future()
    watch.watch(second, 200)  # later: the same timer stays
    assert watch._timer is timer and armed(watch) == when
    second.set_result(True)
    watch.done()
    third = loop.create_future()
    watch.watch(third, 1)  # sooner: moved
    assert watch._timer is not timer and timer.cancelled()
    now_armed = armed(watch)
    assert now_armed is not None and when is not None and now_armed < when
    watch.cancel()


async def test_a_timer_firing_for_an_earlier_wait_rearms_for_the_later_one() -> None:
    loop = asyncio.get_running_loop()
    watch = IdleWatch()
    early = loop.create_future()
    watch.watch(early, 100)
    armed_for = armed(watch)
    assert armed_for is not None
    early.set_result(True)
    watch.done()
    later = loop.create_future()
    watch.watch(later, 150)
    deadline = watch._deadline
    assert deadline > armed_for
    watch._expired(armed_for)  # the old deadline passes while the later wait is under way
    assert not later.done()  # not cut short
    assert armed(watch) == deadline  # set again for the later deadline
    watch._expired(deadline)
    assert later.result() is False


async def test_a_timer_firing_with_no_wait_under_way_does_nothing() -> None:
    loop = asyncio.get_running_loop()
    watch, waiter = IdleWatch(), loop.create_future()
    watch.watch(waiter, 100)
    armed_for = armed(watch)
    waiter.set_result(True)
    watch.done()
    assert armed_for is not None
    watch._expired(armed_for)
    assert armed(watch) is None  # the next wait arms it again
    again = loop.create_future()
    watch.watch(again, 100)
    assert armed(watch) is not None
    watch.cancel()
    assert armed(watch) is None
    watch._expired(0.0)  # a callback already queued at close: harmless
    assert not again.done()


async def test_a_cancelled_wait_is_not_resolved() -> None:
    loop = asyncio.get_running_loop()
    watch, waiter = IdleWatch(), loop.create_future()
    watch.watch(waiter, 100)
    armed_for = armed(watch)
    waiter.cancel()
    assert armed_for is not None
    watch._expired(armed_for)  # no InvalidStateError
    assert waiter.cancelled()
