"""Atomic file output: write next to the target under a temp name, rename at the end."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from avatarkit.errors import ValidationError

__all__ = ["Partial", "Sink", "disk_errors"]


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """The one boundary for the disk: an ``OSError`` becomes a :class:`ValidationError`
    naming the file and the reason (no such directory, no permission, a full disk)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ValidationError("path", str(path), f"cannot be written: {reason}") from exc


class Partial:
    """The ``.{name}.partial`` temp file beside ``path`` (same directory: the rename is atomic)."""

    __slots__ = ("path", "temp")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.temp = self.path.with_name(f".{self.path.name}.partial")
        # Checked now: PyAV opens its output lazily, and a long recording should not
        # find out at its end that it had nowhere to go.
        if not self.path.parent.is_dir():
            raise ValidationError("path", str(self.path), "cannot be written: no such directory")

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
