"""SAMI VoiceConversion: ``session.voice.convert(...)`` (SPEC §3, doc 002).

::

    async with AvatarSession.from_env() as av:
        audio = await av.voice.convert("in.wav", speaker="zh_female_qingxin")
        await audio.save("out.wav")

The rules (:mod:`avatarkit.voice.rules`) and the wire format
(:mod:`avatarkit.voice.wire`) are pure; the emulator enforces the same ones.
"""

from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562): the client brings httpx; the type checker sees imports.
if TYPE_CHECKING:
    from avatarkit.voice.client import ConvertedAudio, VoiceClient
    from avatarkit.voice.speakers import SPEAKERS, Speaker

#: Lazily loaded name -> the module that defines it.
_LAZY: dict[str, str] = {
    "ConvertedAudio": "avatarkit.voice.client",
    "VoiceClient": "avatarkit.voice.client",
    "SPEAKERS": "avatarkit.voice.speakers",
    "Speaker": "avatarkit.voice.speakers",
}

__all__ = ["SPEAKERS", "ConvertedAudio", "Speaker", "VoiceClient"]


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
