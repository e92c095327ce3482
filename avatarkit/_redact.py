"""Keeping secrets out of text: logs, reprs and exception messages.

Secrets reach text in two ways: as known values (the token a session was
given) and inside URLs (query strings of TTA URLs and presigned URLs).
Both are masked here, in one place.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# Query keys whose values are not secret and help when debugging.
_PUBLIC_QUERY_KEYS = frozenset({"appid"})

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_re: re.Pattern[str] | None = None

# `key=value` pairs inside a URL query that sits in free text.
_QUERY_IN_TEXT = re.compile(r"([?&])([^=&\s#\"'<>]+)=([^&\s#\"'<>]*)")


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`scrub` masks it wherever it appears."""
    global _secret_re
    if not value or len(value) < 4:  # too short to mask without mangling text
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def _mask_query(match: re.Match[str]) -> str:
    sep, key, value = match.group(1), match.group(2), match.group(3)
    if key.lower() in _PUBLIC_QUERY_KEYS or not value:
        return match.group(0)
    return f"{sep}{key}={MASK}"


def scrub(text: str) -> str:
    """Mask registered secrets and URL query values in ``text``."""
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "=" in text:
        text = _QUERY_IN_TEXT.sub(_mask_query, text)
    return text


def redact_url(url: str) -> str:
    """``url`` with every query value masked (``appid`` excepted), and any password.

    A string that is not a URL at all (``http://[``, from a hostile peer) is
    masked from its first ``?`` on, never raised about."""
    try:
        parts = urlsplit(url)
    except ValueError:
        head, sep, _ = url.partition("?")
        return head + (f"?{MASK}" if sep else "")
    if "@" in parts.netloc:  # user:password@host (a proxy URL): the user may show
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        parts = parts._replace(netloc=f"{user}{':' + MASK if colon else ''}@{hostport}")
        url = urlunsplit(parts)
    if not parts.query:
        return url
    pairs = []
    for pair in parts.query.split("&"):
        key, eq, value = pair.partition("=")
        masked = value if key.lower() in _PUBLIC_QUERY_KEYS or not value else MASK
        pairs.append(f"{key}{eq}{masked}")
    return urlunsplit(parts._replace(query="&".join(pairs)))


def short_repr(value: Any, limit: int = 80) -> str:
    """A short, scrubbed ``repr`` for error messages; never raises (a value whose
    ``repr`` fails, or is too deep or too big to print, gets a stand-in)."""
    try:
        text = repr(value)
    except Exception:  # RecursionError, ValueError (int too large to print), a broken __repr__
        text = f"<{type(value).__name__} object>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return scrub(text)


class SecretFilter(logging.Filter):
    """Logging filter that scrubs each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        clean = scrub(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


_FILTER = SecretFilter()


def protected_logger(name: str) -> logging.Logger:
    """A logger under ``name`` whose records are scrubbed before any handler sees them."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


# Set while one of the SDK's own HTTP exchanges runs (see our_call).
_IN_OUR_CALL: ContextVar[bool] = ContextVar("avatarkit_http_call", default=False)


class _OurCallsFilter(logging.Filter):
    """On httpx's and httpcore's loggers: scrubs the records the SDK's own calls cause
    (httpx logs full URLs at INFO, presigned ones included) and leaves every other
    record, the application's own requests, untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _FILTER.filter(record) if _IN_OUR_CALL.get() else True


_OUR_CALLS = _OurCallsFilter()
_LIBRARY_LOGGERS = ("httpx", "httpcore")


@contextmanager
def our_call() -> Iterator[None]:
    """Run one of the SDK's HTTP exchanges: what httpx logs inside is scrubbed.

    The filter goes on httpx's loggers at the first call, not at import.
    """
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _OUR_CALLS not in logger.filters:
            logger.addFilter(_OUR_CALLS)
    token = _IN_OUR_CALL.set(True)
    try:
        yield
    finally:
        _IN_OUR_CALL.reset(token)
