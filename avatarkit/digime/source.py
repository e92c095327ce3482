"""What an upload reads from: a file as is, or a folder archived (tar) on the fly.

Sources are read by (offset, length), from any thread, so a retried part is
rebuilt from the source rather than from a consumed stream.  A folder becomes
an uncompressed tar whose layout is computed up front (headers, file ranges,
padding): its size is exact before the first byte is read and no copy of the
archive is ever made, in memory or on disk.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from avatarkit.errors import ValidationError

__all__ = ["AUDIO_EXTENSIONS", "FileSource", "Source", "TarFolderSource", "open_source"]

AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".pcm", ".m4a", ".aac", ".flac", ".ogg", ".opus"})
# tarfile is imported where a folder is packed; its constants are checked in the tests.
_BLOCK = 512  # tarfile.BLOCKSIZE
_RECORD = 10240  # tarfile.RECORDSIZE: tar pads the archive to whole records
_SAMPLES = 16
_SAMPLE_BYTES = 4096


class Source(Protocol):
    """Random-access bytes to upload."""

    path: Path
    size: int
    suffix: str

    def fingerprint(self) -> str: ...

    def read(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


def _readable(path: Path, field: str) -> os.stat_result:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValidationError(field, str(path), "does not exist") from None
    except OSError as exc:
        raise ValidationError(field, str(path), f"cannot be read: {exc.strerror}") from None
    if not os.access(path, os.R_OK):
        raise ValidationError(field, str(path), "is not readable")
    return info


class FileSource:
    """A regular file, read with ``pread`` (thread-safe, no shared position)."""

    def __init__(self, path: Path) -> None:
        info = _readable(path, "path")
        if not stat.S_ISREG(info.st_mode):
            raise ValidationError("path", str(path), "must be a regular file or a folder")
        if info.st_size == 0:
            raise ValidationError("path", str(path), "is empty: nothing to upload")
        self.path = path
        self.size = info.st_size
        self.suffix = path.suffix.lower().lstrip(".")
        self._mtime_ns = info.st_mtime_ns
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise ValidationError("path", str(path), f"cannot be read: {exc.strerror}") from None

    def fingerprint(self) -> str:
        """Size, mtime and a hash of 16 spread samples: cheap, and changes when the file does."""
        digest = hashlib.blake2b(f"{self.size}:{self._mtime_ns}".encode(), digest_size=16)
        step = max(1, self.size // _SAMPLES)
        for i in range(_SAMPLES):
            digest.update(os.pread(self._fd, _SAMPLE_BYTES, min(i * step, self.size - 1)))
        digest.update(os.pread(self._fd, _SAMPLE_BYTES, max(0, self.size - _SAMPLE_BYTES)))
        return digest.hexdigest()

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise ValidationError("path", str(self.path), "changed size while uploading")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True, slots=True)
class _Segment:
    offset: int  # in the archive
    length: int
    data: bytes | None = None  # header or padding bytes
    path: Path | None = None  # or a member's file


class TarFolderSource:
    """The audio files of a folder as an uncompressed tar, produced on demand."""

    suffix = "tar"

    def __init__(self, folder: Path) -> None:
        _readable(folder, "path")
        files = sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_EXTENSIONS
        )
        if not files:
            raise ValidationError(
                "path",
                str(folder),
                f"holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})",
            )
        import tarfile  # only a folder upload builds tar headers

        self.path = folder
        self._segments: list[_Segment] = []
        self._members: list[tuple[str, int, int]] = []
        offset = 0
        for file in files:
            info = _readable(file, "path")
            name = file.relative_to(folder).as_posix()
            member = tarfile.TarInfo(name)
            member.size = info.st_size
            member.mtime = int(info.st_mtime)
            member.mode = 0o644
            header = member.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8")
            self._segments.append(_Segment(offset, len(header), data=header))
            offset += len(header)
            if info.st_size:
                self._segments.append(_Segment(offset, info.st_size, path=file))
                offset += info.st_size
            pad = -info.st_size % _BLOCK
            if pad:
                self._segments.append(_Segment(offset, pad, data=bytes(pad)))
                offset += pad
            self._members.append((name, info.st_size, info.st_mtime_ns))
        end = 2 * _BLOCK
        end += -(offset + end) % _RECORD
        self._segments.append(_Segment(offset, end, data=bytes(end)))
        self.size = offset + end

    @property
    def members(self) -> list[str]:
        return [name for name, _, _ in self._members]

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for name, size, mtime in self._members:
            digest.update(f"{name}\0{size}\0{mtime}\n".encode())
        return digest.hexdigest()

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        end = offset + length
        for seg in self._segments:
            if seg.offset + seg.length <= offset or seg.offset >= end:
                continue
            start = max(offset, seg.offset) - seg.offset
            stop = min(end, seg.offset + seg.length) - seg.offset
            if seg.data is not None:
                out += seg.data[start:stop]
            else:
                assert seg.path is not None
                with open(seg.path, "rb") as f:
                    f.seek(start)
                    chunk = f.read(stop - start)
                if len(chunk) != stop - start:
                    raise ValidationError("path", str(seg.path), "changed size while uploading")
                out += chunk
        return bytes(out)

    def close(self) -> None:
        pass


def open_source(path: str | os.PathLike[str]) -> Source:
    """A :class:`FileSource` for a file, a :class:`TarFolderSource` for a folder."""
    p = Path(path)
    if p.is_dir():
        return TarFolderSource(p)
    return FileSource(p)
