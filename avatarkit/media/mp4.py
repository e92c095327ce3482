"""Mux live PCM + H.264 access units into an MP4/MOV file with PyAV (``media`` extra)."""

from __future__ import annotations

import contextlib
import os
import sys
from array import array
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from avatarkit.errors import AvatarError, ValidationError
from avatarkit.media._atomic import Partial, Sink, disk_errors
from avatarkit.media.h264 import NAL_IDR, NAL_SPS, nal_types

__all__ = ["Mp4Writer", "require_av"]

_AAC_RATE: Final = 48_000  # AAC frames of 1024 samples last 21 ms here, under one video frame
_AAC_BIT_RATE: Final = 64_000  # plenty for mono speech
# Audio held back while no keyframe has fixed the video stream's parameters. Past this,
# with no usable video in sight, the file is written audio-only.
_MAX_PENDING_SECONDS: Final = 60
_BIG_ENDIAN: Final = sys.byteorder == "big"


def require_av() -> Any:
    """Import PyAV or raise an :class:`AvatarError` naming the ``media`` extra."""
    try:
        import av
    except ImportError as exc:
        raise AvatarError("writing MP4/MOV needs PyAV: pip install 'avatarkit[media]'") from exc
    return av


class Mp4Writer(Sink):
    """Muxes PCM (s16le mono) and H.264 Annex-B access units into ``.mp4``/``.mov``.

    The video is not re-encoded: each access unit becomes one packet, frame *i* (counting
    every :meth:`write_video` call) at ``i / fps``. Width, height and the ``avcC`` header come
    from the first keyframe's in-band SPS/PPS; access units before it are dropped (nothing
    could decode them). Audio is encoded to AAC (48 kHz, PyAV resamples), stamped by
    sample count from 0, and padded with silence at :meth:`close` to the end of the video.

    Work happens as data arrives, straight into ``.{name}.partial`` beside ``path`` (MP4
    needs a seekable file); only the audio that arrives before the first keyframe is held
    in memory (at most 60 s: past that, the file is written audio-only). :meth:`close`
    writes the index and renames the file into place; :meth:`abort` removes it. Methods
    are synchronous and CPU-bound: call them from a worker thread in an async program (as
    :class:`~avatarkit.media.Recorder` does). A ``.mov`` path makes a QuickTime file, any
    other suffix MP4; the index is moved to the front at close (``faststart``), so the file
    plays while it downloads. ``fps`` (default 25, the TTA video's) and ``sample_rate`` in
    Hz (default 16000) describe the input.

    Raises:
        AvatarError: PyAV is not installed (the message names the ``media`` extra), or
            FFmpeg cannot open the output.
        ValidationError: ``fps`` is not an integer from 1 to 240, or ``sample_rate`` is
            not between 1000 and 384000.
        ValidationError: the temp file cannot be created (a missing directory, no permission).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, fps: int = 25, sample_rate: int = 16_000
    ) -> None:
        self._av = require_av()
        if not isinstance(fps, int) or not 1 <= fps <= 240:
            raise ValidationError("fps", fps, "must be an integer between 1 and 240")
        if not 1_000 <= sample_rate <= 384_000:
            raise ValidationError("sample_rate", sample_rate, "must be between 1000 and 384000")
        self.fps = fps
        """Video frames per second: frame *i* is stamped at ``i / fps`` seconds."""
        self.sample_rate = sample_rate
        """Sample rate of the PCM given to :meth:`write_audio`, in Hz."""
        self._partial = Partial(path)
        suffix = self._partial.path.suffix.lower()
        fmt = "mov" if suffix == ".mov" else "mp4"
        self._out: Any = None
        with self._errors():
            # faststart moves the index to the front at close: the file plays while downloading.
            options = {"movflags": "faststart"}
            self._out = self._av.open(
                str(self._partial.temp), "w", format=fmt, container_options=options
            )
        self._vstream: Any = None
        self._astream: Any = None
        self._started = False  # streams added, header written
        self._saw_video = False
        self._pending_audio: list[bytes] = []
        self._pending_bytes = 0
        self._odd = b""  # a byte of a sample split across two writes
        self._closed: Path | None = None
        self.video_frames = 0
        """Access units received so far, muxed or not (they set the video's clock)."""
        self.video_written = 0
        """Access units muxed so far (those from the first keyframe on)."""
        self.audio_samples = 0
        """Samples handed to the AAC encoder so far (silence padding included)."""
        self.width = 0
        """Picture width in pixels, read from the first keyframe's SPS (0 until then)."""
        self.height = 0
        """Picture height in pixels, read from the first keyframe's SPS (0 until then)."""

    @property
    def path(self) -> Path:
        """The target file; it exists only once :meth:`close` has succeeded."""
        return self._partial.path

    # -- writing ---------------------------------------------------------------------------

    def write_video(self, au: bytes | bytearray | memoryview) -> None:
        """Add the next frame: one complete H.264 access unit, Annex-B.

        Muxed as one packet at ``index / fps`` without re-encoding. Until a keyframe with
        its SPS arrives, units are counted (they keep the clock) but not written; the
        first one fixes the picture size and flushes the audio held back.

        Raises:
            AvatarError: the writer is closed or aborted, the picture size cannot be read
                from the SPS, or FFmpeg refuses the packet.
            ValidationError: writing the temp file failed (a full disk); it stays until
                :meth:`abort`.
        """
        self._check_open()
        index = self.video_frames
        self.video_frames += 1
        self._saw_video = True
        types = set(nal_types(au))
        key = NAL_IDR in types
        with self._errors():
            if not self._started:
                if not (key and NAL_SPS in types):
                    return
                self._start(bytes(au))
            if self._vstream is None:  # audio-only file: the video came too late
                return
            packet = self._av.Packet(bytes(au))
            packet.stream = self._vstream
            packet.time_base = Fraction(1, self.fps)
            packet.pts = packet.dts = index
            packet.duration = 1
            packet.is_keyframe = key
            self._out.mux(packet)
            self.video_written += 1

    def write_audio(self, pcm: bytes | bytearray | memoryview) -> None:
        """Add PCM (s16le mono at ``sample_rate``), contiguous with what came before.

        Encoded to AAC and muxed at once; any length is taken (a byte of a split sample
        waits for the next call). Before the first keyframe the audio is held in memory,
        at most 60 s; past that the file is started audio-only and later video is
        ignored.

        Raises:
            AvatarError: the writer is closed or aborted, or FFmpeg fails to encode.
            ValidationError: writing the temp file failed (a full disk); it stays until
                :meth:`abort`.
        """
        self._check_open()
        data = self._odd + bytes(pcm)
        cut = len(data) & ~1
        data, self._odd = data[:cut], data[cut:]
        if not data:
            return
        if not self._started:
            self._pending_audio.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > _MAX_PENDING_SECONDS * self.sample_rate * 2:
                with self._errors():
                    self._start(None)
            return
        with self._errors():
            self._encode(data)

    def _start(self, keyframe: bytes | None) -> None:
        """Add the streams (video only with a keyframe) and flush the held-back audio."""
        av = self._av
        if keyframe is not None:
            # PyAV's decoder reads the SPS for the picture size; movenc builds avcC from the
            # SPS/PPS of the first packet it muxes, which is this keyframe.
            decoder = av.CodecContext.create("h264", "r")
            decoder.decode(av.Packet(keyframe))
            self.width, self.height = int(decoder.width), int(decoder.height)
            if not (self.width and self.height):
                raise AvatarError(f"{self.path.name}: cannot read the picture size from the SPS")
            self._vstream = self._out.add_mux_stream(
                "h264", rate=self.fps, width=self.width, height=self.height
            )
        self._astream = self._out.add_stream(
            "aac", rate=_AAC_RATE, layout="mono", options={"aac_coder": "fast"}
        )
        self._astream.bit_rate = _AAC_BIT_RATE
        self._started = True
        pending, self._pending_audio, self._pending_bytes = self._pending_audio, [], 0
        for data in pending:
            self._encode(data)

    def _encode(self, data: bytes) -> None:
        av = self._av
        samples = len(data) // 2
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.sample_rate = self.sample_rate
        frame.time_base = Fraction(1, self.sample_rate)
        frame.pts = self.audio_samples
        if _BIG_ENDIAN:  # PyAV's s16 is native-endian
            swapped = array("h", data)
            swapped.byteswap()
            data = swapped.tobytes()
        memoryview(frame.planes[0])[: len(data)] = data
        self.audio_samples += samples
        # The encoder's own resampler turns s16 @ sample_rate into fltp @ 48 kHz.
        self._out.mux(self._astream.encode(frame))

    # -- finishing -------------------------------------------------------------------------

    def close(self) -> Path:
        """Finish the file (flush AAC, write the index) and move it into place (idempotent).

        Pads the audio with silence to the end of the last video frame, flushes the AAC
        encoder, writes the index at the front and renames the temp file to
        :attr:`path`; returns it. Audio with no usable video makes an audio-only file. A
        second call returns the same path.

        Raises:
            AvatarError: the writer was aborted, nothing was recorded (no audio and no
                keyframe), or FFmpeg fails; the temp file is then removed.
            ValidationError: writing or renaming failed; the temp file is then removed.
        """
        if self._closed is not None:
            return self._closed
        self._check_open()
        try:
            with self._errors():
                if not self._started:
                    if not self._pending_audio:
                        raise AvatarError(f"{self.path.name}: nothing was recorded")
                    self._start(None)
                if self._vstream is not None:
                    # Silence to the end of the last frame, so both tracks end together.
                    end = self.video_frames * self.sample_rate // self.fps
                    while end > self.audio_samples:  # a second at a time: gaps can be long
                        self._encode(bytes(2 * min(end - self.audio_samples, self.sample_rate)))
                self._out.mux(self._astream.encode(None))
                self._out.close()
                self._out = None
            self._closed = self._partial.commit()
            return self._closed
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard the unfinished file; idempotent, a no-op after :meth:`close`.

        Closes the container (its errors ignored), drops the held-back audio and removes
        the ``.partial`` temp file; :attr:`path` is never touched.

        Raises:
            ValidationError: removing the temp file failed (rare: no permission).
        """
        out, self._out = self._out, None
        self._pending_audio = []
        if out is not None:
            with contextlib.suppress(Exception):  # it is being thrown away anyway
                out.close()
        self._vstream = self._astream = None
        if self._closed is None:
            with disk_errors(self.path):
                self._partial.discard()

    def _check_open(self) -> None:
        if self._out is None:
            raise AvatarError(f"{self.path.name}: the MP4 writer is closed")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:  # PyAV's file errors are OSErrors too: the disk's fault
            with disk_errors(self.path):
                raise exc from None
        except self._av.FFmpegError as exc:
            raise AvatarError(f"{self.path.name}: {exc}") from exc
