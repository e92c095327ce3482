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
    """Base class of every avatarkit error; ``except AvatarError`` catches them all.

    Raised as itself for the SDK's local failures that fit no subclass: a media writer used
    after it was closed, PyAV missing for MP4, an emulator that is not running…  The
    message is scrubbed of registered secrets and URL query values when the error is made.
    """

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))

    @property
    def message(self) -> str:
        """The (scrubbed) message, as ``str(error)`` gives it; ``""`` if there is none."""
        return str(self.args[0]) if self.args else ""


class ValidationError(AvatarError, ValueError):
    """Input broke a documented rule; raised before any network call.

    Raised by every entry point that checks its input: the TTA session config and SSML
    rules, the digime, voice and MetaStudio field rules, the session's and clients' own
    options (a malformed endpoint URL names its setting, ``endpoints.digime``…), the
    media writers' arguments and the CLI's flags. Also a :class:`ValueError`. The message
    is ``field=<value>: rule``.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        """The input at fault, as a dotted path (``video.video_width``) or the option's
        name (``conf_name``, ``sample_rate``, ``endpoints.digime``)."""
        self.value = value
        """The offending value, as given; where the input is a secret (a token, an SK, a
        callback secret) the SDK passes ``"***"`` instead, never the value."""
        self.rule = rule
        """The rule broken, in words (``must be between 240 and 1920``)."""
        super().__init__(f"{field}={short_repr(value)}: {rule}")


class ServiceError(AvatarError):
    """The service answered with an error.

    Raised for a TTA ``|MSG|`` error (1001 at open naming the field, 1002 busy…), a
    refused WebSocket handshake, a digime ``errno`` envelope, a SAMI ``status_code``, a
    MetaStudio ``{error_code, error_msg}``, or any HTTP error status the SDK's calls get.
    The message is ``[code] message``, then ``(HTTP status)`` and ``request_id=…`` when
    known.
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
        """The service's own code: a TTA MSG code (``1001``), a digime ``errno``, a SAMI
        ``status_code`` (``40000022``), a MetaStudio ``error_code`` (a string), or the SDK's
        name for it when the service gave none (``"handshake_rejected"``, ``"http_503"``)."""
        self.service_message = scrub(message)
        """The service's message (``"IllegalPayload:InvalidSpeaker"``), some prefixed with
        what was being done; scrubbed of secrets and URL query values."""
        self.retryable = retryable
        """Whether trying again later may succeed: HTTP 5xx and 429, TTA busy (1002). The
        retry policies retry a :class:`ServiceError` only when this is true; input and
        auth errors never are."""
        self.status = status
        """The HTTP status, when the error came over HTTP or the WebSocket handshake;
        ``None`` for a TTA ``|MSG|`` error on an open stream."""
        self.request_id = request_id
        """The service's id for the request, where it gives one (MetaStudio's
        ``X-Request-Id``, SAMI's ``task_id``), for its support; else ``None``."""
        parts = [f"[{code}] {message}"]
        if status is not None:
            parts.append(f"(HTTP {status})")
        if request_id:
            parts.append(f"request_id={request_id}")
        super().__init__(" ".join(parts))


class AuthenticationError(ServiceError):
    """Credentials were refused (bad appid/token, signature, …).

    Raised for HTTP 401/403 from digime, SAMI and MetaStudio (and digime's
    unauthorized ``errno``), a TTA handshake refused with 401/403, and a proxy's 407.
    A :class:`ServiceError`, with its attributes; never retryable.
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
        """What was refused and where it comes from, never its value:
        ``"token (AVATARKIT_TOKEN)"``, ``"AK/SK (CLOUD_SDK_AK / CLOUD_SDK_SK)"``,
        ``"the proxy URL's user:password"``…; ``None`` when not known."""
        super().__init__(code, message, retryable=retryable, status=status, request_id=request_id)
        if credential:
            self.args = (scrub(f"{credential} was refused: {self.args[0]}"),)
            """The one-element message tuple, starting with ``credential`` (``"token
            (AVATARKIT_TOKEN) was refused: …"``); scrubbed."""


class ProtocolError(AvatarError):
    """The peer sent something the protocol does not allow.

    Raised for a malformed TTA frame (a bad header, undecodable JSON, text that is not
    UTF-8: the stream then ends with it), a bad WebSocket handshake, a frame over
    ``max_frame_bytes``, and an HTTP answer that is not the JSON expected. The message is
    ``reason: excerpt``.
    """

    def __init__(self, reason: str, data: str | bytes | bytearray | memoryview = b"") -> None:
        self.reason = reason
        """What was wrong, in the SDK's words (``"bad frame header (expected |XXX|NN|)"``)."""
        self.excerpt = short_repr(bytes(data[:48]) if not isinstance(data, str) else data[:48])
        """The ``repr`` of the offending input's first 48 bytes (or characters), at most
        80 characters, scrubbed of secrets and URL query values; ``"b''"`` when none was
        given."""
        super().__init__(f"{reason}: {self.excerpt}" if len(data) else reason)


class ConnectionLost(AvatarError):
    """The connection dropped while work was in progress.

    Raised when a TTA socket closes or resets mid-stream or during the handshake, a
    keepalive pong is missing after ``ping_timeout``, TLS verification fails (the
    reason named), a proxy refuses or breaks the tunnel, and when an HTTP call's
    connection is refused, reset or broken.
    """


class StreamClosed(AvatarError):
    """The stream (or its session) was closed while something still waited on it.

    Raised by a TTA stream used or awaited after :meth:`aclose` (its own, or its
    session's), and by a :class:`~avatarkit.digime.CallbackReceiver` closed while a
    ``wait`` or ``async for`` waited on it.
    """


class TimeoutError(AvatarError, builtins.TimeoutError):
    """An operation did not finish in the time allowed.

    Raised for a stream's ``open_timeout`` and ``idle_timeout`` (naming what was awaited),
    ``finish(timeout=…)``, an HTTP call's ``timeout``, and ``wait(timeout=…)`` on a
    training or job. Also the builtin :class:`TimeoutError`, so ``except TimeoutError``
    catches it either way.
    """


class TrainingFailed(AvatarError):
    """Training ended in failure (digime state 3, a MetaStudio ``*_FAILED`` state…).

    Raised by ``wait`` and ``run_training`` of :class:`~avatarkit.digime.DigimeClient` and
    :class:`~avatarkit.metastudio.MetaStudio`; for MetaStudio a note carries the review's
    reason (``Job.review_failure``). The message is ``training of 'name' failed``.
    """

    def __init__(self, name: str, info: object) -> None:
        self.name = name
        """The training's name: the digime ``conf_name``, or the MetaStudio ``job_id``."""
        self.info = info
        """The service's last word on it: a :class:`~avatarkit.digime.TrainingInfo`
        (digime) or a :class:`~avatarkit.metastudio.Job` (MetaStudio)."""
        super().__init__(f"training of {name!r} failed")
