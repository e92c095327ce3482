"""AK/SK request signing for Huawei Cloud APIs (``SDK-HMAC-SHA256``, SPEC §4.2).

Pure functions: no I/O, no clock unless ``now`` is left out.

The algorithm, as Huawei's core SDK computes it (``huaweicloudsdkcore``,
``signer/signer.py``, class ``Signer``):

1. If the header ``Content-Type`` is set and does not start with
   ``application/json`` or ``application/bson``, add
   ``X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD``.
2. Add ``X-Sdk-Date`` (UTC, ``%Y%m%dT%H%M%SZ``) unless present, and ``Host``
   (the URL's ``host[:port]`` exactly as written) unless present.
3. SignedHeaders: every header name lower-cased, names containing ``_``
   skipped, sorted, joined with ``;``.
4. CanonicalRequest = ``METHOD\\nURI\\nQUERY\\nHEADERS\\nSIGNEDHEADERS\\nPAYLOADHASH``
   (:func:`canonical_request`), where URI is :func:`canonical_uri`, QUERY
   :func:`canonical_query`, HEADERS :func:`canonical_headers` and PAYLOADHASH
   :func:`payload_hash`.
5. StringToSign = ``SDK-HMAC-SHA256\\n<X-Sdk-Date>\\n<sha256hex(CanonicalRequest)>``.
6. Signature = ``hex(HMAC-SHA256(SK, StringToSign))``.
7. ``Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<...>, Signature=<...>``.

Details copied from the reference on purpose (tests/test_signer.py checks them
against it on generated requests):

* the path is percent-*decoded* (``%2F`` becomes a separator), split on
  ``/``, each segment re-encoded with only ``~`` kept (UTF-8), and a ``/``
  appended unless the result already ends with one;
* query pairs are sorted on their *decoded* (key, value), then encoded the
  same way; repeated keys give repeated pairs; a ``bool`` scalar is
  lower-cased but list items are ``str()``-ed as they are (so ``[True]``
  gives ``True``), exactly like the reference;
* the ``Content-Type`` test of step 1 looks the header up by that exact
  spelling and tests the raw value with ``startswith`` (case-sensitive): a
  header spelled ``content-type`` leaves the payload hashed, which is still
  a valid signature;
* every header value is ``str.strip()``-ed, in the canonical headers and in
  the headers returned; names that differ only in case are signed twice,
  with the value of the last one;
* no body or an empty body hashes as the empty string even when
  ``X-Sdk-Content-Sha256`` is set; otherwise a non-blank
  ``X-Sdk-Content-Sha256`` (any case, first one) is used instead of the
  body's hash;
* an ``X-Sdk-Date`` already in the headers is used instead of ``now``.

Where this module differs from the reference: it takes the request's URL and
parses the query from it (``+`` is a literal plus, not a space, and a pair
without ``=`` has the empty value), an empty path signs as ``/`` (the
reference fails), and headers that already carry ``Authorization`` are
refused (the reference would sign the old value into the new signature).

:func:`verify` is the server side, for the emulator.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

from avatarkit._redact import redact_url
from avatarkit.errors import AuthenticationError, ValidationError

__all__ = [
    "ALGORITHM",
    "EMPTY_HASH",
    "UNSIGNED_PAYLOAD",
    "SignatureError",
    "authorization_value",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "parse_authorization",
    "parse_query",
    "payload_hash",
    "sign",
    "signature",
    "signed_headers",
    "string_to_sign",
    "verify",
]

ALGORITHM: Final = "SDK-HMAC-SHA256"
DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
EMPTY_HASH: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"

HEADER_DATE: Final = "X-Sdk-Date"
HEADER_HOST: Final = "Host"
HEADER_AUTHORIZATION: Final = "Authorization"
HEADER_CONTENT_SHA256: Final = "X-Sdk-Content-Sha256"

_DATE_RE: Final = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE_RE: Final = re.compile(r"[0-9a-f]{64}")
_AUTH_RE: Final = re.compile(r"(?P<algorithm>\S+) +(?P<params>.*)", re.DOTALL)
_AUTH_FIELDS: Final = frozenset({"Access", "SignedHeaders", "Signature"})

QueryScalar = str | int | float | bool
QueryValue = QueryScalar | list[Any]


class SignatureError(AuthenticationError):
    """An AK/SK signature was refused (HTTP 401, ``APIGW.0301``).

    ``reason`` says why in a few words; neither it nor the message ever holds
    the SK or a full signature.
    """

    CODE: Final = "APIGW.0301"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            self.CODE,
            f"Incorrect IAM authentication information: {reason}",
            status=401,
        )


# --- canonical request --------------------------------------------------------------


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """The canonical URI of a (raw, possibly percent-encoded) path."""
    url_path = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    if not url_path.endswith("/"):
        url_path += "/"
    return url_path


def parse_query(query: str) -> list[tuple[str, str]]:
    """Decoded ``(key, value)`` pairs of a raw query string, in order.

    Empty pairs are skipped, a pair without ``=`` has the value ``""`` and
    ``+`` stays a plus (the reference never sends either form itself).
    """
    pairs: list[tuple[str, str]] = []
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query(params: Iterable[tuple[str, QueryValue]]) -> str:
    """The canonical query string of decoded ``(key, value)`` pairs.

    Values may be lists (each item becomes one pair) and bools (lower-cased),
    as in the reference's ``query_params``.
    """
    ordered: list[Any] = sorted(params)  # (key, value) tuples, as the reference sorts them
    out: list[str] = []
    for key, value in ordered:
        k = _encode(key)
        if isinstance(value, list):
            out.extend(f"{k}={_encode(str(item))}" for item in sorted(value))
        elif isinstance(value, bool):
            out.append(f"{k}={_encode(str(value).lower())}")
        else:
            out.append(f"{k}={_encode(str(value))}")
    return "&".join(out)


def signed_headers(headers: Iterable[str]) -> list[str]:
    """The SignedHeaders list: names lower-cased, ``_`` names skipped, sorted."""
    return sorted(name.lower() for name in headers if "_" not in name)


def canonical_headers(headers: Mapping[str, str], names: Sequence[str]) -> str:
    """``name:value`` lines (value stripped, each line ending in ``\\n``) for ``names``.

    Header names are matched case-insensitively (the last one wins); a name
    that is missing raises :class:`KeyError`.
    """
    by_name = {key.lower(): str(value).strip() for key, value in headers.items()}
    return "".join(f"{name}:{by_name[name.lower()]}\n" for name in names)


def payload_hash(body: bytes | None, content_sha256: str | None = None) -> str:
    """The payload line: empty hash for no body, else ``content_sha256`` if set, else sha256."""
    if not body:
        return EMPTY_HASH
    if content_sha256:
        return content_sha256
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers_block: str,
    names: Sequence[str],
    payload: str,
) -> str:
    """Join the six parts of the canonical request."""
    return f"{method.upper()}\n{uri}\n{query}\n{headers_block}\n{';'.join(names)}\n{payload}"


def string_to_sign(canonical: str, date: datetime) -> str:
    """``SDK-HMAC-SHA256\\n<date>\\n<sha256hex(canonical)>``."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date.strftime(DATE_FORMAT)}\n{digest}"


def signature(sk: str, to_sign: str) -> str:
    """Hex HMAC-SHA256 of ``to_sign`` under ``sk``."""
    return hmac.new(sk.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization_value(ak: str, names: Sequence[str], sig: str) -> str:
    """The ``Authorization`` header value."""
    return f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(names)}, Signature={sig}"


def parse_authorization(value: str) -> tuple[str, str, list[str], str]:
    """``(algorithm, access, signed_headers, signature)`` of an ``Authorization`` value.

    Raises :class:`SignatureError` if it is malformed.
    """
    match = _AUTH_RE.fullmatch(value.strip())
    if match is None:
        raise SignatureError("malformed Authorization")
    fields: dict[str, str] = {}
    for part in match["params"].split(","):
        key, eq, val = part.strip().partition("=")
        if not eq or key in fields:
            raise SignatureError("malformed Authorization")
        fields[key] = val.strip()
    if set(fields) != _AUTH_FIELDS:
        raise SignatureError("malformed Authorization")
    access, names, sig = fields["Access"], fields["SignedHeaders"], fields["Signature"]
    if not access or not names:
        raise SignatureError("malformed Authorization")
    if not _SIGNATURE_RE.fullmatch(sig):
        raise SignatureError("malformed Authorization: bad Signature")
    name_list = names.split(";")
    if any(not name for name in name_list):
        raise SignatureError("malformed Authorization: bad SignedHeaders")
    return match["algorithm"], access, name_list, sig


# --- helpers -----------------------------------------------------------------------


def _get_ignore_case(headers: Mapping[str, str], name: str) -> str | None:
    """The first header called ``name`` in any case (the reference's lookup)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _utc_naive(moment: datetime | None) -> datetime:
    if moment is None:
        moment = datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _split_url(url: str) -> tuple[str, str, str]:
    """``(host, path, query)`` of ``url``; the host keeps its port, drops any userinfo."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed "[" of an IPv6 host, say
        raise ValidationError("url", redact_url(url), f"cannot be parsed: {exc}") from None
    host = parts.netloc.rpartition("@")[2]
    return host, parts.path, parts.query


# --- sign / verify -----------------------------------------------------------------


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    ak: str,
    sk: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """The full header dict to send: ``headers`` plus the signing headers.

    ``url`` is the URL as it will be sent (query included). Headers that must
    be signed (``X-Project-Id``, ``X-App-UserId``…) must already be in
    ``headers``. Adds ``X-Sdk-Content-Sha256`` (non-JSON ``Content-Type``),
    ``X-Sdk-Date`` (from ``now``, default: the current UTC time) and ``Host``
    when missing, then ``Authorization``. Values come back stripped.

    An ``X-Sdk-Date`` already in ``headers`` is kept and signed, as the
    reference does: pass fresh headers to re-sign a retried request.

    Raises:
        ValidationError: ``ak`` or ``sk`` is empty (the SK is never shown); ``headers``
            already hold an ``Authorization``; their ``X-Sdk-Date`` is not
            ``YYYYMMDDTHHMMSSZ``; ``url`` has no host and ``headers`` no ``Host``;
            or ``url`` cannot be parsed at all (an unclosed ``[`` of an IPv6 host).
    """
    if not ak:
        raise ValidationError("ak", ak, "is required")
    if not sk:
        raise ValidationError("sk", "", "is required")
    host, path, query = _split_url(url)
    out = dict(headers)
    if _get_ignore_case(out, HEADER_AUTHORIZATION) is not None:
        raise ValidationError("headers", HEADER_AUTHORIZATION, "must not be present before signing")

    # 1. Exact spelling and a raw startswith, as the reference does.
    content_type = out.get("Content-Type")
    if (
        content_type
        and not content_type.startswith("application/json")
        and not content_type.startswith("application/bson")
    ):
        out[HEADER_CONTENT_SHA256] = UNSIGNED_PAYLOAD

    # 2. Date and host.
    given_date = _get_ignore_case(out, HEADER_DATE)
    if given_date is None:
        signed_at = _utc_naive(now).replace(microsecond=0)
        out[HEADER_DATE] = signed_at.strftime(DATE_FORMAT)
    else:
        try:
            signed_at = datetime.strptime(given_date, DATE_FORMAT)
        except ValueError:
            raise ValidationError("headers.X-Sdk-Date", given_date, DATE_FORMAT) from None
    if _get_ignore_case(out, HEADER_HOST) is None:
        if not host:
            raise ValidationError("url", url, "must be absolute (scheme://host/path)")
        out[HEADER_HOST] = host

    # 3-4. Canonical request over stripped values.
    out = {key: str(value).strip() for key, value in out.items()}
    names = signed_headers(out)
    content_sha256 = _get_ignore_case(out, HEADER_CONTENT_SHA256)
    if content_sha256 is not None:
        # The reference reads this value back after re-encoding every header
        # value as UTF-8 bytes seen as ISO-8859-1 (for `requests`); same for ASCII.
        content_sha256 = content_sha256.encode("utf-8").decode("iso-8859-1")
    canonical = canonical_request(
        method,
        canonical_uri(path),
        canonical_query(parse_query(query)),
        canonical_headers(out, names),
        names,
        payload_hash(body, content_sha256),
    )

    # 5-7.
    sig = signature(sk, string_to_sign(canonical, signed_at))
    out[HEADER_AUTHORIZATION] = authorization_value(ak, names, sig)
    return out


def verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    ak: str,
    sk: str,
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> None:
    """Check a signed request as a server would; raise :class:`SignatureError` if refused.

    ``url`` must carry the path and query exactly as received (raw, still
    percent-encoded: in ASGI, ``raw_path`` and ``query_string``); header names
    are matched case-insensitively. Only the headers named in SignedHeaders
    are signed, and ``host`` and ``x-sdk-date`` must be among them.
    ``X-Sdk-Content-Sha256`` counts only when signed, and then must be
    ``UNSIGNED-PAYLOAD`` or the body's sha256.
    """
    auth = _get_ignore_case(headers, HEADER_AUTHORIZATION)
    if auth is None or not auth.strip():
        raise SignatureError("missing Authorization")
    algorithm, access, names, given_sig = parse_authorization(auth)
    if algorithm != ALGORITHM:
        raise SignatureError("unsupported signing algorithm")
    if not hmac.compare_digest(access.encode("utf-8"), ak.encode("utf-8")):
        raise SignatureError("unknown access key")

    raw_date = _get_ignore_case(headers, HEADER_DATE)
    if raw_date is None:
        raise SignatureError("missing X-Sdk-Date")
    raw_date = raw_date.strip()
    try:
        if not _DATE_RE.fullmatch(raw_date):
            raise ValueError(raw_date)
        signed_at = datetime.strptime(raw_date, DATE_FORMAT)
    except ValueError:
        raise SignatureError("malformed X-Sdk-Date") from None
    current = _utc_naive(now)
    if signed_at < current - max_skew:
        raise SignatureError("stale X-Sdk-Date")
    if signed_at > current + max_skew:
        raise SignatureError("X-Sdk-Date in the future")

    lowered = {name.lower() for name in names}
    for required in ("host", "x-sdk-date"):
        if required not in lowered:
            raise SignatureError(f"SignedHeaders lacks {required}")
    present = {key.lower() for key in headers}
    for name in names:
        if name.lower() not in present:
            raise SignatureError(f"missing signed header {name!r}")

    content_sha256: str | None = None
    if "x-sdk-content-sha256" in lowered:
        content_sha256 = (_get_ignore_case(headers, HEADER_CONTENT_SHA256) or "").strip()
        if (
            body
            and content_sha256
            and content_sha256 != UNSIGNED_PAYLOAD
            and content_sha256 != hashlib.sha256(body).hexdigest()
        ):
            raise SignatureError("X-Sdk-Content-Sha256 does not match the body")

    _, path, query = _split_url(url)
    canonical = canonical_request(
        method,
        canonical_uri(path),
        canonical_query(parse_query(query)),
        canonical_headers(headers, names),
        names,
        payload_hash(body, content_sha256),
    )
    expected = signature(sk, string_to_sign(canonical, signed_at))
    if not hmac.compare_digest(expected.encode("ascii"), given_sig.encode("ascii")):
        raise SignatureError("signature mismatch")
