"""SAMI VoiceConversion: ``session.voice.convert(...)`` (SPEC §3, doc 002).

::

    async with AvatarSession.from_env() as av:
        audio = await av.voice.convert("in.wav", speaker="zh_female_qingxin")
        await audio.save("out.wav")

The rules (:mod:`avatarkit.voice.rules`) and the wire format
(:mod:`avatarkit.voice._wire`) are pure; the emulator has its own reading of doc 002.
"""

from typing import TYPE_CHECKING

from avatarkit._lazy import lazy_exports

# Names load on first use (PEP 562): the client brings httpx; the type checker sees imports.
if TYPE_CHECKING:
    from avatarkit.voice.client import ConvertedAudio, VoiceClient
    from avatarkit.voice.speakers import SPEAKERS, Speaker

#: Lazily loaded name -> the module that defines it.
_LAZY: dict[str, str | tuple[str, str | None]] = {
    "ConvertedAudio": "avatarkit.voice.client",
    "VoiceClient": "avatarkit.voice.client",
    "SPEAKERS": "avatarkit.voice.speakers",
    "Speaker": "avatarkit.voice.speakers",
}

__all__ = ["SPEAKERS", "ConvertedAudio", "Speaker", "VoiceClient"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
