"""The batch on a local Ray instance against the emulator: the quota actor keeps the
appid under its cap whatever the number of workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from avatarkit.batch import Manifest, parse_jobs
from avatarkit.emulator import Emulator

ray = pytest.importorskip("ray")

from avatarkit.batch.ray_engine import run_batch_ray  # noqa: E402


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.anyio
async def test_a_batch_on_ray_stays_under_the_quota(local_ray: None, tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "id": f"ray-{i}",
                "role": "GuoXiaoyuan",
                "text": f"第{i}号，你好。",
                "config": {"video": {"video_width": 256, "video_height": 256}},
            },
            ensure_ascii=False,
        )
        for i in range(6)
    ]
    jobs = parse_jobs(lines)
    # 3 workers x 4 calls each = 12 jobs wanting a session at once, against a quota of
    # 2: the one quota actor is all that keeps them under it (no busy answer at all).
    async with Emulator(tta_max_sessions=2) as emu:
        summary = await run_batch_ray(jobs, tmp_path, cap=2, workers=3, session_env=emu.env)
        assert emu.stats.tta_rejected_opens == 0 and summary.busy == 0
        assert emu.stats.tta_sessions_peak <= 2 and emu.stats.tta_sessions_opened == 6
    assert (summary.done, summary.failed, summary.peak_concurrency) == (6, 0, 2)
    entries = Manifest(tmp_path).load()
    for job in jobs:
        assert entries[job.id].status == "done"
        with av.open(str(tmp_path / job.output_name)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0


@pytest.mark.anyio
async def test_on_ray_a_cap_above_the_quota_adapts(local_ray: None, tmp_path: Path) -> None:
    jobs = parse_jobs(
        [
            json.dumps({"id": f"r-{i}", "role": "XiaoHuan", "text": "你好。",
                        "config": {"video": {"video_width": 256, "video_height": 256}}})
            for i in range(6)
        ]
    )  # fmt: skip
    async with Emulator(tta_max_sessions=1) as emu:
        summary = await run_batch_ray(jobs, tmp_path, cap=4, workers=2, session_env=emu.env)
        assert emu.stats.tta_sessions_peak <= 1
    assert summary.done == 6 and summary.busy >= 1  # refused as busy, then adapted


def test_the_cli_runs_the_batch_on_ray(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from avatarkit.emulator.process import spawn_emulator

    (tmp_path / "jobs.jsonl").write_text(
        "\n".join(
            json.dumps({"id": f"c-{i}", "role": "GuoXiaoyuan", "text": "你好。"}) for i in range(3)
        )
    )
    with spawn_emulator("--set", "tta_max_sessions=2") as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
        env.update(emu.env)
        done = subprocess.run(
            [sys.executable, "-m", "avatarkit", "batch", str(tmp_path / "jobs.jsonl"),
             "-o", str(tmp_path / "out"), "--engine", "ray", "--concurrency", "2", "--json"],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert (summary["done"], summary["failed"], summary["busy"]) == (3, 0, 0)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mp4")) == [
        "c-0.mp4",
        "c-1.mp4",
        "c-2.mp4",
    ]
