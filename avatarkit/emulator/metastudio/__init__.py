"""The emulator's MetaStudio service: 2D-avatar training jobs (SPEC §4, doc 003).

In moto's shape, one module per concern:

* :mod:`.models`: the structs and rules, as the emulator reads doc 003 and
  Huawei's public SDK models (the decisions are in its docstring);
* :mod:`.store`: the jobs' state machine over time (timers, review), files;
* :mod:`.review`: the automatic review of the training video (PyAV);
* :mod:`.obs`: the presigned object store (single-use PUT URLs);
* :mod:`.signing`: the emulator's own check of AK/SK signatures (SPEC §4.2);
* :mod:`.api`: routes, auth and envelopes;
* :mod:`.errors`: the error codes.

Nothing here imports the SDK's MetaStudio rules, signer or wire models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avatarkit.emulator.metastudio.api import API, API_PATH, SHAPED_PREFIXES, metastudio_routes
from avatarkit.emulator.metastudio.models import PIPELINE
from avatarkit.emulator.metastudio.obs import OBS_PREFIX, Presigned, StoredObject
from avatarkit.emulator.metastudio.store import JobRecord, MetaStudioStore
from avatarkit.emulator.shaping import FaultTarget
from avatarkit.errors import ValidationError

if TYPE_CHECKING:
    from avatarkit.emulator.options import EmulatorOptions

__all__ = [
    "API_PATH",
    "OBS_PREFIX",
    "PIPELINE",
    "SHAPED_PREFIXES",
    "JobRecord",
    "MetaStudioStore",
    "Presigned",
    "StoredObject",
    "check_metastudio_options",
    "fault_targets",
    "metastudio_routes",
]


def check_metastudio_options(options: EmulatorOptions) -> None:
    """Refuse MetaStudio options that make no sense (at startup)."""
    for name in ("metastudio_project_id", "metastudio_ak", "metastudio_sk", "metastudio_token"):
        value = getattr(options, name)
        if not isinstance(value, str) or not value:
            raise ValidationError(name, value, "must be a non-empty string")
    for name in ("metastudio_url_ttl_seconds", "metastudio_step_seconds"):
        if getattr(options, name) < 0:
            raise ValidationError(name, getattr(options, name), "must be >= 0")


def fault_targets() -> tuple[FaultTarget, ...]:
    """The MetaStudio requests failure injection applies to: presigned PUTs."""
    target = API.fault_target(
        OBS_PREFIX + "/", "metastudio_injected_failures", methods=("PUT",), prefix=True
    )
    return (target,)
