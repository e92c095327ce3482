"""Atomic file output: write next to the target under a temp name, rename at the end."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["Partial", "Sink"]


class Partial:
    """The ``.{name}.partial`` temp file beside ``path`` (same directory: the rename is atomic)."""

    __slots__ = ("path", "temp")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.temp = self.path.with_name(f".{self.path.name}.partial")

    def commit(self) -> Path:
        """Move the finished temp file over the target."""
        os.replace(self.temp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temp file if it exists."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


class Sink:
    """A writer used as a context manager: ``close()`` on success, ``abort()`` on error."""

    def close(self) -> object:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
