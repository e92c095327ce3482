"""A user's program over the public API, type-checked (mypy --strict, pyright strict), not run.

Every public entry point a user calls appears here with the types a user
would write, so a signature that leaks ``Any`` or loses a type shows up as an
error in CI (.ci/run).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx

import avatarkit
from avatarkit import (
    AvatarError,
    AvatarSession,
    CallbackReceiver,
    CommandResult,
    ConvertedAudio,
    CreateJobResponse,
    Endpoints,
    Job,
    JobState,
    MetaStudio,
    ProducedVideo,
    RetryEvent,
    RetryPolicy,
    ServiceError,
    StreamLimits,
    TrainingInfo,
    TtaStream,
    Upload,
    UploadProgress,
    ValidationError,
    events,
    on_retry,
)
from avatarkit.batch import BatchProgress, BatchSummary, parse_jobs, run_batch
from avatarkit.batch.ray_engine import run_batch_ray
from avatarkit.emulator import Emulator
from avatarkit.tta import SessionConfig, SpeechStream, VideoStream, make_config
from avatarkit.tta.sentences import SentenceSplitter
from avatarkit.tta.ssml import Speak


def log_retries(event: RetryEvent) -> None:
    print(event.attempt, event.delay)


async def video(av: AvatarSession, out: Path) -> Path:
    stream: TtaStream = await av.tta.open(role="GuoXiaoyuan", codec="mp4", idle_timeout=20)
    async with stream:
        frames: int = 0
        async for event in stream.say(Speak().text("你好").subtitle("你好")):
            if isinstance(event, events.VideoChunk):
                frames += len(event.nal)
        produced: ProducedVideo = await stream.finish(timeout=60)
        data: bytes = await produced.read()
        assert data or frames
        return await produced.save(out)


async def live(av: AvatarSession) -> list[events.Event]:
    async with av.tta.open(role="GuoXiaoyuan", input_mode="audio") as stream:
        async with stream.record("live.mp4", subtitles="live.srt"):
            return await stream.drive_audio(b"\0\0" * 16000).collect()


async def streamed(av: AvatarSession, tokens: AsyncIterator[str]) -> int:
    async with av.tta.open(role="GuoXiaoyuan", codec="mp4") as stream:
        speech: SpeechStream = stream.say_stream(tokens, max_chars=60, ahead=1)
        spoken: list[events.Event] = await speech.collect()
        sentences: list[str] = speech.sentences
        video: VideoStream = stream.stream_video(timeout=60, chunk_bytes=1 << 16)
        size = 0
        async with video:
            async for chunk in video:
                size += len(chunk)
        cut: list[str] = SentenceSplitter(max_chars=40).feed("你好。再见")
        return size + len(spoken) + len(sentences) + len(cut) + len(video.subtitles)


def show(progress: BatchProgress) -> None:
    print(progress.done, progress.total, progress.eta_s)


async def batch(av: AvatarSession) -> float:
    jobs = parse_jobs(['{"id": "a-1", "role": "GuoXiaoyuan", "text": "你好"}'])
    summary: BatchSummary = await run_batch(av, jobs, "out", cap=8, on_progress=show)
    on_ray: BatchSummary = await run_batch_ray(jobs, "/shared/out", address=None, cap=8)
    return summary.jobs_per_s + on_ray.jobs_per_s


async def training(av: AvatarSession, receiver: CallbackReceiver) -> int:
    upload = av.digime.upload(
        "talk.mp4", conf_name="My-Avatar-1", role_show_name="我", input_resource="acme"
    )
    async for progress in upload:
        fraction: float = progress.fraction
        print(f"{fraction:.0%}")
    print(upload.result.upload_id)
    await av.digime.start_training("My-Avatar-1", callback_url="https://example.com/cb?secret=s")
    status: TrainingInfo = await av.digime.status("My-Avatar-1")
    assert status.conf_name
    info = await av.digime.wait("My-Avatar-1", timeout=600, receiver=receiver)
    callback = receiver.latest("My-Avatar-1")
    assert callback is None or callback.state in (2, 3)
    return int(info.state)


async def voice(av: AvatarSession) -> ConvertedAudio:
    converted = await av.voice.convert("in.wav", speaker="zh_female_qingxin", format="mp3")
    print(converted.sample_rate, converted.payload)
    await converted.save("out.mp3")
    return converted


async def metastudio(ms: MetaStudio) -> str:
    def show(progress: UploadProgress) -> None:
        print(progress.sent_bytes, progress.acked_bytes, progress.total_bytes)

    async with ms:
        job: Job = await ms.run_training("me", video="talk.mp4", on_progress=show, wait=False)
        created: CreateJobResponse = await ms.create_training_job("me", video_multipart_count=2)
        upload: Upload[None] = ms.upload(created, "talk.mp4")
        async for progress in upload:
            show(progress)
        await ms.upload(created.job_id, "action.mp4", urls=created.action_video_upload_url)
        await ms.upload_file("https://obs.example.com/cover?X=1", "cover.jpg")
        started: CommandResult = await ms.start_training(created.job_id)
        assert started.ok
        now: Job = await ms.status(created.job_id)
        state: str = now.state
        print(state == JobState.JOB_SUCCESS)
        job = await ms.wait(job.job_id, timeout=3600)
        return job.state


async def main() -> None:
    avatarkit.on_retry(log_retries)
    on_retry(log_retries)
    config: SessionConfig = make_config("GuoXiaoyuan", video={"video_width": 720})
    assert config.resolution[0] == 720
    limits = StreamLimits(idle_timeout=10).replace(ping_interval=None)
    async with Emulator() as emu:
        av = await emu.session(retry=RetryPolicy(attempts=3), stream_limits=limits)
        try:
            quick = av.with_options(timeout=httpx.Timeout(5.0))
            await video(quick, Path("out.mp4"))
            await live(av)
            await training(av, CallbackReceiver(secret="a-long-secret"))
            await voice(av)
            await metastudio(emu.metastudio())
        except ValidationError as exc:
            print(exc.field, exc.value)
        except ServiceError as exc:
            print(exc.code, exc.retryable)
        except AvatarError as exc:
            print(exc)
        finally:
            await av.aclose()
    other = AvatarSession(
        "appid", "token", endpoints=Endpoints(tta="ws://127.0.0.1:1/tta"), timeout=10.0
    )
    await other.aclose()
