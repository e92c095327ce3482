"""The digime material review: uploaded media probed with PyAV (doc 000).

Each function answers ``None`` when the material passes, else a reason a
user can act on (what was found, what doc 000 asks for).  CPU- and
disk-bound: call them from a worker thread.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Final

import av

__all__ = ["review_training_video", "review_voice_archive"]

#: 制作分身: "训练视频:允许格式 1080p/4K mp4/mov".  Sizes as (long side, short
#: side), so that portrait footage (1080×1920) passes as well as landscape.
_SIZES: Final = {(1920, 1080): "1080p", (3840, 2160): "4K", (4096, 2160): "4K"}
_WANTED: Final = "1080p (1920x1080) or 4K (3840x2160 / 4096x2160), mp4 or mov"
#: The FFmpeg demuxer that reads mp4 and mov names itself after both.
_MP4_MOV: Final = ("mp4", "mov")
#: A member larger than this is probed by its start only (enough for wav/mp3/flac;
#: an m4a with its index at the end would need more).
_PROBE_BYTES: Final = 32 * 1024 * 1024


def review_training_video(path: Path) -> str | None:
    """Why the training video at ``path`` fails review (None: it passes)."""
    try:
        container: Any = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        return f"the training video is not a readable video ({exc}); doc 000 asks for {_WANTED}"
    with container:
        formats = set(container.format.name.split(","))
        if not formats & set(_MP4_MOV):
            return (
                f"the training video's container is {container.format.name}; "
                f"doc 000 asks for {_WANTED}"
            )
        if not container.streams.video:
            return f"the training video has no video stream; doc 000 asks for {_WANTED}"
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        size = _SIZES.get((max(width, height), min(width, height)))
        if size is None:
            return f"the training video is {width}x{height}; doc 000 asks for {_WANTED}"
        try:
            frame = next(container.decode(stream), None)
        except av.FFmpegError:
            frame = None
        if frame is None:
            return f"the training video ({width}x{height}) has no decodable frame"
    return None


def _is_hidden(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _members(path: Path, suffix: str) -> Iterator[tuple[str, bytes]]:
    """``(name, first bytes)`` of each regular file; raises ValueError when unreadable."""
    if suffix == "zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"not a readable zip archive ({exc})") from None
        with archive:
            for info in archive.infolist():
                if info.is_dir() or _is_hidden(info.filename):
                    continue
                try:
                    with archive.open(info) as f:
                        yield info.filename, f.read(_PROBE_BYTES)
                except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                    raise ValueError(f"{info.filename}: cannot be read ({exc})") from None
        return
    try:
        tar = tarfile.open(path)  # noqa: SIM115 (closed by the with below; plain or compressed)
    except (tarfile.TarError, OSError):
        raise ValueError("not a readable tar archive") from None
    with tar:
        for member in tar:
            if not member.isfile() or _is_hidden(member.name):
                continue
            extracted = tar.extractfile(member)
            if extracted is not None:
                yield member.name, extracted.read(_PROBE_BYTES)


def _audio_problem(data: bytes) -> str | None:
    try:
        container: Any = av.open(io.BytesIO(data), "r")
    except av.FFmpegError as exc:
        return f"not audio FFmpeg can read ({exc})"
    with container:
        if not container.streams.audio:
            return "no audio stream"
        try:
            if next(container.decode(container.streams.audio[0]), None) is None:
                return "no decodable audio"
        except av.FFmpegError as exc:
            return f"audio that does not decode ({exc})"
    return None


def review_voice_archive(path: Path, suffix: str) -> str | None:
    """Why the voice-clone archive at ``path`` (``zip``/``tar``) fails review (None: passes).

    制作音色 step 1: "多条音频文件放到一个文件夹下压缩,格式要求zip或者tar".
    """
    found = 0
    try:
        for name, head in _members(path, suffix):
            problem = _audio_problem(head)
            if problem is not None:
                return (
                    f"the voice archive's file {name!r} is {problem}; doc 000 asks for audio "
                    f"files in one folder, archived as zip or tar"
                )
            found += 1
    except ValueError as exc:
        return f"the voice archive is {exc}; doc 000 asks for audio files archived as zip or tar"
    if found == 0:
        return "the voice archive holds no audio file; doc 000 asks for audio files in one folder"
    return None
