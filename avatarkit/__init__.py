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

Uploads and training: ``av.digime`` and ``av.voice_clone`` (doc 000) and
:class:`MetaStudio` (Huawei), with the same verbs (``upload``,
``start_training``, ``status``, ``wait``, ``run_training``).  Voice
conversion: ``av.voice``.  The local emulator lives in
:mod:`avatarkit.emulator` (``emulator`` extra).
"""

from typing import TYPE_CHECKING

from avatarkit._lazy import lazy_exports
from avatarkit._logs import setup_from_env
from avatarkit._progress import UploadProgress
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

# The rest loads on first use (PEP 562): ``import avatarkit`` loads what making an
# AvatarSession needs, not the WebSocket client, SSML, uploads or media.  The
# type checker sees ordinary imports.
if TYPE_CHECKING:
    from avatarkit._upload_handle import Upload
    from avatarkit.digime._wire import TrainingCallback, TrainingInfo, TrainingState
    from avatarkit.digime.callbacks import CallbackReceiver
    from avatarkit.digime.upload import UploadResult
    from avatarkit.metastudio._wire import CommandResult, CreateJobResponse, Job, JobState
    from avatarkit.metastudio.client import MetaStudio
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

#: Lazily loaded name -> the module that defines it ("" for a submodule itself).
_LAZY: dict[str, str | tuple[str, str | None]] = {
    "events": ("avatarkit.tta.events", ""),
    "Logo": ("avatarkit.tta.config", "Logo"),
    "RoleConf": ("avatarkit.tta.config", "RoleConf"),
    "RtcConfig": ("avatarkit.tta.config", "RtcConfig"),
    "RtmpConfig": ("avatarkit.tta.config", "RtmpConfig"),
    "SessionConfig": ("avatarkit.tta.config", "SessionConfig"),
    "VideoConfig": ("avatarkit.tta.config", "VideoConfig"),
    "StreamLimits": ("avatarkit.tta.limits", "StreamLimits"),
    "TtaStream": ("avatarkit.tta.stream", "TtaStream"),
    "Utterance": ("avatarkit.tta.stream", "Utterance"),
    "ProducedVideo": ("avatarkit.tta.video", "ProducedVideo"),
    "ConvertedAudio": ("avatarkit.voice.client", "ConvertedAudio"),
    "Upload": "avatarkit._upload_handle",
    "TrainingCallback": "avatarkit.digime._wire",
    "TrainingInfo": "avatarkit.digime._wire",
    "TrainingState": "avatarkit.digime._wire",
    "CallbackReceiver": "avatarkit.digime.callbacks",
    "UploadResult": "avatarkit.digime.upload",
    "CommandResult": "avatarkit.metastudio._wire",
    "CreateJobResponse": "avatarkit.metastudio._wire",
    "Job": "avatarkit.metastudio._wire",
    "JobState": "avatarkit.metastudio._wire",
    "MetaStudio": "avatarkit.metastudio.client",
}


__version__ = "0.1.0"
"""The version of avatarkit (PEP 440)."""

setup_from_env()  # AVATARKIT_LOG=debug|info: nothing happens unless it is set


__all__ = [
    "AuthenticationError",
    "AvatarError",
    "AvatarSession",
    "CallbackReceiver",
    "CommandResult",
    "ConnectionLost",
    "ConvertedAudio",
    "CreateJobResponse",
    "Endpoints",
    "Job",
    "JobState",
    "Logo",
    "MetaStudio",
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
    "TrainingCallback",
    "TrainingFailed",
    "TrainingInfo",
    "TrainingState",
    "TtaStream",
    "Upload",
    "UploadProgress",
    "UploadResult",
    "Utterance",
    "ValidationError",
    "VideoConfig",
    "__version__",
    "events",
    "on_retry",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
