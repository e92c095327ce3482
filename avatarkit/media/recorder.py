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

    Returned by :meth:`Recorder.aclose` / :meth:`Recorder.close`; every path in it names
    a finished file.
    """

    path: Path
    """The media file (``.mp4``/``.mov``, ``.h264`` or ``.wav``), as given."""
    audio: Path | None
    """The extra ``.wav`` of the PCM, or ``None`` when none was asked for."""
    subtitles: Path | None
    """The ``.srt``/``.vtt`` file, or ``None`` when none was asked for."""
    audio_seconds: float
    """Seconds of audio: the PCM received plus the silence inserted to keep the audio in
    step with the video between utterances."""
    video_frames: int
    """Video access units received (25 per second of video at the default ``fps``)."""
    subtitle_cues: int
    """Cues in the subtitle file (0 without one)."""

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
    the first keyframe is dropped. ``fps`` (default 25) and ``sample_rate`` in Hz
    (default 16000) are the stream's video rate and PCM rate: TTA's defaults. Used as
    ``async with`` (or ``with``), the files are finished on a clean exit and removed on an
    exception.

    Raises:
        ValidationError: a suffix not listed above, ``fps`` not an integer from 1 to 240,
            ``sample_rate`` not between 1000 and 384000, or two of the paths the same.
        ValidationError: the subtitles file's directory does not exist (checked now,
            not after the media is finished).
        AvatarError: ``.mp4``/``.mov`` without PyAV (the message names the ``media``
            extra).
        ValidationError: a temp file cannot be created; those already created are removed.
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
                raise ValidationError(
                    "subtitles", str(sub_path), "cannot be written: no such directory"
                )
        if wav_path is not None:
            _suffix(wav_path, (".wav",), "audio")
        paths = [p.resolve() for p in (target, sub_path, wav_path) if p is not None]
        if len(set(paths)) != len(paths):
            raise ValidationError("path", str(target), "path, subtitles and audio must differ")

        self.fps = fps
        """Video frames per second of the stream: the video's clock, which silence padding
        and subtitle times without their own follow."""
        self.sample_rate = sample_rate
        """Sample rate of the stream's PCM (16-bit mono), in Hz."""
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
        """Take one event (any type; non-media events are ignored). Cheap, synchronous.

        Copies the payload into the pending batch; once 1 s of media (or 4 MiB) is
        pending, writes it on the calling thread (blocking an event loop that long).

        Raises:
            AvatarError: the recorder is closing, closed or aborted, or an earlier write
                failed (chained to that error); or writing this batch failed (an FFmpeg
                error, a WAV past 4 GiB).
            ValidationError: writing this batch failed (a full disk).

        A failed write removes every unfinished file, and every later call raises
        :class:`AvatarError`.
        """
        self._accept(event)
        if self._due(_INLINE_MS, _INLINE_BYTES):
            self._enqueue()
            self._drain()

    async def afeed(self, event: Event) -> None:
        """Take one event; every ~0.5 s of media, write the batch in a worker thread.

        Copies the payload into the pending batch; once 0.5 s of media (or 1 MiB) is
        pending, the batch is written by ``anyio.to_thread`` while the loop goes on.
        Batches are written in event order.

        Raises:
            AvatarError: the recorder is closing, closed or aborted, or an earlier write
                failed (chained to that error); or writing this batch failed (an FFmpeg
                error, a WAV past 4 GiB).
            ValidationError: writing this batch failed (a full disk).

        A failed write removes every unfinished file, and every later call raises
        :class:`AvatarError`.

        Cancellation:
            The event is always taken. Cancelled before the worker thread starts, the
            batch stays queued and the next ``afeed``/``feed``/``aclose`` writes it;
            once the thread runs, the cancellation waits for it to finish the batch (the
            thread is never abandoned). The recorder stays open: leave its ``async
            with`` (which then removes the files) or call :meth:`abort`.
        """
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
        """Write what is pending and finish every file, in a worker thread (idempotent).

        Writes the queued batches, closes each writer (each renames its temp file into
        place), then writes the subtitles; returns the :class:`Recording`. Later calls
        return the same :class:`Recording`.

        Raises:
            AvatarError: the recorder was aborted or failed before (chained to that error),
                is already closing, or an MP4 got nothing to record; or FFmpeg failed.
            ValidationError: writing or renaming a file failed.

        On a failure the files not yet finished are removed; one already moved into place
        (the media file when the subtitles fail) stays.

        Cancellation:
            Shielded: the files are finished (or, on a failure, removed) before the
            cancellation is delivered, so no temp file is left behind; a later
            ``aclose()`` returns the :class:`Recording`.
        """
        if self._result is not None:
            return self._result
        self._begin_close()
        # Shielded: a cancel before the worker starts would leave the recorder closing
        # forever, its temp files on disk.
        with anyio.CancelScope(shield=True):
            result = await anyio.to_thread.run_sync(self._finish)
        return result

    def close(self) -> Recording:
        """Like :meth:`aclose`, on the calling thread (blocking it while the files finish).

        Raises:
            AvatarError: the recorder was aborted or failed before (chained to that error),
                is already closing, or an MP4 got nothing to record; or FFmpeg failed.
            ValidationError: writing or renaming a file failed.

        On a failure the files not yet finished are removed; one already moved into place
        stays.
        """
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
        """Stop and remove every unfinished file; idempotent, a no-op once closed.

        Drops the pending and queued media and aborts every writer (each removes its
        ``.partial`` temp file; no target path is touched). If a worker thread is writing
        a batch, waits for it first. The recorder cannot be used afterwards.

        Raises:
            ValidationError: a writer failed to flush or remove its temp file (rare).
        """
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
