"""Cheap real training videos: H.264 at 1 fps, grey levels changing frame to frame.

What the reviews probe is container, resolution and duration (doc 000: 1080p or 4K,
mp4 or mov; doc 003: MP4, 1080p or 4K, 3 to 10 minutes), so a clip of still frames
at one frame a second is a valid training video that encodes in about a second and
weighs a few kB.  Used by the demo and by the tests.
"""

from __future__ import annotations

import os
from typing import BinaryIO

__all__ = ["still_clip"]


def still_clip(
    target: str | os.PathLike[str] | BinaryIO,
    seconds: int,
    *,
    width: int = 1920,
    height: int = 1080,
    container: str = "mp4",
) -> None:
    """Write a ``seconds``-second ``width``x``height`` clip at 1 fps to ``target``."""
    import av  # the emulator extra

    where = target if hasattr(target, "write") else os.fspath(target)
    with av.open(where, "w", format=container) as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(seconds):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 8) % 250]) * plane.buffer_size)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
