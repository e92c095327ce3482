"""Reading msgspec's validation messages: which field broke which rule.

msgspec says ``"Expected `int`, got `str` - at `$.video.video_width`"``; the SDK
and the emulator name fields in their errors, so this is parsed in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import msgspec

__all__ = ["FieldProblem", "field_problem", "value_at"]

_MESSAGE: Final = re.compile(r"(?s)(?P<rule>.*?)(?: - at `\$(?P<path>[^`]*)`)?")
_MISSING: Final = re.compile(r"Object missing required field `(?P<name>[^`]*)`")
_UNKNOWN: Final = re.compile(r"Object contains unknown field `(?P<name>[^`]*)`")
_STEP: Final = re.compile(r"\.?(?P<key>[^.\[]+)|\[(?P<index>\d+)\]")


class FieldProblem(NamedTuple):
    path: str  # "video.video_width", "tags[1]"; "" for the document itself
    rule: str  # msgspec's own words
    missing: bool  # a required field is absent (``path`` names it)
    unknown: bool  # a field not in the schema is present (``path`` names it)


def field_problem(message: str) -> FieldProblem:
    """The field and rule of a msgspec validation message."""
    match = _MESSAGE.fullmatch(message)
    rule = match["rule"] if match else message
    path = ((match["path"] or "") if match else "").lstrip(".")
    for pattern, flag in ((_MISSING, "missing"), (_UNKNOWN, "unknown")):
        found = pattern.fullmatch(rule)
        if found:
            path = f"{path}.{found['name']}" if path else found["name"]
            return FieldProblem(path, rule, flag == "missing", flag == "unknown")
    return FieldProblem(path, rule, False, False)


def value_at(document: Any, path: str) -> Any:
    """The value at ``path`` inside decoded JSON, dicts or Structs; None if absent."""
    node = document
    for step in _STEP.finditer(path):
        key, index = step["key"], step["index"]
        if key is not None and isinstance(node, Mapping):
            node = node.get(key)
        elif key is not None and isinstance(node, msgspec.Struct):
            node = getattr(node, key, None)
        elif index is not None and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            return None
    return node
