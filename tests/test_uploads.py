"""Uploads end to end against the emulator over loopback, with sizes scaled down.

The service's 10 MiB parts and 5 MiB merge rule become 10 KiB and 5 KiB here
(the emulator's ``digime_min_part_bytes``), so every planner boundary is cheap.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import itertools
import json
import logging
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import anyio
import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avatarkit import (
    AvatarError,
    AvatarSession,
    RetryPolicy,
    Upload,
    UploadProgress,
    UploadResult,
    ValidationError,
)
from avatarkit.digime.plan import plan_parts
from avatarkit.emulator import Emulator
from avatarkit.errors import TimeoutError, TrainingFailed
from tests.audio_helpers import sine_wav

pytestmark = pytest.mark.anyio

KIB = 1024
PART, MIN_PART = 10 * KIB, 5 * KIB
FAST = RetryPolicy(attempts=10, base_delay=0.001, max_delay=0.005, total_timeout=30)


def session(emu: Emulator, tmp_path: Path, **kwargs: object) -> AvatarSession:
    kwargs.setdefault("upload_retry", FAST)
    kwargs.setdefault("retry", FAST)
    return emu.session(journal_dir=tmp_path / "journal", **kwargs)  # type: ignore[arg-type]


async def upload_until(
    upload: Upload[UploadResult], stop: Callable[[UploadProgress], bool]
) -> None:
    """Iterate the upload's progress; leave the loop (cancelling it) once ``stop`` holds."""
    async for progress in upload:
        if stop(progress):
            break


def video_upload(av_session: AvatarSession, path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    kwargs.setdefault("part_size", PART)
    kwargs.setdefault("min_part", MIN_PART)
    kwargs.setdefault("check_resolution", False)
    return av_session.digime.upload(
        path, conf_name="Liu-Xuan", role_show_name="刘璇", input_resource="acme", **kwargs
    )  # type: ignore[arg-type]


@pytest.fixture
async def emu() -> Emulator:
    async with Emulator(digime_min_part_bytes=MIN_PART, digime_training_seconds=0.05) as e:
        yield e  # type: ignore[misc]


def stored(emu: Emulator, upload_id: str) -> bytes:
    return emu.state.digime.uploads[upload_id].path.read_bytes()


async def upload_random(emu: Emulator, tmp_path: Path, size: int) -> UploadResult:
    """Upload ``size`` random bytes as a video and check the service stored them whole."""
    data = os.urandom(size)
    path = tmp_path / "talk.mp4"
    path.write_bytes(data)  # just written: in the page cache
    async with session(emu, tmp_path) as av_session:
        result: UploadResult = await video_upload(av_session, path)
    assert stored(emu, result.upload_id) == data
    return result


@pytest.mark.parametrize(
    "size",
    [
        1,
        5 * KIB - 1,
        5 * KIB,
        5 * KIB + 1,
        10 * KIB - 1,
        10 * KIB,
        10 * KIB + 1,
        15 * KIB - 1,
        15 * KIB,
        15 * KIB + 1,
        47 * KIB + 3,
    ],
)
async def test_reassembly_is_byte_identical_at_every_boundary(
    emu: Emulator, tmp_path: Path, size: int
) -> None:
    result = await upload_random(emu, tmp_path, size)
    record = emu.state.digime.uploads[result.upload_id]
    assert record.completed
    assert record.part_sizes == [p.length for p in plan_parts(size, PART, MIN_PART)]
    assert (result.parts, result.parts_sent, result.resumed) == (len(record.part_sizes),) * 2 + (
        False,
    )
    assert not list((tmp_path / "journal").glob("*.json"))  # removed on completion


@given(st.binary(max_size=5000))
def test_the_simd_and_the_plain_base64_write_the_same_bytes_as_the_stdlib(data: bytes) -> None:
    from avatarkit.digime import upload

    assert upload.b64encode is not upload.b64encode_plain  # the [speed] extra is in [dev]
    view = memoryview(data)
    assert upload.b64encode(view) == upload.b64encode_plain(view) == base64.b64encode(data)


def test_the_plain_encoders_reused_buffer_never_leaks_an_earlier_piece() -> None:
    from avatarkit.digime import upload

    # Large, then small (the buffer is truncated), then large again, then empty.
    for size in (upload.PIECE_BYTES, 3, 1, upload.PIECE_BYTES - 1, 0, 7 * 1024 * 1024):
        data = os.urandom(size)
        assert upload.b64encode_plain(memoryview(data)) == base64.b64encode(data)


async def test_an_upload_without_the_speed_extra_is_byte_identical(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from avatarkit.digime import upload

    monkeypatch.setattr(upload, "b64encode", upload.b64encode_plain)
    await upload_random(emu, tmp_path, 47 * KIB + 3)


class ColdCache:
    """Every non-blocking read fails as if the disk held the file (the page cache's state
    cannot be set from a test); blocking reads go through and are counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from avatarkit.digime import upload

        self.nowait_reads = 0
        self.blocking_reads = 0
        real = os.preadv
        flag = 0x10000  # a stand-in, in case this platform has no RWF_NOWAIT

        def preadv(fd: int, buffers: list[memoryview], offset: int, flags: int = 0) -> int:
            if flags == flag:
                self.nowait_reads += 1
                raise BlockingIOError(11, "Resource temporarily unavailable")
            self.blocking_reads += 1
            return real(fd, buffers, offset)

        monkeypatch.setattr(upload, "_NOWAIT", flag)
        monkeypatch.setattr(os, "preadv", preadv)


@pytest.mark.parametrize("size", [1, 10 * KIB, 47 * KIB + 3])
async def test_a_file_the_page_cache_does_not_hold_is_read_on_worker_threads(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    cold = ColdCache(monkeypatch)
    result = await upload_random(emu, tmp_path, size)
    # One try on the event loop; then every chunk (one per part here) on a thread.
    assert (cold.nowait_reads, cold.blocking_reads) == (1, result.parts)


async def test_a_cached_file_is_read_without_blocking_the_loop(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from avatarkit.digime import upload

    if upload._NOWAIT is None:
        pytest.skip("no RWF_NOWAIT on this platform: every read is on a worker thread")
    flags: list[int] = []
    real = os.preadv

    def preadv(fd: int, buffers: list[memoryview], offset: int, flag: int = 0) -> int:
        flags.append(flag)
        return real(fd, buffers, offset, flag)

    monkeypatch.setattr(os, "preadv", preadv)
    result = await upload_random(emu, tmp_path, 47 * KIB + 3)
    assert flags == [upload._NOWAIT] * result.parts


async def test_both_init_envelopes(tmp_path: Path) -> None:
    data = os.urandom(12 * KIB)
    (tmp_path / "a.mov").write_bytes(data)
    async with Emulator(digime_min_part_bytes=MIN_PART, digime_init_data_shape="bare") as emu:
        async with session(emu, tmp_path) as av_session:
            result = await video_upload(av_session, tmp_path / "a.mov", type="template")
        assert stored(emu, result.upload_id) == data
        assert emu.state.digime.uploads[result.upload_id].type == 2


async def test_injected_failures_are_recovered(tmp_path: Path) -> None:
    data = os.urandom(400 * KIB + 17)
    path = tmp_path / "talk.mp4"
    path.write_bytes(data)
    async with Emulator(
        digime_min_part_bytes=MIN_PART, failure_rate=0.2, failure_mode="mixed", fault_seed=7
    ) as emu:
        async with session(emu, tmp_path) as av_session:
            upload = video_upload(av_session, path)
            seen = [p.acked_bytes async for p in upload]
            result = upload.result
        assert emu.stats.digime_injected_failures > 0
        assert stored(emu, result.upload_id) == data
    assert seen == sorted(seen) and seen[-1] == len(data)  # never backwards on a retry


async def test_input_errors_are_not_retried(emu: Emulator, tmp_path: Path) -> None:
    from avatarkit import ServiceError

    (tmp_path / "a.mp4").write_bytes(b"x" * 100)
    async with AvatarSession(
        "wrong-appid", emu.token, endpoints=emu.endpoints, upload_retry=FAST, journal_dir=tmp_path
    ) as av_session:
        with pytest.raises(ServiceError) as info:
            await video_upload(av_session, tmp_path / "a.mp4")
    assert info.value.status == 400 and not info.value.retryable
    assert "appid" in str(info.value)
    assert emu.stats.digime_parts_received == 0


async def test_killed_upload_resumes_and_resends_at_most_one_part(
    emu: Emulator, tmp_path: Path
) -> None:
    data = os.urandom(30 * PART)
    path = tmp_path / "talk.mp4"
    path.write_bytes(data)
    parts = len(plan_parts(len(data), PART, MIN_PART))
    async with session(emu, tmp_path) as av_session:
        upload = video_upload(av_session, path)
        await upload_until(upload, lambda p: p.part >= 12)  # leaving the loop cancels it
    with pytest.raises(AvatarError, match="progress loop was left early"):
        _ = upload.result
    first_run = emu.stats.digime_parts_received
    journals = list((tmp_path / "journal").glob("*.json"))
    assert len(journals) == 1  # the journal survived the kill
    done = json.loads(journals[0].read_bytes())["parts_done"]
    seen = upload.progress.part if upload.progress else 0
    # the journal is written before progress is reported; at most the part in flight is lost
    assert 12 <= seen <= done <= first_run <= done + 1
    async with session(emu, tmp_path) as av_session:  # a new session, as after a restart
        result = await video_upload(av_session, path)
    assert result.resumed and result.parts == parts
    assert result.parts_sent == parts - done
    assert emu.stats.digime_parts_received - first_run == parts - done
    assert emu.stats.digime_parts_received <= parts + 1  # at most one part sent twice
    assert stored(emu, result.upload_id) == data


async def test_changed_file_starts_a_new_upload(emu: Emulator, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="avatarkit")
    path = tmp_path / "talk.mp4"
    path.write_bytes(os.urandom(10 * PART))
    async with session(emu, tmp_path) as av_session:
        await upload_until(video_upload(av_session, path), lambda p: p.part >= 3)
    new_data = os.urandom(10 * PART)
    path.write_bytes(new_data)
    async with session(emu, tmp_path) as av_session:
        result = await video_upload(av_session, path)
    assert not result.resumed and result.parts_sent == result.parts
    assert stored(emu, result.upload_id) == new_data
    assert "changed since its interrupted upload" in caplog.text


async def test_a_journal_the_service_rejects_starts_over(
    emu: Emulator, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="avatarkit")
    data = os.urandom(10 * PART)
    path = tmp_path / "talk.mp4"
    path.write_bytes(data)
    async with session(emu, tmp_path) as av_session:
        await upload_until(video_upload(av_session, path), lambda p: p.part >= 3)
    emu.state.digime.uploads.clear()  # the service forgot the upload (expired, restarted…)
    async with session(emu, tmp_path) as av_session:
        result = await video_upload(av_session, path)
    assert not result.resumed
    assert stored(emu, result.upload_id) == data
    assert "refused to resume" in caplog.text


async def test_concurrent_uploads_on_one_session(emu: Emulator, tmp_path: Path) -> None:
    files = {}
    for i in range(6):
        files[i] = os.urandom(20 * KIB + i * 1000)
        (tmp_path / f"v{i}.mp4").write_bytes(files[i])
    results = {}
    async with session(emu, tmp_path, max_uploads=2) as av_session:

        async def one(i: int) -> None:
            results[i] = await av_session.digime.upload(
                tmp_path / f"v{i}.mp4",
                conf_name=f"avatar-{i}",
                role_show_name=f"角色{i}",
                input_resource="acme",
                part_size=PART,
                min_part=MIN_PART,
                check_resolution=False,
            )

        async with anyio.create_task_group() as tg:
            for i in files:
                tg.start_soon(one, i)
    for i, data in files.items():
        assert stored(emu, results[i].upload_id) == data


async def test_progress_iterator(emu: Emulator, tmp_path: Path) -> None:
    data = os.urandom(50 * KIB)
    (tmp_path / "v.mp4").write_bytes(data)
    async with session(emu, tmp_path) as av_session:
        upload = video_upload(av_session, tmp_path / "v.mp4")
        seen = [p async for p in upload]
    assert seen[-1].acked_bytes == len(data) and seen[-1].fraction == 1.0
    assert seen[-1].part == seen[-1].parts == len(plan_parts(len(data), PART, MIN_PART))
    assert all(a != b for a, b in itertools.pairwise(seen))  # each one news
    assert all(p.acked_bytes <= p.sent_bytes <= p.total_bytes for p in seen)
    for a, b in itertools.pairwise(seen):  # neither count goes backwards
        assert a.sent_bytes <= b.sent_bytes and a.acked_bytes <= b.acked_bytes
    assert stored(emu, upload.result.upload_id) == data
    assert await upload is upload.result  # awaiting it after the loop: that run's outcome


async def test_progress_comes_at_least_once_per_mib(emu: Emulator, tmp_path: Path) -> None:
    """Within a 10 MiB part too: byte-level progress, not one step per part."""
    mib = 1024 * 1024
    data = os.urandom(23 * mib + 5)
    (tmp_path / "v.mp4").write_bytes(data)
    seen: list[UploadProgress] = []
    async with session(emu, tmp_path) as av_session:
        upload = video_upload(av_session, tmp_path / "v.mp4", part_size=10 * mib)
        # the run itself, with every report kept (iterating gives only the latest)
        result = await upload._run(seen.append)
    assert result.parts == 3 and stored(emu, result.upload_id) == data
    sent = [0, *(p.sent_bytes for p in seen)]
    assert max(b - a for a, b in itertools.pairwise(sent)) <= mib
    assert sent == sorted(sent) and sent[-1] == len(data)
    assert [p.part for p in seen if p.acked_bytes == p.sent_bytes][-1] == 3


@pytest.mark.parametrize("leave", ["break", "raise"])
async def test_leaving_the_progress_loop_early_cancels_the_upload(
    emu: Emulator, tmp_path: Path, leave: str
) -> None:
    data = os.urandom(30 * PART)
    (tmp_path / "v.mp4").write_bytes(data)
    parts = len(plan_parts(len(data), PART, MIN_PART))
    async with session(emu, tmp_path) as av_session:
        upload = video_upload(av_session, tmp_path / "v.mp4", resume=False)
        with contextlib.suppress(KeyError):
            async for progress in upload:
                if progress.part >= 2:
                    if leave == "break":
                        break
                    raise KeyError("the loop's own error")
        # Cancelled as the loop was left, before this task awaited anything.
        with pytest.raises(AvatarError, match="cancelled: its progress loop was left early"):
            _ = upload.result
        with anyio.fail_after(30):  # a guard against hanging, not a timing assertion
            with pytest.raises(AvatarError, match="left early"):
                await upload  # returns once the upload has stopped
        (record,) = emu.state.digime.uploads.values()
        assert not record.completed and 2 <= len(record.part_sizes) < parts
        # The task that iterated was not cancelled, and the session still works.
        again = await video_upload(av_session, tmp_path / "v.mp4", resume=False)
        assert stored(emu, again.upload_id) == data
    assert not record.completed and len(record.part_sizes) < parts  # it never went on


async def test_an_upload_runs_once(emu: Emulator, tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(os.urandom(3 * KIB))
    outside = session(emu, tmp_path)
    with pytest.raises(AvatarError, match="the session is new, not open"):
        aiter(video_upload(outside, tmp_path / "v.mp4"))
    async with session(emu, tmp_path) as av_session:
        upload = video_upload(av_session, tmp_path / "v.mp4")
        with pytest.raises(AvatarError, match="the upload has not finished"):
            _ = upload.result
        first = await upload
        assert await upload is first  # awaited again: the same outcome, not a second run
        with pytest.raises(AvatarError, match="an upload runs once: await it"):
            aiter(upload)
        failing = video_upload(av_session, tmp_path / "missing.mp4")
        with pytest.raises(ValidationError, match="does not exist"):
            async for _ in failing:
                pass
        with pytest.raises(AvatarError, match=r"the upload failed: .*does not exist"):
            _ = failing.result
        with pytest.raises(ValidationError, match="does not exist"):
            await failing  # the run's own error, again
    assert len(emu.state.digime.uploads) == 1


def _clip(path: Path, width: int, height: int) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


async def test_training_video_resolution_is_checked(emu: Emulator, tmp_path: Path) -> None:
    _clip(tmp_path / "hd.mp4", 1920, 1080)
    _clip(tmp_path / "small.mp4", 1280, 720)
    async with session(emu, tmp_path) as av_session:
        result = await video_upload(av_session, tmp_path / "hd.mp4", check_resolution=True)
        assert stored(emu, result.upload_id) == (tmp_path / "hd.mp4").read_bytes()
        with pytest.raises(ValidationError) as info:
            await video_upload(av_session, tmp_path / "small.mp4", check_resolution=True)
        assert "1280x720" in str(info.value) and "1080p or 4K" in str(info.value)
        (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
        with pytest.raises(ValidationError, match="not a readable video"):
            await video_upload(av_session, tmp_path / "junk.mp4", check_resolution=True)
        # template videos and an explicit opt-out skip the check
        await video_upload(
            av_session, tmp_path / "small.mp4", type="template", check_resolution=True
        )
        await video_upload(av_session, tmp_path / "small.mp4", check_resolution=False)
    assert emu.stats.digime_parts_received == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"conf_name": "Liu Xuan"}, "conf_name"),
        ({"conf_name": "刘璇"}, "conf_name"),
        ({"role_show_name": ""}, "role_show_name"),
        ({"input_resource": 5}, "input_resource"),  # any string is accepted: "" too
        ({"type": "audio"}, "type"),
        ({"type": 7}, "type"),
        ({"path": "talk.avi"}, "path suffix"),
        ({"path": "talk.zip"}, "path suffix"),
    ],
)
async def test_preflight_errors(
    emu: Emulator, tmp_path: Path, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {
        "conf_name": "Liu-Xuan",
        "role_show_name": "刘璇",
        "input_resource": "acme",
        "check_resolution": False,
    }
    path = tmp_path / str(kwargs.pop("path", "talk.mp4"))
    path.write_bytes(b"x" * 10)
    args.update(kwargs)
    async with session(emu, tmp_path) as av_session:
        with pytest.raises(ValidationError) as info:
            av_session.digime.upload(path, **args)  # type: ignore[arg-type]
    assert info.value.field == field
    assert emu.stats.digime_parts_received == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("missing.mp4", None, "does not exist"), ("empty.mp4", b"", "empty")],
)
async def test_preflight_file_errors(
    emu: Emulator, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    async with session(emu, tmp_path) as av_session:
        with pytest.raises(ValidationError, match=message):
            await video_upload(av_session, tmp_path / name)
    assert emu.stats.digime_parts_received == 0


async def test_voice_clone_archive_and_folder(emu: Emulator, tmp_path: Path) -> None:
    archive = tmp_path / "voice.zip"
    # Real WAVs: the emulator reviews a voice archive's files at complete (doc 000).
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.wav", sine_wav(seconds=1.0))
    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.wav").write_bytes(sine_wav(seconds=0.3, hz=200.0 + 10 * i))
    async with session(emu, tmp_path) as av_session:
        zipped = await av_session.voice_clone.upload(
            archive,
            tts_type="tts_model_v2",
            input_resource="acme",
            part_size=PART,
            min_part=MIN_PART,
        )
        tarred = await av_session.voice_clone.upload(
            folder,
            tts_type="tts_model_v1",
            input_resource="acme",
            conf_name="Liu-Xuan",
            part_size=PART,
            min_part=MIN_PART,
        )
        with pytest.raises(ValidationError) as info:
            av_session.voice_clone.upload(archive, tts_type="tts_model_v9", input_resource="a")
        assert info.value.field == "tts_type"
    assert stored(emu, zipped.upload_id) == archive.read_bytes()
    record = emu.state.digime.uploads[tarred.upload_id]
    assert (record.type, record.file_suffix, record.tts_type) == (11, "tar", "tts_model_v1")
    with tarfile.open(fileobj=io.BytesIO(record.path.read_bytes())) as tar:
        assert sorted(tar.getnames()) == ["0.wav", "1.wav", "2.wav"]
        member = tar.extractfile("2.wav")
        assert member is not None and member.read() == (folder / "2.wav").read_bytes()


@functools.cache
def _valid_clip() -> bytes:
    from tests.conftest import _training_clip

    return _training_clip()  # a 1080p mp4: the emulator's training review probes it


async def _trained(emu: Emulator, tmp_path: Path, conf_name: str) -> AvatarSession:
    (tmp_path / f"{conf_name}.mp4").write_bytes(_valid_clip())
    av_session = session(emu, tmp_path)
    await av_session.__aenter__()
    await av_session.digime.upload(
        tmp_path / f"{conf_name}.mp4",
        conf_name=conf_name,
        role_show_name="x",
        input_resource="acme",
        part_size=PART,
        min_part=MIN_PART,
        check_resolution=False,
    )
    return av_session


async def test_train_and_wait_success(emu: Emulator, tmp_path: Path) -> None:
    av_session = await _trained(emu, tmp_path, "Good-1")
    try:
        await av_session.digime.start_training("Good-1", callback_url="http://127.0.0.1:9/cb")
        info = await av_session.digime.wait("Good-1", timeout=20, poll_interval=0.01)
        assert info.state == 2 and info.role_pic.startswith("http")
    finally:
        await av_session.__aexit__(None, None, None)


async def test_train_and_wait_failure(tmp_path: Path) -> None:
    async with Emulator(
        digime_min_part_bytes=MIN_PART,
        digime_training_seconds=0.05,
        digime_fail_conf_names=("Bad-1",),
    ) as emu:
        av_session = await _trained(emu, tmp_path, "Bad-1")
        try:
            await av_session.digime.start_training("Bad-1", callback_url="http://127.0.0.1:9/cb")
            with pytest.raises(TrainingFailed) as info:
                await av_session.digime.wait("Bad-1", timeout=20, poll_interval=0.01)
            assert info.value.info.state == 3
        finally:
            await av_session.__aexit__(None, None, None)


async def test_wait_times_out(tmp_path: Path) -> None:
    async with Emulator(digime_min_part_bytes=MIN_PART, digime_training_seconds=3600) as emu:
        av_session = await _trained(emu, tmp_path, "Slow-1")
        try:
            await av_session.digime.start_training("Slow-1", callback_url="http://127.0.0.1:9/cb")
            with pytest.raises(
                TimeoutError,
                match=r"training of .Slow-1. not finished after 0\.2 s \(last state: IN_PROGRESS\)",
            ):
                await av_session.digime.wait("Slow-1", timeout=0.2, poll_interval=0.01)
            assert (await av_session.digime.status("Slow-1")).state == 1
        finally:
            await av_session.__aexit__(None, None, None)


async def test_train_and_status_errors(emu: Emulator, tmp_path: Path) -> None:
    from avatarkit import ServiceError

    async with session(emu, tmp_path) as av_session:
        with pytest.raises(ValidationError) as info:
            await av_session.digime.start_training("Liu-Xuan", callback_url="ftp://x")
        assert info.value.field == "callback_url"
        with pytest.raises(ValidationError):
            await av_session.digime.status("bad name")
        with pytest.raises(ServiceError) as service:
            await av_session.digime.status("Never-Uploaded")
        assert service.value.status == 404


async def test_no_token_in_logs(emu: Emulator, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "v.mp4").write_bytes(os.urandom(30 * KIB))
    async with session(emu, tmp_path) as av_session:
        result = await video_upload(av_session, tmp_path / "v.mp4")
        texts = [repr(av_session), repr(result)]
    async with AvatarSession(
        emu.appid,
        "bad-token-998877",
        endpoints=emu.endpoints,
        upload_retry=FAST,
        journal_dir=tmp_path,
    ) as av_session:
        from avatarkit import ServiceError

        with pytest.raises(ServiceError) as info:
            await video_upload(av_session, tmp_path / "v.mp4")
        texts += [str(info.value), repr(info.value)]
    everything = caplog.text + "".join(texts)
    assert "HTTP Request" in caplog.text or caplog.records  # something was logged
    for secret in (emu.token, "bad-token-998877"):
        assert secret not in everything


async def test_wait_wakes_on_the_training_callback(tmp_path: Path) -> None:
    """With a 1-hour poll interval, only the callback can end the wait in time."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from avatarkit.digime.callbacks import CallbackReceiver
    from avatarkit.emulator.server import serve_asgi

    receiver = CallbackReceiver(secret="s3cret-for-callbacks")
    app = Starlette(routes=[Mount("/avatarkit/callback", app=receiver)])
    async with (
        serve_asgi(app) as base,
        Emulator(digime_min_part_bytes=MIN_PART, digime_training_seconds=0.05) as emu,
    ):
        av_session = await _trained(emu, tmp_path, "Fast-1")
        try:
            # a Mount answers 307 without the trailing slash, and senders don't follow it
            url = receiver.callback_url(f"{base}/avatarkit/callback/")
            await av_session.digime.start_training("Fast-1", callback_url=url)
            with anyio.fail_after(30):  # a guard against hanging, not a timing assertion
                info = await av_session.digime.wait("Fast-1", poll_interval=3600, receiver=receiver)
        finally:
            await av_session.__aexit__(None, None, None)
    assert info.state == 2
    callback = receiver.latest("Fast-1")
    assert callback is not None and callback.state == 2


@pytest.mark.parametrize("cache", ["warm", "cold"])
async def test_upload_memory_is_bounded_by_the_read_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    """A 48 MiB upload in 16 MiB parts never holds a part (or its base64) in memory,
    encoded on the loop (warm page cache) or with the read-ahead (cold)."""
    import tracemalloc

    from avatarkit.digime.upload import CHUNK_BYTES
    from tests.conftest import emulator_process

    part = 16 * 1024 * KIB
    path = tmp_path / "big.mp4"
    with path.open("wb") as f:
        for _ in range(48):
            f.write(os.urandom(1024 * KIB))
    cold = ColdCache(monkeypatch) if cache == "cold" else None
    with emulator_process("--set", f"digime_min_part_bytes={KIB * 1024}") as proc:
        tracemalloc.start()
        try:
            async with AvatarSession(
                proc.appid, proc.token, endpoints=proc.endpoints, journal_dir=tmp_path / "j"
            ) as av_session:
                result = await video_upload(av_session, path, part_size=part, min_part=1024 * KIB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.parts == 3
    if cold is not None:
        chunks = 3 * -(-part // CHUNK_BYTES)  # chunks never span parts
        assert (cold.nowait_reads, cold.blocking_reads) == (1, chunks)
    # the read-ahead chunk, the chunk on the wire and one being encoded, plus slack
    assert peak < 3 * CHUNK_BYTES * 4 // 3 + 4 * 1024 * KIB, peak
    assert peak < part  # far below one part, let alone its base64 body


async def test_an_empty_input_resource_is_accepted_as_the_documents_examples_send_it(
    emu: Emulator, tmp_path: Path
) -> None:
    """Doc 000 制作分身: both init examples send ``"input_resource": ""`` (SPEC §6)."""
    data = os.urandom(3 * KIB)
    path = tmp_path / "talk.mp4"
    path.write_bytes(data)
    async with session(emu, tmp_path) as av_session:
        result = await av_session.digime.upload(
            path,
            conf_name="Liu-Xuan",
            role_show_name="刘璇",
            input_resource="",
            check_resolution=False,
        )
    assert stored(emu, result.upload_id) == data
