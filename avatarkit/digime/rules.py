"""The documented rules of the digime upload and training API (doc 000), in one place.

The SDK's preflight checks use these functions.  The emulator reads doc 000
on its own (:mod:`avatarkit.emulator.digime.models`) and shares none of them,
so a rule misread here is caught by the emulator's tests.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any, Final

from avatarkit.errors import ValidationError

__all__ = [
    "AUDIO_SUFFIXES",
    "CONF_NAME_RE",
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "TTS_TYPES",
    "VIDEO_SUFFIXES",
    "MaterialType",
    "check_conf_name",
    "check_input_resource",
    "check_non_empty",
    "check_suffix",
    "check_tts_type",
    "check_type",
]

CONF_NAME_RE: Final = re.compile(r"[A-Za-z0-9-]+")
MIB: Final = 1024 * 1024
DEFAULT_PART_SIZE: Final = 10 * MIB  # "建议分片大小为10M"
MIN_PART_SIZE: Final = 5 * MIB  # "最后一片不足5M的与前一分片合并上传"


class MaterialType(IntEnum):
    """The ``type`` field: what is being uploaded (doc 000: 视频类型, 数据类型).

    :meth:`DigimeClient.upload` takes the videos (1-3, or their names ``"training"``,
    ``"template"``, ``"review"``); :meth:`VoiceCloneClient.upload` sends 11.
    """

    TRAINING = 1  # training video
    """A training video (训练视频): 1080p or 4K, mp4 or mov; what training learns from."""
    TEMPLATE = 2  # template video
    """A template video (模版视频), mp4 or mov."""
    REVIEW = 3  # review video
    """A review video (审核视频), mp4 or mov."""
    AUDIO = 11  # voice-clone audio archive
    """A voice-clone audio archive (音频压缩包): the audio files of one folder, zip or
    tar."""


VIDEO_TYPES: Final = (MaterialType.TRAINING, MaterialType.TEMPLATE, MaterialType.REVIEW)
VIDEO_SUFFIXES: Final = ("mp4", "mov")
AUDIO_SUFFIXES: Final = ("zip", "tar")
TTS_TYPES: Final = ("tts_model_v1", "tts_model_v2")  # 30-minute and 10-minute clone

_TYPE_NAMES: Final = {"training": 1, "template": 2, "review": 3, "audio": 11}


def check_conf_name(value: Any, field: str = "conf_name") -> str:
    if not isinstance(value, str) or CONF_NAME_RE.fullmatch(value) is None:
        raise ValidationError(field, value, "must match ^[A-Za-z0-9-]+$ (letters, digits, '-')")
    return value


def check_type(value: Any, field: str = "type") -> MaterialType:
    """A material type from its number (1, 2, 3, 11) or name ("training", …)."""
    if isinstance(value, str) and value in _TYPE_NAMES:
        value = _TYPE_NAMES[value]
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value not in MaterialType._value2member_map_
    ):
        names = ", ".join(f"{n}={v}" for n, v in _TYPE_NAMES.items())
        raise ValidationError(field, value, f"must be one of {names}")
    return MaterialType(value)


def check_suffix(material: MaterialType, suffix: Any, field: str = "file_suffix") -> str:
    allowed = AUDIO_SUFFIXES if material is MaterialType.AUDIO else VIDEO_SUFFIXES
    if not isinstance(suffix, str) or suffix.lower() not in allowed:
        what = "an audio archive" if material is MaterialType.AUDIO else "a video"
        raise ValidationError(field, suffix, f"{what} must be {' or '.join(allowed)}")
    return suffix.lower()


def check_tts_type(value: Any, field: str = "tts_type") -> str:
    if value not in TTS_TYPES:
        raise ValidationError(field, value, f"must be one of {', '.join(TTS_TYPES)}")
    return str(value)


def check_input_resource(value: Any, field: str = "input_resource") -> str:
    """Doc 000 制作分身 说明 3: the key is required ("必传"), but both init examples send
    ``""``: any string, the empty one included, is accepted (SPEC §6)."""
    if not isinstance(value, str):
        raise ValidationError(field, value, 'must be a string ("" is accepted)')
    return value


def check_non_empty(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "must be a non-empty string")
    return value
