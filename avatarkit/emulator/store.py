"""What every emulator service's state shares: a temp directory, background work."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

__all__ = ["ServiceStore"]


class ServiceStore:
    """A service's files (a temp directory made on first use, removed at shutdown) and the
    task group that owns its background work while the app runs."""

    prefix = "avatarkit-"

    def __init__(self) -> None:
        self.task_group: TaskGroup | None = None
        self._dir: Path | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None

    @property
    def directory(self) -> Path:
        """The temporary directory of this service's files, made on first use."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=self.prefix))
            # Also removed if the app is dropped without a clean shutdown.
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        return self._dir

    def close(self) -> None:
        """Remove the files."""
        if self._cleanup is not None:
            self._cleanup()
        self._dir = None
        self._cleanup = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Owns the background work (timers, callbacks) while the app runs."""
        try:
            async with anyio.create_task_group() as tg:
                self.task_group = tg
                try:
                    yield
                finally:
                    self.task_group = None
                    tg.cancel_scope.cancel()
        finally:
            self.close()
