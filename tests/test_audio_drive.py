"""Streaming audio drive: the pure converter and re-chunker, then end to end."""

from __future__ import annotations

import array
import itertools
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from avatarkit import ValidationError, events
from avatarkit.emulator import Emulator
from avatarkit.emulator.server import serve_asgi
from avatarkit.tta import frames
from avatarkit.tta.audio import SECOND_BYTES, PcmConverter, Rechunker
from tests.audio_helpers import tone, wav_bytes
from tests.conftest import SMALL_VIDEO, session_for

# -- pure parts -------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([(8000, 1), (22050, 2), (44100, 2), (48000, 1), (16000, 2)]),
    st.lists(st.integers(1, 7000), min_size=1, max_size=30),
)
def test_conversion_does_not_depend_on_how_the_input_is_split(
    layout: tuple[int, int], cuts: list[int]
) -> None:
    rate, channels = layout
    data = tone(0.3, rate, channels)
    whole = PcmConverter(rate, channels).feed(data)
    pieces, converter, offset = b"", PcmConverter(rate, channels), 0
    for cut in cuts:
        pieces += converter.feed(data[offset : offset + cut])
        offset += cut
    pieces += converter.feed(data[offset:])
    assert pieces == whole
    assert abs(len(whole) // 2 - int(0.3 * 16000)) <= 2


def test_conversion_keeps_the_pitch() -> None:
    """A 440 Hz tone at 44.1 kHz stereo is still 440 Hz at 16 kHz (zero crossings)."""
    out = array.array("h")
    out.frombytes(PcmConverter(44100, 2).feed(tone(1.0, 44100, 2, hz=440)))
    crossings = sum(1 for a, b in itertools.pairwise(out) if (a < 0) != (b < 0))
    assert abs(crossings / 2 - 440) <= 3


@pytest.mark.parametrize(
    ("rate", "channels", "field"),
    [(3999, 1, "sample_rate"), (True, 1, "sample_rate"), (16000, 3, "channels")],
)
def test_converter_arguments(rate: object, channels: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        PcmConverter(rate, channels)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("size", "frames_", "tail"),
    [
        (0, [], 0),
        (1, [], 0),
        (31_998, [], 31_998),
        (32_000, [32_000], 0),
        (32_002, [32_000], 2),
        (63_998, [32_000], 31_998),
        (64_000, [32_000, 32_000], 0),
    ],
)
def test_rechunking_around_one_second(size: int, frames_: list[int], tail: int) -> None:
    chunker = Rechunker()
    assert [len(c) for c in chunker.feed(bytes(size))] == frames_
    assert len(chunker.tail()) == tail


@given(st.lists(st.integers(0, 50_000), max_size=20))
def test_rechunking_properties(pieces: list[int]) -> None:
    chunker, out = Rechunker(), []
    data = b"".join(bytes([i % 251]) * n for i, n in enumerate(pieces))
    offset = 0
    for n in pieces:
        out += chunker.feed(data[offset : offset + n])
        offset += n
    tail = chunker.tail()
    assert all(len(c) == SECOND_BYTES for c in out)
    assert len(tail) < SECOND_BYTES
    assert b"".join(out) + tail == data[: len(data) // 2 * 2]


# -- end to end -------------------------------------------------------------

pytestmark_e2e = pytest.mark.anyio


def played_audio(got: list[events.Event]) -> bytes:
    return b"".join(bytes(e.pcm) for e in got if isinstance(e, events.AudioChunk))


@pytestmark_e2e
async def test_drive_pcm_bytes(emulator: Emulator) -> None:
    pcm = tone(2.5, 16000, 1)
    async with session_for(emulator) as av:
        async with av.tta.open(role="GuoXiaoyuan", input_mode="audio", video=SMALL_VIDEO) as s:
            drive = s.drive_audio(pcm)
            got = await drive.collect()
    assert isinstance(got[0], events.VoiceStart) and isinstance(got[-1], events.VoiceEnd)
    assert played_audio(got) == pcm  # the avatar speaks exactly what it was sent
    assert (drive.frames_sent, drive.bytes_sent) == (3, len(pcm))  # 1 s, 1 s, 0.5 s tail
    video = [e for e in got if isinstance(e, events.VideoChunk)]
    assert len(video) == math.ceil(32000 / 1280) * 2 + math.ceil(16000 / 1280)


@pytestmark_e2e
async def test_a_ten_second_wav_at_44k_stereo(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_bytes(tone(10.0, 44100, 2), 44100, 2))
    async with session_for(emulator) as av:
        async with av.tta.open(role="GuoXiaoyuan", input_mode="audio", video=SMALL_VIDEO) as s:
            drive = s.drive_audio(path)
            got = await drive.collect()
    audio = played_audio(got)
    assert abs(len(audio) - 10 * 32000) <= 8  # 16 kHz mono, 10 s
    assert drive.frames_sent == 11  # ten 1-second frames and the tail
    assert isinstance(got[-1], events.VoiceEnd)


@pytestmark_e2e
async def test_drive_from_an_async_source_in_odd_pieces(emulator: Emulator) -> None:
    data = tone(1.7, 48000, 1)

    async def microphone() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 3333):
            yield data[i : i + 3333]

    async with session_for(emulator) as av:
        async with av.tta.open(role="GuoXiaoyuan", input_mode="audio", video=SMALL_VIDEO) as s:
            drive = s.drive_audio(microphone(), sample_rate=48000)
            got = await drive.collect()
            # the stream is still usable afterwards
            again = await s.drive_audio(tone(0.2, 16000, 1)).collect()
    assert abs(len(played_audio(got)) - int(1.7 * 32000)) <= 8
    assert isinstance(again[-1], events.VoiceEnd)


@pytestmark_e2e
async def test_drive_needs_audio_mode_and_a_wav(emulator: Emulator, tmp_path: Path) -> None:
    async with session_for(emulator) as av:
        async with av.tta.open(role="GuoXiaoyuan", video=SMALL_VIDEO) as s:
            with pytest.raises(ValidationError) as info:
                s.drive_audio(b"\x00\x00")
            assert info.value.field == "input_mode"
            with pytest.raises(ValidationError):
                s.say_audio("http://127.0.0.1/a.wav", format="wav")
        async with av.tta.open(role="GuoXiaoyuan", input_mode="audio", video=SMALL_VIDEO) as s:
            (tmp_path / "x.wav").write_bytes(b"not a wav")
            with pytest.raises(ValidationError, match="not a PCM WAV"):
                await s.drive_audio(tmp_path / "x.wav").collect()
            with pytest.raises(ValidationError) as info:
                s.drive_audio(b"", sample_rate=100)
            assert info.value.field == "sample_rate"


@pytestmark_e2e
async def test_emulator_refuses_frames_under_one_second(emulator: Emulator) -> None:
    url = f"{emulator.endpoints.tta}/2d?appid={emulator.appid}&access_token={emulator.token}"
    async with websockets.connect(url, additional_headers={"Resource-Id": "volc.avatar.2d"}) as ws:
        await ws.send(frames.encode_open('{"role":"GuoXiaoyuan","input_mode":"audio"}'))
        assert frames.decode(await ws.recv()) == events.Status(1000, "session opened", 0)
        await ws.send(b"|CTL|08|" + bytes(16_000))
        refused = frames.decode(await ws.recv())
        assert isinstance(refused, events.Status) and (refused.code, refused.type) == (1001, 2)
        assert "at least 1 s" in refused.message
        await ws.send(b"|CTL|08|" + bytes(32_001))
        odd = frames.decode(await ws.recv())
        assert isinstance(odd, events.Status) and "even length" in odd.message
        await ws.send(frames.encode_audio(bytes(1280), last=True))  # a short tail is fine
        kinds = []
        while not kinds or kinds[-1] is not events.VoiceEnd:
            kinds.append(type(frames.decode(await ws.recv())))
        assert kinds[0] is events.VoiceStart


@pytestmark_e2e
async def test_say_audio_from_a_url_with_a_subtitle(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    clip = wav_bytes(tone(1.2, 22050, 1), 22050, 1)

    async def serve(request: object) -> Response:
        return Response(clip, media_type="audio/wav")

    app = Starlette(routes=[Route("/clip.wav", serve)])
    async with serve_asgi(app) as base, Emulator() as emu, session_for(emu) as av:
        async with av.tta.open(
            role="GuoXiaoyuan",
            input_mode="audio",
            codec="mp4",
            video={**SMALL_VIDEO, "subtitle_control": True},
        ) as s:
            got = await s.say_audio(
                f"{base}/clip.wav", format="wav", subtitle="今天天气真不错"
            ).collect()
            video = await s.finish()
        assert isinstance(got[-1], events.VoiceEnd)
        assert abs(len(played_audio(got)) - int(1.2 * 32000)) <= 1280  # padded to 40 ms
        assert [(x.text, x.start_ms) for x in video.subtitles] == [("今天天气真不错", 0)]
        assert video.subtitles[0].end_ms == 1200  # the audio's length (30 frames of 40 ms)
        async with av.tta.open(role="GuoXiaoyuan", input_mode="audio") as s:
            from avatarkit import ServiceError

            with pytest.raises(ServiceError) as info:
                await s.say_audio("http://203.0.113.9/x.wav", format="wav").collect()
            assert info.value.code == 1001 and "loopback" in str(info.value)
