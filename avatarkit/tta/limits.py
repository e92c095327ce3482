"""How long a TTA stream waits, and how much it holds.

One :class:`StreamLimits` per session (``AvatarSession(stream_limits=...)``);
``session.tta.open(idle_timeout=...)`` and the other keywords override a field
for one stream.

Memory: a stream holds at most ``buffer_bytes`` of received payload in its
queue plus the frame being parsed when reading paused, so its worst case is
``max_frame_bytes + buffer_bytes`` (plus the connection's read buffer, at most 256 KiB).

Time: every wait on a stream ends within a stated bound when the service
goes quiet —

* ``open``: ``open_timeout`` for the connection, handshake and open reply;
* ``say``/``drive_audio``/``events`` while an utterance is under way:
  ``idle_timeout`` between two frames;
* ``finish``: ``idle_timeout`` plus the duration of the speech received so
  far (doc 001 §4: production takes about 0.7× the video's length, after
  the close);
* sends, and ``events()`` between utterances: a dead or non-reading peer is
  noticed by the keepalive within ``ping_interval + ping_timeout``;
* closing: ``close_timeout``.
"""

from __future__ import annotations

import math
from typing import Final, TypedDict, Unpack

import msgspec

from avatarkit.errors import ValidationError

__all__ = ["LimitChanges", "StreamLimits"]

_MIB: Final = 1024 * 1024


class LimitChanges(TypedDict, total=False):
    """:class:`StreamLimits`' fields, as keywords of :meth:`StreamLimits.replace`."""

    queue_size: int
    buffer_bytes: int
    max_frame_bytes: int
    open_timeout: float
    close_timeout: float
    idle_timeout: float
    ping_interval: float | None
    ping_timeout: float | None


class StreamLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds of a TTA stream, in events, bytes and seconds (see the module docstring).

    Raises:
        ValidationError: a size is not an integer >= 1, or a timeout is not a finite number
            of seconds > 0 (``ping_interval`` and ``ping_timeout`` may also be ``None``).
    """

    queue_size: int = 64
    """Events buffered before reading pauses."""
    buffer_bytes: int = 16 * _MIB
    """Payload bytes buffered before reading pauses."""
    max_frame_bytes: int = 64 * _MIB
    """The largest message accepted from the service (a bigger one is a ProtocolError)."""
    open_timeout: float = 15.0
    """Seconds allowed for ``open``: first the connection with its WebSocket handshake,
    then the service's open reply, each within this (past it,
    :class:`~avatarkit.errors.TimeoutError`)."""
    close_timeout: float = 5.0
    """Seconds allowed for the closing handshake; past it the socket is dropped."""
    idle_timeout: float = 30.0
    """The longest silence allowed while an utterance or the production is under way."""
    ping_interval: float | None = 5.0
    """Keepalive: a ping this often (None: no keepalive)."""
    ping_timeout: float | None = 5.0
    """Keepalive: its pong must arrive within this (None: never wait for it)."""

    def __post_init__(self) -> None:
        for name in ("queue_size", "buffer_bytes", "max_frame_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(name, value, "must be an integer >= 1")
        for name in ("open_timeout", "close_timeout", "idle_timeout"):
            _check_seconds(name, getattr(self, name), optional=False)
        for name in ("ping_interval", "ping_timeout"):
            _check_seconds(name, getattr(self, name), optional=True)

    def replace(self, **changes: Unpack[LimitChanges]) -> StreamLimits:
        """A copy with ``changes``; the new values are checked like the constructor's.

        Raises:
            ValidationError: a name is not a field of :class:`StreamLimits`, or a value
                breaks its rule (sizes: an integer >= 1; timeouts: a finite number of
                seconds > 0, ``ping_interval``/``ping_timeout`` also ``None``).
        """
        given: dict[str, object] = dict(changes)  # untyped callers may pass anything
        unknown = sorted(set(given) - set(self.__struct_fields__))
        if unknown:
            known = ", ".join(self.__struct_fields__)
            raise ValidationError(unknown[0], given[unknown[0]], f"not a stream limit ({known})")
        return msgspec.structs.replace(self, **changes)


def _check_seconds(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        rule = "must be a finite number of seconds > 0" + (", or None" if optional else "")
        raise ValidationError(name, value, rule)
