"""The MetaStudio emulator's state: jobs, their files, their timers (``state.metastudio``).

``SUBMITVERIFYING`` (after ``CONFIRM_MULTIPART_UPLOADED`` assembled the
training video) moves the job to AUTO_VERIFYING; one step
(``metastudio_step_seconds``) later the automatic review probes the video
(:mod:`.review`): a video outside doc 003's limits stops the job at
AUTO_VERIFY_FAILED with the reason in ``operation_logs``; a job named in
``metastudio_fail_names`` stops there too.  Otherwise the job walks through
:data:`~.models.PIPELINE` to JOB_SUCCESS, one step each.  Timers run in the
app lifespan's task group, so shutting the emulator down cancels them.
``JobRecord.wait_for`` and ``JobRecord.reached`` let tests wait for a state.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from avatarkit.emulator.metastudio.errors import INTERNAL, NOT_FOUND, MetaStudioError
from avatarkit.emulator.metastudio.models import (
    AUTO_VERIFY_FAILED,
    AUTO_VERIFYING,
    DEFAULT_SERVICES,
    JOB_SUCCESS,
    WAIT_FILE_UPLOAD,
    CreateBody,
    JobBasicInfo,
    JobDetail,
    OperationLog,
    UploadUrls,
)
from avatarkit.emulator.metastudio.obs import (
    ACTION_VIDEO,
    SINGLE_OBJECTS,
    TRAINING_VIDEO,
    ObjectStore,
    StoredObject,
)
from avatarkit.emulator.metastudio.review import Verdict, review_video
from avatarkit.emulator.store import ServiceStore

if TYPE_CHECKING:
    from avatarkit.emulator.state import EmulatorState

__all__ = ["JobRecord", "MetaStudioStore"]

#: OperationLogInfo.log_type when the job reaches a state (the SDK's list).
_LOG_TYPES = {
    "MANUAL_VERIFYING": "SYSTEM_VERIFY_SUCCESS",
    "MANUAL_VERIFY_SUCCESS": "ADMIN_VERIFY_SUCCESS",
    "TRAINING_DATA_PREPROCESSING": "SYSTEM_TRAIN_DATA_PREPROCESSING",
    "TRAINING": "SYSTEM_TRAINING",
    "TRAIN_SUCCESS": "SYSTEM_TRAIN_SUCCESS",
    "INFERENCE_DATA_PREPROCESSING": "SYSTEM_INFERENCE_DATA_PREPROCESSING",
    JOB_SUCCESS: "SYSTEM_JOB_SUCCESS",
}


def now_text() -> str:
    """RFC 3339 UTC, as the SDK's models show times ("2020-07-30T10:43:17Z")."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(value: Collection[str]) -> Collection[str]:
    return (value,) if isinstance(value, str) else value  # a lone name, not its letters


@dataclass
class JobRecord:
    """One training job."""

    job_id: str
    project_id: str
    request: CreateBody
    directory: Path
    seq: int
    app_user_id: str | None = None
    state: str = WAIT_FILE_UPLOAD
    asset_id: str | None = None
    model_resolution: str | None = None  # known once review probed the video
    create_time: str = field(default_factory=now_text)
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
    before_pending: str | None = None  # the state CONFIRM_ACTIVE returns to
    operation_logs: list[OperationLog] = field(default_factory=list)
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False, compare=False)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope, repr=False)
    _changed: anyio.Event = field(default_factory=anyio.Event, repr=False)
    _reached: dict[str, anyio.Event] = field(default_factory=dict, repr=False)
    part_stored: anyio.Event = field(default_factory=anyio.Event, repr=False)

    def __post_init__(self) -> None:
        self.last_update_time = self.last_update_time or self.create_time
        self.reached(self.state).set()
        self.log("USER_CREATE_JOD", "USER")  # sic: the SDK's spelling

    def log(
        self,
        log_type: str,
        user: str = "SYSTEM",
        description: str | None = None,
        error_code: str | None = None,
    ) -> None:
        self.operation_logs.append(
            OperationLog(
                operate_time=now_text(),
                log_type=log_type,
                operate_user=user,
                log_description=description,
                error_code=error_code,
            )
        )

    def reached(self, state: str) -> anyio.Event:
        """An event set once the job reaches ``state`` (since creation or the last update)."""
        event = self._reached.get(state)
        if event is None:
            event = self._reached[state] = anyio.Event()
        return event

    def set_state(self, state: str) -> None:
        self.state = state
        self.last_update_time = now_text()
        if state in _LOG_TYPES:
            self.log(_LOG_TYPES[state])
        self.reached(state).set()
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def reset(self) -> None:
        """Forget the reached states (an update starts the job over)."""
        self._reached = {}
        self.asset_id = self.model_resolution = None
        self.set_state(WAIT_FILE_UPLOAD)

    async def wait_for(self, *states: str) -> str:
        """Wait until the job is in one of ``states``; returns that state."""
        while self.state not in states:
            await self._changed.wait()
        return self.state

    def parts(self, obj: str) -> dict[int, StoredObject]:
        return self.video_parts if obj == TRAINING_VIDEO else self.action_parts

    def basic_info(self) -> JobBasicInfo:
        return JobBasicInfo(**self._basic_fields())

    def detail(self) -> JobDetail:
        req = self.request
        return JobDetail(
            **self._basic_fields(),
            operation_logs=list(self.operation_logs),
            voice_properties=req.voice_properties,
            audio_source_type=req.audio_source_type or "VIDEO",
            supported_service=list(req.supported_service or DEFAULT_SERVICES),
        )

    def _basic_fields(self) -> dict[str, Any]:
        req = self.request
        # Defaults as doc 003 table 3 states them; "" is "not given" (SPEC §6).
        return {
            "job_id": self.job_id,
            "name": req.name,
            "state": self.state,
            "asset_id": self.asset_id if self.state == JOB_SUCCESS else None,
            "project_id": self.project_id,
            "last_update_time": self.last_update_time,
            "create_time": self.create_time,
            "contact": req.contact or None,
            "batch_name": req.batch_name or None,
            "tags": req.tags,
            "model_version": req.model_version or "V3.2",
            "matting_type": "AI",  # "默认是AI"
            "model_resolution": self.model_resolution,
            "app_user_id": self.app_user_id,
            "is_flexus": bool(req.is_flexus),
            "is_live_copy": bool(req.is_live_copy),
            "is_fast_flexus": bool(req.is_fast_flexus),
            "is_only_human_model": bool(req.is_only_human_model),
            "is_background_replacement": (
                True if req.is_background_replacement is None else req.is_background_replacement
            ),
            "is_ondemand_resource": bool(req.is_ondemand_resource),
        }


class MetaStudioStore(ServiceStore):
    """Jobs, their presigned URLs and uploaded files; ``state.metastudio``."""

    prefix = "avatarkit-metastudio-"

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, JobRecord] = {}
        self.objects = ObjectStore()
        self._seq = 0

    def new_job(self, project_id: str, request: CreateBody, app_user_id: str | None) -> JobRecord:
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
            app_user_id=app_user_id,
        )
        self.jobs[job_id] = job
        return job

    def job(self, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise MetaStudioError(404, NOT_FOUND, f"job_id={job_id!r}: no such job")
        return job

    def issue(self, job: JobRecord, base: str, ttl: float) -> UploadUrls:
        """Fresh presigned URLs for every object of the job (the old ones are revoked)."""
        self.objects.revoke(job.job_id)
        req = job.request
        job.video_part_count = req.video_multipart_count or 1  # doc 003: default 1
        job.action_part_count = req.action_video_multipart_count
        url = self.objects.presigner(job.job_id, base, ttl)
        return UploadUrls(
            job_id=job.job_id,
            training_video_upload_url=[
                url(TRAINING_VIDEO, k) for k in range(1, job.video_part_count + 1)
            ],
            action_video_upload_url=[
                url(ACTION_VIDEO, k) for k in range(1, (job.action_part_count or 0) + 1)
            ],
            **{name: url(obj, None) for name, obj in SINGLE_OBJECTS.items()},
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
        self.objects.revoke(job.job_id)
        self.jobs.pop(job.job_id, None)
        await anyio.to_thread.run_sync(shutil.rmtree, job.directory, True)

    def start(self, state: EmulatorState, job: JobRecord, steps: tuple[str, ...]) -> None:
        """Walk the job through ``steps`` in the background, one per step time."""
        tg = self.task_group
        if tg is None:
            raise MetaStudioError(500, INTERNAL, "the emulator is not running")
        job.scope.cancel()
        job.scope = anyio.CancelScope()
        tg.start_soon(_advance, state, job, steps)


def _empty_directory(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


async def _review(state: EmulatorState, job: JobRecord) -> str | None:
    """The automatic review (AUTO_VERIFYING): the failure's reason, or None when it passes."""
    if job.request.name in _names(state.options.metastudio_fail_names):
        job.log(
            "SYSTEM_VERIFY_FAILED",
            description="review failed on purpose (the emulator's metastudio_fail_names)",
        )
        return "injected"
    if job.video_path is None:  # DELETE_JOB_VIDEO cannot run here; kept for safety
        job.log("SYSTEM_VERIFY_FAILED", description="no training video")
        return "no video"
    found = await anyio.to_thread.run_sync(review_video, job.video_path)
    if isinstance(found, Verdict):
        job.log("SYSTEM_VERIFY_FAILED", description=found.reason, error_code=found.error_code)
        return found.reason
    job.model_resolution = found.resolution
    return None


async def _advance(state: EmulatorState, job: JobRecord, steps: tuple[str, ...]) -> None:
    with job.scope:
        for step in steps:
            # Read on every step, so a test may speed a job up while it runs.
            await anyio.sleep(state.options.metastudio_step_seconds)
            if job.state == AUTO_VERIFYING and await _review(state, job) is not None:
                job.set_state(AUTO_VERIFY_FAILED)
                return
            if step == JOB_SUCCESS:
                job.asset_id = uuid.uuid4().hex  # before the state, so waiters see it
            job.set_state(step)
