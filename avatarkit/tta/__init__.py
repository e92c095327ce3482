"""TTA streaming (doc 001): ``session.tta.open(...)`` and what it yields.

::

    async with av.tta.open(role="GuoXiaoyuan", codec="mp4") as stream:
        async for event in stream.say("你好"):
            ...
        video = await stream.finish()

The session config (:class:`SessionConfig` and its parts), the stream
(:class:`TtaStream`), its events (:mod:`avatarkit.tta.events`), SSML
(:mod:`avatarkit.tta.ssml`) and the framing (:mod:`avatarkit.tta.frames`).
"""

from typing import TYPE_CHECKING

from avatarkit._lazy import lazy_exports

# Names load on first use (PEP 562); the type checker sees ordinary imports.
if TYPE_CHECKING:
    from avatarkit.tta import events, frames, sentences, ssml
    from avatarkit.tta.client import TtaClient
    from avatarkit.tta.config import (
        Codec,
        ConfigFields,
        InputMode,
        Logo,
        LogoFields,
        RoleConf,
        RoleConfFields,
        RtcConfig,
        RtcFields,
        RtmpConfig,
        RtmpFields,
        SessionConfig,
        VideoConfig,
        VideoFields,
        make_config,
    )
    from avatarkit.tta.limits import LimitChanges, StreamLimits
    from avatarkit.tta.stream import (
        AudioDrive,
        SpeechStream,
        StreamRecording,
        TtaStream,
        Utterance,
    )
    from avatarkit.tta.video import ProducedVideo, VideoStream

_CONFIG = "avatarkit.tta.config"
#: Lazily loaded name -> the module that defines it ("" for a submodule itself).
_LAZY: dict[str, str | tuple[str, str | None]] = {
    "events": ("avatarkit.tta.events", ""),
    "frames": ("avatarkit.tta.frames", ""),
    "sentences": ("avatarkit.tta.sentences", ""),
    "ssml": ("avatarkit.tta.ssml", ""),
    "TtaClient": "avatarkit.tta.client",
    **{
        name: _CONFIG
        for name in (
            "Codec",
            "ConfigFields",
            "InputMode",
            "Logo",
            "LogoFields",
            "RoleConf",
            "RoleConfFields",
            "RtcConfig",
            "RtcFields",
            "RtmpConfig",
            "RtmpFields",
            "SessionConfig",
            "VideoConfig",
            "VideoFields",
            "make_config",
        )
    },
    "LimitChanges": "avatarkit.tta.limits",
    "StreamLimits": "avatarkit.tta.limits",
    "AudioDrive": "avatarkit.tta.stream",
    "SpeechStream": "avatarkit.tta.stream",
    "StreamRecording": "avatarkit.tta.stream",
    "TtaStream": "avatarkit.tta.stream",
    "Utterance": "avatarkit.tta.stream",
    "ProducedVideo": "avatarkit.tta.video",
    "VideoStream": "avatarkit.tta.video",
}

__all__ = [
    "AudioDrive",
    "Codec",
    "ConfigFields",
    "InputMode",
    "LimitChanges",
    "Logo",
    "LogoFields",
    "ProducedVideo",
    "RoleConf",
    "RoleConfFields",
    "RtcConfig",
    "RtcFields",
    "RtmpConfig",
    "RtmpFields",
    "SessionConfig",
    "SpeechStream",
    "StreamLimits",
    "StreamRecording",
    "TtaClient",
    "TtaStream",
    "Utterance",
    "VideoConfig",
    "VideoFields",
    "VideoStream",
    "events",
    "frames",
    "make_config",
    "sentences",
    "ssml",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
