"""The rules of SAMI VoiceConversion (doc 002), pure: no I/O.

The SDK checks them before sending and the emulator enforces them, so both
agree by construction.  Each check raises :class:`ValidationError` naming the
field, the value and the rule.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final, Literal

from avatarkit.errors import ValidationError
from avatarkit.voice.speakers import SPEAKERS

__all__ = [
    "CHANNELS",
    "FORMATS",
    "MAX_INPUT_BYTES",
    "MAX_SECONDS",
    "NAMESPACE",
    "PCM_BYTES_PER_SECOND",
    "SAMPLE_RATES",
    "SUCCESS_CODE",
    "SUCCESS_CODES",
    "VERSION",
    "AudioFormat",
    "check_audio_config",
    "check_channel",
    "check_duration",
    "check_enable_background",
    "check_format",
    "check_sample_rate",
    "check_size",
    "check_speaker",
    "check_url",
    "classify_source",
    "is_url",
]

NAMESPACE: Final = "VoiceConversion"
#: The ``version`` query parameter of the doc's Go demo (query-string auth).
VERSION: Final = "v4"
#: SAMI's success code.  Doc 002 does not state it; 20000000 is the SAMI
#: convention (HTTP 200 × 100000), and 0 is accepted too in case a gateway
#: answers with it.
SUCCESS_CODE: Final = 20_000_000
SUCCESS_CODES: Final = frozenset({SUCCESS_CODE, 0})

AudioFormat = Literal["wav", "mp3", "aac"]
FORMATS: Final = ("wav", "mp3", "aac")
SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
CHANNELS: Final = (1, 2)

#: "小于等于100MB"; read as MiB (the binary unit vendors' limits usually mean).
MAX_INPUT_BYTES: Final = 100 * 1024 * 1024
#: "小于等于10分钟".
MAX_SECONDS: Final = 600.0
#: Raw ``.pcm`` input is taken to be 16 kHz mono s16le (the doc names no layout;
#: it is what the other services of the family use).
PCM_BYTES_PER_SECOND: Final = 16_000 * 2

_URL_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check_format(value: object, field: str = "format") -> AudioFormat:
    if value not in FORMATS:
        raise ValidationError(field, value, f"must be one of {', '.join(FORMATS)}")
    return value


def _check_choice(value: object, field: str, choices: tuple[int, ...]) -> int:
    # bool is an int in Python but not a number on the wire.
    if isinstance(value, bool) or not isinstance(value, int) or value not in choices:
        raise ValidationError(field, value, f"must be one of {', '.join(map(str, choices))}")
    return value


def check_sample_rate(value: object, field: str = "sample_rate") -> int:
    return _check_choice(value, field, SAMPLE_RATES)


def check_channel(value: object, field: str = "channel") -> int:
    return _check_choice(value, field, CHANNELS)


def check_enable_background(value: object, field: str = "enable_background") -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, value, "must be a bool")
    return value


def check_audio_config(
    format: object, sample_rate: object, channel: object, prefix: str = ""
) -> tuple[AudioFormat, int, int]:
    """The output settings (``prefix`` names where they sit, e.g. ``audio_config.``)."""
    return (
        check_format(format, prefix + "format"),
        check_sample_rate(sample_rate, prefix + "sample_rate"),
        check_channel(channel, prefix + "channel"),
    )


def check_speaker(value: object, *, known: bool = True, field: str = "speaker") -> str:
    """A non-empty string; with ``known``, one of :data:`SPEAKERS` (the doc's table)."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "must be a non-empty string")
    if known and value not in SPEAKERS:
        raise ValidationError(
            field,
            value,
            "is not a documented speaker (one of "
            f"{', '.join(SPEAKERS)}; check_speaker=False to send it anyway)",
        )
    return value


def check_size(size: int, what: object, field: str = "source") -> int:
    if size <= 0:
        raise ValidationError(field, what, "is empty")
    if size > MAX_INPUT_BYTES:
        raise ValidationError(
            field, what, f"is {size} bytes; at most {MAX_INPUT_BYTES} (100 MB) allowed"
        )
    return size


def check_duration(seconds: float | None, what: object, field: str = "source") -> None:
    """At most 10 minutes; ``None`` (unknown) passes."""
    if seconds is not None and seconds > MAX_SECONDS:
        raise ValidationError(
            field, what, f"lasts {seconds:.1f} s; at most {MAX_SECONDS:.0f} s (10 minutes)"
        )


def is_url(value: str) -> bool:
    """Whether ``value`` has a URL scheme (``scheme://``); anything else is a path."""
    return bool(_URL_SCHEME.match(value))


def check_url(value: object, field: str = "source") -> str:
    if not isinstance(value, str) or not is_url(value):
        raise ValidationError(field, value, "must be an http(s) URL")
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in ("http", "https"):
        raise ValidationError(field, value, "must be an http(s) URL")
    if not rest or rest[0] in "/?#":
        raise ValidationError(field, value, "must name a host")
    return value


def classify_source(
    source: object,
) -> tuple[Literal["url"], str] | tuple[Literal["path"], Path] | tuple[Literal["bytes"], bytes]:
    """What ``source`` is: an http(s) URL string, a path, or the audio itself."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        check_size(len(data), f"<{len(data)} bytes>")
        return "bytes", data
    if isinstance(source, str):
        if is_url(source):
            return "url", check_url(source)
        if not source:
            raise ValidationError("source", source, "must be a path, bytes or an http(s) URL")
        return "path", Path(source)
    if isinstance(source, os.PathLike):
        return "path", Path(source)
    raise ValidationError("source", source, "must be a path, bytes or an http(s) URL")
