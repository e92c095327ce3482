"""The presigned object store: single-use PUT URLs and the files they receive.

Presigned URLs are served by the emulator itself::

    http://<host>:<port>/metastudio-obs/<job_id>/<object>[?partNumber=<k>]
        &X-Amz-Date=<YYYYMMDDTHHMMSSZ>&X-Amz-Expires=<ttl>&X-Amz-Signature=<32 hex>

``object`` is ``trainingVideo`` / ``actionVideo`` (one URL per part,
``partNumber`` 1..n) or ``audio``, ``cover``, ``idCardImage1``,
``idCardImage2``, ``grantFile``, ``preBeautyImage``, ``postBeautyImage``.
Only ``PUT``; single-use ("该url在文件上传成功后失效，只能上传一次", doc 003
table 6); valid ``metastudio_url_ttl_seconds`` (SPEC §4.1: 24 h);
``Content-Type`` ``application/octet-stream`` (audio: ``application/zip``,
doc 003 table 6); ``Content-Length`` required and equal to the body's length.
Bodies are streamed to files in the job's directory.  The answer is 200 with
``ETag`` (the quoted md5 hex), the string ``GET_MULTIPART_UPLOADED`` reports.
Failure injection (:mod:`avatarkit.emulator.shaping`) applies to these PUTs: a
503 happens before storing (the URL stays unused); a drop stores the body or
not, at random, before cutting the connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from avatarkit._redact import protected_logger
from avatarkit.emulator._service import media_type
from avatarkit.emulator.metastudio.errors import (
    INTERNAL,
    LENGTH_REQUIRED,
    METHOD,
    URL_REFUSED,
    ErrorBody,
    MetaStudioError,
    invalid,
)
from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from avatarkit.emulator.metastudio.store import JobRecord, MetaStudioStore
    from avatarkit.emulator.state import EmulatorState

__all__ = [
    "ACTION_VIDEO",
    "OBS_PREFIX",
    "SINGLE_OBJECTS",
    "TRAINING_VIDEO",
    "ObjectStore",
    "Presigned",
    "StoredObject",
    "assemble",
    "put_object",
]

log = protected_logger(__name__)

OBS_PREFIX: Final = "/metastudio-obs"
TRAINING_VIDEO: Final = "trainingVideo"
ACTION_VIDEO: Final = "actionVideo"
OCTET_STREAM: Final = "application/octet-stream"
ZIP: Final = "application/zip"
#: Single objects: the create answer's field (doc 003 table 6), the object name in the URL.
SINGLE_OBJECTS: Final = {
    "audio_upload_url": "audio",
    "cover_upload_url": "cover",
    "id_card_image1_upload_url": "idCardImage1",
    "id_card_image2_upload_url": "idCardImage2",
    "grant_file_upload_url": "grantFile",
    "pre_beauty_image_upload_url": "preBeautyImage",
    "post_beauty_image_upload_url": "postBeautyImage",
}


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


class ObjectStore:
    """The presigned URLs, by signature."""

    def __init__(self) -> None:
        self.urls: dict[str, Presigned] = {}

    def revoke(self, job_id: str) -> None:
        """Invalidate every URL of the job."""
        for signature in [s for s, u in self.urls.items() if u.job_id == job_id]:
            del self.urls[signature]

    def presigner(self, job_id: str, base: str, ttl: float) -> Callable[[str, int | None], str]:
        """A function issuing fresh URLs for ``job_id``'s objects (valid ``ttl`` seconds)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        expires, expires_at = int(ttl), time.monotonic() + ttl

        def url(obj: str, part: int | None = None) -> str:
            signature = secrets.token_hex(16)
            self.urls[signature] = Presigned(
                signature=signature,
                job_id=job_id,
                object=obj,
                part_number=part,
                content_type=ZIP if obj == "audio" else OCTET_STREAM,
                expires=expires,
                expires_at=expires_at,
            )
            query = f"partNumber={part}&" if part is not None else ""
            return (
                f"{base}{OBS_PREFIX}/{job_id}/{obj}?{query}X-Amz-Date={stamp}"
                f"&X-Amz-Expires={expires}&X-Amz-Signature={signature}"
            )

        return url

    def find(self, request: Request) -> Presigned:
        """The URL ``request`` was sent to, if it may be used; else MetaStudioError 403."""
        params = request.query_params
        job_id, obj = request.path_params["job_id"], request.path_params["object"]
        url = self.urls.get(params.get("X-Amz-Signature", ""))
        part = params.get("partNumber")
        if (
            url is None
            or url.job_id != job_id
            or url.object != obj
            or part != (None if url.part_number is None else str(url.part_number))
            or params.get("X-Amz-Expires") != str(url.expires)
        ):
            raise MetaStudioError(
                403, URL_REFUSED, "presigned URL refused: the signature does not match"
            )
        if url.used:
            raise MetaStudioError(
                403, URL_REFUSED, "presigned URL already used (URLs are single-use)"
            )
        if time.monotonic() >= url.expires_at:
            raise MetaStudioError(
                403, URL_REFUSED, f"presigned URL expired (valid {url.expires} s)"
            )
        return url


def assemble(parts: list[Path], target: Path) -> None:
    """Concatenate the parts into ``target`` (written aside, then renamed)."""
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        for path in parts:
            with path.open("rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
    os.replace(partial, target)


# -- the PUT endpoint ----------------------------------------------------------------


class _ClientGone(Exception):
    """The client disconnected before its body was read."""


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


def _content_length(request: Request, url: Presigned) -> int:
    raw = request.headers.get("content-length")
    if raw is None:
        raise MetaStudioError(411, LENGTH_REQUIRED, "Content-Length: required on a presigned PUT")
    if media_type(request) != url.content_type:
        value = request.headers.get("content-type")
        rule = f"must be {url.content_type} (doc 003 table 6)"
        raise invalid(str(ValidationError("Content-Type", value, rule)))
    if not raw.isdigit():
        raise invalid(str(ValidationError("Content-Length", raw, "must be a non-negative integer")))
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
        raise invalid(str(ValidationError("Content-Length", length, f"the body has {size} bytes")))
    return StoredObject(path=path, etag=f'"{md5.hexdigest()}"', size=size)


def _keep(
    state: EmulatorState,
    store: MetaStudioStore,
    url: Presigned,
    job: JobRecord,
    received: StoredObject,
) -> StoredObject:
    """Consume the URL and keep the object (no await: the check and the claim are one step)."""
    if url.used:  # a concurrent PUT to the same URL finished first
        raise MetaStudioError(403, URL_REFUSED, "presigned URL already used (URLs are single-use)")
    if store.objects.urls.get(url.signature) is not url:
        raise MetaStudioError(403, URL_REFUSED, "presigned URL refused: revoked while uploading")
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


def _error(error: MetaStudioError, headers: dict[str, str]) -> Response:
    body = msgspec.json.encode(ErrorBody(error_code=str(error.code), error_msg=error.message))
    return Response(
        body, error.status, headers={**headers, **error.headers}, media_type="application/json"
    )


async def put_object(request: Request) -> Response:
    """``PUT`` to a presigned URL."""
    state: EmulatorState = request.app.state.emulator
    store = state.metastudio
    headers = {"X-Request-Id": uuid.uuid4().hex}
    body = _Body(request.receive)
    temp: Path | None = None
    try:
        if request.method != "PUT":
            raise MetaStudioError(
                405,
                METHOD,
                f"method {request.method} not allowed: use PUT",
                headers={"Allow": "PUT"},
            )
        url = store.objects.find(request)
        job = store.jobs.get(url.job_id)
        if job is None:  # unreachable while delete revokes the URLs; kept for safety
            raise MetaStudioError(403, URL_REFUSED, "presigned URL refused: the job is gone")
        length = _content_length(request, url)
        temp = job.directory / f".upload-{secrets.token_hex(8)}"
        received = await _receive_file(body, temp, length)
        await _held(state, url, job)
        stored = _keep(state, store, url, job, received)
        temp = None
    except _ClientGone:
        return Response(status_code=400, headers=headers)  # nobody reads it
    except MetaStudioError as error:
        await body.drain()
        state.stats.metastudio_put_rejected += 1
        return _error(error, headers)
    except Exception:  # an emulator bug must still answer in the service's shape
        log.exception("metastudio PUT %s failed", request.url.path)
        await body.drain()
        return _error(MetaStudioError(500, INTERNAL, "Internal Error"), headers)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
    headers["ETag"] = stored.etag
    return Response(status_code=200, headers=headers)
