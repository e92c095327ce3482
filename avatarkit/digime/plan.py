"""Pure part planning for chunked uploads (SPEC §1.1)."""

from __future__ import annotations

from typing import NamedTuple

from avatarkit.digime.rules import DEFAULT_PART_SIZE, MIN_PART_SIZE
from avatarkit.errors import ValidationError

__all__ = ["Part", "plan_parts"]


class Part(NamedTuple):
    number: int  # 1-based
    offset: int
    length: int


def plan_parts(
    size: int, part_size: int = DEFAULT_PART_SIZE, min_part: int = MIN_PART_SIZE
) -> list[Part]:
    """Split ``size`` bytes into parts of ``part_size``.

    A last part shorter than ``min_part`` is merged into the one before it, so
    every part but a lone one is at least ``min_part`` long and the last is
    shorter than ``part_size + min_part``.  A file smaller than a part is one
    part; an empty file is refused.
    """
    if size <= 0:
        raise ValidationError("file", size, "is empty: nothing to upload")
    if min_part < 1 or part_size < min_part:
        raise ValidationError("part_size", part_size, f"must be at least min_part={min_part}")
    count, rest = divmod(size, part_size)
    lengths = [part_size] * count
    if rest:
        if lengths and rest < min_part:
            lengths[-1] += rest
        else:
            lengths.append(rest)
    parts: list[Part] = []
    offset = 0
    for number, length in enumerate(lengths, start=1):
        parts.append(Part(number, offset, length))
        offset += length
    return parts
