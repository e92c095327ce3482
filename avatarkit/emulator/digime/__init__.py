"""The emulator's digime service: chunked upload and avatar training (doc 000, SPEC §1).

``models`` holds the state and the rules as the emulator reads doc 000 (with
the decisions on that reading), ``api`` the routes, auth and envelope,
``errors`` the codes, ``review`` the PyAV probes of the uploaded material,
``training`` a training's timer and callback, ``pics`` the trained pictures.
"""

from avatarkit.emulator.digime.api import check_digime_options, digime_routes, fault_targets
from avatarkit.emulator.digime.models import DigimeStore, TrainingRecord, UploadRecord
from avatarkit.emulator.routes import DIGIME_PICS_PATH as PICS_PATH
from avatarkit.emulator.routes import DIGIME_PREFIX as PREFIX

__all__ = [
    "PICS_PATH",
    "PREFIX",
    "DigimeStore",
    "TrainingRecord",
    "UploadRecord",
    "check_digime_options",
    "digime_routes",
    "fault_targets",
]
