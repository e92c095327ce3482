"""Record a TTA stream's events to files: ``Recorder("out.mp4", subtitles="out.srt")``."""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

import anyio.to_thread

from avatarkit.errors import AvatarError, ValidationError
from avatarkit.media._atomic import Sink
from avatarkit.media.h264 import H264Writer
from avatarkit.media.mp4 import Mp4Writer
from avatarkit.media.subtitles import SUBTITLE_SUFFIXES, SubtitleTrack
from avatarkit.media.wav import WavWriter
from avatarkit.tta.events import (
    AllSubtitles,
    AudioChunk,
    Event,
    SubtitleOff,
    SubtitleOn,
    VideoChunk,
    VoiceStart,
)

__all__ = ["MEDIA_SUFFIXES", "Recorder", "Recording"]

MEDIA_SUFFIXES: Final = (".mp4", ".mov", ".h264", ".264", ".wav")

# Work queued by feed() and done by a writer: PCM, an access unit, or N bytes of silence.
_AUDIO: Final = 0
_VIDEO: Final = 1
_SILENCE: Final = 2
_Op = tuple[int, bytes | int]

# afeed() hands a batch to a worker thread once this much media is pending: few enough
# thread hops (~2 per second of media) and little memory.
_BATCH_MS: Final = 500
_BATCH_BYTES: Final = 1 << 20
# feed() alone cannot wait for a thread, so past this it writes inline to bound memory
# (for MP4 about 20 ms of AAC encoding per second of media).
_INLINE_MS: Final = 1_000
_INLINE_BYTES: Final = 4 << 20


@dataclass(frozen=True, slots=True)
class Recording:
    """What a finished :class:`Recorder` wrote.

    ``audio_seconds`` counts the PCM received plus the silence inserted to keep audio in
    step with the video between utterances; ``video_frames`` the access units received.
    """

    path: Path
    audio: Path | None
    subtitles: Path | None
    audio_seconds: float
    video_frames: int
    subtitle_cues: int

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file written."""
        return tuple(p for p in (self.path, self.audio, self.subtitles) if p is not None)


def _suffix(path: Path, allowed: tuple[str, ...], field: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise ValidationError(field, str(path), f"the file name must end in {', '.join(allowed)}")
    return suffix


class Recorder(Sink):
    """Writes the media and subtitles of a stream's events to files, chosen by suffix.

    ``path``: ``.mp4``/``.mov`` (H.264 as received + AAC audio, needs the ``media`` extra),
    ``.h264`` (raw Annex-B video) or ``.wav`` (the PCM). ``subtitles``: an ``.srt`` or
    ``.vtt`` file of the subtitle events (``AllSubtitles`` wins when it comes). ``audio``:
    an extra ``.wav`` of the PCM. Every file is written under a temp name and renamed only
    when :meth:`aclose`/:meth:`close` succeeds; :meth:`abort` (or an error) removes them.

    Feed it every event, from an async tap (``await recorder.afeed(event)``) or a sync one
    (``recorder.feed(event)``). Both only copy the payload into a pending batch, so an
    event costs microseconds. ``afeed`` hands each batch (about 0.5 s of media) to a worker
    thread (``anyio.to_thread``) that AAC-encodes, muxes and writes it, so the event loop
    never encodes and memory stays at one or two batches, however long the stream.
    ``feed`` alone writes inline once 1 s of media is pending (for MP4 about 20 ms of AAC
    encoding), which keeps memory bounded but blocks the loop that long: prefer ``afeed``.
    ``aclose()`` finishes the files in a worker thread.

    Between utterances the audio is padded with silence up to the video's clock (at each
    ``VoiceStart``), so that audio, video and subtitle times stay on one timeline. Attach
    the recorder when the stream opens: subtitle times are the stream's, and video before
    the first keyframe is dropped.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        subtitles: str | os.PathLike[str] | None = None,
        audio: str | os.PathLike[str] | None = None,
        fps: int = 25,
        sample_rate: int = 16_000,
    ) -> None:
        if not isinstance(fps, int) or not 1 <= fps <= 240:
            raise ValidationError("fps", fps, "must be an integer between 1 and 240")
        if not isinstance(sample_rate, int) or not 1_000 <= sample_rate <= 384_000:
            raise ValidationError("sample_rate", sample_rate, "must be between 1000 and 384000")
        target = Path(path)
        kind = _suffix(target, MEDIA_SUFFIXES, "path")
        sub_path = Path(subtitles) if subtitles is not None else None
        wav_path = Path(audio) if audio is not None else None
        if sub_path is not None:
            _suffix(sub_path, SUBTITLE_SUFFIXES, "subtitles")
            if not sub_path.parent.is_dir():  # fail now, not after the media is finished
                raise FileNotFoundError(f"no such directory: {str(sub_path.parent)!r}")
        if wav_path is not None:
            _suffix(wav_path, (".wav",), "audio")
        paths = [p.resolve() for p in (target, sub_path, wav_path) if p is not None]
        if len(set(paths)) != len(paths):
            raise ValidationError("path", str(target), "path, subtitles and audio must differ")

        self.fps = fps
        self.sample_rate = sample_rate
        self._target = target
        self._sub_path = sub_path
        self._wav_path = wav_path
        self._video: Mp4Writer | H264Writer | None = None
        self._audio: list[Mp4Writer | WavWriter] = []
        self._subs = SubtitleTrack() if sub_path is not None else None
        try:
            if kind in (".mp4", ".mov"):
                mp4 = Mp4Writer(target, fps=fps, sample_rate=sample_rate)
                self._video = mp4
                self._audio.append(mp4)
            elif kind in (".h264", ".264"):
                self._video = H264Writer(target)
            else:
                self._audio.append(WavWriter(target, sample_rate=sample_rate))
            if wav_path is not None:
                self._audio.append(WavWriter(wav_path, sample_rate=sample_rate))
        except BaseException:
            self._abort_writers()
            raise

        self._pending: list[_Op] = []
        self._pending_bytes = 0
        self._pending_audio = 0  # bytes of PCM in _pending
        self._pending_video = 0  # access units in _pending
        self._queue: deque[list[_Op]] = deque()  # batches in order, drained by one writer
        self._lock = threading.Lock()  # one writer at a time (loop thread or worker)
        self._audio_bytes = 0
        self._video_frames = 0
        self._state: Literal["open", "closing", "closed", "failed", "aborted"] = "open"
        self._error: BaseException | None = None
        self._result: Recording | None = None

    def __repr__(self) -> str:
        return f"Recorder({str(self._target)!r}, {self._state})"

    # -- the clock -------------------------------------------------------------------------

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio fed so far (silence padding included)."""
        return self._audio_bytes / (2 * self.sample_rate)

    @property
    def video_frames(self) -> int:
        """Video access units fed so far."""
        return self._video_frames

    def _now_ms(self) -> int:
        if self._video_frames:
            return self._video_frames * 1000 // self.fps
        return self._audio_bytes * 1000 // (2 * self.sample_rate)

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Take one event (any type; non-media events are ignored). Cheap, synchronous."""
        self._accept(event)
        if self._due(_INLINE_MS, _INLINE_BYTES):
            self._enqueue()
            self._drain()

    async def afeed(self, event: Event) -> None:
        """Take one event; every ~0.5 s of media, write the batch in a worker thread."""
        self._accept(event)
        if self._due(_BATCH_MS, _BATCH_BYTES):
            self._enqueue()
            await anyio.to_thread.run_sync(self._drain)

    def _accept(self, event: Event) -> None:
        self._check_open()
        if isinstance(event, AudioChunk):
            if self._audio:
                # A copy: the memoryview pins the whole received frame.
                self._push(_AUDIO, bytes(event.pcm))
                self._pending_audio += len(event.pcm)
            self._audio_bytes += len(event.pcm)
        elif isinstance(event, VideoChunk):
            if self._video is not None:
                self._push(_VIDEO, bytes(event.nal))
                self._pending_video += 1
            self._video_frames += 1
        elif isinstance(event, VoiceStart):
            # Catch the audio up with the video (idle frames between utterances, and the
            # last frame of an utterance is padded past its audio), so the next utterance's
            # audio lines up with its video.
            behind = self._video_frames * self.sample_rate // self.fps * 2 - self._audio_bytes
            if behind > 0 and self._audio:
                self._pending.append((_SILENCE, behind))
                self._audio_bytes += behind
        elif isinstance(event, SubtitleOn | SubtitleOff | AllSubtitles) and self._subs is not None:
            self._subs.add(event, now_ms=self._now_ms())

    def _push(self, kind: int, data: bytes) -> None:
        self._pending.append((kind, data))
        self._pending_bytes += len(data)

    def _due(self, ms: int, size: int) -> bool:
        audio_ms = self._pending_audio * 1000 // (2 * self.sample_rate)
        video_ms = self._pending_video * 1000 // self.fps
        return max(audio_ms, video_ms) >= ms or self._pending_bytes >= size

    def _enqueue(self) -> None:
        # Runs on the caller's thread, in event order; whoever drains next writes them in order.
        if self._pending:
            self._queue.append(self._pending)
            self._pending = []
        self._pending_bytes = self._pending_audio = self._pending_video = 0

    def _drain(self) -> None:
        with self._lock:
            while self._queue and self._state in ("open", "closing"):
                batch = self._queue.popleft()
                try:
                    self._write(batch)
                except BaseException as exc:
                    self._fail(exc)
                    raise

    def _write(self, batch: list[_Op]) -> None:
        for kind, data in batch:
            if kind == _VIDEO:
                assert isinstance(data, bytes)
                if isinstance(self._video, Mp4Writer):
                    self._video.write_video(data)
                elif self._video is not None:
                    self._video.write(data)
            elif kind == _AUDIO:
                assert isinstance(data, bytes)
                self._write_audio(data)
            else:
                assert isinstance(data, int)
                step = 2 * self.sample_rate  # a second at a time: gaps can be long
                for offset in range(0, data, step):
                    self._write_audio(bytes(min(step, data - offset)))

    def _write_audio(self, pcm: bytes) -> None:
        for sink in self._audio:
            if isinstance(sink, Mp4Writer):
                sink.write_audio(pcm)
            else:
                sink.write(pcm)

    # -- finishing -------------------------------------------------------------------------

    async def aclose(self) -> Recording:
        """Write what is pending and finish every file, in a worker thread (idempotent)."""
        if self._result is not None:
            return self._result
        self._begin_close()
        return await anyio.to_thread.run_sync(self._finish)

    def close(self) -> Recording:
        """Like :meth:`aclose`, on the calling thread."""
        if self._result is not None:
            return self._result
        self._begin_close()
        return self._finish()

    def _begin_close(self) -> None:
        self._check_open()
        self._enqueue()
        self._state = "closing"

    def _finish(self) -> Recording:
        self._drain()
        with self._lock:
            try:
                if self._state != "closing":  # aborted meanwhile
                    raise AvatarError("the recording was aborted")
                sinks = (self._video, *self._audio)
                for sink in {id(w): w for w in sinks if w is not None}.values():  # mp4 is both
                    sink.close()
                sub_path = None
                if self._subs is not None and self._sub_path is not None:
                    sub_path = self._subs.write(self._sub_path)
            except BaseException as exc:
                self._fail(exc)
                raise
            self._state = "closed"
            self._result = Recording(
                path=self._target,
                audio=self._wav_path,
                subtitles=sub_path,
                audio_seconds=self.audio_seconds,
                video_frames=self._video_frames,
                subtitle_cues=len(self._subs) if self._subs is not None else 0,
            )
            return self._result

    def abort(self) -> None:
        """Stop and remove every unfinished file; idempotent, a no-op once closed."""
        with self._lock:
            if self._state in ("closed", "failed", "aborted"):
                return
            self._state = "aborted"
            self._queue.clear()
            self._pending = []
            self._abort_writers()

    def _fail(self, exc: BaseException) -> None:
        self._state = "failed"
        self._error = exc
        self._queue.clear()
        self._pending = []
        self._abort_writers()

    def _abort_writers(self) -> None:
        for sink in (self._video, *self._audio):
            if sink is not None:
                sink.abort()

    def _check_open(self) -> None:
        if self._state == "open":
            return
        if self._state == "failed":
            raise AvatarError(f"recording to {self._target.name} failed") from self._error
        raise AvatarError(f"the recorder of {self._target.name} is {self._state}")

    async def __aenter__(self) -> Recorder:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.aclose()
        else:
            self.abort()
