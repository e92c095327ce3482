"""avatarkit.media: WAV, raw H.264, MP4 and SRT/WebVTT files from real emulator events."""

from __future__ import annotations

import math
import os
import sys
import wave
from collections.abc import Sequence
from pathlib import Path

import av
import pytest

from avatarkit import AvatarError, ValidationError, events
from avatarkit.emulator import Emulator
from avatarkit.emulator import media as emu_media
from avatarkit.media import H264Writer, Mp4Writer, Recorder, SubtitleTrack, WavWriter
from avatarkit.tta.events import SubtitleItem
from avatarkit.tta.video import ProducedVideo
from tests.conftest import SMALL_VIDEO, session_for

pytestmark = pytest.mark.anyio

TEXT = "今天天气真不错。我们出去走走吧！"
SHORT = "你好。"
FRAME_S = 0.04


async def speak(
    emulator: Emulator, texts: Sequence[str], *, subtitles: bool = False
) -> tuple[list[list[events.Event]], ProducedVideo | None]:
    """The events of each utterance; with ``subtitles``, also the produced video."""
    video = {**SMALL_VIDEO, "subtitle_control": True} if subtitles else SMALL_VIDEO
    codec = "mp4" if subtitles else None
    async with session_for(emulator) as session:
        async with session.tta.open(role="GuoXiaoyuan", video=video, codec=codec) as stream:
            got = [await stream.say(text).collect() for text in texts]
            produced = await stream.finish() if subtitles else None
    return got, produced


def pcm_of(evs: Sequence[events.Event]) -> bytes:
    return b"".join(e.pcm for e in evs if isinstance(e, events.AudioChunk))


def frames_of(evs: Sequence[events.Event]) -> int:
    return sum(1 for e in evs if isinstance(e, events.VideoChunk))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------------------------
# WAV and raw H.264
# --------------------------------------------------------------------------------------------


async def test_wav_has_the_stream_pcm(emulator: Emulator, tmp_path: Path) -> None:
    (utterance,), _ = await speak(emulator, [TEXT])
    path = tmp_path / "talk.wav"
    async with Recorder(path) as rec:
        for event in utterance:
            await rec.afeed(event)
    result = await rec.aclose()  # idempotent: the same result again
    pcm = pcm_of(utterance)
    assert len(pcm) == emu_media.speech_duration_ms(TEXT) * 32
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)
        assert w.getnframes() == len(pcm) // 2
        assert w.readframes(w.getnframes()) == pcm
    assert result.path == path and result.audio is None and result.subtitles is None
    assert result.audio_seconds == len(pcm) / 32_000
    assert result.video_frames == frames_of(utterance)
    assert leftovers(tmp_path) == ["talk.wav"]


def test_wav_writer_pads_a_split_sample_and_patches_sizes(tmp_path: Path) -> None:
    path = tmp_path / "st.wav"
    with WavWriter(path, sample_rate=8_000, channels=2) as w:
        w.write(b"\x01\x00\x02")  # a chunk may end mid-sample
        w.write(memoryview(b"\x00\x03\x00\x04\x00"))
        assert (path.exists(), w.path.with_name(".st.wav.partial").exists()) == (False, True)
    with wave.open(str(path), "rb") as r:
        assert (r.getframerate(), r.getnchannels(), r.getnframes()) == (8_000, 2, 2)
        assert r.readframes(2) == b"\x01\x00\x02\x00\x03\x00\x04\x00"
    assert path.stat().st_size == 44 + 8


async def test_h264_file_decodes_to_every_frame(emulator: Emulator, tmp_path: Path) -> None:
    (utterance,), _ = await speak(emulator, [TEXT])
    path = tmp_path / "talk.h264"
    with Recorder(path) as rec:  # the sync API
        for event in utterance:
            rec.feed(event)
    assert rec.close().video_frames == frames_of(utterance)
    with av.open(str(path), format="h264") as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == frames_of(utterance) == math.ceil(len(pcm_of(utterance)) / 1280)
    assert (decoded[0].width, decoded[0].height) == (256, 256)


def test_h264_writer_starts_at_a_keyframe(tmp_path: Path) -> None:
    aus = emu_media.MediaSession(64, 64, gop=4).render(bytes(1280 * 6))
    with H264Writer(tmp_path / "v.h264") as w:
        for au in aus[1:]:  # joined mid-GOP: frames 1-3 cannot be decoded
            w.write(au)
    assert (w.frames, w.skipped) == (2, 3)
    assert (tmp_path / "v.h264").read_bytes() == b"".join(aus[4:])


# --------------------------------------------------------------------------------------------
# MP4
# --------------------------------------------------------------------------------------------


def probe_mp4(path: Path) -> dict[str, float]:
    with av.open(str(path)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert (v.width, v.height) == (256, 256)
        assert v.average_rate == 25
        assert v.duration and v.time_base and a.duration and a.time_base
        info = {
            "video_s": float(v.duration * v.time_base),
            "audio_s": float(a.duration * a.time_base),
            "frames": sum(1 for _ in c.decode(video=0)),
        }
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        info["decoded_audio_s"] = sum(f.samples for f in c.decode(audio=0)) / rate
    return info


async def test_mp4_muxes_h264_and_aac_of_equal_length(emulator: Emulator, tmp_path: Path) -> None:
    (utterance,), _ = await speak(emulator, [TEXT])
    path = tmp_path / "talk.mp4"
    rec = Recorder(path)
    for event in utterance:
        await rec.afeed(event)
    result = await rec.aclose()
    assert leftovers(tmp_path) == ["talk.mp4"]
    seconds = len(pcm_of(utterance)) / 32_000  # the utterance's duration
    info = probe_mp4(path)
    assert info["frames"] == frames_of(utterance) == result.video_frames
    assert info["video_s"] == pytest.approx(info["frames"] * FRAME_S)
    assert abs(info["video_s"] - seconds) <= FRAME_S
    assert abs(info["audio_s"] - seconds) <= FRAME_S
    assert abs(info["decoded_audio_s"] - info["video_s"]) <= FRAME_S


async def test_mp4_of_two_utterances_keeps_them_in_step(emulator: Emulator, tmp_path: Path) -> None:
    (first, second), _ = await speak(emulator, [SHORT, TEXT], subtitles=True)
    path, srt = tmp_path / "two.mov", tmp_path / "two.srt"
    async with Recorder(path, subtitles=srt, audio=tmp_path / "two.wav") as rec:
        for event in [*first, *second]:
            await rec.afeed(event)
    result = await rec.aclose()
    assert result.files == (path, tmp_path / "two.wav", srt)
    assert result.subtitle_cues == 3
    frames = frames_of(first) + frames_of(second)
    # Silence fills the first utterance's audio up to its last frame, so the second starts
    # with its first frame.
    start2 = frames_of(first) * FRAME_S
    assert frames_of(first) == math.ceil(len(pcm_of(first)) / 1280)
    assert result.audio_seconds == pytest.approx(start2 + len(pcm_of(second)) / 32_000)
    with wave.open(str(tmp_path / "two.wav"), "rb") as w:
        assert w.getnframes() == round(result.audio_seconds * 16_000)
        w.setpos(round(start2 * 16_000))
        assert w.readframes(w.getnframes()) == pcm_of(second)
    info = probe_mp4(path)
    assert info["frames"] == frames
    seconds = result.audio_seconds
    assert abs(info["video_s"] - seconds) <= FRAME_S
    assert abs(info["audio_s"] - seconds) <= FRAME_S
    assert abs(info["decoded_audio_s"] - info["video_s"]) <= FRAME_S
    # The subtitles are on the same timeline: the second utterance starts at its first frame.
    cue2 = srt.read_text(encoding="utf-8").split("\n\n")[1]
    assert cue2.startswith(f"2\n00:00:00,{round(start2 * 1000):03d} --> ")


async def test_mp4_is_muxed_while_recording(tmp_path: Path) -> None:
    # 10 s of pre-encoded frames: the file grows as events come, nothing piles up in memory.
    session = emu_media.MediaSession(256, 256, cheap=True, gop=50)
    pcm = emu_media.synth_speech("这是一段十秒左右的话，用来录制。" * 4)[: 1280 * 250]
    aus = session.render(pcm)
    rec = Recorder(tmp_path / "long.mp4")
    await rec.afeed(events.VoiceStart())
    for i, au in enumerate(aus):
        await rec.afeed(events.AudioChunk(pcm=memoryview(pcm[i * 1280 : (i + 1) * 1280])))
        await rec.afeed(events.VideoChunk(nal=memoryview(au)))
    on_disk = (tmp_path / ".long.mp4.partial").stat().st_size
    assert on_disk > sum(map(len, aus)) * 0.7
    assert (await rec.aclose()).video_frames == len(aus) > 240
    assert probe_mp4(tmp_path / "long.mp4")["frames"] == len(aus)


async def test_mp4_writer_used_directly(emulator: Emulator, tmp_path: Path) -> None:
    (utterance,), _ = await speak(emulator, [SHORT])
    with Mp4Writer(tmp_path / "direct.mp4") as w:
        for event in utterance:
            if isinstance(event, events.VideoChunk):
                w.write_video(event.nal)
            elif isinstance(event, events.AudioChunk):
                w.write_audio(event.pcm)
    assert (w.width, w.height, w.video_written) == (256, 256, frames_of(utterance))
    assert probe_mp4(tmp_path / "direct.mp4")["frames"] == frames_of(utterance)


# --------------------------------------------------------------------------------------------
# Subtitles
# --------------------------------------------------------------------------------------------

EXPECTED_SRT = (
    "1\n"
    "00:00:00,000 --> 00:00:01,690\n"
    "今天天气真不错。\n"
    "\n"
    "2\n"
    "00:00:01,690 --> 00:00:03,380\n"
    "我们出去走走吧！\n"
)
EXPECTED_VTT = (
    "WEBVTT\n"
    "\n"
    "00:00:00.000 --> 00:00:01.690\n"
    "今天天气真不错。\n"
    "\n"
    "00:00:01.690 --> 00:00:03.380\n"
    "我们出去走走吧！\n"
)


async def test_srt_and_vtt_from_all_subtitles_and_from_on_off(
    emulator: Emulator, tmp_path: Path
) -> None:
    (utterance,), produced = await speak(emulator, [TEXT], subtitles=True)
    assert produced is not None
    timings = emu_media.sentence_timings(TEXT)
    assert [(s.text, s.start_ms, s.end_ms) for s in produced.subtitles] == timings
    assert [t[1:] for t in timings] == [(0, 1690), (1690, 3380)]  # what EXPECTED_* encode

    from_all = SubtitleTrack(produced.subtitles)
    assert from_all.to_srt() == EXPECTED_SRT
    assert from_all.to_vtt() == EXPECTED_VTT

    from_events = SubtitleTrack.from_events(utterance)
    assert from_events.cues == produced.subtitles
    assert from_events.to_srt() == EXPECTED_SRT

    # AllSubtitles replaces what the On/Off pairs said.
    fixed = (SubtitleItem(text="全部", start_ms=5, end_ms=60),)
    from_events.add(events.AllSubtitles(subtitles=fixed))
    assert from_events.cues == fixed

    # Through the recorder, into files picked by suffix.
    vtt = tmp_path / "talk.vtt"
    async with Recorder(tmp_path / "talk.wav", subtitles=vtt) as rec:
        for event in utterance:
            await rec.afeed(event)
    assert vtt.read_text(encoding="utf-8") == EXPECTED_VTT
    assert from_all.write(tmp_path / "talk.SRT").read_text(encoding="utf-8") == EXPECTED_SRT
    assert leftovers(tmp_path) == ["talk.SRT", "talk.vtt", "talk.wav"]


def test_subtitle_format_details(tmp_path: Path) -> None:
    track = SubtitleTrack()
    track.add(events.SubtitleOn(text="late", start_ms=3_723_004, end_ms=3_725_000))
    track.add(events.SubtitleOff(text="late", start_ms=3_723_004, end_ms=3_725_000))
    # An On whose Off never came ends where the next starts; the clock fills missing times.
    track.add(events.SubtitleOn(text="a <b> & c\n\n  second line "), now_ms=1_000)
    track.add(events.SubtitleOn(text="next", start_ms=2_500, end_ms=2_900))
    track.add(events.VoiceEnd())  # ignored
    assert len(track) == 3  # "next" is still showing; it counts until its planned end
    assert track.to_srt() == (
        "1\n00:00:01,000 --> 00:00:02,500\na <b> & c\nsecond line\n\n"
        "2\n00:00:02,500 --> 00:00:02,900\nnext\n\n"
        "3\n01:02:03,004 --> 01:02:05,000\nlate\n"
    )
    assert track.to_vtt().splitlines()[2:4] == [
        "00:00:01.000 --> 00:00:02.500",
        "a &lt;b&gt; &amp; c",
    ]
    assert SubtitleTrack().to_srt() == ""
    assert SubtitleTrack().to_vtt() == "WEBVTT\n"
    with pytest.raises(ValidationError, match=r"\.srt or \.vtt"):
        track.write(tmp_path / "subs.txt")
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# Atomicity and errors
# --------------------------------------------------------------------------------------------


async def test_aborted_recording_leaves_nothing(emulator: Emulator, tmp_path: Path) -> None:
    (utterance,), _ = await speak(emulator, [TEXT])
    rec = Recorder(tmp_path / "a.mp4", subtitles=tmp_path / "a.srt", audio=tmp_path / "a.wav")
    for event in utterance:
        await rec.afeed(event)
    assert ".a.mp4.partial" in leftovers(tmp_path)
    rec.abort()
    rec.abort()  # idempotent
    assert leftovers(tmp_path) == []
    with pytest.raises(AvatarError, match="aborted"):
        rec.feed(utterance[0])

    # An error inside the block aborts too.
    with pytest.raises(RuntimeError, match="boom"):
        async with Recorder(tmp_path / "b.h264", audio=tmp_path / "b.wav") as rec2:
            for event in utterance:
                await rec2.afeed(event)
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


async def test_empty_mp4_is_an_error_not_a_broken_file(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "none.mp4", audio=tmp_path / "none.wav")
    rec.feed(events.VoiceStart())
    with pytest.raises(AvatarError, match="nothing was recorded"):
        await rec.aclose()
    assert leftovers(tmp_path) == []
    with pytest.raises(AvatarError, match="failed"):
        await rec.aclose()


def test_missing_pyav_names_the_media_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(AvatarError, match=r"pip install 'avatarkit\[media\]'"):
        Recorder(tmp_path / "x.mp4", audio=tmp_path / "x.wav")
    with pytest.raises(AvatarError, match=r"avatarkit\[media\]"):
        Mp4Writer(tmp_path / "y.mov")
    assert leftovers(tmp_path) == []
    # Everything else works without PyAV.
    with Recorder(tmp_path / "x.wav", subtitles=tmp_path / "x.srt") as rec:
        rec.feed(events.AudioChunk(pcm=memoryview(bytes(320))))
    assert leftovers(tmp_path) == ["x.srt", "x.wav"]


def test_recorder_validates_its_paths(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="path"):
        Recorder(tmp_path / "x.avi")
    with pytest.raises(ValidationError, match="subtitles"):
        Recorder(tmp_path / "x.wav", subtitles=tmp_path / "x.ass")
    with pytest.raises(ValidationError, match="audio"):
        Recorder(tmp_path / "x.mp4", audio=tmp_path / "x.mp3")
    with pytest.raises(ValidationError, match="differ"):
        Recorder(tmp_path / "x.wav", audio=tmp_path / "x.wav")
    with pytest.raises(ValidationError, match=r"missing.*cannot be written"):
        Recorder(tmp_path / "missing" / "x.wav")
    with pytest.raises(ValidationError, match=r"subtitles.*no such directory"):
        Recorder(tmp_path / "x.wav", subtitles=tmp_path / "missing" / "x.srt")
    assert leftovers(tmp_path) == []


def test_every_writer_names_the_file_it_cannot_write(tmp_path: Path) -> None:
    # The disk's errors are AvatarErrors (ValidationError naming the file), not OSError.
    missing = tmp_path / "missing"
    for make in (
        lambda: WavWriter(missing / "a.wav"),
        lambda: H264Writer(missing / "a.h264"),
        lambda: Mp4Writer(missing / "a.mp4"),
        lambda: SubtitleTrack().write(missing / "a.srt"),
        lambda: Recorder(missing / "a.mp4"),
    ):
        with pytest.raises(ValidationError, match=r"missing.*cannot be written") as caught:
            make()
        assert caught.value.field == "path"
    assert leftovers(tmp_path) == []


async def test_a_cancelled_aclose_still_finishes_the_files(tmp_path: Path) -> None:
    import anyio

    rec = Recorder(tmp_path / "x.wav", subtitles=tmp_path / "x.srt")
    rec.feed(events.AudioChunk(pcm=memoryview(bytes(3200))))
    with anyio.CancelScope() as scope:
        scope.cancel()  # cancelled before the worker thread could start
        await rec.aclose()
    assert leftovers(tmp_path) == ["x.srt", "x.wav"]
    assert (await rec.aclose()).path == tmp_path / "x.wav"


@pytest.mark.anyio
async def test_stream_record_is_the_one_line_way(tmp_path: Path) -> None:
    import io as _io

    import av as _av

    from avatarkit.emulator import Emulator
    from avatarkit.emulator import media as emu_media

    text = "今天天气真不错。我们出去走走吧！"
    async with Emulator() as emu, emu.session() as session:
        async with session.tta.open(
            role="GuoXiaoyuan",
            codec="mp4",
            video={"video_width": 256, "video_height": 256, "subtitle_control": True},
        ) as stream:
            async with stream.record(
                tmp_path / "live.mp4", subtitles=tmp_path / "live.srt", audio=tmp_path / "live.wav"
            ) as recording:
                await stream.say(text).collect()
                await stream.finish()
    result = recording.result
    assert result is not None and result.path == tmp_path / "live.mp4"
    assert result.video_frames == math.ceil(emu_media.speech_duration_ms(text) / 40)
    with _av.open(_io.BytesIO((tmp_path / "live.mp4").read_bytes())) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
    srt = (tmp_path / "live.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ") and "我们出去走走吧！" in srt
    assert (tmp_path / "live.wav").stat().st_size > 44
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".partial")]
