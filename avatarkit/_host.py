"""A task group in a task of its own, so its owner can be opened and closed in different tasks.

Jupyter runs each cell as its own task: a task group entered in one cell cannot
be left in the next ("Attempted to exit cancel scope in a different task").
The session and the emulator therefore keep their task groups here: the group
lives in a host task that they start and always stop, so nothing outlives
them, and ``open()`` and ``aclose()`` may run in any task of the loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["TaskHost"]


class TaskHost:
    """Start with :meth:`start`, end with :meth:`stop`; :attr:`group` in between."""

    def __init__(self) -> None:
        self._group: TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = anyio.Event()

    @property
    def group(self) -> TaskGroup | None:
        """The running task group (``None`` before :meth:`start` and after :meth:`stop`)."""
        return self._group

    async def start(self) -> TaskGroup:
        if self._task is not None:
            raise RuntimeError("a TaskHost starts once")
        ready = anyio.Event()

        async def host() -> None:
            try:
                async with anyio.create_task_group() as group:
                    self._group = group
                    ready.set()
                    await self._stop.wait()
            finally:
                self._group = None
                ready.set()  # never leave start() waiting

        # The one task not started from a task group: it is the group's home, and
        # stop() (which every owner's close path calls) cancels and awaits it.
        self._task = asyncio.get_running_loop().create_task(host())
        try:
            await ready.wait()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop(cancel=True)
            raise
        if self._group is None:  # the host ended before its group ran: report why
            await self.stop(cancel=True)
            raise RuntimeError("the task host ended before it started")
        return self._group

    async def stop(self, *, cancel: bool) -> None:
        """End the group (cancelling its tasks when ``cancel``) and wait for it; idempotent.

        Re-raises what the group's tasks raised.  Waits shielded: a caller
        cancelled meanwhile still leaves nothing running.
        """
        task = self._task
        if task is None:
            return
        if cancel and self._group is not None:
            self._group.cancel_scope.cancel()
        self._stop.set()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
