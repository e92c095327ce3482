"""MetaStudio: Huawei Cloud 2D-avatar training jobs (SPEC §4, §4.1).

``async with MetaStudio.from_env() as ms:`` then ``await ms.run_training("name", video="talk.mp4")``
does the whole flow: create the job, PUT the video's parts to their presigned
URLs concurrently, confirm, start training (submit for review) and wait for the result.
The steps are the same verbs as digime's: ``upload``, ``start_training``,
``status``, ``wait``.
"""

from __future__ import annotations

import functools
import math
import os
import types
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Self, TypedDict, Unpack
from urllib.parse import quote, urlencode

import anyio
import httpx
import msgspec
from anyio.abc import TaskGroup

from avatarkit._host import TaskHost
from avatarkit._http import failure_of, http_errors, is_transient, retrying
from avatarkit._poll import poll
from avatarkit._progress import UploadProgress
from avatarkit._redact import protected_logger, redact_url, register_secret
from avatarkit._retry import RetryPolicy
from avatarkit._schema_errors import JSON_DECODE_ERRORS
from avatarkit._session import check_timeout
from avatarkit._upload_handle import Report, Upload
from avatarkit.errors import (
    AuthenticationError,
    AvatarError,
    ProtocolError,
    ServiceError,
    TrainingFailed,
    ValidationError,
)
from avatarkit.metastudio._wire import (
    API_PREFIX,
    CommandRequest,
    CommandResult,
    CommentData,
    CreateJobRequest,
    CreateJobResponse,
    ErrorBody,
    Job,
    JobList,
    VoiceProperties,
    check_create_request,
    is_failed,
    is_success,
)
from avatarkit.metastudio.signer import sign

__all__ = ["CreateJobFields", "MetaStudio", "MetaStudioOptions", "PresignedUpload"]

log = protected_logger(__name__)

_encoder: Final = msgspec.json.Encoder()
_create_decoder: Final = msgspec.json.Decoder(CreateJobResponse)
_command_decoder: Final = msgspec.json.Decoder(CommandResult)
_job_decoder: Final = msgspec.json.Decoder(Job)
_list_decoder: Final = msgspec.json.Decoder(JobList)
_error_decoder: Final = msgspec.json.Decoder(ErrorBody)

#: Per-part bytes when choosing ``video_multipart_count`` for a file (1 GiB -> 16 parts).
DEFAULT_PART_BYTES: Final = 64 * 1024 * 1024
#: Bytes per read of a PUT body: large writes, yet below glibc's mmap threshold (1 MiB
#: in the benchmarks' fixed setting) so that the buffers are recycled, not faulted in.
READ_BYTES: Final = 768 * 1024
OCTET, ZIP = "application/octet-stream", "application/zip"
# The four the official OperationLogInfo names (error 44005901); DCI 4K (4096x2160) is not one.
VIDEO_RESOLUTIONS: Final = frozenset({(1920, 1080), (1080, 1920), (3840, 2160), (2160, 3840)})
VIDEO_SECONDS: Final = (180.0, 600.0)  # "视频长度须大于等于3分钟且小于等于10分钟"


#: How refused credentials are named in errors, by auth mode (env vars of ``from_env``).
_CREDENTIALS: Final = {
    "token": "IAM token (METASTUDIO_TOKEN)",
    "aksk": "AK/SK (CLOUD_SDK_AK / CLOUD_SDK_SK)",
}


def _error(
    response: httpx.Response, what: str, *, credential: str | None, url: str | None = None
) -> ServiceError:
    """The error an answer >= 300 carries.

    401/403 raise :class:`AuthenticationError` naming ``credential``; with
    ``credential=None`` (a presigned URL, whose signature is the service's own)
    they stay a plain :class:`ServiceError`.
    """
    request_id = response.headers.get("X-Request-Id")
    status = response.status_code
    try:
        body = _error_decoder.decode(response.content)
        code, message = body.error_code or f"HTTP{status}", body.error_msg
    except JSON_DECODE_ERRORS:
        code, message = f"HTTP{status}", response.text[:200]
    if url is not None:  # last: scrub() masks a query value up to the next space
        message = f"{message} at {redact_url(url)}"
    retryable = status >= 500 or status == 429
    if status in (401, 403) and credential is not None:
        if status == 403:  # authenticated, but this project is not the credentials' own
            credential = f"{credential} for project_id (METASTUDIO_PROJECT_ID)"
        return AuthenticationError(
            code,
            f"{what}: {message}",
            status=status,
            request_id=request_id,
            retryable=retryable,
            credential=credential,
        )
    return ServiceError(
        code, f"{what}: {message}", status=status, request_id=request_id, retryable=retryable
    )


class PresignedUpload:
    """One file (or one part of it) to PUT to a single-use presigned URL."""

    def __init__(
        self,
        url: str,
        path: Path,
        offset: int,
        length: int,
        content_type: str,
        part_number: int | None = None,
    ) -> None:
        self.url = url
        """The single-use presigned URL to ``PUT`` to; its query is a credential (the
        ``repr`` shows it redacted)."""
        self.path = path
        """The local file the bytes are read from."""
        self.offset = offset
        """Where the range starts in the file, in bytes."""
        self.length = length
        """How many bytes are PUT from ``offset`` on (the ``Content-Length``)."""
        self.content_type = content_type
        """The ``Content-Type`` header doc 003 asks for: ``application/octet-stream``, or
        ``application/zip`` for the audio."""
        self.part_number = part_number
        """The 1-based number of the part among the video's parts (a whole file is part
        1); ``None`` if not given."""

    def __repr__(self) -> str:
        return (
            f"PresignedUpload({redact_url(self.url)!r}, part={self.part_number}, "
            f"bytes={self.length})"
        )

    def _read(self, fd: int, offset: int, size: int) -> bytes:
        try:
            data = os.pread(fd, size, offset)
        except OSError as exc:  # a local file problem, not a network one
            raise ValidationError(
                "path", str(self.path), f"cannot be read: {exc.strerror}"
            ) from None
        if len(data) != size:
            raise ValidationError("path", str(self.path), "changed size while uploading")
        return data

    async def body(self, sent: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
        """The byte range, ``pread`` in :data:`READ_BYTES` pieces from a worker thread.

        Only one piece is in memory at a time, never the part: each ``bytes`` is
        what httpx writes as it is (h11 passes a lone ``bytes`` through), and the
        length is known up front (``Content-Length``).  ``sent`` is told the
        bytes written so far, each time httpx asks for the next piece.

        Raises:
            ValidationError: the file cannot be read, or changed size.

        Cancellation:
            Safe: the file is closed.
        """
        try:
            fd = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)
        except OSError as exc:
            raise ValidationError(
                "path", str(self.path), f"cannot be read: {exc.strerror}"
            ) from None
        try:
            end = self.offset + self.length
            for start in range(self.offset, end, READ_BYTES):
                size = min(READ_BYTES, end - start)
                yield await anyio.to_thread.run_sync(self._read, fd, start, size)
                if sent is not None:  # httpx asks for the next piece once it wrote this one
                    sent(start + size - self.offset)
        finally:
            os.close(fd)


class MetaStudioOptions(TypedDict, total=False):
    """:class:`MetaStudio`'s keywords besides ``project_id`` (for :meth:`MetaStudio.from_env`)."""

    endpoint: str
    region: str
    ak: str
    sk: str
    token: str
    app_user_id: str
    retry: RetryPolicy
    upload_retry: RetryPolicy
    max_concurrency: int
    timeout: float | httpx.Timeout
    http_client: httpx.AsyncClient


class CreateJobFields(TypedDict, total=False):
    """The optional fields of a training job (:meth:`MetaStudio.create_training_job`)."""

    contact: str
    command_message: str
    video_multipart_count: int
    action_video_multipart_count: int
    is_background_replacement: bool
    batch_name: str
    tags: list[str]
    model_version: str
    is_flexus: bool
    is_only_human_model: bool
    audio_source_type: str
    voice_properties: VoiceProperties | Mapping[str, str]
    supported_service: list[str]


class MetaStudio:
    """A MetaStudio client with AK/SK signing or an IAM token.

    ::

        async with MetaStudio(project_id="…", region="cn-north-4", ak="…", sk="…") as ms:
            job = await ms.run_training("测试角色", video="talk.mp4")

    Give ``endpoint`` or ``region``, and ``ak`` with ``sk`` or ``token``.
    ``max_concurrency`` bounds the parts PUT at once; ``timeout`` (seconds, or
    an ``httpx.Timeout``) bounds each request; ``retry`` applies to API calls,
    ``upload_retry`` to each part's PUT.  Calls need the client open: ``async
    with``, or ``await ms.open()`` and later ``await ms.aclose()`` (from any task).

    Raises:
        ValidationError: a missing or malformed argument (the field is named;
            secrets never shown).
    """

    def __init__(
        self,
        project_id: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        ak: str | None = None,
        sk: str | None = None,
        token: str | None = None,
        app_user_id: str | None = None,
        retry: RetryPolicy | None = None,
        upload_retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        timeout: float | httpx.Timeout = 60.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(project_id, str) or not project_id:
            raise ValidationError("project_id", project_id, "must be a non-empty string")
        if endpoint is None:
            if not region:
                raise ValidationError("endpoint", None, "give endpoint= or region=")
            endpoint = f"https://metastudio.{region}.myhuaweicloud.com"
        if not endpoint.startswith(("http://", "https://")):
            raise ValidationError("endpoint", endpoint, "must be an http:// or https:// URL")
        if token is None and not (ak and sk):
            raise ValidationError("credentials", None, "give ak= and sk=, or token=")
        if token is not None and (ak or sk):
            raise ValidationError("credentials", "***", "give ak/sk or token, not both")
        if app_user_id is not None and any("\u4e00" <= ch <= "\u9fff" for ch in app_user_id):
            raise ValidationError("app_user_id", app_user_id, "must not contain Chinese characters")
        if (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ValidationError("max_concurrency", max_concurrency, "must be an integer >= 1")
        for secret in (ak, sk, token):
            register_secret(secret)
        self.project_id = project_id
        """The Huawei Cloud project id: in every API path and the ``X-Project-Id`` header."""
        self.endpoint = endpoint.rstrip("/")
        """The API's base URL, without a trailing ``/``: ``endpoint`` as given, or
        ``https://metastudio.{region}.myhuaweicloud.com``."""
        self._ak, self._sk, self._token = ak, sk, token
        self.app_user_id = app_user_id
        """The third-party user id sent as ``X-App-UserId`` on every API call (doc 003:
        no Chinese characters), or ``None``."""
        self.retry = retry or RetryPolicy()
        """How API calls are retried (connection failures, timeouts, 5xx, 429); default
        :class:`~avatarkit.RetryPolicy`'s defaults."""
        self.upload_retry = upload_retry or RetryPolicy(
            attempts=6, base_delay=0.5, max_delay=10.0, total_timeout=900.0
        )
        """How each presigned PUT is retried; default 6 attempts, 0.5 to 10 s apart,
        900 s in all."""
        self.max_concurrency = max_concurrency
        """The most PUTs of one video's parts in flight at once, per :meth:`upload`
        (default 8)."""
        self._timeout = check_timeout(timeout)
        self._http = http_client
        self._own_http = http_client is None
        self._host: TaskHost | None = None
        self._prefix = API_PREFIX.format(project_id=quote(project_id, safe=""))

    @classmethod
    def from_env(
        cls, *, project_id: str | None = None, **options: Unpack[MetaStudioOptions]
    ) -> MetaStudio:
        """A client configured from the environment; keywords given here win.

        ``CLOUD_SDK_AK`` and ``CLOUD_SDK_SK`` (or ``METASTUDIO_TOKEN``),
        ``METASTUDIO_PROJECT_ID``, ``METASTUDIO_ENDPOINT`` or
        ``METASTUDIO_REGION``, and optionally ``METASTUDIO_APP_USER_ID``.

        Raises:
            ValidationError: a variable that is needed is not set (it is named).
        """
        env = os.environ
        project = project_id or env.get("METASTUDIO_PROJECT_ID")
        if not project:
            raise ValidationError("METASTUDIO_PROJECT_ID", None, "environment variable is not set")
        if "endpoint" not in options and "region" not in options:
            if env.get("METASTUDIO_ENDPOINT"):
                options["endpoint"] = env["METASTUDIO_ENDPOINT"]
            elif env.get("METASTUDIO_REGION"):
                options["region"] = env["METASTUDIO_REGION"]
            else:
                raise ValidationError(
                    "METASTUDIO_ENDPOINT", None, "set METASTUDIO_ENDPOINT or METASTUDIO_REGION"
                )
        if not any(k in options for k in ("ak", "sk", "token")):
            if env.get("METASTUDIO_TOKEN"):
                options["token"] = env["METASTUDIO_TOKEN"]
            elif env.get("CLOUD_SDK_AK") and env.get("CLOUD_SDK_SK"):
                options["ak"], options["sk"] = env["CLOUD_SDK_AK"], env["CLOUD_SDK_SK"]
            else:
                raise ValidationError(
                    "CLOUD_SDK_AK", None, "set CLOUD_SDK_AK and CLOUD_SDK_SK, or METASTUDIO_TOKEN"
                )
        if env.get("METASTUDIO_APP_USER_ID") and "app_user_id" not in options:
            options["app_user_id"] = env["METASTUDIO_APP_USER_ID"]
        return cls(project, **options)

    def __repr__(self) -> str:
        auth = "token" if self._token else "ak/sk"
        return (
            f"MetaStudio(project_id={self.project_id!r}, endpoint={self.endpoint!r}, auth={auth})"
        )

    async def open(self) -> Self:
        """Open the HTTP client and the task group that iterated uploads run in.

        Raises:
            AvatarError: the client is open already.

        Cancellation:
            Safe: whatever was opened is closed again.
        """
        if self._host is not None:
            raise AvatarError("this MetaStudio client is open already")
        host = self._host = TaskHost()
        try:
            await host.start()
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=self._timeout, trust_env=True)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise
        return self

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the uploads still iterated, then close the HTTP client (if it is ours).

        Idempotent; may run in another task than :meth:`open`.  Raises nothing of its own.

        Cancellation:
            Shielded: closing always completes.
        """
        with anyio.CancelScope(shield=True):
            host, self._host = self._host, None
            if host is not None:
                await host.stop(cancel=True)
            if self._own_http and self._http is not None:
                await self._http.aclose()
                self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client in use.

        Raises:
            AvatarError: the client is not open.
        """
        if self._http is None:
            raise AvatarError("use `async with MetaStudio(...)` before making calls")
        return self._http

    def _task_group(self) -> TaskGroup:
        group = self._host.group if self._host is not None else None
        if group is None:
            raise AvatarError("use `async with MetaStudio(...)` before iterating an upload")
        return group

    # -- the API ---------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        label: str,
        params: Mapping[str, str | int] | None = None,
        body: msgspec.Struct | None = None,
    ) -> httpx.Response:
        url = f"{self.endpoint}{self._prefix}{path}"
        if params:
            url += "?" + urlencode(sorted((k, str(v)) for k, v in params.items()))
        content = _encoder.encode(body) if body is not None else None

        what = f"{method} {path} ({label})"
        credential = _CREDENTIALS["token" if self._token is not None else "aksk"]

        async def attempt() -> httpx.Response:
            headers = {"X-Project-Id": self.project_id}
            if content is not None:
                headers["Content-Type"] = "application/json"
            if self.app_user_id:
                headers["X-App-UserId"] = self.app_user_id
            if self._token is not None:
                headers["X-Auth-Token"] = self._token
            else:
                assert self._ak and self._sk
                headers = sign(method, url, headers, content, self._ak, self._sk)  # fresh date
            with http_errors(what, url, url_field="endpoint"):
                response = await self.http.request(method, url, content=content, headers=headers)
                if response.status_code >= 300:
                    raise _error(response, what, credential=credential)
            return response

        return await retrying(attempt, policy=self.retry, what=what)

    @staticmethod
    def _decode(decoder: msgspec.json.Decoder[Any], response: httpx.Response, what: str) -> Any:
        try:
            return decoder.decode(response.content)
        except JSON_DECODE_ERRORS as exc:
            raise ProtocolError(f"{what}: unexpected answer ({exc})", response.content) from None

    async def create_training_job(
        self,
        name: str,
        *,
        contact: str | None = None,
        command_message: str | None = None,
        video_multipart_count: int | None = None,
        action_video_multipart_count: int | None = None,
        is_background_replacement: bool | None = None,
        batch_name: str | None = None,
        tags: list[str] | None = None,
        model_version: str | None = None,
        is_flexus: bool | None = None,
        is_only_human_model: bool | None = None,
        audio_source_type: str | None = None,
        voice_properties: VoiceProperties | Mapping[str, str] | None = None,
        supported_service: list[str] | None = None,
    ) -> CreateJobResponse:
        """Create a training job; every rule of the body is checked before it is sent.

        Returns:
            The job's id and its presigned upload URLs (single-use, and
            credentials: they are never logged unredacted).

        Raises:
            ValidationError: a field breaks a documented rule (it is named).
            ServiceError: the service refused (its error_code and error_msg).
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.
            ProtocolError: the answer is not the documented shape.

        Cancellation:
            The request is abandoned; a job may have been created: look for it
            with :meth:`list_jobs` (by ``name``).
        """
        if isinstance(voice_properties, Mapping):
            given = dict(voice_properties)
            try:
                voice_properties = msgspec.convert(given, VoiceProperties)
            except msgspec.ValidationError as exc:
                raise ValidationError("voice_properties", given, str(exc)) from None
        request = check_create_request(
            CreateJobRequest(
                name=name,
                contact=contact,
                command_message=command_message,
                video_multipart_count=video_multipart_count,
                action_video_multipart_count=action_video_multipart_count,
                is_background_replacement=is_background_replacement,
                batch_name=batch_name,
                tags=tags,
                model_version=model_version,
                is_flexus=is_flexus,
                is_only_human_model=is_only_human_model,
                audio_source_type=audio_source_type,
                voice_properties=voice_properties,
                supported_service=supported_service,
            )
        )
        response = await self._call("POST", "/jobs", label="create training job", body=request)
        job: CreateJobResponse = self._decode(_create_decoder, response, "create training job")
        log.info(
            "created MetaStudio training job %s (%d video parts)",
            job.job_id,
            len(job.training_video_upload_url),
        )
        return job

    async def command(
        self,
        job_id: str,
        command: str,
        *,
        command_message: str | None = None,
        comment_data: CommentData | Mapping[str, Any] | None = None,
        operation_reason: str | None = None,
    ) -> CommandResult:
        """Run a job command (``GET_MULTIPART_UPLOADED``, ``SUBMITVERIFYING``…), as it is.

        Returns:
            The service's result; a refused command is ``result.ok == False``,
            not an exception (the other calls here raise instead).

        Raises:
            ValidationError: ``comment_data`` has a field that does not exist.
            ServiceError: the service refused (its error_code and error_msg).
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.

        Cancellation:
            The request is abandoned; the command may or may not have run.
        """
        if isinstance(comment_data, Mapping):
            given = dict(comment_data)
            try:
                comment_data = msgspec.convert(given, CommentData)
            except msgspec.ValidationError as exc:
                raise ValidationError("comment_data", given, str(exc)) from None
        body = CommandRequest(
            command=command,
            command_message=command_message,
            comment_data=comment_data,
            operation_reason=operation_reason,
        )
        response = await self._call(
            "POST", f"/jobs/{quote(job_id, safe='')}/command", label=f"command {command}", body=body
        )
        result: CommandResult = self._decode(_command_decoder, response, f"command {command}")
        return result

    async def _command_ok(self, job_id: str, command: str) -> CommandResult:
        result = await self.command(job_id, command)
        if not result.ok:
            raise ServiceError("EXCUTE_FAILED", f"{command}: {result.excute_failed_msg or ''}")
        return result

    async def uploaded_parts(self, job_id: str, *, action_video: bool = False) -> set[int]:
        """Part numbers the service has received (``GET_MULTIPART_UPLOADED``).

        Raises:
            ServiceError: the command failed (``EXCUTE_FAILED``) or was refused.
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.

        Cancellation:
            Safe: a read.
        """
        command = (
            "GET_ACTION_VIDEO_MULTIPART_UPLOADED" if action_video else "GET_MULTIPART_UPLOADED"
        )
        result = await self._command_ok(job_id, command)
        return {p.number for p in result.multipart_data}

    async def confirm_uploaded(self, job_id: str, *, action_video: bool = False) -> CommandResult:
        """``CONFIRM_MULTIPART_UPLOADED``: every part is there; the video can be assembled.

        :meth:`upload` does this itself once its parts are in.

        Raises:
            ServiceError: the command failed (a part is missing, say) or was refused.
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.

        Cancellation:
            The request is abandoned; confirming again is harmless.
        """
        command = (
            "CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED"
            if action_video
            else "CONFIRM_MULTIPART_UPLOADED"
        )
        return await self._command_ok(job_id, command)

    async def start_training(self, job_id: str) -> CommandResult:
        """Start training: ``SUBMITVERIFYING`` hands the uploaded job to review, then training.

        Raises:
            ServiceError: the command failed (no confirmed video, say) or was refused.
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.

        Cancellation:
            The request is abandoned; the job may have been submitted: ask
            :meth:`status` before submitting again.
        """
        return await self._command_ok(job_id, "SUBMITVERIFYING")

    async def status(self, job_id: str) -> Job:
        """The job as it is now: its state, operation logs and, once trained, its model.

        Raises:
            ServiceError: the service refused (its error_code and error_msg).
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.
            ProtocolError: the answer is not the documented shape.

        Cancellation:
            Safe: a read.
        """
        response = await self._call("GET", f"/jobs/{quote(job_id, safe='')}", label="show job")
        job: Job = self._decode(_job_decoder, response, "show job")
        return job

    async def list_jobs(
        self,
        *,
        offset: int = 0,
        limit: int = 10,
        state: str | list[str] | None = None,
        batch_name: str | None = None,
        name: str | None = None,
    ) -> JobList:
        """A page of the project's jobs, filtered by state(s), batch or name.

        Raises:
            ServiceError: the service refused (its error_code and error_msg).
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.
            ProtocolError: the answer is not the documented shape.

        Cancellation:
            Safe: a read.
        """
        params: dict[str, str | int] = {"offset": offset, "limit": limit}
        if state:
            params["state"] = state if isinstance(state, str) else ",".join(state)
        if batch_name:
            params["batch_name"] = batch_name
        if name:
            params["name"] = name
        response = await self._call("GET", "/jobs", label="list jobs", params=params)
        jobs: JobList = self._decode(_list_decoder, response, "list jobs")
        return jobs

    async def delete_job(self, job_id: str) -> None:
        """Delete a job.

        Raises:
            ServiceError: the service refused (its error_code and error_msg).
            AuthenticationError: the AK/SK or token was refused (401), or is
                not the project's (403).
            ConnectionLost: the endpoint could not be reached (after retries).
            TimeoutError: no answer within the client's timeout.

        Cancellation:
            The request is abandoned; the job may or may not be deleted.
        """
        await self._call("DELETE", f"/jobs/{quote(job_id, safe='')}", label="delete job")

    async def wait(
        self,
        job_id: str,
        *,
        until: str | Callable[[str], bool] = is_success,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
    ) -> Job:
        """Poll :meth:`status` until ``until`` (a state, or a predicate on it) holds.

        The first poll is at once, then after ``poll_interval`` seconds, 1.5
        times longer each time up to ``max_poll_interval``.

        Returns:
            The job in the state waited for.

        Raises:
            TrainingFailed: the job failed first (the review's reason in its notes).
            TimeoutError: not there after ``timeout`` seconds (None: no limit).
            ValidationError: a bad interval or timeout.
            ServiceError: a status call was refused.

        Cancellation:
            Safe: polling stops; the job goes on at the service.
        """
        reached = (lambda s: s == until) if isinstance(until, str) else until

        def done(job: Job) -> bool:
            if reached(job.state):
                return True
            if is_failed(job.state):
                failed = TrainingFailed(job_id, job)
                reason = job.review_failure
                if reason:  # the review's words (operation_logs): what to fix
                    failed.add_note(f"{job.state}: {reason}")
                raise failed
            return False

        return await poll(
            lambda: self.status(job_id),
            done,
            what=f"job {job_id}",
            state=lambda job: job.state,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        )

    # -- presigned uploads -------------------------------------------------

    def upload(
        self,
        job: CreateJobResponse | str,
        path: str | os.PathLike[str],
        *,
        urls: Sequence[str] | None = None,
        action_video: bool = False,
    ) -> Upload[None]:
        """Upload the training (or action) video to the job's presigned part URLs, then confirm.

        The file is split into one part per URL, PUT concurrently (at most
        ``max_concurrency`` at once), then ``CONFIRM_MULTIPART_UPLOADED`` is
        sent.  Each URL works once: a part whose outcome is unknown (the
        connection died) is looked up with ``GET_MULTIPART_UPLOADED`` before
        it is sent again, and parts the service already has are skipped, so
        uploading again resumes an interrupted run.

        Args:
            job: The :meth:`create_training_job` answer, or a job id together
                with ``urls``.
            path: The video.
            urls: The part URLs (default: the job's video, or action video, URLs).
            action_video: Upload the action video rather than the training video.

        Returns:
            The handle: ``await`` it, or ``async for progress in upload`` (at
            least once per MiB sent; iterating needs the client open).

        Raises:
            ValidationError: no URLs, or a file that cannot be read or is
                smaller than its number of parts.
            ServiceError: a PUT or a command was refused (a spent URL, say).
            ConnectionLost: a part stayed unreachable through ``upload_retry``.
            TimeoutError: a request got no answer within the client's timeout.

        Cancellation:
            Cancelling the awaiting task, or leaving the progress loop early,
            stops every PUT at once; parts that arrived stay at the service,
            and uploading again sends only the others.
        """
        if isinstance(job, CreateJobResponse):
            job_id = job.job_id
            if urls is None:
                urls = (
                    job.action_video_upload_url if action_video else job.training_video_upload_url
                )
        else:
            if not isinstance(job, str) or not job:
                raise ValidationError("job", job, "must be a CreateJobResponse or a job id")
            job_id = job
            if urls is None:
                raise ValidationError("urls", None, "give the part URLs with a job id")
        part_urls = list(urls)
        if not part_urls:
            raise ValidationError("urls", [], "the job has no upload URLs for this file")
        source = Path(path)

        async def run(report: Report) -> None:
            await self._upload_parts(job_id, part_urls, source, action_video, report)
            await self.confirm_uploaded(job_id, action_video=action_video)

        return Upload(run, self._task_group)

    async def _upload_parts(
        self, job_id: str, urls: list[str], source: Path, action_video: bool, report: Report
    ) -> None:
        size = await _size(source)
        if size < len(urls):
            raise ValidationError(
                "path",
                str(source),
                f"has {size} bytes: fewer than the {len(urls)} parts the job expects",
            )
        part_bytes = math.ceil(size / len(urls))
        parts = [
            PresignedUpload(
                url, source, i * part_bytes, min(part_bytes, size - i * part_bytes), OCTET, i + 1
            )
            for i, url in enumerate(urls)
        ]
        # Parts the service already has (an earlier, interrupted run) are skipped:
        # their URLs are spent, and the bytes are there.
        present = await self.uploaded_parts(job_id, action_video=action_video)
        tally = _Tally(report, size, len(urls))
        for part in parts:
            if part.part_number in present:
                tally.acked(part, publish=False)  # one report for them all, below
        parts = [p for p in parts if p.part_number not in present]
        limiter = anyio.CapacityLimiter(self.max_concurrency)

        async def one(part: PresignedUpload) -> None:
            async with limiter:
                await self._put_part(job_id, part, action_video, tally.sender(part))
            tally.acked(part)

        tally.publish()
        await _run_all([functools.partial(one, p) for p in parts])

    async def _put_part(
        self,
        job_id: str,
        part: PresignedUpload,
        action_video: bool,
        sent: Callable[[int], None],
    ) -> None:
        outcome_unknown = False
        what = f"PUT part {part.part_number} of job {job_id}"

        async def attempt() -> None:
            nonlocal outcome_unknown
            if outcome_unknown:
                seen = await self.uploaded_parts(job_id, action_video=action_video)
                outcome_unknown = False  # only once known: a failed lookup is asked again
                if part.part_number in seen:
                    log.info(
                        "part %s of job %s arrived after all; not resending",
                        part.part_number,
                        job_id,
                    )
                    return
            try:
                await self._put(part, what, sent)
            except AvatarError as exc:
                failure = failure_of(exc)
                # The service may have the bytes: ask before resending.
                outcome_unknown = failure is not None and failure.outcome_unknown
                raise

        await retrying(attempt, policy=self.upload_retry, what=what)

    async def _put(
        self, upload: PresignedUpload, what: str, sent: Callable[[int], None] | None = None
    ) -> None:
        headers = {"Content-Type": upload.content_type, "Content-Length": str(upload.length)}
        # The URL's query is a credential: http_errors and _error only show it redacted.
        with http_errors(what, upload.url):
            response = await self.http.put(upload.url, content=upload.body(sent), headers=headers)
            if response.status_code >= 300:
                raise _error(response, what, credential=None, url=upload.url)

    def upload_file(
        self, url: str, path: str | os.PathLike[str], *, content_type: str = OCTET
    ) -> Upload[None]:
        """PUT one whole file to its presigned URL (cover, ID-card images, grant file, audio zip).

        Returns:
            The handle: ``await`` it, or iterate its progress (one part).

        Raises:
            ValidationError: the file cannot be read.
            ServiceError: the PUT was refused (a spent URL, say).
            ConnectionLost: unreachable through ``upload_retry``; a PUT whose
                outcome is unknown is not sent again (the URL may be spent).
            TimeoutError: no answer within the client's timeout.

        Cancellation:
            Stops the PUT at once; whether the service kept the file is unknown.
        """
        source = Path(path)

        async def run(report: Report) -> None:
            size = await _size(source)
            upload = PresignedUpload(url, source, 0, size, content_type, 1)
            tally = _Tally(report, size, 1)
            sent = tally.sender(upload)
            what = f"PUT {source.name}"
            tally.publish()
            await retrying(
                lambda: self._put(upload, what, sent),
                policy=self.upload_retry,
                what=what,
                retry_on=_resendable,
            )
            tally.acked(upload)

        return Upload(run, self._task_group)

    # -- the whole flow ------------------------------------------------------

    async def run_training(
        self,
        name: str,
        *,
        video: str | os.PathLike[str],
        action_video: str | os.PathLike[str] | None = None,
        audio: str | os.PathLike[str] | None = None,
        cover: str | os.PathLike[str] | None = None,
        id_card_images: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
        grant_file: str | os.PathLike[str] | None = None,
        part_bytes: int = DEFAULT_PART_BYTES,
        check_video: bool = True,
        wait: bool = True,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        on_progress: Callable[[UploadProgress], None] | None = None,
        **fields: Unpack[CreateJobFields],
    ) -> Job:
        """The whole flow: create the job, upload every file, start training and wait.

        The video is checked first (mp4, 1080p or 4K, 3 to 10 minutes, with
        PyAV; ``check_video=False`` skips it) and split into parts of about
        ``part_bytes``.  The files are uploaded concurrently; ``on_progress``
        follows the training video's.  ``fields`` are those of
        :meth:`create_training_job`.

        Returns:
            The job once trained, or (``wait=False``) as it is once submitted.

        Raises:
            ValidationError: a bad argument or file, before the job is created.
            TrainingFailed: review or training failed (the reason in its notes).
            TimeoutError: not trained after ``timeout`` seconds.
            ServiceError: a step was refused.
            ProtocolError: the job has no upload URL for a file given.

        Cancellation:
            Stops where it is; a created job stays at the service, and
            :meth:`upload` with its id and URLs resumes the video's upload.
        """
        paths = {
            "video": video,
            "action_video": action_video,
            "audio": audio,
            "cover": cover,
            "grant_file": grant_file,
        }
        if id_card_images is not None:
            paths["id_card_image1"], paths["id_card_image2"] = id_card_images
        if isinstance(part_bytes, bool) or not isinstance(part_bytes, int) or part_bytes < 1:
            raise ValidationError("part_bytes", part_bytes, "must be a positive number of bytes")
        files = {k: _readable(k, v) for k, v in paths.items() if v is not None}
        if check_video:
            await anyio.to_thread.run_sync(_check_training_video, files["video"])

        def count(path: Path) -> int:
            return max(1, min(1000, math.ceil(path.stat().st_size / part_bytes)))

        fields.setdefault("video_multipart_count", count(files["video"]))
        if "action_video" in files:
            fields.setdefault("action_video_multipart_count", count(files["action_video"]))
        if "audio" in files:
            fields.setdefault("audio_source_type", "AUDIO")
        job = await self.create_training_job(name, **fields)
        singles = {
            "audio": (job.audio_upload_url, ZIP),
            "cover": (job.cover_upload_url, OCTET),
            "id_card_image1": (job.id_card_image1_upload_url, OCTET),
            "id_card_image2": (job.id_card_image2_upload_url, OCTET),
            "grant_file": (job.grant_file_upload_url, OCTET),
        }

        async def video_upload() -> None:
            upload = self.upload(job, files["video"])
            if on_progress is None:
                await upload
                return
            async for progress in upload:
                on_progress(progress)

        calls: list[Callable[[], Any]] = [video_upload]
        if "action_video" in files:
            calls.append(lambda: self.upload(job, files["action_video"], action_video=True))
        for key, (url, content_type) in singles.items():
            if key in files:
                if url is None:
                    raise ProtocolError(f"the job has no upload URL for {key}")
                calls.append(
                    functools.partial(self.upload_file, url, files[key], content_type=content_type)
                )
        await _run_all(calls)
        await self.start_training(job.job_id)
        if not wait:
            return await self.status(job.job_id)
        return await self.wait(job.job_id, timeout=timeout, poll_interval=poll_interval)


class _Tally:
    """The progress of one file's parts, reported as their bytes go.

    Each part on its way counts its best attempt's bytes (a high-water mark):
    a retried part counts from where that attempt got, so the total never drops.
    """

    def __init__(self, report: Report, total: int, parts: int) -> None:
        self._report = report
        self._total, self._parts = total, parts
        self._acked = self._sent = self._done = 0
        self._in_flight: dict[int, int] = {}  # part number -> its best attempt's bytes

    def publish(self) -> None:
        self._report(
            UploadProgress(
                sent_bytes=self._sent,
                acked_bytes=self._acked,
                total_bytes=self._total,
                part=self._done,
                parts=self._parts,
            )
        )

    def sender(self, part: PresignedUpload) -> Callable[[int], None]:
        """What :meth:`PresignedUpload.body` tells of ``part``'s bytes sent so far."""
        number = part.part_number or 0

        def sent(count: int) -> None:
            best = self._in_flight.get(number, 0)
            if count > best:
                self._in_flight[number] = count
                self._sent += count - best
                self.publish()

        return sent

    def acked(self, part: PresignedUpload, *, publish: bool = True) -> None:
        """``part`` is at the service (stored now, or in an earlier run)."""
        self._acked += part.length
        self._done += 1
        self._sent += part.length - self._in_flight.pop(part.part_number or 0, 0)
        if publish:
            self.publish()


async def _size(path: Path) -> int:
    try:
        return (await anyio.Path(path).stat()).st_size
    except OSError as exc:
        raise ValidationError("path", str(path), f"cannot be read: {exc.strerror}") from None


def _resendable(exc: Exception) -> bool:
    """Retry a whole-file PUT only when it surely did not take effect (refused connection,
    a 5xx answer…), never on an unknown outcome: a single-use URL that may have been used
    cannot be checked for single files."""
    failure = failure_of(exc)
    return is_transient(exc) and not (failure is not None and failure.outcome_unknown)


async def _run_all(calls: list[Callable[[], Any]]) -> None:
    """Run the calls concurrently; the first error is raised as itself (not a group)."""
    errors: list[Exception] = []

    async def guard(call: Callable[[], Any]) -> None:
        try:
            await call()
        except Exception as exc:
            if not errors:
                errors.append(exc)
            tg.cancel_scope.cancel()  # one failed: stop the others

    async with anyio.create_task_group() as tg:
        for call in calls:
            tg.start_soon(guard, call)
    if errors:
        raise errors[0]


def _readable(field: str, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ValidationError(field, str(p), "is not a readable file")
    if p.stat().st_size == 0:
        raise ValidationError(field, str(p), "is empty")
    return p


def _check_training_video(path: Path) -> None:
    """mp4, 1080p or 4K, 3 to 10 minutes (else review rejects it) — checked with PyAV."""
    if path.suffix.lower() != ".mp4":
        raise ValidationError("video", str(path), "must be an mp4 file")
    try:
        import av
    except ImportError:
        log.debug("PyAV not installed: skipping the training video checks")
        return
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValidationError("video", str(path), "has no video stream")
            stream = container.streams.video[0]
            size = (int(stream.codec_context.width), int(stream.codec_context.height))
            seconds = float(container.duration or 0) / 1_000_000
    except av.error.FFmpegError as exc:
        raise ValidationError("video", str(path), f"is not a readable video ({exc})") from None
    if size not in VIDEO_RESOLUTIONS:
        raise ValidationError(
            "video",
            str(path),
            f"is {size[0]}x{size[1]}: must be 1080p or 4K (check_video=False skips this check)",
        )
    low, high = VIDEO_SECONDS
    if not low <= seconds <= high:
        raise ValidationError(
            "video",
            str(path),
            f"lasts {seconds:.0f} s: must be 3 to 10 minutes (check_video=False skips this check)",
        )
