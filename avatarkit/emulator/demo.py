"""``avatarkit demo``: the whole product against the in-process emulator, no account.

1. make a 1080p training clip (3 minutes at 1 fps) and upload it (progress bar), train, wait;
2. produce a video with actions, an image overlay and subtitles: ``out.mp4`` + ``out.srt``;
3. drive a second utterance from a WAV file (streaming audio): ``out-drive.mp4``;
4. convert a voice clip (SAMI): ``out-voice.wav``;
5. run a Huawei MetaStudio training job to JOB_SUCCESS.

Needs the ``emulator`` extra (Starlette, uvicorn, PyAV).
"""

from __future__ import annotations

import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from avatarkit._progress import UploadProgress
from avatarkit.tta import events as ev

__all__ = ["DEMO_SSML", "run_demo"]

#: Actions (GuoXiaoyuan's "ok" and "clap"), an image over part of the text, two sentences.
DEMO_SSML = (
    "<speak>你好，我是 avatarkit 的数字人。"
    '<action type="15"/>今天天气真不错！'
    '<image url="{image}" left="40" top="60" width="160" height="90" level="1">'
    "我们一起出去走走吧。</image>"
    '<action type="13"/>再见！</speak>'
)


def _training_clip(path: Path, seconds: int = 181) -> None:
    """A 1080p mp4 of just over 3 minutes: both reviews accept it (doc 000; doc 003: 3–10 min)."""
    from avatarkit.emulator.media import still_clip

    still_clip(path, seconds)


def _speech_wav(path: Path, text: str) -> float:
    """Speech-like audio for ``text`` as a 16 kHz mono WAV; returns its seconds."""
    from avatarkit.emulator.media import synth_speech

    pcm = synth_speech(text, seed=7)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(pcm)
    return len(pcm) / 32_000


async def run_demo(
    out_dir: Path,
    *,
    width: int = 720,
    on_upload: Callable[[UploadProgress], None] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run every step; returns a summary (what each step did, and the files it wrote)."""
    from avatarkit.digime.callbacks import CallbackReceiver
    from avatarkit.emulator import Emulator
    from avatarkit.emulator.server import serve_asgi
    from avatarkit.tta import ssml

    await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    steps: list[dict[str, Any]] = []

    def step(name: str, started: float, **detail: Any) -> None:
        steps.append({"step": name, "elapsed_s": round(time.monotonic() - started, 2), **detail})
        say(f"  ✓ {name}: " + ", ".join(f"{k}={v}" for k, v in detail.items()))

    receiver = CallbackReceiver()
    async with (
        Emulator(digime_training_seconds=0.2, metastudio_step_seconds=0.05) as emu,
        serve_asgi(receiver) as callbacks,
    ):
        say(f"emulator running at {emu.http_url} (no account needed)")
        async with emu.session() as av:
            # 1. training material
            started = time.monotonic()
            clip = out_dir / "demo-training.mp4"
            await anyio.to_thread.run_sync(_training_clip, clip)
            handle = av.digime.upload(
                clip,
                conf_name="Demo-Avatar",
                role_show_name="演示",
                input_resource="avatarkit-demo",
            )
            async for progress in handle:
                if on_upload is not None:
                    on_upload(progress)
            upload = handle.result
            # the service POSTs the result to our callback receiver; wait() wakes on it
            await av.digime.start_training("Demo-Avatar", callback_url=f"{callbacks}/")
            info = await av.digime.wait("Demo-Avatar", timeout=60, receiver=receiver)
            step(
                "upload + training",
                started,
                parts=upload.parts,
                bytes=upload.size,
                state=info.state.name.lower(),
            )

            # 2. a produced video with actions, an image overlay and subtitles
            started = time.monotonic()
            text = DEMO_SSML.format(image=f"{emu.http_url}/digime/pics/Demo-Avatar/role.png")
            ssml.validate(text, role="GuoXiaoyuan")
            video_path, srt_path = out_dir / "out.mp4", out_dir / "out.srt"
            async with av.tta.open(
                role="GuoXiaoyuan",
                codec="mp4",
                video={"video_width": width, "subtitle_control": True},
            ) as stream:
                async with stream.record(video_path, subtitles=srt_path) as recording:
                    spoken = await stream.say(text).collect()
                    produced = await stream.finish()
            assert recording.result is not None
            await produced.save(out_dir / "out-produced.mp4")  # the service's own mp4
            seconds = sum(len(e.pcm) for e in spoken if isinstance(e, ev.AudioChunk)) / 32_000
            step(
                "video",
                started,
                file=video_path.name,
                subtitles=srt_path.name,
                video_s=round(seconds, 2),
                frames=recording.result.video_frames,
                subtitle_lines=len(produced.subtitles),
            )

            # 3. a second utterance driven by streamed audio
            started = time.monotonic()
            wav = out_dir / "demo-speech.wav"
            wav_seconds = _speech_wav(wav, "这一句话由音频驱动。数字人跟着声音说话。")
            drive_path = out_dir / "out-drive.mp4"
            async with av.tta.open(
                role="GuoXiaoyuan", input_mode="audio", video={"video_width": width}
            ) as stream:
                async with stream.record(drive_path) as recording:
                    await stream.drive_audio(wav).collect()
            assert recording.result is not None
            step(
                "audio drive",
                started,
                file=drive_path.name,
                audio_s=round(wav_seconds, 2),
                frames=recording.result.video_frames,
            )

            # 4. voice conversion
            started = time.monotonic()
            converted = await av.voice.convert(wav, speaker="zh_female_qingxin")
            voice_path = await converted.save(out_dir / "out-voice.wav")
            step(
                "voice conversion",
                started,
                file=voice_path.name,
                sample_rate=converted.sample_rate,
                bytes=len(converted.data),
            )

        # 5. Huawei MetaStudio
        started = time.monotonic()
        async with emu.metastudio() as ms:
            job = await ms.run_training(
                "演示角色", video=clip, poll_interval=0.05, part_bytes=256 * 1024
            )
        step("metastudio job", started, job_id=job.job_id[:8], state=job.state)

    files = sorted([str(p) async for p in anyio.Path(out_dir).iterdir() if await p.is_file()])
    return {"steps": steps, "files": files}
