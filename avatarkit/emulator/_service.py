"""What the emulator's HTTP services share: errors, strict bodies, content types, faults.

Modelled on moto's ``core/responses.py`` ``BaseResponse``: each service's
``api.py`` subclasses :class:`ServiceApi`, says how its envelope looks
(:meth:`ServiceApi.error_body`) and which codes it answers with
(:class:`Codes`), and gets, the same for every service:

- :meth:`ServiceApi.endpoint`: the request's whole body is read first, even
  when refusing (an unread upload makes the client see a reset instead of our
  answer); then the method is checked (405 with ``Allow``), then the
  service's :meth:`ServiceApi.check` (auth, content type), then the size cap,
  then the handler.  A :class:`ServiceError` anywhere becomes the service's
  error envelope; any other exception (an emulator bug) still answers in the
  service's shape, HTTP 500, and is logged;
- :func:`decode_body` / :meth:`ServiceApi.decode`: strict JSON decoding into a
  msgspec Struct, a bad body reported as :class:`BodyProblem` (which field,
  which value, which rule) and worded by :meth:`ServiceApi.body_error`;
- :meth:`ServiceApi.require_json`: ``Content-Type: application/json``;
- :meth:`ServiceApi.unknown_api`: the answer for a path under the service's
  prefix that is no operation;
- :meth:`ServiceApi.fault_target`: a fault-injection target
  (:mod:`avatarkit.emulator.shaping`) whose 503 body is the service's own
  error envelope.

Each service keeps its own envelope and error words: digime
``{"errno", "errMsg", "data"}``, SAMI ``{task_id, namespace, status_code,
status_text}``, MetaStudio ``{"error_code", "error_msg"}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from avatarkit._redact import protected_logger
from avatarkit._schema_errors import field_problem, value_at
from avatarkit.emulator.shaping import FaultTarget
from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from avatarkit.emulator.state import EmulatorState

__all__ = [
    "ALL_METHODS",
    "BodyProblem",
    "Codes",
    "Handler",
    "ServiceApi",
    "ServiceError",
    "decode_body",
    "media_type",
]

#: Every route of a service accepts every method, so that a wrong one gets the
#: service's own 405 rather than Starlette's plain-text one.
ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

T = TypeVar("T")
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_any_json: Final = msgspec.json.Decoder()


# -- strict bodies ------------------------------------------------------------


class BodyProblem(Exception):
    """A body that is not JSON (``path is None``), not an object (``path == ""``), or whose
    field ``path`` breaks ``rule`` (``value`` as sent; None when the field is missing)."""

    def __init__(
        self,
        path: str | None,
        value: Any,
        rule: str,
        *,
        missing: bool = False,
        unknown: bool = False,
    ) -> None:
        super().__init__(rule)
        self.path = path
        self.value = value
        self.rule = rule
        self.missing = missing
        self.unknown = unknown


def decode_body(body: bytes | str, kind: type[T]) -> T:
    """``body`` decoded strictly as ``kind``, or BodyProblem.

    Unknown fields are ignored unless ``kind`` forbids them
    (``forbid_unknown_fields=True``; then ``BodyProblem.unknown`` is set).
    """
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        value: T = decoder.decode(body)
    except msgspec.ValidationError as exc:
        problem = field_problem(str(exc))
        if problem.missing or problem.unknown or not problem.path:
            raise BodyProblem(
                problem.path, None, problem.rule, missing=problem.missing, unknown=problem.unknown
            ) from None
        raise BodyProblem(
            problem.path, value_at(_any_json.decode(body), problem.path), problem.rule
        ) from None
    except msgspec.DecodeError as exc:
        raise BodyProblem(None, None, f"body is not JSON ({exc})") from None
    return value


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ("" when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


# -- errors -------------------------------------------------------------------


class ServiceError(Exception):
    """An answer other than success: HTTP ``status``, the service's ``code`` and ``message``.

    ``message`` is what the client reads; it names the field, its value and the
    rule broken, and never holds a secret.  ``headers`` are added to the answer
    (``Allow`` on a 405).
    """

    def __init__(
        self,
        status: int,
        code: int | str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Codes:
    """The codes a service answers the shared failures with."""

    invalid: int | str  # a bad body, field or Content-Type
    no_such_api: int | str  # a path under the prefix that is no operation
    method: int | str  # a method the operation does not take
    internal: int | str  # an emulator bug
    unavailable: int | str  # an injected failure (shaping)


#: An operation: the request, the emulator's state and the whole body, to the answer.
Handler = Callable[[Request, "EmulatorState", bytes], Awaitable[Response]]


class ServiceApi:
    """One HTTP service's shared behaviour (see the module doc); subclass per service."""

    #: Used in log lines: ``avatarkit.emulator.<name>``.
    name: ClassVar[str] = "service"
    codes: ClassVar[Codes]
    #: Put before a rule's words in an invalid-parameter message.
    invalid_prefix: ClassVar[str] = "invalid parameter: "
    #: Bodies larger than this are drained unstored and refused (:meth:`too_large`).
    max_body: ClassVar[int | None] = None

    def __init__(self) -> None:
        self.log = protected_logger(f"{__name__}.{self.name}")

    # -- the envelope: what each service says differently ----------------------

    def error_body(self, error: ServiceError, request: Request | None) -> bytes:
        """The JSON of an error answer in the service's envelope."""
        raise NotImplementedError

    def response_headers(self, request: Request) -> dict[str, str]:
        """Headers every answer to ``request`` carries, success or not (e.g. a request id)."""
        return {}

    async def check(self, request: Request, state: EmulatorState, body: bytes) -> None:
        """Checks before every operation of the service (auth, content type); raise to refuse."""

    # -- shared failures, worded per service (override to change the words) -----

    def invalid(self, problem: ValidationError) -> ServiceError:
        """A field breaking a rule."""
        return ServiceError(400, self.codes.invalid, f"{self.invalid_prefix}{problem}")

    def body_error(self, problem: BodyProblem) -> ServiceError:
        """A body that could not be decoded as the operation's Struct."""
        if problem.path is None:
            return ServiceError(400, self.codes.invalid, f"{self.invalid_prefix}{problem.rule}")
        if not problem.path:
            return ServiceError(
                400,
                self.codes.invalid,
                f"{self.invalid_prefix}body: {problem.rule} (need a JSON object)",
            )
        if problem.missing:
            rule = "is required"
        elif problem.unknown:
            rule = "is not a documented field"
        else:
            rule = problem.rule
        return self.invalid(ValidationError(problem.path, problem.value, rule))

    def content_type_error(self, problem: ValidationError) -> ServiceError:
        return self.invalid(problem)

    def method_error(self, method: str, allowed: Collection[str]) -> ServiceError:
        allow = ", ".join(allowed)
        return ServiceError(
            405,
            self.codes.method,
            f"method {method} not allowed: use {allow}",
            headers={"Allow": allow},
        )

    def too_large(self, size: int) -> ServiceError:
        return ServiceError(
            413, self.codes.invalid, f"body of {size} bytes: at most {self.max_body} bytes"
        )

    # -- tools for operations ---------------------------------------------------

    def decode(self, body: bytes | str, kind: type[T]) -> T:
        """``body`` strictly as ``kind``, or the service's invalid-body error."""
        try:
            return decode_body(body, kind)
        except BodyProblem as problem:
            raise self.body_error(problem) from None

    @contextlib.contextmanager
    def rules(self) -> Iterator[None]:
        """Turns a rule's :class:`ValidationError` into the service's invalid answer."""
        try:
            yield
        except ValidationError as exc:
            raise self.invalid(exc) from None

    def require_json(self, request: Request) -> None:
        if media_type(request) != "application/json":
            value = request.headers.get("content-type", "")
            raise self.content_type_error(
                ValidationError("Content-Type", value, "must be application/json")
            )

    def json(
        self, value: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON answer (``value`` encoded with msgspec: Structs, dicts, lists…)."""
        return Response(
            msgspec.json.encode(value),
            status_code=status,
            media_type="application/json",
            headers=dict(headers) if headers else None,
        )

    def error_response(self, error: ServiceError, request: Request | None = None) -> Response:
        headers = self.response_headers(request) if request is not None else {}
        headers.update(error.headers)
        return Response(
            self.error_body(error, request),
            status_code=error.status,
            media_type="application/json",
            headers=headers,
        )

    # -- routes -----------------------------------------------------------------

    def endpoint(self, handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        """A Starlette endpoint running ``handlers[method]`` (see the module doc)."""
        allowed = tuple(handlers)

        async def endpoint(request: Request) -> Response:
            state: EmulatorState = request.app.state.emulator
            body, size = await self._read_body(request)
            try:
                handler = handlers.get(request.method)
                if handler is None:
                    raise self.method_error(request.method, allowed)
                await self.check(request, state, body)
                if self.max_body is not None and size > self.max_body:
                    raise self.too_large(size)
                response = await handler(request, state, body)
            except ServiceError as error:
                self.log.debug(
                    "%s %s refused: HTTP %d %s",
                    request.method,
                    request.url.path,
                    error.status,
                    error.message,
                )
                return self.error_response(error, request)
            except Exception:  # an emulator bug must still answer in the service's shape
                self.log.exception("%s %s failed", request.method, request.url.path)
                return self.error_response(
                    ServiceError(500, self.codes.internal, "Internal Error"), request
                )
            response.headers.update(self.response_headers(request))
            return response

        return endpoint

    async def unknown_api(self, request: Request) -> Response:
        """The answer for a path under the service's prefix that is no operation."""
        error = ServiceError(
            404, self.codes.no_such_api, f"no such API: {request.method} {request.url.path}"
        )
        return self.error_response(error, request)

    def fault_target(
        self,
        path: str,
        counter: str,
        *,
        methods: Collection[str] = ("POST",),
        prefix: bool = False,
    ) -> FaultTarget:
        """Failure injection on ``path``; its 503 is the service's error envelope."""
        error = ServiceError(503, self.codes.unavailable, "service unavailable (injected failure)")
        return FaultTarget(
            path,
            counter,
            self.error_body(error, None),
            methods=frozenset(methods),
            prefix=prefix,
        )

    async def _read_body(self, request: Request) -> tuple[bytes, int]:
        """The body (up to :attr:`max_body`) and its full size; the rest is drained."""
        if self.max_body is None:
            body = await request.body()
            return body, len(body)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size <= self.max_body:
                chunks.append(chunk)
        return b"".join(chunks), size
