"""The ``avatarkit`` command.

``avatarkit demo``                 a real end-to-end job against the in-process emulator
``avatarkit emulator``             run the emulator in the foreground
``avatarkit say TEXT -o out.mp4``  produce a video (the service from the environment,
                                   or an in-process emulator with --emulator)
``avatarkit upload FILE ...``      upload a digime video (resumes an interrupted upload)
``avatarkit voice-clone upload``   upload voice-clone audio (an archive or a folder)
``avatarkit voice convert IN -o OUT --speaker S``  voice conversion (SAMI)
``avatarkit train CONF_NAME``      start training; ``--wait`` to wait for the result
``avatarkit status CONF_NAME``     training state
``avatarkit metastudio train|jobs|show``  Huawei MetaStudio training jobs
``avatarkit batch JOBS.jsonl -o DIR``  many videos, resumable, concurrency adapted
                                   to the account's quota (a manifest in DIR)

Results go to stdout; progress, status and errors to stderr.  An error is
one line (with ``--json``, one JSON object: ``{"error": {"type", "message",
"exit_code", ...}}``), and the exit code says its class:

  0 done   1 the service refused or failed   2 bad input (a flag, a file)
  3 credentials refused   4 timed out   5 connection lost or broken
  6 training failed   7 a batch ended with failed jobs (see its manifest)
  130 interrupted (Ctrl-C)

Each retry prints one line to stderr too (a JSON object with ``--json``);
``--retry-timeout SECONDS`` bounds how long a failing request is retried.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from avatarkit._retry import RetryEvent, on_retry
from avatarkit._retry import log as _retry_log
from avatarkit._session import AvatarSession, Endpoints
from avatarkit._upload_handle import Upload
from avatarkit.digime._wire import TrainingInfo
from avatarkit.digime.upload import UploadProgress, UploadResult
from avatarkit.errors import (
    AuthenticationError,
    AvatarError,
    ConnectionLost,
    ProtocolError,
    TimeoutError,
    TrainingFailed,
    ValidationError,
)
from avatarkit.metastudio import Job, MetaStudio
from avatarkit.tta import events as ev

if TYPE_CHECKING:
    from avatarkit.tta.config import Codec, VideoFields

__all__ = ["main"]

# One exit code per error class, stable for scripts (the module docstring lists them).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_AUTH, EXIT_TIMEOUT, EXIT_CONNECTION, EXIT_TRAINING = 3, 4, 5, 6
EXIT_BATCH_FAILURES = 7
_EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (  # the first match wins
    (ValidationError, EXIT_USAGE),
    (AuthenticationError, EXIT_AUTH),
    (TimeoutError, EXIT_TIMEOUT),
    (ConnectionLost, EXIT_CONNECTION),
    (ProtocolError, EXIT_CONNECTION),
    (TrainingFailed, EXIT_TRAINING),
    (AvatarError, EXIT_FAILED),
    (OSError, EXIT_USAGE),  # a local file the command could not read or write
)
# The library's hints name its keywords; the command's users need its flags.
_FLAG_HINTS = {
    "check_resolution=False": "--no-resolution-check",
    "check_video=False": "--no-video-check",
    "check_speaker=False": "--no-speaker-check",
}
# What an error object carries beside its type and message, when the error has it.
_ERROR_FIELDS = ("field", "rule", "code", "status", "request_id", "retryable", "credential")
DEMO_TEXT = "你好，我是 avatarkit 的数字人。今天天气真不错！我们一起出去走走吧。"


def _print_result(args: argparse.Namespace, result: dict[str, Any], human: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(human)


class _RetryLine:
    """One stderr line per retry: ``retrying WHAT: attempt 1/8 failed: REASON; next try in 1.3s``.

    With ``--json`` the line is a JSON object (``"event": "retry"``), so that
    stdout stays the result alone.
    """

    def __init__(self, *, json_lines: bool) -> None:
        self.json_lines = json_lines

    def __call__(self, event: RetryEvent) -> None:
        if self.json_lines:
            fields = {
                "event": "retry",
                **msgspec.to_builtins(event),
                "delay": round(event.delay, 3),
            }
            line = json.dumps(fields, ensure_ascii=False)
        else:
            line = (
                f"avatarkit: retrying {event.what}: attempt {event.attempt}/{event.attempts} "
                f"failed: {event.reason}; next try in {event.delay:.1f}s"
            )
        # On a terminal a progress bar may hold the line: clear it first.
        clear = "\r\x1b[K" if sys.stderr.isatty() else ""
        sys.stderr.write(f"{clear}{line}\n")
        sys.stderr.flush()


def _retry_timeout(args: argparse.Namespace, *clients: Any) -> None:
    """Apply ``--retry-timeout`` to every retry policy of ``clients`` (sessions, MetaStudio)."""
    seconds = getattr(args, "retry_timeout", None)
    if seconds is None:
        return
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValidationError("--retry-timeout", seconds, "must be a number of seconds > 0")
    for client in clients:
        for name in ("retry", "upload_retry"):
            policy = getattr(client, name)
            setattr(client, name, dataclasses.replace(policy, total_timeout=seconds))


@contextlib.asynccontextmanager
async def _env_session(args: argparse.Namespace) -> AsyncIterator[AvatarSession]:
    """A session from the environment, with the command line's retry settings."""
    async with AvatarSession.from_env() as av:
        _retry_timeout(args, av)
        yield av


@contextlib.asynccontextmanager
async def _session(args: argparse.Namespace) -> AsyncIterator[AvatarSession]:
    """A session against the in-process emulator (``--emulator``) or the environment's service."""
    if getattr(args, "emulator", False):
        from avatarkit.emulator import Emulator

        async with Emulator() as emu, emu.session() as av:
            yield av
    else:
        kwargs: dict[str, Any] = {}
        if getattr(args, "tta_url", None):
            kwargs["endpoints"] = Endpoints(tta=args.tta_url)
        async with AvatarSession.from_env(**kwargs) as av:
            yield av


async def _stdin_text() -> AsyncIterator[str]:
    """Standard input as it comes (an LLM piped in), decoded as UTF-8 piece by piece."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    fd = sys.stdin.fileno()
    # What is there, now; a cancel (Ctrl-C) does not wait for the blocked read.
    while data := await anyio.to_thread.run_sync(os.read, fd, 4096, abandon_on_cancel=True):
        try:
            text = decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise ValidationError("stdin", data[:40], f"is not UTF-8 ({exc.reason})") from None
        if text:
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail


async def _produce(
    av: AvatarSession,
    text: str | AsyncIterator[str],
    out: Path | None,
    *,
    role: str,
    codec: Codec,
    width: int | None,
    height: int | None,
    subtitles: bool,
    srt: Path | None = None,
    live: bool = False,
) -> dict[str, Any]:
    video: VideoFields = {}
    subtitles = subtitles or srt is not None
    if width:
        video["video_width"] = width
    if height:
        video["video_height"] = height
    if subtitles:
        video["subtitle_control"] = True
    started = time.monotonic()
    audio_bytes = frames = 0
    status = _LiveStatus(enabled=live)
    async with av.tta.open(role=role, codec=codec, video=video or None) as stream:
        speech = stream.say(text) if isinstance(text, str) else stream.say_stream(text)
        async for event in speech:
            match event:
                case ev.AudioChunk(pcm=pcm):
                    audio_bytes += len(pcm)
                    status(audio_bytes / 32_000, time.monotonic() - started)
                case ev.VideoChunk():
                    frames += 1
                case _:
                    pass
        status.close()
        resolution = stream.resolution
        if out is None:  # the video to stdout, passed on as it arrives
            written = 0
            async with stream.stream_video() as chunks:
                async for chunk in chunks:
                    await anyio.to_thread.run_sync(sys.stdout.buffer.write, chunk)
                    written += len(chunk)
            await anyio.to_thread.run_sync(sys.stdout.buffer.flush)
            lines = chunks.subtitles
            where, size = "-", written
        else:
            produced = await stream.finish()
            saved = await produced.save(out)
            lines = produced.subtitles
            where, size = str(await anyio.Path(saved).resolve()), len(produced.data or b"")
            if produced.data is None:
                size = (await anyio.Path(saved).stat()).st_size
    if srt is not None:
        from avatarkit.media import SubtitleTrack

        await anyio.to_thread.run_sync(SubtitleTrack(lines).write, srt)
    elapsed = time.monotonic() - started
    seconds = audio_bytes / 32_000
    return {
        "path": where,
        "bytes": size,
        "seconds": round(seconds, 3),
        "video_frames": frames,
        "resolution": list(resolution),
        "elapsed_s": round(elapsed, 3),
        "realtime_factor": round(seconds / elapsed, 2) if elapsed else None,
        "subtitles": [{"text": s.text, "start_ms": s.start_ms, "end_ms": s.end_ms} for s in lines],
    }


async def _cmd_say(args: argparse.Namespace) -> int:
    to_stdout = args.output == "-"
    if not to_stdout:
        _writable_output(args.output, "--output")
    if args.srt:
        _writable_output(args.srt, "--srt")
    out = None if to_stdout else Path(args.output)
    async with _session(args) as av:
        result = await _produce(
            av,
            _stdin_text() if args.text == "-" else args.text,
            out,
            role=args.role,
            codec=args.codec,
            width=args.width,
            height=args.height,
            subtitles=args.subtitles,
            srt=Path(args.srt) if args.srt else None,
            live=not args.json,
        )
    human = (
        f"wrote {result['path']} ({result['seconds']} s of video, "
        f"{result['video_frames']} frames, {result['bytes']} bytes)"
    )
    if to_stdout:  # stdout holds the video: the result goes to stderr
        line = json.dumps(result, ensure_ascii=False) if args.json else human
        print(line, file=sys.stderr)
    else:
        _print_result(args, result, human)
    return EXIT_OK


class _BatchBar:
    """One stderr line for a batch: done/total, failed, concurrency, rate and ETA.

    On a terminal it is redrawn in place; otherwise a line per finished job.
    ``--json`` makes each a JSON object (``"event": "progress"``)."""

    def __init__(self, *, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.tty = sys.stderr.isatty()

    def __call__(self, p: Any) -> None:
        if self.json_lines:
            line = json.dumps({"event": "progress", **msgspec.to_builtins(p)})
            sys.stderr.write(line + "\n")
            return
        finished = p.done + p.failed + p.skipped
        filled = int(30 * finished / p.total) if p.total else 30
        eta = f"{p.eta_s:.0f}s" if p.eta_s is not None else "?"
        rate = p.done / p.elapsed_s if p.elapsed_s > 0 else 0.0
        line = (
            f"batch [{'#' * filled}{'.' * (30 - filled)}] {finished}/{p.total} "
            f"failed {p.failed} retried {p.retried} busy {p.busy} "
            f"running {p.running}/{p.limit} {rate:.2f} jobs/s ETA {eta}"
        )
        sys.stderr.write(f"\r\x1b[K{line}" if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and not self.json_lines:
            sys.stderr.write("\n")


def _batch_folder(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValidationError("--output", path, "must be a folder")
    return out


async def _cmd_batch(args: argparse.Namespace) -> int:
    from avatarkit.batch import load_jobs, run_batch

    jobs = load_jobs(args.jobs)  # every line checked before anything runs
    out = _batch_folder(args.output)
    bar = _BatchBar(json_lines=args.json)
    try:
        if args.engine == "ray":
            from avatarkit.batch.ray_engine import run_batch_ray

            if args.emulator:
                raise ValidationError("--emulator", True, "is for the local engine only")
            summary = await run_batch_ray(
                jobs,
                out,
                address=args.address,
                cap=args.concurrency,
                attempts=args.attempts,
                workers=args.workers,
                on_progress=bar,
            )
        else:
            async with _session(args) as av:
                _retry_timeout(args, av)
                summary = await run_batch(
                    av,
                    jobs,
                    out,
                    cap=args.concurrency,
                    attempts=args.attempts,
                    on_progress=bar,
                )
    finally:
        bar.close()
    result = msgspec.to_builtins(summary)
    _print_result(
        args,
        result,
        f"batch: {summary.done} done, {summary.failed} failed, {summary.skipped} skipped "
        f"({summary.recovered} recovered), {summary.retried} retried, {summary.busy} busy; "
        f"{summary.elapsed_s:.1f}s, {summary.jobs_per_s:.2f} jobs/s, "
        f"peak concurrency {summary.peak_concurrency}/{summary.cap}; manifest: "
        f"{out / 'manifest.jsonl'}",
    )
    return EXIT_OK if summary.failed == 0 else EXIT_BATCH_FAILURES


async def _cmd_demo(args: argparse.Namespace) -> int:
    from avatarkit.emulator.demo import run_demo

    out_dir = Path(args.output_dir)
    bar = _ProgressBar("upload", enabled=not args.json)

    def say(line: str) -> None:  # the steps as they happen: status, on stderr
        if not args.json:
            print(line, file=sys.stderr, flush=True)

    summary = await run_demo(out_dir, width=args.width, on_upload=bar, say=say)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return EXIT_OK
    width = max(len(s["step"]) for s in summary["steps"])
    print("\nsummary")
    for s in summary["steps"]:
        detail = ", ".join(f"{k}={v}" for k, v in s.items() if k not in ("step", "elapsed_s"))
        print(f"  {s['step']:<{width}}  {s['elapsed_s']:>6.2f} s  {detail}")
    print(f"\nfiles in {await anyio.Path(out_dir).resolve()}:")
    for path in summary["files"]:
        print(f"  {Path(path).name}")
    return EXIT_OK


class _LiveStatus:
    """``producing: 3.2 s of video, 2.1x real time`` on stderr while a video is produced."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = 0.0

    def __call__(self, seconds: float, elapsed: float) -> None:
        if self.enabled and seconds - self.shown >= 0.2:
            self.shown = seconds
            factor = seconds / elapsed if elapsed > 0 else 0.0
            sys.stderr.write(f"\rproducing: {seconds:6.2f} s of video, {factor:5.1f}x real time ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _ProgressBar:
    """A one-line progress bar on stderr (bytes, rate, ETA); silent when not a terminal."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()
        self.first: int | None = None

    def __call__(self, progress: UploadProgress) -> None:
        if not self.enabled:
            return
        if self.first is None:
            self.first = progress.sent_bytes  # a resumed upload starts part-way
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (progress.sent_bytes - self.first) / elapsed
        left = progress.total_bytes - progress.sent_bytes
        eta = f"{int(left / rate) // 60}:{int(left / rate) % 60:02d}" if rate > 0 else "-:--"
        filled = int(30 * progress.fraction)
        mib = 1024 * 1024
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {progress.fraction:6.1%} "
            f"{progress.sent_bytes / mib:.1f}/{progress.total_bytes / mib:.1f} MiB "
            f"{rate / mib:.1f} MiB/s ETA {eta} part {progress.part}/{progress.parts} "
        )
        sys.stderr.flush()
        if progress.acked_bytes >= progress.total_bytes:
            self.close()  # done: end the bar's line

    def close(self) -> None:
        if self.enabled and self.first is not None:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.first = None


async def _run_upload(args: argparse.Namespace, upload: Upload[UploadResult]) -> int:
    bar = _ProgressBar(Path(args.path).name, enabled=not args.json)
    try:
        async for progress in upload:
            bar(progress)
    finally:
        bar.close()
    result: UploadResult = upload.result
    data = msgspec.to_builtins(result)
    resumed = " (resumed)" if result.resumed else ""
    _print_result(
        args,
        data,
        f"uploaded {args.path}{resumed}: upload_id {result.upload_id}, "
        f"{result.parts} parts, {result.size} bytes",
    )
    return EXIT_OK


async def _cmd_upload(args: argparse.Namespace) -> int:
    async with _env_session(args) as av:
        upload = av.digime.upload(
            args.path,
            conf_name=args.conf_name,
            role_show_name=args.role_show_name,
            input_resource=args.input_resource,
            type=args.type,
            part_size=int(args.part_size_mib * 1024 * 1024),
            min_part=int(args.min_part_mib * 1024 * 1024),
            check_resolution=not args.no_resolution_check,
            resume=not args.no_resume,
        )
        return await _run_upload(args, upload)


async def _cmd_voice_clone_upload(args: argparse.Namespace) -> int:
    async with _env_session(args) as av:
        upload = av.voice_clone.upload(
            args.path,
            tts_type=args.tts_type,
            input_resource=args.input_resource,
            conf_name=args.conf_name,
            part_size=int(args.part_size_mib * 1024 * 1024),
            min_part=int(args.min_part_mib * 1024 * 1024),
            resume=not args.no_resume,
        )
        return await _run_upload(args, upload)


def _info_dict(info: TrainingInfo) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(info)
    data["state_name"] = info.state.name.lower()
    return data


async def _cmd_voice_convert(args: argparse.Namespace) -> int:
    _writable_output(args.output, "--output")
    async with _env_session(args) as av:
        audio = await av.voice.convert(
            args.input,
            speaker=args.speaker,
            format=args.format,
            sample_rate=args.sample_rate,
            channel=args.channel,
            enable_background=args.background,
            check_speaker=not args.no_speaker_check,
        )
        saved = await audio.save(args.output)
    result = {
        "path": str(await anyio.Path(saved).resolve()),
        "bytes": len(audio.data),
        "format": audio.format,
        "sample_rate": audio.sample_rate,
        "channel": audio.channel,
        "task_id": audio.task_id,
    }
    _print_result(args, result, f"wrote {result['path']} ({result['bytes']} bytes, {args.speaker})")
    return EXIT_OK


async def _cmd_train(args: argparse.Namespace) -> int:
    async with _env_session(args) as av:
        await av.digime.start_training(args.conf_name, callback_url=args.callback_url)
        if not args.wait:
            _print_result(
                args,
                {"conf_name": args.conf_name, "started": True},
                f"training of {args.conf_name} started",
            )
            return EXIT_OK
        info = await av.digime.wait(args.conf_name, timeout=args.timeout)
    _print_result(
        args, _info_dict(info), f"training of {args.conf_name} succeeded: {info.role_pic}"
    )
    return EXIT_OK


async def _cmd_status(args: argparse.Namespace) -> int:
    async with _env_session(args) as av:
        info = await av.digime.status(args.conf_name)
    _print_result(
        args, _info_dict(info), f"{args.conf_name}: {info.state.name.lower().replace('_', ' ')}"
    )
    return EXIT_OK


def _job_dict(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(job)
    return data


async def _cmd_metastudio(args: argparse.Namespace) -> int:
    async with MetaStudio.from_env() as ms:
        _retry_timeout(args, ms)
        if args.metastudio_command == "jobs":
            listed = await ms.list_jobs(offset=args.offset, limit=args.limit, state=args.state)
            lines = [f"{j.job_id}  {j.state:<32} {j.name or ''}" for j in listed.jobs]
            _print_result(
                args,
                {"count": listed.count, "jobs": [_job_dict(j) for j in listed.jobs]},
                "\n".join([f"{listed.count} jobs", *lines]),
            )
            return EXIT_OK
        if args.metastudio_command == "show":
            job = await ms.status(args.job_id)
            _print_result(args, _job_dict(job), f"{job.job_id}  {job.state}  {job.name or ''}")
            return EXIT_OK
        bar = _ProgressBar(Path(args.video).name, enabled=not args.json)
        extra: dict[str, Any] = {}
        for name in ("contact", "batch_name"):
            if getattr(args, name):
                extra[name] = getattr(args, name)
        try:
            job = await ms.run_training(
                args.name,
                video=args.video,
                action_video=args.action_video,
                audio=args.audio,
                cover=args.cover,
                id_card_images=tuple(args.id_card) if args.id_card else None,
                grant_file=args.grant_file,
                part_bytes=int(args.part_mib * 1024 * 1024),
                check_video=not args.no_video_check,
                wait=not args.no_wait,
                timeout=args.timeout,
                on_progress=bar,
                **extra,
            )
        finally:
            bar.close()
    _print_result(args, _job_dict(job), f"job {job.job_id}: {job.state}")
    return EXIT_OK


def _emulator_options(args: argparse.Namespace) -> Any:
    from avatarkit.emulator import EmulatorOptions

    fields: dict[str, Any] = {"pace": args.pace, "media": args.media}
    for name in ("appid", "token", "frame_bytes", "audio_chunk_ms"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    for item in args.set or ():
        name, eq, value = item.partition("=")
        if not eq or name not in EmulatorOptions.__struct_fields__:
            raise ValidationError("--set", item, "must be NAME=VALUE with NAME an emulator option")
        fields[name] = value.split(",") if name.endswith("_names") else value
    try:
        return msgspec.convert(fields, EmulatorOptions, strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationError("--set", " ".join(args.set or ()), str(exc)) from None


def _cmd_emulator(args: argparse.Namespace) -> int:
    from avatarkit.emulator import serve
    from avatarkit.emulator.routes import client_env, ready_line

    options = _emulator_options(args)
    host = f"[{args.host}]" if ":" in args.host else args.host

    def announce(port: int) -> None:
        base = f"http://{host}:{port}"
        if args.ready_fd is not None:  # the machine-readable line first, then the banner
            with os.fdopen(args.ready_fd, "wb") as ready:
                ready.write(ready_line(base, port, options))
        print(f"avatarkit emulator listening on {base} — point the SDK at it with:")
        for name, value in client_env(base, options).items():
            print(f"  export {name}={value}")
        print(flush=True)  # a blank line ends the banner

    serve(args.host, args.port, options, log_level=args.log_level, on_ready=announce)
    return EXIT_OK


def _retry_options() -> argparse.ArgumentParser:
    """``--retry-timeout``, shared by every command that talks to an HTTP service."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--retry-timeout",
        type=float,
        metavar="SECONDS",
        help="give up retrying a failing request after SECONDS "
        "(default: 120 s per request, 900 s per upload part)",
    )
    return parent


def _add_upload_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--part-size-mib", type=float, default=10.0, help="MiB per upload part (default 10)"
    )
    parser.add_argument(
        "--min-part-mib",
        type=float,
        default=5.0,
        help="MiB below which a last part is merged into the one before (default 5, the "
        "service's; change it only for a scaled-down emulator)",
    )
    parser.add_argument("--no-resume", action="store_true", help="ignore an interrupted upload")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatarkit",
        description=(__doc__ or "").replace("``", ""),  # no reST markup on a terminal
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"avatarkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    retry = _retry_options()

    demo = sub.add_parser("demo", help="the whole product against the in-process emulator")
    demo.add_argument(
        "-o",
        "--output-dir",
        default="avatarkit-demo",
        help="where the demo writes its files (default: ./avatarkit-demo)",
    )
    demo.add_argument("--width", type=int, default=720, help="video width (default 720)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")

    say = sub.add_parser("say", help="produce a video of TEXT")
    say.add_argument(
        "text",
        help="what the avatar says (plain text or SSML); - reads standard input as it "
        "comes (an LLM piped in), speaking each sentence once it is complete",
    )
    say.add_argument(
        "-o",
        "--output",
        default="out.mp4",
        help="the video file to write (default out.mp4); - writes it to standard output "
        "as it arrives (the result line then goes to standard error)",
    )
    say.add_argument("--role", default="GuoXiaoyuan", help="the avatar (default GuoXiaoyuan)")
    say.add_argument(
        "--codec", default="mp4", choices=["mp4", "webm", "mov"], help="container (default mp4)"
    )
    say.add_argument("--width", type=int, help="video width in pixels (default: the role's)")
    say.add_argument("--height", type=int, help="video height in pixels (default: the role's)")
    say.add_argument("--subtitles", action="store_true", help="ask for subtitle events")
    say.add_argument("--srt", help="also write the subtitles to this .srt or .vtt file")
    say.add_argument(
        "--emulator",
        action="store_true",
        help="run against an in-process emulator instead of the real service",
    )
    say.add_argument(
        "--tta-url",
        help="TTA base URL (default: $AVATARKIT_TTA_URL or the real service); "
        "credentials come from AVATARKIT_APPID and AVATARKIT_TOKEN",
    )
    say.add_argument("--json", action="store_true", help="print the result as JSON")

    batch = sub.add_parser(
        "batch", help="produce many videos from a .jsonl of jobs (resumable)", parents=[retry]
    )
    batch.add_argument(
        "jobs", help='the jobs, one JSON object per line: {"id", "role", "text" or "ssml", …}'
    )
    batch.add_argument("-o", "--output", required=True, help="the folder for videos and manifest")
    batch.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="the most videos made at once (default 8); lowered while the service is busy",
    )
    batch.add_argument(
        "--attempts", type=int, default=3, help="tries per job on transient failures (default 3)"
    )
    batch.add_argument(
        "--emulator",
        action="store_true",
        help="run against an in-process emulator instead of the real service",
    )
    batch.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: a Ray cluster (the ray extra)",
    )
    batch.add_argument(
        "--address", help="the Ray cluster to join (ray://… or host:port; default: a local one)"
    )
    batch.add_argument(
        "--workers",
        type=int,
        help="Ray workers, each with its own session (default: --concurrency)",
    )
    batch.add_argument("--json", action="store_true", help="progress and summary as JSON")

    upload = sub.add_parser("upload", help="upload a digime video (resumable)", parents=[retry])
    upload.add_argument("path", help="the video file (mp4 or mov)")
    upload.add_argument(
        "--conf-name", required=True, help="the digime's name: letters, digits and -"
    )
    upload.add_argument("--role-show-name", required=True, help="the name shown to people")
    upload.add_argument("--input-resource", required=True, help="data source, e.g. company")
    upload.add_argument(
        "--type",
        default="training",
        choices=["training", "template", "review"],
        help="what the video is for (default training)",
    )
    upload.add_argument(
        "--no-resolution-check",
        action="store_true",
        help="send a training video whatever its resolution (the service wants 1080p or more)",
    )
    _add_upload_options(upload)

    voice = sub.add_parser("voice-clone", help="voice-clone material")
    voice_sub = voice.add_subparsers(dest="voice_command", required=True)
    vupload = voice_sub.add_parser(
        "upload", help="upload a zip/tar, or a folder of audio files", parents=[retry]
    )
    vupload.add_argument("path", help="a zip or tar archive, or a folder of audio files")
    vupload.add_argument(
        "--tts-type",
        required=True,
        choices=["tts_model_v1", "tts_model_v2"],
        help="the voice model to train",
    )
    vupload.add_argument("--input-resource", required=True, help="data source, e.g. company")
    vupload.add_argument("--conf-name", help="the voice's name (default: made from the file)")
    _add_upload_options(vupload)

    convert = (
        sub.add_parser("voice", help="voice conversion (SAMI)")
        .add_subparsers(dest="voice_command", required=True)
        .add_parser(
            "convert",
            help="convert IN (a path or an http(s) URL) to a speaker's voice",
            parents=[retry],
        )
    )
    convert.add_argument("input", help="the audio to convert: a path or an http(s) URL")
    convert.add_argument("-o", "--output", required=True, help="the audio file to write")
    convert.add_argument("--speaker", required=True, help="e.g. zh_female_qingxin")
    convert.add_argument(
        "--format", default="wav", choices=["wav", "mp3", "aac"], help="output format (default wav)"
    )
    convert.add_argument(
        "--sample-rate", type=int, default=24000, help="output sample rate in Hz (default 24000)"
    )
    convert.add_argument("--channel", type=int, default=1, help="output channels (default 1)")
    convert.add_argument("--background", action="store_true", help="keep the background sound")
    convert.add_argument("--no-speaker-check", action="store_true", help="allow unlisted speakers")
    convert.add_argument("--json", action="store_true", help="print the result as JSON")

    train = sub.add_parser("train", help="start training a digime", parents=[retry])
    train.add_argument("conf_name", help="the uploaded digime's name")
    train.add_argument(
        "--callback-url", required=True, help="where the service posts the training result"
    )
    train.add_argument("--wait", action="store_true", help="wait until training ends")
    train.add_argument("--timeout", type=float, help="with --wait: seconds to wait at most")
    train.add_argument("--json", action="store_true", help="print the result as JSON")

    status = sub.add_parser("status", help="a digime's training state", parents=[retry])
    status.add_argument("conf_name", help="the digime's name")
    status.add_argument("--json", action="store_true", help="print the state as JSON")

    meta = sub.add_parser("metastudio", help="Huawei MetaStudio 2D-avatar training jobs")
    meta_sub = meta.add_subparsers(dest="metastudio_command", required=True)
    mtrain = meta_sub.add_parser(
        "train", help="create a job, upload, submit and wait", parents=[retry]
    )
    mtrain.add_argument("--name", required=True, help="the avatar's name")
    mtrain.add_argument("--video", required=True, help="training video (mp4, 1080p/4K, 3-10 min)")
    mtrain.add_argument("--action-video", help="an optional action video (mp4)")
    mtrain.add_argument("--audio", help="audio zip")
    mtrain.add_argument("--cover", help="a cover image")
    mtrain.add_argument(
        "--id-card", nargs=2, metavar=("FRONT", "BACK"), help="the ID card's two images"
    )
    mtrain.add_argument("--grant-file", help="the signed authorisation letter")
    mtrain.add_argument("--contact", help="a phone number for the review")
    mtrain.add_argument("--batch-name", help="a batch to file the job under")
    mtrain.add_argument(
        "--part-mib", type=float, default=64.0, help="MiB per presigned part (default 64)"
    )
    mtrain.add_argument(
        "--no-video-check",
        action="store_true",
        help="send the video whatever its resolution and length (wanted: 1080p/4K, 3-10 min)",
    )
    mtrain.add_argument("--no-wait", action="store_true", help="return once submitted")
    mtrain.add_argument("--timeout", type=float, help="seconds to wait for the result at most")
    mtrain.add_argument("--json", action="store_true", help="print the job as JSON")
    mjobs = meta_sub.add_parser("jobs", help="list training jobs", parents=[retry])
    mjobs.add_argument("--state", help="comma-separated states, e.g. WAIT_TRAINING,TRAINING")
    mjobs.add_argument("--limit", type=int, default=10, help="jobs per page (default 10)")
    mjobs.add_argument("--offset", type=int, default=0, help="jobs to skip (default 0)")
    mjobs.add_argument("--json", action="store_true", help="print the jobs as JSON")
    mshow = meta_sub.add_parser("show", help="one training job", parents=[retry])
    mshow.add_argument("job_id", help="the job's id")
    mshow.add_argument("--json", action="store_true", help="print the job as JSON")

    emu = sub.add_parser("emulator", help="run the local emulator in the foreground")
    emu.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    emu.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free)"
    )
    emu.add_argument(
        "--pace",
        choices=["fast", "realtime"],
        default="realtime",
        help="stream media as fast as possible, or at the real service's pace (default)",
    )
    emu.add_argument(
        "--media",
        choices=["real", "cheap"],
        default="real",
        help="real H.264/PCM (default), or cheap placeholder frames for load tests",
    )
    emu.add_argument(
        "--frame-bytes", type=int, help="cheap media: pad every video frame to N bytes"
    )
    emu.add_argument("--audio-chunk-ms", type=int, help="PCM per audio frame (default 40)")
    emu.add_argument("--appid", help="the appid it accepts (default: emulator-appid)")
    emu.add_argument("--token", help="the token it accepts (default: emulator-token-0123456789)")
    emu.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="any emulator option, e.g. --set latency_ms=20 --set failure_rate=0.2",
    )
    emu.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="the server's log level (default info)",
    )
    emu.add_argument(
        "--ready-fd",
        type=int,
        metavar="FD",
        help='once listening, write one JSON line {"ready": true, "url", "port", "env"} '
        "to file descriptor FD (for programs that start the emulator)",
    )
    return parser


async def _showing_retries(
    command: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    # The retry lines below replace the library's WARNING records, which would
    # otherwise reach stderr a second time through logging's last-resort handler.
    quiet = logging.NullHandler()
    retry_log = _retry_log
    retry_log.addHandler(quiet)
    try:
        with on_retry(_RetryLine(json_lines=getattr(args, "json", False))):
            return await command(args)
    finally:
        retry_log.removeHandler(quiet)


def _version() -> str:
    from avatarkit import __version__

    return __version__


def _cli_words(text: str) -> str:
    for keyword, flag in _FLAG_HINTS.items():
        text = text.replace(keyword, flag)
    return text


def _report(exc: Exception, *, json_errors: bool) -> int:
    """One line (or one JSON object) on stderr for ``exc``; returns its exit code."""
    code = next(code for kind, code in _EXIT_CODES if isinstance(exc, kind))
    if isinstance(exc, OSError):
        message = f"cannot use {exc.filename or 'a file'}: {exc.strerror or exc}"
    else:
        message = _cli_words(str(exc))
    if json_errors:
        error: dict[str, Any] = {"type": type(exc).__name__, "message": message, "exit_code": code}
        for name in _ERROR_FIELDS:
            value = getattr(exc, name, None)
            if isinstance(value, str | int | float | bool):
                error[name] = value
        print(json.dumps({"error": error}, ensure_ascii=False), file=sys.stderr)
    elif isinstance(exc, ValidationError | OSError):
        print(f"avatarkit: invalid input: {message}", file=sys.stderr)
    elif isinstance(exc, TrainingFailed):
        print(f"avatarkit: {message}", file=sys.stderr)
    else:
        print(f"avatarkit: {type(exc).__name__}: {message}", file=sys.stderr)
    return code


def _writable_output(path: str, flag: str) -> None:
    """Fail before a long job if its result could not be written where asked."""
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise ValidationError(flag, path, f"is in {parent}, which is not an existing directory")
    if not os.access(parent, os.W_OK):
        raise ValidationError(flag, path, f"is in {parent}, which is not writable")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    json_errors = bool(getattr(args, "json", False))
    try:
        if args.command == "emulator":
            return _cmd_emulator(args)
        commands = {
            "say": _cmd_say,
            "batch": _cmd_batch,
            "demo": _cmd_demo,
            "upload": _cmd_upload,
            "voice-clone": _cmd_voice_clone_upload,
            "voice": _cmd_voice_convert,
            "metastudio": _cmd_metastudio,
            "train": _cmd_train,
            "status": _cmd_status,
        }
        return anyio.run(_showing_retries, commands[args.command], args)
    except (AvatarError, OSError) as exc:
        return _report(exc, json_errors=json_errors)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
