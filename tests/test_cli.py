"""The avatarkit command, run as a user runs it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import av

ENV = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avatarkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        cwd=cwd,
    )


def test_demo_produces_a_playable_video(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    result = run("demo", "-o", str(out), "--json", "--width", "240")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["path"] == str(out)
    assert report["seconds"] > 1 and report["subtitles"]
    with av.open(io.BytesIO(out.read_bytes())) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert container.streams.video[0].codec_context.width == 240


def test_demo_human_output(tmp_path: Path) -> None:
    result = run("demo", "--width", "240", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "emulator running at http://127.0.0.1:" in result.stdout
    assert f"video: {tmp_path / 'out.mp4'}" in result.stdout


def test_say_against_the_emulator(tmp_path: Path) -> None:
    out = tmp_path / "say.mov"
    result = run(
        "say", "你好。", "-o", str(out), "--emulator", "--codec", "mov", "--width", "240", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bytes"] == out.stat().st_size
    with av.open(str(out)) as container:
        assert container.format.name.startswith("mov")


def test_say_against_a_tta_url_from_the_command_line(tmp_path: Path) -> None:
    from tests.conftest import emulator_process

    with emulator_process("--pace", "fast") as proc:
        env = {**ENV, "AVATARKIT_APPID": proc.appid, "AVATARKIT_TOKEN": proc.token}
        out = tmp_path / "remote.mp4"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "avatarkit",
                "say",
                "你好。",
                "-o",
                str(out),
                "--width",
                "240",
                "--tta-url",
                proc.endpoints.tta,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
    assert proc.token not in result.stdout + result.stderr


def test_say_without_credentials_names_the_variable() -> None:
    result = run("say", "你好", "-o", "x.mp4")
    assert result.returncode == 2
    assert "AVATARKIT_APPID" in result.stderr


def test_say_with_a_bad_config_names_the_field(tmp_path: Path) -> None:
    result = run("say", "你好", "-o", str(tmp_path / "x.mp4"), "--emulator", "--width", "100")
    assert result.returncode == 2
    assert "video.video_width=100" in result.stderr
    assert not (tmp_path / "x.mp4").exists()
