"""The one exception hierarchy of avatarkit.

Every error the SDK raises derives from :class:`AvatarError`.  Messages never
contain secrets: values are passed through :func:`avatarkit._redact.scrub`
before they are formatted.
"""

from __future__ import annotations

import builtins

from avatarkit._redact import scrub, short_repr

__all__ = [
    "AuthenticationError",
    "AvatarError",
    "ConnectionLost",
    "ProtocolError",
    "ServiceError",
    "StreamClosed",
    "TimeoutError",
    "TrainingFailed",
    "ValidationError",
]


class AvatarError(Exception):
    """Base class of every avatarkit error."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ValidationError(AvatarError, ValueError):
    """Input broke a documented rule; raised before any network call.

    ``field`` is a dotted path (``video.video_width``), ``value`` the offending
    value and ``rule`` the rule in words.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}={short_repr(value)}: {rule}")


class ServiceError(AvatarError):
    """The service answered with an error.

    ``code`` is the service's own code (a TTA MSG code such as 1001, a digime
    ``errno``, a MetaStudio ``error_code``…), ``retryable`` says whether trying
    again later may succeed.
    """

    def __init__(
        self,
        code: int | str,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code
        self.service_message = scrub(message)
        self.retryable = retryable
        self.status = status
        self.request_id = request_id
        parts = [f"[{code}] {message}"]
        if status is not None:
            parts.append(f"(HTTP {status})")
        if request_id:
            parts.append(f"request_id={request_id}")
        super().__init__(" ".join(parts))


class AuthenticationError(ServiceError):
    """Credentials were refused (bad appid/token, signature, …).

    ``credential`` names what was refused and where it comes from, e.g.
    ``"token (AVATARKIT_TOKEN)"``; the message then starts with it.  Never the
    credential's value.
    """

    def __init__(
        self,
        code: int | str,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        request_id: str | None = None,
        credential: str | None = None,
    ) -> None:
        self.credential = credential
        super().__init__(code, message, retryable=retryable, status=status, request_id=request_id)
        if credential:
            self.args = (scrub(f"{credential} was refused: {self.args[0]}"),)


class ProtocolError(AvatarError):
    """The peer sent something the protocol does not allow.

    ``excerpt`` is a short, redacted excerpt of the offending input.
    """

    def __init__(self, reason: str, data: str | bytes | bytearray | memoryview = b"") -> None:
        self.reason = reason
        self.excerpt = short_repr(bytes(data[:48]) if not isinstance(data, str) else data[:48])
        super().__init__(f"{reason}: {self.excerpt}" if len(data) else reason)


class ConnectionLost(AvatarError):
    """The connection dropped while work was in progress."""


class StreamClosed(AvatarError):
    """The stream (or its session) was closed while something still waited on it."""


class TimeoutError(AvatarError, builtins.TimeoutError):
    """An operation did not finish in the time allowed."""


class TrainingFailed(AvatarError):
    """Training ended in failure (digime state 3, a MetaStudio ``*_FAILED`` state…).

    ``info`` is the service's last word on the job.
    """

    def __init__(self, name: str, info: object) -> None:
        self.name = name
        self.info = info
        super().__init__(f"training of {name!r} failed")
