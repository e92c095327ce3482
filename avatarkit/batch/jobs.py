"""Batch jobs: one JSON object per line of a ``.jsonl`` file, checked before anything runs.

::

    {"id": "welcome-0001", "role": "GuoXiaoyuan", "text": "张三，你好！", "output": "zhangsan.mp4"}
    {"id": "welcome-0002", "role": "XiaoHuan", "ssml": "<speak>…</speak>",
     "config": {"video": {"video_width": 720}}}

(one line each in the file)

``config`` holds session-config fields as ``tta.open(**fields)`` takes them
(``codec``, ``video``, ``role_conf``, ``background``…).  A batch produces files,
so ``rtc``, ``rtmp`` and ``output_url`` are refused; subtitles are on unless
``config.video.subtitle_control`` is false.  Every rule is checked when the
file is read, each error naming the line and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import msgspec

from avatarkit.errors import ValidationError

__all__ = ["BatchJob", "load_jobs", "parse_jobs"]

_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NAME: Final = re.compile(r"[^/\\\x00]{1,200}")
#: Session-config fields a batch cannot use (it writes files, it streams to nobody).
_NOT_IN_A_BATCH: Final = ("rtc", "rtmp", "output_url")


class BatchJob(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One video to make.

    Attributes:
        id: The job's name in the manifest: letters, digits, ``.``, ``_``, ``-``
            (at most 128, starting with a letter or digit); unique in the batch.
        role: The avatar (a catalog role or your trained digime's conf_name).
        text: What it says, as plain text.  Exactly one of ``text`` and ``ssml``.
        ssml: What it says, as a ``<speak>`` document (checked as ``say()`` checks it).
        config: Session-config fields, as ``tta.open(**fields)`` takes them.
        output: The video's file name in the output folder (default ``{id}.{codec}``);
            the subtitles go beside it as ``.srt``.
    """

    id: str
    role: str
    text: str | None = None
    ssml: str | None = None
    config: dict[str, Any] = {}
    output: str | None = None

    @property
    def codec(self) -> str:
        """The container: ``config["codec"]``, ``mp4`` by default."""
        return str(self.config.get("codec") or "mp4")

    @property
    def output_name(self) -> str:
        """The video's file name (``output``, or ``{id}.{codec}``)."""
        return self.output or f"{self.id}.{self.codec}"

    @property
    def subtitles(self) -> bool:
        """Whether the session asks for subtitles (and an ``.srt`` is written)."""
        video = self.config.get("video") or {}
        return bool(video.get("subtitle_control", True)) if isinstance(video, dict) else True

    @property
    def srt_name(self) -> str:
        """The subtitles' file name, beside the video."""
        return str(Path(self.output_name).with_suffix(".srt"))

    def open_fields(self) -> dict[str, Any]:
        """The session-config fields to open the stream with (subtitles on by default).

        Raises nothing (the fields were checked when the job was read).
        """
        fields = {**self.config, "codec": self.codec}
        video = dict(fields.get("video") or {})
        video.setdefault("subtitle_control", True)
        fields["video"] = video
        return fields


def _check(job: BatchJob, where: str) -> None:
    from avatarkit.tta.config import make_config  # the one place for the config's rules

    def fail(field: str, value: object, rule: str) -> ValidationError:
        return ValidationError(f"{where}: {field}", value, rule)

    if not _ID.fullmatch(job.id):
        rule = "must be 1-128 of A-Z a-z 0-9 . _ - (starting with a letter or digit)"
        raise fail("id", job.id, rule)
    if (job.text is None) == (job.ssml is None):
        raise fail("text", job.text, "give exactly one of text and ssml")
    body = job.text if job.text is not None else job.ssml
    if not isinstance(body, str) or not body.strip():
        raise fail("text" if job.text is not None else "ssml", body, "must not be empty")
    if job.ssml is not None and not job.ssml.lstrip().startswith("<speak"):
        raise fail("ssml", job.ssml[:40], "must be a <speak> document")
    for name in _NOT_IN_A_BATCH:
        if job.config.get(name):
            raise fail(f"config.{name}", job.config[name], "a batch writes files: no rtc/rtmp/url")
    name = job.output_name
    if not _NAME.fullmatch(name) or name in (".", "..") or name.startswith("."):
        raise fail("output", name, "must be a plain file name (no folders, not hidden)")
    if Path(name).suffix.lower() != f".{job.codec}":
        raise fail("output", name, f"must end in .{job.codec} (the codec)")
    try:
        make_config(job.role, **job.open_fields())
    except ValidationError as exc:
        raise fail(f"config.{exc.field}", exc.value, exc.rule) from None
    if job.ssml is not None:
        from avatarkit.tta import ssml

        try:
            ssml.validate(job.ssml, role=job.role)
        except ValidationError as exc:
            raise fail(f"ssml: {exc.field}", exc.value, exc.rule) from None


def parse_jobs(lines: Iterable[str], *, source: str = "jobs") -> list[BatchJob]:
    """The jobs of JSON lines (blank lines and ``#`` comments skipped), all checked.

    Raises:
        ValidationError: a line is not a job object, breaks a rule, or repeats an
            ``id`` or an ``output`` (the error names ``source:line`` and the field).
    """
    jobs: list[BatchJob] = []
    ids: dict[str, int] = {}
    outputs: dict[str, int] = {}
    decoder = msgspec.json.Decoder(BatchJob)
    for number, line in enumerate(lines, 1):
        where = f"{source}:{number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            job = decoder.decode(line)
        except msgspec.ValidationError as exc:
            raise ValidationError(where, line.strip()[:80], f"not a job: {exc}") from None
        except msgspec.DecodeError as exc:
            raise ValidationError(where, line.strip()[:80], f"not JSON: {exc}") from None
        _check(job, where)
        for seen, key, field in ((ids, job.id, "id"), (outputs, job.output_name.lower(), "output")):
            if key in seen:
                raise ValidationError(
                    f"{where}: {field}", key, f"repeats line {seen[key]}: each must be unique"
                )
            seen[key] = number
        jobs.append(job)
    return jobs


def load_jobs(path: str | os.PathLike[str]) -> list[BatchJob]:
    """The jobs of a ``.jsonl`` file, all checked (see :func:`parse_jobs`).

    Raises:
        ValidationError: the file cannot be read, or a line breaks a rule.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ValidationError("jobs", str(path), f"cannot be read: {exc}") from None
    return parse_jobs(text.splitlines(), source=Path(path).name)
