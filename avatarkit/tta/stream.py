"""TtaStream: one TTA WebSocket session, its frame router and its iterators.

The I/O shell around :mod:`avatarkit.tta.frames`.  One router per socket
decodes each frame as the websockets protocol parses it (in its data_received
callback: no extra task, no task switch per frame) and puts the event on a
bounded queue; when the consumer is slow the queue fills, the transport stops
reading, and TCP pushes back on the server — memory stays bounded.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import types
from collections.abc import AsyncIterable, AsyncIterator, Generator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Self
from xml.sax.saxutils import quoteattr

import anyio
import httpx
import websockets
from anyio.abc import TaskGroup
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus, InvalidURI
from websockets.frames import Frame, Opcode

from avatarkit._queue import Closed, EventQueue
from avatarkit._redact import protected_logger, redact_url
from avatarkit._retry import RetryPolicy, retry
from avatarkit.errors import (
    AuthenticationError,
    AvatarError,
    ConnectionLost,
    ProtocolError,
    ServiceError,
    StreamClosed,
    TimeoutError,
    ValidationError,
)
from avatarkit.tta import events as ev
from avatarkit.tta import frames, ssml
from avatarkit.tta.audio import RATE, SECOND_BYTES, PcmConverter, Rechunker, wav_chunks
from avatarkit.tta.config import SessionConfig, encode_config
from avatarkit.tta.video import ProducedVideo

__all__ = ["AudioDrive", "StreamRecording", "TtaStream", "Utterance"]

if TYPE_CHECKING:
    from avatarkit.media import Recorder
    from avatarkit.media import Recording as RecordingResult

log = protected_logger("avatarkit.tta")
_ws_log = protected_logger("avatarkit.tta.ws")

# MSG types (SPEC §2.2)
TYPE_OPEN, TYPE_CLOSE, TYPE_CHAT, TYPE_INTERRUPT, TYPE_PRODUCTION = 0, 1, 2, 3, 4
CODE_OK, CODE_BUSY = 1000, 1002


class StreamOwner(Protocol):
    """What a stream needs from its session."""

    @property
    def task_group(self) -> TaskGroup: ...

    @property
    def http(self) -> httpx.AsyncClient: ...

    def register(self, stream: TtaStream) -> None: ...

    def unregister(self, stream: TtaStream) -> None: ...


class TtaStream:
    """A TTA session on one WebSocket.  Use as ``async with session.tta.open(...) as s``.

    * :meth:`say` sends text or SSML and iterates that utterance's events;
    * :meth:`events` iterates every event (use with :meth:`chat`);
    * :meth:`interrupt`, :meth:`set_bitrate`;
    * :meth:`finish` closes the session and returns the produced video.
    """

    def __init__(
        self,
        owner: StreamOwner,
        *,
        url: str,
        resource_id: str,
        config: SessionConfig,
        retry_policy: RetryPolicy,
        queue_size: int = 64,
        open_timeout: float = 15.0,
        close_timeout: float = 5.0,
        max_frame_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if queue_size < 1:
            raise ValidationError("queue_size", queue_size, "must be >= 1")
        self._owner = owner
        self._url = url
        self._resource_id = resource_id
        self.config = config
        self._retry = retry_policy
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._max_frame_bytes = max_frame_bytes
        self._queue_size = queue_size
        self._queue: EventQueue[ev.Event] = EventQueue(queue_size)
        self._ws: _RoutedConnection | None = None
        self._state = "new"  # new → open → closing → closed
        self._error: AvatarError | None = None  # why the event flow ended, if not cleanly
        self._consuming = False
        # Utterances whose chat was sent and whose end was not yet consumed; the
        # events of all but the newest belong to abandoned iterators: skipped.
        self._open_utterances = 0
        self._send_lock = anyio.Lock()
        self._taps: list[Recorder] = []  # recordings in progress (see record())

    # -- lifecycle -------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"TtaStream(url={redact_url(self._url)!r}, role={self.config.role!r}, "
            f"state={self._state!r})"
        )

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) of the video the service renders."""
        return self.config.resolution

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.aclose()

    def __await__(self) -> Generator[Any, None, Self]:
        return self._open_and_return().__await__()

    async def _open_and_return(self) -> Self:
        await self.open()
        return self

    async def open(self) -> None:
        """Connect, send ``|CTL|00|`` and wait for the open reply.

        ``|MSG|`` 1002 (busy), 5xx handshakes and refused connections are
        retried with jittered backoff; other refusals raise at once.
        """
        if self._state != "new":
            raise AvatarError(f"stream already {self._state}")
        self._state = "opening"
        config_json = encode_config(self.config)
        try:
            self._ws = await retry(
                lambda: self._connect_once(config_json),
                policy=self._retry,
                retry_on=_retry_open,
                what=f"opening TTA session on {redact_url(self._url)}",
            )
            self._owner.register(self)
        except BaseException:
            self._state = "closed"
            with anyio.CancelScope(shield=True):
                await self._close_socket()
            raise
        self._state = "open"
        log.debug("TTA session open on %s", redact_url(self._url))

    async def _connect_once(self, config_json: bytes) -> _RoutedConnection:
        # A fresh queue per attempt: a refused attempt's connection may still report
        # its loss later, and must not close the queue of the next one.
        self._queue = EventQueue(self._queue_size)
        self._error = None
        try:
            ws = await websockets.connect(
                self._url,
                additional_headers={"Resource-Id": self._resource_id},
                compression=None,  # media is incompressible: deflate would only burn CPU
                max_size=self._max_frame_bytes,
                open_timeout=self._open_timeout,
                close_timeout=self._close_timeout,
                logger=_ws_log,
                create_connection=_RoutedConnection,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode(errors="replace")[:200] if exc.response.body else ""
            cls = AuthenticationError if status in (401, 403) else ServiceError
            raise cls(
                "handshake_rejected",
                body or "WebSocket handshake rejected",
                status=status,
                retryable=status >= 500,
            ) from None
        except InvalidURI:
            raise ValidationError(
                "tta_url", redact_url(self._url), "must be a ws:// or wss:// URL"
            ) from None
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise ConnectionLost(
                f"could not connect to {redact_url(self._url)}: {type(exc).__name__}: {exc}"
            ) from None
        assert isinstance(ws, _RoutedConnection)
        ws.attach(_Router(self, self._queue, ws))
        try:
            await ws.send(frames.encode_open(config_json))
            with anyio.fail_after(self._open_timeout):
                while True:
                    event = await self._queue.get()
                    if isinstance(event, ev.Status) and event.type in (TYPE_OPEN, -1):
                        break
                    # Anything before the open reply stays queued for the consumer.
            if event.code != CODE_OK:
                raise ServiceError(event.code, event.message, retryable=event.code == CODE_BUSY)
            return ws
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await _close_quietly(ws, self._close_timeout)
            if isinstance(exc, (ConnectionClosed, Closed)):
                raise self._error or ConnectionLost("connection closed while opening") from None
            if isinstance(exc, builtins.TimeoutError):
                raise TimeoutError(f"no open reply within {self._open_timeout}s") from None
            raise

    def _fail(self, error: AvatarError) -> None:
        if self._error is None:
            self._error = error

    async def aclose(self) -> None:
        """Close the socket.  Bounded in time (``close_timeout``), idempotent.

        Iterators still waiting on this stream raise :class:`StreamClosed`.
        """
        if self._state == "closed":
            return
        self._state = "closed"
        self._fail(StreamClosed("the stream was closed"))
        with anyio.CancelScope(shield=True):
            await self._close_socket()
            self._queue.close()
            self._owner.unregister(self)

    async def _close_socket(self) -> None:
        if self._ws is not None:
            await _close_quietly(self._ws, self._close_timeout)

    # -- sending ---------------------------------------------------------

    async def _send(self, frame: str | bytes) -> None:
        if self._state != "open" or self._ws is None:
            raise self._error or StreamClosed(f"stream is {self._state}")
        async with self._send_lock:
            try:
                await self._ws.send(frame)
            except ConnectionClosed as exc:
                self._fail(ConnectionLost(f"connection lost: {exc}"))
                raise self._error or ConnectionLost(str(exc)) from None

    async def chat(self, text: str) -> None:
        """Send a ``|CTL|02|`` chat without consuming events (see :meth:`events`)."""
        self._require_text_mode("chat")
        await self._send(frames.encode_chat(text))

    def say(
        self, text: str | ssml.Speak, *, subtitle_style: Mapping[str, Any] | None = None
    ) -> Utterance:
        """Speak ``text`` (plain, SSML, or an :class:`~avatarkit.tta.ssml.Speak`);
        iterate the utterance's events.

        SSML is checked against every documented rule (and the role's action
        catalog) before anything is sent.  ``subtitle_style`` styles the
        subtitles (``fontname``, ``fontsize``, colours as ``AABBGGRR``…; see
        :func:`avatarkit.tta.ssml.check_subtitle_style`).  The chat is sent when
        iteration starts; iteration ends after
        :class:`~avatarkit.tta.events.VoiceEnd`.
        """
        self._require_text_mode("say")
        body = str(text)
        if "<" in body:
            ssml.validate(body, role=self.config.role, dimension=self._dimension)
        if subtitle_style is not None:
            return Utterance(self, frames.encode_styled_chat(body, ssml.subtitle(subtitle_style)))
        return Utterance(self, frames.encode_chat(body))

    @property
    def _dimension(self) -> ssml.Dimension:
        return "3d" if self._resource_id.endswith(".3d") else "2d"

    async def interrupt(self) -> None:
        """Stop the current utterance (text mode only); its iterator ends at voice_end."""
        self._require_text_mode("interrupt")
        await self._send(frames.encode_interrupt())

    def say_audio(
        self,
        url: str,
        *,
        format: str,
        sample_rate: int | None = None,
        channels: int | None = None,
        subtitle: str | None = None,
    ) -> Utterance:
        """Drive the avatar with the audio at ``url`` (``input_mode="audio"``).

        With ``subtitle`` the chat is ``<speak><audio …/><subtitle text=…/></speak>``
        (subtitles in audio mode come from this text).
        """
        self._require_audio_mode("say_audio")
        frame = frames.encode_audio_url(
            url, format=format, sample_rate=sample_rate, channels=channels
        )
        if subtitle is not None:
            if not isinstance(subtitle, str) or not subtitle.strip():
                raise ValidationError("subtitle", subtitle, "must be a non-empty string")
            audio_tag = frame[len(frames.CHAT) :]
            frame = f"{frames.CHAT}<speak>{audio_tag}<subtitle text={quoteattr(subtitle)}/></speak>"
        return Utterance(self, frame)

    def drive_audio(
        self,
        source: str | os.PathLike[str] | bytes | AsyncIterable[bytes],
        *,
        sample_rate: int = RATE,
        channels: int = 1,
    ) -> AudioDrive:
        """Stream audio to the avatar (``|CTL|08|``) and iterate the events it causes.

        ``source``: a WAV file path, PCM ``bytes``, or an async iterable of PCM
        pieces (s16le at ``sample_rate`` Hz with ``channels`` channels;
        16 kHz mono by default).  Anything else is converted to 16 kHz mono,
        re-cut into 1-second ``|CTL|08|`` frames (32,000 bytes), and the rest
        sent as the ``|CTL|09|`` tail.  Sending runs alongside the iteration,
        with backpressure from the socket; iteration ends at the voice_end
        that follows the tail.
        """
        self._require_audio_mode("drive_audio")
        if isinstance(source, (str, os.PathLike)):
            path = source

            async def pieces() -> AsyncIterator[tuple[bytes, int, int]]:
                reader = wav_chunks(path)
                while (item := await anyio.to_thread.run_sync(next, reader, None)) is not None:
                    yield item

        else:
            converter_check = PcmConverter(sample_rate, channels)  # validates now
            del converter_check
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)

                async def pieces() -> AsyncIterator[tuple[bytes, int, int]]:
                    yield data, sample_rate, channels

            else:
                stream_source = source

                async def pieces() -> AsyncIterator[tuple[bytes, int, int]]:
                    async for piece in stream_source:
                        yield bytes(piece), sample_rate, channels

        return AudioDrive(self, pieces())

    def record(
        self,
        path: str | os.PathLike[str],
        *,
        subtitles: str | os.PathLike[str] | None = None,
        audio: str | os.PathLike[str] | None = None,
    ) -> StreamRecording:
        """Record what this stream delivers to files a person can open.

        ``path``: ``.mp4``/``.mov`` (live PCM + H.264 muxed), ``.h264`` or ``.wav``;
        ``subtitles``: ``.srt`` or ``.vtt``; ``audio``: an extra ``.wav``::

            async with stream.record("out.mp4", subtitles="out.srt") as recording:
                await stream.say("…").collect()
            print(recording.result.path)

        Every event the stream hands you (from ``say``, ``events``, ``drive_audio``
        or ``finish``) is recorded until the block ends; files appear atomically
        when it ends, and nothing is left behind if it fails.
        """
        from avatarkit.media import Recorder

        return StreamRecording(self, Recorder(path, subtitles=subtitles, audio=audio))

    def _require_audio_mode(self, what: str) -> None:
        if self.config.input_mode != "audio":
            raise ValidationError(
                "input_mode", self.config.input_mode or "text", f"{what}() needs input_mode='audio'"
            )

    async def set_bitrate(self, kbps: int) -> None:
        """Change the video bitrate mid-session (400–5000 kbps)."""
        await self._send(frames.encode_bitrate(kbps))

    def _require_text_mode(self, what: str) -> None:
        if (self.config.input_mode or "text") != "text":
            raise ValidationError(
                "input_mode", self.config.input_mode, f"{what}() needs input_mode='text'"
            )

    # -- receiving -------------------------------------------------------

    async def _next_event(self) -> ev.Event | None:
        """The next event, or None when the flow ended cleanly."""
        event = await self._take()
        if event is not None and self._taps:
            await self._tap(event)
        return event

    async def _tap(self, event: ev.Event) -> None:
        for recorder in self._taps:
            await recorder.afeed(event)

    async def _take(self) -> ev.Event | None:
        try:
            event = self._queue.get_nowait()  # fast path: no await when one is queued
            if event is not None:
                return event
            if self._consuming:
                raise AvatarError("this stream's events are already being consumed elsewhere")
            self._consuming = True
            try:
                return await self._queue.get()
            finally:
                self._consuming = False
        except Closed:
            self._raise_if_failed()
            return None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    async def _next_or_lost(self, during: str) -> ev.Event:
        event = await self._next_event()
        if event is None:
            raise ConnectionLost(f"the session ended {during}")
        return event

    async def events(self) -> AsyncIterator[ev.Event]:
        """Every event, in order, until the session ends."""
        while (event := await self._next_event()) is not None:
            yield event

    async def finish(self, *, timeout: float | None = None) -> ProducedVideo:
        """Close the session (``|CTL|01|``) and return the produced video.

        Waits for the ``|DAT|03|``/``|DAT|04|`` bytes or the ``video_url``
        event, then for the close reply.  Events of utterances nobody consumed
        are skipped.
        """
        codec = self.config.codec
        chunks: list[memoryview] = []
        url: str | None = None
        subtitles: tuple[ev.SubtitleItem, ...] = ()
        media_done = codec is None
        closed_ok = False
        deadline = anyio.fail_after(timeout) if timeout is not None else contextlib.nullcontext()
        with deadline:
            await self._send(frames.encode_close())
            self._state = "closing"
            while not (closed_ok and media_done):
                event = await self._next_event()
                if event is None:
                    break
                match event:
                    case ev.MediaChunk(data=data):
                        chunks.append(data)
                    case ev.MediaEnd(data=data):
                        chunks.append(data)
                        media_done = True
                    case ev.VideoUrl(url=video_url):
                        url, media_done = video_url, True
                    case ev.AllSubtitles(subtitles=lines):
                        subtitles = lines
                    case ev.Status(code=code, message=message, type=kind) if (
                        code != CODE_OK and kind in (TYPE_CLOSE, TYPE_PRODUCTION)
                    ):
                        raise ServiceError(code, message, retryable=code == CODE_BUSY)
                    case ev.Status(type=kind) if kind == TYPE_CLOSE:
                        closed_ok = True
                    case _:
                        pass
        await self.aclose()
        if not media_done:
            raise ConnectionLost("the session ended before the produced video arrived")
        video_bytes = b"".join(chunks) if chunks else None
        return ProducedVideo(
            data=video_bytes, url=url, codec=codec, subtitles=subtitles, http=self._owner.http
        )


class _Router:
    """Routes one connection's data frames to a stream's queue.

    It runs inside the protocol's ``data_received`` callback, so a frame costs
    no task switch: it is decoded and queued as it is parsed.  When the queue
    fills, the transport stops reading (TCP then pushes back on the server)
    until the consumer has drained half of it.
    """

    __slots__ = ("_fragments", "_queue", "_stream", "_text", "_ws")

    def __init__(
        self, stream: TtaStream, queue: EventQueue[ev.Event], ws: _RoutedConnection
    ) -> None:
        self._stream = stream
        self._queue = queue
        self._ws = ws
        self._fragments: list[bytes] = []
        self._text = False
        transport = ws.transport
        queue.watermarks(transport.pause_reading, transport.resume_reading)

    def frame(self, frame: Frame) -> None:
        if frame.fin and frame.opcode is not Opcode.CONT:
            data, text = frame.data, frame.opcode is Opcode.TEXT
        else:  # a fragmented message: reassemble it (websockets bounds it by max_size)
            if frame.opcode is not Opcode.CONT:
                self._text = frame.opcode is Opcode.TEXT
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            data, text = b"".join(self._fragments), self._text
            self._fragments = []
        try:
            message: str | bytes = (
                bytes(data).decode() if text else data if type(data) is bytes else bytes(data)
            )
            event = frames.decode(message)
        except (UnicodeDecodeError, ProtocolError) as exc:
            error = (
                exc
                if isinstance(exc, ProtocolError)
                else ProtocolError("text frame is not valid UTF-8", bytes(data))
            )
            self._stop(error)
            self._ws.transport.abort()
            return
        with contextlib.suppress(Closed):  # the stream was closed while bytes still arrived
            self._queue.force_put(event)

    def lost(self, close_exc: Exception | None) -> None:
        """The connection is gone: every frame before it is already queued."""
        stream = self._stream
        if isinstance(close_exc, ConnectionClosedOK):
            error = (
                None
                if stream._state in ("closing", "closed")
                else ConnectionLost("the service closed the session")
            )
        else:
            error = ConnectionLost(f"connection lost: {close_exc}")
        self._stop(error)

    def _stop(self, error: AvatarError | None) -> None:
        if error is not None and self._stream._queue is self._queue:
            self._stream._fail(error)
        self._queue.close()


class _RoutedConnection(ClientConnection):
    """A websockets connection whose data frames go to a :class:`_Router`, not to recv()."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._router: _Router | None = None
        self._early: list[Frame] = []  # frames parsed with the handshake, before attach()

    def attach(self, router: _Router) -> None:
        self._router = router
        early, self._early = self._early, []
        for frame in early:
            router.frame(frame)
        if self.state is websockets.State.CLOSED:  # lost during the handshake already
            router.lost(self.protocol.close_exc)

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if self._router is None:
                self._early.append(event)
            else:
                self._router.frame(event)
            return
        super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._router is not None:
            self._router.lost(self.protocol.close_exc)


class StreamRecording:
    """``async with stream.record(...)``: the recording tap; ``result`` once it ends."""

    def __init__(self, stream: TtaStream, recorder: Recorder) -> None:
        self._stream = stream
        self._recorder = recorder
        self.result: RecordingResult | None = None

    async def __aenter__(self) -> StreamRecording:
        self._stream._taps.append(self._recorder)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self._stream._taps.remove(self._recorder)
        if exc_type is not None:
            self._recorder.abort()  # nothing half-written is left behind
            return
        with anyio.CancelScope(shield=True):
            self.result = await self._recorder.aclose()


class _DriveFailed(ev.Event, frozen=True):
    """Queued by a failed audio sender so that the waiting iterator wakes and raises."""

    error: Exception


class AudioDrive:
    """The events caused by streamed audio; sending runs alongside (see ``drive_audio``)."""

    def __init__(self, stream: TtaStream, pieces: AsyncIterator[tuple[bytes, int, int]]) -> None:
        self._stream = stream
        self._pieces = pieces
        self._utterance = Utterance(stream, None)
        self._scope = anyio.CancelScope()
        self._started = False
        self.bytes_sent = 0  # 16 kHz mono PCM bytes handed to the socket
        self.frames_sent = 0  # |CTL|08| frames, the tail included

    def __aiter__(self) -> AudioDrive:
        return self

    async def _send(self) -> None:
        stream = self._stream
        with self._scope:
            try:
                converter: PcmConverter | None = None
                chunker = Rechunker(SECOND_BYTES)
                async for data, rate, channels in self._pieces:
                    if converter is None:
                        converter = PcmConverter(rate, channels)
                    for chunk in chunker.feed(converter.feed(data)):
                        await stream._send(frames.encode_audio(chunk))
                        self.bytes_sent += len(chunk)
                        self.frames_sent += 1
                tail = chunker.tail()
                await stream._send(frames.encode_audio(tail, last=True))
                self.bytes_sent += len(tail)
                self.frames_sent += 1
            except Exception as exc:  # delivered to the iterator, never to the session
                with contextlib.suppress(Closed):
                    stream._queue.force_put(_DriveFailed(exc))

    async def __anext__(self) -> ev.Event:
        if not self._started:
            self._started = True
            self._stream._open_utterances += 1
            self._utterance._started = True
            self._stream._owner.task_group.start_soon(self._send)
        try:
            event = await self._utterance.__anext__()
        except BaseException:
            self._scope.cancel()
            raise
        if isinstance(event, _DriveFailed):
            self._scope.cancel()
            raise event.error
        return event

    async def aclose(self) -> None:
        """Stop sending (the rest of the audio is not sent)."""
        self._scope.cancel()

    async def collect(self) -> list[ev.Event]:
        return [event async for event in self]


class Utterance:
    """The events of one ``say()``: an async iterator ending after voice_end."""

    def __init__(self, stream: TtaStream, frame: str | None) -> None:
        self._stream = stream
        self._frame = frame
        self._started = False
        self._done = False

    def __aiter__(self) -> Utterance:
        return self

    async def __anext__(self) -> ev.Event:
        stream = self._stream
        if self._done:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            assert self._frame is not None
            await stream._send(self._frame)
            stream._open_utterances += 1
        while True:
            event = stream._queue.get_nowait() if stream._queue else None
            if event is None:
                event = await stream._next_or_lost("before the utterance's voice_end")
            elif stream._taps:
                await stream._tap(event)
            if type(event) in _MEDIA and stream._open_utterances == 1:
                return event  # the hot path: media of the current utterance
            # An utterance ends at its voice_end, or at a chat reply that refuses it.
            refused = isinstance(event, ev.Status) and event.type == TYPE_CHAT and not event.ok
            ends = refused or isinstance(event, ev.VoiceEnd)
            if stream._open_utterances > 1:  # an abandoned utterance's event
                stream._open_utterances -= ends
                continue
            if not ends:
                return event
            stream._open_utterances -= 1
            self._done = True
            if refused:
                assert isinstance(event, ev.Status)
                raise ServiceError(event.code, event.message, retryable=event.code == CODE_BUSY)
            return event

    async def collect(self) -> list[ev.Event]:
        """Run the utterance to its end and return all its events."""
        return [event async for event in self]


_MEDIA = frozenset({ev.AudioChunk, ev.VideoChunk})


def _retry_open(exc: Exception) -> bool:
    if isinstance(exc, ServiceError):
        return exc.retryable
    return isinstance(exc, ConnectionLost)


async def _close_quietly(ws: ClientConnection, timeout: float) -> None:
    """Close ``ws``, bounded in time; on timeout the transport is aborted."""
    with anyio.move_on_after(timeout):
        with contextlib.suppress(Exception):  # a broken socket may fail to close: it's closed
            await ws.close()
        return
    ws.transport.abort()
