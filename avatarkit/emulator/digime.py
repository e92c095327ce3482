"""The emulator's digime service: chunked upload and avatar training (SPEC §1, doc 000).

Mounted under :data:`PREFIX`.  Every operation is ``POST`` with a JSON body,
``Content-Type: application/json`` and ``Authorization: <raw token>``; every
answer is ``{"errno": int, "errMsg": str, "data": …}``, success being errno 0
and errMsg ``"success"``.

The real service does not publish its error codes; these are ours.  Each
errMsg names the field, its value and the rule broken.

====== ===== ==============================================================
HTTP   errno meaning
====== ===== ==============================================================
401    40100 ``Authorization`` missing or not the raw token (no "Bearer")
400    40001 invalid parameter: missing or wrong-typed field, bad
             conf_name, type/suffix mismatch, appid not this account's,
             tts_type missing for type 11 or present for a video,
             role_show_name missing for a video, input_resource empty,
             bad callback_url, Content-Type not application/json, body not
             a JSON object
400    40002 upload_id unknown or already completed
400    40003 part_num out of order (the message says which is expected)
400    40004 part size rule broken: every part but the last must be at
             least ``digime_min_part_bytes`` (a short last part is merged
             into the one before it); a part must not be empty
400    40005 content is not valid standard base64 (RFC 4648, padded)
400    40006 complete without any part
400    40007 type, file_suffix or conf_name differ from the init
404    40400 no such operation under the prefix
404    40401 conf_name unknown to ``/digime_training_info``, or no completed
             training video (type 1) for ``/init_train_digime``
405    40500 method other than POST
503    50300 injected failure (see :mod:`avatarkit.emulator.shaping`)
====== ===== ==============================================================

Parts: ``part_num`` starts at 1 and is consecutive.  ``part_num == last + 1``
appends; ``part_num == last`` *replaces* the last part: that is the retry of
a part whose reply was lost (stored or not, the client cannot tell, so a
resend must be safe).  Anything else is 40003.  Parts are streamed into one
file per upload in a temporary directory the state owns and removes on
shutdown; replacing the last part truncates the file back to its offset.

Training: ``/init_train_digime`` needs a completed type-1 upload for the
conf_name.  The state goes 1 → 2 after ``digime_training_seconds`` (→ 3 for
a conf_name in ``digime_fail_conf_names``), then the result is POSTed to
``callback_url`` (3 attempts; failures are logged, never fatal).  Training
again restarts it.  Timers and callbacks run in the app lifespan's task
group, so shutting the emulator down cancels them.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from avatarkit._redact import protected_logger, redact_url
from avatarkit.digime.rules import (
    MaterialType,
    check_conf_name,
    check_non_empty,
    check_suffix,
    check_tts_type,
    check_type,
)
from avatarkit.digime.wire import (
    CompleteUpload,
    InitTrain,
    InitUpload,
    PartUpload,
    TrainingCallback,
    TrainingInfo,
    TrainingInfoRequest,
    TrainingState,
)
from avatarkit.emulator.bodies import BodyProblem, decode_body
from avatarkit.emulator.shaping import FaultTarget
from avatarkit.emulator.store import ServiceStore
from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from avatarkit.emulator.options import EmulatorOptions
    from avatarkit.emulator.state import EmulatorState

__all__ = [
    "PICS_PATH",
    "PREFIX",
    "DigimeStore",
    "TrainingRecord",
    "UploadRecord",
    "check_digime_options",
    "digime_routes",
    "fault_targets",
]

log = protected_logger("avatarkit.emulator.digime")

PREFIX: Final = "/virtual_human/avatar_platform/digime"
PICS_PATH: Final = "/digime/pics"

UNAUTHORIZED: Final = 40100
INVALID: Final = 40001
UNKNOWN_UPLOAD: Final = 40002
OUT_OF_ORDER: Final = 40003
PART_SIZE: Final = 40004
BAD_BASE64: Final = 40005
NO_PARTS: Final = 40006
MISMATCH: Final = 40007
NO_SUCH_API: Final = 40400
NOT_FOUND: Final = 40401
METHOD: Final = 40500
UNAVAILABLE: Final = 50300

CALLBACK_ATTEMPTS: Final = 3
CALLBACK_TIMEOUT: Final = 5.0
CALLBACK_BACKOFF: Final = 0.1  # seconds, times the attempt number

_ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_VIDEO_TYPES: Final = "type 1, 2, 3"


class _Fail(Exception):
    def __init__(self, status: int, errno: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.errno = errno
        self.message = message


def check_digime_options(options: EmulatorOptions) -> None:
    if options.digime_init_data_shape not in ("object", "bare"):
        raise ValidationError(
            "digime_init_data_shape", options.digime_init_data_shape, "must be object or bare"
        )
    if options.digime_min_part_bytes < 1:
        raise ValidationError(
            "digime_min_part_bytes", options.digime_min_part_bytes, "must be >= 1"
        )
    if options.digime_training_seconds < 0:
        raise ValidationError(
            "digime_training_seconds", options.digime_training_seconds, "must be >= 0"
        )


def fault_targets() -> tuple[FaultTarget, ...]:
    """The digime requests failure injection applies to: part uploads."""
    body = msgspec.json.encode(
        {"errno": UNAVAILABLE, "errMsg": "service unavailable (injected failure)", "data": None}
    )
    return (FaultTarget(PREFIX + "/video_part_upload", "digime_injected_failures", body),)


# -- state --------------------------------------------------------------------


@dataclass
class UploadRecord:
    """One chunked upload, from init to complete."""

    upload_id: str
    appid: str
    conf_name: str | None
    type: MaterialType
    file_suffix: str
    tts_type: str | None
    role_show_name: str | None
    input_resource: str
    path: Path
    part_sizes: list[int] = field(default_factory=list)
    completed: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False, compare=False)


@dataclass
class TrainingRecord:
    """The latest training of one conf_name."""

    conf_name: str
    callback_url: str
    state: TrainingState = TrainingState.IN_PROGRESS
    role_pic: str = ""
    pre_pic: str = ""
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope, repr=False)
    # Set once the result is known and its callback was delivered or given up.
    finished: anyio.Event = field(default_factory=anyio.Event, repr=False)

    def info(self) -> TrainingInfo:
        return TrainingInfo(
            conf_name=self.conf_name, state=self.state, role_pic=self.role_pic, pre_pic=self.pre_pic
        )


class DigimeStore(ServiceStore):
    """Uploads, their files and trainings; ``state.digime``."""

    prefix = "avatarkit-digime-"

    def __init__(self) -> None:
        super().__init__()
        self.uploads: dict[str, UploadRecord] = {}
        self.trainings: dict[str, TrainingRecord] = {}
        self._completed: list[str] = []  # upload ids, in completion order

    def completed_file(self, conf_name: str | None = None, upload_id: str | None = None) -> Path:
        """The assembled file of the latest completed upload matching the arguments."""
        for uid in reversed(self._completed):
            record = self.uploads[uid]
            if upload_id is not None and uid != upload_id:
                continue
            if conf_name is not None and record.conf_name != conf_name:
                continue
            return record.path
        raise KeyError(f"no completed upload for conf_name={conf_name} upload_id={upload_id}")

    def latest_completed(self, conf_name: str, material: MaterialType) -> UploadRecord | None:
        for uid in reversed(self._completed):
            record = self.uploads[uid]
            if record.conf_name == conf_name and record.type is material:
                return record
        return None

    def new_upload(self, **fields: Any) -> UploadRecord:
        upload_id = secrets.token_hex(12)
        path = self.directory / f"{upload_id}.{fields['file_suffix']}"
        path.touch()
        record = UploadRecord(upload_id=upload_id, path=path, **fields)
        self.uploads[upload_id] = record
        return record

    def open_upload(self, upload_id: str) -> UploadRecord:
        record = self.uploads.get(upload_id)
        if record is None:
            raise _Fail(400, UNKNOWN_UPLOAD, f"upload_id={upload_id!r}: unknown upload_id")
        _check_open(record)
        return record

    def mark_completed(self, record: UploadRecord) -> None:
        record.completed = True
        self._completed.append(record.upload_id)

    def start_training(
        self, state: EmulatorState, conf_name: str, callback_url: str, pics_base: str
    ) -> TrainingRecord:
        tg = self.task_group
        if tg is None:
            raise _Fail(503, UNAVAILABLE, "the emulator is not running")
        old = self.trainings.get(conf_name)
        if old is not None:
            old.scope.cancel()  # training again restarts it
        record = TrainingRecord(conf_name=conf_name, callback_url=callback_url)
        self.trainings[conf_name] = record
        tg.start_soon(_train, state, record, pics_base)
        return record


def _check_open(record: UploadRecord) -> None:
    if record.completed:
        raise _Fail(
            400,
            UNKNOWN_UPLOAD,
            f"upload_id={record.upload_id!r}: the upload is already completed",
        )


# -- training -----------------------------------------------------------------


async def _train(state: EmulatorState, record: TrainingRecord, pics_base: str) -> None:
    options = state.options
    with record.scope:
        await anyio.sleep(options.digime_training_seconds)
        fail_names = options.digime_fail_conf_names
        if isinstance(fail_names, str):  # a lone name, not its letters
            fail_names = (fail_names,)
        if record.conf_name in fail_names:
            record.state = TrainingState.FAILED
        else:
            record.role_pic = f"{pics_base}/{record.conf_name}/role.png"
            record.pre_pic = f"{pics_base}/{record.conf_name}/pre.png"
            record.state = TrainingState.SUCCESS
        try:
            await _deliver(state, record)
        except Exception as exc:  # background work must never take the app down
            log.warning(
                "digime callback to %s failed: %s", redact_url(record.callback_url), repr(exc)
            )
        finally:
            record.finished.set()


async def _deliver(state: EmulatorState, record: TrainingRecord) -> None:
    url = record.callback_url
    payload = msgspec.json.encode(
        TrainingCallback(
            conf_name=record.conf_name,
            state=record.state,
            role_pic=record.role_pic,
            pre_pic=record.pre_pic,
        )
    )
    headers = {"Content-Type": "application/json"}
    # trust_env=False: an emulator calls back where it is told, not via proxies.
    async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT, trust_env=False) as client:
        for attempt in range(1, CALLBACK_ATTEMPTS + 1):
            try:
                response = await client.post(url, content=payload, headers=headers)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__  # its text may hold the unredacted URL
            else:
                if response.is_success:
                    state.stats.digime_callbacks_sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            log.warning(
                "digime callback to %s failed (attempt %d of %d): %s",
                redact_url(url),
                attempt,
                CALLBACK_ATTEMPTS,
                problem,
            )
            if attempt < CALLBACK_ATTEMPTS:
                await anyio.sleep(CALLBACK_BACKOFF * attempt)


# -- requests -----------------------------------------------------------------

T = TypeVar("T")


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return decode_body(body, kind)
    except BodyProblem as problem:
        raise _body_failure(problem) from None


def _body_failure(problem: BodyProblem) -> _Fail:
    """A bad body as a ValidationError-style message naming the field."""
    name, value = problem.path, problem.value
    rule = "is required" if problem.missing else problem.rule
    if name is None:
        return _Fail(400, INVALID, f"invalid parameter: {rule}")
    if not name:
        return _Fail(400, INVALID, f"invalid parameter: body: {rule} (need a JSON object)")
    if name == "content" and rule.startswith("Invalid base64"):
        rule = "is not valid standard base64 (RFC 4648 alphabet, padded, no whitespace)"
        return _Fail(400, BAD_BASE64, f"invalid content: {ValidationError(name, value, rule)}")
    if name == "content" and "`bytes`" in rule:
        rule = rule.replace("`bytes`", "a base64 `str`")
    return _Fail(400, INVALID, f"invalid parameter: {ValidationError(name, value, rule)}")


@contextlib.contextmanager
def _invalid() -> Iterator[None]:
    """Turn a rule's ValidationError into a 40001 answer."""
    try:
        yield
    except ValidationError as exc:
        raise _Fail(400, INVALID, f"invalid parameter: {exc}") from None


def _check_appid(state: EmulatorState, appid: str) -> None:
    if appid != state.options.appid:
        raise ValidationError("appid", appid, "is not the appid of this account")


def _video_conf_name(value: str | None, material: MaterialType) -> str:
    if value is None:
        raise ValidationError("conf_name", value, f"is required for video uploads ({_VIDEO_TYPES})")
    return check_conf_name(value)


def _conf_name_for(material: MaterialType, value: str | None) -> str | None:
    """conf_name is required for videos, optional for audio ("" meaning absent)."""
    if material is MaterialType.AUDIO:
        return check_conf_name(value) if value else None
    return _video_conf_name(value, material)


def _check_same(
    record: UploadRecord, material: MaterialType, suffix: str, conf_name: str | None
) -> None:
    """Parts and complete must describe the upload as its init did."""
    pairs: list[tuple[str, object, object]] = [
        ("type", int(material), int(record.type)),
        ("file_suffix", suffix, record.file_suffix),
    ]
    if material is not MaterialType.AUDIO or conf_name is not None:
        pairs.append(("conf_name", conf_name, record.conf_name))
    for name, got, want in pairs:
        if got != want:
            raise _Fail(
                400,
                MISMATCH,
                f"{name}={got!r}: differs from the init of upload_id={record.upload_id!r} "
                f"({name}={want!r})",
            )


def _write_at(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.truncate()
        f.write(data)


Operation = Callable[[Request, "EmulatorState", bytes], Awaitable[Any]]


async def _init_upload(request: Request, state: EmulatorState, body: bytes) -> Any:
    req = _decode(body, InitUpload)
    with _invalid():
        _check_appid(state, req.appid)
        material = check_type(req.type)
        suffix = check_suffix(material, req.file_suffix)
        check_non_empty("input_resource", req.input_resource)
        if material is MaterialType.AUDIO:
            tts_type: str | None = check_tts_type(req.tts_type)
        else:
            tts_type = None
            if req.tts_type is not None:
                raise ValidationError("tts_type", req.tts_type, "is only for audio (type 11)")
            if req.role_show_name is None:
                raise ValidationError(
                    "role_show_name", None, f"is required for video uploads ({_VIDEO_TYPES})"
                )
            check_non_empty("role_show_name", req.role_show_name)
        conf_name = _conf_name_for(material, req.conf_name)
    record = state.digime.new_upload(
        appid=req.appid,
        conf_name=conf_name,
        type=material,
        file_suffix=suffix,
        tts_type=tts_type,
        role_show_name=req.role_show_name,
        input_resource=req.input_resource,
    )
    if state.options.digime_init_data_shape == "bare":
        return record.upload_id
    return {"upload_id": record.upload_id}


def _upload_of(state: EmulatorState, req: PartUpload | CompleteUpload) -> UploadRecord:
    """The open upload a part or complete request names, after checking its fields."""
    with _invalid():
        _check_appid(state, req.appid)
        material = check_type(req.type)
        suffix = check_suffix(material, req.file_suffix)
        conf_name = _conf_name_for(material, req.conf_name)
    record = state.digime.open_upload(req.upload_id)
    _check_same(record, material, suffix, conf_name)
    return record


async def _part_upload(request: Request, state: EmulatorState, body: bytes) -> Any:
    req = _decode(body, PartUpload)
    record = _upload_of(state, req)
    min_part = state.options.digime_min_part_bytes
    async with record.lock:  # concurrent parts of one upload take turns
        _check_open(record)
        sizes = record.part_sizes
        if req.part_num == len(sizes) + 1:
            replace = False
        elif sizes and req.part_num == len(sizes):
            replace = True  # a retry of the last part, whose reply was lost
        else:
            raise _Fail(
                400,
                OUT_OF_ORDER,
                f"part_num={req.part_num}: out of order, expected {len(sizes) + 1}"
                + (f" (or {len(sizes)} to resend the last part)" if sizes else ""),
            )
        if not req.content:
            raise _Fail(400, PART_SIZE, f"content of part {req.part_num}: a part must not be empty")
        if not replace and sizes and sizes[-1] < min_part:
            raise _Fail(
                400,
                PART_SIZE,
                f"part_num={req.part_num}: part {len(sizes)} has {sizes[-1]} bytes; every part "
                f"but the last must be at least {min_part} bytes (merge a short last part "
                "into the one before it)",
            )
        offset = sum(sizes[:-1]) if replace else sum(sizes)
        await anyio.to_thread.run_sync(_write_at, record.path, offset, req.content)
        if replace:
            sizes[-1] = len(req.content)
        else:
            sizes.append(len(req.content))
        state.stats.digime_parts_received += 1
        state.stats.digime_part_bytes += len(req.content)
    return "video part upload success"


async def _complete_upload(request: Request, state: EmulatorState, body: bytes) -> Any:
    req = _decode(body, CompleteUpload)
    record = _upload_of(state, req)
    min_part = state.options.digime_min_part_bytes
    async with record.lock:
        _check_open(record)
        sizes = record.part_sizes
        if not sizes:
            raise _Fail(
                400, NO_PARTS, f"upload_id={req.upload_id!r}: no part uploaded, nothing to complete"
            )
        if len(sizes) >= 2 and sizes[-1] < min_part:
            raise _Fail(
                400,
                PART_SIZE,
                f"upload_id={req.upload_id!r}: the last part ({len(sizes)}) has {sizes[-1]} "
                f"bytes; a last part under {min_part} bytes must be merged into the one "
                "before it",
            )
        state.digime.mark_completed(record)
    return "finish video part upload successs"  # sic, as documented


def _check_callback_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValidationError("callback_url", value, "must be an http(s) URL")
    return value


def _pics_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PICS_PATH


async def _init_train(request: Request, state: EmulatorState, body: bytes) -> Any:
    req = _decode(body, InitTrain)
    with _invalid():
        _check_appid(state, req.appid)
        conf_name = check_conf_name(req.conf_name)
        callback_url = _check_callback_url(req.callback_url)
    if state.digime.latest_completed(conf_name, MaterialType.TRAINING) is None:
        raise _Fail(
            404,
            NOT_FOUND,
            f"conf_name={conf_name!r}: no completed training video (type 1) for this conf_name",
        )
    state.digime.start_training(state, conf_name, callback_url, _pics_base(request))
    return "init train digime succ"


async def _training_info(request: Request, state: EmulatorState, body: bytes) -> Any:
    req = _decode(body, TrainingInfoRequest)
    with _invalid():
        _check_appid(state, req.appid)
        conf_name = check_conf_name(req.conf_name)
    record = state.digime.trainings.get(conf_name)
    if record is None:
        raise _Fail(404, NOT_FOUND, f"conf_name={conf_name!r}: no training for this conf_name")
    return record.info()


# -- HTTP ---------------------------------------------------------------------


def _envelope(
    errno: int, message: str, data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = msgspec.json.encode({"errno": errno, "errMsg": message, "data": data})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _authorize(request: Request, state: EmulatorState) -> None:
    given = request.headers.get("authorization")
    if given is None:
        raise _Fail(401, UNAUTHORIZED, "Authorization: header missing (send the raw token)")
    if not secrets.compare_digest(given.encode(), state.options.token.encode()):
        hint = ' (send the raw token, without "Bearer ")' if given.startswith("Bearer ") else ""
        raise _Fail(401, UNAUTHORIZED, f"Authorization: invalid token{hint}")


def _check_content_type(request: Request) -> None:
    value = request.headers.get("content-type", "")
    if value.split(";", 1)[0].strip().lower() != "application/json":
        problem = ValidationError("Content-Type", value, "must be application/json")
        raise _Fail(400, INVALID, f"invalid parameter: {problem}")


def _service(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: EmulatorState = request.app.state.emulator
        # Read the body first even when refusing: an unread upload would make
        # the client see a reset instead of our answer.
        body = await request.body()
        try:
            if request.method != "POST":
                raise _Fail(405, METHOD, f"method {request.method} not allowed: use POST")
            _authorize(request, state)
            _check_content_type(request)
            data = await operation(request, state, body)
        except _Fail as fail:
            headers = {"Allow": "POST"} if fail.status == 405 else None
            return _envelope(fail.errno, fail.message, None, fail.status, headers)
        return _envelope(0, "success", data)

    return endpoint


async def _no_such_api(request: Request) -> Response:
    return _envelope(NO_SUCH_API, f"no such API: {request.url.path}", None, 404)


async def _pic(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    conf_name, name = request.path_params["conf_name"], request.path_params["name"]
    record = state.digime.trainings.get(conf_name)
    if record is None or record.state is not TrainingState.SUCCESS or name not in _PICS:
        return _envelope(NOT_FOUND, f"no picture {conf_name}/{name}", None, 404)
    return Response(_PICS[name](conf_name), media_type="image/png")


def digime_routes() -> list[BaseRoute]:
    """The routes of the service and of its training pictures."""
    operations: dict[str, Operation] = {
        "init_part_upload": _init_upload,
        "video_part_upload": _part_upload,
        "video_complete_upload": _complete_upload,
        "init_train_digime": _init_train,
        "digime_training_info": _training_info,
    }
    routes: list[BaseRoute] = [
        Route(f"{PREFIX}/{name}", _service(op), methods=_ALL_METHODS)
        for name, op in operations.items()
    ]
    routes.append(Route(PREFIX + "/{rest:path}", _no_such_api, methods=_ALL_METHODS))
    routes.append(Route(PICS_PATH + "/{conf_name:str}/{name:str}", _pic, methods=["GET"]))
    return routes


# -- pictures -----------------------------------------------------------------


def _png(width: int, height: int, color_type: int, rows: list[bytes]) -> bytes:
    """A minimal valid PNG (8-bit; color type 2 RGB or 6 RGBA)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


_PIC_SIZE: Final = 64


def _tint(conf_name: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(conf_name.encode()).digest()
    return digest[0], digest[1], digest[2]


def _role_png(conf_name: str) -> bytes:
    """The avatar picture: an opaque gradient tinted by the conf_name."""
    r, g, b = _tint(conf_name)
    n = _PIC_SIZE
    rows = [bytes((r * y // n, g, b * (n - y) // n) * n) for y in range(n)]
    return _png(n, n, 2, rows)


def _pre_png(conf_name: str) -> bytes:
    """The foreground: a disc on a transparent background."""
    r, g, b = _tint(conf_name)
    n, half = _PIC_SIZE, _PIC_SIZE / 2
    rows = []
    for y in range(n):
        row = bytearray()
        for x in range(n):
            inside = (x - half + 0.5) ** 2 + (y - half + 0.5) ** 2 <= (half * 0.8) ** 2
            row += bytes((r, g, b, 255 if inside else 0))
        rows.append(bytes(row))
    return _png(n, n, 6, rows)


_PICS: Final[dict[str, Callable[[str], bytes]]] = {"role.png": _role_png, "pre.png": _pre_png}
