"""Digital-avatar training and voice-clone material (doc 000): ``session.digime`` and
``session.voice_clone``.

::

    async with AvatarSession.from_env() as av:
        result = await av.digime.upload("talk.mp4", conf_name="Liu-Xuan",
                                        role_show_name="刘璇", input_resource="acme")
        await av.digime.start_training("Liu-Xuan", callback_url=url)
        info = await av.digime.wait("Liu-Xuan", receiver=receiver)

The part plan (:mod:`avatarkit.digime.plan`) and the rules
(:mod:`avatarkit.digime.rules`) are pure; the wire format is private.
"""

from typing import TYPE_CHECKING

from avatarkit._lazy import lazy_exports

# Names load on first use (PEP 562); the type checker sees ordinary imports.
if TYPE_CHECKING:
    from avatarkit._progress import UploadProgress
    from avatarkit._upload_handle import Upload
    from avatarkit.digime._wire import TrainingCallback, TrainingInfo, TrainingState
    from avatarkit.digime.callbacks import BadCallbackBody, CallbackReceiver, parse_callback_body
    from avatarkit.digime.client import VIDEO_RESOLUTIONS, DigimeClient, VoiceCloneClient
    from avatarkit.digime.rules import MaterialType
    from avatarkit.digime.upload import UploadResult

#: Lazily loaded name -> the module that defines it.
_LAZY: dict[str, str | tuple[str, str | None]] = {
    "UploadProgress": "avatarkit._progress",
    "Upload": "avatarkit._upload_handle",
    "TrainingCallback": "avatarkit.digime._wire",
    "TrainingInfo": "avatarkit.digime._wire",
    "TrainingState": "avatarkit.digime._wire",
    "BadCallbackBody": "avatarkit.digime.callbacks",
    "CallbackReceiver": "avatarkit.digime.callbacks",
    "parse_callback_body": "avatarkit.digime.callbacks",
    "VIDEO_RESOLUTIONS": "avatarkit.digime.client",
    "DigimeClient": "avatarkit.digime.client",
    "VoiceCloneClient": "avatarkit.digime.client",
    "MaterialType": "avatarkit.digime.rules",
    "UploadResult": "avatarkit.digime.upload",
}

__all__ = [
    "VIDEO_RESOLUTIONS",
    "BadCallbackBody",
    "CallbackReceiver",
    "DigimeClient",
    "MaterialType",
    "TrainingCallback",
    "TrainingInfo",
    "TrainingState",
    "Upload",
    "UploadProgress",
    "UploadResult",
    "VoiceCloneClient",
    "parse_callback_body",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
