"""The handle every upload returns (digime, voice clone, MetaStudio).

``await upload`` runs it in the awaiting task and returns its result;
``async for progress in upload`` runs it in the owner's task group (the
session's, or the MetaStudio client's) and yields its progress, the latest
one each time the loop asks: a slow loop body skips steps, it never holds
the upload back.  Leaving the loop before the end cancels the upload.

Why the owner's task group and not one opened by the iteration itself: a
task group entered inside an async generator stays entered when the loop is
left with ``break``; Python then closes the generator from another task, and
the group's cancel scope is torn down there, cancelling the task that had
iterated.  The iterator here is a plain object instead: when the loop drops
it (``break``, an exception, the end), CPython frees it at once and its
``__del__`` cancels the upload's own scope, which may be done from anywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar, cast

import anyio
from anyio.abc import TaskGroup

from avatarkit._progress import UploadProgress
from avatarkit.errors import AvatarError

__all__ = ["Report", "Upload"]

T = TypeVar("T")

#: Where an upload hands its progress.
Report = Callable[[UploadProgress], None]


class Upload(Generic[T]):
    """An upload, started on demand and run once: ``await`` it, or iterate its progress.

    Awaiting an upload that already runs (iterated, or awaited by another
    task) waits for that run's outcome instead of starting another.

    ::

        result = await av.digime.upload("talk.mp4", ...)
        # or
        upload = av.digime.upload("talk.mp4", ...)
        async for progress in upload:
            print(f"{progress.fraction:.0%}")
        result = upload.result

    Leaving the ``async for`` loop early (``break``, an exception) cancels the
    upload; an error of the upload itself is raised by the loop.
    """

    def __init__(
        self, run: Callable[[Report], Awaitable[T]], task_group: Callable[[], TaskGroup]
    ) -> None:
        self._run = run
        self._task_group = task_group
        self._started = False
        self._done = False
        self._result: T | None = None
        self._error: Exception | None = None
        self._latest: UploadProgress | None = None
        self._changed = anyio.Event()
        self._finished = anyio.Event()
        self._scope = anyio.CancelScope()

    def __repr__(self) -> str:
        if not self._started or self._done:
            state = "done" if self._done else "new"
        elif self._error is not None:
            state = "failed"
        else:
            state = (
                "cancelled" if self._finished.is_set() or self._scope.cancel_called else "running"
            )
        return f"<Upload {state} progress={self._latest!r}>"

    @property
    def result(self) -> T:
        """What the upload returned; :class:`AvatarError` until it has finished."""
        if self._done:
            return cast(T, self._result)  # T may be None itself
        if self._error is not None:
            raise AvatarError(f"the upload failed: {self._error}") from self._error
        if self._finished.is_set() or self._scope.cancel_called:
            raise AvatarError(self._cancelled())
        raise AvatarError("the upload has not finished")

    @property
    def progress(self) -> UploadProgress | None:
        """The latest progress reported (None before the first)."""
        return self._latest

    def _report(self, progress: UploadProgress) -> None:
        self._latest = progress
        self._changed.set()

    def __await__(self) -> Generator[Any, None, T]:
        return self._outcome().__await__()

    async def _outcome(self) -> T:
        if self._started:  # iterated, or awaited elsewhere: wait for that run's outcome
            await self._finished.wait()
            if self._error is not None:
                raise self._error
            if not self._done:
                raise AvatarError(self._cancelled())
            return cast(T, self._result)
        self._started = True
        try:
            result = await self._run(self._report)
        except Exception as exc:
            self._error = exc
            raise
        finally:
            self._finished.set()
            self._changed.set()
        self._result, self._done = result, True
        return result

    def _cancelled(self) -> str:
        if self._scope.cancel_called:
            return "the upload was cancelled: its progress loop was left early"
        return "the upload was cancelled before it finished"

    async def _background(self) -> None:
        try:
            with self._scope:
                self._result = await self._run(self._report)
                self._done = True
        except Exception as exc:  # re-raised in the iterating task, never in the owner's group
            self._error = exc
        finally:
            self._finished.set()
            self._changed.set()

    def __aiter__(self) -> AsyncIterator[UploadProgress]:
        if self._started:
            raise AvatarError("an upload runs once: await it for the outcome of its run")
        task_group = self._task_group()  # raises when the owner is not open
        self._started = True
        task_group.start_soon(self._background)
        return _Progress(self)

    def _abandon(self) -> None:
        if not self._finished.is_set():
            with contextlib.suppress(RuntimeError):  # no event loop any more: nothing runs
                self._scope.cancel()


class _Progress:
    """One iteration of an :class:`Upload`'s progress; dropping it cancels the upload."""

    __slots__ = ("_seen", "_upload")

    def __init__(self, upload: Upload[Any]) -> None:
        self._upload = upload
        self._seen: UploadProgress | None = None

    def __aiter__(self) -> _Progress:
        return self

    async def __anext__(self) -> UploadProgress:
        upload = self._upload
        while True:
            latest = upload._latest
            if latest is not None and latest is not self._seen:
                self._seen = latest
                return latest
            if upload._finished.is_set():
                if upload._error is not None:
                    raise upload._error
                if not upload._done:
                    raise AvatarError(upload._cancelled())
                raise StopAsyncIteration
            changed = upload._changed = anyio.Event()
            await changed.wait()

    async def aclose(self) -> None:
        """Cancel the upload if it still runs (for ``contextlib.aclosing``)."""
        self._upload._abandon()

    def __del__(self) -> None:
        self._upload._abandon()
