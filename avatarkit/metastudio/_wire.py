"""Wire models and body rules of Huawei MetaStudio's 2D-avatar training jobs (SPEC §4).

The SDK's own reading (the emulator has its own, in
``avatarkit.emulator.metastudio.models``).  Field names and types follow doc
003 and, for the rest of the job's life, the ``openapi_types`` of Huawei's
public SDK models (SPEC §6); ``tests/test_official_metastudio.py`` checks them
against ``huaweicloudsdkmetastudio``.  Changes made from that comparison:

* ``MultipartData.part_number`` is a string in the official
  ``MultipartUploadInfo``: both forms are accepted, :attr:`MultipartData.number`
  is the int;
* ``CommandRequest.comment_data`` is an object (``CommentData``), not a string;
  ``CommandResult.error_info`` an ``ErrorResponse``;
* the SDK's enum lists are accepted where doc 003 lists fewer: ``model_version``
  ``V3.3``, ``supported_service`` ``CHAT_2D``, the commands CONFIRM_ACCEPT,
  CONFIRM_REJECT, CONFIRM_ANSWER, CONFIRM_PENDING and CONFIRM_ACTIVE;
* rules with no source dropped: ``is_only_human_model`` without ``is_flexus``
  is only ineffective ("仅Flexus版本时有效"), empty tags are strings too; empty
  optional strings mean "not given" (SPEC §6); a Flexus job supports VIDEO_2D
  only (the official model's words);
* :class:`Job` carries every field of ``Show2dModelTrainingJobResponse`` that
  the SDK uses, ``operation_logs`` among them (the review's reason).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

import msgspec

from avatarkit.errors import ValidationError

__all__ = [
    "COMMANDS",
    "CommandRequest",
    "CommandResult",
    "CommentData",
    "CreateJobRequest",
    "CreateJobResponse",
    "ErrorBody",
    "Job",
    "JobList",
    "JobState",
    "MultipartData",
    "OperationLog",
    "VoiceProperties",
    "check_create_request",
    "is_failed",
    "is_success",
]

API_PREFIX: Final = "/v1/{project_id}/digital-human-training-manage/user"


class JobState(StrEnum):
    """Job states (Huawei's SDK lists more, and adds new ones: states are kept as str)."""

    WAIT_FILE_UPLOAD = "WAIT_FILE_UPLOAD"
    AUTO_VERIFYING = "AUTO_VERIFYING"
    AUTO_VERIFY_FAILED = "AUTO_VERIFY_FAILED"
    MANUAL_VERIFYING = "MANUAL_VERIFYING"
    MANUAL_VERIFY_FAILED = "MANUAL_VERIFY_FAILED"
    MANUAL_VERIFY_SUCCESS = "MANUAL_VERIFY_SUCCESS"
    WAIT_TRAINING_DATA_PREPROCESS = "WAIT_TRAINING_DATA_PREPROCESS"
    TRAINING_DATA_PREPROCESSING = "TRAINING_DATA_PREPROCESSING"
    TRAINING_DATA_PREPROCESS_FAILED = "TRAINING_DATA_PREPROCESS_FAILED"
    TRAINING_DATA_PREPROCESS_SUCCESS = "TRAINING_DATA_PREPROCESS_SUCCESS"
    TRAINING = "TRAINING"
    TRAIN_FAILED = "TRAIN_FAILED"
    TRAIN_SUCCESS = "TRAIN_SUCCESS"
    INFERENCE_DATA_PREPROCESSING = "INFERENCE_DATA_PREPROCESSING"
    INFERENCE_DATA_PREPROCESS_FAILED = "INFERENCE_DATA_PREPROCESS_FAILED"
    WAIT_USER_CONFIRM = "WAIT_USER_CONFIRM"
    JOB_SUCCESS = "JOB_SUCCESS"
    JOB_REJECT = "JOB_REJECT"
    JOB_PENDING = "JOB_PENDING"
    JOB_FINISH = "JOB_FINISH"


def is_success(state: str) -> bool:
    """The model is usable."""
    return state in (JobState.JOB_SUCCESS, JobState.JOB_FINISH)


def is_failed(state: str) -> bool:
    """The job stopped short of success (a failure, a rejection or a manual stop)."""
    return (
        state.endswith("_FAILED")
        or state == JobState.JOB_REJECT
        or state.startswith("MANUAL_STOP_")
    )


COMMAND_MESSAGES: Final = (
    "UPDATE_VIDEO",
    "UPLOAD_VIDEO",
    "CONFIRM_ACTION_VIDEO",
    "GET_ACTION_VIDEO_MULTIPART",
)
COMMANDS: Final = (
    "CONFIRM_ACCEPT",
    "CONFIRM_REJECT",
    "CONFIRM_ANSWER",
    "CONFIRM_PENDING",
    "CONFIRM_ACTIVE",
    "GET_MULTIPART_UPLOADED",
    "CONFIRM_MULTIPART_UPLOADED",
    "GET_ACTION_VIDEO_MULTIPART_UPLOADED",
    "CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED",
    "CONFIRM_AUTHORIZATION_LETTER",
    "SUBMITVERIFYING",
    "CONFIRM_REPAIR",
    "DELETE_JOB_VIDEO",
)
MODEL_VERSIONS: Final = ("V3.2", "V3.3")  # doc 003: V3.2; the official model: V3.3 too
AUDIO_SOURCE_TYPES: Final = ("VIDEO", "AUDIO")
SUPPORTED_SERVICES: Final = ("VIDEO_2D", "LIVE_2D", "CHAT_2D")  # SupportedServiceEnum
JOB_TAGS: Final = ("ECOMMERCE", "NEWS", "MARKETING")
SEXES: Final = ("FEMALE", "MALE")
LANGUAGES: Final = ("CN", "EN")
MULTIPART_RANGE: Final = (1, 1000)
MAX_NAME: Final = 64


class VoiceProperties(msgspec.Struct, kw_only=True, omit_defaults=True):
    job_tag: str | None = None
    sex: str | None = None
    language: str | None = None


class CreateJobRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Body of ``POST /jobs`` (Create2dModelTrainingJob)."""

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


def _one_of(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value is not None and value != "" and value not in allowed:  # "" = not given
        raise ValidationError(field, value, f"must be one of {', '.join(allowed)}")


def _count(field: str, value: Any) -> None:
    low, high = MULTIPART_RANGE
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
    ):
        raise ValidationError(field, value, f"must be an integer from {low} to {high}")


def check_create_request(req: CreateJobRequest) -> CreateJobRequest:
    """Every documented rule of the create-job body; raises :class:`ValidationError`."""
    if not isinstance(req.name, str) or not req.name.strip():
        raise ValidationError("name", req.name, "must be a non-empty string")
    if len(req.name) > MAX_NAME:
        raise ValidationError("name", req.name, f"must be at most {MAX_NAME} characters")
    if req.contact is not None and not isinstance(req.contact, str):
        raise ValidationError("contact", req.contact, "must be a string (a phone number)")
    _one_of("command_message", req.command_message, COMMAND_MESSAGES)
    _count("video_multipart_count", req.video_multipart_count)
    _count("action_video_multipart_count", req.action_video_multipart_count)
    for field in (
        "is_background_replacement",
        "is_ondemand_resource",
        "is_flexus",
        "is_fast_flexus",
        "is_live_copy",
        "is_only_human_model",
    ):
        value = getattr(req, field)
        if value is not None and not isinstance(value, bool):
            raise ValidationError(field, value, "must be a boolean")
    if req.batch_name is not None and (
        not isinstance(req.batch_name, str) or len(req.batch_name) > MAX_NAME
    ):
        raise ValidationError(
            "batch_name", req.batch_name, f"must be a string of at most {MAX_NAME} characters"
        )
    if req.tags is not None and not all(isinstance(t, str) for t in req.tags):
        raise ValidationError("tags", req.tags, "must be a list of strings")
    _one_of("model_version", req.model_version, MODEL_VERSIONS)
    _one_of("audio_source_type", req.audio_source_type, AUDIO_SOURCE_TYPES)
    if req.voice_properties is not None:
        _one_of("voice_properties.job_tag", req.voice_properties.job_tag, JOB_TAGS)
        _one_of("voice_properties.sex", req.voice_properties.sex, SEXES)
        _one_of("voice_properties.language", req.voice_properties.language, LANGUAGES)
    if req.supported_service is not None:
        if not req.supported_service:
            raise ValidationError("supported_service", [], "must name at least one service")
        for service in req.supported_service:
            _one_of("supported_service", service, SUPPORTED_SERVICES)
        if req.is_flexus and set(req.supported_service) != {"VIDEO_2D"}:
            raise ValidationError(
                "supported_service", req.supported_service, "a Flexus job supports VIDEO_2D only"
            )
    return req


class CreateJobResponse(msgspec.Struct, kw_only=True):
    """200 answer of ``POST /jobs``: the job id and single-use presigned upload URLs."""

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
        parts = len(self.training_video_upload_url)
        return f"CreateJobResponse(job_id={self.job_id!r}, training_video_parts={parts})"


class CommentData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The official ``CommentData`` (a command's comment)."""

    comment_title: str | None = None
    comment_message: str | None = None
    attachment_name: list[str] | None = None


class CommandRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Body of ``POST /jobs/{job_id}/command`` (Execute2dModelTrainingCommandByUser)."""

    command: str
    command_message: str | None = None
    comment_data: CommentData | None = None
    operation_reason: str | None = None


class MultipartData(msgspec.Struct, kw_only=True):
    """The official ``MultipartUploadInfo``: ``part_number`` is a string there."""

    part_number: str | int
    etag: str | None = None

    @property
    def number(self) -> int:
        return int(self.part_number)


class ErrorBody(msgspec.Struct, kw_only=True):
    """Doc 003 tables 7/8; the official ``ErrorResponse``."""

    error_code: str = ""
    error_msg: str = ""


class CommandResult(msgspec.Struct, kw_only=True):
    """The command's answer; the misspellings are the service's own."""

    commond_result: str = ""
    attachment_upload_url: list[str] = []
    multipart_data: list[MultipartData] = []
    excute_failed_msg: str | None = None
    error_info: ErrorBody | None = None

    @property
    def ok(self) -> bool:
        return self.commond_result == "EXCUTE_SUCCESS"


class OperationLog(msgspec.Struct, kw_only=True):
    """The official ``OperationLogInfo``: one event of the job's life."""

    operate_time: str | None = None
    log_type: str | None = None  # USER_CREATE_JOD, SYSTEM_VERIFY_FAILED…
    log_description: str | None = None  # the review's words when it failed
    operate_user: str | None = None  # USER | ADMIN | SYSTEM
    error_code: str | None = None  # 44005901: resolution not 1080p/4K


_REVIEW_FAILURES: Final = ("SYSTEM_VERIFY_FAILED", "ADMIN_VERIFY_FAILED")


class Job(msgspec.Struct, kw_only=True):
    """A training job as ``GET /jobs/{job_id}`` shows it (official
    ``Show2dModelTrainingJobResponse``; the list's items are the subset
    ``TrainingJobBasicInfo``).  Unknown fields are ignored."""

    job_id: str
    name: str | None = None
    state: str = ""
    asset_id: str | None = None
    project_id: str | None = None
    contact: str | None = None
    batch_name: str | None = None
    tags: list[str] | None = None
    model_version: str | None = None
    matting_type: str | None = None
    model_resolution: str | None = None
    app_user_id: str | None = None
    create_time: str | None = None
    last_update_time: str | None = None
    is_background_replacement: bool | None = None
    is_flexus: bool | None = None
    is_live_copy: bool | None = None
    is_fast_flexus: bool | None = None
    is_only_human_model: bool | None = None
    is_ondemand_resource: bool | None = None
    audio_source_type: str | None = None
    voice_properties: VoiceProperties | None = None
    supported_service: list[str] | None = None
    operation_logs: list[OperationLog] | None = None

    @property
    def review_failure(self) -> str | None:
        """Why the last review failed (``operation_logs``), or None."""
        for log in reversed(self.operation_logs or ()):
            if log.log_type in _REVIEW_FAILURES:
                return log.log_description or log.error_code or log.log_type
        return None

    @property
    def succeeded(self) -> bool:
        return is_success(self.state)

    @property
    def failed(self) -> bool:
        return is_failed(self.state)


class JobList(msgspec.Struct, kw_only=True):
    count: int = 0
    jobs: list[Job] = []
