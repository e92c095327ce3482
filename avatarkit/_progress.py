"""Progress of long transfers, shared by every kind of upload."""

from __future__ import annotations

import msgspec

__all__ = ["UploadProgress"]


class UploadProgress(msgspec.Struct, frozen=True):
    """Bytes the service acknowledged so far; never goes backwards, even on a retry."""

    acked_bytes: int
    total_bytes: int
    part: int  # parts acknowledged
    parts: int

    @property
    def fraction(self) -> float:
        return self.acked_bytes / self.total_bytes if self.total_bytes else 1.0
