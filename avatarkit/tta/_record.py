"""The recording tap: recorders fed every event a stream hands to its user."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

import anyio

from avatarkit.tta import events as ev

if TYPE_CHECKING:
    from avatarkit.media import Recorder
    from avatarkit.media import Recording as RecordingResult

__all__ = ["StreamRecording", "Taps"]


class Taps(list["Recorder"]):
    """The recorders in progress on one stream (a list: its truth test is free)."""

    async def feed(self, event: ev.Event) -> None:
        for recorder in self:
            await recorder.afeed(event)


class StreamRecording:
    """``async with stream.record(...)``: the recording tap; ``result`` once it ends."""

    def __init__(self, taps: Taps, recorder: Recorder) -> None:
        self._taps = taps
        self._recorder = recorder
        self.result: RecordingResult | None = None
        """The files written, once the block has ended without an error (else None)."""

    async def __aenter__(self) -> StreamRecording:
        self._taps.append(self._recorder)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self._taps.remove(self._recorder)
        if exc_type is not None:
            self._recorder.abort()  # nothing half-written is left behind
            return
        with anyio.CancelScope(shield=True):
            self.result = await self._recorder.aclose()
