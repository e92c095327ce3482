"""The emulator's MetaStudio service: 2D-avatar training jobs (SPEC §4, doc 003).

API, under :data:`API_PATH` (``/v1/{project_id}/digital-human-training-manage/user``):

=======  ===========================  ==========================================
method   path                         what
=======  ===========================  ==========================================
POST     ``/jobs``                    create; answers the job id and upload URLs
GET      ``/jobs``                    list: ``offset`` (>= 0), ``limit`` (1..100,
                                      default 10), ``state`` (comma list),
                                      ``batch_name``, ``name`` (substring),
                                      ``job_id``, ``tag``, ``sort_key``
                                      (create_time | update_time), ``sort_dir``
                                      (asc | desc, default desc)
GET      ``/jobs/{job_id}``           show
PUT      ``/jobs/{job_id}``           update (only in AUTO_VERIFY_FAILED or
                                      MANUAL_VERIFY_FAILED): the create body
                                      (or none), fresh upload URLs, the old ones
                                      revoked, uploads cleared, WAIT_FILE_UPLOAD
DELETE   ``/jobs/{job_id}``           delete (204)
POST     ``/jobs/{job_id}/command``   a :data:`~avatarkit.metastudio.wire.COMMANDS`
=======  ===========================  ==========================================

Auth: ``X-Auth-Token`` equal to ``metastudio_token``, or an AK/SK signature
(``Authorization``/``X-Sdk-Date``, checked by
:func:`avatarkit.metastudio.signer.verify` over the URL as the client signed
it) plus ``X-Project-Id`` equal to the path's project id.  The path's project
id must be ``metastudio_project_id``.  ``X-App-UserId``, when sent, must not
contain Chinese characters.  Every API response carries ``X-Request-Id``
(uuid hex); errors are ``{"error_code", "error_msg"}``, error_msg naming the
field, its value and the rule broken.  Doc 003 publishes two codes
(MSS.00000003, MSS.00000004); the others are ours:

======  ==============  ===================================================
HTTP    error_code      meaning
======  ==============  ===================================================
400     MSS.00000003    invalid parameter: body not JSON or wrong-typed
                        field, a create-body rule, bad query parameter,
                        unknown command, Content-Type, X-App-UserId; on a
                        presigned PUT: wrong Content-Type, Content-Length
                        not the body's length
401     MSS.00000001    no credentials, wrong token, bad AK/SK signature
                        (wrong AK, altered request, stale X-Sdk-Date), no
                        X-Project-Id with AK/SK
403     MSS.00000002    project_id not this account's, or X-Project-Id
                        differs from the path's
403     MSS.00000008    presigned URL refused: unknown or altered
                        signature, already used, expired
404     MSS.00000005    no such job (or no such API under the prefix)
405     MSS.00000007    method not allowed on the path
409     MSS.00000006    the job's state does not allow the operation
411     MSS.00000009    presigned PUT without Content-Length
500     MSS.00000004    internal error
503     MSS.00000010    injected failure on a presigned PUT (shaping)
======  ==============  ===================================================

Presigned URLs are served by the emulator itself::

    http://<host>:<port>/metastudio-obs/<job_id>/<object>[?partNumber=<k>]
        &X-Amz-Date=<YYYYMMDDTHHMMSSZ>&X-Amz-Expires=<ttl>&X-Amz-Signature=<32 hex>

``object`` is ``trainingVideo`` / ``actionVideo`` (one URL per part,
``partNumber`` 1..n) or ``audio``, ``cover``, ``idCardImage1``,
``idCardImage2``, ``grantFile``, ``preBeautyImage``, ``postBeautyImage``.
Only ``PUT``; single-use (a URL is consumed when its body is stored); valid
``metastudio_url_ttl_seconds``; ``Content-Type`` ``application/octet-stream``
(audio: ``application/zip``); ``Content-Length`` required and equal to the
body's length.  Bodies are streamed to files in a temporary directory the
state owns and removes on shutdown.  The answer is 200 with ``ETag`` (the
quoted md5 hex), the same string ``GET_MULTIPART_UPLOADED`` reports.  Failure
injection (:mod:`avatarkit.emulator.shaping`) applies to these PUTs: a 503
happens before storing (the URL stays unused); a drop stores the body or not,
at random, before cutting the connection.

Jobs: ``SUBMITVERIFYING`` (after ``CONFIRM_MULTIPART_UPLOADED`` assembled the
training video) moves the job to AUTO_VERIFYING, then one step every
``metastudio_step_seconds`` through :data:`PIPELINE` to JOB_SUCCESS; a job
named in ``metastudio_fail_names`` stops at AUTO_VERIFY_FAILED.  Timers run in
the app lifespan's task group, so shutting the emulator down cancels them.
``JobRecord.wait_for`` and ``JobRecord.reached`` let tests wait for a state.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive

from avatarkit._redact import protected_logger
from avatarkit.emulator.bodies import BodyProblem, decode_body
from avatarkit.emulator.shaping import FaultTarget
from avatarkit.emulator.store import ServiceStore
from avatarkit.errors import ValidationError
from avatarkit.metastudio.signer import SignatureError, verify
from avatarkit.metastudio.wire import (
    COMMANDS,
    CommandRequest,
    CommandResult,
    CreateJobRequest,
    CreateJobResponse,
    ErrorBody,
    Job,
    JobList,
    JobState,
    MultipartData,
    check_create_request,
    is_failed,
    is_success,
)

if TYPE_CHECKING:
    from avatarkit.emulator.options import EmulatorOptions
    from avatarkit.emulator.state import EmulatorState

__all__ = [
    "API_PATH",
    "OBS_PREFIX",
    "PIPELINE",
    "SHAPED_PREFIXES",
    "JobRecord",
    "MetaStudioStore",
    "Presigned",
    "StoredObject",
    "check_metastudio_options",
    "fault_targets",
    "metastudio_routes",
]

log = protected_logger("avatarkit.emulator.metastudio")

API_PATH: Final = "/v1/{project_id}/digital-human-training-manage/user"
OBS_PREFIX: Final = "/metastudio-obs"
# Shaping applies to the API (whose project id varies, hence "/v1/") and the PUTs.
SHAPED_PREFIXES: Final = ("/v1/", OBS_PREFIX + "/")

UNAUTHORIZED: Final = "MSS.00000001"
FORBIDDEN: Final = "MSS.00000002"
INVALID: Final = "MSS.00000003"
INTERNAL: Final = "MSS.00000004"
NOT_FOUND: Final = "MSS.00000005"
CONFLICT: Final = "MSS.00000006"
METHOD: Final = "MSS.00000007"
URL_REFUSED: Final = "MSS.00000008"
LENGTH_REQUIRED: Final = "MSS.00000009"
UNAVAILABLE: Final = "MSS.00000010"

TRAINING_VIDEO: Final = "trainingVideo"
ACTION_VIDEO: Final = "actionVideo"
OCTET_STREAM: Final = "application/octet-stream"
ZIP: Final = "application/zip"
# Single objects: the create answer's field, and the object name in the URL.
SINGLE_OBJECTS: Final = {
    "audio_upload_url": "audio",
    "cover_upload_url": "cover",
    "id_card_image1_upload_url": "idCardImage1",
    "id_card_image2_upload_url": "idCardImage2",
    "grant_file_upload_url": "grantFile",
    "pre_beauty_image_upload_url": "preBeautyImage",
    "post_beauty_image_upload_url": "postBeautyImage",
}

PIPELINE: Final = (
    JobState.AUTO_VERIFYING,
    JobState.MANUAL_VERIFYING,
    JobState.MANUAL_VERIFY_SUCCESS,
    JobState.WAIT_TRAINING_DATA_PREPROCESS,
    JobState.TRAINING_DATA_PREPROCESSING,
    JobState.TRAINING,
    JobState.TRAIN_SUCCESS,
    JobState.INFERENCE_DATA_PREPROCESSING,
    JobState.JOB_SUCCESS,
)
_UPDATABLE: Final = frozenset({JobState.AUTO_VERIFY_FAILED, JobState.MANUAL_VERIFY_FAILED})
_DEFAULT_SERVICES: Final = ("VIDEO_2D", "LIVE_2D")
_LIST_LIMIT: Final = (1, 100)
_LIST_DEFAULT_LIMIT: Final = 10
_SORT_KEYS: Final = ("create_time", "update_time")
_SORT_DIRS: Final = ("asc", "desc")
_ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_CHINESE: Final = re.compile(
    "[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0002ebef\U00030000-\U0003134f]"
)


class _Fail(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _ClientGone(Exception):
    """The client disconnected before its body was read."""


def check_metastudio_options(options: EmulatorOptions) -> None:
    """Refuse MetaStudio options that make no sense (at startup)."""
    for name in ("metastudio_project_id", "metastudio_ak", "metastudio_sk", "metastudio_token"):
        value = getattr(options, name)
        if not isinstance(value, str) or not value:
            raise ValidationError(name, value, "must be a non-empty string")
    if options.metastudio_url_ttl_seconds < 0:
        raise ValidationError(
            "metastudio_url_ttl_seconds", options.metastudio_url_ttl_seconds, "must be >= 0"
        )
    if options.metastudio_step_seconds < 0:
        raise ValidationError(
            "metastudio_step_seconds", options.metastudio_step_seconds, "must be >= 0"
        )


def fault_targets() -> tuple[FaultTarget, ...]:
    """The MetaStudio requests failure injection applies to: presigned PUTs."""
    body = msgspec.json.encode(
        ErrorBody(error_code=UNAVAILABLE, error_msg="service unavailable (injected failure)")
    )
    target = FaultTarget(
        OBS_PREFIX + "/",
        "metastudio_injected_failures",
        body,
        methods=frozenset({"PUT"}),
        prefix=True,
    )
    return (target,)


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(value: Collection[str]) -> Collection[str]:
    return (value,) if isinstance(value, str) else value  # a lone name, not its letters


# -- state --------------------------------------------------------------------


@dataclass
class StoredObject:
    """One uploaded object (a part or a whole file) on disk."""

    path: Path
    etag: str  # quoted md5 hex, as in the ETag header
    size: int


@dataclass
class Presigned:
    """One presigned PUT URL."""

    signature: str
    job_id: str
    object: str
    part_number: int | None
    content_type: str
    expires: int  # X-Amz-Expires, seconds
    expires_at: float  # time.monotonic()
    used: bool = False


@dataclass
class JobRecord:
    """One training job."""

    job_id: str
    project_id: str
    request: CreateJobRequest
    directory: Path
    seq: int
    state: str = JobState.WAIT_FILE_UPLOAD
    asset_id: str | None = None
    create_time: str = field(default_factory=_now_text)
    last_update_time: str = ""
    video_part_count: int = 1
    action_part_count: int | None = None
    video_parts: dict[int, StoredObject] = field(default_factory=dict)
    action_parts: dict[int, StoredObject] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # single objects by name
    completion_order: list[int] = field(default_factory=list)  # training-video parts, as stored
    video_path: Path | None = None  # the assembled training video, once confirmed
    action_video_path: Path | None = None
    authorization_confirmed: bool = False
    video_deleted: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False, compare=False)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope, repr=False)
    _changed: anyio.Event = field(default_factory=anyio.Event, repr=False)
    _reached: dict[str, anyio.Event] = field(default_factory=dict, repr=False)
    part_stored: anyio.Event = field(default_factory=anyio.Event, repr=False)

    def __post_init__(self) -> None:
        self.last_update_time = self.last_update_time or self.create_time
        self.reached(self.state).set()

    def reached(self, state: str) -> anyio.Event:
        """An event set once the job reaches ``state`` (since creation or the last update)."""
        event = self._reached.get(state)
        if event is None:
            event = self._reached[state] = anyio.Event()
        return event

    def set_state(self, state: str) -> None:
        self.state = state
        self.last_update_time = _now_text()
        self.reached(state).set()
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def reset(self) -> None:
        """Forget the reached states (an update starts the job over)."""
        self._reached = {}
        self.set_state(JobState.WAIT_FILE_UPLOAD)

    async def wait_for(self, *states: str) -> str:
        """Wait until the job is in one of ``states``; returns that state."""
        while self.state not in states:
            await self._changed.wait()
        return self.state

    def parts(self, obj: str) -> dict[int, StoredObject]:
        return self.video_parts if obj == TRAINING_VIDEO else self.action_parts

    def to_wire(self) -> Job:
        req = self.request
        services = req.supported_service or list(_DEFAULT_SERVICES)
        return Job(
            job_id=self.job_id,
            name=req.name,
            state=self.state,
            asset_id=self.asset_id if self.state == JobState.JOB_SUCCESS else None,
            contact=req.contact,
            batch_name=req.batch_name,
            tags=req.tags,
            model_version=req.model_version or "V3.2",
            create_time=self.create_time,
            last_update_time=self.last_update_time,
            is_background_replacement=(
                True if req.is_background_replacement is None else req.is_background_replacement
            ),
            is_flexus=bool(req.is_flexus),
            supported_service=list(services),
        )


class MetaStudioStore(ServiceStore):
    """Jobs, their presigned URLs and uploaded files; ``state.metastudio``."""

    prefix = "avatarkit-metastudio-"

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, JobRecord] = {}
        self.urls: dict[str, Presigned] = {}  # by signature
        self._seq = 0

    def new_job(self, project_id: str, request: CreateJobRequest) -> JobRecord:
        job_id = uuid.uuid4().hex
        directory = self.directory / job_id
        directory.mkdir()
        self._seq += 1
        job = JobRecord(
            job_id=job_id,
            project_id=project_id,
            request=request,
            directory=directory,
            seq=self._seq,
        )
        self.jobs[job_id] = job
        return job

    def job(self, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise _Fail(404, NOT_FOUND, f"job_id={job_id!r}: no such job")
        return job

    def revoke(self, job_id: str) -> None:
        """Invalidate every URL of the job."""
        for signature in [s for s, u in self.urls.items() if u.job_id == job_id]:
            del self.urls[signature]

    def issue(self, job: JobRecord, base: str, ttl: float) -> CreateJobResponse:
        """Fresh presigned URLs for every object of the job (the old ones are revoked)."""
        self.revoke(job.job_id)
        req = job.request
        job.video_part_count = req.video_multipart_count or 1
        job.action_part_count = req.action_video_multipart_count
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        expires = int(ttl)
        expires_at = time.monotonic() + ttl

        def url(obj: str, part: int | None = None, content_type: str = OCTET_STREAM) -> str:
            signature = secrets.token_hex(16)
            self.urls[signature] = Presigned(
                signature=signature,
                job_id=job.job_id,
                object=obj,
                part_number=part,
                content_type=content_type,
                expires=expires,
                expires_at=expires_at,
            )
            query = f"partNumber={part}&" if part is not None else ""
            return (
                f"{base}{OBS_PREFIX}/{job.job_id}/{obj}?{query}X-Amz-Date={stamp}"
                f"&X-Amz-Expires={expires}&X-Amz-Signature={signature}"
            )

        singles = {
            name: url(obj, None, ZIP if obj == "audio" else OCTET_STREAM)
            for name, obj in SINGLE_OBJECTS.items()
        }
        return CreateJobResponse(
            job_id=job.job_id,
            training_video_upload_url=[
                url(TRAINING_VIDEO, k) for k in range(1, job.video_part_count + 1)
            ],
            action_video_upload_url=[
                url(ACTION_VIDEO, k) for k in range(1, (job.action_part_count or 0) + 1)
            ],
            **singles,
        )

    async def clear_uploads(self, job: JobRecord) -> None:
        """Remove the job's uploaded and assembled files."""
        job.video_parts.clear()
        job.action_parts.clear()
        job.files.clear()
        job.completion_order.clear()
        job.video_path = job.action_video_path = None
        await anyio.to_thread.run_sync(_empty_directory, job.directory)

    async def delete(self, job: JobRecord) -> None:
        job.scope.cancel()
        self.revoke(job.job_id)
        self.jobs.pop(job.job_id, None)
        await anyio.to_thread.run_sync(shutil.rmtree, job.directory, True)

    def start(self, state: EmulatorState, job: JobRecord, steps: tuple[str, ...]) -> None:
        """Walk the job through ``steps`` in the background, one per step time."""
        tg = self.task_group
        if tg is None:
            raise _Fail(500, INTERNAL, "the emulator is not running")
        job.scope.cancel()
        job.scope = anyio.CancelScope()
        tg.start_soon(_advance, state, job, steps)


def _empty_directory(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


async def _advance(state: EmulatorState, job: JobRecord, steps: tuple[str, ...]) -> None:
    fail = job.request.name in _names(state.options.metastudio_fail_names)
    with job.scope:
        for step in steps:
            # Read on every step, so a test may speed a job up while it runs.
            await anyio.sleep(state.options.metastudio_step_seconds)
            if fail and step != JobState.AUTO_VERIFYING:
                job.set_state(JobState.AUTO_VERIFY_FAILED)
                return
            if step == JobState.JOB_SUCCESS:
                job.asset_id = uuid.uuid4().hex  # before the state, so waiters see it
            job.set_state(step)


def _assemble(parts: list[Path], target: Path) -> None:
    """Concatenate the parts into ``target`` (written aside, then renamed)."""
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        for path in parts:
            with path.open("rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
    os.replace(partial, target)


# -- requests -----------------------------------------------------------------

T = TypeVar("T")


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return decode_body(body, kind)
    except BodyProblem as problem:
        raise _body_failure(problem) from None


def _body_failure(problem: BodyProblem) -> _Fail:
    """A bad body as a ValidationError-style message naming the field."""
    if problem.path is None:
        return _Fail(400, INVALID, f"invalid parameter: {problem.rule}")
    if not problem.path:
        return _Fail(400, INVALID, f"invalid parameter: body: {problem.rule} (need a JSON object)")
    rule = "is required" if problem.missing else problem.rule
    return _Fail(
        400, INVALID, f"invalid parameter: {ValidationError(problem.path, problem.value, rule)}"
    )


@contextlib.contextmanager
def _invalid() -> Iterator[None]:
    """Turn a rule's ValidationError into a 400 answer."""
    try:
        yield
    except ValidationError as exc:
        raise _Fail(400, INVALID, f"invalid parameter: {exc}") from None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _check_json(request: Request) -> None:
    if _media_type(request) != "application/json":
        value = request.headers.get("content-type", "")
        problem = ValidationError("Content-Type", value, "must be application/json")
        raise _Fail(400, INVALID, f"invalid parameter: {problem}")


def _utf8(value: str) -> str:
    """A header value as the client wrote it (Starlette decodes headers as latin-1)."""
    return value.encode("latin-1").decode("utf-8", "surrogateescape")


def _signed_url(request: Request) -> str:
    """The URL as the client signed it: scheme://host[:port]/path?query, Host as received."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    path = raw_path.decode("latin-1").split("?", 1)[0]
    host = request.headers.get("host") or request.url.netloc
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{request.url.scheme}://{host}{path}" + (f"?{query}" if query else "")


def _authenticate(request: Request, state: EmulatorState, body: bytes, project_id: str) -> None:
    options = state.options
    headers = request.headers
    token = headers.get("x-auth-token")
    if token is not None:
        if not secrets.compare_digest(_utf8(token).encode(), options.metastudio_token.encode()):
            raise _Fail(401, UNAUTHORIZED, "X-Auth-Token: invalid token")
    elif "authorization" in headers:
        received = {_utf8(k): _utf8(v) for k, v in headers.items()}
        try:
            verify(
                request.method,
                _signed_url(request),
                received,
                body,
                ak=options.metastudio_ak,
                sk=options.metastudio_sk,
            )
        except SignatureError as exc:
            raise _Fail(401, UNAUTHORIZED, f"AK/SK signature refused: {exc.reason}") from None
        x_project = headers.get("x-project-id")
        if not x_project:
            raise _Fail(401, UNAUTHORIZED, "X-Project-Id: required with AK/SK authentication")
        if x_project != project_id:
            raise _Fail(
                403,
                FORBIDDEN,
                f"X-Project-Id={x_project!r}: differs from the path's project_id={project_id!r}",
            )
    else:
        raise _Fail(
            401, UNAUTHORIZED, "no credentials: send X-Auth-Token or sign the request (AK/SK)"
        )
    if project_id != options.metastudio_project_id:
        raise _Fail(403, FORBIDDEN, f"project_id={project_id!r}: not this account's project")


def _check_user_id(request: Request) -> None:
    value = request.headers.get("x-app-userid")
    if value is not None and _CHINESE.search(_utf8(value)):
        problem = ValidationError(
            "X-App-UserId", _utf8(value), "must not contain Chinese characters"
        )
        raise _Fail(400, INVALID, f"invalid parameter: {problem}")


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


def _obs_base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


Handler = Callable[[Request, "EmulatorState", bytes], Awaitable[Response]]


async def _create(request: Request, state: EmulatorState, body: bytes) -> Response:
    _check_json(request)
    req = _decode(body, CreateJobRequest)
    with _invalid():
        check_create_request(req)
    store = state.metastudio
    job = store.new_job(request.path_params["project_id"], req)
    return _json(store.issue(job, _obs_base(request), state.options.metastudio_url_ttl_seconds))


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        rule = f"must be an integer from {low}" + (f" to {high}" if high is not None else " up")
        raise ValidationError(name, raw, rule)
    return value


def _choice(request: Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise ValidationError(name, value, f"must be one of {', '.join(allowed)}")
    return value


async def _list(request: Request, state: EmulatorState, body: bytes) -> Response:
    params = request.query_params
    with _invalid():
        offset = _int_param(request, "offset", 0, 0, None)
        limit = _int_param(request, "limit", _LIST_DEFAULT_LIMIT, *_LIST_LIMIT)
        sort_key = _choice(request, "sort_key", "create_time", _SORT_KEYS)
        sort_dir = _choice(request, "sort_dir", "desc", _SORT_DIRS)
        states: set[str] | None = None
        if "state" in params:
            states = {s.strip() for s in params["state"].split(",") if s.strip()}
            if not states:
                raise ValidationError("state", params["state"], "must name at least one state")
    jobs = list(state.metastudio.jobs.values())
    if states is not None:
        jobs = [j for j in jobs if j.state in states]
    if "batch_name" in params:
        jobs = [j for j in jobs if j.request.batch_name == params["batch_name"]]
    if "name" in params:
        jobs = [j for j in jobs if params["name"] in j.request.name]
    if "job_id" in params:
        jobs = [j for j in jobs if j.job_id == params["job_id"]]
    if "tag" in params:
        jobs = [j for j in jobs if params["tag"] in (j.request.tags or ())]

    def key(job: JobRecord) -> tuple[str, int]:
        stamp = job.create_time if sort_key == "create_time" else job.last_update_time
        return stamp, job.seq  # seq breaks ties between jobs of the same second

    jobs.sort(key=key, reverse=sort_dir == "desc")
    page = [j.to_wire() for j in jobs[offset : offset + limit]]
    return _json(JobList(count=len(jobs), jobs=page))


async def _show(request: Request, state: EmulatorState, body: bytes) -> Response:
    return _json(state.metastudio.job(request.path_params["job_id"]).to_wire())


def _conflict(job: JobRecord, what: str) -> _Fail:
    return _Fail(409, CONFLICT, f"job {job.job_id} is {job.state}: {what}")


async def _update(request: Request, state: EmulatorState, body: bytes) -> Response:
    store = state.metastudio
    job = store.job(request.path_params["job_id"])
    req = job.request
    if body.strip():
        _check_json(request)
        req = _decode(body, CreateJobRequest)
        with _invalid():
            check_create_request(req)
    async with job.lock:
        if job.state not in _UPDATABLE:
            raise _conflict(job, "only a job in AUTO_VERIFY_FAILED or MANUAL_VERIFY_FAILED updates")
        job.request = req
        job.authorization_confirmed = job.video_deleted = False
        await store.clear_uploads(job)
        answer = store.issue(job, _obs_base(request), state.options.metastudio_url_ttl_seconds)
        job.reset()
    return _json(answer)


async def _delete(request: Request, state: EmulatorState, body: bytes) -> Response:
    store = state.metastudio
    job = store.job(request.path_params["job_id"])
    async with job.lock:  # not while a command assembles its files
        await store.delete(job)
    return Response(status_code=204)


def _uploaded(parts: dict[int, StoredObject]) -> list[MultipartData]:
    return [MultipartData(part_number=k, etag=parts[k].etag) for k in sorted(parts)]


async def _confirm(job: JobRecord, obj: str) -> CommandResult:
    count = job.video_part_count if obj == TRAINING_VIDEO else job.action_part_count
    if count is None:
        return CommandResult(
            commond_result="EXCUTE_FAILED",
            excute_failed_msg="no action video was requested (action_video_multipart_count)",
        )
    parts = job.parts(obj)
    missing = [k for k in range(1, count + 1) if k not in parts]
    if missing:
        return CommandResult(
            commond_result="EXCUTE_FAILED",
            excute_failed_msg=f"{obj}: parts not uploaded: {', '.join(map(str, missing))}",
            multipart_data=_uploaded(parts),
        )
    target = job.directory / f"{obj}.mp4"
    await anyio.to_thread.run_sync(_assemble, [parts[k].path for k in range(1, count + 1)], target)
    if obj == TRAINING_VIDEO:
        job.video_path = target
    else:
        job.action_video_path = target
    return CommandResult(commond_result="EXCUTE_SUCCESS", multipart_data=_uploaded(parts))


async def _command(request: Request, state: EmulatorState, body: bytes) -> Response:
    store = state.metastudio
    job = store.job(request.path_params["job_id"])
    _check_json(request)
    req = _decode(body, CommandRequest)
    if req.command not in COMMANDS:
        problem = ValidationError("command", req.command, f"must be one of {', '.join(COMMANDS)}")
        raise _Fail(400, INVALID, f"invalid parameter: {problem}")
    command = req.command
    success = CommandResult(commond_result="EXCUTE_SUCCESS")
    async with job.lock:
        if command == "GET_MULTIPART_UPLOADED":
            result = CommandResult(
                commond_result="EXCUTE_SUCCESS", multipart_data=_uploaded(job.video_parts)
            )
        elif command == "GET_ACTION_VIDEO_MULTIPART_UPLOADED":
            result = CommandResult(
                commond_result="EXCUTE_SUCCESS", multipart_data=_uploaded(job.action_parts)
            )
        elif command == "CONFIRM_REPAIR":
            if job.state != JobState.WAIT_USER_CONFIRM:
                raise _conflict(job, f"{command} needs WAIT_USER_CONFIRM")
            job.set_state(JobState.INFERENCE_DATA_PREPROCESSING)
            store.start(state, job, (JobState.JOB_SUCCESS,))
            result = success
        elif command == "DELETE_JOB_VIDEO":
            if not (is_success(job.state) or is_failed(job.state)):
                raise _conflict(job, f"{command} needs a finished job")
            job.video_parts.clear()
            job.action_parts.clear()
            job.video_path = job.action_video_path = None
            job.video_deleted = True
            await anyio.to_thread.run_sync(_delete_videos, job.directory)
            result = success
        else:
            if job.state != JobState.WAIT_FILE_UPLOAD:
                raise _conflict(job, f"{command} needs WAIT_FILE_UPLOAD")
            if command == "CONFIRM_MULTIPART_UPLOADED":
                result = await _confirm(job, TRAINING_VIDEO)
            elif command == "CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED":
                result = await _confirm(job, ACTION_VIDEO)
            elif command == "CONFIRM_AUTHORIZATION_LETTER":
                job.authorization_confirmed = True
                result = success
            else:  # SUBMITVERIFYING
                if job.video_path is None:
                    result = CommandResult(
                        commond_result="EXCUTE_FAILED",
                        excute_failed_msg="no confirmed training video: upload every part, "
                        "then CONFIRM_MULTIPART_UPLOADED",
                    )
                else:
                    job.set_state(JobState.AUTO_VERIFYING)
                    store.start(state, job, PIPELINE[1:])
                    result = success
    return _json(result)


def _delete_videos(directory: Path) -> None:
    for pattern in (f"{TRAINING_VIDEO}*", f"{ACTION_VIDEO}*"):
        for path in directory.glob(pattern):
            path.unlink(missing_ok=True)


# -- presigned PUTs -------------------------------------------------------------


class _Body:
    """The request body, read straight from ASGI so that a refusal can drain the rest."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.done = True
                raise _ClientGone
            if not message.get("more_body", False):
                self.done = True
            chunk: bytes = message.get("body", b"")
            if chunk:
                yield chunk

    async def drain(self) -> None:
        """Read and drop what is left: an unread body makes the client see a reset."""
        with contextlib.suppress(_ClientGone):
            async for _ in self.chunks():
                pass


def _presigned(request: Request, state: EmulatorState) -> tuple[Presigned, JobRecord]:
    store = state.metastudio
    params = request.query_params
    job_id, obj = request.path_params["job_id"], request.path_params["object"]
    url = store.urls.get(params.get("X-Amz-Signature", ""))
    part = params.get("partNumber")
    if (
        url is None
        or url.job_id != job_id
        or url.object != obj
        or part != (None if url.part_number is None else str(url.part_number))
        or params.get("X-Amz-Expires") != str(url.expires)
    ):
        raise _Fail(403, URL_REFUSED, "presigned URL refused: the signature does not match")
    if url.used:
        raise _Fail(403, URL_REFUSED, "presigned URL already used (URLs are single-use)")
    if time.monotonic() >= url.expires_at:
        raise _Fail(403, URL_REFUSED, f"presigned URL expired (valid {url.expires} s)")
    job = store.jobs.get(job_id)
    if job is None:  # unreachable while delete revokes the URLs; kept for safety
        raise _Fail(403, URL_REFUSED, "presigned URL refused: the job is gone")
    return url, job


def _content_length(request: Request, url: Presigned) -> int:
    raw = request.headers.get("content-length")
    if raw is None:
        raise _Fail(411, LENGTH_REQUIRED, "Content-Length: required on a presigned PUT")
    media = _media_type(request)
    if media != url.content_type:
        problem = ValidationError(
            "Content-Type", request.headers.get("content-type"), f"must be {url.content_type}"
        )
        raise _Fail(400, INVALID, f"invalid parameter: {problem}")
    if not raw.isdigit():
        problem = ValidationError("Content-Length", raw, "must be a non-negative integer")
        raise _Fail(400, INVALID, f"invalid parameter: {problem}")
    return int(raw)


async def _receive_file(body: _Body, path: Path, length: int) -> StoredObject:
    """Stream the body into ``path``; checks its length against Content-Length."""
    md5 = hashlib.md5()
    size = 0
    async with await anyio.open_file(path, "wb") as f:
        async for chunk in body.chunks():
            size += len(chunk)
            if size <= length:  # past the declared length it is refused anyway: stop writing
                md5.update(chunk)
                await f.write(chunk)
    if size != length:
        problem = ValidationError("Content-Length", length, f"the body has {size} bytes")
        raise _Fail(400, INVALID, f"invalid parameter: {problem}")
    return StoredObject(path=path, etag=f'"{md5.hexdigest()}"', size=size)


def _store(
    state: EmulatorState, url: Presigned, job: JobRecord, received: StoredObject
) -> StoredObject:
    """Consume the URL and keep the object (no await: the check and the claim are one step)."""
    if url.used:  # a concurrent PUT to the same URL finished first
        raise _Fail(403, URL_REFUSED, "presigned URL already used (URLs are single-use)")
    if state.metastudio.urls.get(url.signature) is not url:
        raise _Fail(403, URL_REFUSED, "presigned URL refused: revoked while uploading")
    url.used = True
    name = url.object if url.part_number is None else f"{url.object}.part{url.part_number}"
    final = job.directory / name
    os.replace(received.path, final)
    stored = StoredObject(path=final, etag=received.etag, size=received.size)
    if url.part_number is None:
        job.files[url.object] = final
    else:
        job.parts(url.object)[url.part_number] = stored
        if url.object == TRAINING_VIDEO:
            job.completion_order.append(url.part_number)
            stored_event, job.part_stored = job.part_stored, anyio.Event()
            stored_event.set()
    state.stats.metastudio_parts_uploaded += 1
    state.stats.metastudio_put_bytes += stored.size
    return stored


async def _held(state: EmulatorState, url: Presigned, job: JobRecord) -> None:
    """Test knob: a part listed in ``metastudio_hold_parts`` is stored only after some
    training-video part not listed there is (parts then complete out of order)."""
    hold = state.options.metastudio_hold_parts
    if url.object != TRAINING_VIDEO or url.part_number not in hold:
        return
    while not any(number not in hold for number in job.video_parts):
        await job.part_stored.wait()


async def _put_object(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    headers = {"X-Request-Id": uuid.uuid4().hex}
    body = _Body(request.receive)
    temp: Path | None = None
    try:
        if request.method != "PUT":
            headers["Allow"] = "PUT"
            raise _Fail(405, METHOD, f"method {request.method} not allowed: use PUT")
        url, job = _presigned(request, state)
        length = _content_length(request, url)
        temp = job.directory / f".upload-{secrets.token_hex(8)}"
        received = await _receive_file(body, temp, length)
        await _held(state, url, job)
        stored = _store(state, url, job, received)
        temp = None
    except _ClientGone:
        return Response(status_code=400, headers=headers)  # nobody reads it
    except _Fail as fail:
        await body.drain()
        state.stats.metastudio_put_rejected += 1
        return _error(fail, headers)
    except Exception:  # an emulator bug must still answer in the service's shape
        log.exception("metastudio PUT %s failed", request.url.path)
        await body.drain()
        return _error(_Fail(500, INTERNAL, "Internal Error"), headers)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
    headers["ETag"] = stored.etag
    return Response(status_code=200, headers=headers)


# -- HTTP ---------------------------------------------------------------------


def _error(fail: _Fail, headers: dict[str, str]) -> Response:
    body = msgspec.json.encode(ErrorBody(error_code=fail.code, error_msg=fail.message))
    return Response(body, fail.status, headers=headers, media_type="application/json")


def _api(handlers: dict[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    allow = ", ".join(handlers)

    async def endpoint(request: Request) -> Response:
        state: EmulatorState = request.app.state.emulator
        headers = {"X-Request-Id": uuid.uuid4().hex}
        # Read the body first even when refusing, and whole: the signature covers it.
        body = await request.body()
        try:
            handler = handlers.get(request.method)
            if handler is None:
                headers["Allow"] = allow
                raise _Fail(405, METHOD, f"method {request.method} not allowed: use {allow}")
            _authenticate(request, state, body, request.path_params["project_id"])
            _check_user_id(request)
            response = await handler(request, state, body)
        except _Fail as fail:
            return _error(fail, headers)
        except Exception:  # an emulator bug must still answer in the service's shape
            log.exception("metastudio %s %s failed", request.method, request.url.path)
            return _error(_Fail(500, INTERNAL, "Internal Error"), headers)
        response.headers.update(headers)
        return response

    return endpoint


async def _no_such_api(request: Request) -> Response:
    fail = _Fail(404, NOT_FOUND, f"no such API: {request.method} {request.url.path}")
    return _error(fail, {"X-Request-Id": uuid.uuid4().hex})


def metastudio_routes() -> list[BaseRoute]:
    """The routes of the API and of the presigned uploads."""
    return [
        Route(API_PATH + "/jobs", _api({"POST": _create, "GET": _list}), methods=_ALL_METHODS),
        Route(
            API_PATH + "/jobs/{job_id:str}",
            _api({"GET": _show, "PUT": _update, "DELETE": _delete}),
            methods=_ALL_METHODS,
        ),
        Route(
            API_PATH + "/jobs/{job_id:str}/command",
            _api({"POST": _command}),
            methods=_ALL_METHODS,
        ),
        Route(
            "/v1/{project_id:str}/digital-human-training-manage/{rest:path}",
            _no_such_api,
            methods=_ALL_METHODS,
        ),
        Route(OBS_PREFIX + "/{job_id:str}/{object:str}", _put_object, methods=_ALL_METHODS),
    ]
