"""The emulator's SAMI VoiceConversion service (doc 002, SPEC §3): ``POST /api/v1/invoke``.

``models`` holds the limits, the speaker table and the payload as the
emulator reads doc 002 (with the decisions on that reading), ``api`` the
route, auth and envelope, ``errors`` the status codes, ``audio`` the real
conversion (also used by the TTA emulator's audio-URL chats).
"""

from avatarkit.emulator.routes import SAMI_PATH as PATH
from avatarkit.emulator.sami.api import sami_routes
from avatarkit.emulator.sami.audio import (
    AudioFailure,
    convert_audio,
    decode_audio,
    fetch_loopback,
    pitch_factor,
)

__all__ = [
    "PATH",
    "AudioFailure",
    "convert_audio",
    "decode_audio",
    "fetch_loopback",
    "pitch_factor",
    "sami_routes",
]
