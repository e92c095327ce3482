"""SAMI VoiceConversion: ``session.voice.convert(...)`` (SPEC §3, doc 002).

::

    async with AvatarSession.from_env() as av:
        audio = await av.voice.convert("in.wav", speaker="zh_female_qingxin")
        await audio.save("out.wav")

The rules (:mod:`avatarkit.voice.rules`) and the wire format
(:mod:`avatarkit.voice.wire`) are pure; the emulator enforces the same ones.
"""

from avatarkit.voice.client import ConvertedAudio, VoiceClient
from avatarkit.voice.speakers import SPEAKERS, Speaker

__all__ = ["SPEAKERS", "ConvertedAudio", "Speaker", "VoiceClient"]
