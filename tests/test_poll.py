"""The one polling loop (avatarkit._poll), alone: schedule, outcome, timeout, early wake-up.

No service and no real waiting: the answers come from a list, and the pauses
are recorded (or never end, for the timeouts).
"""

from __future__ import annotations

import itertools

import anyio
import pytest

from avatarkit._poll import check_poll_args, intervals, poll
from avatarkit.errors import TimeoutError, TrainingFailed, ValidationError

pytestmark = pytest.mark.anyio


class Answers:
    """``fetch`` answering the given states in turn; ``pause`` recording its delays."""

    def __init__(self, *states: str) -> None:
        self.states = iter(states)
        self.calls = 0
        self.pauses: list[float] = []

    async def fetch(self) -> str:
        self.calls += 1
        return next(self.states)

    async def pause(self, delay: float) -> None:
        self.pauses.append(delay)


def _done(state: str) -> bool:
    if state == "FAILED":
        raise TrainingFailed("job-1", state)
    return state == "DONE"


def test_intervals_grow_by_half_up_to_the_maximum() -> None:
    assert list(itertools.islice(intervals(2.0, 5.0), 5)) == [2.0, 3.0, 4.5, 5.0, 5.0]
    assert list(itertools.islice(intervals(1.0, 1.0), 3)) == [1.0, 1.0, 1.0]
    assert list(itertools.islice(intervals(3600.0, 60.0), 3)) == [3600.0, 60.0, 60.0]


async def test_returns_the_first_answer_that_is_done_pausing_between_calls() -> None:
    answers = Answers("RUNNING", "RUNNING", "RUNNING", "DONE", "never asked")
    got = await poll(
        answers.fetch,
        _done,
        what="job job-1",
        state=str,
        timeout=None,
        poll_interval=2.0,
        max_poll_interval=4.0,
        pause=answers.pause,
    )
    assert got == "DONE" and answers.calls == 4
    assert answers.pauses == [2.0, 3.0, 4.0]  # none after the last answer


async def test_done_already_at_the_first_answer_never_pauses() -> None:
    answers = Answers("DONE")
    got = await poll(
        answers.fetch,
        _done,
        what="x",
        state=str,
        timeout=1,
        poll_interval=1,
        max_poll_interval=1,
        pause=answers.pause,
    )
    assert got == "DONE" and answers.pauses == []


async def test_a_failure_raised_by_done_ends_the_wait_as_itself() -> None:
    answers = Answers("RUNNING", "FAILED", "DONE")
    with pytest.raises(TrainingFailed) as info:
        await poll(
            answers.fetch,
            _done,
            what="job job-1",
            state=str,
            timeout=None,
            poll_interval=1,
            max_poll_interval=1,
            pause=answers.pause,
        )
    assert info.value.info == "FAILED" and answers.calls == 2


async def _forever(delay: float) -> None:
    await anyio.Event().wait()  # a pause that only the deadline ends


async def test_the_timeout_names_what_and_the_last_state() -> None:
    answers = Answers("TRAINING")
    with pytest.raises(TimeoutError) as info:
        await poll(
            answers.fetch,
            _done,
            what="job job-1",
            state=lambda s: s.lower(),
            timeout=0.01,
            poll_interval=5,
            max_poll_interval=60,
            pause=_forever,
        )
    assert str(info.value) == "job job-1 not finished after 0.01 s (last state: training)"


async def test_a_timeout_before_any_answer_says_so() -> None:
    async def no_answer() -> str:
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(TimeoutError, match=r"not finished after 0\.01 s \(last state: no answer"):
        await poll(
            no_answer,
            _done,
            what="training of 'A-1'",
            state=str,
            timeout=0.01,
            poll_interval=1,
            max_poll_interval=1,
        )


async def test_a_pause_that_returns_early_polls_again_at_once() -> None:
    """A wake-up (a callback arrived) ends the pause: the next answer is asked for right away."""
    woken = anyio.Event()
    answers = Answers("RUNNING", "DONE")

    async def pause(delay: float) -> None:
        with anyio.move_on_after(delay):
            await woken.wait()

    woken.set()  # as if the callback came during the first pause
    with anyio.fail_after(30):  # a guard against hanging: the pause asked for is an hour
        got = await poll(
            answers.fetch,
            _done,
            what="x",
            state=str,
            timeout=None,
            poll_interval=3600,
            max_poll_interval=3600,
            pause=pause,
        )
    assert got == "DONE"


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ((0, 1, 1), "timeout", "must be a positive number of seconds, or None"),
        ((-5, 1, 1), "timeout", "must be a positive number of seconds, or None"),
        (("10", 1, 1), "timeout", "must be a positive number of seconds, or None"),
        ((True, 1, 1), "timeout", "must be a positive number of seconds, or None"),
        ((None, 0, 1), "poll_interval", "must be a positive number of seconds"),
        ((None, float("nan"), 1), "poll_interval", "must be a positive number of seconds"),
        ((None, 1, 0), "max_poll_interval", "must be a positive number of seconds"),
        ((None, 1, None), "max_poll_interval", "must be a positive number of seconds"),
    ],
)
def test_bad_arguments_are_refused_with_their_name(
    args: tuple[object, object, object], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as info:
        check_poll_args(*args)  # type: ignore[arg-type]
    assert info.value.field == field
    assert words in str(info.value)


async def test_bad_arguments_are_refused_before_the_first_call() -> None:
    answers = Answers("DONE")
    with pytest.raises(ValidationError, match="poll_interval"):
        await poll(
            answers.fetch,
            _done,
            what="x",
            state=str,
            timeout=None,
            poll_interval=-1,
            max_poll_interval=1,
        )
    assert answers.calls == 0
