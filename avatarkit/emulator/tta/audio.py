"""Audio drive as the emulator reads doc 001: audio-URL chats and the PCM the avatar speaks.

Doc 001 §2.1: in ``input_mode=audio`` a chat is ``<audio url= format= sample_rate= ac=/>``
(the example: ``format="pcm" sample_rate="48000" ac="1"``), optionally inside ``<speak>``
with a ``<subtitle text=…/>`` (§2.2.4.1); streamed frames (``|CTL|08|``) are "16k单声道pcm"
only.  The service speaks 16 kHz mono s16le, so the emulator converts what an audio URL
holds with PyAV's resampler (its own conversion: the SDK's converter is not used).

Readings: ``format`` is required (the example and §2.2.4.1 always send it); raw ``pcm``
is s16le at the tag's ``sample_rate`` (default 16000) and ``ac`` (default 1); any other
format is decoded by what it holds.  ``ac`` may be 1 or 2 (mono or stereo).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from array import array
from dataclasses import dataclass
from typing import Final

import anyio
import av

from avatarkit.emulator import sami
from avatarkit.emulator.tta.errors import ChatRejected
from avatarkit.emulator.tta.ssml import parse

__all__ = ["AudioChat", "read_audio_chat", "to_16k_mono"]

RATE: Final = 16_000
_LAYOUTS: Final = {1: "mono", 2: "stereo"}
_BIG_ENDIAN: Final = sys.byteorder == "big"


@dataclass(frozen=True, slots=True)
class AudioChat:
    subtitle: str  # the <subtitle text=…/>, or ""
    pcm: bytes  # 16 kHz mono s16le


def _positive(tag: ET.Element, attr: str, default: int) -> int:
    value = tag.get(attr)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ChatRejected(f"<audio {attr}={value!r}>: must be a positive integer")
    return number


def to_16k_mono(pcm: bytes, rate: int, channels: int) -> bytes:
    """Interleaved s16le PCM at ``rate`` Hz, ``channels`` channels → 16 kHz mono s16le."""
    layout = _LAYOUTS.get(channels)
    if layout is None:
        raise ChatRejected(f"<audio ac={channels}>: must be 1 (mono) or 2 (stereo)")
    if not 1000 <= rate <= 384_000:
        raise ChatRejected(f"<audio sample_rate={rate}>: must be from 1000 to 384000 Hz")
    usable = len(pcm) // (2 * channels) * 2 * channels
    if usable == 0:
        return b""
    data = pcm[:usable]
    if _BIG_ENDIAN:  # PyAV's s16 is native-endian; the wire is little-endian
        swapped = array("h", data)
        swapped.byteswap()
        data = swapped.tobytes()
    if rate == RATE and channels == 1:
        return pcm[:usable]
    frame = av.AudioFrame(format="s16", layout=layout, samples=usable // (2 * channels))
    frame.sample_rate = rate
    memoryview(frame.planes[0])[:usable] = data
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    out = bytearray()
    for piece in [*resampler.resample(frame), *resampler.resample(None)]:
        out += bytes(piece.planes[0])[: piece.samples * 2]
    if _BIG_ENDIAN:
        back = array("h", bytes(out))
        back.byteswap()
        return back.tobytes()
    return bytes(out)


async def read_audio_chat(body: str) -> AudioChat:
    """An audio-mode chat: the audio fetched (loopback only), decoded and converted."""
    root = parse(body)
    tag = root.find("audio")
    if tag is None:
        raise ChatRejected("an audio-mode chat needs an <audio url=… format=…/> tag")
    url, fmt = tag.get("url"), tag.get("format")
    if not url or not fmt:
        raise ChatRejected("<audio> needs url and format (doc 001 §2.1)")
    subtitle = root.find("subtitle")
    text = subtitle.get("text", "") if subtitle is not None else ""
    rate = _positive(tag, "sample_rate", RATE)
    channels = _positive(tag, "ac", 1)
    try:
        data = await sami.fetch_loopback(url)
        if fmt == "pcm":  # raw: the tag says how it is laid out
            pcm = data
        else:
            decoded = await anyio.to_thread.run_sync(sami.decode_audio, data)
            pcm, rate, channels = decoded.data, decoded.rate, decoded.channels
    except sami.AudioFailure as exc:
        raise ChatRejected(f"<audio url=…>: {exc}") from None
    converted = await anyio.to_thread.run_sync(to_16k_mono, pcm, rate, channels)
    if not converted:
        raise ChatRejected("<audio url=…>: no audio samples")
    return AudioChat(text, converted)
