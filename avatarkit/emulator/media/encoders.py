"""Encoders: H.264 (libx264, zero latency, SPS/PPS in-band), VP9/VP8 for webm, cheap loops.

Cheap mode cycles a loop of pre-encoded frames per (codec, size, GOP), encoded once per
process, so load tests do not measure the encoder.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import av

from avatarkit.emulator.media.avatar import _MOUTH_LEVELS, _art
from avatarkit.emulator.media.timing import FPS

__all__ = ["pad_access_unit"]

_FILLER_HEAD: Final = b"\x00\x00\x00\x01\x0c"  # start code + NAL type 12 (filler data)


def pad_access_unit(au: bytes, size: int) -> bytes:
    """Append a filler-data NAL so ``len(result) == size``; ``au`` itself if it can't fit."""
    extra = size - len(au) - 6
    if extra < 0:
        return au
    return b"".join((au, _FILLER_HEAD, b"\xff" * extra, b"\x80"))


_TB_VIDEO: Final = Fraction(1, FPS)


def _h264_encoder(width: int, height: int, gop: int) -> Any:
    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = _TB_VIDEO
    ctx.framerate = Fraction(FPS)
    ctx.gop_size = gop
    ctx.max_b_frames = 0
    ctx.thread_count = 1
    # zerolatency: no lookahead/B-frames, so every frame in gives exactly one AU out.
    # repeat-headers: SPS/PPS in-band on every IDR; scenecut=0: keyframes only every `gop`.
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "crf": "23",
        "x264-params": f"keyint={gop}:scenecut=0:repeat-headers=1:bframes=0",
    }
    return ctx


def _webm_codec() -> tuple[str, str]:
    """(video encoder, audio encoder) for webm, preferring VP9 (faster here than VP8)."""
    have = av.codecs_available
    video = next((c for c in ("libvpx-vp9", "libvpx") if c in have), None)
    audio = next((c for c in ("libopus", "libvorbis") if c in have), None)
    if video is None or audio is None:
        missing = [
            what
            for what, found in (("libvpx-vp9/libvpx", video), ("libopus/libvorbis", audio))
            if found is None
        ]
        raise RuntimeError(f"webm output needs encoders missing from PyAV: {', '.join(missing)}")
    return video, audio


def _vpx_encoder(name: str, width: int, height: int, gop: int) -> Any:
    ctx: Any = av.CodecContext.create(name, "w")
    fmts = {f.name for f in ctx.codec.video_formats or ()}
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuva420p" if "yuva420p" in fmts else "yuv420p"
    ctx.time_base = _TB_VIDEO
    ctx.framerate = Fraction(FPS)
    ctx.gop_size = gop
    ctx.thread_count = 1
    ctx.bit_rate = max(300_000, width * height)  # ~1 bit/pixel/s: plenty for flat art
    opts = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    if name == "libvpx-vp9":
        opts["row-mt"] = "0"
    ctx.options = opts
    return ctx


@dataclass(frozen=True, slots=True)
class _Loop:
    """A pre-encoded closed loop of frames for cheap mode (starts with a keyframe)."""

    aus: tuple[bytes, ...]
    keys: tuple[bool, ...]
    packets: tuple[Any, ...]  # original av.Packets (VPX only: alpha travels as side data)


_LOOP_FRAMES: Final = 50
_loop_cache: dict[tuple[str, int, int, int], _Loop] = {}
_loop_lock = threading.Lock()


def _loop_levels() -> Iterator[int]:
    # A plausible talking pattern: a few open-close cycles with pauses.
    for i in range(_LOOP_FRAMES):
        phase = (i % 25) / 25
        talk = 0.0 if phase > 0.8 else abs(math.sin(phase * math.pi * 5))
        yield round(talk * (_MOUTH_LEVELS - 1))


def _loop(codec: str, width: int, height: int, gop: int) -> _Loop:
    key = (codec, width, height, gop)
    with _loop_lock:  # encode each loop once even if many sessions start together
        got = _loop_cache.get(key)
        if got is not None:
            return got
        if codec == "h264":
            enc = _h264_encoder(width, height, gop)
        else:
            enc = _vpx_encoder(codec, width, height, gop)
        art = _art(width, height, enc.pix_fmt)
        packets: list[Any] = []
        for i, level in enumerate(_loop_levels()):
            frame = art.frame(level, i, _LOOP_FRAMES)
            frame.pts = i
            packets.extend(enc.encode(frame))
        packets.extend(enc.encode(None))
        if len(packets) != _LOOP_FRAMES or not packets[0].is_keyframe:  # pragma: no cover
            raise RuntimeError(f"{codec} loop encoder returned {len(packets)} packets")
        got = _Loop(
            tuple(bytes(p) for p in packets),
            tuple(bool(p.is_keyframe) for p in packets),
            tuple(packets) if codec != "h264" else (),
        )
        _loop_cache[key] = got
        return got
