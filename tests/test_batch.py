"""Batch production: jobs, the adaptive limit, the manifest, and whole batches against
the emulator over loopback, including a kill -9 and a resume."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avatarkit import ValidationError
from avatarkit.batch import AdaptiveLimit, BatchJob, Manifest, parse_jobs, run_batch
from avatarkit.emulator import Emulator
from avatarkit.emulator.process import spawn_emulator

VIDEO = {"video_width": 256, "video_height": 256}


def job_line(i: int, **extra: object) -> str:
    fields: dict[str, object] = {
        "id": f"job-{i:03d}",
        "role": "GuoXiaoyuan" if i % 2 else "XiaoHuan",
        "text": f"第{i}号，你好。",
        "config": {"video": VIDEO},
    }
    fields.update(extra)
    return json.dumps({k: v for k, v in fields.items() if v is not None}, ensure_ascii=False)


def jobs(n: int) -> list[BatchJob]:
    return parse_jobs([job_line(i) for i in range(n)])


def partials(folder: Path) -> list[Path]:
    return list(folder.glob(".*.partial"))


def frames_of(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# -- the jobs file -----------------------------------------------------------------------


def test_a_jobs_file_is_read_with_defaults() -> None:
    [job] = parse_jobs(["# a comment", "", job_line(7)])
    assert job.output_name == "job-007.mp4" and job.srt_name == "job-007.srt"
    assert job.open_fields()["video"] == {**VIDEO, "subtitle_control": True}
    [mov] = parse_jobs([job_line(1, output="x.mov", config={"codec": "mov"})])
    assert mov.output_name == "x.mov" and mov.codec == "mov"


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (job_line(1, id="bad id"), r"jobs:1: id"),
        (job_line(1, ssml="<speak>你好</speak>"), r"jobs:1: text.*exactly one"),
        (job_line(1, text=None), r"jobs:1: text.*exactly one"),
        (job_line(1, text="  "), r"jobs:1: text.*empty"),
        (job_line(1, text=None, ssml="你好"), r"jobs:1: ssml.*<speak>"),
        (job_line(1, output="x.webm"), r"jobs:1: output.*\.mp4"),
        (job_line(1, output="../x.mp4"), r"jobs:1: output.*plain file name"),
        (job_line(1, config={"rtmp": {"addr": "rtmp://x", "live_id": "y"}}), r"config\.rtmp"),
        (job_line(1, config={"video": {"video_width": 99999}}), r"jobs:1: config\.video"),
        (job_line(1, role="guoxiaoyuan"), r"jobs:1: config\.role.*GuoXiaoyuan"),
        (job_line(1, colour="red"), r"jobs:1.*not a job"),
        ("not json", r"jobs:1.*not JSON"),
    ],
)
def test_every_bad_line_is_refused_naming_its_line_and_field(line: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        parse_jobs([line])


def test_ids_and_outputs_are_unique() -> None:
    with pytest.raises(ValidationError, match=r"jobs:2: id.*repeats line 1"):
        parse_jobs([job_line(1), job_line(1)])
    with pytest.raises(ValidationError, match=r"jobs:2: output.*repeats line 1"):
        parse_jobs([job_line(1, output="a.mp4"), job_line(2, output="A.mp4")])


# -- the adaptive limit --------------------------------------------------------------------


def test_busy_halves_once_per_epoch_and_successes_grow_back_to_the_cap() -> None:
    limit = AdaptiveLimit(8)
    epoch = limit.epoch
    assert limit.busy(epoch) and limit.permits == 4
    assert not limit.busy(epoch)  # a job started before the decrease: counted already
    assert limit.busy(limit.epoch) and limit.permits == 2
    for _ in range(200):
        limit.success()
    assert limit.permits == 8
    with pytest.raises(ValidationError, match="cap"):
        AdaptiveLimit(0)
    with pytest.raises(ValidationError, match="start"):
        AdaptiveLimit(4, start=5)


@given(st.integers(1, 64), st.lists(st.booleans(), max_size=300))
def test_the_limit_stays_between_one_and_the_cap(cap: int, outcomes: list[bool]) -> None:
    limit = AdaptiveLimit(cap)
    for ok in outcomes:
        before = limit.value
        if ok:
            limit.success()
            assert limit.value >= before
        else:
            limit.busy(limit.epoch)
            assert limit.value == max(1.0, before / 2)
        assert 1 <= limit.permits <= cap


# -- batches against the emulator ----------------------------------------------------------


@pytest.mark.anyio
async def test_a_batch_respects_the_quota_and_resumes(tmp_path: Path) -> None:
    batch = jobs(8)
    async with Emulator(tta_max_sessions=2) as emu, emu.session() as session:
        summary = await run_batch(session, batch, tmp_path, cap=4)
        assert emu.stats.tta_sessions_peak <= 2  # never over the account's quota
        assert summary.done == 8 and summary.failed == 0 and summary.busy >= 1
        assert summary.peak_concurrency <= 4
        entries = Manifest(tmp_path).load()
        for job in batch:
            entry = entries[job.id]
            video = tmp_path / job.output_name
            assert (
                entry.status == "done"
                and entry.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
            )
            assert entry.duration_s and entry.duration_s > 0 and entry.timings["total"] > 0
            assert frames_of(video) > 0
            assert (tmp_path / job.srt_name).read_text().startswith("1\n")
        again = await run_batch(session, batch, tmp_path, cap=4)
        assert (again.done, again.skipped) == (0, 8)


@pytest.mark.anyio
async def test_a_cap_at_the_quota_never_meets_a_busy_answer(tmp_path: Path) -> None:
    async with Emulator(tta_max_sessions=3) as emu, emu.session() as session:
        summary = await run_batch(session, jobs(9), tmp_path, cap=3)
        assert emu.stats.tta_rejected_opens == 0 and summary.busy == 0
        assert emu.stats.tta_sessions_peak <= 3
    assert summary.done == 9 and summary.peak_concurrency == 3


@pytest.mark.anyio
async def test_a_bad_job_is_recorded_and_the_batch_goes_on(tmp_path: Path) -> None:
    # A role the service does not know is refused at open (1001): no retry.
    batch = parse_jobs([job_line(0), job_line(1, role="Nobody-Here"), job_line(2)])
    (tmp_path / ".job-000.mp4.partial").write_bytes(b"left by a killed run")
    async with Emulator() as emu, emu.session() as session:
        summary = await run_batch(session, batch, tmp_path, cap=2, attempts=2)
    assert (summary.done, summary.failed) == (2, 1)
    assert "Nobody-Here" in summary.failures["job-001"]
    entry = Manifest(tmp_path).load()["job-001"]
    assert entry.status == "failed" and entry.attempts == 1 and "1001" in str(entry.reason)
    assert not partials(tmp_path)


@pytest.mark.anyio
async def test_files_finished_before_a_crash_are_recorded_not_made_again(tmp_path: Path) -> None:
    batch = jobs(2)
    async with Emulator() as emu, emu.session() as session:
        await run_batch(session, batch[:1], tmp_path)
        (tmp_path / "manifest.jsonl").unlink()  # killed after the renames, before the line
        summary = await run_batch(session, batch, tmp_path)
        assert (summary.done, summary.skipped, summary.recovered) == (1, 1, 1)
        assert emu.stats.tta_sessions_opened == 2  # job 0 once, job 1 once
    assert Manifest(tmp_path).load()["job-000"].recovered


def test_kill_9_then_resume_produces_each_video_once(tmp_path: Path) -> None:
    n = 12
    (tmp_path / "jobs.jsonl").write_text("\n".join(job_line(i) for i in range(n)) + "\n")
    out = tmp_path / "out"
    with spawn_emulator("--set", "tta_max_sessions=2", "--set", "production_factor=0.5") as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
        env.update(emu.env)
        cmd = [sys.executable, "-m", "avatarkit", "batch", str(tmp_path / "jobs.jsonl")]
        cmd += ["-o", str(out), "--json", "--concurrency", "2"]
        first = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        assert first.stderr is not None
        for line in first.stderr:  # its progress lines: kill it once 3 are done
            if json.loads(line).get("done", 0) >= 3:
                break
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        done_before = {e.id for e in Manifest(out).load().values() if e.status == "done"}
        assert 3 <= len(done_before) < n
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads(second.stdout)
    assert summary["done"] + summary["skipped"] == n and summary["failed"] == 0
    assert summary["skipped"] >= len(done_before)
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines() if x]
    made = [e["id"] for e in lines if e["status"] == "done" and not e.get("recovered")]
    assert sorted(made) == sorted(set(made))  # no video was made twice
    assert {e["id"] for e in lines if e["status"] == "done"} == {f"job-{i:03d}" for i in range(n)}
    assert not partials(out)  # nothing half-written is left
    for i in range(n):
        assert frames_of(out / f"job-{i:03d}.mp4") > 0


def test_the_cli_summary_and_exit_code_for_failures(tmp_path: Path) -> None:
    (tmp_path / "jobs.jsonl").write_text(job_line(0) + "\n" + job_line(1, role="Nobody-1") + "\n")
    cmd = [sys.executable, "-m", "avatarkit", "batch", str(tmp_path / "jobs.jsonl")]
    cmd += ["-o", str(tmp_path / "out"), "--emulator"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 7, done.stderr
    assert done.stdout.startswith("batch: 1 done, 1 failed, 0 skipped")
    bad = subprocess.run(
        [*cmd[:4], str(tmp_path / "missing.jsonl"), *cmd[5:], "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and json.loads(bad.stderr)["error"]["field"] == "jobs"


@pytest.mark.anyio
async def test_the_emulator_reports_its_counters_over_http(tmp_path: Path) -> None:
    import httpx

    async with Emulator(tta_max_sessions=2) as emu, emu.session() as session:
        await run_batch(session, jobs(3), tmp_path, cap=2)
        async with httpx.AsyncClient(base_url=emu.http_url) as client:
            stats = (await client.get("/emulator/stats")).json()
            assert stats["tta_sessions_opened"] == 3 and 1 <= stats["tta_sessions_peak"] <= 2
            reset = (await client.post("/emulator/stats")).json()
            assert reset["tta_sessions_peak"] == reset["tta_sessions_active"] == 0
