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
    """The states of a training job, as Huawei documents them.

    From the ``state`` of the official ``Show2dModelTrainingJobResponse`` (doc 003
    names none).  :attr:`Job.state` is a plain ``str`` (compare it with these
    members): Huawei's SDK lists more states than these (``WAIT_COMPILE``,
    ``MANUAL_STOP_TRAIN``…) and adds new ones, which are kept as they come.  The usual
    order is ``WAIT_FILE_UPLOAD`` → ``AUTO_VERIFYING`` / ``MANUAL_VERIFYING`` →
    ``MANUAL_VERIFY_SUCCESS`` → training-data preprocessing → ``TRAINING`` →
    ``TRAIN_SUCCESS`` → inference-data preprocessing → … → ``JOB_SUCCESS`` (SPEC
    §4.1).  The MetaStudio console shows every state from ``MANUAL_VERIFY_SUCCESS`` to
    ``INFERENCE_DATA_PREPROCESS_FAILED`` as "algorithm training"; Huawei says only
    administrators act on them.  :attr:`Job.succeeded` and :attr:`Job.failed` sort
    them into success, failure and neither.
    """

    WAIT_FILE_UPLOAD = "WAIT_FILE_UPLOAD"
    """Waiting for the files to be uploaded (console: to be submitted); a new job's state."""
    AUTO_VERIFYING = "AUTO_VERIFYING"
    """The automatic review is checking the material (console: system review)."""
    AUTO_VERIFY_FAILED = "AUTO_VERIFY_FAILED"
    """The automatic review refused the material; the reason is in the job's
    ``operation_logs`` (:attr:`Job.review_failure`).  A failure."""
    MANUAL_VERIFYING = "MANUAL_VERIFYING"
    """A person is reviewing the material (console: system review)."""
    MANUAL_VERIFY_FAILED = "MANUAL_VERIFY_FAILED"
    """The manual review refused the material (reason in ``operation_logs``).  A failure."""
    MANUAL_VERIFY_SUCCESS = "MANUAL_VERIFY_SUCCESS"
    """Review passed; waiting for preprocessing resources."""
    WAIT_TRAINING_DATA_PREPROCESS = "WAIT_TRAINING_DATA_PREPROCESS"
    """Waiting for the training data to be preprocessed."""
    TRAINING_DATA_PREPROCESSING = "TRAINING_DATA_PREPROCESSING"
    """The training data is being preprocessed."""
    TRAINING_DATA_PREPROCESS_FAILED = "TRAINING_DATA_PREPROCESS_FAILED"
    """Preprocessing the training data failed.  A failure."""
    TRAINING_DATA_PREPROCESS_SUCCESS = "TRAINING_DATA_PREPROCESS_SUCCESS"
    """The training data is preprocessed; waiting for training resources."""
    TRAINING = "TRAINING"
    """The model is being trained."""
    TRAIN_FAILED = "TRAIN_FAILED"
    """Training failed.  A failure."""
    TRAIN_SUCCESS = "TRAIN_SUCCESS"
    """Training is done; waiting for (inference-data) preprocessing resources."""
    INFERENCE_DATA_PREPROCESSING = "INFERENCE_DATA_PREPROCESSING"
    """The inference data is being preprocessed."""
    INFERENCE_DATA_PREPROCESS_FAILED = "INFERENCE_DATA_PREPROCESS_FAILED"
    """Preprocessing the inference data failed.  A failure."""
    WAIT_USER_CONFIRM = "WAIT_USER_CONFIRM"
    """Waiting for the user to accept the training's result (NA whitelisted users only)."""
    JOB_SUCCESS = "JOB_SUCCESS"
    """The job is complete and the model usable: the end state of an ordinary user's job.
    A success."""
    JOB_REJECT = "JOB_REJECT"
    """The user rejected the result (NA whitelisted users only).  A failure."""
    JOB_PENDING = "JOB_PENDING"
    """The job is suspended (NA whitelisted users only).  Neither success nor failure:
    :meth:`MetaStudio.wait` keeps polling."""
    JOB_FINISH = "JOB_FINISH"
    """The job is over, for good (the state cannot change again): the end state of an NA
    user's job, meaning the user accepted the model.  A success."""


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
    """The voice settings of a Flexus (basic edition) job (doc 003 table 4).

    The standard edition's voice does not support them.  ``None`` (or ``""``) means
    "not given": the field is left out of the body.
    """

    job_tag: str | None = None
    """What the voice is for: ``ECOMMERCE`` (e-commerce), ``NEWS`` or ``MARKETING``."""
    sex: str | None = None
    """The voice's gender: ``FEMALE`` (the service's default) or ``MALE``."""
    language: str | None = None
    """The training language: ``CN`` or ``EN`` (doc 003: only Chinese is supported for now)."""


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
    """200 answer of ``POST /jobs``: the job id and single-use presigned upload URLs.

    Each URL takes one ``PUT`` and stops working once the file (or part) is uploaded
    (doc 003 table 6).  The URLs' query strings are credentials: the ``repr`` shows only
    the job id and the number of video parts.  A URL the service did not give is
    ``None``; a list it did not give is empty.
    """

    job_id: str
    """The new job's id (the ``job_id`` of every later call)."""
    training_video_upload_url: list[str] = []
    """One URL per part of the one training video (``video_multipart_count`` of them), so
    that the file's parts can be PUT concurrently (``Content-Type:
    application/octet-stream``).  The video must be MP4, 1080p or 4K (landscape or
    portrait), 3 to 10 minutes long, or the review refuses it."""
    action_video_upload_url: list[str] = []
    """One URL per part of the action video (``action_video_multipart_count``); the same
    rules as the training video (``application/octet-stream``)."""
    audio_upload_url: str | None = None
    """Where to PUT the audio training data, a zip (``Content-Type: application/zip``)."""
    cover_upload_url: str | None = None
    """Where to PUT the model's cover image (``application/octet-stream``)."""
    id_card_image1_upload_url: str | None = None
    """Where to PUT a photo of the ID card's front (``application/octet-stream``); users
    who are not NA users must upload it, or the review fails."""
    id_card_image2_upload_url: str | None = None
    """Where to PUT a photo of the ID card's back (``application/octet-stream``); users
    who are not NA users must upload it, or the review fails."""
    grant_file_upload_url: str | None = None
    """Where to PUT the letter of authorization (``application/octet-stream``); users who
    are not NA users must upload it, or the review fails."""
    pre_beauty_image_upload_url: str | None = None
    """Where to PUT the image before skin whitening (``application/octet-stream``)."""
    post_beauty_image_upload_url: str | None = None
    """Where to PUT the image after skin whitening (``application/octet-stream``)."""

    def __repr__(self) -> str:  # presigned URLs carry credentials in their query strings
        parts = len(self.training_video_upload_url)
        return f"CreateJobResponse(job_id={self.job_id!r}, training_video_parts={parts})"


class CommentData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The official ``CommentData`` (a command's comment)."""

    comment_title: str | None = None
    """The comment's title."""
    comment_message: str | None = None
    """The comment's message."""
    attachment_name: list[str] | None = None
    """The names of the comment's attachments."""


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
        """``part_number`` as an int (1-based)."""
        return int(self.part_number)


class ErrorBody(msgspec.Struct, kw_only=True):
    """Doc 003 tables 7/8; the official ``ErrorResponse``."""

    error_code: str = ""
    error_msg: str = ""


class CommandResult(msgspec.Struct, kw_only=True):
    """The answer of ``POST /jobs/{job_id}/command`` (Execute2dModelTrainingCommandByUser).

    The misspellings (``commond``, ``excute``) are the service's own.
    """

    commond_result: str = ""
    """``EXCUTE_SUCCESS`` (the command was accepted) or ``EXCUTE_FAILED``; ``""`` if absent."""
    attachment_upload_url: list[str] = []
    """Presigned URLs to upload the command's attachments to."""
    multipart_data: list[MultipartData] = []
    """The parts of the video the service has received (``GET_MULTIPART_UPLOADED``), each a
    ``part_number`` and ``etag``."""
    excute_failed_msg: str | None = None
    """Why the command failed, when it did."""
    error_info: ErrorBody | None = None
    """The error (``error_code``, ``error_msg``), when the service gives one."""

    @property
    def ok(self) -> bool:
        """Whether the command was accepted (``commond_result == "EXCUTE_SUCCESS"``)."""
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
    """The job's id."""
    name: str | None = None
    """The avatar model's name; it also names the model asset in the asset library."""
    state: str = ""
    """The job's state: a :class:`JobState` value, kept as ``str`` since the service adds
    states (``""`` if absent)."""
    asset_id: str | None = None
    """The id of the model asset."""
    project_id: str | None = None
    """The id of the project the model asset belongs to."""
    contact: str | None = None
    """The phone number of the job's creator."""
    batch_name: str | None = None
    """The job's batch name."""
    tags: list[str] | None = None
    """The job's tags."""
    model_version: str | None = None
    """The model version: ``V3.2`` (the default) or ``V3.3`` (the model of fast Flexus
    jobs); V3 and V2 are retired."""
    matting_type: str | None = None
    """How the person is cut out of the background: ``AI`` (the default) or ``MANUAL``."""
    model_resolution: str | None = None
    """``1080P`` (the default: outputs 1080P and 720P video) or ``4K`` (outputs 4K, 1080P
    and 720P)."""
    app_user_id: str | None = None
    """The third-party user id, when the job was created with an ``X-App-UserId`` header."""
    create_time: str | None = None
    """When the job was created: RFC 3339 text, such as ``"2020-07-30T10:43:17Z"``."""
    last_update_time: str | None = None
    """When the user last created or resubmitted the job (RFC 3339 text)."""
    is_background_replacement: bool | None = None
    """Whether the avatar's background is replaced (needs footage shot on a green
    screen)."""
    is_flexus: bool | None = None
    """Whether this is a Flexus (basic edition) training."""
    is_live_copy: bool | None = None
    """Whether this is a live-room replication job."""
    is_fast_flexus: bool | None = None
    """Whether this is a fast Flexus job."""
    is_only_human_model: bool | None = None
    """Whether only the appearance model is trained, not the voice (Flexus jobs only)."""
    is_ondemand_resource: bool | None = None
    """Whether the job runs on on-demand resources."""
    audio_source_type: str | None = None
    """Where the voice comes from: ``VIDEO`` (extracted from the video) or ``AUDIO``
    (uploaded on its own)."""
    voice_properties: VoiceProperties | None = None
    """The voice settings of a Flexus job."""
    supported_service: list[str] | None = None
    """What the model is for: ``VIDEO_2D``, ``LIVE_2D``, ``CHAT_2D`` (a Flexus avatar:
    ``VIDEO_2D`` only)."""
    operation_logs: list[OperationLog] | None = None
    """The job's operation log: one entry per event (created, submitted, review
    failed…), each with its time, type, description, who acted and an error code;
    :attr:`review_failure` reads the review's reason from it."""

    @property
    def review_failure(self) -> str | None:
        """Why the last review failed (``operation_logs``), or None."""
        for log in reversed(self.operation_logs or ()):
            if log.log_type in _REVIEW_FAILURES:
                return log.log_description or log.error_code or log.log_type
        return None

    @property
    def succeeded(self) -> bool:
        """Whether the model is usable: the state is ``JOB_SUCCESS`` or ``JOB_FINISH``."""
        return is_success(self.state)

    @property
    def failed(self) -> bool:
        """Whether the job stopped short of success: a ``*_FAILED`` state, ``JOB_REJECT``
        or a ``MANUAL_STOP_*`` state (:meth:`MetaStudio.wait` then raises
        :class:`~avatarkit.errors.TrainingFailed`)."""
        return is_failed(self.state)


class JobList(msgspec.Struct, kw_only=True):
    """A page of the project's jobs, as ``GET /jobs`` (List2dModelTrainingJob) answers."""

    count: int = 0
    """The number of training jobs, as the service reports it (0 if absent)."""
    jobs: list[Job] = []
    """The page's jobs.  Each carries the list's subset of fields
    (``TrainingJobBasicInfo``), which lacks ``operation_logs``, ``voice_properties``,
    ``audio_source_type`` and ``supported_service`` (``None`` unless the service sends
    them); ask :meth:`MetaStudio.status` for the whole job."""
