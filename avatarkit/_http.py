"""The one HTTP boundary: httpx's exceptions become avatarkit errors here, and only here.

Like httpx's own ``map_httpcore_exceptions``, every request runs inside
:func:`http_errors`, which turns transport failures, bad URLs and undecodable
bodies into the :mod:`avatarkit.errors` tree:

=========================================== ==========================================
raised inside                               raised out
=========================================== ==========================================
ConnectError, ReadError, WriteError,        :class:`~avatarkit.errors.ConnectionLost`
CloseError, RemoteProtocolError,
LocalProtocolError, ProxyError, OSError
ConnectTimeout, ReadTimeout, WriteTimeout,  :class:`~avatarkit.errors.TimeoutError`
PoolTimeout, builtin TimeoutError
UnsupportedProtocol, InvalidURL             :class:`~avatarkit.errors.ValidationError` for a
                                            URL the user gave (``url_field``), else
                                            :class:`~avatarkit.errors.ProtocolError`
DecodingError, TooManyRedirects,            :class:`~avatarkit.errors.ProtocolError`
StreamError, CookieConflict, msgspec
DecodeError, RecursionError, UnicodeError
HTTPStatusError                             :class:`~avatarkit.errors.ServiceError`
=========================================== ==========================================

Messages name the operation, the redacted URL, the exception type and the
reason; the httpx exception is not chained, because its request holds the
full URL (presigned query strings are credentials).  :func:`is_transient` is
the one rule for what is worth retrying, and :func:`retrying` the one way
HTTP calls are retried.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import socket
import ssl
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

import httpx
import msgspec

from avatarkit._redact import our_call, redact_url, scrub
from avatarkit._retry import RetryPolicy, retry
from avatarkit.errors import (
    AvatarError,
    ConnectionLost,
    ProtocolError,
    ServiceError,
    TimeoutError,
    ValidationError,
)

__all__ = [
    "Failure",
    "describe",
    "failure_of",
    "http_errors",
    "is_transient",
    "map_http_error",
    "retrying",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Failure:
    """What an error raised by :func:`http_errors` came from.

    ``reason`` is a few words ("connection refused"), ``cause`` the original
    exception's type name; ``transient`` whether trying again may help;
    ``outcome_unknown`` whether the request may have reached the server
    before the failure (a single-use URL must then not simply be reused).
    """

    reason: str
    cause: str
    transient: bool
    outcome_unknown: bool


# The mapped errors are the public classes themselves (no private subclasses),
# so what the boundary knows about their origin is kept beside them.
_failures: weakref.WeakKeyDictionary[BaseException, Failure] = weakref.WeakKeyDictionary()


def failure_of(exc: BaseException) -> Failure | None:
    """The origin of an error :func:`http_errors` raised (``None`` for any other error)."""
    return _failures.get(exc)


# Failures that happen before the request can have left this machine.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
    UnicodeEncodeError,
)


_ERRNO_REASONS: Final = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection broken",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ENETDOWN: "network down",
}


def _root_os_error(exc: BaseException) -> OSError | None:
    """The OSError at the bottom of httpx's and httpcore's cause chains, if any."""
    found: OSError | None = None
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:  # the chains are short; a cycle must not hang us
        if isinstance(current, OSError):
            found = current
        current = current.__cause__ or current.__context__
        seen += 1
    return found


def _os_reason(exc: BaseException, default: str) -> str:
    root = _root_os_error(exc)
    if isinstance(root, socket.gaierror):
        return "host name not found"
    if isinstance(root, ssl.SSLError):
        return "TLS handshake failed"
    if root is not None and root.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[root.errno]
    return default


def _classify(exc: BaseException) -> tuple[type[AvatarError], str, bool] | None:
    """(error class, reason, transient) for ``exc``, or None when it is not ours to map."""
    match exc:
        case httpx.ConnectTimeout():
            return TimeoutError, "timed out connecting", True
        case httpx.ReadTimeout():
            return TimeoutError, "timed out waiting for the response", True
        case httpx.WriteTimeout():
            return TimeoutError, "timed out sending the request", True
        case httpx.PoolTimeout():
            return TimeoutError, "timed out waiting for a free connection", True
        case httpx.TimeoutException():
            return TimeoutError, "timed out", True
        case httpx.ConnectError():
            return ConnectionLost, _os_reason(exc, "could not connect"), True
        case httpx.ReadError():
            reason = _os_reason(exc, "connection broken")
            return ConnectionLost, f"{reason} while reading the response", True
        case httpx.WriteError():
            reason = _os_reason(exc, "connection broken")
            return ConnectionLost, f"{reason} while sending the request", True
        case httpx.CloseError():
            return ConnectionLost, "the connection failed while closing", True
        case httpx.RemoteProtocolError():
            if "disconnected" in str(exc):
                return ConnectionLost, "the server closed the connection without answering", True
            return ConnectionLost, "the server broke the HTTP protocol", True
        case httpx.LocalProtocolError():
            # Our own request is not valid HTTP (e.g. a header value): trying again won't help.
            return ConnectionLost, "the request could not be sent as valid HTTP", False
        case httpx.ProxyError():
            return ConnectionLost, "the proxy refused or failed", True
        case httpx.UnsupportedProtocol() | httpx.InvalidURL():
            return ValidationError, "not a usable http:// or https:// URL", False
        case httpx.DecodingError():
            return ProtocolError, "the response body could not be decoded", False
        case httpx.TooManyRedirects():
            return ProtocolError, "too many redirects", False
        case httpx.StreamError():
            return ProtocolError, "the HTTP exchange ended in an unusable state", False
        case httpx.CookieConflict():
            return ProtocolError, "conflicting cookies in the response", False
        case httpx.TransportError() | httpx.HTTPError():
            return ConnectionLost, "the HTTP exchange failed", True
        case msgspec.DecodeError():
            return ProtocolError, "the response is not the expected JSON", False
        case RecursionError():
            return ProtocolError, "the response is nested too deeply to decode", False
        case UnicodeEncodeError():
            return ValidationError, "holds text HTTP headers cannot carry", False
        case UnicodeError():
            return ProtocolError, "the response is not valid text", False
        case builtins.TimeoutError():
            return TimeoutError, "timed out", True
        case OSError():
            return ConnectionLost, _os_reason(exc, "I/O error"), True
    return None


def _url_of(exc: BaseException, url: str | None) -> str | None:
    if url is not None:
        return url
    if isinstance(exc, httpx.RequestError):
        try:
            return str(exc.request.url)
        except RuntimeError:  # no request attached
            return None
    return None


def _detail(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, and of the OS error under it when that says more."""
    text = f"{type(exc).__name__}: {str(exc) or 'no detail'}"
    root = _root_os_error(exc)
    if root is not None and root is not exc:
        text += f"; {type(root).__name__}"
        if root.errno is not None:
            text += f" [Errno {root.errno}] {root.strerror}"
    return scrub(text)


def map_http_error(
    exc: BaseException, *, what: str, url: str | None = None, url_field: str | None = None
) -> AvatarError | None:
    """The avatarkit error for ``exc`` raised while doing ``what`` (``None``: not an HTTP error).

    ``url_field`` names the setting the URL came from (``"endpoints.digime"``):
    a bad URL is then the user's :class:`ValidationError`; without it the URL
    came from the service and a bad one is a :class:`ProtocolError`.
    """
    if isinstance(exc, AvatarError):
        return exc
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        retryable = status >= 500 or status == 429
        error: AvatarError = ServiceError(
            f"http_{status}", what, status=status, retryable=retryable
        )
        _failures[error] = Failure(f"HTTP {status}", "HTTPStatusError", retryable, False)
        return error
    found = _classify(exc)
    if found is None:
        return None
    cls, reason, transient = found
    where = _url_of(exc, url)
    shown = redact_url(where) if where else None
    detail = _detail(exc)
    # The URL goes last: scrub() masks a query value up to the next space.
    at = f" at {shown}" if shown else ""
    if cls is ValidationError:
        if isinstance(exc, UnicodeEncodeError):
            error = ValidationError("request", what, f"{reason} ({detail})")
        elif url_field is not None:
            error = ValidationError(url_field, shown, f"{reason} ({detail})")
        else:
            error = ProtocolError(f"{what}: the URL the service gave is {reason} ({detail}){at}")
    else:
        error = cls(f"{what}: {reason} ({detail}){at}")
    _failures[error] = Failure(
        reason=reason,
        cause=type(exc).__name__,
        transient=transient,
        outcome_unknown=not isinstance(exc, _NOT_SENT),
    )
    return error


@contextlib.contextmanager
def http_errors(
    what: str, url: str | None = None, *, url_field: str | None = None
) -> Iterator[None]:
    """Run an HTTP exchange (request, and reading and decoding its answer) for ``what``;
    whatever fails in it comes out as an :class:`~avatarkit.errors.AvatarError`.

    AvatarErrors raised inside (a ServiceError built from the answer…) pass unchanged.
    """
    try:
        with our_call():  # httpx's log lines for this exchange are scrubbed
            yield
    except AvatarError:
        raise
    except Exception as exc:
        error = map_http_error(exc, what=what, url=url, url_field=url_field)
        if error is None:
            raise
        raise error from None  # not chained: the httpx exception holds the full URL


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may succeed: connection failures, timeouts, and service
    errors marked retryable (5xx, 429, busy); never input, auth or protocol errors."""
    failure = _failures.get(exc)
    if failure is not None:
        return failure.transient
    if isinstance(exc, ServiceError):
        return exc.retryable
    if isinstance(exc, ConnectionLost | TimeoutError):
        return True
    if isinstance(exc, AvatarError):
        return False
    if isinstance(exc, httpx.HTTPError | OSError):  # not mapped yet: classify it the same way
        found = _classify(exc)
        return found is not None and found[2]
    return False


def describe(exc: BaseException) -> str:
    """A short, redacted reason for ``exc`` ("connection refused", "HTTP 503 [50300] busy")."""
    failure = _failures.get(exc)
    if failure is not None:
        return failure.reason
    if isinstance(exc, ServiceError):
        status = f"HTTP {exc.status} " if exc.status is not None else ""
        return f"{status}[{exc.code}] {exc.service_message}"
    return scrub(str(exc)) or type(exc).__name__


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    what: str,
    retry_on: Callable[[Exception], bool] = is_transient,
) -> T:
    """:func:`avatarkit._retry.retry` with the HTTP rule (:func:`is_transient`) and reasons."""
    return await retry(operation, policy=policy, retry_on=retry_on, what=what, describe=describe)
