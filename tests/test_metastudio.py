"""The MetaStudio client against the emulator over loopback."""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path

import anyio
import pytest

from avatarkit import (
    AuthenticationError,
    AvatarError,
    RetryPolicy,
    ServiceError,
    TrainingFailed,
    UploadProgress,
    ValidationError,
)
from avatarkit.emulator import Emulator
from avatarkit.metastudio import MetaStudio
from avatarkit.metastudio._wire import JobState
from tests.training_video import small_video, training_video

__all__ = ["small_video", "training_video"]  # fixtures, used by name

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=12, base_delay=0.001, max_delay=0.005, total_timeout=60)


def client(emu: Emulator, **kwargs: object) -> MetaStudio:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("upload_retry", FAST)
    return emu.metastudio(**kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def emu() -> Emulator:
    async with Emulator(metastudio_step_seconds=0.01) as e:
        yield e  # type: ignore[misc]


def video(tmp_path: Path, size: int = 300_001) -> Path:
    path = tmp_path / "talk.mp4"
    path.write_bytes(os.urandom(size))
    return path


@pytest.mark.parametrize("auth", ["aksk", "token"])
async def test_full_flow_to_job_success(emu: Emulator, training_video: Path, auth: str) -> None:
    path = training_video
    seen: list[UploadProgress] = []
    async with client(emu, auth=auth) as ms:
        job = await ms.run_training(
            "测试角色",
            video=path,
            part_bytes=400 * 1024,
            poll_interval=0.01,
            on_progress=seen.append,
            contact="13800000000",
        )
        assert job.state == JobState.JOB_SUCCESS and job.succeeded
        assert job.model_resolution == "1080P" and job.review_failure is None
        record = emu.state.metastudio.jobs[job.job_id]
        assert record.video_path.read_bytes() == path.read_bytes()
        listed = await ms.list_jobs(state="JOB_SUCCESS")
        assert job.job_id in [j.job_id for j in listed.jobs]
        assert (await ms.status(job.job_id)).name == "测试角色"
        await ms.delete_job(job.job_id)
        with pytest.raises(ServiceError) as info:
            await ms.status(job.job_id)
    assert info.value.status == 404 and info.value.request_id
    assert str(info.value.code).startswith("MSS.")
    parts = -(-path.stat().st_size // (400 * 1024))
    assert seen[-1].acked_bytes == path.stat().st_size and seen[-1].part == seen[-1].parts == parts


async def test_parts_go_concurrently_and_complete_out_of_order(tmp_path: Path) -> None:
    """8 parts at once; the emulator holds part 1 back until another part is stored.

    Sent one at a time this could never finish (part 1 would wait for a part
    not yet sent): finishing shows the PUTs overlap, and the order shows part 1
    completed after others.
    """
    path = video(tmp_path, 8 * 40_000 - 3)
    async with Emulator(metastudio_step_seconds=0.01, metastudio_hold_parts=(1,)) as emu:
        async with client(emu, max_concurrency=8) as ms:
            job = await ms.create_training_job("并发", video_multipart_count=8)
            await ms.upload(job, path)  # the parts, then CONFIRM_MULTIPART_UPLOADED
        record = emu.state.metastudio.jobs[job.job_id]
        assert record.video_path.read_bytes() == path.read_bytes()
        order = record.completion_order
        assert sorted(order) == list(range(1, 9))
        assert order != sorted(order) and order[0] != 1  # part 1 was not first


async def test_injected_failures_never_reuse_a_consumed_url(training_video: Path) -> None:
    path = training_video
    async with Emulator(
        metastudio_step_seconds=0.01, failure_rate=0.3, failure_mode="mixed", fault_seed=11
    ) as emu:
        async with client(emu) as ms:
            job = await ms.run_training("重试", video=path, part_bytes=200_000, poll_interval=0.01)
        assert job.succeeded
        assert emu.stats.metastudio_injected_failures > 0
        assert emu.stats.metastudio_put_rejected == 0  # no consumed URL was ever sent again
        assert emu.state.metastudio.jobs[job.job_id].video_path.read_bytes() == path.read_bytes()


async def test_other_files_and_the_action_video(
    emu: Emulator, tmp_path: Path, training_video: Path
) -> None:
    files = {}
    for name in ("action.mp4", "audio.zip", "cover.jpg", "front.jpg", "back.jpg", "grant.pdf"):
        files[name] = tmp_path / name
        files[name].write_bytes(os.urandom(20_000))
    async with client(emu) as ms:
        job = await ms.run_training(
            "全部",
            video=training_video,
            action_video=files["action.mp4"],
            audio=files["audio.zip"],
            cover=files["cover.jpg"],
            id_card_images=(files["front.jpg"], files["back.jpg"]),
            grant_file=files["grant.pdf"],
            part_bytes=400_000,
            poll_interval=0.01,
        )
    assert job.succeeded
    stored = emu.state.metastudio.jobs[job.job_id]
    assert stored.files["audio"].read_bytes() == files["audio.zip"].read_bytes()
    assert stored.files["grantFile"].read_bytes() == files["grant.pdf"].read_bytes()


async def test_failed_job_raises_training_failed(tmp_path: Path) -> None:
    async with Emulator(metastudio_step_seconds=0.01, metastudio_fail_names=("坏的",)) as emu:
        async with client(emu) as ms:
            with pytest.raises(TrainingFailed) as info:
                await ms.run_training(
                    "坏的", video=video(tmp_path), check_video=False, poll_interval=0.01
                )
    assert info.value.info.state == JobState.AUTO_VERIFY_FAILED


@pytest.mark.parametrize("kind", ["random", "720p"])
async def test_review_failure_says_why(
    emu: Emulator, tmp_path: Path, small_video: Path, kind: str
) -> None:
    """Doc 003: not 1080p/4K MP4 of 3-10 min fails review; the error says what to fix."""
    path = video(tmp_path, 64 * 1024) if kind == "random" else small_video
    async with client(emu) as ms:
        with pytest.raises(TrainingFailed) as info:
            await ms.run_training("审核", video=path, check_video=False, poll_interval=0.01)
    job = info.value.info
    assert job.state == JobState.AUTO_VERIFY_FAILED
    words = "cannot be read as a video" if kind == "random" else "1280x720"
    assert words in str(job.review_failure)
    assert any(words in note for note in info.value.__notes__)


async def test_wait_timeout_and_until(emu: Emulator, tmp_path: Path) -> None:
    from avatarkit.errors import TimeoutError

    async with client(emu) as ms:
        job = await ms.create_training_job("等待")
        with pytest.raises(TimeoutError, match="WAIT_FILE_UPLOAD"):
            await ms.wait(job.job_id, timeout=0.05, poll_interval=0.01)
        reached = await ms.wait(job.job_id, until="WAIT_FILE_UPLOAD", poll_interval=0.01)
        assert reached.state == "WAIT_FILE_UPLOAD"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"video_multipart_count": 0}, "video_multipart_count"),
        ({"video_multipart_count": 1001}, "video_multipart_count"),
        ({"action_video_multipart_count": True}, "action_video_multipart_count"),
        ({"command_message": "DANCE"}, "command_message"),
        ({"model_version": "V2"}, "model_version"),
        ({"audio_source_type": "MIC"}, "audio_source_type"),
        ({"voice_properties": {"sex": "OTHER"}}, "voice_properties.sex"),
        ({"voice_properties": {"job_tag": "GAMES"}}, "voice_properties.job_tag"),
        ({"supported_service": ["VIDEO_3D"]}, "supported_service"),
        ({"supported_service": []}, "supported_service"),
        ({"is_flexus": "yes"}, "is_flexus"),
        ({"is_flexus": True, "supported_service": ["LIVE_2D"]}, "supported_service"),
        ({"tags": ["ok", 3]}, "tags"),
    ],
)
async def test_create_rules_fail_before_sending(
    emu: Emulator, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"name": "角色"}
    args.update(kwargs)
    async with client(emu) as ms:
        with pytest.raises(ValidationError) as info:
            await ms.create_training_job(**args)  # type: ignore[arg-type]
    assert info.value.field == field
    assert not emu.state.metastudio.jobs


def test_client_arguments() -> None:
    with pytest.raises(ValidationError, match="endpoint= or region="):
        MetaStudio("p", ak="a", sk="s")
    with pytest.raises(ValidationError, match="ak= and sk=, or token="):
        MetaStudio("p", region="cn-north-4", ak="a")
    with pytest.raises(ValidationError, match="not both"):
        MetaStudio("p", region="cn-north-4", ak="a", sk="s", token="t")
    with pytest.raises(ValidationError) as info:
        MetaStudio("p", region="cn-north-4", ak="a", sk="s", app_user_id="用户1")
    assert info.value.field == "app_user_id"

    async def train_with_zero_parts() -> None:
        await MetaStudio("p", region="r", token="tok-abcdefgh").run_training(
            "x", video="v.mp4", part_bytes=0
        )

    with pytest.raises(ValidationError) as info:
        anyio.run(train_with_zero_parts)
    assert info.value.field == "part_bytes"
    ms = MetaStudio("p", region="cn-north-4", token="tok-abcdefgh")
    assert ms.endpoint == "https://metastudio.cn-north-4.myhuaweicloud.com"
    assert "tok-abcdefgh" not in repr(ms)


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METASTUDIO_TOKEN", "METASTUDIO_ENDPOINT", "METASTUDIO_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("METASTUDIO_PROJECT_ID", "proj")
    monkeypatch.setenv("METASTUDIO_REGION", "cn-north-4")
    monkeypatch.setenv("CLOUD_SDK_AK", "AKFROMENV")
    monkeypatch.setenv("CLOUD_SDK_SK", "SKFROMENV-secret")
    ms = MetaStudio.from_env()
    assert (ms.project_id, ms.endpoint) == (
        "proj",
        "https://metastudio.cn-north-4.myhuaweicloud.com",
    )
    monkeypatch.delenv("CLOUD_SDK_SK")
    with pytest.raises(ValidationError, match="CLOUD_SDK_AK and CLOUD_SDK_SK"):
        MetaStudio.from_env()
    monkeypatch.delenv("METASTUDIO_PROJECT_ID")
    with pytest.raises(ValidationError) as info:
        MetaStudio.from_env()
    assert info.value.field == "METASTUDIO_PROJECT_ID"


async def test_bad_credentials_are_refused(emu: Emulator) -> None:
    bad = MetaStudio(
        emu.options.metastudio_project_id,
        endpoint=emu.http_url,
        ak=emu.options.metastudio_ak,
        sk="a-wrong-secret-key",
        retry=FAST,
    )
    async with bad as ms:
        with pytest.raises(AuthenticationError) as info:
            await ms.list_jobs()
    assert info.value.status == 401 and info.value.request_id
    assert "a-wrong-secret-key" not in str(info.value)


async def test_training_video_checks(emu: Emulator, tmp_path: Path) -> None:
    async with client(emu) as ms:
        (tmp_path / "clip.mov").write_bytes(b"x" * 10)
        with pytest.raises(ValidationError, match="mp4"):
            await ms.run_training("x", video=tmp_path / "clip.mov")
        (tmp_path / "junk.mp4").write_bytes(b"not a video")
        with pytest.raises(ValidationError, match="not a readable video"):
            await ms.run_training("x", video=tmp_path / "junk.mp4")
        with pytest.raises(ValidationError, match="not a readable file"):
            await ms.run_training("x", video=tmp_path / "missing.mp4")
        (tmp_path / "empty.mp4").write_bytes(b"")
        with pytest.raises(ValidationError, match="empty"):
            await ms.run_training("x", video=tmp_path / "empty.mp4", check_video=False)
    assert not emu.state.metastudio.jobs


async def test_no_secret_in_logs_reprs_or_errors(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with Emulator(metastudio_step_seconds=0.01, failure_rate=0.3, fault_seed=3) as emu:
        opts = emu.options
        async with client(emu) as ms:
            job = await ms.create_training_job("秘密", video_multipart_count=3)
            texts += [repr(ms), repr(job)]
            await ms.upload(job, video(tmp_path, 30_000))
            with pytest.raises(ServiceError) as reused:  # a consumed URL is refused
                await ms.upload_file(job.training_video_upload_url[0], video(tmp_path, 10))
            texts += [str(reused.value), repr(reused.value)]
        async with client(emu, auth="token") as ms:
            await ms.list_jobs()
            texts.append(repr(ms))
        signatures = [url.split("?", 1)[1] for url in job.training_video_upload_url]
    everything = caplog.text + "\n".join(texts)
    assert "HTTP Request: PUT" in caplog.text  # httpx's own log lines were captured...
    for secret in (opts.metastudio_sk, opts.metastudio_ak, opts.metastudio_token, *signatures):
        assert secret not in everything  # ...with every credential masked


async def test_a_cancelled_upload_can_be_run_again(emu: Emulator, tmp_path: Path) -> None:
    """Parts already received are skipped (their URLs are spent); the rest go out."""
    path = video(tmp_path, 400_000)
    async with client(emu, max_concurrency=2) as ms:
        job = await ms.create_training_job("取消", video_multipart_count=8)
        upload = ms.upload(job, path)
        async for progress in upload:
            if progress.part >= 3:
                break  # leaving the loop cancels the upload
        with pytest.raises(AvatarError, match="left early"):
            _ = upload.result
        done = await ms.uploaded_parts(job.job_id)
        assert 3 <= len(done) < 8
        # by job id and URLs, as after a restart
        await ms.upload(job.job_id, path, urls=job.training_video_upload_url)
    assert emu.stats.metastudio_put_rejected == 0
    assert emu.state.metastudio.jobs[job.job_id].video_path.read_bytes() == path.read_bytes()


async def test_upload_progress_is_byte_level_and_never_backwards(
    emu: Emulator, tmp_path: Path
) -> None:
    """Concurrent parts, each reported as its bytes go: at least once per MiB in all."""
    mib = 1024 * 1024
    path = video(tmp_path, 6 * mib + 11)
    seen: list[UploadProgress] = []
    async with client(emu, max_concurrency=3) as ms:
        job = await ms.create_training_job("进度", video_multipart_count=3)
        await ms.upload(job, path)._run(seen.append)  # every report (iterating: the latest)
    sent = [p.sent_bytes for p in seen]
    assert sent[0] == 0 and sent[-1] == path.stat().st_size
    assert sent == sorted(sent) and max(b - a for a, b in itertools.pairwise(sent)) <= mib
    acked = [p.acked_bytes for p in seen]
    assert acked == sorted(acked) and acked[-1] == sent[-1]
    assert all(p.acked_bytes <= p.sent_bytes for p in seen)
    assert seen[-1].part == seen[-1].parts == 3
    assert emu.state.metastudio.jobs[job.job_id].video_path.read_bytes() == path.read_bytes()


async def test_upload_arguments_and_an_unopened_client(emu: Emulator, tmp_path: Path) -> None:
    async with client(emu) as ms:
        job = await ms.create_training_job("参数", video_multipart_count=2)
        with pytest.raises(ValidationError) as info:
            ms.upload(job.job_id, video(tmp_path))
        assert info.value.field == "urls"
        with pytest.raises(ValidationError) as info:
            ms.upload(job, video(tmp_path), urls=[])
        assert info.value.field == "urls"
        with pytest.raises(ValidationError, match="cannot be read"):
            await ms.upload(job, tmp_path / "missing.mp4")
        with pytest.raises(ValidationError, match="fewer than the 2 parts"):
            await ms.upload(job, video(tmp_path, 1))
    closed = client(emu)
    with pytest.raises(AvatarError, match="async with MetaStudio"):
        async for _ in closed.upload(job, video(tmp_path)):
            pass
