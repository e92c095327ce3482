"""MetaStudio's 2D-avatar training jobs as the emulator reads them: structs, rules, states.

Pure: no HTTP, no files.  The sources, in order of authority (SPEC §6):

* doc 003 (``specs/003_…txt``, "创建分身数字人模型训练任务"): the create body
  (table 3), VoiceProperties (table 4), the create answer (table 6), the
  error envelope (tables 7/8) and the training video's limits (table 6);
* for the rest of the job's life, Huawei's public SDK ``huaweicloudsdkmetastudio``
  (its models' ``openapi_types`` and their docstrings): field names and types,
  and where doc 003 lists fewer enum values than the SDK, the SDK's list.

Decisions recorded here (each rule below names its source):

* Empty optional strings (``"contact": ""``, ``"command_message": ""``…) mean
  "not given" (SPEC §6, "the vendors' own examples are evidence").
* ``model_version``: doc 003 lists ``V3.2`` only; the SDK's models also list
  ``V3.3`` ("极速版flexus训练用的模型"): both accepted.
* ``supported_service``: doc 003 names VIDEO_2D and LIVE_2D (the default);
  the SDK's ``SupportedServiceEnum`` adds ``CHAT_2D``: accepted.  The SDK's
  model says "Flexus版数字人仅支持选择VIDEO_2D": with ``is_flexus`` true
  any other service is refused.
* ``is_only_human_model`` "仅Flexus版本时有效" (doc 003 table 3): it has no
  effect without ``is_flexus``; it is *not* an error (the SDK used to refuse it).
* ``tags``: doc 003 says "Array of strings" and nothing more: empty strings
  are accepted (the SDK used to refuse them).
* ``name`` (and ``batch_name``): at most :data:`MAX_NAME` characters.  Doc
  003's text has no length for them (its table's range column survives only
  for ``command_message`` and ``model_version``, "取值范围 0-64"); 64 is kept
  from the earlier reading as the likely limit, not a documented one.
* Commands (``Execute2dModelTrainingCommandByUserReq.command``): the SDK's
  list, :data:`COMMANDS`, including the five "仅NA白名单用户可用" user
  verdicts (CONFIRM_ACCEPT/REJECT/ANSWER/PENDING/ACTIVE), which the emulator
  runs on a job waiting for the user's verdict (WAIT_USER_CONFIRM) or pending.
  ``comment_data`` is an object (``CommentData``), not a string.
* Update (``Update2dModelTrainingJobReq``): every field optional (the SDK's
  model has no required field); the given fields replace the job's, the
  others stay; only in AUTO_VERIFY_FAILED / MANUAL_VERIFY_FAILED (SPEC §4.1).
* Show and list: ``Show2dModelTrainingJobResponse`` and
  ``TrainingJobBasicInfo`` fields only, absent rather than ``null`` when
  unknown.  ``MultipartUploadInfo.part_number`` is a *string* in the SDK's
  model: sent as one.  ``error_info`` is an ``ErrorResponse`` object.
* List: ``sort_dir`` defaults to ``asc`` ("默认asc升序") and ``sort_key``
  accepts ``asset_order`` as well (List2dModelTrainingJobRequest).
* Review failures are shown in ``operation_logs`` (``OperationLogInfo``:
  ``log_type`` SYSTEM_VERIFY_FAILED, ``log_description`` "用于记录人工或自动
  审核不通过时的审核意见", ``error_code`` 44005901 for a resolution outside
  the four the SDK's model lists: 1920x1080, 1080x1920, 3840x2160, 2160x3840).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from avatarkit.errors import ValidationError

__all__ = [
    "COMMANDS",
    "FAILED_STATES",
    "MAX_NAME",
    "PIPELINE",
    "UPDATABLE",
    "CommandRequest",
    "CommandResult",
    "CreateBody",
    "JobBasicInfo",
    "JobDetail",
    "JobListAnswer",
    "MultipartUploadInfo",
    "OperationLog",
    "UpdateBody",
    "UploadUrls",
    "VoiceProperties",
    "check_create",
    "check_update",
]

# -- states (Show2dModelTrainingJobResponse.state) ----------------------------------

WAIT_FILE_UPLOAD: Final = "WAIT_FILE_UPLOAD"
AUTO_VERIFYING: Final = "AUTO_VERIFYING"
AUTO_VERIFY_FAILED: Final = "AUTO_VERIFY_FAILED"
MANUAL_VERIFYING: Final = "MANUAL_VERIFYING"
MANUAL_VERIFY_FAILED: Final = "MANUAL_VERIFY_FAILED"
WAIT_USER_CONFIRM: Final = "WAIT_USER_CONFIRM"
INFERENCE_DATA_PREPROCESSING: Final = "INFERENCE_DATA_PREPROCESSING"
JOB_SUCCESS: Final = "JOB_SUCCESS"
JOB_FINISH: Final = "JOB_FINISH"
JOB_REJECT: Final = "JOB_REJECT"
JOB_PENDING: Final = "JOB_PENDING"

#: The states a submitted job walks through, in order (SPEC §4.1; the SDK's state list).
PIPELINE: Final = (
    AUTO_VERIFYING,
    MANUAL_VERIFYING,
    "MANUAL_VERIFY_SUCCESS",
    "WAIT_TRAINING_DATA_PREPROCESS",
    "TRAINING_DATA_PREPROCESSING",
    "TRAINING",
    "TRAIN_SUCCESS",
    INFERENCE_DATA_PREPROCESSING,
    JOB_SUCCESS,
)
#: Update2dModelTrainingJob is allowed only here (SPEC §4.1).
UPDATABLE: Final = frozenset({AUTO_VERIFY_FAILED, MANUAL_VERIFY_FAILED})
FAILED_STATES: Final = frozenset(
    {
        AUTO_VERIFY_FAILED,
        MANUAL_VERIFY_FAILED,
        "TRAINING_DATA_PREPROCESS_FAILED",
        "TRAIN_FAILED",
        "INFERENCE_DATA_PREPROCESS_FAILED",
        JOB_REJECT,
    }
)
FINISHED_STATES: Final = FAILED_STATES | {JOB_SUCCESS, JOB_FINISH}

# -- enums -----------------------------------------------------------------------

#: Doc 003 table 3 (the SDK's Create2dModelTrainingJobReq lists the same four).
COMMAND_MESSAGES: Final = ("UPDATE_VIDEO", "UPLOAD_VIDEO", "CONFIRM_ACTION_VIDEO",
                           "GET_ACTION_VIDEO_MULTIPART")  # fmt: skip
#: Doc 003 lists V3.2; the SDK's model adds V3.3 (flexus).
MODEL_VERSIONS: Final = ("V3.2", "V3.3")
AUDIO_SOURCE_TYPES: Final = ("VIDEO", "AUDIO")  # doc 003 table 3
#: Doc 003 (the default) plus the SDK's SupportedServiceEnum.
SUPPORTED_SERVICES: Final = ("VIDEO_2D", "LIVE_2D", "CHAT_2D")
DEFAULT_SERVICES: Final = ("VIDEO_2D", "LIVE_2D")  # doc 003 table 3
JOB_TAGS: Final = ("ECOMMERCE", "NEWS", "MARKETING")  # doc 003 table 4
SEXES: Final = ("FEMALE", "MALE")  # doc 003 table 4
LANGUAGES: Final = ("CN", "EN")  # doc 003 table 4
MULTIPART_RANGE: Final = (1, 1000)  # doc 003 table 3
MAX_NAME: Final = 64
#: Execute2dModelTrainingCommandByUserReq.command, the SDK's full list.
COMMANDS: Final = (
    "SUBMITVERIFYING",
    "CONFIRM_ACCEPT",
    "CONFIRM_REJECT",
    "CONFIRM_ANSWER",
    "CONFIRM_PENDING",
    "CONFIRM_ACTIVE",
    "GET_MULTIPART_UPLOADED",
    "CONFIRM_REPAIR",
    "CONFIRM_MULTIPART_UPLOADED",
    "GET_ACTION_VIDEO_MULTIPART_UPLOADED",
    "CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED",
    "CONFIRM_AUTHORIZATION_LETTER",
    "DELETE_JOB_VIDEO",
)
#: List2dModelTrainingJobRequest.sort_key / sort_dir.
SORT_KEYS: Final = ("create_time", "update_time", "asset_order")
SORT_DIRS: Final = ("asc", "desc")
LIST_LIMIT: Final = (1, 100)
LIST_DEFAULT_LIMIT: Final = 10

# -- requests ----------------------------------------------------------------------


class VoiceProperties(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Doc 003 table 4."""

    job_tag: str | None = None
    sex: str | None = None
    language: str | None = None


class CreateBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Doc 003 table 3, plus the booleans the SDK's Create2dModelTrainingJobReq adds."""

    name: str
    contact: str | None = None
    command_message: str | None = None
    video_multipart_count: int | None = None
    action_video_multipart_count: int | None = None
    is_background_replacement: bool | None = None
    batch_name: str | None = None
    tags: list[str] | None = None
    model_version: str | None = None
    is_ondemand_resource: bool | None = None
    is_flexus: bool | None = None
    is_fast_flexus: bool | None = None
    is_live_copy: bool | None = None
    is_only_human_model: bool | None = None
    audio_source_type: str | None = None
    voice_properties: VoiceProperties | None = None
    supported_service: list[str] | None = None


class ActionSample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The SDK's ActionBasicSampleInfo (Update2dModelTrainingJobReq.samples_basic_info)."""

    action_name_zh: str | None = None
    action_name_en: str | None = None
    action_tag: str | None = None
    catalog: str | None = None
    recommended_value: int | None = None
    is_selected: bool | None = None


class UpdateBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The SDK's Update2dModelTrainingJobReq: every field optional."""

    name: str | None = None
    contact: str | None = None
    command_message: str | None = None
    video_multipart_count: int | None = None
    action_video_multipart_count: int | None = None
    is_background_replacement: bool | None = None
    batch_name: str | None = None
    tags: list[str] | None = None
    is_fast_flexus: bool | None = None
    samples_basic_info: list[ActionSample] | None = None
    voice_properties: VoiceProperties | None = None
    supported_service: list[str] | None = None
    audio_source_type: str | None = None


class CommentData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The SDK's CommentData."""

    comment_title: str | None = None
    comment_message: str | None = None
    attachment_name: list[str] | None = None


class CommandRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The SDK's Execute2dModelTrainingCommandByUserReq."""

    command: str
    command_message: str | None = None
    comment_data: CommentData | None = None
    operation_reason: str | None = None


# -- answers -----------------------------------------------------------------------


class UploadUrls(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Doc 003 table 6 (= the SDK's Create/Update2dModelTrainingJobResponse)."""

    job_id: str
    training_video_upload_url: list[str] = []
    action_video_upload_url: list[str] = []
    audio_upload_url: str | None = None
    cover_upload_url: str | None = None
    id_card_image1_upload_url: str | None = None
    id_card_image2_upload_url: str | None = None
    grant_file_upload_url: str | None = None
    pre_beauty_image_upload_url: str | None = None
    post_beauty_image_upload_url: str | None = None

    def __repr__(self) -> str:  # presigned URLs carry credentials in their query strings
        return f"UploadUrls(job_id={self.job_id!r})"


class MultipartUploadInfo(msgspec.Struct, kw_only=True):
    """The SDK's MultipartUploadInfo: ``part_number`` is a string there."""

    part_number: str
    etag: str


class ErrorInfo(msgspec.Struct, kw_only=True):
    """The SDK's ErrorResponse."""

    error_code: str
    error_msg: str


class CommandResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The SDK's Execute2dModelTrainingCommandByUserResponse (the misspellings are its own)."""

    commond_result: str  # EXCUTE_SUCCESS | EXCUTE_FAILED
    attachment_upload_url: list[str] | None = None
    multipart_data: list[MultipartUploadInfo] | None = None
    excute_failed_msg: str | None = None
    error_info: ErrorInfo | None = None


class OperationLog(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The SDK's OperationLogInfo."""

    operate_time: str
    log_type: str
    operate_user: str  # USER | ADMIN | SYSTEM
    log_description: str | None = None
    error_code: str | None = None


class JobBasicInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The SDK's TrainingJobBasicInfo (one item of the list answer)."""

    job_id: str
    name: str
    state: str
    asset_id: str | None = None
    project_id: str | None = None
    last_update_time: str | None = None
    create_time: str | None = None
    contact: str | None = None
    batch_name: str | None = None
    tags: list[str] | None = None
    model_version: str | None = None
    matting_type: str | None = None
    model_resolution: str | None = None
    app_user_id: str | None = None
    is_flexus: bool | None = None
    is_live_copy: bool | None = None
    is_fast_flexus: bool | None = None
    is_only_human_model: bool | None = None
    is_background_replacement: bool | None = None
    is_ondemand_resource: bool | None = None


class JobDetail(JobBasicInfo, kw_only=True, omit_defaults=True):
    """The SDK's Show2dModelTrainingJobResponse (the fields the emulator knows)."""

    operation_logs: list[OperationLog] | None = None
    voice_properties: VoiceProperties | None = None
    audio_source_type: str | None = None
    supported_service: list[str] | None = None


class JobListAnswer(msgspec.Struct, kw_only=True):
    """The SDK's List2dModelTrainingJobResponse."""

    count: int
    jobs: list[JobBasicInfo]


# -- rules -------------------------------------------------------------------------


def given(value: Any) -> bool:
    """Not None and not "" (an empty optional string means "not given", SPEC §6)."""
    return value is not None and value != ""


def _one_of(field: str, value: Any, allowed: Sequence[str], source: str) -> None:
    if given(value) and value not in allowed:
        raise ValidationError(field, value, f"must be one of {', '.join(allowed)} ({source})")


def _count(field: str, value: int | None) -> None:
    low, high = MULTIPART_RANGE
    if value is not None and not low <= value <= high:
        raise ValidationError(field, value, f"must be from {low} to {high} (doc 003 table 3)")


def _name(field: str, value: str | None, *, required: bool) -> None:
    if value is None:
        return
    if required and not value.strip():
        raise ValidationError(field, value, "must be a non-empty string (doc 003 table 3)")
    if len(value) > MAX_NAME:
        raise ValidationError(field, value, f"must be at most {MAX_NAME} characters")


def _services(services: list[str] | None, flexus: bool) -> None:
    if services is None:
        return
    if not services:
        raise ValidationError("supported_service", [], "must name at least one service")
    for service in services:
        _one_of("supported_service", service, SUPPORTED_SERVICES, "SupportedServiceEnum")
    if flexus and set(services) != {"VIDEO_2D"}:
        raise ValidationError(
            "supported_service", services, "a Flexus job supports VIDEO_2D only (the SDK's model)"
        )


def _voice(voice: VoiceProperties | None) -> None:
    if voice is not None:
        _one_of("voice_properties.job_tag", voice.job_tag, JOB_TAGS, "doc 003 table 4")
        _one_of("voice_properties.sex", voice.sex, SEXES, "doc 003 table 4")
        _one_of("voice_properties.language", voice.language, LANGUAGES, "doc 003 table 4")


def check_create(body: CreateBody) -> CreateBody:
    """Every rule of the create body (see the module doc); raises ValidationError."""
    _name("name", body.name, required=True)
    _name("batch_name", body.batch_name, required=False)
    _one_of("command_message", body.command_message, COMMAND_MESSAGES, "doc 003 table 3")
    _count("video_multipart_count", body.video_multipart_count)
    _count("action_video_multipart_count", body.action_video_multipart_count)
    _one_of("model_version", body.model_version, MODEL_VERSIONS, "doc 003 table 3 and the SDK")
    _one_of("audio_source_type", body.audio_source_type, AUDIO_SOURCE_TYPES, "doc 003 table 3")
    _voice(body.voice_properties)
    _services(body.supported_service, bool(body.is_flexus))
    return body


def check_update(body: UpdateBody, current: CreateBody) -> CreateBody:
    """The job's create body with the update's given fields in place; raises ValidationError."""
    if body.name is not None:
        _name("name", body.name, required=True)
    changes = {
        field: getattr(body, field)
        for field in UpdateBody.__struct_fields__
        if field in CreateBody.__struct_fields__ and getattr(body, field) is not None
    }
    merged = msgspec.structs.replace(current, **changes)
    return check_create(merged)
