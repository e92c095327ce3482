"""Files from stream events: WAV, raw H.264, MP4/MOV (PyAV, ``media`` extra), SRT/WebVTT.

The one-line way is :class:`Recorder`::

    async with Recorder("talk.mp4", subtitles="talk.srt") as rec:
        async for event in stream.say("你好。"):
            await rec.afeed(event)
    # talk.mp4 and talk.srt now exist; nothing is left behind if the block fails

The writers underneath (:class:`WavWriter`, :class:`H264Writer`, :class:`Mp4Writer`,
:class:`SubtitleTrack`) can be used on their own. Every file is written under a
``.{name}.partial`` temp name beside the target and renamed when it is complete.
Only :class:`Mp4Writer` needs PyAV (``pip install 'avatarkit[media]'``); it is
imported when one is created.
"""

from typing import TYPE_CHECKING

from avatarkit._lazy import lazy_exports

# Writers load on first use (PEP 562); the type checker sees ordinary imports.
if TYPE_CHECKING:
    from avatarkit.media.h264 import H264Writer, is_keyframe
    from avatarkit.media.mp4 import Mp4Writer
    from avatarkit.media.recorder import Recorder, Recording
    from avatarkit.media.subtitles import SubtitleTrack
    from avatarkit.media.wav import WavWriter

#: Lazily loaded name -> the module that defines it.
_LAZY: dict[str, str | tuple[str, str | None]] = {
    "H264Writer": "avatarkit.media.h264",
    "is_keyframe": "avatarkit.media.h264",
    "Mp4Writer": "avatarkit.media.mp4",
    "Recorder": "avatarkit.media.recorder",
    "Recording": "avatarkit.media.recorder",
    "SubtitleTrack": "avatarkit.media.subtitles",
    "WavWriter": "avatarkit.media.wav",
}

__all__ = [
    "H264Writer",
    "Mp4Writer",
    "Recorder",
    "Recording",
    "SubtitleTrack",
    "WavWriter",
    "is_keyframe",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
