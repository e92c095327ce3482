"""The emulator's live output (doc 001 §4 "实时直播"): pushed to a loopback RTMP listener.

The listener is FFmpeg's own RTMP server (PyAV in listen mode) in a worker thread. A
TCP relay in front of it is listening before the publisher starts, so the publisher
never races the listener's bind: the relay connects on to the listener when the
publisher arrives, retrying only while the listener is not yet listening.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest

from avatarkit.emulator.media import AUDIO_BYTES_PER_FRAME, FRAME_MS, MediaSession, synth_speech
from avatarkit.emulator.rtmp import AAC_FRAME, AAC_RATE, RtmpPublisher, _Backlog, _FlvPush, is_idr

pytestmark = pytest.mark.anyio

TEXT = "你好，欢迎来到直播间！今天我们一起看看数字人的实时直播。"
WIDTH, HEIGHT = 320, 240
AAC_PACKET_MS = AAC_FRAME * 1000 / AAC_RATE  # 21.3 ms
WAIT = 15.0  # seconds: the bound on every wait here


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class _Track:
    """What arrived of one stream: codec, packet times and what the packets decode to."""

    codec: str = ""
    sample_rate: int = 0
    pts_ms: list[float] = field(default_factory=list)
    keyframes: list[bool] = field(default_factory=list)
    pictures: list[tuple[int, int]] = field(default_factory=list)  # decoded (width, height)
    samples: int = 0  # decoded audio samples
    energy: float = 0.0  # their sum of squares


def _ms(packet: Any) -> float:
    return float(packet.pts * packet.time_base * 1000)


def _floats(frame: Any) -> array[float]:
    """The samples of a decoded mono AAC frame (float planar)."""
    assert frame.format.name == "fltp" and len(frame.planes) == 1
    return array("f", bytes(frame.planes[0]))[: frame.samples]


class _Listener:
    """FFmpeg's RTMP server in listen mode: accepts one stream and decodes it as it comes.

    Everything is read inside the thread: PyAV's packets and streams must not outlive
    their container.
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self.tracks: dict[str, _Track] = {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        url = f"rtmp://127.0.0.1:{self.port}/live/stream"
        try:
            # timeout: bounds the wait for the publisher and every read after it.
            with av.open(
                url, "r", format="flv", options={"listen": "1", "timeout": "10"}, timeout=WAIT
            ) as container:
                for stream in container.streams:
                    self.tracks[stream.type] = _Track(
                        stream.codec_context.name, getattr(stream.codec_context, "sample_rate", 0)
                    )
                try:
                    for packet in container.demux():
                        self._take(packet)
                except (av.error.EOFError, av.error.OSError):
                    pass  # FFmpeg's RTMP server reports the publisher's goodbye as EIO
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def _take(self, packet: Any) -> None:
        track = self.tracks[packet.stream.type]
        if packet.size:
            track.pts_ms.append(_ms(packet))
            track.keyframes.append(bool(packet.is_keyframe))
        for frame in packet.decode():  # the empty packet at the end flushes the decoder
            if packet.stream.type == "video":
                track.pictures.append((frame.width, frame.height))
            else:
                values = _floats(frame)
                track.samples += frame.samples
                track.energy += math.fsum(v * v for v in values)

    def join(self) -> None:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the RTMP listener did not finish"
        if self.error is not None:
            raise self.error


class _Relay:
    """A TCP relay that is listening as soon as it exists, in front of ``upstream``."""

    def __init__(self, upstream: int) -> None:
        self._upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(WAIT)
        self.port: int = self._server.getsockname()[1]
        self._threads = [threading.Thread(target=self._run, daemon=True)]
        self._threads[0].start()

    def _connect_upstream(self) -> socket.socket:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self._upstream), timeout=WAIT)
            except ConnectionRefusedError:  # the listener thread has not bound yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _run(self) -> None:
        with self._server:
            client, _ = self._server.accept()
        client.settimeout(WAIT)
        upstream = self._connect_upstream()
        for src, dst in ((client, upstream), (upstream, client)):
            thread = threading.Thread(target=self._pipe, args=(src, dst), daemon=True)
            self._threads.append(thread)
            thread.start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def join(self) -> None:
        for thread in list(self._threads):
            thread.join(WAIT)


def _speech_media(text: str) -> tuple[list[bytes], bytes]:
    """What a TTA session sends for ``text``: its H.264 access units and its PCM."""
    pcm = synth_speech(text)
    with MediaSession(WIDTH, HEIGHT) as session:
        return session.render(pcm), pcm


def _feed(publisher: RtmpPublisher, aus: list[bytes], pcm: bytes, batch: int = 10) -> None:
    """In the order the session sends them: ten frames of video, then their audio."""
    step = batch * AUDIO_BYTES_PER_FRAME
    for start in range(0, len(aus), batch):
        for au in aus[start : start + batch]:
            publisher.feed_video(au)
        publisher.feed_audio(
            pcm[start * AUDIO_BYTES_PER_FRAME : start * AUDIO_BYTES_PER_FRAME + step]
        )


async def test_pushes_h264_and_aac_lasting_what_was_fed() -> None:
    aus, pcm = _speech_media(TEXT)
    listener = _Listener()
    relay = _Relay(listener.port)
    async with RtmpPublisher(
        f"rtmp://127.0.0.1:{relay.port}/live/stream", width=WIDTH, height=HEIGHT
    ) as publisher:
        _feed(publisher, aus, pcm)
    listener.join()
    relay.join()

    assert publisher.failure is None
    assert publisher.connected
    assert publisher.dropped_video_frames == publisher.dropped_audio_ms == 0
    assert set(listener.tracks) == {"video", "audio"}
    video, audio = listener.tracks["video"], listener.tracks["audio"]
    assert (video.codec, audio.codec, audio.sample_rate) == ("h264", "aac", AAC_RATE)

    # Video: every access unit arrived, one frame apart, starting at an IDR, and
    # decodes to the avatar at the fed size.
    assert len(video.pts_ms) == len(aus)
    start = video.pts_ms[0]  # media time 0 on the stream's clock
    assert [round(t - start) for t in video.pts_ms] == [i * FRAME_MS for i in range(len(aus))]
    assert video.keyframes[0]
    assert video.pictures == [(WIDTH, HEIGHT)] * len(aus)

    # Audio: ends where the fed PCM ends, within one AAC packet; starts at most one
    # packet (the encoder's priming) before the video; decodes to speech, not silence.
    fed_ms = len(pcm) / 32
    audio_end = audio.pts_ms[-1] + AAC_PACKET_MS - start
    assert abs(audio_end - fed_ms) <= AAC_PACKET_MS, (audio_end, fed_ms)
    assert -AAC_PACKET_MS - 1 <= audio.pts_ms[0] - start <= 0
    assert audio.samples == len(audio.pts_ms) * AAC_FRAME
    assert math.sqrt(audio.energy / audio.samples) > 0.02


async def test_a_refused_address_is_logged_and_readable_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aus, pcm = _speech_media("你好。")
    port = _free_port()  # nothing listens there
    caplog.set_level(logging.WARNING, logger="avatarkit.emulator.rtmp")
    publisher = RtmpPublisher(
        f"rtmp://127.0.0.1:{port}/live/streamkey?auth=SECRET-TOKEN", width=WIDTH, height=HEIGHT
    )
    assert len(pcm) % AUDIO_BYTES_PER_FRAME  # the last frame's audio is short
    for _ in range(2):  # two utterances, as the session feeds them: no error here
        publisher.feed(aus, pcm)
    # feed() pads each render's audio tail, so the two clocks stay together.
    assert publisher.audio_duration_ms == publisher.duration_ms == 2 * len(aus) * FRAME_MS
    await publisher.aclose()

    assert publisher.failure is not None
    assert not publisher.connected
    assert "SECRET" not in publisher.failure and "streamkey" not in publisher.failure
    lines = [r.getMessage() for r in caplog.records if r.name == "avatarkit.emulator.rtmp"]
    assert len(lines) == 1, lines
    assert f"rtmp://127.0.0.1:{port}" in lines[0]
    assert publisher.failure in lines[0]
    assert "SECRET" not in lines[0] and "streamkey" not in lines[0]
    with pytest.raises(RuntimeError, match="after close"):
        publisher.feed_video(aus[0])


def test_the_address_must_be_rtmp() -> None:
    with pytest.raises(ValueError, match=r"rtmp:// or rtmps://") as info:
        RtmpPublisher("http://example.com/live/key?sig=SECRET", width=WIDTH, height=HEIGHT)
    assert "SECRET" not in str(info.value) and "/live/key" not in str(info.value)


def test_idr_detection_on_the_emulators_own_access_units() -> None:
    aus, _ = _speech_media("你好。")
    assert [is_idr(au) for au in aus[:3]] == [True, False, False]
    assert not is_idr(b"")


def test_a_full_backlog_drops_video_up_to_the_next_idr_and_audio_by_chunk() -> None:
    backlog = _Backlog(limit_frames=2, limit_samples=100)
    offers = [(0, True), (1, False), (2, False), (3, False), (4, True)]
    accepted = [backlog.offer_video(i, b"au", key) for i, key in offers]
    # 2 is refused (full), 3 too (a P frame after a gap), 4 too (an IDR, but still full).
    assert accepted == [True, True, False, False, False]
    assert backlog.dropped_frames == 3 and backlog.overflows == 1
    taken = backlog.take()
    assert taken is not None and taken.position == 0
    assert not backlog.offer_video(5, b"au", False)  # room now, but still no IDR
    assert backlog.offer_video(6, b"au", True)  # the IDR ends the gap
    assert backlog.offer_video(7, b"au", False) is False  # full again: a new episode
    assert backlog.overflows == 2

    assert backlog.offer_audio(0, bytes(160))  # 80 samples
    assert not backlog.offer_audio(80, bytes(60))  # 30 more would exceed 100
    assert backlog.offer_audio(110, bytes(40))  # 20 fit
    assert backlog.dropped_samples == 30
    backlog.finish()
    assert not backlog.offer_audio(130, bytes(2))
    kinds = []
    while (message := backlog.take()) is not None:
        kinds.append((message.kind, message.position))
    assert kinds == [(b"V", 1), (b"V", 6), (b"A", 0), (b"A", 110)]


def test_the_pusher_starts_at_an_idr_and_fills_audio_gaps_with_silence(tmp_path: Path) -> None:
    """The child's muxer, writing a file instead of a socket (the same FLV)."""
    aus, pcm = _speech_media(TEXT)
    out = tmp_path / "live.flv"
    push = _FlvPush(str(out), WIDTH, HEIGHT, 25, 16_000)
    push.audio(0, pcm[:3200])  # 100 ms before any video: held for the stream's start
    push.video(0, aus[1], False)  # not an IDR: a stream cannot start here
    assert not push.started
    for i, au in enumerate(aus):
        push.video(i, au, is_idr(au))
    # A dropped chunk upstream: the next audio starts 1 s later than the last ended.
    push.audio(16_000 + 1_600, pcm[3200:6400])
    push.close()

    with av.open(str(out)) as container:  # read inside: packets must not outlive it
        video_ms = [_ms(p) for p in container.demux(video=0) if p.size]
    with av.open(str(out)) as container:
        audio = [p for p in container.demux(audio=0) if p.size]
        audio_ms = [_ms(p) for p in audio]
        samples = [f for p in audio for f in p.decode()]
    assert len(video_ms) == len(aus)
    end_ms = audio_ms[-1] + AAC_PACKET_MS
    assert abs(end_ms - video_ms[0] - 1200) <= AAC_PACKET_MS  # 100 ms + 1 s silence + 100 ms
    # The gap decodes as silence: the middle of it is (near) zero.
    pcm_out = array("f")
    for frame in samples:
        pcm_out.extend(_floats(frame))
    middle = pcm_out[int(0.5 * AAC_RATE) : int(0.9 * AAC_RATE)]
    assert max(abs(v) for v in middle) < 1e-3


async def test_a_session_with_an_rtmp_config_pushes_what_it_speaks() -> None:
    """End to end: the SDK opens an rtmp session on the emulator, which pushes it live."""
    from avatarkit import events
    from avatarkit.emulator import Emulator

    listener = _Listener()
    relay = _Relay(listener.port)
    addr = f"rtmp://127.0.0.1:{relay.port}/live/stream"
    async with Emulator() as emu, emu.session() as av:
        async with av.tta.open(
            role="GuoXiaoyuan",
            video={"video_width": WIDTH, "video_height": HEIGHT},
            rtmp={"addr": addr, "live_id": "stream"},
        ) as stream:
            got = await stream.say(TEXT).collect()
    listener.join()
    relay.join()
    spoken_ms = sum(len(e.pcm) for e in got if isinstance(e, events.AudioChunk)) / 32
    frames_sent = sum(isinstance(e, events.VideoChunk) for e in got)
    assert set(listener.tracks) == {"video", "audio"}
    video, audio = listener.tracks["video"], listener.tracks["audio"]
    assert (video.codec, audio.codec) == ("h264", "aac")
    assert len(video.pts_ms) == frames_sent > 0  # every frame spoken was pushed
    assert video.pictures and set(video.pictures) == {(WIDTH, HEIGHT)}
    start = video.pts_ms[0]
    audio_end = audio.pts_ms[-1] + AAC_PACKET_MS - start
    video_end = video.pts_ms[-1] + FRAME_MS - start
    assert abs(video_end - frames_sent * FRAME_MS) < 1
    assert abs(audio_end - spoken_ms) <= FRAME_MS + AAC_PACKET_MS, (audio_end, spoken_ms)
