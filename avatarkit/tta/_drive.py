"""Streamed audio drive: PCM re-cut into 1-second ``|CTL|08|`` frames, sent
alongside the iteration of the events it causes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.abc import TaskGroup

from avatarkit.tta import events as ev
from avatarkit.tta import frames
from avatarkit.tta.audio import SECOND_BYTES, PcmConverter, Rechunker

if TYPE_CHECKING:
    from avatarkit.tta.stream import Utterance

__all__ = ["AudioDrive", "DriveHost"]


class DriveHost(Protocol):
    """What a drive needs from its stream."""

    @property
    def task_group(self) -> TaskGroup: ...

    async def send(self, frame: str | bytes) -> None: ...

    def utterance(self) -> Utterance:
        """An utterance whose "chat" is the audio (begun by the caller, not sent)."""
        ...


class AudioDrive:
    """The events caused by streamed audio; sending runs alongside (see ``drive_audio``).

    A failure to send (the source raised, the connection dropped) ends the
    iteration with that error; leaving the iteration stops the sending.
    """

    def __init__(self, host: DriveHost, pieces: AsyncIterator[tuple[bytes, int, int]]) -> None:
        self._host = host
        self._pieces = pieces
        self._utterance: Utterance | None = None
        self._scope = anyio.CancelScope()
        self._failure: Exception | None = None
        self.bytes_sent = 0
        """16 kHz mono PCM bytes handed to the socket so far."""
        self.frames_sent = 0
        """``|CTL|08|`` frames sent so far, the tail included."""

    def __aiter__(self) -> AudioDrive:
        return self

    async def _send(self, utterance: Utterance) -> None:
        send = self._host.send
        with self._scope:
            try:
                converter: PcmConverter | None = None
                chunker = Rechunker(SECOND_BYTES)
                async for data, rate, channels in self._pieces:
                    if converter is None:
                        converter = PcmConverter(rate, channels)
                    for chunk in chunker.feed(converter.feed(data)):
                        await send(frames.encode_audio(chunk))
                        self.bytes_sent += len(chunk)
                        self.frames_sent += 1
                tail = chunker.tail()
                await send(frames.encode_audio(tail, last=True))
                self.bytes_sent += len(tail)
                self.frames_sent += 1
            except Exception as exc:  # delivered to the iterator, never to the session
                self._failure = exc
                utterance.fail(exc)

    async def __anext__(self) -> ev.Event:
        utterance = self._utterance
        if utterance is None:
            utterance = self._utterance = self._host.utterance()
            self._host.task_group.start_soon(self._send, utterance)
        try:
            return await utterance.__anext__()
        except BaseException:
            self._scope.cancel()
            raise

    async def aclose(self) -> None:
        """Stop sending (the rest of the audio is not sent).  Raises nothing.

        Cancellation:
            Safe: it does not wait.
        """
        self._scope.cancel()

    async def collect(self) -> list[ev.Event]:
        """Send all the audio and return every event it caused, to its voice_end.

        Raises:
            ValidationError: the source's audio format is unsupported.
            OSError: the WAV file could not be read.
            ServiceError: the service refused the audio (its ``|MSG|`` code).
            TimeoutError: the service was silent past ``idle_timeout``.
            ConnectionLost: the connection dropped.
            StreamClosed: the stream is not open.

        A source iterable's own exception ends the iteration as it is.

        Cancellation:
            Sending stops with the iteration (the rest of the audio is not sent);
            the stream stays open.
        """
        return [event async for event in self]
