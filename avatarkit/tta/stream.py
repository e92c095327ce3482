"""TtaStream: one TTA session's lifecycle and its public iterators.

The pieces it is made of, each in its own module:

* :mod:`avatarkit.tta._ws` — the WebSocket (websockets' sans-I/O protocol on
  an asyncio transport, keepalive included);
* :class:`_Router` (here) — decodes each message in the protocol callback and
  puts the event on a queue bounded in events and bytes; when it fills,
  reading pauses and TCP pushes back on the server;
* :mod:`avatarkit.tta._utterances` — decides which utterance each event
  belongs to;
* :mod:`avatarkit.tta._drive` and :mod:`avatarkit.tta._record` — streamed
  audio and the recording tap.

Time and memory bounds: :mod:`avatarkit.tta.limits`.
"""

from __future__ import annotations

import os
import types
from collections.abc import AsyncIterable, AsyncIterator, Generator, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, Self, TypeAlias
from xml.sax.saxutils import quoteattr

import anyio
from anyio.abc import TaskGroup

from avatarkit._queue import Closed, EventQueue
from avatarkit._redact import protected_logger, redact_url
from avatarkit._retry import RetryPolicy, retry
from avatarkit.errors import (
    AvatarError,
    ConnectionLost,
    ProtocolError,
    ServiceError,
    StreamClosed,
    TimeoutError,
    ValidationError,
)
from avatarkit.tta import _ws, frames, ssml
from avatarkit.tta import events as ev
from avatarkit.tta._drive import AudioDrive
from avatarkit.tta._idle import IdleWatch
from avatarkit.tta._proxy import WsOptions
from avatarkit.tta._record import StreamRecording, Taps
from avatarkit.tta._utterances import Decision, UtteranceTracker, Verdict
from avatarkit.tta.audio import RATE, PcmConverter, wav_chunks
from avatarkit.tta.config import SessionConfig, encode_config
from avatarkit.tta.frames import MsgCode, MsgType
from avatarkit.tta.limits import StreamLimits
from avatarkit.tta.sentences import SentenceSplitter
from avatarkit.tta.video import ProducedVideo, VideoStream

if TYPE_CHECKING:
    import httpx

__all__ = ["AudioDrive", "SpeechStream", "StreamRecording", "TtaStream", "Utterance"]

log = protected_logger(__name__)

_SECOND_OF_SPEECH: Final = 32_000  # bytes of 16 kHz mono s16le
_STRAY: Final = "out-of-place event (no utterance it can belong to): %r"


class StreamOwner(Protocol):
    """What a stream needs from its session."""

    @property
    def task_group(self) -> TaskGroup: ...

    @property
    def http(self) -> httpx.AsyncClient: ...

    def _register(self, stream: TtaStream) -> None: ...

    def _unregister(self, stream: TtaStream) -> None: ...


class _Wakeup(ev.EventBase, frozen=True):
    """Queued to wake a waiting iterator whose utterance failed on the send side."""


_WAKEUP: Final = _Wakeup()
_Item: TypeAlias = "ev.Event | _Wakeup"  # what a stream's queue holds
_WAKEUP_DECISION: Final = Decision(Verdict.SESSION, None)


class TtaStream:
    """A TTA session on one WebSocket.  Use as ``async with session.tta.open(...) as s``.

    * :meth:`say` sends text or SSML and iterates that utterance's events;
    * :meth:`events` iterates every event (use with :meth:`chat`);
    * :meth:`interrupt`, :meth:`set_bitrate`;
    * :meth:`finish` closes the session and returns the produced video.

    Without ``async with`` (a notebook): ``stream = await av.tta.open(...)``,
    then ``await stream.aclose()`` (or :meth:`finish`), from any task.

    Attributes:
        config: The session config sent in the ``|CTL|00|`` open frame.
        limits: The bounds this stream runs with (queue, buffers, timeouts, keepalive).
    """

    def __init__(
        self,
        owner: StreamOwner,
        *,
        url: str,
        resource_id: str,
        config: SessionConfig,
        retry_policy: RetryPolicy,
        limits: StreamLimits | None = None,
        ws: WsOptions | None = None,
    ) -> None:
        self._owner = owner
        self._url = url
        self._ws = ws or WsOptions()
        self._resource_id = resource_id
        self.config = config
        self.limits = limits or StreamLimits()
        self._retry = retry_policy
        self._queue: EventQueue[_Item] = self._new_queue()
        self._conn: _ws.WsConnection | None = None
        self._state = "new"  # new → opening → open → closing → closed
        self._error: AvatarError | None = None  # why the event flow ended, if not cleanly
        self._consuming = False
        self._idle = IdleWatch()  # the bound on each wait for the service
        self._finishing = False
        self._tracker = UtteranceTracker()
        self._send_lock = anyio.Lock()
        self._taps = Taps()
        self._action_notice = ssml.ActionCheckNotice()  # "actions not checked": once per stream

    def _new_queue(self) -> EventQueue[_Item]:
        return EventQueue(self.limits.queue_size, max_bytes=self.limits.buffer_bytes)

    # -- lifecycle -------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"TtaStream(url={redact_url(self._url)!r}, role={self.config.role!r}, "
            f"state={self._state!r})"
        )

    @property
    def closed(self) -> bool:
        """True once the stream is closed (by :meth:`aclose`, :meth:`finish` or a failure)."""
        return self._state == "closed"

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) of the video the service renders."""
        return self.config.resolution

    @property
    def task_group(self) -> TaskGroup:
        """The session's task group (the audio drive's sender runs there).

        Raises:
            AvatarError: the session is not open.
        """
        return self._owner.task_group

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

        Raises:
            StreamClosed: the stream was opened before (a stream opens once).
            AuthenticationError: the handshake was refused for the credentials.
            ServiceError: the service refused the session (its ``|MSG|`` code and
                message), after retries when it was busy.
            ConnectionLost: the service could not be reached (after retries).
            TimeoutError: no open reply within ``open_timeout``.
            AvatarError: the session is not open.

        Cancellation:
            Safe: the half-open socket is closed (shielded) and the stream is left
            closed; open a new one to try again.
        """
        if self._state != "new":
            raise StreamClosed(f"stream already {self._state}")
        self._state = "opening"
        config_json = encode_config(self.config)
        from avatarkit._http import is_transient  # the one rule; it loads httpx, so only here

        try:
            self._conn = await retry(
                lambda: self._connect_once(config_json),
                policy=self._retry,
                retry_on=is_transient,  # busy (1002), 5xx, lost connections, timeouts
                what=f"opening TTA session on {redact_url(self._url)}",
            )
            self._owner._register(self)
        except BaseException:
            self._state = "closed"
            with anyio.CancelScope(shield=True):
                await self._close_socket()
            raise
        self._state = "open"
        log.debug("TTA session open on %s", redact_url(self._url))

    async def _connect_once(self, config_json: bytes) -> _ws.WsConnection:
        # A fresh queue per attempt: a refused attempt's connection may still report
        # its loss later, and must not close the queue of the next one.
        limits = self.limits
        self._queue = queue = self._new_queue()
        self._error = None
        options = self._ws
        conn = await _ws.connect(
            self._url,
            headers={**dict(options.headers), "Resource-Id": self._resource_id},
            max_size=limits.max_frame_bytes,
            open_timeout=limits.open_timeout,
            close_timeout=limits.close_timeout,
            keepalive=_ws.Keepalive(limits.ping_interval, limits.ping_timeout),
            ssl_context=options.ssl_context,
            proxy=options.proxy,
        )
        self._conn = conn
        queue.watermarks(conn.pause_reading, conn.resume_reading)
        conn.attach(_Router(self, queue, conn))
        try:
            await conn.send(frames.encode_open(config_json))
            reply: ev.Status | None = None
            with anyio.move_on_after(limits.open_timeout):
                while True:
                    event = await queue.get()
                    if isinstance(event, ev.Status) and event.type in (MsgType.OPEN, -1):
                        reply = event
                        break
                    log.debug("before the open reply, ignored: %r", event)
            if reply is None:
                raise TimeoutError(
                    f"no open reply from {redact_url(self._url)} within "
                    f"{limits.open_timeout}s (open_timeout)"
                )
            if reply.code != MsgCode.OK:
                raise ServiceError(reply.code, reply.message, retryable=reply.code == MsgCode.BUSY)
            return conn
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._close_socket()
            if isinstance(exc, Closed):
                raise self._error or ConnectionLost("connection closed while opening") from None
            raise

    def _fail(self, error: AvatarError) -> None:
        if self._error is None:
            self._error = error

    async def aclose(self) -> None:
        """Close the socket.  Bounded in time (``close_timeout``), idempotent.

        Iterators still waiting on this stream raise :class:`StreamClosed`.
        Raises nothing of its own; the produced video, if any, is not fetched
        (use :meth:`finish` for it).

        Cancellation:
            Shielded: the close handshake completes (within ``close_timeout``)
            before the cancellation is delivered; no socket is left behind.
        """
        if self._state == "closed":
            return
        self._state = "closed"
        self._fail(StreamClosed("the stream was closed"))
        self._idle.cancel()
        with anyio.CancelScope(shield=True):
            await self._close_socket()
            self._queue.close()
            self._owner._unregister(self)

    async def _close_socket(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # bounded by close_timeout inside

    # -- sending ---------------------------------------------------------

    async def send(self, frame: str | bytes) -> None:
        """Send one raw frame (see :mod:`avatarkit.tta.frames`); most users want :meth:`say`.

        Waits while the socket's write buffer is full (backpressure).

        Raises:
            StreamClosed: the stream is not open (not yet, or closed).
            ConnectionLost: the connection dropped (the stream's error, if it had one).

        Cancellation:
            A frame is handed to the socket whole or not at all: cancelling only
            stops the wait for the buffer to drain (the frame then goes out).
        """
        conn = self._conn
        if self._state != "open" or conn is None:
            raise self._error or StreamClosed(f"stream is {self._state}")
        async with self._send_lock:
            try:
                await conn.send(frame)
            except AvatarError as exc:
                self._fail(exc)
                raise self._error or exc from None

    async def chat(self, text: str) -> None:
        """Send a ``|CTL|02|`` chat without consuming events (see :meth:`events`).

        The chat counts as an utterance under way until its ``voice_end``
        (``idle_timeout`` applies while :meth:`events` waits for it).

        Raises:
            ValidationError: the stream is in audio mode (``input_mode="audio"``),
                or ``text`` is empty.
            StreamClosed: the stream is not open (not yet, or closed).
            ConnectionLost: the connection dropped (the stream's error, if it had one).

        Cancellation:
            As :meth:`send`: the chat is sent whole or not at all.
        """
        self._require_text_mode("chat")
        frame = frames.encode_chat(text)
        self._require_open()
        self._tracker.begin()
        await self.send(frame)

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

        Raises:
            ValidationError: the text or SSML breaks a documented rule (the error
                names the tag or attribute, the value and the rule), a
                ``subtitle_style`` key or value is wrong, or the stream is in
                audio mode.  Raised here, before anything is sent.

        While iterating the :class:`Utterance`, see :meth:`Utterance.collect`.
        """
        self._require_text_mode("say")
        if isinstance(text, ssml.Speak):
            body = str(text)
        elif isinstance(text, str):
            body = text
        else:
            raise ValidationError("text", text, "must be a string or an ssml.Speak")
        if "<" in body:
            ssml.validate(
                body, role=self.config.role, dimension=self._dimension, notice=self._action_notice
            )
        if subtitle_style is not None:
            return Utterance(self, frames.encode_styled_chat(body, ssml.subtitle(subtitle_style)))
        return Utterance(self, frames.encode_chat(body))

    @property
    def _dimension(self) -> ssml.Dimension:
        return "3d" if self._resource_id.endswith(".3d") else "2d"

    async def interrupt(self) -> None:
        """Stop the current utterance (text mode only); its iterator ends at voice_end.

        Raises:
            ValidationError: the stream is in audio mode.
            StreamClosed: the stream is not open (not yet, or closed).
            ConnectionLost: the connection dropped (the stream's error, if it had one).

        Cancellation:
            As :meth:`send`: the interrupt is sent whole or not at all.
        """
        self._require_text_mode("interrupt")
        await self.send(frames.encode_interrupt())

    def say_stream(
        self,
        fragments: AsyncIterable[str],
        *,
        max_chars: int = 80,
        ahead: int = 1,
    ) -> SpeechStream:
        """Speak text while it is still being written (an LLM's token stream); iterate
        every event of every sentence, in order.

        The text is cut into sentences as they complete (Chinese and Latin
        punctuation, line breaks, and run-on text at ``max_chars``: see
        :mod:`avatarkit.tta.sentences`), and each is sent as a chat as soon as it is
        complete.  Up to ``ahead`` sentences are sent while the one before is still
        being spoken, so that the next is queued at the service when the current one
        ends.  Doc 001 does not say what a chat sent during another one does; its
        demo waits for ``voice_end``, and the emulator (its own reading) queues the
        chat and speaks it next.  Should a service refuse it, ``ahead=0`` sends each
        sentence only after the one before has ended.  Iteration ends
        after the last sentence's voice_end, once ``fragments`` is exhausted::

            async for event in stream.say_stream(llm_tokens()):
                ...

        Raises:
            ValidationError: the stream is in audio mode, or ``max_chars``/``ahead``
                breaks its rule; raised here, before anything is sent.  A sentence
                with SSML (``<``) ends the iteration with a ValidationError: SSML
                is whole-document only, pass it to :meth:`say`.
            StreamClosed: the stream is not open.

        While iterating, see :class:`SpeechStream`.
        """
        self._require_text_mode("say_stream")
        self._require_open()
        if not isinstance(fragments, AsyncIterable):
            raise ValidationError(
                "fragments", fragments, "must be an async iterable of str (use say() for a str)"
            )
        if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 0:
            raise ValidationError("ahead", ahead, "must be an integer >= 0")
        return SpeechStream(self, fragments, SentenceSplitter(max_chars=max_chars), ahead)

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

        Raises:
            ValidationError: the stream is in text mode, or ``url``, ``format``,
                ``sample_rate``, ``channels`` or ``subtitle`` breaks its rule
                (doc 001 §2.2.2); raised here, before anything is sent.
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

        Raises:
            ValidationError: the stream is in text mode, ``source`` is none of the
                accepted kinds, or ``sample_rate``/``channels`` is unsupported;
                raised here, before anything is sent.  A WAV file that cannot be
                read, or a source that fails, ends the iteration with its error.
        """
        self._require_audio_mode("drive_audio")
        if isinstance(source, (str, os.PathLike)):
            path = source

            async def pieces() -> AsyncIterator[tuple[bytes, int, int]]:
                reader = wav_chunks(path)
                while (item := await anyio.to_thread.run_sync(next, reader, None)) is not None:
                    yield item

        else:
            PcmConverter(sample_rate, channels)  # validates the format now, not mid-stream
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)

                async def pieces() -> AsyncIterator[tuple[bytes, int, int]]:
                    yield data, sample_rate, channels

            elif isinstance(source, AsyncIterable):
                stream_source = source

                async def pieces() -> AsyncIterator[tuple[bytes, int, int]]:
                    async for piece in stream_source:
                        yield bytes(piece), sample_rate, channels

            else:
                raise ValidationError(
                    "source", source, "must be a WAV path, PCM bytes or an async iterable of bytes"
                )

        return AudioDrive(self, pieces())

    def utterance(self) -> Utterance:
        """An utterance begun now with no chat of its own (the audio drive's).

        Raises:
            StreamClosed: the stream is not open.
        """
        self._require_open()
        utterance = Utterance(self, None)
        utterance._uid = self._tracker.begin()
        return utterance

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

        Raises:
            ValidationError: a path's suffix is not one of those above.
            AvatarError: ``.mp4``/``.mov`` needs PyAV (the ``media`` extra).
        """
        from avatarkit.media import Recorder

        return StreamRecording(self._taps, Recorder(path, subtitles=subtitles, audio=audio))

    def _require_audio_mode(self, what: str) -> None:
        if self.config.input_mode != "audio":
            raise ValidationError(
                "input_mode", self.config.input_mode or "text", f"{what}() needs input_mode='audio'"
            )

    async def set_bitrate(self, kbps: int) -> None:
        """Change the video bitrate mid-session (400–5000 kbps).

        Raises:
            ValidationError: ``kbps`` is outside 400–5000; nothing is sent.
            StreamClosed: the stream is not open (not yet, or closed).
            ConnectionLost: the connection dropped (the stream's error, if it had one).

        Cancellation:
            As :meth:`send`: the change is sent whole or not at all.
        """
        await self.send(frames.encode_bitrate(kbps))

    def _require_text_mode(self, what: str) -> None:
        if (self.config.input_mode or "text") != "text":
            raise ValidationError(
                "input_mode", self.config.input_mode, f"{what}() needs input_mode='text'"
            )

    def _require_open(self) -> None:
        if self._state != "open":
            raise self._error or StreamClosed(f"stream is {self._state}")

    # -- receiving -------------------------------------------------------

    async def _take(self, awaiting: str) -> tuple[_Item, Decision]:
        """The next event and whose it is.  :class:`ConnectionLost` (or the stream's
        error) when the flow ends; :class:`TimeoutError` when the service is silent
        past the bound while something is under way (``awaiting`` names it)."""
        event = self._next_nowait() or await self._next(awaiting)
        if isinstance(event, _Wakeup):
            return event, _WAKEUP_DECISION
        decision = self._decide(event)
        if self._taps:
            await self._taps.feed(event)
        return event, decision

    def _next_nowait(self) -> _Item | None:
        try:
            return self._queue.get_nowait()
        except Closed:
            return None  # _next raises the reason

    async def _next(self, awaiting: str) -> _Item:
        """The next event, waiting if none is queued: one coroutine and one future per
        wait (no nested awaits, no timer of its own), bounded as the module docstring
        of ``limits`` says."""
        queue = self._queue
        while True:
            try:
                event = queue.get_nowait()
            except Closed:
                # No error recorded means the session ended as asked (events() stops there).
                raise self._error or ConnectionLost(
                    f"the session ended while awaiting {awaiting}"
                ) from None
            if event is not None:
                return event
            if self._consuming:
                raise AvatarError("this stream's events are already being consumed elsewhere")
            bound = self._bound()
            waiter = queue.readable()
            if bound is not None:
                self._idle.watch(waiter, bound)
            self._consuming = True
            try:
                woke = await waiter
            finally:
                self._consuming = False
                self._idle.done()
            if not woke:
                raise TimeoutError(
                    f"the TTA service sent nothing for {bound:.1f}s while awaiting {awaiting} "
                    f"(idle_timeout={self.limits.idle_timeout}s)"
                )

    def _bound(self) -> float | None:
        """How long the service may be silent now (None: the keepalive watches it)."""
        if self._finishing:
            spoken = self._tracker.audio_bytes / _SECOND_OF_SPEECH
            return self.limits.idle_timeout + spoken
        if self._tracker.busy:
            return self.limits.idle_timeout
        return None

    def _decide(self, event: ev.Event) -> Decision:
        decision = self._tracker.feed(event)
        if decision.verdict is Verdict.STRAY:
            log.debug(_STRAY, event)
        return decision

    def _wake(self) -> None:
        self._queue.force_put(_WAKEUP)

    async def events(self) -> AsyncIterator[ev.Event]:
        """Every event, in order, until the session ends (stray ones included).

        Raises:
            ConnectionLost: the connection dropped (a session ended as asked
                just ends the iteration).
            ProtocolError: the service sent a frame that cannot be decoded.
            TimeoutError: the service was silent past ``idle_timeout`` while a
                chat was under way.
            AvatarError: another iterator is already consuming this stream.

        Cancellation:
            Safe: events not taken stay queued for the next iterator; the stream
            stays open.
        """
        while True:
            try:
                event, _ = await self._take("the next event")
            except ConnectionLost:
                if self._error is None:
                    return  # the session ended as asked
                raise
            if not isinstance(event, _Wakeup):
                yield event

    async def finish(self, *, timeout: float | None = None) -> ProducedVideo:
        """Close the session (``|CTL|01|``) and return the produced video.

        Waits for the ``|DAT|03|``/``|DAT|04|`` bytes or the ``video_url``
        event, then for the close reply: each wait is bounded by ``idle_timeout``
        plus the duration of the speech so far, and the whole by ``timeout``
        (seconds) when given.  Events of utterances nobody consumed are skipped.

        Returns:
            The video: its bytes (``codec`` set, no ``output_url``), its URL, or
            neither (RTC/RTMP sessions), with the subtitles when asked for.

        Raises:
            ServiceError: the service reported a failed production or close.
            TimeoutError: a wait passed its bound, or the whole passed ``timeout``.
            ConnectionLost: the connection dropped before the video arrived.
            ProtocolError: an undecodable frame.
            StreamClosed: the stream is not open.

        Cancellation:
            The stream is closed (shielded) and the video is lost: the service
            ends the session when the socket goes.
        """
        try:
            if timeout is None:
                return await self._finish()
            with anyio.move_on_after(timeout):
                return await self._finish()
            raise TimeoutError(f"finish() did not complete within {timeout}s (timeout)")
        except BaseException:
            await self.aclose()  # a failed finish leaves no socket behind
            raise

    async def _finish(self) -> ProducedVideo:
        production = _Production(self)
        chunks: list[memoryview] = []
        await production.start()
        while (piece := await production.next_piece()) is not None:
            chunks.append(piece)
        await self.aclose()
        return ProducedVideo(
            data=b"".join(chunks) if chunks else None,
            url=production.url,
            codec=self.config.codec,
            subtitles=production.subtitles,
            http=self._owner.http,
            retry=self._retry,
        )

    def stream_video(
        self, *, timeout: float | None = None, chunk_bytes: int = 1 << 16
    ) -> VideoStream:
        """Close the session (``|CTL|01|``) and iterate the produced video's bytes as
        they arrive: the ``|DAT|03|`` packets as the service sends them, or, when the
        service answers with a ``video_url`` (``output_url=True``), the download as it
        comes in (``chunk_bytes`` at a time)::

            async with stream.stream_video() as video:
                async for chunk in video:
                    await out.write(chunk)
            print(video.subtitles)

        Memory stays bounded: a packet is handed on as it is read, and while you do
        not ask for the next one the stream's queue fills and reading pauses (TCP
        pushes back on the service).  The subtitles are collected as in
        :meth:`finish` (complete once the iteration has ended).  Each wait for the
        service is bounded by ``idle_timeout`` plus the duration of the speech so
        far, and the whole by ``timeout`` (seconds) when given.

        Raises:
            ValidationError: the session produces no video (no ``codec``: an RTC or
                RTMP session), or ``timeout``/``chunk_bytes`` is not positive.
            StreamClosed: the stream is not open.

        While iterating, see :class:`~avatarkit.tta.video.VideoStream`.
        """
        self._require_open()
        if self.config.codec is None:
            raise ValidationError(
                "codec", None, "stream_video() needs offline production (a codec, no rtc/rtmp)"
            )
        return VideoStream(
            _Production(self),
            codec=self.config.codec,
            http=lambda: self._owner.http,
            retry=self._retry,
            timeout=timeout,
            chunk_bytes=chunk_bytes,
        )


class _Production:
    """The end of a session: the close frame out, then the produced media piece by
    piece, the subtitles, and the close reply.  Shared by ``finish()`` (which joins the
    pieces) and ``stream_video()`` (which hands each one on)."""

    __slots__ = ("_closed_ok", "_media_done", "_stream", "subtitles", "url")

    def __init__(self, stream: TtaStream) -> None:
        self._stream = stream
        self._media_done = stream.config.codec is None
        self._closed_ok = False
        self.url: str | None = None
        self.subtitles: tuple[ev.SubtitleItem, ...] = ()

    async def start(self) -> None:
        stream = self._stream
        await stream.send(frames.encode_close())
        stream._state = "closing"
        stream._finishing = True

    async def next_piece(self) -> memoryview | None:
        """The next piece of the media bytes; None once the media (or its URL) and the
        close reply are in.  On a failure the stream stops finishing."""
        stream = self._stream
        awaiting = "the produced video" if stream.config.codec is not None else "the close reply"
        try:
            while not (self._closed_ok and self._media_done):
                try:
                    event, _ = await stream._take(awaiting)
                except ConnectionLost:
                    if stream._error is None and self._media_done:
                        break  # the service closed without its close reply: the video is here
                    raise
                match event:
                    case ev.MediaChunk(data=data):
                        return data
                    case ev.MediaEnd(data=data):
                        self._media_done = True
                        return data
                    case ev.VideoUrl(url=video_url):
                        self.url, self._media_done = video_url, True
                    case ev.AllSubtitles(subtitles=lines):
                        self.subtitles = lines
                    case ev.Status(code=code, message=message, type=kind) if (
                        code != MsgCode.OK and kind in (MsgType.CLOSE, MsgType.PRODUCTION)
                    ):
                        raise ServiceError(code, message, retryable=code == MsgCode.BUSY)
                    case ev.Status(type=kind) if kind == MsgType.CLOSE:
                        self._closed_ok = True
                    case _:
                        pass
        except BaseException:
            stream._finishing = False
            raise
        stream._finishing = False
        return None

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Router:
    """Routes one connection's messages to a stream's queue.

    It runs inside the connection's read callback (``buffer_updated``), so a frame costs
    no task switch: it is decoded and queued as it is parsed.  When the queue
    fills (in events or bytes) the connection stops reading until the
    consumer has drained half of it.
    """

    __slots__ = ("_conn", "_queue", "_stream")

    def __init__(self, stream: TtaStream, queue: EventQueue[_Item], conn: _ws.WsConnection) -> None:
        self._stream = stream
        self._queue = queue
        self._conn = conn

    def message(self, data: bytes | bytearray | memoryview, text: bool) -> None:
        try:
            if text:
                event = frames.decode(str(data, "utf-8"))
            elif type(data) is bytearray:  # a fresh buffer per frame: viewed, not copied
                event = frames.decode_owned(data)
            else:
                event = frames.decode(data)
        except UnicodeDecodeError:
            self._stop(ProtocolError("text frame is not valid UTF-8", bytes(data)))
            return
        except AvatarError as exc:
            self._stop(exc)
            return
        except Exception as exc:  # never let a decoder bug kill the transport silently
            self._stop(ProtocolError(f"undecodable frame ({type(exc).__name__})", bytes(data)))
            return
        self._queue.force_put(event, len(data))

    def lost(self, error: AvatarError | None) -> None:
        """The connection is gone: every message before it is already queued."""
        stream = self._stream
        if error is None and stream._state not in ("closing", "closed"):
            error = ConnectionLost("the service closed the session")
        if error is not None and stream._queue is self._queue:
            stream._fail(error)
        self._queue.close()

    def _stop(self, error: AvatarError) -> None:
        if self._stream._queue is self._queue:
            self._stream._fail(error)
        self._queue.close()
        self._conn.abort(error)


class Utterance:
    """The events of one ``say()``: an async iterator ending after voice_end.

    It yields exactly the events between its own ``voice_start`` and
    ``voice_end`` (see :mod:`avatarkit.tta._utterances`); stray events and
    those of abandoned utterances are skipped (:meth:`TtaStream.events` shows
    them all).
    """

    def __init__(self, stream: TtaStream, frame: str | None) -> None:
        self._stream = stream
        self._frame = frame
        self._uid: int | None = None
        self._done = False
        self._failure: Exception | None = None

    def __aiter__(self) -> Utterance:
        return self

    def fail(self, error: Exception) -> None:
        """End the iteration with ``error`` (the audio drive's sender failed).

        Raises nothing; the iterator raises ``error`` at its next step.
        """
        if self._failure is None and not self._done:
            self._failure = error
            self._stream._wake()

    async def __anext__(self) -> ev.Event:
        stream = self._stream
        if self._done:
            raise StopAsyncIteration
        uid = self._uid
        if uid is None:
            assert self._frame is not None
            stream._require_open()
            uid = self._uid = stream._tracker.begin()  # before sending: see _utterances
            await stream.send(self._frame)
        elif stream._tracker.finished(uid):
            self._done = True
            raise AvatarError(
                "this utterance's events were consumed by a later say(); "
                "iterate each utterance to its end before the next"
            )
        queue, tracker = stream._queue, stream._tracker
        while True:
            if self._failure is not None:
                self._done = True
                raise self._failure
            # The hot path, inlined: an event already queued costs no await.
            try:
                event = queue.get_nowait()
            except Closed:
                event = None
            if event is None:
                event = await stream._next("the utterance's voice_end")
            if isinstance(event, _Wakeup):
                continue
            verdict, owner = tracker.feed(event)
            if verdict is Verdict.STRAY:
                log.debug(_STRAY, event)
            if stream._taps:
                await stream._taps.feed(event)
            if owner != uid:
                continue  # stray, the session's, or an abandoned utterance's
            if verdict is Verdict.DELIVER:
                return event
            self._done = True
            if verdict is Verdict.REFUSED:
                assert isinstance(event, ev.Status)
                raise ServiceError(event.code, event.message, retryable=event.code == MsgCode.BUSY)
            return event

    async def collect(self) -> list[ev.Event]:
        """Run the utterance to its end and return all its events.

        Raises:
            ServiceError: the service refused the chat (its ``|MSG|`` code).
            TimeoutError: the service was silent past ``idle_timeout``.
            ConnectionLost: the connection dropped before the voice_end.
            ProtocolError: an undecodable frame.
            StreamClosed: the stream is not open.
            AvatarError: a later ``say()`` consumed this utterance's events, or
                another iterator is consuming the stream.

        Cancellation:
            Iterating stops; the service goes on speaking, and the rest of this
            utterance's events are skipped by the next one.  Call
            :meth:`TtaStream.interrupt` to stop the speech itself.
        """
        return [event async for event in self]


class SpeechStream:
    """The events of streamed text (:meth:`TtaStream.say_stream`): an async iterator over
    every sentence's events, in order, ending after the last sentence's voice_end.

    Sending runs beside the iteration, in the session's task group: fragments are
    read, cut into sentences and each is sent when complete, with at most
    ``ahead + 1`` sentences sent and not yet ended.  Leaving the iteration (or
    :meth:`aclose`) stops the sending; sentences already sent are still spoken by
    the service (call :meth:`TtaStream.interrupt` to stop them).

    Attributes:
        sentences: The sentences sent so far, as sent.

    Iterating raises:
        ValidationError: a sentence holds SSML (``<``), or a fragment is not a str.
        ServiceError: the service refused a sentence's chat (its ``|MSG|`` code).
        TimeoutError: the service was silent past ``idle_timeout`` while a sentence
            was under way.
        ConnectionLost: the connection dropped.
        StreamClosed: the stream was closed.

    The fragments' own exception ends the iteration as it is.
    """

    def __init__(
        self,
        stream: TtaStream,
        fragments: AsyncIterable[str],
        splitter: SentenceSplitter,
        ahead: int,
    ) -> None:
        self._stream = stream
        self._fragments = fragments
        self._splitter = splitter
        self._slots = anyio.Semaphore(ahead + 1)
        self._scope = anyio.CancelScope()
        self._uids: set[int] = set()
        self._started = False
        self._sending = False  # the sender task is running
        self._done = False
        self._failure: Exception | None = None
        self.sentences: list[str] = []

    def __aiter__(self) -> SpeechStream:
        return self

    async def __anext__(self) -> ev.Event:
        stream = self._stream
        if self._done:
            raise StopAsyncIteration
        if not self._started:
            self._started = self._sending = True
            stream.task_group.start_soon(self._send)
        try:
            return await self._next_event()
        except BaseException:
            self._done = True
            self._scope.cancel()
            raise

    async def _next_event(self) -> ev.Event:
        stream = self._stream
        while True:
            if self._failure is not None:
                raise self._failure
            if not self._sending and not self._uids:
                self._done = True
                raise StopAsyncIteration
            event, (verdict, owner) = await stream._take("the next sentence's events")
            if isinstance(event, _Wakeup):
                continue
            if owner is None or owner not in self._uids:
                continue  # stray, the session's, or another utterance's
            if verdict is Verdict.DELIVER:
                return event
            self._uids.discard(owner)  # this sentence ended (or was refused)
            self._slots.release()
            if verdict is Verdict.REFUSED:
                assert isinstance(event, ev.Status)
                raise ServiceError(event.code, event.message, retryable=event.code == MsgCode.BUSY)
            return event

    async def _send(self) -> None:
        try:
            with self._scope:
                async for fragment in self._fragments:
                    if not isinstance(fragment, str):
                        raise ValidationError("fragment", fragment, "must be a str")
                    for sentence in self._splitter.feed(fragment):
                        await self._say(sentence)
                await self._say(self._splitter.flush())
        except Exception as exc:  # delivered to the iterator, never to the session
            self._failure = exc
        finally:
            self._sending = False
            self._stream._wake()  # the iterator re-checks: the end, or the failure

    async def _say(self, sentence: str) -> None:
        text = sentence.strip()
        if not text:
            return
        if "<" in text:
            raise ValidationError(
                "text",
                text,
                "SSML is whole-document only: pass the whole <speak> document to say(); "
                "streamed text must be plain",
            )
        frame = frames.encode_chat(text)
        await self._slots.acquire()
        stream = self._stream
        stream._require_open()
        self._uids.add(stream._tracker.begin())  # before sending: see _utterances
        await stream.send(frame)
        self.sentences.append(text)

    async def collect(self) -> list[ev.Event]:
        """Speak all the text and return every event of every sentence.

        Raises:
            ValidationError: a sentence holds SSML, or a fragment is not a str.
            ServiceError: the service refused a sentence (its ``|MSG|`` code).
            TimeoutError: the service was silent past ``idle_timeout``.
            ConnectionLost: the connection dropped.
            StreamClosed: the stream is not open.

        Cancellation:
            Sending stops with the iteration; sentences already sent are still
            spoken (and their events skipped by the next iterator).
        """
        return [event async for event in self]

    async def aclose(self) -> None:
        """Stop sending (the rest of the text is not sent).  Raises nothing.

        Cancellation:
            Safe: it does not wait.
        """
        self._done = True
        self._scope.cancel()
