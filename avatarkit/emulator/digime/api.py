"""The digime service's HTTP API (doc 000): routes, auth, the envelope.

Mounted under :data:`~avatarkit.emulator.routes.DIGIME_PREFIX`.  Every
operation is ``POST`` with a JSON body, ``Content-Type: application/json`` and
``Authorization: <raw token>`` (every section's "Headers"); every answer is
``{"errno": int, "errMsg": str, "data": …}``, success being errno 0 and errMsg
``"success"`` (every "返回" example, and the demo's ``check_res``).  The
success ``data`` strings are the documented ones, typo included
(``"finish video part upload successs"``, §3).  Error codes:
:mod:`avatarkit.emulator.digime.errors`; rules: :mod:`.models`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from avatarkit.emulator._service import ALL_METHODS, BodyProblem, ServiceApi, ServiceError
from avatarkit.emulator.digime import errors as E
from avatarkit.emulator.digime.errors import CODES, DigimeError
from avatarkit.emulator.digime.models import (
    CompleteUploadBody,
    InitTrainBody,
    InitUploadBody,
    MaterialType,
    PartUploadBody,
    TrainingInfoBody,
    TrainingState,
    UploadRecord,
    check_conf_name,
    check_open,
    check_role_show_name,
    check_same,
    check_suffix,
    check_tts_type,
    check_type,
    conf_name_for,
)
from avatarkit.emulator.digime.pics import PICS
from avatarkit.emulator.digime.review import review_voice_archive
from avatarkit.emulator.digime.training import train
from avatarkit.emulator.routes import DIGIME_PICS_PATH, DIGIME_PREFIX
from avatarkit.emulator.shaping import FaultTarget
from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from avatarkit.emulator.options import EmulatorOptions
    from avatarkit.emulator.state import EmulatorState

__all__ = ["DigimeApi", "check_digime_options", "digime_routes", "fault_targets"]

Operation = Callable[[Request, "EmulatorState", bytes], Awaitable[Any]]


class DigimeApi(ServiceApi):
    name: ClassVar[str] = "digime"
    codes = CODES

    def error_body(self, error: ServiceError, request: Request | None) -> bytes:
        return msgspec.json.encode({"errno": error.code, "errMsg": error.message, "data": None})

    def ok(self, data: Any) -> Response:
        return self.json({"errno": 0, "errMsg": "success", "data": data})

    async def check(self, request: Request, state: EmulatorState, body: bytes) -> None:
        _authorize(request, state)
        self.require_json(request)

    def body_error(self, problem: BodyProblem) -> ServiceError:
        if problem.path == "content" and problem.rule.startswith("Invalid base64"):
            rule = "is not valid standard base64 (RFC 4648 alphabet, padded, no whitespace)"
            return DigimeError(
                400,
                E.BAD_BASE64,
                f"invalid content: {ValidationError('content', problem.value, rule)}",
            )
        if problem.path == "content" and "`bytes`" in problem.rule:
            problem.rule = problem.rule.replace("`bytes`", "a base64 `str`")
        return super().body_error(problem)

    def operation(self, op: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request, state: EmulatorState, body: bytes) -> Response:
            return self.ok(await op(request, state, body))

        return self.endpoint({"POST": handler})


API = DigimeApi()


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
    return (API.fault_target(DIGIME_PREFIX + "/video_part_upload", "digime_injected_failures"),)


def _authorize(request: Request, state: EmulatorState) -> None:
    given = request.headers.get("authorization")
    if given is None:
        raise DigimeError(401, E.UNAUTHORIZED, "Authorization: header missing (send the raw token)")
    if not secrets.compare_digest(given.encode(), state.options.token.encode()):
        hint = ' (send the raw token, without "Bearer ")' if given.startswith("Bearer ") else ""
        raise DigimeError(401, E.UNAUTHORIZED, f"Authorization: invalid token{hint}")


def _check_appid(state: EmulatorState, appid: str) -> None:
    if appid != state.options.appid:
        raise ValidationError("appid", appid, "is not the appid of this account")


def _write_at(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.truncate()
        f.write(data)


# -- operations -----------------------------------------------------------------


async def _init_upload(request: Request, state: EmulatorState, body: bytes) -> Any:
    """§1 (videos) and 制作音色 §1 (voice archives)."""
    req = API.decode(body, InitUploadBody)
    with API.rules():
        _check_appid(state, req.appid)
        material = check_type(req.type)
        suffix = check_suffix(material, req.file_suffix)
        tts_type = check_tts_type(material, req.tts_type)
        role_show_name = check_role_show_name(material, req.role_show_name)
        conf_name = conf_name_for(material, req.conf_name)
        # input_resource: the key is required (decoding), "" is accepted (SPEC §6).
    record = state.digime.new_upload(
        appid=req.appid,
        conf_name=conf_name,
        type=material,
        file_suffix=suffix,
        tts_type=tts_type,
        role_show_name=role_show_name,
        input_resource=req.input_resource,
    )
    if state.options.digime_init_data_shape == "bare":
        return record.upload_id
    return {"upload_id": record.upload_id}


def _upload_of(state: EmulatorState, req: PartUploadBody | CompleteUploadBody) -> UploadRecord:
    """The open upload a part or complete request names, after checking its fields."""
    with API.rules():
        _check_appid(state, req.appid)
        material = check_type(req.type)
        suffix = check_suffix(material, req.file_suffix)
        conf_name = conf_name_for(material, req.conf_name)
    record = state.digime.open_upload(req.upload_id)
    check_same(record, material, suffix, conf_name)
    return record


async def _part_upload(request: Request, state: EmulatorState, body: bytes) -> Any:
    """§2: parts in order from 1; all but the last at least the minimum size."""
    req = API.decode(body, PartUploadBody)
    record = _upload_of(state, req)
    min_part = state.options.digime_min_part_bytes
    async with record.lock:  # concurrent parts of one upload take turns
        check_open(record)
        sizes = record.part_sizes
        if req.part_num == len(sizes) + 1:
            replace = False
        elif sizes and req.part_num == len(sizes):
            replace = True  # a retry of the last part, whose reply was lost
        else:
            raise DigimeError(
                400,
                E.OUT_OF_ORDER,
                f"part_num={req.part_num}: out of order, expected {len(sizes) + 1}"
                + (f" (or {len(sizes)} to resend the last part)" if sizes else ""),
            )
        if not req.content:
            raise DigimeError(
                400, E.PART_SIZE, f"content of part {req.part_num}: a part must not be empty"
            )
        if not replace and sizes and sizes[-1] < min_part:
            raise DigimeError(
                400,
                E.PART_SIZE,
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
    """§3; a voice archive (type 11) is reviewed here (see :mod:`.models`)."""
    req = API.decode(body, CompleteUploadBody)
    record = _upload_of(state, req)
    min_part = state.options.digime_min_part_bytes
    async with record.lock:
        check_open(record)
        sizes = record.part_sizes
        if not sizes:
            raise DigimeError(
                400,
                E.NO_PARTS,
                f"upload_id={req.upload_id!r}: no part uploaded, nothing to complete",
            )
        if len(sizes) >= 2 and sizes[-1] < min_part:
            raise DigimeError(
                400,
                E.PART_SIZE,
                f"upload_id={req.upload_id!r}: the last part ({len(sizes)}) has {sizes[-1]} "
                f"bytes; a last part under {min_part} bytes must be merged into the one "
                "before it",
            )
        if record.type is MaterialType.AUDIO:
            reason = await anyio.to_thread.run_sync(
                review_voice_archive, record.path, record.file_suffix
            )
            if reason is not None:
                raise DigimeError(
                    400,
                    E.BAD_ARCHIVE,
                    f"upload_id={req.upload_id!r}: {reason} (fix it and upload it again)",
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
    return str(request.base_url).rstrip("/") + DIGIME_PICS_PATH


async def _init_train(request: Request, state: EmulatorState, body: bytes) -> Any:
    """§4: needs a completed training video (type 1) of the conf_name."""
    req = API.decode(body, InitTrainBody)
    with API.rules():
        _check_appid(state, req.appid)
        conf_name = check_conf_name(req.conf_name)
        callback_url = _check_callback_url(req.callback_url)
    video = state.digime.latest_completed(conf_name, MaterialType.TRAINING)
    if video is None:
        raise DigimeError(
            404,
            E.NOT_FOUND,
            f"conf_name={conf_name!r}: no completed training video (type 1) for this conf_name",
        )
    tg = state.digime.task_group
    if tg is None:
        raise DigimeError(503, E.UNAVAILABLE, "the emulator is not running")
    record = state.digime.new_training(conf_name, callback_url, video.path)
    tg.start_soon(train, state, record, _pics_base(request))
    return "init train digime succ"


async def _training_info(request: Request, state: EmulatorState, body: bytes) -> Any:
    """§5."""
    req = API.decode(body, TrainingInfoBody)
    with API.rules():
        _check_appid(state, req.appid)
        conf_name = check_conf_name(req.conf_name)
    record = state.digime.trainings.get(conf_name)
    if record is None:
        raise DigimeError(
            404, E.NOT_FOUND, f"conf_name={conf_name!r}: no training for this conf_name"
        )
    return record.info()


async def _pic(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    conf_name, name = request.path_params["conf_name"], request.path_params["name"]
    record = state.digime.trainings.get(conf_name)
    if record is None or record.state is not TrainingState.SUCCESS or name not in PICS:
        error = DigimeError(404, E.NOT_FOUND, f"no picture {conf_name}/{name}")
        return API.error_response(error, request)
    return Response(PICS[name](conf_name), media_type="image/png")


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
        Route(f"{DIGIME_PREFIX}/{name}", API.operation(op), methods=ALL_METHODS)
        for name, op in operations.items()
    ]
    routes.append(Route(DIGIME_PREFIX + "/{rest:path}", API.unknown_api, methods=ALL_METHODS))
    routes.append(Route(DIGIME_PICS_PATH + "/{conf_name:str}/{name:str}", _pic, methods=["GET"]))
    return routes
