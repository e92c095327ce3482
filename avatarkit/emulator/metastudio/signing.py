"""The emulator's own check of ``SDK-HMAC-SHA256`` signatures (SPEC §4.2).

Written from SPEC §4.2 (Huawei's core SDK's signing, restated), independently
of the SDK's signer: a misreading on one side then shows as a refused request
instead of passing on both.  ``tests/test_emulator_metastudio.py`` checks it
against ``huaweicloudsdkcore``'s reference signer (requests the reference
signs pass; any change to them fails).

The server side of the steps:

1. ``Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>``
   (step 7) names the key, the signed headers and the signature;
2. ``X-Sdk-Date`` (``%Y%m%dT%H%M%SZ``, UTC, step 2) must be signed, as must
   ``Host``; a date more than :data:`MAX_SKEW` away from now is refused (a
   replay window; the value is ours, Huawei's gateway documents none);
3. the canonical request (step 4) is rebuilt from what arrived: the raw path
   (percent-decoded, each segment re-encoded keeping only ``~`` besides
   unreserved characters, a ``/`` appended), the raw query (pairs decoded,
   sorted, re-encoded; ``+`` is a plus, as the reference never sends a space
   as ``+``), the signed headers' values stripped, and the payload line:
   the empty-string hash for no body, else ``X-Sdk-Content-Sha256`` when it
   is signed (step 1: ``UNSIGNED-PAYLOAD`` for non-JSON bodies), else the
   body's sha256;
4. string to sign (step 5) and HMAC-SHA256 with the SK (step 6), compared in
   constant time.

Refusals raise :class:`SignatureRefused` whose ``reason`` never holds the SK
or a full signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, unquote

__all__ = ["MAX_SKEW", "SignatureRefused", "check_signature"]

ALGORITHM: Final = "SDK-HMAC-SHA256"
DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
MAX_SKEW: Final = timedelta(minutes=15)
_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_DATE: Final = re.compile(r"\d{8}T\d{6}Z")
_AUTH: Final = re.compile(
    r"SDK-HMAC-SHA256\s+Access=(?P<ak>[^,\s]+),\s*SignedHeaders=(?P<names>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*"
)


class SignatureRefused(Exception):
    """The request's AK/SK signature does not hold; ``reason`` says why, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _percent(text: str) -> str:
    return quote(text, safe="~")


def _uri(raw_path: str) -> str:
    path = "/".join(_percent(segment) for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def _query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    pairs.sort()
    return "&".join(f"{_percent(k)}={_percent(v)}" for k, v in pairs)


def check_signature(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    ak: str,
    sk: str,
    now: datetime | None = None,
) -> None:
    """Refuse (:class:`SignatureRefused`) unless the request was signed with ``ak``/``sk``.

    ``headers`` as received (names in any case); ``raw_path`` and ``raw_query``
    still percent-encoded, as on the wire.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    found = _AUTH.fullmatch(lowered.get("authorization", "").strip())
    if found is None:
        if lowered.get("authorization", "").strip().startswith(ALGORITHM):
            raise SignatureRefused("malformed Authorization")
        raise SignatureRefused(f"Authorization: not an {ALGORITHM} signature")
    if not hmac.compare_digest(found["ak"].encode(), ak.encode()):
        raise SignatureRefused("unknown access key")
    names = found["names"].split(";")
    if names != sorted(name.lower() for name in names) or "" in names:
        raise SignatureRefused("SignedHeaders must be lower-case and sorted (SPEC §4.2 step 3)")
    for required in ("host", "x-sdk-date"):
        if required not in names:
            raise SignatureRefused(f"SignedHeaders lacks {required}")
    missing = [name for name in names if name not in lowered]
    if missing:
        raise SignatureRefused(f"missing signed header {missing[0]!r}")

    stamp = lowered["x-sdk-date"].strip()
    if not _DATE.fullmatch(stamp):
        raise SignatureRefused("malformed X-Sdk-Date")
    try:
        signed_at = datetime.strptime(stamp, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRefused("malformed X-Sdk-Date") from None
    current = now or datetime.now(UTC)
    if signed_at < current - MAX_SKEW:
        raise SignatureRefused("stale X-Sdk-Date")
    if signed_at > current + MAX_SKEW:
        raise SignatureRefused("X-Sdk-Date in the future")

    if not body:
        payload = _EMPTY_SHA256
    elif "x-sdk-content-sha256" in names and lowered["x-sdk-content-sha256"].strip():
        payload = lowered["x-sdk-content-sha256"].strip()
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
            raise SignatureRefused("X-Sdk-Content-Sha256 does not match the body")
    else:
        payload = hashlib.sha256(body).hexdigest()

    canonical = "\n".join(
        [
            method.upper(),
            _uri(raw_path),
            _query(raw_query),
            "".join(f"{name}:{lowered[name].strip()}\n" for name in names),
            ";".join(names),
            payload,
        ]
    )
    to_sign = f"{ALGORITHM}\n{stamp}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, found["sig"].lower()):
        raise SignatureRefused("signature mismatch")
