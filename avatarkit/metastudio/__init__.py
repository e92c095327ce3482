"""Huawei Cloud MetaStudio: 2D-avatar training jobs (AK/SK or IAM token auth)."""

from avatarkit.metastudio.client import MetaStudio, PresignedUpload
from avatarkit.metastudio.signer import sign
from avatarkit.metastudio.wire import CommandResult, CreateJobResponse, Job, JobList, JobState

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
