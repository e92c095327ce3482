"""Tests for the emulator's real media: decoded with PyAV, never just sniffed."""

from __future__ import annotations

import io
import itertools
import math
import re
import threading
import time
from array import array
from typing import Any

import av
import pytest

from avatarkit.emulator.media import (
    AUDIO_BYTES_PER_FRAME,
    MediaSession,
    avatar,
    pad_access_unit,
    pcm_rms,
    plain_text,
    sentence_timings,
    speech_duration_ms,
    split_sentences,
    synth_speech,
)

TEXT = "你好，欢迎来到数字人直播间！Today we test the avatar, version 3.5. 好的；再见。"


# ---------------------------------------------------------------------------------- helpers


def nal_types(au: bytes) -> list[int]:
    # Emulation prevention guarantees 00 00 01 only ever starts a NAL unit.
    return [au[m.end()] & 0x1F for m in re.finditer(b"\x00\x00\x01", au) if m.end() < len(au)]


def decode_h264(aus: list[bytes]) -> list[Any]:
    ctx = av.CodecContext.create("h264", "r")
    frames: list[Any] = []
    for packet in ctx.parse(b"".join(aus)) + ctx.parse(None):
        frames.extend(ctx.decode(packet))
    frames.extend(ctx.decode(None))
    return frames


def tone(ms: int, amplitude: float, hz: float = 200.0) -> bytes:
    n = ms * 16
    return array(
        "h", (round(amplitude * 32767 * math.sin(2 * math.pi * hz * i / 16000)) for i in range(n))
    ).tobytes()


def samples(pcm: bytes) -> array[int]:
    arr = array("h")
    arr.frombytes(pcm)
    return arr


def mean_luma(frame: Any, x0: float, y0: float, x1: float, y1: float) -> float:
    plane = frame.planes[0]
    data = bytes(plane)
    ls = plane.line_size
    total = count = 0
    for y in range(round(y0), round(y1)):
        row = data[y * ls + round(x0) : y * ls + round(x1)]
        total += sum(row)
        count += len(row)
    return total / count


def open_media(data: bytes) -> Any:
    return av.open(io.BytesIO(data))


def keyframe_indexes(aus: list[bytes]) -> list[int]:
    return [i for i, au in enumerate(aus) if 5 in nal_types(au)]


# ------------------------------------------------------------------------------------- text


def test_plain_text_strips_ssml_and_collapses_whitespace() -> None:
    ssml = (
        '<speak><prosody rate="fast">Hello<break time="1s"/>world</prosody>\n\n'
        " 你<break/>好 &amp; bye</speak>"
    )
    assert plain_text(ssml) == "Hello world 你好 & bye"
    assert plain_text("  plain\ttext  ") == "plain text"
    assert plain_text("<speak></speak>") == ""


def test_split_sentences_keeps_punctuation_and_commas() -> None:
    assert split_sentences(TEXT) == [
        "你好，欢迎来到数字人直播间！",
        "Today we test the avatar, version 3.5.",
        "好的；",
        "再见。",
    ]
    assert split_sentences("Really?! Yes... ok") == ["Really?!", "Yes...", "ok"]
    assert split_sentences("“你好。”他说。") == ["“你好。”", "他说。"]
    assert split_sentences("  。  ") == ["。"]
    assert split_sentences("") == []
    assert split_sentences("   ") == []


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("", 0),
        ("   ", 0),
        ("你好", 440),
        ("hello", 325),
        ("你好。", 590),
        ("a, b", 65 + 80 + 65),
        ("好，。", 220 + 150),  # one punctuation run pauses once, at its longest
        ("3.145", 4 * 65),  # a decimal point is not a sentence end
        ("。", 200),  # minimum for non-blank text
        ("#", 200),
    ],
)
def test_speech_duration_rules(text: str, ms: int) -> None:
    assert speech_duration_ms(text) == ms
    assert len(synth_speech(text)) == ms * 32


@pytest.mark.parametrize(
    "text", [TEXT, "你好", "a", "Hi!", "。", "", plain_text("<speak>Hi<break/>there</speak>")]
)
def test_synth_length_equals_duration(text: str) -> None:
    assert len(synth_speech(text)) == speech_duration_ms(text) * 32
    assert len(synth_speech(text, seed=7)) == speech_duration_ms(text) * 32


def test_duration_proportional_to_text_length() -> None:
    one = speech_duration_ms(TEXT)
    assert speech_duration_ms(TEXT * 3) == 3 * one
    assert len(synth_speech(TEXT * 3)) == 3 * len(synth_speech(TEXT))
    assert speech_duration_ms("你" * 10) == 10 * 220
    assert speech_duration_ms("word " * 10) == 10 * 4 * 65


def test_sentence_timings_contiguous_and_cover_duration() -> None:
    timings = sentence_timings(TEXT)
    assert [s for s, _, _ in timings] == split_sentences(TEXT)
    assert timings[0][1] == 0
    for (_, _, end), (_, start, _) in itertools.pairwise(timings):
        assert end == start
    assert all(end > start for _, start, end in timings)
    assert timings[-1][2] == speech_duration_ms(TEXT)
    for sentence, start, end in timings:
        assert end - start == speech_duration_ms(sentence)
    assert sentence_timings("。") == [("。", 0, 200)]
    assert sentence_timings("") == []


# ------------------------------------------------------------------------------------ audio


def test_synth_is_deterministic() -> None:
    assert synth_speech(TEXT) == synth_speech(TEXT)
    assert synth_speech(TEXT, seed=3) == synth_speech(TEXT, seed=3)
    assert synth_speech(TEXT, seed=3) != synth_speech(TEXT)
    assert synth_speech("你好啊") != synth_speech("你好吗")


def test_synth_sounds_like_speech() -> None:
    pcm = synth_speech(TEXT)
    values = samples(pcm)
    peak = max(abs(v) for v in values)
    assert 8000 < peak < 32000  # loud enough, never clipping
    levels = [pcm_rms(pcm[i : i + 1280]) for i in range(0, len(pcm), 1280)]
    assert max(levels) > 0.08
    assert sum(1 for x in levels if x > 0.05) > len(levels) / 3  # mostly voiced
    assert sum(1 for x in levels if x < 0.01) >= 3  # with gaps and pauses
    mean = sum(levels) / len(levels)
    assert math.sqrt(sum((x - mean) ** 2 for x in levels) / len(levels)) > 0.02


def test_pauses_are_silent() -> None:
    pcm = synth_speech("你好。你好。")
    # Each sentence: 2 x 220 ms of syllables, then a 150 ms pause.
    assert set(pcm[440 * 32 : 590 * 32]) == {0}
    assert pcm_rms(pcm[: 440 * 32]) > 0.05


def test_synth_is_fast_after_warmup() -> None:
    texts = [f"第{i}句：你好，欢迎来到数字人直播间！Today we test the avatar." for i in range(10)]
    for t in texts:
        synth_speech(t)
    start = time.perf_counter()
    for t in texts:
        synth_speech(t)
    elapsed = time.perf_counter() - start
    seconds = sum(speech_duration_ms(t) for t in texts) / 1000
    assert elapsed / seconds < 0.015  # target is < 5 ms per second; leave CI headroom


def test_pcm_rms() -> None:
    assert pcm_rms(b"") == 0.0
    assert pcm_rms(bytes(1280)) == 0.0
    assert pcm_rms(array("h", [-32768, -32768]).tobytes()) == 1.0
    assert pcm_rms(tone(40, 0.5)) == pytest.approx(0.5 / math.sqrt(2), rel=0.01)
    assert pcm_rms(tone(40, 0.5) + b"\x7f") == pcm_rms(tone(40, 0.5))  # odd byte ignored


# ------------------------------------------------------------------------------- H.264 bits


def test_pad_access_unit() -> None:
    au = b"\x00\x00\x00\x01\x65\x88\x84\x21"
    padded = pad_access_unit(au, 100)
    assert len(padded) == 100
    assert padded.startswith(au)
    filler = padded[len(au) :]
    assert filler[:5] == b"\x00\x00\x00\x01\x0c"
    assert filler[-1] == 0x80
    assert set(filler[5:-1]) == {0xFF}
    assert pad_access_unit(au, len(au) + 6) == au + b"\x00\x00\x00\x01\x0c\x80"
    assert pad_access_unit(au, len(au) + 5) == au
    assert pad_access_unit(au, len(au)) == au
    assert pad_access_unit(au, 0) == au
    assert pad_access_unit(b"", 6) == b"\x00\x00\x00\x01\x0c\x80"


# ----------------------------------------------------------------------------------- render


@pytest.mark.parametrize(("size", "even"), [((320, 240), (320, 240)), ((241, 427), (240, 426))])
def test_render_decodes_to_configured_size(size: tuple[int, int], even: tuple[int, int]) -> None:
    pcm = synth_speech("你好，世界。")
    with MediaSession(*size, gop=50) as session:
        aus = session.render(pcm)
        assert len(aus) == math.ceil(len(pcm) / AUDIO_BYTES_PER_FRAME)
        assert session.duration_ms == len(aus) * 40
    first = nal_types(aus[0])
    assert {7, 8, 5} <= set(first)  # SPS, PPS, IDR slice in the first AU
    frames = decode_h264(aus)
    assert len(frames) == len(aus)
    assert {(f.width, f.height) for f in frames} == {even}


def test_render_counts_per_call() -> None:
    with MediaSession(320, 240) as session:
        assert session.render(b"") == []
        assert len(session.render(bytes(1))) == 1
        assert len(session.render(bytes(1280))) == 1
        assert len(session.render(bytes(1281))) == 2
        assert len(session.render(bytes(12_800))) == 10
        assert session.duration_ms == 14 * 40


@pytest.mark.parametrize("gop", [25, 40])
def test_keyframes_follow_gop(gop: int) -> None:
    with MediaSession(320, 240, gop=gop) as session:
        aus = session.render(bytes(1280 * 90))
    keys = keyframe_indexes(aus)
    assert keys == list(range(0, 90, gop))
    for i, au in enumerate(aus):
        types = nal_types(au)
        if i in keys:
            assert 7 in types
            assert 8 in types  # every keyframe carries SPS/PPS in-band
        else:
            assert 5 not in types
            assert 7 not in types
    frames = decode_h264(aus)
    assert [i for i, f in enumerate(frames) if f.key_frame] == keys


def test_mouth_follows_audio() -> None:
    with MediaSession(320, 240) as session:
        aus = session.render(bytes(1280) + tone(40, 0.5) + bytes(1280))
    silent, loud, silent2 = decode_h264(aus)
    art = avatar._art(320, 240, "yuv420p")
    box = (
        art.cx - 0.8 * art.mouth_rx,
        art.mouth_cy - 0.6 * art.mouth_ry,
        art.cx + 0.8 * art.mouth_rx,
        art.mouth_cy + 0.6 * art.mouth_ry,
    )
    assert mean_luma(silent, *box) - mean_luma(loud, *box) > 40  # open mouth is dark
    assert abs(mean_luma(silent, *box) - mean_luma(silent2, *box)) < 4
    forehead = (art.cx - art.rx / 2, art.cy - art.ry / 2, art.cx + art.rx / 2, art.cy - art.ry / 4)
    assert abs(mean_luma(silent, *forehead) - mean_luma(loud, *forehead)) < 4


# ---------------------------------------------------------------------------------- produce


def check_file(data: bytes, frames: int, size: tuple[int, int], codec: str) -> Any:
    with open_media(data) as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == 1
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.codec_context.name == codec
        assert video.average_rate == 25
        assert (video.codec_context.width, video.codec_context.height) == size
        decoded = list(container.decode(video=0))
        assert len(decoded) == frames
        assert {(f.width, f.height) for f in decoded} == {size}
        container.seek(0)
        audio_samples = sum(f.samples for f in container.decode(audio=0))
        rate = audio.codec_context.sample_rate
        assert abs(audio_samples / rate - frames * 0.04) <= 0.04
        if container.duration is not None:
            assert abs(container.duration / 1e6 - frames * 0.04) <= 0.04
        return audio.codec_context.name


@pytest.mark.parametrize("container", ["mp4", "mov"])
def test_produce_mp4_and_mov(container: str) -> None:
    pcm = synth_speech(TEXT)
    with MediaSession(241, 427, gop=25, container=container) as session:
        aus = session.render(pcm[: len(pcm) // 2])
        aus += session.render(pcm[len(pcm) // 2 :])
        data = session.produce()
    assert check_file(data, len(aus), (240, 426), "h264") == "aac"
    with open_media(data) as c:
        keys = [i for i, p in enumerate(p for p in c.demux(video=0) if p.size) if p.is_keyframe]
    assert keys == keyframe_indexes(aus)


def test_produce_webm() -> None:
    if (
        not {"libvpx-vp9", "libvpx"} & av.codecs_available
        or not {
            "libopus",
            "libvorbis",
        }
        & av.codecs_available
    ):
        pytest.skip("PyAV lacks a VP8/VP9 or Opus/Vorbis encoder")
    pcm = synth_speech("你好，世界。")
    with MediaSession(320, 240, gop=25, container="webm") as session:
        aus = session.render(pcm)
        data = session.produce()
    assert len(decode_h264(aus)) == len(aus)  # the live stream is still H.264
    vcodec = "vp9" if "libvpx-vp9" in av.codecs_available else "vp8"
    assert check_file(data, len(aus), (320, 240), vcodec) in {"opus", "vorbis"}
    # Alpha (if libvpx encodes it): transparent background, opaque avatar.
    with open_media(data) as container:
        stream = container.streams.video[0]
        if stream.metadata.get("ALPHA_MODE") != "1":
            pytest.skip("libvpx without yuva420p support")
        decoder = av.CodecContext.create("libvpx-vp9" if vcodec == "vp9" else "libvpx", "r")
        frame = next(f for p in container.demux(stream) if p.size for f in decoder.decode(p))
    assert frame.format.name == "yuva420p"
    alpha = frame.planes[3]
    data_a = bytes(alpha)
    assert data_a[5 * alpha.line_size + 300] < 16  # background corner
    assert data_a[120 * alpha.line_size + 160] > 240  # face


def test_webm_without_encoders_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(av, "codecs_available", {"libx264", "aac"})
    with pytest.raises(RuntimeError, match="libvpx"):
        MediaSession(320, 240, container="webm")


# ------------------------------------------------------------------------------------ cheap


def test_cheap_mode_is_valid_h264() -> None:
    with MediaSession(320, 240, cheap=True) as session:
        aus = session.render(bytes(1280 * 60))
        aus += session.render(bytes(1280 * 45 + 1))
    assert len(aus) == 106
    assert {7, 8, 5} <= set(nal_types(aus[0]))
    frames = decode_h264(aus)
    assert len(frames) == len(aus)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    assert keyframe_indexes(aus) == [0, 50, 100]  # gop 250 > loop: the loop's own GOP
    with MediaSession(320, 240, cheap=True) as other:  # loop is cached, not re-encoded
        assert other.render(bytes(1280 * 60)) == aus[:60]


def test_cheap_mode_honours_gop_dividing_the_loop() -> None:
    with MediaSession(320, 240, gop=25, cheap=True) as session:
        aus = session.render(bytes(1280 * 80))
    assert keyframe_indexes(aus) == [0, 25, 50, 75]
    assert len(decode_h264(aus)) == 80


def test_frame_bytes_pads_every_au() -> None:
    size = 16_000  # above any AU of a 320x240 loop
    with MediaSession(320, 240, cheap=True, frame_bytes=size) as session:
        aus = session.render(bytes(1280 * 55))
    assert {len(au) for au in aus} == {size}
    assert all(nal_types(au)[-1] == 12 for au in aus)
    assert len(decode_h264(aus)) == 55
    with MediaSession(320, 240, cheap=True) as session:
        raw = session.render(bytes(1280 * 55))
    with MediaSession(320, 240, cheap=True, frame_bytes=300) as session:
        aus = session.render(bytes(1280 * 55))
    assert len(raw[0]) > 300  # the keyframe is too big to pad: it stays as it is
    for before, after in zip(raw, aus, strict=True):
        assert after == (before if len(before) + 6 > 300 else pad_access_unit(before, 300))
        assert len(after) == (300 if len(before) + 6 <= 300 else len(before))
    assert len(decode_h264(aus)) == 55


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_cheap_mode_with_container(container: str) -> None:
    if container == "webm" and not {"libvpx-vp9", "libvpx"} & av.codecs_available:
        pytest.skip("PyAV lacks a VP8/VP9 encoder")
    pcm = synth_speech("你好，世界。欢迎。")
    with MediaSession(320, 240, container=container, cheap=True, frame_bytes=8000) as session:
        aus = session.render(pcm)
        data = session.produce()
    assert all(len(au) == 8000 for au in aus)
    vpx = "vp9" if "libvpx-vp9" in av.codecs_available else "vp8"
    check_file(data, len(aus), (320, 240), "h264" if container == "mp4" else vpx)


# ---------------------------------------------------------------------------- errors, misc


def test_errors() -> None:
    session = MediaSession(320, 240, container="mp4")
    with pytest.raises(RuntimeError, match="before anything"):
        session.produce()
    session.render(bytes(1280))
    session.produce()
    with pytest.raises(RuntimeError, match="after produce"):
        session.render(bytes(1280))
    with pytest.raises(RuntimeError, match="already"):
        session.produce()
    session.close()
    session.close()
    with pytest.raises(RuntimeError, match="closed"):
        session.render(bytes(1280))

    plain = MediaSession(320, 240)
    with pytest.raises(RuntimeError, match="container"):
        plain.produce()
    plain.close()

    unfinished = MediaSession(320, 240, container="mov")
    unfinished.render(bytes(1280 * 3))
    unfinished.close()  # discards the recording without raising

    with pytest.raises(ValueError, match="container"):
        MediaSession(320, 240, container="avi")
    with pytest.raises(ValueError, match="size"):
        MediaSession(8, 240)
    with pytest.raises(ValueError, match="gop"):
        MediaSession(320, 240, gop=0)


def test_sessions_run_in_parallel_threads() -> None:
    pcm = synth_speech("你好，世界。")
    results: dict[int, list[bytes]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with MediaSession(320, 240, gop=25, cheap=i % 2 == 1) as session:
                results[i] = session.render(pcm)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results[0] == results[2]  # encoding is deterministic
    for aus in results.values():
        assert len(decode_h264(aus)) == len(aus)
