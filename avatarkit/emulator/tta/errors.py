"""What the emulator's TTA service refuses, as exceptions its API turns into ``|MSG|00|``."""

from __future__ import annotations

from typing import Any

__all__ = ["ChatRejected", "Dropped", "InvalidParameter"]

_MAX_SHOWN = 60  # characters of a refused value quoted back: enough to recognise it


def shown(value: Any) -> str:
    """A refused value as the answer quotes it: ``repr``, clipped."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


class InvalidParameter(Exception):
    """MSG code 1001 (doc 001 §2.2.1.1 参数无效): names the field, the value and the rule.

    ``secret=True`` leaves the value out of the message (rtc tokens, RTMP stream keys).
    """

    def __init__(self, field: str, value: Any, rule: str, *, secret: bool = False) -> None:
        self.field = field
        self.rule = rule
        self.message = f"{field}: {rule}" if secret else f"{field}={shown(value)}: {rule}"
        super().__init__(self.message)


class ChatRejected(Exception):
    """A chat (``|CTL|02|``) or audio frame the service answers with 1001, type 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Dropped(Exception):
    """Fault injection: the connection is to fail now (as on a server crash)."""
