"""Huawei Cloud MetaStudio: 2D-avatar training jobs (AK/SK or IAM token auth)."""

from typing import TYPE_CHECKING

from avatarkit._lazy import lazy_exports

# Names load on first use (PEP 562); the type checker sees ordinary imports.
if TYPE_CHECKING:
    from avatarkit.metastudio._wire import (
        CommandResult,
        CommentData,
        CreateJobResponse,
        Job,
        JobList,
        JobState,
        VoiceProperties,
    )
    from avatarkit.metastudio.client import (
        CreateJobFields,
        MetaStudio,
        MetaStudioOptions,
        PresignedUpload,
    )
    from avatarkit.metastudio.signer import sign

#: Lazily loaded name -> the module that defines it.
_LAZY: dict[str, str | tuple[str, str | None]] = {
    "CommandResult": "avatarkit.metastudio._wire",
    "CommentData": "avatarkit.metastudio._wire",
    "VoiceProperties": "avatarkit.metastudio._wire",
    "CreateJobFields": "avatarkit.metastudio.client",
    "MetaStudioOptions": "avatarkit.metastudio.client",
    "CreateJobResponse": "avatarkit.metastudio._wire",
    "Job": "avatarkit.metastudio._wire",
    "JobList": "avatarkit.metastudio._wire",
    "JobState": "avatarkit.metastudio._wire",
    "MetaStudio": "avatarkit.metastudio.client",
    "PresignedUpload": "avatarkit.metastudio.client",
    "sign": "avatarkit.metastudio.signer",
}

__all__ = [
    "CommandResult",
    "CommentData",
    "CreateJobFields",
    "CreateJobResponse",
    "Job",
    "JobList",
    "JobState",
    "MetaStudio",
    "MetaStudioOptions",
    "PresignedUpload",
    "VoiceProperties",
    "sign",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
