"""The batch's manifest: one JSON line per finished job, appended as each one ends.

It lives in the output folder (``manifest.jsonl``).  A line is written (and
fsync'd) only after the job's files are in place, so after a crash, even
``kill -9``, the manifest never claims a file that is not there; a line cut off
by the crash is ignored.  The latest line for an ``id`` wins: a rerun that
retries a failed job appends its new outcome.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from avatarkit.errors import ValidationError

__all__ = ["Manifest", "ManifestEntry"]

MANIFEST_NAME = "manifest.jsonl"


class ManifestEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the manifest records of one finished job.

    Attributes:
        id: The job's id.
        status: ``"done"`` (its files are in place) or ``"failed"``.
        output: The video's file name in the output folder (done jobs).
        subtitles: The ``.srt`` file name, when subtitles were asked for.
        sha256: The video file's SHA-256, hex.
        bytes: The video file's size.
        duration_s: The speech's duration, in seconds (the video is as long).
        attempts: Tries it took (busy refusals not counted).
        busy: Opens refused as busy (MSG 1002) before it ran.
        reason: Why it failed (failed jobs): the last error, without secrets.
        timings: Seconds spent: ``open``, ``speak``, ``finish``, ``write``, ``total``.
        finished_at: When it ended (ISO 8601, UTC).
        recovered: True when a rerun found its files complete and recorded them
            without producing them again (the run before was killed in between).
    """

    id: str
    status: Literal["done", "failed"]
    output: str | None = None
    subtitles: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    duration_s: float | None = None
    attempts: int = 0
    busy: int = 0
    reason: str | None = None
    timings: dict[str, float] = {}
    finished_at: str = ""
    recovered: bool = False


class Manifest:
    """The manifest file of an output folder: read once, then appended to."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / MANIFEST_NAME
        """The manifest file: ``manifest.jsonl`` in the output folder."""
        self.entries: dict[str, ManifestEntry] = {}
        """The latest entry of each job id (read by :meth:`load`, added by :meth:`append`)."""

    def load(self) -> dict[str, ManifestEntry]:
        """Read what earlier runs recorded (a torn last line is skipped).

        Raises:
            ValidationError: the manifest exists but cannot be read.
        """
        decoder = msgspec.json.Decoder(ManifestEntry)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self.entries
        except OSError as exc:
            raise ValidationError("manifest", str(self.path), f"cannot be read: {exc}") from None
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = decoder.decode(line)
            except msgspec.DecodeError:
                continue  # a line cut off by a crash: that job is simply not recorded
            self.entries[entry.id] = entry
        return self.entries

    def append(self, entry: ManifestEntry) -> None:
        """Record ``entry``: one line, flushed and fsync'd before this returns.

        Raises:
            ValidationError: the manifest cannot be written (the disk's error).
        """
        line = msgspec.json.encode(entry) + b"\n"
        try:
            # A torn line from a crash may lack its newline: start on a fresh line.
            with open(self.path, "ab") as out:
                if out.tell() > 0 and not self._ends_with_newline():
                    out.write(b"\n")
                out.write(line)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise ValidationError("manifest", str(self.path), f"cannot be written: {exc}") from None
        self.entries[entry.id] = entry

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
