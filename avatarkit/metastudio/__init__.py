"""Huawei Cloud MetaStudio: 2D-avatar training jobs (AK/SK or IAM token auth)."""

from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562); the type checker sees ordinary imports.
if TYPE_CHECKING:
    from avatarkit.metastudio.client import MetaStudio, PresignedUpload
    from avatarkit.metastudio.signer import sign
    from avatarkit.metastudio.wire import CommandResult, CreateJobResponse, Job, JobList, JobState

#: Lazily loaded name -> the module that defines it.
_LAZY: dict[str, str] = {
    "CommandResult": "avatarkit.metastudio.wire",
    "CreateJobResponse": "avatarkit.metastudio.wire",
    "Job": "avatarkit.metastudio.wire",
    "JobList": "avatarkit.metastudio.wire",
    "JobState": "avatarkit.metastudio.wire",
    "MetaStudio": "avatarkit.metastudio.client",
    "PresignedUpload": "avatarkit.metastudio.client",
    "sign": "avatarkit.metastudio.signer",
}

__all__ = [
    "CommandResult",
    "CreateJobResponse",
    "Job",
    "JobList",
    "JobState",
    "MetaStudio",
    "PresignedUpload",
    "sign",
]


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
