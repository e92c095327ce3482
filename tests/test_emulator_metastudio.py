"""The emulator's MetaStudio service, over real loopback HTTP, with hand-built requests.

Requests are signed with the SDK's signer here; the emulator checks them with
its own (``avatarkit.emulator.metastudio.signing``), which is also tested
against Huawei's reference signer (huaweicloudsdkcore) below.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import msgspec
import pytest

from avatarkit.emulator import Emulator
from avatarkit.emulator.metastudio import PIPELINE, JobRecord
from avatarkit.errors import ValidationError
from avatarkit.metastudio._wire import CommandResult, CreateJobResponse, Job, JobList, JobState
from avatarkit.metastudio.signer import sign
from tests.training_video import short_video, small_video, training_video

__all__ = ["short_video", "small_video", "training_video"]  # fixtures, used by name

pytestmark = pytest.mark.anyio

STEP = 0.005  # metastudio_step_seconds in these tests
OPTS: dict[str, Any] = {"metastudio_step_seconds": STEP}
HEX32 = re.compile(r"[0-9a-f]{32}")
SINGLE_FIELDS = (
    "audio_upload_url",
    "cover_upload_url",
    "id_card_image1_upload_url",
    "id_card_image2_upload_url",
    "grant_file_upload_url",
    "pre_beauty_image_upload_url",
    "post_beauty_image_upload_url",
)


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def etag_of(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


class Api:
    """Hand-built MetaStudio requests against one emulator."""

    def __init__(self, emu: Emulator, client: httpx.AsyncClient) -> None:
        self.emu = emu
        self.client = client
        self.project = emu.options.metastudio_project_id

    def url(self, path: str, project: str | None = None) -> str:
        project = self.project if project is None else project
        return f"{self.emu.http_url}/v1/{project}/digital-human-training-manage/user{path}"

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: str = "token",
        params: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        project: str | None = None,
        x_project: str | None = "",
        ak: str | None = None,
        sk: str | None = None,
        now: datetime | None = None,
        tamper: bytes | None = None,
    ) -> httpx.Response:
        """One API call; ``auth`` is "token", "aksk" or "none".

        ``x_project``: "" sends the path's project id, None leaves it out.
        ``tamper`` replaces the body after signing.
        """
        url = str(httpx.URL(self.url(path, project), params=params))
        content = body if isinstance(body, bytes) else b""
        if body is not None and not isinstance(body, bytes):
            content = msgspec.json.encode(body)
        sent: dict[str, Any] = {}
        if content:
            sent["Content-Type"] = "application/json"
        if auth == "token":
            sent["X-Auth-Token"] = self.emu.options.metastudio_token
        sent.update(headers or {})
        if auth == "aksk":
            if x_project is not None:
                sent["X-Project-Id"] = x_project or (self.project if project is None else project)
            sent = sign(
                method,
                url,
                sent,
                content,
                ak or self.emu.options.metastudio_ak,
                sk or self.emu.options.metastudio_sk,
                now,
            )
        if tamper is not None:
            content = tamper
        return await self.client.request(method, url, content=content, headers=sent)

    async def create(self, **body: Any) -> CreateJobResponse:
        body.setdefault("name", "avatar-one")
        response = await self.call("POST", "/jobs", body)
        return msgspec.json.decode(ok(response).content, type=CreateJobResponse)

    async def show(self, job_id: str) -> Job:
        return msgspec.json.decode(ok(await self.call("GET", f"/jobs/{job_id}")).content, type=Job)

    async def list_jobs(self, **params: Any) -> JobList:
        response = ok(await self.call("GET", "/jobs", params=params))
        return msgspec.json.decode(response.content, type=JobList)

    async def command(self, job_id: str, command: str) -> CommandResult:
        response = ok(await self.call("POST", f"/jobs/{job_id}/command", {"command": command}))
        return msgspec.json.decode(response.content, type=CommandResult)

    async def put(
        self, url: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> httpx.Response:
        return await self.client.put(url, content=data, headers={"Content-Type": content_type})

    def job(self, job_id: str) -> JobRecord:
        return self.emu.state.metastudio.jobs[job_id]

    async def upload_video(self, urls: list[str], data: bytes) -> None:
        """PUT every part concurrently, in reverse order."""
        chunks = split(data, len(urls))

        async def one(k: int) -> None:
            response = await self.put(urls[k], chunks[k])
            assert response.status_code == 200, response.text
            assert response.headers["ETag"] == etag_of(chunks[k])
            assert HEX32.fullmatch(response.headers["X-Request-Id"])

        async with anyio.create_task_group() as tg:
            for k in reversed(range(len(urls))):
                tg.start_soon(one, k)


def split(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i * size : (i + 1) * size] for i in range(n)]


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code in (200, 204), response.text
    assert HEX32.fullmatch(response.headers["X-Request-Id"])
    return response


def fails(response: httpx.Response, status: int, code: str, *words: str) -> str:
    assert response.status_code == status, response.text
    assert HEX32.fullmatch(response.headers["X-Request-Id"])
    body = response.json()
    assert set(body) == {"error_code", "error_msg"}, body
    assert body["error_code"] == code, body
    for word in words:
        assert word in body["error_msg"], (word, body["error_msg"])
    return str(body["error_msg"])


@asynccontextmanager
async def metastudio(**options: Any) -> AsyncIterator[Api]:
    async with Emulator(**{**OPTS, **options}) as emu:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            yield Api(emu, client)


async def wait_for(job: JobRecord, *states: str) -> str:
    with anyio.fail_after(5):
        return await job.wait_for(*states)


async def raw_put(base: str, url: str, head: list[str], body: bytes) -> tuple[int, bytes]:
    """A PUT written by hand (framings httpx refuses to send); returns (status, body)."""
    parts = urlsplit(url)
    host, port = urlsplit(base).hostname, urlsplit(base).port
    assert host is not None and port is not None
    request = "\r\n".join(
        [f"PUT {parts.path}?{parts.query} HTTP/1.1", f"Host: {parts.netloc}", *head]
    )
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(request.encode() + b"\r\n\r\n" + body)
        received = b""
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in received:
                received += await stream.receive()
            header, _, rest = received.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", header)[1])  # type: ignore[index]
            while len(rest) < length:
                rest += await stream.receive()
    return int(header.split()[1]), rest


# -- auth, request ids, error shape ----------------------------------------------


async def test_token_auth_request_ids_and_error_shape() -> None:
    async with metastudio() as api:
        created = await api.create()
        assert HEX32.fullmatch(created.job_id)
        job = await api.show(created.job_id)
        assert job.state == JobState.WAIT_FILE_UPLOAD

        fails(await api.call("GET", "/jobs", auth="none"), 401, "MSS.00000001", "X-Auth-Token")
        response = await api.call("GET", "/jobs", auth="none", headers={"X-Auth-Token": "nope"})
        fails(response, 401, "MSS.00000001", "invalid token")
        response = await api.call("GET", "/jobs", project="other-project")
        fails(response, 403, "MSS.00000002", "other-project")
        fails(await api.call("GET", "/jobs/" + "0" * 32), 404, "MSS.00000005", "0" * 32)
        fails(await api.call("GET", "/nothing-here"), 404, "MSS.00000005", "no such API")
        response = await api.call("PATCH", f"/jobs/{created.job_id}")
        fails(response, 405, "MSS.00000007", "PATCH")
        assert response.headers["Allow"] == "GET, PUT, DELETE"

        ids = set()
        for _ in range(3):
            ids.add(ok(await api.call("GET", "/jobs")).headers["X-Request-Id"])
        assert len(ids) == 3  # one per response


async def test_aksk_auth() -> None:
    async with metastudio() as api:
        response = ok(await api.call("POST", "/jobs", {"name": "signed"}, auth="aksk"))
        job_id = response.json()["job_id"]
        params = {"state": "WAIT_FILE_UPLOAD,JOB_SUCCESS", "limit": 5, "name": "sig ned"}
        ok(await api.call("GET", "/jobs", auth="aksk", params=params))
        ok(await api.call("GET", f"/jobs/{job_id}", auth="aksk"))
        user = {"X-App-UserId": "user-42"}  # a signed extra header
        ok(await api.call("GET", f"/jobs/{job_id}", auth="aksk", headers=user))

        tampered = await api.call(
            "POST", "/jobs", {"name": "a"}, auth="aksk", tamper=b'{"name":"b"}'
        )
        fails(tampered, 401, "MSS.00000001", "signature mismatch")
        response = await api.call("GET", "/jobs", auth="aksk", sk="not-the-secret-key")
        fails(response, 401, "MSS.00000001", "signature mismatch")
        response = await api.call("GET", "/jobs", auth="aksk", ak="SOMEONEELSESAK000000")
        fails(response, 401, "MSS.00000001", "access key")
        stale = datetime.now(UTC) - timedelta(minutes=20)
        response = await api.call("GET", "/jobs", auth="aksk", now=stale)
        fails(response, 401, "MSS.00000001", "stale X-Sdk-Date")
        response = await api.call("GET", "/jobs", auth="aksk", x_project=None)
        fails(response, 401, "MSS.00000001", "X-Project-Id")
        response = await api.call("GET", "/jobs", auth="aksk", x_project="another")
        fails(response, 403, "MSS.00000002", "X-Project-Id='another'")
        response = await api.call("GET", "/jobs", auth="aksk", project="another")
        fails(response, 403, "MSS.00000002", "project_id='another'")
        response = await api.call(
            "GET", "/jobs", auth="none", headers={"Authorization": "Bearer x"}
        )
        fails(response, 401, "MSS.00000001", "AK/SK")


# -- create -------------------------------------------------------------------------


async def test_create_answers_urls() -> None:
    async with metastudio() as api:
        plain = await api.create()
        assert len(plain.training_video_upload_url) == 1
        assert plain.action_video_upload_url == []
        for name in SINGLE_FIELDS:
            assert getattr(plain, name).startswith(api.emu.http_url + "/metastudio-obs/")

        created = await api.create(video_multipart_count=3, action_video_multipart_count=2)
        urls = created.training_video_upload_url
        assert [urlsplit(u).path for u in urls] == [
            f"/metastudio-obs/{created.job_id}/trainingVideo"
        ] * 3
        assert [re.search(r"partNumber=(\d+)", u)[1] for u in urls] == ["1", "2", "3"]  # type: ignore[index]
        assert len(created.action_video_upload_url) == 2
        signatures = [re.search(r"X-Amz-Signature=([0-9a-f]+)", u)[1] for u in urls]  # type: ignore[index]
        assert all(HEX32.fullmatch(s) for s in signatures) and len(set(signatures)) == 3
        assert "X-Amz-Expires=86400" in urls[0]
        assert "/audio?" in str(created.audio_upload_url)

        job = await api.show(created.job_id)
        assert (job.name, job.state, job.model_version) == (
            "avatar-one",
            "WAIT_FILE_UPLOAD",
            "V3.2",
        )
        assert job.is_background_replacement is True and job.is_flexus is False
        assert job.supported_service == ["VIDEO_2D", "LIVE_2D"]
        assert job.asset_id is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(job.create_time))


BODY_RULES: list[tuple[Any, list[str]]] = [
    ({}, ["name", "is required"]),
    ({"name": ""}, ["name", "non-empty"]),
    ({"name": 5}, ["name=5", "Expected `str`"]),
    ({"name": "a", "video_multipart_count": "2"}, ["video_multipart_count='2'", "Expected `int"]),
    ({"name": "a", "video_multipart_count": 1001}, ["video_multipart_count=1001", "1000"]),
    ({"name": "a", "action_video_multipart_count": 0}, ["action_video_multipart_count=0"]),
    ({"name": "a", "model_version": "V2"}, ["model_version='V2'", "V3.2"]),
    ({"name": "a", "voice_properties": {"sex": "X"}}, ["voice_properties.sex='X'"]),
    ({"name": "a", "tags": ["ok", 3]}, ["tags[1]=3"]),
    ({"name": "a", "supported_service": []}, ["supported_service"]),
    ({"name": "a", "is_flexus": True, "supported_service": ["LIVE_2D"]}, ["VIDEO_2D only"]),
    ({"name": "a", "comment": 1, "is_flexus": "yes"}, ["is_flexus='yes'", "Expected `bool"]),
    ({"name": "a", "command_message": "DANCE"}, ["command_message='DANCE'"]),
    ([1, 2], ["body", "object"]),
    (b"{not json", ["not JSON"]),
]


async def test_create_body_rules() -> None:
    async with metastudio() as api:
        for body, words in BODY_RULES:
            fails(await api.call("POST", "/jobs", body), 400, "MSS.00000003", *words)
        assert api.emu.state.metastudio.jobs == {}


async def test_create_headers_and_unknown_fields() -> None:
    async with metastudio() as api:
        chinese = {"X-App-UserId": "用户42".encode()}
        response = await api.call("POST", "/jobs", {"name": "a"}, headers=chinese)
        fails(response, 400, "MSS.00000003", "X-App-UserId='用户42'", "Chinese")
        ascii_user = {"X-App-UserId": "user-42"}
        ok(await api.call("POST", "/jobs", {"name": "a"}, headers=ascii_user))
        text = {"Content-Type": "text/plain"}
        response = await api.call("POST", "/jobs", {"name": "a"}, headers=text)
        fails(response, 400, "MSS.00000003", "Content-Type='text/plain'")
        ok(await api.call("POST", "/jobs", {"name": "b", "future_field": {"x": 1}}))


# -- presigned uploads ------------------------------------------------------------


async def test_multipart_upload_confirm_and_assemble() -> None:
    data = data_of(300_001, seed=1)
    async with metastudio() as api:
        created = await api.create(video_multipart_count=4)
        urls = created.training_video_upload_url
        chunks = split(data, 4)
        job_id = created.job_id

        async with anyio.create_task_group() as tg:  # all but part 2, concurrently, reversed
            for k in (3, 2, 0):
                tg.start_soon(api.put, urls[k], chunks[k])
        result = await api.command(job_id, "GET_MULTIPART_UPLOADED")
        assert result.ok
        assert [(p.part_number, p.etag) for p in result.multipart_data] == [
            ("1", etag_of(chunks[0])),  # a string, as in the official MultipartUploadInfo
            ("3", etag_of(chunks[2])),
            ("4", etag_of(chunks[3])),
        ]
        result = await api.command(job_id, "CONFIRM_MULTIPART_UPLOADED")
        assert result.commond_result == "EXCUTE_FAILED" and "2" in str(result.excute_failed_msg)
        result = await api.command(job_id, "SUBMITVERIFYING")
        assert result.commond_result == "EXCUTE_FAILED"  # no confirmed video yet

        assert (await api.put(urls[1], chunks[1])).status_code == 200
        result = await api.command(job_id, "CONFIRM_MULTIPART_UPLOADED")
        assert result.ok and [p.number for p in result.multipart_data] == [1, 2, 3, 4]
        record = api.job(job_id)
        assert record.video_path is not None and record.video_path.read_bytes() == data
        assert api.emu.stats.metastudio_parts_uploaded == 4
        assert api.emu.stats.metastudio_put_bytes == len(data)

        # The single objects, with their content types.
        response = await api.put(str(created.audio_upload_url), b"PK\x03\x04", "application/zip")
        assert response.status_code == 200
        assert (await api.put(str(created.cover_upload_url), b"png")).status_code == 200
        assert record.files["audio"].read_bytes() == b"PK\x03\x04"
        assert sorted(record.completion_order) == [1, 2, 3, 4]
        assert record.completion_order[-1] == 2  # the part sent last
        assert set(record.files) == {"audio", "cover"}
        directory = record.directory
    assert not directory.exists()  # removed on shutdown


async def test_presigned_put_rules() -> None:
    async with metastudio() as api:
        created = await api.create(video_multipart_count=3)
        one, two, three = created.training_video_upload_url
        part = data_of(1000)

        # Refusals that leave the URL unused.
        response = await api.put(one, part, "video/mp4")
        fails(response, 400, "MSS.00000003", "Content-Type='video/mp4'", "octet-stream")
        response = await api.put(str(created.audio_upload_url), b"zip")
        fails(response, 400, "MSS.00000003", "application/zip")
        response = await api.put(re.sub(r"Signature=\w", "Signature=x", one), part)
        fails(response, 403, "MSS.00000008", "signature does not match")
        response = await api.put(one.replace("partNumber=1", "partNumber=2"), part)
        fails(response, 403, "MSS.00000008", "signature does not match")

        async def chunked() -> AsyncIterator[bytes]:
            yield part

        response = await api.client.put(
            one, content=chunked(), headers={"Content-Type": "application/octet-stream"}
        )
        fails(response, 411, "MSS.00000009", "Content-Length")
        head = [
            "Content-Type: application/octet-stream",
            "Content-Length: 10",
            "Transfer-Encoding: chunked",
        ]
        status, body = await raw_put(api.emu.http_url, one, head, b"5\r\nhello\r\n0\r\n\r\n")
        assert status == 400 and b"the body has 5 bytes" in body
        assert api.emu.stats.metastudio_put_rejected == 6
        assert api.emu.stats.metastudio_parts_uploaded == 0

        # The first good PUT consumes the URL.
        assert (await api.put(one, part)).status_code == 200
        response = await api.put(one, part)
        fails(response, 403, "MSS.00000008", "already used")

        # Two racing PUTs to one URL: exactly one wins.
        async with anyio.create_task_group() as tg:
            results: list[int] = []

            async def racer() -> None:
                results.append((await api.put(two, part)).status_code)

            tg.start_soon(racer)
            tg.start_soon(racer)
        assert sorted(results) == [200, 403]

        response = await api.client.get(three)
        fails(response, 405, "MSS.00000007", "use PUT")

        api.emu.options.metastudio_url_ttl_seconds = 0  # URLs issued from now on expire at once
        expired = (await api.create()).training_video_upload_url[0]
        assert "X-Amz-Expires=0" in expired
        fails(await api.put(expired, part), 403, "MSS.00000008", "expired")


# -- fault injection on PUTs -----------------------------------------------------


async def test_injected_5xx_does_not_consume_the_url() -> None:
    async with metastudio(failure_rate=1.0, failure_mode="5xx") as api:
        created = await api.create(video_multipart_count=1)  # the API itself is not faulted
        url = created.training_video_upload_url[0]
        part = data_of(5000, seed=2)
        for _ in range(3):
            fails_503 = await api.put(url, part)
            assert fails_503.status_code == 503
            assert fails_503.json()["error_code"] == "MSS.00000010"
        assert api.emu.stats.metastudio_injected_failures == 3
        assert (await api.command(created.job_id, "GET_MULTIPART_UPLOADED")).multipart_data == []

        api.emu.options.failure_rate = 0.0
        assert (await api.put(url, part)).status_code == 200
        assert (await api.command(created.job_id, "CONFIRM_MULTIPART_UPLOADED")).ok


async def test_shaped_puts_succeed() -> None:
    data = data_of(64 * 1024, seed=8)
    async with metastudio(latency_ms=5, bandwidth_bps=2_000_000) as api:
        created = await api.create(video_multipart_count=4)
        with anyio.fail_after(5):
            await api.upload_video(created.training_video_upload_url, data)
        assert (await api.command(created.job_id, "CONFIRM_MULTIPART_UPLOADED")).ok
        path = api.job(created.job_id).video_path
        assert path is not None and path.read_bytes() == data


async def test_injected_drop_stores_or_not_and_resend_works() -> None:
    seed, n = 11, 6
    rng = random.Random(seed)  # per PUT: fail? then stored?
    stored = [rng.random() < 1.0 and rng.random() < 0.5 for _ in range(n)]
    assert any(stored) and not all(stored)  # the seed exercises both outcomes
    data = data_of(6 * 4096, seed=3)
    chunks = split(data, n)
    async with metastudio(failure_rate=1.0, failure_mode="drop", fault_seed=seed) as api:
        created = await api.create(video_multipart_count=n)
        urls = created.training_video_upload_url
        for url, chunk in zip(urls, chunks, strict=True):
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await api.put(url, chunk)
        assert api.emu.stats.metastudio_injected_failures == n

        # The client lost every answer: it asks what arrived before resending.
        api.emu.options.failure_rate = 0.0
        result = await api.command(created.job_id, "GET_MULTIPART_UPLOADED")
        arrived = {p.number for p in result.multipart_data}
        assert arrived == {k + 1 for k in range(n) if stored[k]}
        for k in range(n):
            response = await api.put(urls[k], chunks[k])
            if stored[k]:
                fails(response, 403, "MSS.00000008", "already used")
            else:
                assert response.status_code == 200  # an unconsumed URL still works
        assert (await api.command(created.job_id, "CONFIRM_MULTIPART_UPLOADED")).ok
        path = api.job(created.job_id).video_path
        assert path is not None and path.read_bytes() == data


# -- job life -----------------------------------------------------------------------


async def test_submit_runs_to_job_success(training_video: Path) -> None:
    data = await anyio.Path(training_video).read_bytes()
    async with metastudio() as api:
        created = await api.create(video_multipart_count=2, name="happy")
        await api.upload_video(created.training_video_upload_url, data)
        assert (await api.command(created.job_id, "CONFIRM_AUTHORIZATION_LETTER")).ok
        assert (await api.command(created.job_id, "CONFIRM_MULTIPART_UPLOADED")).ok
        assert (await api.command(created.job_id, "SUBMITVERIFYING")).ok
        record = api.job(created.job_id)
        assert record.authorization_confirmed
        with anyio.fail_after(5):
            await record.reached(JobState.JOB_SUCCESS).wait()
        assert all(record.reached(s).is_set() for s in PIPELINE)  # every state on the way

        job = await api.show(created.job_id)
        assert job.state == "JOB_SUCCESS" and job.succeeded
        assert job.model_resolution == "1080P" and job.review_failure is None
        logs = [log.log_type for log in job.operation_logs or ()]
        assert logs[:3] == ["USER_CREATE_JOD", "USER_VERIFYING_SUBMITTED", "SYSTEM_VERIFY_SUCCESS"]
        assert logs[-1] == "SYSTEM_JOB_SUCCESS"
        assert job.asset_id is not None and HEX32.fullmatch(job.asset_id)
        assert job.last_update_time is not None and job.create_time is not None
        assert job.last_update_time >= job.create_time

        # Commands and updates that the state no longer allows.
        path = f"/jobs/{created.job_id}/command"
        response = await api.call("POST", path, {"command": "SUBMITVERIFYING"})
        fails(response, 409, "MSS.00000006", "JOB_SUCCESS", "WAIT_FILE_UPLOAD")
        response = await api.call("POST", path, {"command": "CONFIRM_REPAIR"})
        fails(response, 409, "MSS.00000006", "WAIT_USER_CONFIRM")
        response = await api.call("PUT", f"/jobs/{created.job_id}", {"name": "again"})
        fails(response, 409, "MSS.00000006", "AUTO_VERIFY_FAILED")

        assert (await api.command(created.job_id, "DELETE_JOB_VIDEO")).ok
        assert record.video_path is None and record.video_deleted
        assert not list(record.directory.glob("trainingVideo*"))


async def test_failed_review_then_update_and_retry(training_video: Path) -> None:
    data = await anyio.Path(training_video).read_bytes()
    async with metastudio(metastudio_fail_names=("doomed",)) as api:
        created = await api.create(name="doomed", contact="13800000000")
        job_id = created.job_id
        await api.upload_video(created.training_video_upload_url, data)
        assert (await api.command(job_id, "CONFIRM_MULTIPART_UPLOADED")).ok
        assert (await api.command(job_id, "SUBMITVERIFYING")).ok
        record = api.job(job_id)
        await wait_for(record, JobState.AUTO_VERIFY_FAILED)
        assert (await api.show(job_id)).failed
        assert not record.reached(JobState.MANUAL_VERIFYING).is_set()

        job = await api.show(job_id)
        assert "metastudio_fail_names" in str(job.review_failure)
        response = await api.call("PUT", f"/jobs/{job_id}", {"name": 7})
        fails(response, 400, "MSS.00000003", "name=7")
        response = await api.call("PUT", f"/jobs/{job_id}", {"name": "fixed", "batch_name": "b2"})
        updated = msgspec.json.decode(ok(response).content, type=CreateJobResponse)
        assert updated.job_id == job_id
        assert updated.training_video_upload_url != created.training_video_upload_url
        job = await api.show(job_id)
        assert (job.state, job.name, job.batch_name) == ("WAIT_FILE_UPLOAD", "fixed", "b2")
        assert job.contact == "13800000000"  # not in the update: kept
        assert record.video_path is None and record.video_parts == {}
        old = created.training_video_upload_url[0]
        fails(await api.put(old, data), 403, "MSS.00000008")  # revoked by the update

        await api.upload_video(updated.training_video_upload_url, data)
        assert (await api.command(job_id, "CONFIRM_MULTIPART_UPLOADED")).ok
        assert (await api.command(job_id, "SUBMITVERIFYING")).ok
        await wait_for(record, JobState.JOB_SUCCESS)


async def test_action_video_and_command_errors() -> None:
    async with metastudio() as api:
        plain = await api.create()
        result = await api.command(plain.job_id, "CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED")
        assert result.commond_result == "EXCUTE_FAILED" and "action" in str(
            result.excute_failed_msg
        )
        path = f"/jobs/{plain.job_id}/command"
        fails(await api.call("POST", path, {"command": "DANCE"}), 400, "MSS.00000003", "command")
        fails(await api.call("POST", path, {}), 400, "MSS.00000003", "command", "required")
        response = await api.call("POST", path, {"command": "DELETE_JOB_VIDEO"})
        fails(response, 409, "MSS.00000006", "WAIT_FILE_UPLOAD")
        fails(
            await api.call("POST", "/jobs/nope/command", {"command": "SUBMITVERIFYING"}),
            404,
            "MSS.00000005",
        )

        created = await api.create(action_video_multipart_count=2)
        data = data_of(3000, seed=6)
        await api.upload_video(created.action_video_upload_url, data)
        result = await api.command(created.job_id, "GET_ACTION_VIDEO_MULTIPART_UPLOADED")
        assert [p.number for p in result.multipart_data] == [1, 2]
        assert (await api.command(created.job_id, "CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED")).ok
        action = api.job(created.job_id).action_video_path
        assert action is not None and action.read_bytes() == data
        assert (await api.command(created.job_id, "GET_MULTIPART_UPLOADED")).multipart_data == []


async def test_list_filters_show_and_delete() -> None:
    async with metastudio() as api:
        ids = []
        for i in range(5):
            created = await api.create(
                name=f"avatar-{i}", batch_name="even" if i % 2 == 0 else "odd", tags=[f"t{i}"]
            )
            ids.append(created.job_id)

        listed = await api.list_jobs()
        assert listed.count == 5 and [j.job_id for j in listed.jobs] == ids  # "默认asc升序"
        listed = await api.list_jobs(sort_dir="desc", offset=1, limit=2)
        assert listed.count == 5 and [j.job_id for j in listed.jobs] == ids[::-1][1:3]
        assert (await api.list_jobs(sort_key="asset_order")).count == 5
        assert (await api.list_jobs(is_flexus="false")).count == 5
        assert (await api.list_jobs(is_flexus="true")).count == 0
        assert (await api.list_jobs(create_since="2000-01-01T00:00:00Z")).count == 5
        assert (await api.list_jobs(create_until="2000-01-01T00:00:00Z")).count == 0
        assert (await api.list_jobs(batch_name="even")).count == 3
        assert [j.name for j in (await api.list_jobs(name="tar-3")).jobs] == ["avatar-3"]
        assert [j.job_id for j in (await api.list_jobs(tag="t4")).jobs] == [ids[4]]
        assert (await api.list_jobs(state="WAIT_FILE_UPLOAD,JOB_SUCCESS")).count == 5
        assert (await api.list_jobs(state="JOB_SUCCESS")).jobs == []
        assert (await api.list_jobs(job_id=ids[0])).jobs[0].tags == ["t0"]
        bad_params: list[tuple[dict[str, Any], str]] = [
            ({"limit": 0}, "limit='0'"),
            ({"limit": 101}, "limit='101'"),
            ({"offset": -1}, "offset='-1'"),
            ({"limit": "x"}, "limit='x'"),
            ({"sort_dir": "up"}, "sort_dir='up'"),
            ({"is_flexus": "yes"}, "is_flexus='yes'"),
            ({"create_since": "yesterday"}, "create_since='yesterday'"),
            ({"state": ","}, "state"),
        ]
        for bad, word in bad_params:
            response = await api.call("GET", "/jobs", params=bad)
            fails(response, 400, "MSS.00000003", word)

        gone = ids[2]
        directory = api.job(gone).directory
        response = await api.call("DELETE", f"/jobs/{gone}")
        assert ok(response).status_code == 204 and response.content == b""
        assert not directory.exists()
        fails(await api.call("GET", f"/jobs/{gone}"), 404, "MSS.00000005", gone)
        fails(await api.call("DELETE", f"/jobs/{gone}"), 404, "MSS.00000005")
        assert (await api.list_jobs()).count == 4


async def test_deleted_job_urls_are_refused_and_shutdown_cancels_timers() -> None:
    async with metastudio(metastudio_step_seconds=3600) as api:
        created = await api.create()
        url = created.training_video_upload_url[0]
        ok(await api.call("DELETE", f"/jobs/{created.job_id}"))
        fails(await api.put(url, b"x"), 403, "MSS.00000008")

        running = await api.create()
        await api.upload_video(running.training_video_upload_url, b"video")
        assert (await api.command(running.job_id, "CONFIRM_MULTIPART_UPLOADED")).ok
        assert (await api.command(running.job_id, "SUBMITVERIFYING")).ok
        assert (await api.show(running.job_id)).state == "AUTO_VERIFYING"
    # Leaving the emulator returned at once although the job's next step is an hour away.


@pytest.mark.parametrize(
    "bad",
    [
        {"metastudio_url_ttl_seconds": -1},
        {"metastudio_step_seconds": -0.5},
        {"metastudio_ak": ""},
        {"metastudio_project_id": ""},
    ],
)
def test_bad_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=next(iter(bad))):
        Emulator(**bad)


# -- review probes the video (doc 003 table 6) ------------------------------------------


async def submit(api: Api, data: bytes, **fields: Any) -> JobRecord:
    created = await api.create(**fields)
    await api.upload_video(created.training_video_upload_url, data)
    assert (await api.command(created.job_id, "CONFIRM_MULTIPART_UPLOADED")).ok
    assert (await api.command(created.job_id, "SUBMITVERIFYING")).ok
    return api.job(created.job_id)


@pytest.mark.parametrize(
    ("fixture", "words", "code"),
    [
        ("small_video", ["1280x720", "1080p", "4K"], "44005901"),
        ("short_video", ["lasts 6.0 s", "3 to 10 minutes"], None),
        ("random", ["cannot be read as a video", "MP4"], None),
    ],
)
async def test_review_refuses_media_outside_the_limits(
    request: pytest.FixtureRequest, fixture: str, words: list[str], code: str | None
) -> None:
    data = (
        data_of(64 * 1024)
        if fixture == "random"
        else await anyio.Path(request.getfixturevalue(fixture)).read_bytes()
    )
    async with metastudio() as api:
        record = await submit(api, data)
        assert await wait_for(record, JobState.AUTO_VERIFY_FAILED, JobState.JOB_SUCCESS) == (
            JobState.AUTO_VERIFY_FAILED
        )
        job = await api.show(record.job_id)
        assert job.failed and job.review_failure is not None
        for word in words:
            assert word in job.review_failure
        failure = [
            log for log in job.operation_logs or () if log.log_type == "SYSTEM_VERIFY_FAILED"
        ]
        assert failure[0].error_code == code and failure[0].operate_user == "SYSTEM"
        assert not record.reached(JobState.MANUAL_VERIFYING).is_set()


async def test_a_quicktime_file_is_not_an_mp4(tmp_path: Path) -> None:

    from avatarkit.emulator.media import still_clip

    path = tmp_path / "talk.mov"
    still_clip(path, 3, container="mov")  # the same demuxer as mp4
    async with metastudio() as api:
        record = await submit(api, await anyio.Path(path).read_bytes())
        await wait_for(record, JobState.AUTO_VERIFY_FAILED)
        assert "not an MP4" in str((await api.show(record.job_id)).review_failure)


# -- the official SDK's readings (SPEC §6) --------------------------------------------------


async def test_sdk_enums_empty_strings_and_optional_fields() -> None:
    async with metastudio() as api:
        created = await api.create(
            name="sdk-enums",
            contact="",  # "" = not given (SPEC §6)
            command_message="",
            model_version="V3.3",  # the SDK's model; doc 003 lists V3.2 only
            supported_service=["VIDEO_2D", "CHAT_2D"],  # SupportedServiceEnum
            is_only_human_model=True,  # "仅Flexus版本时有效": no effect, no error
            tags=[""],
            is_live_copy=True,
            voice_properties={"sex": "MALE"},  # job_tag, language optional (sex has a default)
        )
        job = await api.show(created.job_id)
        assert (job.model_version, job.contact, job.is_live_copy) == ("V3.3", None, True)
        assert job.supported_service == ["VIDEO_2D", "CHAT_2D"]
        raw = (await api.call("GET", f"/jobs/{created.job_id}")).json()
        assert None not in raw.values()  # unknown is absent, never null

        path = f"/jobs/{created.job_id}/command"
        comment = {"comment_title": "t", "comment_message": "m", "attachment_name": ["a.png"]}
        body = {
            "command": "GET_MULTIPART_UPLOADED",
            "comment_data": comment,
            "operation_reason": "r",
        }
        assert ok(await api.call("POST", path, body)).json()["commond_result"] == "EXCUTE_SUCCESS"
        response = await api.call(
            "POST", path, {"command": "GET_MULTIPART_UPLOADED", "comment_data": "x"}
        )
        fails(response, 400, "MSS.00000003", "comment_data='x'")
        result = ok(await api.call("POST", path, {"command": "SUBMITVERIFYING"})).json()
        assert result["commond_result"] == "EXCUTE_FAILED"
        assert result["error_info"] == {
            "error_code": "MSS.00000003",
            "error_msg": result["excute_failed_msg"],
        }


async def test_user_verdict_commands() -> None:
    """CONFIRM_ACCEPT/REJECT/ANSWER/PENDING/ACTIVE (the SDK's list, NA users only)."""
    async with metastudio(metastudio_step_seconds=3600) as api:
        created = await api.create()
        record = api.job(created.job_id)
        path = f"/jobs/{created.job_id}/command"
        response = await api.call("POST", path, {"command": "CONFIRM_ACCEPT"})
        fails(response, 409, "MSS.00000006", "WAIT_USER_CONFIRM")
        assert (await api.command(created.job_id, "CONFIRM_PENDING")).ok
        assert record.state == JobState.JOB_PENDING
        fails(await api.call("POST", path, {"command": "CONFIRM_PENDING"}), 409, "MSS.00000006")
        assert (await api.command(created.job_id, "CONFIRM_ACTIVE")).ok
        assert record.state == JobState.WAIT_FILE_UPLOAD
        response = await api.call("POST", path, {"command": "CONFIRM_ACTIVE"})
        fails(response, 409, "MSS.00000006", "JOB_PENDING")

        record.set_state(JobState.WAIT_USER_CONFIRM)  # only NA whitelist users get here
        assert (await api.command(created.job_id, "CONFIRM_ANSWER")).ok
        assert record.state == JobState.WAIT_USER_CONFIRM
        assert (await api.command(created.job_id, "CONFIRM_ACCEPT")).ok
        assert (await api.show(created.job_id)).state == "JOB_FINISH"
        record.set_state(JobState.WAIT_USER_CONFIRM)
        assert (await api.command(created.job_id, "CONFIRM_REJECT")).ok
        assert (await api.show(created.job_id)).state == "JOB_REJECT"


async def test_update_without_a_body_or_a_name() -> None:
    async with metastudio(metastudio_fail_names=("keep",)) as api:
        record = await submit(api, b"not checked: the name fails first", name="keep", tags=["a"])
        await wait_for(record, JobState.AUTO_VERIFY_FAILED)
        response = await api.call("PUT", f"/jobs/{record.job_id}", {"video_multipart_count": 3})
        updated = msgspec.json.decode(ok(response).content, type=CreateJobResponse)
        assert len(updated.training_video_upload_url) == 3
        job = await api.show(record.job_id)
        assert (job.name, job.tags, job.state) == ("keep", ["a"], "WAIT_FILE_UPLOAD")


# -- the emulator's own signature check against Huawei's reference signer -------------------


def _reference_sign(
    method: str, url: str, headers: dict[str, str], body: bytes
) -> tuple[str, dict[str, str]]:
    """Huawei's reference signer on one request: (the path?query it sends, its headers)."""
    from urllib.parse import unquote

    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    parts = urlsplit(url)
    query = [pair.split("=", 1) for pair in parts.query.split("&") if pair]
    request = SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=[(unquote(k), unquote(v)) for k, v in query],
        header_params=dict(headers),
        body=body,
    )
    signed = Signer(BasicCredentials(OPTS_AK, OPTS_SK)).sign(request)
    return signed.uri, dict(signed.header_params)


OPTS_AK, OPTS_SK = "EMULATORAK0000000000", "emulator-sk-0123456789abcdef"


@pytest.mark.parametrize("seed", range(40))
def test_emulator_signing_agrees_with_the_reference(seed: int) -> None:
    """Requests the reference signs pass the emulator's check; any change fails it."""
    pytest.importorskip("huaweicloudsdkcore")
    from avatarkit.emulator.metastudio.signing import SignatureRefused, check_signature

    rng = random.Random(seed)
    alphabet = "abcXYZ019-_.~ %/+&=中"
    word = lambda: "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))  # noqa: E731
    method = rng.choice(["GET", "POST", "PUT", "DELETE"])
    from urllib.parse import quote

    path = "/v1/p/digital-human-training-manage/user/jobs/" + quote(word(), safe="")
    query = "&".join(
        f"{quote(word(), safe='')}={quote(word(), safe='')}" for _ in range(rng.randint(0, 3))
    )
    url = f"http://127.0.0.1:8080{path}" + (f"?{query}" if query else "")
    body = msgspec.json.encode({"name": word()}) if method in ("POST", "PUT") else b""
    headers = {"X-Project-Id": "p", "X-App-UserId": word().strip() or "u"}
    if body:
        headers["Content-Type"] = rng.choice(["application/json", "application/octet-stream"])
    sent, signed = _reference_sign(method, url, headers, body)
    # What the server receives: header values as bytes on the wire, decoded as UTF-8.
    received = {k: v.encode("latin-1").decode("utf-8") for k, v in signed.items()}
    raw_path, _, raw_query = sent.partition("?")
    args: dict[str, Any] = {
        "method": method,
        "raw_path": raw_path,
        "raw_query": raw_query,
        "headers": received,
        "body": body,
        "ak": OPTS_AK,
        "sk": OPTS_SK,
    }
    check_signature(**args)
    for change in (
        {"sk": "another-secret"},
        {"method": "PATCH"},
        {"raw_path": raw_path + "x"},
        {"body": body + b" " if body and "json" in received.get("Content-Type", "json") else b"x"},
        {"headers": {**received, "X-Project-Id": "q"}},
    ):
        if change.get("body") == b"x" and body and "octet" in received.get("Content-Type", ""):
            continue  # UNSIGNED-PAYLOAD: the body is not signed, by design (SPEC §4.2 step 1)
        with pytest.raises(SignatureRefused):
            check_signature(**{**args, **change})
