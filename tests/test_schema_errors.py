"""Reading msgspec's validation messages (shared by the SDK's and the emulator's errors)."""

from __future__ import annotations

import msgspec
import pytest

from avatarkit._schema_errors import FieldProblem, field_problem, value_at


class Inner(msgspec.Struct):
    width: int


class Outer(msgspec.Struct):
    video: Inner
    tags: list[str] = []


def problem(data: bytes) -> FieldProblem:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(data, type=Outer)
    return field_problem(str(info.value))


def test_wrong_type_names_the_nested_field() -> None:
    got = problem(b'{"video": {"width": "x"}}')
    assert (got.path, got.missing, got.unknown) == ("video.width", False, False)
    assert got.rule == "Expected `int`, got `str`"


def test_missing_and_list_fields() -> None:
    assert problem(b'{"video": {}}')[:3] == (
        "video.width",
        "Object missing required field `width`",
        True,
    )
    assert problem(b'{"video": {"width": 1}, "tags": ["a", 2]}').path == "tags[1]"
    assert problem(b"[]").path == ""


def test_unknown_fields() -> None:
    class Strict(msgspec.Struct, forbid_unknown_fields=True):
        a: int = 0

    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(b'{"b": 1}', type=Strict)
    assert field_problem(str(info.value))[::3] == ("b", True)


def test_value_at() -> None:
    doc = {"video": {"width": 7}, "tags": ["a", "b"]}
    assert value_at(doc, "video.width") == 7
    assert value_at(doc, "tags[1]") == "b"
    assert value_at(doc, "tags[5]") is None
    assert value_at(doc, "video.height") is None
    assert value_at(Outer(Inner(3)), "video.width") == 3
    assert value_at(doc, "") == doc


def test_bytes_that_are_not_utf8_are_worded_and_caught_as_json_errors() -> None:
    # msgspec before 0.23 raises UnicodeDecodeError here (0.23: DecodeError); the CI
    # run at the declared floors exercises the older behaviour end to end.
    from avatarkit._schema_errors import JSON_DECODE_ERRORS, decode_failure

    error = UnicodeDecodeError("utf-8", b'{"a":"\xff"}', 6, 7, "invalid start byte")
    assert isinstance(error, JSON_DECODE_ERRORS)
    assert decode_failure(error) == "not valid UTF-8 (byte 0xff at offset 6)"
