"""Strict JSON request bodies for the emulator's HTTP services.

Each service answers a bad body in its own envelope and words; what was wrong
(which field, which value, which rule) is found here, once.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

import msgspec

from avatarkit._schema_errors import field_problem, value_at

__all__ = ["BodyProblem", "decode_body"]

T = TypeVar("T")
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_any_json: Final = msgspec.json.Decoder()


class BodyProblem(Exception):
    """A body that is not JSON (``path is None``), not an object (``path == ""``), or whose
    field ``path`` breaks ``rule`` (``value`` as sent; None when the field is missing)."""

    def __init__(self, path: str | None, value: Any, rule: str, *, missing: bool = False) -> None:
        super().__init__(rule)
        self.path = path
        self.value = value
        self.rule = rule
        self.missing = missing


def decode_body(body: bytes, kind: type[T]) -> T:
    """``body`` decoded strictly as ``kind`` (unknown fields are ignored), or BodyProblem."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        value: T = decoder.decode(body)
    except msgspec.ValidationError as exc:
        problem = field_problem(str(exc))
        if problem.missing or not problem.path:
            raise BodyProblem(problem.path, None, problem.rule, missing=problem.missing) from None
        raise BodyProblem(
            problem.path, value_at(_any_json.decode(body), problem.path), problem.rule
        ) from None
    except msgspec.DecodeError as exc:
        raise BodyProblem(None, None, f"body is not JSON ({exc})") from None
    return value
