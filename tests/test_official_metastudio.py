"""Huawei's own client (huaweicloudsdkmetastudio, dev extra) through a whole job's life.

The official client, with its own AK/SK signer, is pointed at the in-process
emulator (loopback), sync (``MetaStudioClient``) and async
(``MetaStudioAsyncClient``: futures on a thread pool; ``.result()`` waits).
Parts go up with plain ``requests.put`` to the presigned URLs.

The official SDK converts types silently, so parsing proves little: every
answer's raw JSON (captured in the client's own HTTP layer, an ``HttpHandler``
response hook) is checked field by field against the official models'
``openapi_types``: each key must be a declared field, and each value of the
declared type (str, int, bool, list[...], nested model, enum).

Token auth: the official Python SDK has no IAM-token credential (its
``Credentials`` always sign with AK/SK; a token only travels as
``X-Security-Token`` beside temporary AK/SK), so ``X-Auth-Token`` (doc 003
table 2) is tested with plain ``requests``, checked the same way.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from avatarkit.emulator import Emulator
from tests.training_video import training_video

hw = pytest.importorskip("huaweicloudsdkmetastudio.v1")
requests = pytest.importorskip("requests")
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkcore.http.http_handler import HttpHandler  # noqa: E402
from huaweicloudsdkmetastudio.v1 import model as m  # noqa: E402

__all__ = ["training_video"]  # a fixture, used by name
pytestmark = pytest.mark.anyio

PRIMITIVES: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "object": lambda v: True,
}


def conforms(value: Any, declared: str, where: str = "$") -> list[str]:
    """Where ``value`` breaks the official ``declared`` type (an openapi_types string)."""
    if value is None:
        return [f"{where}: null (absent is how the models say unknown)"]
    inner = re.fullmatch(r"list\[(.+)\]", declared)
    if inner:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list ({declared})"]
        return [
            p for i, item in enumerate(value) for p in conforms(item, inner[1], f"{where}[{i}]")
        ]
    if declared in PRIMITIVES:
        ok = PRIMITIVES[declared](value)
        return [] if ok else [f"{where}: {value!r} is not {declared}"]
    cls = getattr(m, declared)
    if declared.endswith("Enum"):
        allowed = [v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)]
        return [] if value in allowed else [f"{where}: {value!r} not in {declared} {allowed}"]
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not an object ({declared})"]
    by_key = {key: attr for attr, key in cls.attribute_map.items()}
    problems = []
    for key, item in value.items():
        if key not in by_key:
            problems.append(f"{where}.{key}: not a field of {declared}")
        else:
            problems += conforms(item, cls.openapi_types[by_key[key]], f"{where}.{key}")
    return problems


def check_raw(response: Any, declared: str) -> dict[str, Any]:
    """The raw answer conforms to the official response model; returns its JSON."""
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    if response.status_code == 204:
        assert response.content == b""
        return {}
    body = response.json()
    cls = getattr(m, declared)
    fields = {k: v for k, v in cls.attribute_map.items() if v != "X-Request-Id"}
    problems = conforms(body, declared)
    assert not problems, problems
    assert set(body) <= set(fields.values())
    return body  # type: ignore[no-any-return]


def test_the_checker_sees_what_the_official_client_would_hide() -> None:
    """What the earlier emulator sent, and the official client parsed without a word."""
    assert conforms({"part_number": 1, "etag": "x"}, "MultipartUploadInfo")  # int, not str
    assert conforms({"error_info": "boom"}, "Execute2dModelTrainingCommandByUserResponse")
    assert conforms({"job_id": "j", "asset_id": None}, "TrainingJobBasicInfo")  # null
    assert conforms({"job_id": "j", "is_flexus": "false"}, "TrainingJobBasicInfo")
    assert conforms(
        {"job_id": "j", "supported_service": ["VIDEO_3D"]}, "Show2dModelTrainingJobResponse"
    )
    assert conforms(
        {"count": 1, "jobs": [{"job_id": "j", "voice_properties": {}}]},
        "List2dModelTrainingJobResponse",
    )
    assert not conforms({"part_number": "1", "etag": "x"}, "MultipartUploadInfo")


def official_commands() -> list[str]:
    """Every command the official model's docstring lists (its enum)."""
    doc = m.Execute2dModelTrainingCommandByUserReq.command.__doc__ or ""
    return sorted(set(re.findall(r"\* ([A-Z_]{6,})[：:]", doc)))


class Official:
    """The official client (sync or async) with its raw answers captured."""

    def __init__(self, emu: Emulator, *, use_async: bool) -> None:
        self.emu = emu
        self.raw: list[Any] = []
        handler = HttpHandler().add_response_handler(lambda **kw: self.raw.append(kw["response"]))
        opts = emu.options
        credentials = BasicCredentials(opts.metastudio_ak, opts.metastudio_sk)
        credentials = credentials.with_project_id(opts.metastudio_project_id)
        kind = hw.MetaStudioAsyncClient if use_async else hw.MetaStudioClient
        self.client = (
            kind.new_builder()
            .with_credentials(credentials)
            .with_endpoint(emu.http_url)
            .with_http_handler(handler)
            .build()
        )
        self.use_async = use_async

    async def call(self, name: str, request: Any) -> tuple[Any, Any]:
        """(the parsed answer, the raw HTTP response) of one official call, off the loop."""

        def run() -> Any:
            if self.use_async:
                return getattr(self.client, name + "_async")(request).result()
            return getattr(self.client, name)(request)

        count = len(self.raw)
        parsed = await anyio.to_thread.run_sync(run)
        assert len(self.raw) == count + 1
        return parsed, self.raw[-1]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(metastudio_step_seconds=0.01, metastudio_fail_names=("审核失败",)) as e:
        yield e


def put_parts(urls: list[str], data: bytes) -> None:
    """Plain requests.put of each part, octet-stream (doc 003 table 6)."""
    size = -(-len(data) // len(urls))
    for k, url in enumerate(urls):
        part = data[k * size : (k + 1) * size]
        answer = requests.put(url, data=part, headers={"Content-Type": "application/octet-stream"})
        assert answer.status_code == 200, answer.text


async def wait_state(emu: Emulator, job_id: str, *states: str) -> str:
    with anyio.fail_after(30):
        return await emu.state.metastudio.jobs[job_id].wait_for(*states)


def command(job_id: str, name: str, **fields: Any) -> Any:
    body = m.Execute2dModelTrainingCommandByUserReq(command=name, **fields)
    return m.Execute2dModelTrainingCommandByUserRequest(job_id=job_id, body=body)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_whole_job_life(emu: Emulator, training_video: Path, use_async: bool) -> None:
    api = Official(emu, use_async=use_async)
    data = await anyio.Path(training_video).read_bytes()

    # create: doc 003's own example body, through the official models
    body = m.Create2dModelTrainingJobReq(
        is_background_replacement=True,
        video_multipart_count=2,
        contact="1**********",
        name="测试角色",
        batch_name="official",
        tags=["t1"],
        supported_service=["VIDEO_2D", "LIVE_2D", "CHAT_2D"],
        voice_properties=m.VoiceProperties(job_tag="NEWS", sex="FEMALE", language="CN"),
    )
    request = m.Create2dModelTrainingJobRequest(body=body, x_app_user_id="user-1")
    created, raw = await api.call("create2d_model_training_job", request)
    check_raw(raw, "Create2dModelTrainingJobResponse")
    assert len(created.training_video_upload_url) == 2 and created.x_request_id
    job_id = created.job_id
    await anyio.to_thread.run_sync(put_parts, created.training_video_upload_url, data)

    answer, raw = await api.call(
        "execute2d_model_training_command_by_user", command(job_id, "GET_MULTIPART_UPLOADED")
    )
    body_json = check_raw(raw, "Execute2dModelTrainingCommandByUserResponse")
    assert [p["part_number"] for p in body_json["multipart_data"]] == ["1", "2"]
    for name in ("CONFIRM_MULTIPART_UPLOADED", "CONFIRM_AUTHORIZATION_LETTER", "SUBMITVERIFYING"):
        answer, raw = await api.call(
            "execute2d_model_training_command_by_user", command(job_id, name)
        )
        check_raw(raw, "Execute2dModelTrainingCommandByUserResponse")
        assert answer.commond_result == "EXCUTE_SUCCESS", (name, answer)
    assert await wait_state(emu, job_id, "JOB_SUCCESS", "AUTO_VERIFY_FAILED") == "JOB_SUCCESS"

    shown, raw = await api.call(
        "show2d_model_training_job", m.Show2dModelTrainingJobRequest(job_id=job_id)
    )
    show_json = check_raw(raw, "Show2dModelTrainingJobResponse")
    assert (shown.state, shown.name, shown.app_user_id) == ("JOB_SUCCESS", "测试角色", "user-1")
    assert show_json["model_resolution"] == "1080P" and show_json["asset_id"]
    assert show_json["supported_service"] == ["VIDEO_2D", "LIVE_2D", "CHAT_2D"]
    assert show_json["operation_logs"][-1]["log_type"] == "SYSTEM_JOB_SUCCESS"

    listing = m.List2dModelTrainingJobRequest(
        state="JOB_SUCCESS,WAIT_FILE_UPLOAD",
        batch_name="official",
        limit=5,
        offset=0,
        sort_key="create_time",
        sort_dir="desc",
        is_flexus=False,
        create_since="2000-01-01T00:00:00Z",
    )
    listed, raw = await api.call("list2d_model_training_job", listing)
    check_raw(raw, "List2dModelTrainingJobResponse")
    assert listed.count == 1 and listed.jobs[0].job_id == job_id
    none, raw = await api.call(
        "list2d_model_training_job", m.List2dModelTrainingJobRequest(state="TRAINING", tag="t1")
    )
    assert none.count == 0 and check_raw(raw, "List2dModelTrainingJobResponse")["jobs"] == []

    answer, raw = await api.call(
        "execute2d_model_training_command_by_user", command(job_id, "DELETE_JOB_VIDEO")
    )
    check_raw(raw, "Execute2dModelTrainingCommandByUserResponse")
    assert answer.commond_result == "EXCUTE_SUCCESS"

    _, raw = await api.call(
        "delete2d_model_training_job", m.Delete2dModelTrainingJobRequest(job_id=job_id)
    )
    assert raw.status_code == 204 and check_raw(raw, "Delete2dModelTrainingJobResponse") == {}
    with pytest.raises(ClientRequestException) as info:
        await api.call("show2d_model_training_job", m.Show2dModelTrainingJobRequest(job_id=job_id))
    assert (info.value.status_code, info.value.error_code) == (404, "MSS.00000005")
    assert check_raw(api.raw[-1], "ErrorResponse").keys() == {"error_code", "error_msg"}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_failed_review_then_update(
    emu: Emulator, training_video: Path, use_async: bool
) -> None:
    api = Official(emu, use_async=use_async)
    data = await anyio.Path(training_video).read_bytes()
    body = m.Create2dModelTrainingJobReq(name="审核失败", video_multipart_count=1)
    created, _ = await api.call(
        "create2d_model_training_job", m.Create2dModelTrainingJobRequest(body=body)
    )
    await anyio.to_thread.run_sync(put_parts, created.training_video_upload_url, data)
    for name in ("CONFIRM_MULTIPART_UPLOADED", "SUBMITVERIFYING"):
        await api.call("execute2d_model_training_command_by_user", command(created.job_id, name))
    assert await wait_state(emu, created.job_id, "AUTO_VERIFY_FAILED") == "AUTO_VERIFY_FAILED"
    _, raw = await api.call(
        "show2d_model_training_job", m.Show2dModelTrainingJobRequest(job_id=created.job_id)
    )
    logs = check_raw(raw, "Show2dModelTrainingJobResponse")["operation_logs"]
    assert logs[-1]["log_type"] == "SYSTEM_VERIFY_FAILED" and logs[-1]["log_description"]

    # Update2dModelTrainingJobReq has no required field: no name here.
    update = m.Update2dModelTrainingJobReq(
        video_multipart_count=3,
        batch_name="retry",
        samples_basic_info=[m.ActionBasicSampleInfo(action_name_en="wave", is_selected=True)],
    )
    updated, raw = await api.call(
        "update2d_model_training_job",
        m.Update2dModelTrainingJobRequest(job_id=created.job_id, body=update),
    )
    check_raw(raw, "Update2dModelTrainingJobResponse")
    assert len(updated.training_video_upload_url) == 3
    shown, _ = await api.call(
        "show2d_model_training_job", m.Show2dModelTrainingJobRequest(job_id=created.job_id)
    )
    assert (shown.state, shown.name, shown.batch_name) == ("WAIT_FILE_UPLOAD", "审核失败", "retry")


async def test_every_official_command(emu: Emulator, training_video: Path) -> None:
    """Each command the official enum lists is accepted in a state it applies to."""
    api = Official(emu, use_async=False)
    commands = official_commands()
    assert len(commands) == 13 and "CONFIRM_ACCEPT" in commands
    data = await anyio.Path(training_video).read_bytes()
    body = m.Create2dModelTrainingJobReq(name="命令", action_video_multipart_count=1)
    created, _ = await api.call(
        "create2d_model_training_job", m.Create2dModelTrainingJobRequest(body=body)
    )
    job_id = created.job_id
    record = emu.state.metastudio.jobs[job_id]
    await anyio.to_thread.run_sync(put_parts, created.training_video_upload_url, data)
    await anyio.to_thread.run_sync(put_parts, created.action_video_upload_url, b"action" * 100)

    # name, the state to put the job in first (None: as it is)
    plan: list[tuple[str, str | None]] = [
        ("GET_MULTIPART_UPLOADED", None),
        ("GET_ACTION_VIDEO_MULTIPART_UPLOADED", None),
        ("CONFIRM_ACTION_VIDEO_MULTIPART_UPLOADED", None),
        ("CONFIRM_AUTHORIZATION_LETTER", None),
        ("CONFIRM_PENDING", None),
        ("CONFIRM_ACTIVE", None),
        ("CONFIRM_MULTIPART_UPLOADED", None),
        ("SUBMITVERIFYING", None),
        ("CONFIRM_ANSWER", "WAIT_USER_CONFIRM"),
        ("CONFIRM_REPAIR", "WAIT_USER_CONFIRM"),
        ("CONFIRM_ACCEPT", "WAIT_USER_CONFIRM"),
        ("CONFIRM_REJECT", "WAIT_USER_CONFIRM"),
        ("DELETE_JOB_VIDEO", None),
    ]
    assert sorted(name for name, _ in plan) == commands
    comment = m.CommentData(comment_title="t", comment_message="m", attachment_name=["a.png"])
    for name, state in plan:
        if state is not None:
            record.scope.cancel()
            record.set_state(state)
        answer, raw = await api.call(
            "execute2d_model_training_command_by_user",
            command(job_id, name, comment_data=comment, operation_reason="test"),
        )
        check_raw(raw, "Execute2dModelTrainingCommandByUserResponse")
        assert answer.commond_result == "EXCUTE_SUCCESS", (name, answer)
    assert record.state == "JOB_REJECT" and record.video_deleted


def test_token_auth_with_plain_requests_through_the_job_life(training_video: Path) -> None:
    """X-Auth-Token (doc 003 table 2): create, upload, command, show, list, update, delete."""

    data = training_video.read_bytes()

    async def main() -> None:
        async with Emulator(metastudio_step_seconds=0.01, metastudio_fail_names=("tok",)) as emu:
            await anyio.to_thread.run_sync(flow, emu, data)

    def flow(emu: Emulator, data: bytes) -> None:
        opts = emu.options
        base = f"{emu.http_url}/v1/{opts.metastudio_project_id}/digital-human-training-manage/user"
        token = {"X-Auth-Token": opts.metastudio_token}
        s = requests.Session()
        s.headers.update(token)
        created = check_raw(
            s.post(f"{base}/jobs", json={"name": "tok"}), "Create2dModelTrainingJobResponse"
        )
        job_id = created["job_id"]
        put_parts(created["training_video_upload_url"], data)
        for name in ("CONFIRM_MULTIPART_UPLOADED", "SUBMITVERIFYING"):
            answer = s.post(f"{base}/jobs/{job_id}/command", json={"command": name})
            assert (
                check_raw(answer, "Execute2dModelTrainingCommandByUserResponse")["commond_result"]
                == "EXCUTE_SUCCESS"
            )
        anyio.from_thread.run(wait_state, emu, job_id, "AUTO_VERIFY_FAILED")
        shown = check_raw(s.get(f"{base}/jobs/{job_id}"), "Show2dModelTrainingJobResponse")
        assert shown["state"] == "AUTO_VERIFY_FAILED"
        listed = s.get(f"{base}/jobs", params={"state": "AUTO_VERIFY_FAILED"})
        assert check_raw(listed, "List2dModelTrainingJobResponse")["count"] == 1
        updated = s.put(f"{base}/jobs/{job_id}", json={"contact": "13800000000"})
        check_raw(updated, "Update2dModelTrainingJobResponse")
        assert s.delete(f"{base}/jobs/{job_id}").status_code == 204
        refused = requests.get(f"{base}/jobs", headers={"X-Auth-Token": "wrong"})
        assert refused.status_code == 401
        assert check_raw(refused, "ErrorResponse")["error_code"] == "MSS.00000001"

    anyio.run(main)


def _official_type(t: Any) -> str:
    """An avatarkit wire field's type written as the official openapi_types would."""
    import msgspec.inspect as mi

    if isinstance(t, mi.UnionType):
        kinds = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(kinds) > 1:  # e.g. part_number: str | int, accepting both readings
            return "|".join(sorted(_official_type(k) for k in kinds))
        t = kinds[0]
    if isinstance(t, mi.ListType):
        return f"list[{_official_type(t.item_type)}]"
    if isinstance(t, mi.StructType):
        return t.cls.__name__
    return {mi.StrType: "str", mi.IntType: "int", mi.BoolType: "bool"}.get(type(t), repr(t))


@pytest.mark.parametrize(
    ("ours", "official", "renamed"),
    [
        ("CreateJobRequest", "Create2dModelTrainingJobReq", {}),
        ("VoiceProperties", "VoiceProperties", {}),
        ("CreateJobResponse", "Create2dModelTrainingJobResponse", {}),
        ("CommandRequest", "Execute2dModelTrainingCommandByUserReq", {}),
        ("CommentData", "CommentData", {}),
        ("CommandResult", "Execute2dModelTrainingCommandByUserResponse", {}),
        ("MultipartData", "MultipartUploadInfo", {}),
        ("ErrorBody", "ErrorResponse", {}),
        ("OperationLog", "OperationLogInfo", {}),
        ("Job", "Show2dModelTrainingJobResponse", {}),
        ("JobList", "List2dModelTrainingJobResponse", {"Job": "TrainingJobBasicInfo"}),
    ],
)
def test_sdk_wire_models_match_the_official_ones(
    ours: str, official: str, renamed: dict[str, str]
) -> None:
    """Each field of avatarkit.metastudio._wire exists in the official model, same type."""
    import msgspec.inspect as mi

    from avatarkit.metastudio import _wire as wire

    names = {
        "VoiceProperties": "VoiceProperties",
        "CommentData": "CommentData",
        "MultipartData": "MultipartUploadInfo",
        "ErrorBody": "ErrorResponse",
        "OperationLog": "OperationLogInfo",
        **renamed,
    }
    cls = getattr(m, official)
    info = mi.type_info(getattr(wire, ours))
    assert isinstance(info, mi.StructType)
    for f in info.fields:
        assert f.name in cls.openapi_types, f"{ours}.{f.name}: not in {official}"
        declared = cls.openapi_types[f.name].replace("SupportedServiceEnum", "str")
        mine = _official_type(f.type)
        for our_name, their_name in names.items():
            mine = mine.replace(our_name, their_name)
        if "|" in mine:  # accepts the official type and another
            assert declared in mine.split("|"), (ours, f.name, mine, declared)
        else:
            assert mine == declared, (ours, f.name, mine, declared)
