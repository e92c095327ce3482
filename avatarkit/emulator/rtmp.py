"""Live output for an ``rtmp`` session config: H.264 + AAC in FLV, pushed over RTMP.

Doc 001 §4 "实时直播": with ``{"rtmp": {"addr": "rtmp://…", "live_id": "…"}}`` the
service pushes the avatar's audio and video to ``addr`` while it speaks (SPEC §2.3).
:class:`RtmpPublisher` does that for the emulator. The session feeds it what it sends
on the WebSocket; how the push goes never changes what the session does.

Decisions (the documents say nothing about any of these):

* **Address.** The stream goes to ``addr`` exactly as given: it is the whole push URL
  (``rtmp://host[:port]/app/stream[?auth]``). ``live_id`` names the live room for the
  vendor's console and is not part of the URL.
* **No re-encode.** The video is the very H.264 access units the session sends as
  ``|DAT|01|`` (Annex B, SPS/PPS in-band on every IDR). PyAV takes the FLV sequence
  header (avcC) from the first IDR and FFmpeg's flv muxer rewrites each AU to
  length-prefixed NAL units. The audio is the ``|DAT|00|`` PCM (16 kHz mono s16le),
  resampled with :class:`av.AudioResampler` to 48 kHz float planar and encoded as
  AAC-LC mono; 48 kHz keeps one AAC packet (21 ms) shorter than a video frame.
* **Media time, not wall time.** Video frame *n* is at ``n / fps`` s and audio sample
  *k* at ``k / sample_rate`` s, counted over everything fed. The emulator only renders
  while the avatar speaks, so the live stream is the utterances back to back; with
  ``pace="fast"`` it arrives as a burst, which players and RTMP servers buffer. The
  first IDR starts the stream: video before it is dropped, audio waits for it.
  FFmpeg shifts the whole stream by the AAC encoder's priming (1024 samples, 21 ms)
  so that no timestamp is negative: the first video tag is at 21 ms.
* **A child process does the pushing.** PyAV opens the output (TCP connect, RTMP
  handshake) and writes the FLV header and trailer while holding the GIL. In the
  emulator's process that would freeze its event loop, every session with it, for as
  long as an unreachable address takes to time out (measured: a same-process
  listener deadlocks). ``python -c …`` runs :func:`_child_main`, which owns the
  PyAV container; the parent writes framed messages to its stdin from a thread.
* **Never stall the session.** ``feed_video``/``feed_audio`` only queue and return,
  so they are safe on the event loop. The queue holds at most ``buffer_ms`` of media
  per stream (default 30 s). When a slow peer lets it fill, new media is dropped, not
  waited for: audio chunks (the child fills the gap with silence, so audio stays in
  step with video) and video up to the next IDR (a P frame without its references
  would only show garbage). One WARNING is logged per overflow; the counts are in
  :attr:`RtmpPublisher.dropped_video_frames` and :attr:`RtmpPublisher.dropped_audio_ms`.
* **A failed push is logged and readable, not sent.** Doc 001 defines no message for
  it: its status frames (``|MSG|00|``, types 0-4) answer the client's open, close,
  chat, interrupt and production requests, and an unsolicited one would be taken as
  the answer to the client's next request. So the session goes on without live
  output; the publisher logs one WARNING naming the address by scheme, host and port
  only (the path and query carry the stream key) and the reason, and
  :attr:`RtmpPublisher.failure` holds that reason.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any, Final
from urllib.parse import urlsplit

import anyio

from avatarkit._redact import protected_logger

__all__ = ["AAC_FRAME", "AAC_RATE", "RtmpPublisher", "is_idr"]

log = protected_logger(__name__)

AAC_RATE: Final = 48_000  # Hz of the pushed AAC (see the module docstring)
AAC_FRAME: Final = 1024  # samples per AAC-LC packet
_SCHEMES: Final = ("rtmp", "rtmps")

# Parent -> child messages: kind, flags, position (frame index or sample offset), length.
_HEADER: Final = struct.Struct(">cBQI")
_CONFIG: Final = b"C"
_VIDEO: Final = b"V"
_AUDIO: Final = b"A"
_END: Final = b"E"
_KEYFRAME: Final = 1

# Child -> parent: one status line each on stdout.
_CONNECTED: Final = "connected"
_FAILED: Final = "failed"
_CLOSED: Final = "closed"


def _where(url: str) -> str:
    """Scheme, host and port of ``url``: its path and query usually hold the stream key."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<unparsable rtmp address>"
    if not host:
        return f"{parts.scheme}://<no host>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def is_idr(access_unit: bytes) -> bool:
    """Whether an Annex-B access unit holds an IDR slice (NAL type 5)."""
    i = access_unit.find(b"\x00\x00\x01")
    while 0 <= i < len(access_unit) - 3:
        if access_unit[i + 3] & 0x1F == 5:
            return True
        i = access_unit.find(b"\x00\x00\x01", i + 3)
    return False


# --------------------------------------------------------------------------------------------
# The backlog: what waits for the child, bounded in media time
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Message:
    kind: bytes
    position: int  # video: frame index; audio: offset in samples
    payload: bytes
    key: bool = False


class _Backlog:
    """Media waiting to be written to the child; offers never block (see "Never stall").

    At most ``limit_frames`` video frames and ``limit_samples`` audio samples wait.
    A video frame that does not fit is dropped, and so is every frame after it up to
    the next IDR; an audio chunk that does not fit is dropped alone.
    """

    def __init__(self, limit_frames: int, limit_samples: int) -> None:
        self._limit_frames = limit_frames
        self._limit_samples = limit_samples
        self._items: collections.deque[_Message] = collections.deque()
        self._frames = 0
        self._samples = 0
        self._cond = threading.Condition()
        self._finished = False
        self._video_gap = False  # dropping video until the next IDR
        self._overflowing = False  # inside an overflow episode
        self.dropped_frames = 0
        self.dropped_samples = 0
        self.overflows = 0  # overflow episodes so far (an accepted offer ends one)

    def offer_video(self, index: int, access_unit: bytes, key: bool) -> bool:
        with self._cond:
            if self._finished:
                return False
            if self._video_gap and not key:
                self.dropped_frames += 1
                return False
            if self._frames >= self._limit_frames:
                self._video_gap = True
                self.dropped_frames += 1
                self._overflow()
                return False
            self._video_gap = False
            self._put(_Message(_VIDEO, index, access_unit, key))
            self._frames += 1
            return True

    def offer_audio(self, offset: int, pcm: bytes) -> bool:
        samples = len(pcm) // 2
        with self._cond:
            if self._finished:
                return False
            if self._samples + samples > self._limit_samples:
                self.dropped_samples += samples
                self._overflow()
                return False
            self._put(_Message(_AUDIO, offset, pcm))
            self._samples += samples
            return True

    def _put(self, message: _Message) -> None:
        self._overflowing = False
        self._items.append(message)
        self._cond.notify()

    def _overflow(self) -> None:
        if not self._overflowing:
            self._overflowing = True
            self.overflows += 1

    def finish(self) -> None:
        """No more offers; :meth:`take` returns ``None`` once the backlog is drained."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def discard(self) -> None:
        """Finish and forget everything queued (the push has failed)."""
        with self._cond:
            self._finished = True
            self._items.clear()
            self._frames = self._samples = 0
            self._cond.notify_all()

    def take(self) -> _Message | None:
        """The oldest message, waiting for one; ``None`` when finished and drained."""
        with self._cond:
            while not self._items and not self._finished:
                self._cond.wait()
            if not self._items:
                return None
            message = self._items.popleft()
            if message.kind == _VIDEO:
                self._frames -= 1
            else:
                self._samples -= len(message.payload) // 2
            return message


# --------------------------------------------------------------------------------------------
# The publisher (runs in the emulator's process)
# --------------------------------------------------------------------------------------------


class RtmpPublisher:
    """Pushes fed H.264 access units and PCM to ``url`` as a live FLV stream over RTMP.

    ``feed_video`` takes one Annex-B access unit per frame (``fps`` frames a second);
    ``feed_audio`` takes 16-bit mono little-endian PCM at ``sample_rate``, in chunks of
    any even length. Both only queue (safe to call on the event loop) and never raise
    because of the network; after :meth:`close` they raise :class:`RuntimeError`.
    :meth:`close` ends the stream without waiting; :meth:`wait_closed` (or
    ``await`` :meth:`aclose`) waits up to ``close_timeout`` s for the queued media to
    be pushed, then kills the pusher. Not meant to be shared between threads.
    """

    def __init__(
        self,
        url: str,
        *,
        width: int,
        height: int,
        fps: int = 25,
        sample_rate: int = 16_000,
        buffer_ms: int = 30_000,
        close_timeout: float = 10.0,
    ) -> None:
        self.address = _where(url)
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in _SCHEMES:
            raise ValueError(f"url={self.address!r}: must be an rtmp:// or rtmps:// address")
        for name, value in (("width", width), ("height", height)):
            if value < 2 or value % 2:
                raise ValueError(f"{name}={value!r}: must be an even number of pixels >= 2")
        if fps < 1:
            raise ValueError(f"fps={fps!r}: must be >= 1")
        if sample_rate < 1:
            raise ValueError(f"sample_rate={sample_rate!r}: must be >= 1")
        if buffer_ms < 1:
            raise ValueError(f"buffer_ms={buffer_ms!r}: must be >= 1")
        self._config = {
            "url": url,
            "width": width,
            "height": height,
            "fps": fps,
            "sample_rate": sample_rate,
        }
        self.fps = fps
        self.sample_rate = sample_rate
        self.close_timeout = close_timeout
        self.buffer_ms = buffer_ms
        self._warned_overflows = 0
        self._backlog = _Backlog(
            max(1, buffer_ms * fps // 1000), max(1, buffer_ms * sample_rate // 1000)
        )
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._connected = False
        self._clean_close = False
        self._closed = False
        self._frames = 0
        self._samples = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._writer = threading.Thread(target=self._write_loop, name="rtmp-push", daemon=True)
        self._writer.start()

    # -- what the session reads ------------------------------------------------------------

    @property
    def failure(self) -> str | None:
        """Why the push failed (no address in it), or ``None`` while it has not."""
        return self._failure

    @property
    def connected(self) -> bool:
        """Whether the peer accepted the stream (the FLV header went out)."""
        return self._connected

    @property
    def duration_ms(self) -> int:
        """Media time fed so far, by the video clock."""
        return self._frames * 1000 // self.fps

    @property
    def audio_duration_ms(self) -> int:
        """Media time fed so far, by the audio clock."""
        return self._samples * 1000 // self.sample_rate

    @property
    def dropped_video_frames(self) -> int:
        return self._backlog.dropped_frames

    @property
    def dropped_audio_ms(self) -> int:
        return self._backlog.dropped_samples * 1000 // self.sample_rate

    # -- feeding ---------------------------------------------------------------------------

    def feed_video(self, access_unit: bytes) -> None:
        """Queue the next frame's H.264 access unit (Annex B)."""
        if self._closed:
            raise RuntimeError("RtmpPublisher.feed_video() after close()")
        index = self._frames
        self._frames += 1  # media time runs on even when the frame is dropped
        if self._failure is None:
            self._backlog.offer_video(index, bytes(access_unit), is_idr(access_unit))
            self._warn_overflow()

    def feed_audio(self, pcm: bytes) -> None:
        """Queue the next chunk of 16-bit mono little-endian PCM at ``sample_rate``."""
        if self._closed:
            raise RuntimeError("RtmpPublisher.feed_audio() after close()")
        if len(pcm) % 2:
            raise ValueError(f"pcm of {len(pcm)} bytes: 16-bit samples need an even length")
        offset = self._samples
        self._samples += len(pcm) // 2
        if pcm and self._failure is None:
            self._backlog.offer_audio(offset, bytes(pcm))
            self._warn_overflow()

    def feed(self, access_units: list[bytes], pcm: bytes) -> None:
        """One render: its access units, then the PCM they were rendered from.

        The PCM is padded with silence to the frames' duration, as the media engine pads
        a render's tail, so that audio and video stay in step from utterance to utterance.
        """
        for unit in access_units:
            self.feed_video(unit)
        short = self._frames * self.sample_rate // self.fps - self._samples - len(pcm) // 2
        self.feed_audio(bytes(pcm) + bytes(2 * short) if short > 0 else pcm)

    def _warn_overflow(self) -> None:
        overflows = self._backlog.overflows
        if overflows > self._warned_overflows:  # one warning per overflow episode
            self._warned_overflows = overflows
            log.warning(
                "live stream to %s: the peer is slower than the media (%d ms queued); "
                "dropping new media until it catches up",
                self.address,
                self.buffer_ms,
            )

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """End the stream: what is queued is still pushed, in the background. Idempotent."""
        self._closed = True
        self._backlog.finish()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the push has ended (at most ``timeout``, default ``close_timeout``
        seconds, then the pusher is killed); True if it ended by itself."""
        self.close()
        limit = self.close_timeout if timeout is None else timeout
        self._writer.join(limit)
        ended = not self._writer.is_alive()
        if not ended:
            log.warning("live stream to %s: not finished after %.1f s, killed", self.address, limit)
            self._kill()
            self._writer.join(5.0)  # the kill breaks its pipe at once
        return ended

    async def aclose(self) -> None:
        """:meth:`close`, then :meth:`wait_closed` in a worker thread."""
        self.close()
        await anyio.to_thread.run_sync(self.wait_closed)

    async def __aenter__(self) -> RtmpPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "failed" if self._failure else "connected" if self._connected else "pending"
        return f"RtmpPublisher({self.address!r}, {state}, {self.duration_ms} ms fed)"

    # -- the worker threads ----------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._failure is not None:
                return
            self._failure = reason
        self._backlog.discard()
        log.warning(
            "live stream to %s failed: %s; the session goes on without live output",
            self.address,
            reason,
        )

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    def _write_loop(self) -> None:
        try:
            proc = subprocess.Popen(
                _CHILD_COMMAND,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # tracebacks could carry the URL
                env=_child_env(),
            )
        except OSError as exc:
            self._fail(f"could not start the pusher process: {exc.strerror or exc}")
            return
        self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read_status, args=(proc.stdout,), name="rtmp-push-status", daemon=True
        )
        self._reader.start()
        try:
            _write_message(proc.stdin, _CONFIG, 0, json.dumps(self._config).encode())
            while (message := self._backlog.take()) is not None:
                flags = _KEYFRAME if message.key else 0
                _write_message(proc.stdin, message.kind, message.position, message.payload, flags)
            _write_message(proc.stdin, _END, 0, b"")
            proc.stdin.close()
        except OSError:
            pass  # the child is gone; its status line (or its exit code) says why
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            self._backlog.discard()
            try:
                code = proc.wait(self.close_timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                code = proc.wait()
            self._reader.join(5.0)
            if not self._clean_close and self._failure is None:
                self._fail(f"the pusher process ended with exit code {code}")

    def _read_status(self, stdout: IO[bytes]) -> None:
        with stdout:
            for raw in stdout:
                status, _, detail = raw.decode("utf-8", "replace").strip().partition(" ")
                if status == _CONNECTED:
                    self._connected = True
                    log.info("live stream to %s: connected, pushing", self.address)
                elif status == _FAILED:
                    self._fail(detail or "unknown error")
                elif status == _CLOSED:
                    self._clean_close = True


def _write_message(
    pipe: IO[bytes], kind: bytes, position: int, payload: bytes, flags: int = 0
) -> None:
    pipe.write(_HEADER.pack(kind, flags, position, len(payload)))
    pipe.write(payload)
    if kind in (_CONFIG, _END):
        pipe.flush()


_CHILD_COMMAND: Final = (
    sys.executable,
    "-c",
    "from avatarkit.emulator.rtmp import _child_main; raise SystemExit(_child_main())",
)


def _child_env() -> dict[str, str]:
    # The child must import this very avatarkit, installed or not.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


# --------------------------------------------------------------------------------------------
# The pusher (runs in the child process; every PyAV call happens here)
# --------------------------------------------------------------------------------------------


class _FlvPush:
    """The PyAV side: an FLV muxer writing to the RTMP URL, plus the AAC encoder."""

    def __init__(self, url: str, width: int, height: int, fps: int, sample_rate: int) -> None:
        import av

        self._av = av
        self._fps = fps
        self._sample_rate = sample_rate
        # Nothing touches the network until the first packet is muxed.
        self._out: Any = av.open(
            url, "w", format="flv", options={"flvflags": "no_duration_filesize"}
        )
        self._video: Any = self._out.add_mux_stream("h264", rate=fps, width=width, height=height)
        self._audio: Any = self._out.add_stream(
            "aac", rate=AAC_RATE, layout="mono", options={"aac_coder": "fast"}
        )
        self._audio.bit_rate = 64_000
        self._resampler: Any = av.AudioResampler(
            format="fltp", layout="mono", rate=AAC_RATE, frame_size=AAC_FRAME
        )
        self._next_sample = 0  # input samples consumed (including filled gaps)
        self._encoded = 0  # resampled samples handed to the encoder
        self._started = False  # the first IDR has been muxed: the stream is live
        self._held: list[Any] = []  # AAC packets waiting for the first IDR

    @property
    def started(self) -> bool:
        return self._started

    def video(self, index: int, access_unit: bytes, key: bool) -> None:
        if not self._started and not key:
            return  # a stream starts at an IDR: it carries the SPS/PPS
        packet = self._av.Packet(access_unit)
        packet.stream = self._video
        packet.time_base = Fraction(1, self._fps)
        packet.pts = packet.dts = index
        packet.duration = 1
        packet.is_keyframe = key
        self._out.mux(packet)  # the first one connects and writes the FLV header
        if not self._started:
            self._started = True
            for held in self._held:
                self._out.mux(held)
            self._held.clear()

    def audio(self, offset: int, pcm: bytes) -> None:
        if offset > self._next_sample:  # dropped upstream: silence keeps A/V in step
            self._encode(bytes(2 * (offset - self._next_sample)))
        elif offset < self._next_sample:  # overlaps what was encoded: keep the new part
            pcm = pcm[2 * (self._next_sample - offset) :]
        if pcm:
            self._encode(pcm)

    def _encode(self, pcm: bytes) -> None:
        frame = self._av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.sample_rate = self._sample_rate
        frame.time_base = Fraction(1, self._sample_rate)
        frame.pts = self._next_sample
        if sys.byteorder == "big":  # s16 frames are native-endian; the PCM is little
            import array

            swapped = array.array("h", pcm)
            swapped.byteswap()
            pcm = swapped.tobytes()
        frame.planes[0].update(pcm)
        self._next_sample += len(pcm) // 2
        self._mux_audio(self._resampler.resample(frame))

    def _mux_audio(self, frames: list[Any]) -> None:
        for resampled in frames:
            resampled.pts = self._encoded  # media time at 48 kHz, gaps included
            resampled.time_base = Fraction(1, AAC_RATE)
            self._encoded += resampled.samples
            self._mux_packets(self._audio.encode(resampled))

    def _mux_packets(self, packets: list[Any]) -> None:
        if self._started:
            for packet in packets:
                self._out.mux(packet)
        else:
            self._held.extend(packets)

    def close(self) -> None:
        """Flush the audio and end the stream (trailer, RTMP close)."""
        if self._started:
            self._mux_audio(self._resampler.resample(None))
            self._mux_packets(self._audio.encode(None))
            self._out.close()
        # Without an IDR nothing was sent and nothing was connected: nothing to end.


def _reason(exc: BaseException) -> str:
    """What went wrong, without the URL (PyAV's OSErrors carry it as the filename)."""
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        number = getattr(exc, "errno", None)
        return f"{strerror} (errno {number})" if isinstance(number, int) else strerror
    return type(exc).__name__


def _read_exact(stdin: IO[bytes], size: int) -> bytes | None:
    data = stdin.read(size) if size else b""
    return data if len(data) == size else None


def _child_main() -> int:
    """The pusher process: config, then media messages on stdin; status lines on stdout."""
    stdin = sys.stdin.buffer

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    push: _FlvPush | None = None
    try:
        while (header := _read_exact(stdin, _HEADER.size)) is not None:
            kind, flags, position, length = _HEADER.unpack(header)
            payload = _read_exact(stdin, length)
            if payload is None:
                break  # the parent died mid-message: end what we have
            if kind == _CONFIG:
                c = json.loads(payload)
                push = _FlvPush(c["url"], c["width"], c["height"], c["fps"], c["sample_rate"])
            elif push is None:
                raise RuntimeError("media before the config")
            elif kind == _VIDEO:
                was_started = push.started
                push.video(position, payload, bool(flags & _KEYFRAME))
                if push.started and not was_started:
                    say(_CONNECTED)
            elif kind == _AUDIO:
                push.audio(position, payload)
            elif kind == _END:
                break
        if push is not None:
            push.close()
    except Exception as exc:  # reported to the parent, which logs it
        say(f"{_FAILED} {_reason(exc)}")
        return 1
    say(_CLOSED)
    return 0
