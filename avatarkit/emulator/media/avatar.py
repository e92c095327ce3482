"""The avatar's pictures: a flat-shaded face whose mouth follows the speech, plus overlays.

Pure drawing into ``av.VideoFrame`` planes (BT.601 YUV, 4:2:0, optional alpha); no encoding.
Frames carry a visible frame counter and a progress bar, so a test can read back which
frame it decoded.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Final

import av

from avatarkit.emulator.media.timing import FPS

__all__ = ["Overlay"]

_MOUTH_LEVELS: Final = 12
_COUNTER_BITS: Final = 12
_BAR_PERIOD: Final = 10 * FPS  # the progress bar sweeps every 10 s


def _yuv(r: int, g: int, b: int, a: int = 255) -> tuple[int, int, int, int]:
    """BT.601 limited-range YUV (+ alpha) of an sRGB colour."""
    rr, gg, bb = r / 255, g / 255, b / 255
    y = 16 + 65.481 * rr + 128.553 * gg + 24.966 * bb
    u = 128 - 37.797 * rr - 74.203 * gg + 112.0 * bb
    v = 128 + 112.0 * rr - 93.786 * gg - 18.214 * bb
    return round(y), round(u), round(v), a


_BG: Final = _yuv(38, 56, 84, 0)  # transparent where the container supports alpha
_SHIRT: Final = _yuv(64, 104, 158)
_HAIR: Final = _yuv(58, 40, 32)
_SKIN: Final = _yuv(238, 198, 166)
_WHITE: Final = _yuv(245, 245, 245)
_PUPIL: Final = _yuv(40, 32, 36)
_LIPS: Final = _yuv(186, 78, 88)
_MOUTH: Final = _yuv(70, 18, 30)
_BAR_ON: Final = _yuv(118, 214, 140)
_BAR_OFF: Final = _yuv(24, 34, 54)
_BIT_ON: Final = _yuv(250, 230, 90)
_BIT_OFF: Final = _yuv(60, 70, 90)


class _Plane:
    """A window onto one picture plane: ``buf`` holds rows ``y0..y0+h`` cols ``x0..x0+w``."""

    __slots__ = ("buf", "h", "scale", "stride", "w", "x0", "y0")

    def __init__(
        self, buf: bytearray, stride: int, x0: int, y0: int, w: int, h: int, scale: float
    ) -> None:
        self.buf, self.stride, self.x0, self.y0, self.w, self.h = buf, stride, x0, y0, w, h
        self.scale = scale  # plane pixels per luma pixel (0.5 for 4:2:0 chroma)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, value: int) -> None:
        s = self.scale
        cx, cy, rx, ry = cx * s, cy * s, rx * s, ry * s
        if rx <= 0 or ry <= 0:
            return
        fill = bytes((value,)) * self.w
        for row in range(
            max(self.y0, math.floor(cy - ry)), min(self.y0 + self.h, math.ceil(cy + ry))
        ):
            dy = (row + 0.5 - cy) / ry
            if dy * dy >= 1.0:
                continue
            half = rx * math.sqrt(1.0 - dy * dy)
            a = max(self.x0, round(cx - half))
            b = min(self.x0 + self.w, round(cx + half))
            if b > a:
                off = (row - self.y0) * self.stride - self.x0
                self.buf[off + a : off + b] = fill[: b - a]

    def rect(self, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
        s = self.scale
        a = max(self.x0, round(x0 * s))
        b = min(self.x0 + self.w, round(x1 * s))
        if b <= a:
            return
        fill = bytes((value,)) * (b - a)
        for row in range(max(self.y0, round(y0 * s)), min(self.y0 + self.h, round(y1 * s))):
            off = (row - self.y0) * self.stride - self.x0
            self.buf[off + a : off + b] = fill


_Patch = tuple[int, int, bytes]  # (plane index, byte offset in plane, bytes)


class _Art:
    """Precomputed avatar planes for one size/format plus cached per-frame overlays."""

    def __init__(self, width: int, height: int, pix_fmt: str) -> None:
        self.width, self.height, self.pix_fmt = width, height, pix_fmt
        probe = av.VideoFrame(width, height, pix_fmt)
        self.line_sizes = tuple(p.line_size for p in probe.planes)
        self.dims = [(p.width, p.height) for p in probe.planes]
        self.scales = [p.width / width for p in probe.planes]
        self.nplanes = len(self.line_sizes)
        w, h = width, height
        # Geometry in luma pixels; the head fits portrait and landscape frames alike.
        unit = min(w, h / 1.4)
        self.cx = cx = w / 2
        self.cy = cy = h * 0.46
        self.rx = rx = 0.32 * unit
        self.ry = ry = 1.28 * rx
        self.mouth_cy = cy + 0.45 * ry
        self.mouth_rx = 0.36 * rx
        self.mouth_ry = 0.20 * ry
        self.lip = max(1.5, 0.035 * ry)
        self.eye_dx, self.eye_cy = 0.38 * rx, cy - 0.10 * ry
        self.eye_rx, self.eye_ry = 0.16 * rx, 0.11 * ry
        self.bar_h = max(2, round(h / 60)) & ~1
        self.bit = max(2, round(h / 48)) & ~1

        self.base: list[bytes] = []
        planes = self._full_planes()
        for i, pl in enumerate(planes):
            pl.rect(0, 0, w, h, _BG[i])
            pl.ellipse(cx, cy + 2.05 * ry, 1.75 * rx, 1.15 * ry, _SHIRT[i])  # shoulders
            pl.ellipse(cx, cy - 0.08 * ry, 1.06 * rx, 1.0 * ry, _HAIR[i])
            pl.ellipse(cx, cy + 0.04 * ry, rx, 0.96 * ry, _SKIN[i])
            pl.rect(0, h - self.bar_h, w, h, _BAR_OFF[i])
            for k in range(_COUNTER_BITS):  # unlit counter squares; frames light them in Y/U/V
                x = self.bit * (1 + 2 * k)
                pl.rect(x, self.bit, x + self.bit, 2 * self.bit, _BIT_OFF[i])
            self._eyes(pl, i, closed=False)
            self._mouth(pl, i, 0)
            self.base.append(bytes(pl.buf))

        self._mouth_patches: dict[int, list[_Patch]] = {}
        self._blink_patch = self._region_patch(
            cx - self.eye_dx - self.eye_rx - 2,
            self.eye_cy - self.eye_ry - 2,
            cx + self.eye_dx + self.eye_rx + 2,
            self.eye_cy + self.eye_ry + 2,
            lambda pl, i: self._eyes(pl, i, closed=True),
        )
        self._rows_on: list[bytes] = []
        self._rows_off: list[bytes] = []
        for i, (pw, _) in enumerate(self.dims):
            self._rows_on.append(bytes((_BAR_ON[i],)) * pw)
            self._rows_off.append(bytes((_BAR_OFF[i],)) * pw)

    def _full_planes(self) -> list[_Plane]:
        return [
            _Plane(bytearray(ls * ph), ls, 0, 0, pw, ph, s)
            for ls, (pw, ph), s in zip(self.line_sizes, self.dims, self.scales, strict=True)
        ]

    def _eyes(self, pl: _Plane, i: int, *, closed: bool) -> None:
        for sign in (-1, 1):
            ex = self.cx + sign * self.eye_dx
            if closed:
                pl.ellipse(ex, self.eye_cy, self.eye_rx + 1, self.eye_ry + 1, _SKIN[i])
                pl.ellipse(ex, self.eye_cy, self.eye_rx, max(1.0, self.eye_ry * 0.15), _PUPIL[i])
            else:
                pl.ellipse(ex, self.eye_cy, self.eye_rx, self.eye_ry, _WHITE[i])
                pl.ellipse(ex, self.eye_cy, self.eye_ry * 0.6, self.eye_ry * 0.6, _PUPIL[i])

    def _mouth(self, pl: _Plane, i: int, level: int) -> None:
        opening = self.mouth_ry * level / (_MOUTH_LEVELS - 1)
        mx, my = self.cx, self.mouth_cy
        pl.ellipse(mx, my, self.mouth_rx + 1, self.mouth_ry + self.lip + 1, _SKIN[i])
        pl.ellipse(mx, my, self.mouth_rx, opening + self.lip, _LIPS[i])
        if opening >= 1.0:
            pl.ellipse(mx, my, self.mouth_rx * 0.86, opening, _MOUTH[i])

    def _region_patch(self, x0: float, y0: float, x1: float, y1: float, paint: Any) -> list[_Patch]:
        """Repaint a luma-coordinate box on top of the base and return it as row patches."""
        patches: list[_Patch] = []
        for i in range(self.nplanes):
            s = self.scales[i]
            pw, ph = self.dims[i]
            ls = self.line_sizes[i]
            a, b = max(0, math.floor(x0 * s)), min(pw, math.ceil(x1 * s))
            top, bot = max(0, math.floor(y0 * s)), min(ph, math.ceil(y1 * s))
            if b <= a or bot <= top:
                continue
            w = b - a
            buf = bytearray()
            for row in range(top, bot):
                buf += self.base[i][row * ls + a : row * ls + b]
            pl = _Plane(buf, w, a, top, w, bot - top, s)
            paint(pl, i)
            for r in range(bot - top):
                patches.append((i, (top + r) * ls + a, bytes(buf[r * w : (r + 1) * w])))
        return patches

    def mouth_patch(self, level: int) -> list[_Patch]:
        got = self._mouth_patches.get(level)
        if got is None:
            rx = self.mouth_rx + 2
            ry = self.mouth_ry + self.lip + 2
            my = self.mouth_cy
            got = self._region_patch(
                self.cx - rx,
                my - ry,
                self.cx + rx,
                my + ry,
                lambda pl, i: self._mouth(pl, i, level),
            )
            self._mouth_patches[level] = got
        return got

    def frame(self, level: int, index: int, bar_period: int = _BAR_PERIOD) -> Any:
        """A new ``av.VideoFrame``: base picture + mouth + blink + counter + progress bar."""
        frame = av.VideoFrame(self.width, self.height, self.pix_fmt)
        views = [memoryview(p) for p in frame.planes]
        if tuple(p.line_size for p in frame.planes) != self.line_sizes:  # pragma: no cover
            raise RuntimeError("unexpected VideoFrame line sizes")
        for view, base in zip(views, self.base, strict=True):
            view[:] = base
        for i, off, data in self.mouth_patch(level):
            views[i][off : off + len(data)] = data
        if (index + 60) % 113 < 3:  # a short blink every ~4.5 s
            for i, off, data in self._blink_patch:
                views[i][off : off + len(data)] = data
        for i in range(min(3, self.nplanes)):
            pw, ph = self.dims[i]
            s, ls = self.scales[i], self.line_sizes[i]
            # Progress bar along the bottom edge.
            done = round(pw * ((index % bar_period) + 1) / bar_period)
            row = self._rows_on[i][:done] + self._rows_off[i][done:]
            for r in range(ph - round(self.bar_h * s), ph):
                views[i][r * ls : r * ls + pw] = row
            # Frame counter: one square per bit, LSB on the left, in the top-left corner.
            sq = round(self.bit * s)
            on, off_ = bytes((_BIT_ON[i],)) * sq, bytes((_BIT_OFF[i],)) * sq
            gap = bytes((_BG[i],)) * sq
            bits = b"".join((on if (index >> k) & 1 else off_) + gap for k in range(_COUNTER_BITS))[
                : pw - sq
            ]
            for r in range(sq, 2 * sq):
                views[i][r * ls + sq : r * ls + sq + len(bits)] = bits
        return frame


_art_cache: dict[tuple[int, int, str], _Art] = {}
_art_lock = threading.Lock()


def _art(width: int, height: int, pix_fmt: str) -> _Art:
    key = (width, height, pix_fmt)
    with _art_lock:
        got = _art_cache.get(key)
        if got is None:
            got = _art_cache[key] = _Art(width, height, pix_fmt)
        return got


def _mouth_level(rms: float) -> int:
    # Speech RMS spans roughly 0.01..0.2; a gentle curve keeps quiet syllables visible.
    x = max(0.0, min(1.0, (rms - 0.004) / 0.16))
    return round(math.pow(x, 0.7) * (_MOUTH_LEVELS - 1))


_OVERLAY_BORDER: Final = _yuv(245, 245, 245)
_OVERLAY_FILL: Final = _yuv(70, 150, 220)
_OVERLAY_MARK: Final = _yuv(250, 200, 60)


@dataclass(frozen=True, slots=True)
class Overlay:
    """A picture-in-picture box (an SSML image or video) shown over a range of frames."""

    first_frame: int
    end_frame: int  # exclusive
    left: int
    top: int
    width: int
    height: int


def _fill(
    view: memoryview, stride: int, scale: float, box: tuple[float, float, float, float], value: int
) -> None:
    ax, ay, bx, by = box
    a, b = round(ax * scale), round(bx * scale)
    if b <= a:
        return
    row_bytes = bytes((value,)) * (b - a)
    for row in range(round(ay * scale), round(by * scale)):
        view[row * stride + a : row * stride + b] = row_bytes


def _paint_overlay(frame: Any, box: Overlay, width: int, height: int) -> None:
    """A framed box with a sun in it: plainly "a picture" in the rendered video."""
    x0, y0 = max(0, box.left), max(0, box.top)
    x1, y1 = min(width, box.left + box.width), min(height, box.top + box.height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    border = max(2, min(x1 - x0, y1 - y0) // 20)
    sun = (x1 - x0) // 5
    for i, plane in enumerate(frame.planes[:3]):
        view, stride, scale = memoryview(plane), plane.line_size, 1.0 if i == 0 else 0.5
        _fill(view, stride, scale, (x0, y0, x1, y1), _OVERLAY_BORDER[i])
        _fill(
            view,
            stride,
            scale,
            (x0 + border, y0 + border, x1 - border, y1 - border),
            _OVERLAY_FILL[i],
        )
        top = y0 + border + sun // 2
        _fill(view, stride, scale, (x1 - 2 * sun, top, x1 - sun, top + sun), _OVERLAY_MARK[i])
