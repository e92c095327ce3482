"""The wire format of ``POST /api/v1/invoke`` (doc 002), as msgspec Structs.

``payload`` is itself a JSON *string*; ``data`` is standard base64, which
msgspec emits and parses for ``bytes`` fields directly, so a request body is
encoded in one pass without a separate base64 copy.
"""

from __future__ import annotations

from typing import Final

import msgspec

from avatarkit._schema_errors import JSON_DECODE_ERRORS
from avatarkit.errors import AuthenticationError, ProtocolError, ServiceError
from avatarkit.voice.rules import NAMESPACE, SUCCESS_CODES, AudioFormat

__all__ = [
    "AudioConfig",
    "ConvertPayload",
    "InvokeRequest",
    "InvokeResponse",
    "QueryInvokeRequest",
    "check_response",
    "decode_response",
    "encode",
]


class AudioConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``payload.audio_config``: the output's encoding."""

    format: AudioFormat = "wav"
    sample_rate: int = 24000
    channel: int = 1


class ConvertPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``payload`` JSON of a VoiceConversion request."""

    speaker: str
    url: str | msgspec.UnsetType = msgspec.UNSET
    enable_background: bool = False
    audio_config: AudioConfig = AudioConfig()


class InvokeRequest(msgspec.Struct, frozen=True):
    """The documented body: credentials in the body."""

    appkey: str
    token: str
    payload: str
    data: bytes = b""
    namespace: str = NAMESPACE


class QueryInvokeRequest(msgspec.Struct, frozen=True):
    """The body of the Go demo's form: credentials and namespace in the query string."""

    payload: str
    data: bytes = b""


class InvokeResponse(msgspec.Struct, frozen=True):
    task_id: str = ""
    namespace: str = ""
    data: bytes = b""
    payload: str | None = None
    status_code: int | None = None
    status_text: str = ""


_encoder: Final = msgspec.json.Encoder()
_response: Final = msgspec.json.Decoder(InvokeResponse)


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def decode_response(body: bytes) -> InvokeResponse:
    """Raises ``msgspec.DecodeError`` (incl. ``ValidationError``) when it is not one."""
    return _response.decode(body)


def check_response(body: bytes, *, status: int) -> InvokeResponse:
    """The response of a successful call, or the error it carries.

    Errors keep the HTTP status, ``status_code`` (as ``code``) and
    ``status_text`` (as the message).  A 200 whose ``status_code`` is not a
    success code is an error too.  5xx and 429 are retryable.
    """
    retryable = status >= 500 or status == 429
    try:
        response = decode_response(body)
    except JSON_DECODE_ERRORS:
        if status != 200:
            raise ServiceError(
                f"http_{status}", "voice conversion failed", status=status, retryable=retryable
            ) from None
        raise ProtocolError("voice conversion: response is not a SAMI response", body) from None
    if status == 200 and response.status_code in SUCCESS_CODES:
        if not response.data:
            raise ProtocolError("voice conversion: the response carries no audio", body[:200])
        return response
    if status == 200 and response.status_code is None:
        raise ProtocolError("voice conversion: response without status_code", body[:200])
    error = AuthenticationError if status in (401, 403) else ServiceError
    raise error(
        response.status_code if response.status_code is not None else f"http_{status}",
        response.status_text or "voice conversion failed",
        status=status,
        retryable=retryable,
        request_id=response.task_id or None,
    )
