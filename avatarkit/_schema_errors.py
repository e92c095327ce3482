"""Reading msgspec's validation messages: which field broke which rule.

msgspec says ``"Expected `int`, got `str` - at `$.video.video_width`"``; the SDK
and the emulator name fields in their errors, so this is parsed in one place.
Also here, for every module that turns foreign failures into avatarkit's own:
:func:`reportable` makes any value safe to put in an error, :func:`decode_failure`
words a failure of msgspec's JSON decoder and :func:`unicode_problem` finds the
lone surrogates that no UTF-8 encoder (msgspec's, websockets') accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import msgspec

from avatarkit._redact import short_repr

__all__ = [
    "JSON_DECODE_ERRORS",
    "FieldProblem",
    "decode_failure",
    "field_problem",
    "printable",
    "reportable",
    "unicode_problem",
    "value_at",
]

_MESSAGE: Final = re.compile(r"(?s)(?P<rule>.*?)(?: - at `\$(?P<path>[^`]*)`)?")
_MISSING: Final = re.compile(r"Object missing required field `(?P<name>[^`]*)`")
_UNKNOWN: Final = re.compile(r"Object contains unknown field `(?P<name>[^`]*)`")
_STEP: Final = re.compile(r"\.?(?P<key>[^.\[]+)|\[(?P<index>\d+)\]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


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


def reportable(value: Any) -> Any:
    """``value`` itself if its ``repr`` can be taken, else a short stand-in.

    Errors show their value with ``repr``, which raises for an int of more than
    4300 digits (``ValueError``) or a list nested 10**5 deep (``RecursionError``):
    the error meant for the user would become that one instead.
    """
    if value is None or isinstance(value, str | bytes | bool | float):
        return value  # repr of these always works
    try:
        short_repr(value)
    except Exception:  # also a user object whose __repr__ is broken
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<{type(value).__name__} that cannot be shown>"
    return value


#: What msgspec's JSON decoder raises on bad input: DecodeError (its ValidationError
#: included); RecursionError past ~1000 levels of nesting (it recurses per level);
#: UnicodeEncodeError for a ``str`` holding a lone surrogate; and, before msgspec
#: 0.23, UnicodeDecodeError for bytes that are not UTF-8 (0.23 raises DecodeError).
JSON_DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError, UnicodeError)


def decode_failure(exc: Exception) -> str:
    """Why msgspec's JSON decoder failed, in words (for RecursionError/UnicodeError too).

    msgspec recurses once per array/object level, Raw fields included, and
    stops at the interpreter's recursion limit (~1000 levels) with RecursionError;
    a ``str`` input holding a lone surrogate cannot be UTF-8 encoded.
    """
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeEncodeError) and isinstance(exc.object, str):
        return _surrogate_at(exc.object, exc.start)
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    return str(exc)


def _surrogate_at(text: str, index: int) -> str:
    return f"not valid Unicode text (lone surrogate U+{ord(text[index]):04X} at index {index})"


def printable(name: str) -> str:
    """``name`` (a field path built from user keys) with lone surrogates as ``\\udXXX``.

    Otherwise the error message could not be printed or logged to a UTF-8 stream.
    """
    if unicode_problem(name) is None:
        return name
    return name.encode("utf-8", "backslashreplace").decode()


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be UTF-8 encoded (a lone surrogate), or None when it can."""
    if text.isascii():  # the common case, without a regex scan
        return None
    bad = _SURROGATE.search(text)
    if bad is None:
        return None
    return "is " + _surrogate_at(text, bad.start())
