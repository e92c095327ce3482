"""The avatarkit command, run as a user runs it."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

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


def test_demo_runs_the_whole_product(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run("demo", "-o", str(out), "--json", "--width", "240")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == [
        "upload + training",
        "video",
        "audio drive",
        "voice conversion",
        "metastudio job",
    ]
    assert steps["upload + training"]["state"] == "success"
    assert steps["metastudio job"]["state"] == "JOB_SUCCESS"
    assert steps["video"]["subtitle_lines"] >= 3
    with av.open(io.BytesIO((out / "out.mp4").read_bytes())) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert container.streams.video[0].codec_context.width == 240
    assert (out / "out.srt").read_text().startswith("1\n00:00:00,000 --> ")
    with av.open(str(out / "out-drive.mp4")) as container:
        assert len(container.streams.audio) == 1
    with av.open(str(out / "out-voice.wav")) as container:
        assert container.streams.audio[0].codec_context.sample_rate == 24000
    assert not result.stderr.strip()  # no warnings, no tracebacks


def test_demo_human_output(tmp_path: Path) -> None:
    result = run("demo", "--width", "240", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The steps as they run are status (stderr); the summary is the result (stdout).
    assert "emulator running at http://127.0.0.1:" in result.stderr
    assert "metastudio job" in result.stderr
    assert "summary" in result.stdout and "metastudio job" in result.stdout
    assert f"files in {tmp_path / 'avatarkit-demo'}" in result.stdout
    assert (tmp_path / "avatarkit-demo" / "out.mp4").exists()


def test_say_writes_subtitles(tmp_path: Path) -> None:
    result = run(
        "say",
        "你好。再见！",
        "-o",
        str(tmp_path / "s.mp4"),
        "--emulator",
        "--width",
        "240",
        "--srt",
        str(tmp_path / "s.srt"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    srt = (tmp_path / "s.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ") and "2\n" in srt and "再见！" in srt


def test_live_status_on_a_terminal(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from avatarkit.cli import _LiveStatus

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    status = _LiveStatus(enabled=True)
    status(0.1, 0.5)  # under 0.2 s: not yet
    status(1.0, 0.5)
    status(1.1, 0.6)  # less than 0.2 s more: not redrawn
    status(2.0, 1.0)
    status.close()
    lines = screen.getvalue().split("\r")[1:]
    assert [line.split(",")[0] for line in lines] == [
        "producing:   1.00 s of video",
        "producing:   2.00 s of video",
    ]
    assert "2.0x real time" in lines[-1] and screen.getvalue().endswith("\n")


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


def test_upload_train_and_status_commands(
    tmp_path: Path, training_clip: bytes, small_clip: bytes
) -> None:
    from avatarkit.digime.plan import plan_parts
    from tests.audio_helpers import sine_wav
    from tests.conftest import emulator_process

    video = tmp_path / "talk.mp4"
    video.write_bytes(training_clip)  # trained below: the review wants a 1080p mp4
    expected_parts = len(plan_parts(len(training_clip), int(0.01 * 2**20), int(0.005 * 2**20)))
    assert expected_parts > 1
    folder = tmp_path / "voice"
    folder.mkdir()
    (folder / "a.wav").write_bytes(sine_wav(seconds=0.6))
    with emulator_process(
        "--set", "digime_min_part_bytes=5120", "--set", "digime_training_seconds=0.05"
    ) as proc:
        env = {
            **ENV,
            "AVATARKIT_APPID": proc.appid,
            "AVATARKIT_TOKEN": proc.token,
            "AVATARKIT_DIGIME_URL": proc.endpoints.digime,
            "AVATARKIT_STATE_DIR": str(tmp_path / "state"),
        }

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "avatarkit", *args],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )

        up = cli(
            "upload",
            str(video),
            "--conf-name",
            "Liu-Xuan",
            "--role-show-name",
            "刘璇",
            "--input-resource",
            "acme",
            "--no-resolution-check",
            "--part-size-mib",
            "0.01",
            "--min-part-mib",
            "0.005",
            "--json",
        )
        assert up.returncode == 0, up.stderr
        uploaded = json.loads(up.stdout)
        assert uploaded["size"] == len(training_clip) and uploaded["parts"] == expected_parts
        voice = cli(
            "voice-clone",
            "upload",
            str(folder),
            "--tts-type",
            "tts_model_v2",
            "--input-resource",
            "acme",
            "--json",
        )
        assert voice.returncode == 0, voice.stderr
        assert json.loads(voice.stdout)["file_suffix"] == "tar"
        train = cli(
            "train",
            "Liu-Xuan",
            "--callback-url",
            "http://127.0.0.1:9/cb",
            "--wait",
            "--timeout",
            "60",
            "--json",
        )
        assert train.returncode == 0, train.stderr
        assert json.loads(train.stdout)["state_name"] == "success"
        status = cli("status", "Liu-Xuan")
        assert status.returncode == 0 and status.stdout.strip() == "Liu-Xuan: success"
        bad = cli(
            "upload",
            str(video),
            "--conf-name",
            "bad name",
            "--role-show-name",
            "x",
            "--input-resource",
            "acme",
        )
        assert bad.returncode == 2 and "conf_name='bad name'" in bad.stderr
        missing = cli("status", "Nobody")
        assert missing.returncode == 1 and "40401" in missing.stderr
        as_json = cli("status", "Nobody", "--json")
        error = json.loads(as_json.stderr)["error"]
        assert as_json.returncode == 1 and as_json.stdout == ""
        assert (error["type"], error["code"], error["exit_code"]) == ("ServiceError", 40401, 1)
        small = tmp_path / "small.mp4"
        small.write_bytes(small_clip)
        low = cli(  # 720p, below the review's 1080p: the hint names the flag
            *("upload", str(small), "--conf-name", "Low-Res", "--role-show-name", "x"),
            *("--input-resource", "acme"),
        )
        assert low.returncode == 2 and "--no-resolution-check" in low.stderr, low.stderr
        assert "check_resolution" not in low.stderr
        env["AVATARKIT_TOKEN"] = "not-the-token"
        refused = cli("status", "Liu-Xuan")
        assert refused.returncode == 3 and "AVATARKIT_TOKEN" in refused.stderr, refused.stderr
        for result in (up, voice, train, status, bad, missing, as_json, low, refused):
            assert proc.token not in result.stdout + result.stderr


def test_progress_bar_on_a_terminal(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from avatarkit.cli import _ProgressBar
    from avatarkit.digime.upload import UploadProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = _ProgressBar("talk.mp4", enabled=True)
    mib = 1024 * 1024
    bar(UploadProgress(sent_bytes=0, acked_bytes=0, total_bytes=40 * mib, part=0, parts=4))
    bar(
        UploadProgress(
            sent_bytes=20 * mib, acked_bytes=20 * mib, total_bytes=40 * mib, part=2, parts=4
        )
    )
    bar.close()
    last = screen.getvalue().split("\r")[-1]
    assert "talk.mp4 [###############" in last
    assert "50.0%" in last and "20.0/40.0 MiB" in last and "MiB/s ETA" in last
    assert "part 2/4" in last
    quiet = _ProgressBar("x", enabled=False)  # --json: no bar
    quiet(UploadProgress(sent_bytes=1, acked_bytes=1, total_bytes=2, part=1, parts=2))
    assert screen.getvalue().count("\r") == 2


def test_metastudio_commands(tmp_path: Path, long_training_clip: bytes) -> None:
    from avatarkit.emulator.process import spawn_emulator

    video = tmp_path / "talk.mp4"
    video.write_bytes(long_training_clip)  # the job's review probes it (doc 003)
    with spawn_emulator("--set", "metastudio_step_seconds=0.01") as proc:
        env = {**ENV, **{k: v for k, v in proc.env.items() if not k.startswith("AVATARKIT_")}}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "avatarkit", "metastudio", *args],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )

        train = cli(
            "train",
            "--name",
            "命令行",
            "--video",
            str(video),
            "--no-video-check",
            "--part-mib",
            "0.1",
            "--contact",
            "13800000000",
            "--json",
        )
        assert train.returncode == 0, train.stderr
        job = json.loads(train.stdout)
        assert job["state"] == "JOB_SUCCESS"
        jobs = cli("jobs", "--state", "JOB_SUCCESS")
        assert jobs.returncode == 0 and job["job_id"] in jobs.stdout and "命令行" in jobs.stdout
        show = cli("show", job["job_id"], "--json")
        assert json.loads(show.stdout)["name"] == "命令行"
        missing = cli("show", "0" * 32)
        assert missing.returncode == 1 and "MSS.00000005" in missing.stderr
        bad = cli(
            "train", "--name", "x", "--video", str(video), "--no-video-check", "--part-mib", "0"
        )
        assert bad.returncode == 2
        for result in (train, jobs, show, missing, bad):
            for secret in (proc.env["CLOUD_SDK_SK"], proc.env["CLOUD_SDK_AK"]):
                assert secret not in result.stdout + result.stderr


def test_version() -> None:
    from avatarkit import __version__

    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"avatarkit {__version__}"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_every_option_and_argument_has_help_and_help_has_no_markup() -> None:
    from avatarkit.cli import _parser

    parsers = _parsers(_parser())
    assert len(parsers) > 10
    for parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{parser.prog}: {action.option_strings or action.dest} has no help"
        assert "``" not in parser.format_help(), parser.prog
    assert "bytes per" not in _parser().format_help()


def test_say_into_a_missing_directory_fails_at_once_in_one_line(tmp_path: Path) -> None:
    target = tmp_path / "nodir" / "x.mp4"
    result = run("say", "你好", "-o", str(target), "--emulator")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "--output" in result.stderr and "not an existing directory" in result.stderr
    assert not (tmp_path / "nodir").exists()


def test_json_errors_are_one_object_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    result = run("say", "你好", "-o", str(out), "--emulator", "--width", "100", "--json")
    assert result.returncode == 2 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["type"] == "ValidationError" and error["exit_code"] == 2
    assert error["field"] == "video.video_width" and "video_width=100" in error["message"]


def test_each_error_class_has_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    from avatarkit import cli, errors

    cases = [
        (errors.ValidationError("speaker", "x", "unknown (check_speaker=False to send it)"), 2),
        (errors.AuthenticationError(401, "no", status=401, credential="token (T)"), 3),
        (errors.TimeoutError("waited 5 s"), 4),
        (errors.ConnectionLost("reset"), 5),
        (errors.ProtocolError("bad frame"), 5),
        (errors.TrainingFailed("Liu-Xuan", None), 6),
        (errors.ServiceError(500, "boom", status=500, retryable=True), 1),
        (errors.StreamClosed("closed"), 1),
        (FileNotFoundError(2, "No such file or directory", "/nowhere/x.srt"), 2),
    ]
    for exc, code in cases:
        assert cli._report(exc, json_errors=False) == code
        line = capsys.readouterr().err
        assert line.count("\n") == 1 and line.startswith("avatarkit: ")
        assert cli._report(exc, json_errors=True) == code
        error = json.loads(capsys.readouterr().err)["error"]
        assert (error["type"], error["exit_code"]) == (type(exc).__name__, code)
    cli._report(cases[0][0], json_errors=False)
    assert "--no-speaker-check" in capsys.readouterr().err


def test_say_speaks_standard_input_and_streams_the_video_to_standard_output() -> None:
    # `llm | avatarkit say - -o -`: text in as it comes, the video out as it arrives.
    done = subprocess.run(
        [sys.executable, "-m", "avatarkit", "say", "-", "-o", "-", "--emulator", "--width", "240",
         "--subtitles", "--json"],
        input="今天天气真不错。我们去散步吧！".encode(),
        capture_output=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert result["path"] == "-" and result["bytes"] == len(done.stdout) > 0
    assert [s["text"] for s in result["subtitles"]]  # subtitles still collected
    with av.open(io.BytesIO(done.stdout)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0
    bad = subprocess.run(
        [sys.executable, "-m", "avatarkit", "say", "-", "--emulator", "--json"],
        input=b"\xff\xfe not utf-8", capture_output=True, timeout=60, env=ENV,
    )  # fmt: skip
    assert bad.returncode == 2 and json.loads(bad.stderr)["error"]["field"] == "stdin"
