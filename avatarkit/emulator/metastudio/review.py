"""Automatic review of the training video (doc 003 table 6), probed with PyAV.

Doc 003, ``training_video_upload_url``: "视频必须是1080p或者4K分辨率（横、竖屏皆可）
的mp4格式，视频长度须大于等于3分钟且小于等于10分钟，否则审核会不通过" — mp4,
1080p or 4K (landscape or portrait), at least 3 and at most 10 minutes, else
the review fails.  The SDK's OperationLogInfo names the four resolutions
(error 44005901): 1920x1080, 1080x1920, 3840x2160, 2160x3840.

:func:`review_video` answers ``None`` (passes) or a :class:`Verdict`: the
reason in words a user can act on, and the documented error code when there
is one (only the resolution has one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, NamedTuple

__all__ = ["DURATION_SECONDS", "RESOLUTIONS", "RESOLUTION_ERROR", "Verdict", "review_video"]

#: The four resolutions, with the model resolution each trains (Show…Response.model_resolution).
RESOLUTIONS: Final = {
    (1920, 1080): "1080P",
    (1080, 1920): "1080P",
    (3840, 2160): "4K",
    (2160, 3840): "4K",
}
DURATION_SECONDS: Final = (180.0, 600.0)  # "大于等于3分钟且小于等于10分钟"
RESOLUTION_ERROR: Final = "44005901"  # OperationLogInfo.error_code, the SDK's model
_QUICKTIME_BRANDS: Final = frozenset({"qt"})  # a .mov shares the demuxer, not the format


class Verdict(NamedTuple):
    """A failed review: why (for the user), and the documented code if any."""

    reason: str
    error_code: str | None = None


class Probe(NamedTuple):
    """What review found in a video that passed (``model_resolution``)."""

    resolution: str


def review_video(path: Path) -> Verdict | Probe:
    """Probe ``path`` (blocking: call from a worker thread)."""
    import av  # the emulator extra; imported here so the models import without it

    try:
        with av.open(str(path)) as container:
            formats = set(container.format.name.split(","))
            brand = str(container.metadata.get("major_brand", "")).strip().lower()
            if "mp4" not in formats or brand in _QUICKTIME_BRANDS:
                return Verdict(
                    f"training video is not an MP4 (container {container.format.name!r}"
                    f"{', brand ' + repr(brand) if brand else ''}); review needs an MP4 file"
                )
            if not container.streams.video:
                return Verdict("training video has no video stream; review needs an MP4 video")
            stream = container.streams.video[0]
            size = (int(stream.codec_context.width), int(stream.codec_context.height))
            if container.duration is not None:
                seconds = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = 0.0
    except av.error.FFmpegError as exc:  # not a video at all (random bytes, a zip…)
        return Verdict(f"training video cannot be read as a video ({exc.strerror}); "
                       "review needs an MP4 file")  # fmt: skip
    resolution = RESOLUTIONS.get(size)
    if resolution is None:
        return Verdict(
            f"training video is {size[0]}x{size[1]}; review needs 1080p (1920x1080 or "
            "1080x1920) or 4K (3840x2160 or 2160x3840)",
            RESOLUTION_ERROR,
        )
    low, high = DURATION_SECONDS
    if not low <= seconds <= high:
        return Verdict(
            f"training video lasts {seconds:.1f} s; review needs 3 to 10 minutes "
            f"({low:.0f} to {high:.0f} s)"
        )
    return Probe(resolution)
