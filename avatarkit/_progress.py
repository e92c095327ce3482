"""Progress of long transfers, shared by every kind of upload."""

from __future__ import annotations

import msgspec

__all__ = ["UploadProgress"]


class UploadProgress(msgspec.Struct, frozen=True, kw_only=True):
    """How far an upload is, reported at least once per MiB sent.

    Both counts only grow, even when a part is retried (a resent byte is not
    counted twice), except when the service refuses to resume an interrupted
    digime upload and it starts over from zero.

    Attributes:
        sent_bytes: File bytes handed to the network so far (the acknowledged
            ones plus those of parts on their way).
        acked_bytes: File bytes of the parts the service has acknowledged:
            what an interrupted upload keeps.
        total_bytes: The file's size (a folder's: its archive's).
        part: Parts acknowledged so far.
        parts: Parts in all.
    """

    sent_bytes: int
    acked_bytes: int
    total_bytes: int
    part: int
    parts: int

    @property
    def fraction(self) -> float:
        """``sent_bytes / total_bytes``, from 0.0 to 1.0 (1.0 for an empty file)."""
        return self.sent_bytes / self.total_bytes if self.total_bytes else 1.0
