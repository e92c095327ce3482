"""The production session: PCM in, H.264 access units out, optionally a muxed file.

Everything here is synchronous and CPU-bound; the server calls it from worker threads
(``anyio.to_thread.run_sync``). PyAV releases the GIL inside the encoders, and the pure-Python
parts only concatenate precomputed byte strings, so several sessions can run side by side.
"""

from __future__ import annotations

import contextlib
import io
import threading
from array import array
from fractions import Fraction
from typing import Any, Final

import av

from avatarkit.emulator.media.avatar import (
    Overlay,
    _Art,
    _art,
    _mouth_level,
    _paint_overlay,
)
from avatarkit.emulator.media.encoders import (
    _LOOP_FRAMES,
    _TB_VIDEO,
    _h264_encoder,
    _Loop,
    _loop,
    _vpx_encoder,
    _webm_codec,
    pad_access_unit,
)
from avatarkit.emulator.media.speech import pcm_rms
from avatarkit.emulator.media.timing import (
    _BIG_ENDIAN,
    AUDIO_BYTES_PER_FRAME,
    FPS,
    FRAME_MS,
    SAMPLE_RATE,
)

__all__ = ["MediaSession"]

_CONTAINERS: Final = {"mp4": "mp4", "mov": "mov", "webm": "webm"}
_AUDIO_RATE: Final = 48_000  # AAC frames of 1024 samples are 21 ms here, < one video frame


class MediaSession:
    """Renders PCM into H.264 access units of an animated avatar; optionally records a file.

    Frames are ``width & ~1`` x ``height & ~1`` (4:2:0 needs even sizes, so an odd size is
    rounded down). ``render`` returns Annex-B AUs, one per 40 ms of audio (the tail is padded
    with silence), with SPS/PPS in-band on every keyframe. With ``container`` set to
    ``"mp4"``/``"mov"`` the same H.264 packets (encoded once) are muxed with AAC 48 kHz mono;
    ``"webm"`` records a separate VP9 (VP8 fallback) + Opus encode, with alpha where libvpx
    supports yuva420p (transparent background). ``cheap=True`` cycles a cached pre-encoded
    loop instead of encoding. Methods are thread-safe; instances are not meant to be shared.
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        gop: int = 250,
        container: str | None = None,
        cheap: bool = False,
        frame_bytes: int | None = None,
    ) -> None:
        if not (16 <= width <= 8192 and 16 <= height <= 8192):
            raise ValueError(f"unsupported video size {width}x{height}")
        if gop < 1:
            raise ValueError(f"gop must be >= 1, got {gop}")
        if container is not None and container not in _CONTAINERS:
            raise ValueError(f"unsupported container {container!r} (mp4, mov, webm or None)")
        if frame_bytes is not None and frame_bytes < 1:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self.width = width & ~1
        self.height = height & ~1
        self.gop = gop
        self.container = container
        self.cheap = cheap
        self.frame_bytes = frame_bytes
        self._lock = threading.Lock()
        self._frames = 0
        self._overlays: list[Overlay] = []
        self._samples = 0  # audio samples (16 kHz) handed to the audio encoder
        self._produced = False
        self._closed = False

        webm = _webm_codec() if container == "webm" else None

        self._h264: Any = None
        self._h264_loop: _Loop | None = None
        if cheap:
            # The loop's own GOP: `gop` when it divides the loop, else one IDR per loop.
            loop_gop = gop if _LOOP_FRAMES % gop == 0 else _LOOP_FRAMES
            self._h264_loop = _loop("h264", self.width, self.height, loop_gop)
        else:
            self._h264 = _h264_encoder(self.width, self.height, gop)
            self._art = _art(self.width, self.height, "yuv420p")

        self._out: Any = None
        self._buf: io.BytesIO | None = None
        self._vstream: Any = None
        self._astream: Any = None
        self._vpx: Any = None
        self._vpx_loop: _Loop | None = None
        self._vpx_art: _Art | None = None
        if container is None:
            return
        self._buf = io.BytesIO()
        self._out = av.open(self._buf, "w", format=_CONTAINERS[container])
        try:
            if webm is None:
                # Mux the very packets `render` returns; PyAV derives avcC from the first
                # AU's in-band SPS/PPS, and movenc rewrites Annex-B to length prefixes.
                self._vstream = self._out.add_mux_stream(
                    "h264", rate=FPS, width=self.width, height=self.height
                )
                # The "fast" coder is ~4x cheaper than the default twoloop, plenty for speech.
                self._astream = self._out.add_stream(
                    "aac", rate=_AUDIO_RATE, layout="mono", options={"aac_coder": "fast"}
                )
                self._astream.bit_rate = 48_000
            else:
                vname, aname = webm
                if cheap:
                    loop_gop = gop if _LOOP_FRAMES % gop == 0 else _LOOP_FRAMES
                    self._vpx_loop = _loop(vname, self.width, self.height, loop_gop)
                    alpha = _loop_alpha(self._vpx_loop)
                else:
                    self._vpx = _vpx_encoder(vname, self.width, self.height, gop)
                    self._vpx_art = _art(self.width, self.height, self._vpx.pix_fmt)
                    alpha = self._vpx.pix_fmt == "yuva420p"
                self._vstream = self._out.add_mux_stream(
                    "vp9" if vname == "libvpx-vp9" else "vp8",
                    rate=FPS,
                    width=self.width,
                    height=self.height,
                )
                if alpha:
                    self._vstream.metadata["alpha_mode"] = "1"  # matroska AlphaMode
                self._astream = self._out.add_stream(aname, rate=_AUDIO_RATE, layout="mono")
                self._astream.bit_rate = 48_000
        except BaseException:
            self._out.close()
            raise

    def add_overlay(
        self, start_ms: int, end_ms: int, *, left: int, top: int, width: int, height: int
    ) -> None:
        """Show a picture box from ``start_ms`` to ``end_ms`` of the session's timeline."""
        box = Overlay(
            start_ms // FRAME_MS,
            max(start_ms // FRAME_MS + 1, -(-end_ms // FRAME_MS)),
            left,
            top,
            width,
            height,
        )
        with self._lock:
            self._overlays = [o for o in self._overlays if o.end_frame > self._frames] + [box]

    @property
    def duration_ms(self) -> int:
        """Media rendered so far: 40 ms per AU (each render's audio tail is padded)."""
        return self._frames * FRAME_MS

    def render(self, pcm: bytes) -> list[bytes]:
        """H.264 Annex-B access units for ``pcm``: ``ceil(len(pcm) / 1280)`` of them."""
        with self._lock:
            if self._closed:
                raise RuntimeError("MediaSession is closed")
            if self._produced:
                raise RuntimeError("render() after produce()")
            count = -(-len(pcm) // AUDIO_BYTES_PER_FRAME)
            if count == 0:
                return []
            padded = bytes(pcm) + bytes(count * AUDIO_BYTES_PER_FRAME - len(pcm))
            aus, keys = self._render_video(padded, count)
            if self._out is not None:
                self._record(padded, aus, keys)
            self._frames += count
            if self.frame_bytes is not None:
                aus = [pad_access_unit(au, self.frame_bytes) for au in aus]
            return aus

    def _render_video(self, padded: bytes, count: int) -> tuple[list[bytes], list[bool]]:
        if self._h264_loop is not None:
            loop = self._h264_loop
            idx = [(self._frames + k) % len(loop.aus) for k in range(count)]
            return [loop.aus[j] for j in idx], [loop.keys[j] for j in idx]
        aus: list[bytes] = []
        keys: list[bool] = []
        step = AUDIO_BYTES_PER_FRAME
        for k in range(count):
            index = self._frames + k
            level = _mouth_level(pcm_rms(padded[k * step : (k + 1) * step]))
            frame = self._art.frame(level, index)
            for box in self._overlays:
                if box.first_frame <= index < box.end_frame:
                    _paint_overlay(frame, box, self.width, self.height)
            frame.pts = index
            packets = self._h264.encode(frame)
            if len(packets) != 1:  # pragma: no cover - guaranteed by zerolatency settings
                raise RuntimeError(f"libx264 returned {len(packets)} packets for one frame")
            aus.append(bytes(packets[0]))
            keys.append(bool(packets[0].is_keyframe))
            if self._vpx is not None and self._vpx_art is not None:
                vframe = self._vpx_art.frame(level, index)
                vframe.pts = index
                self._mux_vpx(self._vpx.encode(vframe))
        return aus, keys

    def _record(self, padded: bytes, aus: list[bytes], keys: list[bool]) -> None:
        count = len(aus)
        if self._vpx_loop is not None:
            loop = self._vpx_loop
            for k in range(count):
                index = self._frames + k
                j = index % len(loop.aus)
                self._mux_video(loop.aus[j], index, loop.keys[j], loop.packets[j])
        elif self._vpx is None:  # mp4/mov: the H.264 AUs themselves
            for k, au in enumerate(aus):
                self._mux_video(au, self._frames + k, keys[k], None)
        samples = len(padded) // 2
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        frame.pts = self._samples
        pcm = padded
        if _BIG_ENDIAN:
            swapped = array("h", padded)
            swapped.byteswap()
            pcm = swapped.tobytes()
        memoryview(frame.planes[0])[: len(pcm)] = pcm
        self._samples += samples
        self._out.mux(self._astream.encode(frame))

    def _mux_video(self, data: bytes, index: int, key: bool, template: Any) -> None:
        packet = av.Packet(data)
        if template is not None:  # VPX alpha lives in matroska BlockAdditional side data
            for sd in template.iter_sidedata():
                packet.set_sidedata(sd)
        packet.stream = self._vstream
        packet.time_base = _TB_VIDEO
        packet.pts = packet.dts = index
        packet.duration = 1
        packet.is_keyframe = key
        self._out.mux(packet)

    def _mux_vpx(self, packets: list[Any]) -> None:
        for p in packets:
            self._mux_video(bytes(p), int(p.pts), bool(p.is_keyframe), p)

    def produce(self) -> bytes:
        """Finish and return the recorded file (only with ``container``; once)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("MediaSession is closed")
            if self._produced:
                raise RuntimeError("produce() was already called")
            if self._out is None or self._buf is None:
                raise RuntimeError("produce() needs a container (mp4, mov or webm)")
            if self._frames == 0:
                raise RuntimeError("produce() before anything was rendered")
            if self._vpx is not None:
                self._mux_vpx(self._vpx.encode(None))
            self._out.mux(self._astream.encode(None))
            self._out.close()
            data = self._buf.getvalue()
            self._produced = True
            self._release()
            return data

    def close(self) -> None:
        """Free encoder/container resources; idempotent, fine after :meth:`produce`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._out is not None:
                # An unfinished recording is being discarded anyway.
                with contextlib.suppress(av.FFmpegError):
                    self._out.close()
            self._release()

    def _release(self) -> None:
        # PyAV frees codec contexts when the last reference goes.
        self._out = self._buf = self._vstream = self._astream = None
        self._h264 = self._vpx = None

    def __enter__(self) -> MediaSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _loop_alpha(loop: _Loop) -> bool:
    return any(
        sd.data_type == "matroska_block_additional" for sd in loop.packets[0].iter_sidedata()
    )
