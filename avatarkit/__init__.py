"""avatarkit: an async-first SDK for digital-human (talking avatar) services.

::

    import avatarkit
    from avatarkit import events

    async with avatarkit.AvatarSession.from_env() as av:
        async with av.tta.open(role="GuoXiaoyuan", codec="mp4") as stream:
            async for event in stream.say("今天天气真不错"):
                ...
            video = await stream.finish()
            await video.save("out.mp4")

The local emulator lives in :mod:`avatarkit.emulator` (``emulator`` extra).
"""

from avatarkit._progress import UploadProgress
from avatarkit._redact import protect_library_loggers
from avatarkit._retry import RetryEvent, RetryPolicy, on_retry
from avatarkit._session import AvatarSession, Endpoints
from avatarkit.errors import (
    AuthenticationError,
    AvatarError,
    ConnectionLost,
    ProtocolError,
    ServiceError,
    StreamClosed,
    TimeoutError,
    TrainingFailed,
    ValidationError,
)
from avatarkit.tta import events
from avatarkit.tta.config import (
    Logo,
    RoleConf,
    RtcConfig,
    RtmpConfig,
    SessionConfig,
    VideoConfig,
)
from avatarkit.tta.limits import StreamLimits
from avatarkit.tta.stream import TtaStream, Utterance
from avatarkit.tta.video import ProducedVideo
from avatarkit.voice import ConvertedAudio

__version__ = "0.1.0"

protect_library_loggers()

__all__ = [
    "AuthenticationError",
    "AvatarError",
    "AvatarSession",
    "ConnectionLost",
    "ConvertedAudio",
    "Endpoints",
    "Logo",
    "ProducedVideo",
    "ProtocolError",
    "RetryEvent",
    "RetryPolicy",
    "RoleConf",
    "RtcConfig",
    "RtmpConfig",
    "ServiceError",
    "SessionConfig",
    "StreamClosed",
    "StreamLimits",
    "TimeoutError",
    "TrainingFailed",
    "TtaStream",
    "UploadProgress",
    "Utterance",
    "ValidationError",
    "VideoConfig",
    "__version__",
    "events",
    "on_retry",
]
