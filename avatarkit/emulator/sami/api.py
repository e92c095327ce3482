"""The SAMI service's HTTP API (doc 002, SPEC §3): ``POST /api/v1/invoke``.

Success (响应格式): HTTP 200, ``{task_id, namespace, data, payload,
status_code, status_text}``, ``payload`` a JSON string of the emulator's own
(``speaker``, ``duration_ms``, ``format``, ``sample_rate``, ``channel``,
``enable_background``).  Errors: the same shape without ``data``/``payload``
(codes in :mod:`.errors`); rules in :mod:`.models`.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from avatarkit._schema_errors import field_problem
from avatarkit.emulator._service import ALL_METHODS, BodyProblem, ServiceApi, ServiceError
from avatarkit.emulator.routes import SAMI_PATH
from avatarkit.emulator.sami import errors as E
from avatarkit.emulator.sami.audio import convert_audio, fetch, too_large
from avatarkit.emulator.sami.errors import CODES, SamiError
from avatarkit.emulator.sami.models import (
    MAX_INPUT_BYTES,
    NAMESPACE,
    SPEAKERS,
    VERSION,
    EnvelopeBody,
    PayloadBody,
    check_audio_config,
    check_url,
)
from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Collection

    from avatarkit.emulator.state import EmulatorState

__all__ = ["SamiApi", "sami_routes"]


class SamiApi(ServiceApi):
    name: ClassVar[str] = "sami"
    codes = CODES
    invalid_prefix: ClassVar[str] = "IllegalRequest:InvalidBody "
    # Base64 of the largest input plus room for the rest of the envelope; a body
    # beyond it is drained unstored and refused.
    max_body: ClassVar[int | None] = (MAX_INPUT_BYTES + 2) // 3 * 4 + 64 * 1024

    def error_body(self, error: ServiceError, request: Request | None) -> bytes:
        scope_state = request.state if request is not None else None
        return msgspec.json.encode(
            {
                "task_id": getattr(scope_state, "task_id", "") or uuid.uuid4().hex,
                "namespace": getattr(scope_state, "namespace", ""),
                "status_code": error.code,
                "status_text": error.message,
            }
        )

    async def check(self, request: Request, state: EmulatorState, body: bytes) -> None:
        request.state.task_id = uuid.uuid4().hex
        request.state.namespace = ""
        self.require_json(request)

    def body_error(self, problem: BodyProblem) -> ServiceError:
        if problem.path is None:
            return SamiError(400, E.INVALID_BODY, f"IllegalRequest:InvalidBody {problem.rule}")
        where = problem.path or "body"
        rule = "is required" if problem.missing else problem.rule
        hint = "" if problem.path else " (need a JSON object)"
        return SamiError(400, E.INVALID_BODY, f"IllegalRequest:InvalidBody {where}: {rule}{hint}")

    def method_error(self, method: str, allowed: Collection[str]) -> ServiceError:
        return SamiError(
            405, E.METHOD, f"MethodNotAllowed: {method} (use POST)", headers={"Allow": "POST"}
        )

    def too_large(self, size: int) -> ServiceError:
        return too_large(size // 4 * 3)


API = SamiApi()


def _decode_payload(text: str | None) -> PayloadBody:
    if not text:
        raise SamiError(
            400,
            E.INVALID_PAYLOAD,
            "IllegalPayload:InvalidPayload payload: is required (a JSON string)",
        )
    try:
        return msgspec.json.decode(text, type=PayloadBody)
    except msgspec.ValidationError as exc:
        problem = field_problem(str(exc))
        if problem.path == "speaker":
            raise SamiError(400, E.INVALID_SPEAKER, "IllegalPayload:InvalidSpeaker") from None
        if problem.missing:
            rule = "is required"
        elif problem.unknown:
            rule = "is not a documented field"
        else:
            rule = problem.rule
        if not problem.path or problem.unknown:
            where = f"payload.{problem.path}" if problem.path else "payload"
            raise SamiError(
                400, E.INVALID_PAYLOAD, f"IllegalPayload:InvalidPayload {where}: {rule}"
            ) from None
        raise SamiError(
            400, E.INVALID_PARAM, f"IllegalPayload:InvalidParam {problem.path}: {rule}"
        ) from None
    except msgspec.DecodeError as exc:
        raise SamiError(
            400,
            E.INVALID_PAYLOAD,
            f"IllegalPayload:InvalidPayload payload: is not a JSON object string ({exc})",
        ) from None


def _check_payload(payload: PayloadBody) -> tuple[str, int, int, str | None]:
    """``(format, sample_rate, channel, url)`` of a payload that keeps doc 002's rules."""
    if payload.speaker not in SPEAKERS:
        raise SamiError(400, E.INVALID_SPEAKER, "IllegalPayload:InvalidSpeaker")
    try:
        fmt, rate, channel = check_audio_config(payload.audio_config)
    except ValidationError as exc:
        raise SamiError(400, E.INVALID_PARAM, f"IllegalPayload:InvalidParam {exc}") from None
    url = payload.url or None  # "" is no URL (SPEC §6)
    if url is not None:
        try:
            check_url(url)
        except ValidationError as exc:
            raise SamiError(400, E.INVALID_URL, f"IllegalPayload:InvalidUrl {exc}") from None
    return fmt, rate, channel, url


def _same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _authorize(request: Request, state: EmulatorState, envelope: EnvelopeBody) -> None:
    """Credentials from the body when it has any, else from the query string (with version)."""
    options = state.options
    appkey_expected = options.sami_appkey or options.appid
    token_expected = options.sami_token or options.token
    query = request.query_params
    if envelope.appkey is not None or envelope.token is not None:
        appkey, token = envelope.appkey, envelope.token
    else:
        appkey, token = query.get("appkey"), query.get("token")
        if appkey is not None or token is not None:
            version = query.get("version")
            if version != VERSION:
                problem = ValidationError(
                    "version", version, f"must be {VERSION} with credentials in the query"
                )
                raise SamiError(400, E.INVALID_VERSION, f"IllegalRequest:InvalidVersion {problem}")
    # Never echo a token: neither the one given nor the expected one.
    if not _same(appkey, appkey_expected):
        why = "missing" if appkey is None else "unknown appkey"
        raise SamiError(401, E.INVALID_APPKEY, f"Unauthorized:InvalidAppkey appkey: {why}")
    if not _same(token, token_expected):
        why = "missing" if token is None else "invalid token"
        raise SamiError(401, E.INVALID_TOKEN, f"Unauthorized:InvalidToken token: {why}")


def _namespace(request: Request, envelope: EnvelopeBody) -> str:
    in_query = request.query_params.get("namespace")
    if envelope.namespace is not None and in_query is not None and envelope.namespace != in_query:
        raise SamiError(
            400,
            E.INVALID_NAMESPACE,
            f"IllegalRequest:InvalidNamespace namespace={envelope.namespace!r} in the body "
            f"but {in_query!r} in the query",
        )
    namespace = envelope.namespace if envelope.namespace is not None else in_query
    if namespace != NAMESPACE:
        problem = ValidationError("namespace", namespace, f"must be {NAMESPACE}")
        raise SamiError(400, E.INVALID_NAMESPACE, f"IllegalRequest:InvalidNamespace {problem}")
    return namespace


def _decode_data(text: str) -> bytes:
    if len(text) > (MAX_INPUT_BYTES + 2) // 3 * 4:
        raise too_large(len(text) // 4 * 3)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        problem = ValidationError(
            "data", text[:16], "is not standard base64 (RFC 4648 alphabet, padded, no whitespace)"
        )
        raise SamiError(400, E.INVALID_BASE64, f"IllegalData:InvalidBase64 {problem}") from None


async def _invoke(request: Request, state: EmulatorState, body: bytes) -> Response:
    envelope = API.decode(body, EnvelopeBody)
    if isinstance(envelope.namespace, str):
        request.state.namespace = envelope.namespace
    _authorize(request, state, envelope)
    namespace = request.state.namespace = _namespace(request, envelope)
    payload = _decode_payload(envelope.payload)
    fmt, rate, channel, url = _check_payload(payload)
    if envelope.data:
        audio = _decode_data(envelope.data)
    elif url is not None:
        audio = await fetch(url)
    else:
        raise SamiError(
            400, E.EMPTY_AUDIO, "IllegalData:EmptyAudio data: is empty and payload.url is not set"
        )
    if not audio:
        raise SamiError(400, E.EMPTY_AUDIO, "IllegalData:EmptyAudio the audio is empty")
    if len(audio) > MAX_INPUT_BYTES:
        raise too_large(len(audio))
    output, seconds = await anyio.to_thread.run_sync(
        lambda: convert_audio(
            audio, speaker=payload.speaker, format=fmt, sample_rate=rate, channel=channel
        )
    )
    result: dict[str, Any] = {
        "speaker": payload.speaker,
        "duration_ms": math.floor(seconds * 1000),
        "format": fmt,
        "sample_rate": rate,
        "channel": channel,
        "enable_background": payload.enable_background,
    }
    return API.json(
        {
            "task_id": request.state.task_id,
            "namespace": namespace,
            "data": base64.b64encode(output).decode("ascii"),
            "payload": msgspec.json.encode(result).decode(),
            "status_code": E.SUCCESS_CODE,
            "status_text": "OK",
        }
    )


def sami_routes() -> list[BaseRoute]:
    return [Route(SAMI_PATH, API.endpoint({"POST": _invoke}), methods=ALL_METHODS)]
