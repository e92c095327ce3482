"""State the emulator's services share: options, counters, produced files."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

import anyio

from avatarkit.emulator.digime import DigimeStore
from avatarkit.emulator.metastudio import MetaStudioStore
from avatarkit.emulator.options import EmulatorOptions

__all__ = ["EmulatorState", "Stats"]


@dataclass
class Stats:
    """Counters tests and benchmarks read."""

    tta_connections: int = 0  # open right now
    tta_sessions_opened: int = 0
    tta_frames_sent: int = 0
    tta_rejected_opens: int = 0
    tta_sessions_active: int = 0  # sessions open right now (open reply sent, not yet ended)
    tta_sessions_peak: int = 0  # the most that were open at once
    tta_videos_delivered: int = 0  # produced videos sent whole (|DAT|04| or a download's end)
    digime_parts_received: int = 0  # parts stored (a replaced part counts again)
    digime_part_bytes: int = 0  # decoded bytes of those parts
    digime_injected_failures: int = 0  # part uploads failed on purpose (shaping)
    digime_callbacks_sent: int = 0  # training callbacks the receiver answered with 2xx
    metastudio_parts_uploaded: int = 0  # presigned PUTs stored (video parts and single files)
    metastudio_put_bytes: int = 0  # bytes of those PUTs
    metastudio_put_rejected: int = 0  # presigned PUTs refused (reused URL, bad length…)
    metastudio_injected_failures: int = 0  # presigned PUTs failed on purpose (shaping)


@dataclass
class EmulatorState:
    options: EmulatorOptions
    stats: Stats = field(default_factory=Stats)
    busy_left: int = 0
    running: bool = False
    started: anyio.Event = field(default_factory=anyio.Event)
    _videos: OrderedDict[str, tuple[str, bytes, str]] = field(default_factory=OrderedDict)
    digime: DigimeStore = field(default_factory=DigimeStore)
    metastudio: MetaStudioStore = field(default_factory=MetaStudioStore)

    def __post_init__(self) -> None:
        self.busy_left = self.options.busy_opens

    def store_video(self, data: bytes, codec: str) -> tuple[str, str]:
        """Keep a produced video; returns (id, signature) for its URL."""
        video_id = secrets.token_hex(8)
        signature = secrets.token_urlsafe(16)
        self._videos[video_id] = (signature, data, codec)
        while len(self._videos) > self.options.keep_videos:
            self._videos.popitem(last=False)
        return video_id, signature

    def video(self, video_id: str, signature: str) -> tuple[bytes, str] | None:
        entry = self._videos.get(video_id)
        if entry is None or not secrets.compare_digest(entry[0], signature):
            return None
        return entry[1], entry[2]
