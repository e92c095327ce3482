"""The MetaStudio API's HTTP side: routes, auth, envelopes (SPEC §4, §4.1, doc 003).

Under :data:`API_PATH` (``/v1/{project_id}/digital-human-training-manage/user``):

=======  ===========================  ==========================================
method   path                         what
=======  ===========================  ==========================================
POST     ``/jobs``                    create (doc 003); the job id and upload URLs
GET      ``/jobs``                    list: ``offset`` (>= 0), ``limit`` (1..100,
                                      default 10), ``state`` (comma list),
                                      ``batch_name``, ``name`` (substring),
                                      ``job_id``, ``tag``, ``is_flexus``,
                                      ``is_live_copy``, ``model_resolution``,
                                      ``create_since``/``create_until``,
                                      ``update_since``/``update_until`` (RFC
                                      3339), ``sort_key`` (create_time |
                                      update_time | asset_order), ``sort_dir``
                                      (asc | desc, default asc)
GET      ``/jobs/{job_id}``           show
PUT      ``/jobs/{job_id}``           update (only in AUTO_VERIFY_FAILED or
                                      MANUAL_VERIFY_FAILED): the given fields
                                      replace the job's, fresh upload URLs, the
                                      old ones revoked, uploads cleared,
                                      WAIT_FILE_UPLOAD
DELETE   ``/jobs/{job_id}``           delete (204)
POST     ``/jobs/{job_id}/command``   one of :data:`~.models.COMMANDS`
=======  ===========================  ==========================================

Auth (doc 003 table 2): ``X-Auth-Token`` equal to ``metastudio_token``, or an
AK/SK signature (``Authorization``/``X-Sdk-Date``, checked by the emulator's
own :mod:`.signing`) plus ``X-Project-Id`` equal to the path's project id.
The path's project id must be ``metastudio_project_id``.  ``X-App-UserId``,
when sent, must not contain Chinese characters ("不允许输入中文"); the job
remembers it (``app_user_id``).  Every API response carries ``X-Request-Id``
(doc 003 table 5); errors are ``{"error_code", "error_msg"}`` (tables 7/8),
codes in :mod:`.errors`.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from avatarkit.emulator._service import ALL_METHODS, ServiceApi, ServiceError
from avatarkit.emulator.metastudio import models
from avatarkit.emulator.metastudio.errors import (
    CODES,
    FORBIDDEN,
    INVALID,
    UNAUTHORIZED,
    ErrorBody,
    MetaStudioError,
    conflict,
)
from avatarkit.emulator.metastudio.models import (
    AUTO_VERIFYING,
    COMMANDS,
    FINISHED_STATES,
    INFERENCE_DATA_PREPROCESSING,
    JOB_FINISH,
    JOB_PENDING,
    JOB_REJECT,
    JOB_SUCCESS,
    PIPELINE,
    UPDATABLE,
    WAIT_FILE_UPLOAD,
    WAIT_USER_CONFIRM,
    CommandRequest,
    CommandResult,
    CreateBody,
    ErrorInfo,
    JobListAnswer,
    MultipartUploadInfo,
    UpdateBody,
)
from avatarkit.emulator.metastudio.obs import (
    ACTION_VIDEO,
    OBS_PREFIX,
    TRAINING_VIDEO,
    StoredObject,
    assemble,
    put_object,
)
from avatarkit.emulator.metastudio.signing import SignatureRefused, check_signature
from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from avatarkit.emulator.metastudio.store import JobRecord
    from avatarkit.emulator.state import EmulatorState

__all__ = ["API_PATH", "SHAPED_PREFIXES", "MetaStudioApi", "metastudio_routes"]

API_PATH: Final = "/v1/{project_id}/digital-human-training-manage/user"
# Shaping applies to the API (whose project id varies, hence "/v1/") and the PUTs.
SHAPED_PREFIXES: Final = ("/v1/", OBS_PREFIX + "/")
_CHINESE: Final = re.compile(
    "[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0002ebef\U00030000-\U0003134f]"
)
_RFC3339: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def _utf8(value: str) -> str:
    """A header value as the client wrote it (Starlette decodes headers as latin-1)."""
    return value.encode("latin-1").decode("utf-8", "surrogateescape")


class MetaStudioApi(ServiceApi):
    name = "metastudio"
    codes = CODES

    def error_body(self, error: ServiceError, request: Request | None) -> bytes:
        return msgspec.json.encode(ErrorBody(error_code=str(error.code), error_msg=error.message))

    def response_headers(self, request: Request) -> dict[str, str]:
        # One per request (set once, so the error and success paths agree).
        rid: str | None = request.scope.get("metastudio_request_id")
        if rid is None:
            rid = request.scope["metastudio_request_id"] = secrets.token_hex(16)
        return {"X-Request-Id": rid}

    async def check(self, request: Request, state: EmulatorState, body: bytes) -> None:
        self._authenticate(request, state, body)
        value = request.headers.get("x-app-userid")
        if value is not None and _CHINESE.search(_utf8(value)):
            problem = ValidationError(
                "X-App-UserId",
                _utf8(value),
                "must not contain Chinese characters (doc 003 table 2)",
            )
            raise self.invalid(problem)

    def _authenticate(self, request: Request, state: EmulatorState, body: bytes) -> None:
        options = state.options
        headers = request.headers
        project_id = request.path_params["project_id"]
        token = headers.get("x-auth-token")
        if token is not None:
            if not secrets.compare_digest(_utf8(token).encode(), options.metastudio_token.encode()):
                raise MetaStudioError(401, UNAUTHORIZED, "X-Auth-Token: invalid token")
        elif "authorization" in headers:
            raw_path = (request.scope.get("raw_path") or request.scope["path"].encode()).decode(
                "latin-1"
            )
            try:
                check_signature(
                    method=request.method,
                    raw_path=raw_path.split("?", 1)[0],
                    raw_query=request.scope.get("query_string", b"").decode("latin-1"),
                    headers={_utf8(k): _utf8(v) for k, v in headers.items()},
                    body=body,
                    ak=options.metastudio_ak,
                    sk=options.metastudio_sk,
                )
            except SignatureRefused as exc:
                raise MetaStudioError(
                    401, UNAUTHORIZED, f"AK/SK signature refused: {exc.reason}"
                ) from None
            x_project = headers.get("x-project-id")
            if not x_project:
                raise MetaStudioError(
                    401, UNAUTHORIZED, "X-Project-Id: required with AK/SK authentication"
                )
            if x_project != project_id:
                raise MetaStudioError(
                    403,
                    FORBIDDEN,
                    f"X-Project-Id={x_project!r}: differs from the path's "
                    f"project_id={project_id!r}",
                )
        else:
            raise MetaStudioError(
                401, UNAUTHORIZED, "no credentials: send X-Auth-Token or sign the request (AK/SK)"
            )
        if project_id != options.metastudio_project_id:
            raise MetaStudioError(
                403, FORBIDDEN, f"project_id={project_id!r}: not this account's project"
            )


API: Final = MetaStudioApi()


def _obs_base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# -- create, update, show, delete ----------------------------------------------------


async def _create(request: Request, state: EmulatorState, body: bytes) -> Response:
    API.require_json(request)
    req = API.decode(body, CreateBody)
    with API.rules():
        models.check_create(req)
    user = request.headers.get("x-app-userid")
    store = state.metastudio
    job = store.new_job(request.path_params["project_id"], req, _utf8(user) if user else None)
    return API.json(store.issue(job, _obs_base(request), state.options.metastudio_url_ttl_seconds))


async def _show(request: Request, state: EmulatorState, body: bytes) -> Response:
    return API.json(state.metastudio.job(request.path_params["job_id"]).detail())


async def _update(request: Request, state: EmulatorState, body: bytes) -> Response:
    store = state.metastudio
    job = store.job(request.path_params["job_id"])
    update = UpdateBody()
    if body.strip():
        API.require_json(request)
        update = API.decode(body, UpdateBody)
    with API.rules():
        merged = models.check_update(update, job.request)
    async with job.lock:
        if job.state not in UPDATABLE:
            raise conflict(
                job.job_id,
                job.state,
                "only a job in AUTO_VERIFY_FAILED or MANUAL_VERIFY_FAILED updates",
            )
        job.request = merged
        job.authorization_confirmed = job.video_deleted = False
        await store.clear_uploads(job)
        answer = store.issue(job, _obs_base(request), state.options.metastudio_url_ttl_seconds)
        job.log("USER_UPDATE_VIDEO", "USER")
        job.reset()
    return API.json(answer)


async def _delete(request: Request, state: EmulatorState, body: bytes) -> Response:
    store = state.metastudio
    job = store.job(request.path_params["job_id"])
    async with job.lock:  # not while a command assembles its files
        await store.delete(job)
    return Response(status_code=204)


# -- list --------------------------------------------------------------------------------


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
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise ValidationError(name, value, f"must be one of {', '.join(allowed)}")
    return value


def _bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise ValidationError(name, raw, "must be true or false")
    return raw.lower() == "true"


def _time_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    if not _RFC3339.fullmatch(raw):
        raise ValidationError(name, raw, "must be an RFC 3339 time, e.g. 2020-07-30T10:43:17Z")
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _list(request: Request, state: EmulatorState, body: bytes) -> Response:
    params = request.query_params
    with API.rules():
        offset = _int_param(request, "offset", 0, 0, None)
        limit = _int_param(request, "limit", models.LIST_DEFAULT_LIMIT, *models.LIST_LIMIT)
        sort_key = _choice(request, "sort_key", "create_time", models.SORT_KEYS)
        sort_dir = _choice(request, "sort_dir", "asc", models.SORT_DIRS)  # "默认asc升序"
        states: set[str] | None = None
        if params.get("state"):
            states = {s.strip() for s in params["state"].split(",") if s.strip()}
            if not states:
                raise ValidationError("state", params["state"], "must name at least one state")
        flags = {name: _bool_param(request, name) for name in ("is_flexus", "is_live_copy")}
        times = {
            name: _time_param(request, name)
            for name in ("create_since", "create_until", "update_since", "update_until")
        }

    def keep(job: JobRecord) -> bool:
        req = job.request
        text: dict[str, str | None] = {
            "batch_name": req.batch_name,
            "job_id": job.job_id,
            "model_resolution": job.model_resolution,
        }
        for name, value in text.items():
            if params.get(name) and params[name] != value:
                return False
        if params.get("name") and params["name"] not in req.name:
            return False
        if params.get("tag") and params["tag"] not in (req.tags or ()):
            return False
        if flags["is_flexus"] is not None and bool(req.is_flexus) != flags["is_flexus"]:
            return False
        if flags["is_live_copy"] is not None and bool(req.is_live_copy) != flags["is_live_copy"]:
            return False
        created, updated = _stamp(job.create_time), _stamp(job.last_update_time)
        since_until = (
            (times["create_since"], times["create_until"], created),
            (times["update_since"], times["update_until"], updated),
        )
        return all(
            (since is None or stamp >= since) and (until is None or stamp <= until)
            for since, until, stamp in since_until
        )

    jobs = [j for j in state.metastudio.jobs.values() if states is None or j.state in states]
    jobs = [j for j in jobs if keep(j)]

    def key(job: JobRecord) -> tuple[str, int]:
        if sort_key == "update_time":
            return job.last_update_time, job.seq
        if sort_key == "asset_order":
            return job.asset_id or "", job.seq
        return job.create_time, job.seq  # seq breaks ties between jobs of the same second

    jobs.sort(key=key, reverse=sort_dir == "desc")
    page = [j.basic_info() for j in jobs[offset : offset + limit]]
    return API.json(JobListAnswer(count=len(jobs), jobs=page))


# -- commands ----------------------------------------------------------------------------


def _uploaded(parts: dict[int, StoredObject]) -> list[MultipartUploadInfo]:
    return [MultipartUploadInfo(part_number=str(k), etag=parts[k].etag) for k in sorted(parts)]


def _failed(message: str, **fields: Any) -> CommandResult:
    """EXCUTE_FAILED: the reason in ``excute_failed_msg`` and in ``error_info`` (ErrorResponse)."""
    return CommandResult(
        commond_result="EXCUTE_FAILED",
        excute_failed_msg=message,
        error_info=ErrorInfo(error_code=INVALID, error_msg=message),
        **fields,
    )


async def _confirm(job: JobRecord, obj: str) -> CommandResult:
    count = job.video_part_count if obj == TRAINING_VIDEO else job.action_part_count
    if count is None:
        return _failed("no action video was requested (action_video_multipart_count)")
    parts = job.parts(obj)
    missing = [k for k in range(1, count + 1) if k not in parts]
    if missing:
        return _failed(
            f"{obj}: parts not uploaded: {', '.join(map(str, missing))}",
            multipart_data=_uploaded(parts),
        )
    target = job.directory / f"{obj}.mp4"
    await anyio.to_thread.run_sync(assemble, [parts[k].path for k in range(1, count + 1)], target)
    if obj == TRAINING_VIDEO:
        job.video_path = target
    else:
        job.action_video_path = target
    return CommandResult(commond_result="EXCUTE_SUCCESS", multipart_data=_uploaded(parts))


def _delete_videos(job: JobRecord) -> None:
    for pattern in (f"{TRAINING_VIDEO}*", f"{ACTION_VIDEO}*"):
        for path in job.directory.glob(pattern):
            path.unlink(missing_ok=True)


_SUCCESS: Final = CommandResult(commond_result="EXCUTE_SUCCESS")


async def _run_command(state: EmulatorState, job: JobRecord, req: CommandRequest) -> CommandResult:
    store = state.metastudio
    command = req.command
    if command == "GET_MULTIPART_UPLOADED":
        return CommandResult(
            commond_result="EXCUTE_SUCCESS", multipart_data=_uploaded(job.video_parts)
        )
    if command == "GET_ACTION_VIDEO_MULTIPART_UPLOADED":
        return CommandResult(
            commond_result="EXCUTE_SUCCESS", multipart_data=_uploaded(job.action_parts)
        )
    if command == "DELETE_JOB_VIDEO":
        if job.state not in FINISHED_STATES:
            raise conflict(job.job_id, job.state, f"{command} needs a finished job")
        job.video_parts.clear()
        job.action_parts.clear()
        job.video_path = job.action_video_path = None
        job.video_deleted = True
        await anyio.to_thread.run_sync(_delete_videos, job)
        job.log("USER_DELETE_JOB_VIDEO", "USER")
        return _SUCCESS
    # The user's verdicts on a trained model (the SDK: "仅NA白名单用户可用").
    if command in ("CONFIRM_REPAIR", "CONFIRM_ACCEPT", "CONFIRM_REJECT", "CONFIRM_ANSWER"):
        if job.state != WAIT_USER_CONFIRM:
            raise conflict(job.job_id, job.state, f"{command} needs WAIT_USER_CONFIRM")
        if command == "CONFIRM_REPAIR":  # "用户发起优化模型请求": run inference again
            job.log("USER_REPAIR", "USER")
            job.set_state(INFERENCE_DATA_PREPROCESSING)
            store.start(state, job, (JOB_SUCCESS,))
        elif command == "CONFIRM_ACCEPT":  # "用户确认训练效果": the final state
            job.set_state(JOB_FINISH)
        elif command == "CONFIRM_REJECT":  # "用户驳回训练效果"
            job.set_state(JOB_REJECT)
        return _SUCCESS  # CONFIRM_ANSWER: a reply; the job keeps waiting
    if command == "CONFIRM_PENDING":  # "用户挂起任务"
        if job.state in FINISHED_STATES or job.state == JOB_PENDING:
            raise conflict(job.job_id, job.state, f"{command} needs an unfinished, active job")
        job.scope.cancel()  # a pending job does not advance
        job.before_pending = job.state
        job.set_state(JOB_PENDING)
        return _SUCCESS
    if command == "CONFIRM_ACTIVE":  # "用户激活任务"
        if job.state != JOB_PENDING:
            raise conflict(job.job_id, job.state, f"{command} needs JOB_PENDING")
        resume = job.before_pending or WAIT_FILE_UPLOAD
        job.set_state(resume)
        if resume in PIPELINE and resume != JOB_SUCCESS:
            store.start(state, job, PIPELINE[PIPELINE.index(resume) + 1 :])
        return _SUCCESS
    if job.state != WAIT_FILE_UPLOAD:
        raise conflict(job.job_id, job.state, f"{command} needs WAIT_FILE_UPLOAD")
    if command == "CONFIRM_MULTIPART_UPLOADED":
        return await _confirm(job, TRAINING_VIDEO)
    if command == "CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED":
        return await _confirm(job, ACTION_VIDEO)
    if command == "CONFIRM_AUTHORIZATION_LETTER":
        job.authorization_confirmed = True
        return _SUCCESS
    # SUBMITVERIFYING
    if job.video_path is None:
        return _failed(
            "no confirmed training video: upload every part, then CONFIRM_MULTIPART_UPLOADED"
        )
    job.log("USER_VERIFYING_SUBMITTED", "USER")
    job.set_state(AUTO_VERIFYING)
    store.start(state, job, PIPELINE[1:])
    return _SUCCESS


async def _command(request: Request, state: EmulatorState, body: bytes) -> Response:
    job = state.metastudio.job(request.path_params["job_id"])
    API.require_json(request)
    req = API.decode(body, CommandRequest)
    if req.command not in COMMANDS:
        raise API.invalid(
            ValidationError("command", req.command, f"must be one of {', '.join(COMMANDS)}")
        )
    async with job.lock:
        result = await _run_command(state, job, req)
    return API.json(result)


# -- routes ------------------------------------------------------------------------------


def metastudio_routes() -> list[BaseRoute]:
    """The routes of the API and of the presigned uploads."""
    return [
        Route(
            API_PATH + "/jobs",
            API.endpoint({"POST": _create, "GET": _list}),
            methods=ALL_METHODS,
        ),
        Route(
            API_PATH + "/jobs/{job_id:str}",
            API.endpoint({"GET": _show, "PUT": _update, "DELETE": _delete}),
            methods=ALL_METHODS,
        ),
        Route(
            API_PATH + "/jobs/{job_id:str}/command",
            API.endpoint({"POST": _command}),
            methods=ALL_METHODS,
        ),
        Route(
            "/v1/{project_id:str}/digital-human-training-manage/{rest:path}",
            API.unknown_api,
            methods=ALL_METHODS,
        ),
        Route(OBS_PREFIX + "/{job_id:str}/{object:str}", put_object, methods=ALL_METHODS),
    ]
