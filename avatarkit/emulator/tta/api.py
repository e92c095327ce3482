"""The emulator's TTA WebSocket service (doc 001, SPEC §2): routes, auth and the session.

One :class:`TtaSession` per connection: a receive loop handles control frames while a
producer task speaks queued utterances, rendering real PCM and H.264 through
:mod:`avatarkit.emulator.media`.  The rules it applies are its own reading of doc 001
(:mod:`.models` for the open config, :mod:`.ssml` for chats, :mod:`.audio` for audio
drive); from the SDK it shares only the wire: the frame codec
(:mod:`avatarkit.tta.frames`).

Readings of doc 001 made here:

* A role is accepted at open if :func:`~avatarkit.emulator.tta.models.role_problem`
  passes, where "trained" means a digime whose training on this emulator succeeded
  (doc 000 state 2); otherwise MSG 1001, type 0 (§2.2.1.1 参数无效, §2.2.1.2 type 0),
  naming the role.
* Streamed audio (``|CTL|08|``) is "16k单声道pcm", "不支持单次送入低于1s长度的音频数据"
  (§2.1): a frame shorter than 32,000 bytes is refused, except the ``|CTL|09|`` tail.
* Interrupt (``|CTL|03|``) "当前只有文本驱动下生效" (§2.1): refused in audio mode.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from avatarkit._redact import protected_logger
from avatarkit.emulator import media
from avatarkit.emulator.rtmp import RtmpPublisher
from avatarkit.emulator.shaping import Pacer
from avatarkit.emulator.state import EmulatorState
from avatarkit.emulator.tta import audio
from avatarkit.emulator.tta.errors import ChatRejected, Dropped, InvalidParameter
from avatarkit.emulator.tta.models import Dimension, OpenConfig, read_config, role_problem
from avatarkit.emulator.tta.ssml import Span, parse_chat_ssml, visual_spans
from avatarkit.errors import ProtocolError
from avatarkit.tta import frames

__all__ = ["TtaSession", "tta_endpoint"]

log = protected_logger(__name__)

# The protocol's numbers, defined once with the wire format (doc 001 §2.2.1).
OK, INVALID, BUSY, INTERNAL = (
    frames.MsgCode.OK,
    frames.MsgCode.INVALID_PARAMETER,
    frames.MsgCode.BUSY,
    frames.MsgCode.INTERNAL,
)
T_OPEN, T_CLOSE, T_CHAT, T_INTERRUPT, T_PRODUCTION = frames.MsgType
RENDER_BATCH = 10  # frames rendered per worker-thread call: 400 ms of video
_TRAINED = 2  # doc 000: digime_training_info state 2 = training succeeded


@dataclass
class _Speak:
    text: str  # what to say, or (audio mode) the subtitle text
    pcm: bytes | None = None  # audio mode: 16 kHz mono s16le to play
    overlays: list[Span] | None = None  # SSML images and videos, in ms of this utterance


@dataclass
class _AudioPiece:
    pcm: bytes
    last: bool


class _Finish:
    pass


def is_trained(state: EmulatorState, role: str) -> bool:
    """Whether ``role`` is a digime whose training on this emulator succeeded."""
    record = state.digime.trainings.get(role)
    return record is not None and int(record.state) == _TRAINED


async def tta_endpoint(websocket: WebSocket) -> None:
    state: EmulatorState = websocket.app.state.emulator
    dimension = websocket.path_params["dimension"]
    opts = state.options
    if dimension not in ("2d", "3d"):
        await _deny(websocket, 404, f"no TTA endpoint {dimension!r}: use 2d or 3d")
        return
    query = websocket.query_params
    if query.get("appid") != opts.appid or query.get("access_token") != opts.token:
        await _deny(websocket, 401, "invalid appid or access_token")
        return
    resource = websocket.headers.get("resource-id")
    if resource != f"volc.avatar.{dimension}":
        await _deny(websocket, 400, f"Resource-Id header must be volc.avatar.{dimension}")
        return
    await websocket.accept()
    state.stats.tta_connections += 1
    try:
        await TtaSession(websocket, state, "3d" if dimension == "3d" else "2d").run()
    finally:
        state.stats.tta_connections -= 1


async def _deny(websocket: WebSocket, status: int, message: str) -> None:
    body = {"code": 45000000 + status, "message": message}
    try:
        await websocket.send_denial_response(JSONResponse(body, status_code=status))
    except RuntimeError:  # server without the denial-response extension
        await websocket.close(code=1008, reason=message)


class TtaSession:
    def __init__(self, websocket: WebSocket, state: EmulatorState, dimension: Dimension) -> None:
        self.ws = websocket
        self.state = state
        self.opts = state.options
        self.dimension = dimension
        self.config: OpenConfig | None = None
        self.media: media.MediaSession | None = None
        self.live: RtmpPublisher | None = None  # the rtmp scenario's push (doc 001 §四)
        self.frames_sent = 0
        self.subtitles: list[dict[str, Any]] = []
        self.interrupted = anyio.Event()
        self.speaking = False
        self.driving = False
        work: tuple[
            MemoryObjectSendStream[_Speak | _AudioPiece | _Finish],
            MemoryObjectReceiveStream[_Speak | _AudioPiece | _Finish],
        ]
        work = anyio.create_memory_object_stream[_Speak | _AudioPiece | _Finish](16)
        self.work_send, self.work_recv = work

    # -- sending helpers -------------------------------------------------

    async def send_text(self, text: str) -> None:
        await self.ws.send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send({"type": "websocket.send", "bytes": data})

    async def status(self, code: int, message: str, kind: int) -> None:
        await self.send_text(frames.server_status(code, message, kind))

    async def event(self, event_type: str, data: Any) -> None:
        await self.send_text(frames.server_event(event_type, data))

    async def receive_frame(self) -> str | bytes | None:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    # -- open --------------------------------------------------------------

    async def run(self) -> None:
        with anyio.move_on_after(self.opts.open_timeout) as scope:
            first = await self.receive_frame()
        if scope.cancelled_caught or first is None:
            return
        config = await self.open(first)
        if config is None:
            await self.ws.close(code=1000)
            return
        try:
            await self.run_open(config)
        finally:
            self.state.stats.tta_sessions_active -= 1  # counted by open()

    async def run_open(self, config: OpenConfig) -> None:
        self.config = config
        self.media = media.MediaSession(
            config.width,
            config.height,
            gop=config.gop,
            container=config.codec,
            cheap=self.opts.media == "cheap",
            frame_bytes=self.opts.frame_bytes,
        )
        if config.rtmp is not None:  # rtc has no offline equivalent: accepted, nothing pushed
            addr, _live_id = config.rtmp
            self.live = RtmpPublisher(
                addr,
                width=self.media.width,
                height=self.media.height,
                fps=media.FPS,
                sample_rate=media.SAMPLE_RATE,
            )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.produce)
                await self.receive_loop()
        except* Dropped:
            with contextlib.suppress(Exception):
                await self.ws.close(code=1011, reason="injected failure")
        except* (WebSocketDisconnect, OSError):
            pass  # the client went away
        finally:
            self.media.close()
            if self.live is not None:
                self.live.close()  # does not block: what is queued is still pushed

    async def open(self, first: str | bytes) -> OpenConfig | None:
        try:
            frame = frames.decode_client(first)
        except ProtocolError as exc:
            await self.status(INVALID, str(exc), T_OPEN)
            return None
        if not isinstance(frame, frames.OpenSession):
            await self.status(INVALID, "the first frame must be |CTL|00| (open session)", T_OPEN)
            return None
        if self.state.busy_left > 0:
            self.state.busy_left -= 1
            self.state.stats.tta_rejected_opens += 1
            await self.status(BUSY, "server busy, retry later", T_OPEN)
            return None
        cap = self.opts.tta_max_sessions
        if cap is not None and self.state.stats.tta_sessions_active >= cap:
            self.state.stats.tta_rejected_opens += 1
            await self.status(BUSY, f"server busy: {cap} sessions open for this appid", T_OPEN)
            return None
        try:
            config = read_config(frame.config)
            self.check_open(config)
        except InvalidParameter as exc:
            self.state.stats.tta_rejected_opens += 1
            await self.status(INVALID, f"invalid parameter: {exc.message}", T_OPEN)
            return None
        stats = self.state.stats
        stats.tta_sessions_opened += 1
        # Counted before the reply (no await between the cap's check and this).
        stats.tta_sessions_active += 1
        stats.tta_sessions_peak = max(stats.tta_sessions_peak, stats.tta_sessions_active)
        try:
            await self.status(OK, "session opened", T_OPEN)
        except BaseException:
            stats.tta_sessions_active -= 1
            raise
        return config

    def check_open(self, config: OpenConfig) -> None:
        problem = role_problem(config.role, self.dimension, is_trained(self.state, config.role))
        if problem is not None:
            raise InvalidParameter("role", config.role, problem)
        if config.appid is not None and config.appid != self.opts.appid:
            raise InvalidParameter("appid", config.appid, "must match the appid of the URL")

    # -- receive loop ------------------------------------------------------

    async def receive_loop(self) -> None:
        assert self.config is not None
        audio_mode = self.config.input_mode == "audio"
        while True:
            raw = await self.receive_frame()
            if raw is None:
                raise WebSocketDisconnect(1006)
            try:
                frame = frames.decode_client(raw)
            except ProtocolError as exc:
                await self.status(INVALID, str(exc), T_CHAT)
                continue
            match frame:
                case frames.CloseSession():
                    await self.work_send.send(_Finish())
                    return
                case frames.Chat(text=text):
                    await self.on_chat(text, audio_mode)
                case frames.Interrupt():
                    if audio_mode:
                        await self.status(INVALID, "interrupt only works in text mode", T_INTERRUPT)
                    else:
                        if self.speaking:
                            self.interrupted.set()
                        await self.status(OK, "interrupted", T_INTERRUPT)
                case frames.AudioData(pcm=pcm, last=last):
                    problem = _audio_problem(pcm, last, audio_mode)
                    if problem:
                        await self.status(INVALID, problem, T_CHAT)
                    else:
                        await self.work_send.send(_AudioPiece(pcm, last))
                case frames.UnknownFrame(header=header):
                    await self.status(INVALID, f"unknown frame header {header}", T_CHAT)
                case _:
                    await self.status(INVALID, "unexpected frame", T_CHAT)

    async def on_chat(self, text: str, audio_mode: bool) -> None:
        try:
            speak = self.parse_chat(text, audio_mode)
            if speak is not None and audio_mode:
                chat = await audio.read_audio_chat(speak.text)
                speak = _Speak(chat.subtitle, chat.pcm)
        except ChatRejected as exc:
            await self.status(INVALID, exc.message, T_CHAT)
            return
        if speak is None:
            await self.status(OK, "bitrate updated", T_CHAT)
            return
        await self.work_send.send(speak)

    def parse_chat(self, text: str, audio_mode: bool) -> _Speak | None:
        body = text.strip()
        if not body:
            raise ChatRejected("empty chat")
        if body.startswith("{"):
            try:
                obj = msgspec.json.decode(body)
            except msgspec.DecodeError as exc:
                raise ChatRejected(f"bad chat JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise ChatRejected("chat JSON must be an object")
            if "bitrate" in obj:
                kbps = obj["bitrate"]
                if isinstance(kbps, bool) or not isinstance(kbps, int) or not 400 <= kbps <= 5000:
                    raise ChatRejected(f"bitrate={kbps!r}: must be an integer from 400 to 5000")
                return None
            inner = obj.get("text")
            if not isinstance(inner, str):
                raise ChatRejected("chat JSON needs 'bitrate' or a string 'text'")
            if "subtitle" in obj and not isinstance(obj["subtitle"], dict):
                raise ChatRejected("subtitle must be an object")
            body = inner.strip()
        if audio_mode:
            return _Speak(body)  # an <audio/> chat: fetched and decoded by on_chat
        overlays, silence_ms = None, 0
        if "<" in body:
            assert self.config is not None
            chat = parse_chat_ssml(body, self.config.role, self.dimension)
            overlays, silence_ms = visual_spans(chat.root), chat.silence_ms
        plain = media.plain_text(body)
        if not plain:
            if silence_ms:  # only silent actions: play them (doc 001 §2.1.2)
                return _Speak("", pcm=bytes(silence_ms * 32), overlays=overlays)
            raise ChatRejected("nothing to speak")
        return _Speak(plain, overlays=overlays)

    # -- producer ----------------------------------------------------------

    async def produce(self) -> None:
        async with self.work_recv:
            async for item in self.work_recv:
                if isinstance(item, _Finish):
                    if self.driving:  # a drive without its tail: end it
                        await self.drive(_AudioPiece(b"", last=True))
                    await self.finish()
                    return
                if isinstance(item, _AudioPiece):
                    await self.drive(item)
                else:
                    await self.speak(item)

    async def speak(self, item: _Speak) -> None:
        """One utterance: synthesized speech for text, or the audio an audio-URL chat gave."""
        assert self.media is not None and self.config is not None
        self.interrupted = anyio.Event()
        self.speaking = True
        await self.status(OK, "chat accepted", T_CHAT)
        await self.event("voice_start", {})
        if item.pcm is None:
            pcm = media.synth_speech(item.text, seed=len(self.subtitles))
            sentences = media.sentence_timings(item.text)
        else:  # audio mode: one subtitle, lasting as long as the audio (doc 001 §2.2.4.3)
            pcm = item.pcm
            duration = math.ceil(len(pcm) / media.AUDIO_BYTES_PER_FRAME) * media.FRAME_MS
            sentences = [(item.text, 0, duration)] if item.text else []
        base_ms = self.media.duration_ms
        for start, end, left, top, width, height in item.overlays or ():
            self.media.add_overlay(
                base_ms + start, base_ms + end, left=left, top=top, width=width, height=height
            )
        spoken_ms = await self.play(pcm, sentences, base_ms)
        for sentence, start, end in sentences:
            if start < spoken_ms:
                self.subtitles.append(
                    {
                        "text": sentence,
                        "start_time_ms": base_ms + start,
                        "end_time_ms": base_ms + min(end, spoken_ms),
                    }
                )
        self.speaking = False
        interrupted = self.interrupted.is_set()
        await self.event("voice_end", {"interrupted": True} if interrupted else {})

    async def drive(self, piece: _AudioPiece) -> None:
        """Streamed audio (``|CTL|08|``): the avatar speaks what it receives, as it arrives."""
        assert self.media is not None
        if not self.driving:
            self.driving = True
            self.interrupted = anyio.Event()
            await self.event("voice_start", {})
        if piece.pcm:
            await self.play(piece.pcm, [], self.media.duration_ms)
        if piece.last:  # the tail: then silence
            self.driving = False
            await self.event("voice_end", {})

    async def play(self, pcm: bytes, sentences: list[tuple[str, int, int]], base_ms: int) -> int:
        """Render ``pcm`` and send its audio, video and subtitle frames; returns ms played."""
        assert self.media is not None and self.config is not None
        subtitles_on = bool(sentences and self.config.subtitle_control)
        n_frames = math.ceil(len(pcm) / media.AUDIO_BYTES_PER_FRAME)
        audio_chunk = (
            max(1, self.opts.audio_chunk_ms // media.FRAME_MS) * media.AUDIO_BYTES_PER_FRAME
        )
        pending_audio = bytearray()
        next_sentence, shown = 0, -1
        started = anyio.current_time()
        realtime = self.opts.pace == "realtime"
        done_frames = 0
        for batch_start in range(0, n_frames, RENDER_BATCH):
            if self.interrupted.is_set():
                break
            piece = pcm[batch_start * 1280 : (batch_start + RENDER_BATCH) * 1280]
            if self.opts.media == "cheap":
                units = self.media.render(piece)
            else:
                units = await anyio.to_thread.run_sync(self.media.render, piece)
            if self.live is not None:
                self.live.feed(units, piece)
            for offset, unit in enumerate(units):
                index = batch_start + offset
                now_ms = index * media.FRAME_MS
                if realtime:
                    await anyio.sleep_until(started + now_ms / 1000)
                if subtitles_on:
                    while next_sentence < len(sentences) and sentences[next_sentence][1] <= now_ms:
                        if shown >= 0:
                            await self.subtitle("subtitle_off", sentences[shown], base_ms)
                        shown = next_sentence
                        await self.subtitle("subtitle_on", sentences[shown], base_ms)
                        next_sentence += 1
                pending_audio += piece[offset * 1280 : (offset + 1) * 1280]
                if len(pending_audio) >= audio_chunk:
                    await self.send_bytes(frames.server_audio(bytes(pending_audio)))
                    pending_audio.clear()
                    self.count_frame()
                await self.send_bytes(frames.server_video(unit))
                self.count_frame()
            done_frames = batch_start + len(units)
            await anyio.lowlevel.checkpoint()  # let interrupts and closes in
        if pending_audio:
            await self.send_bytes(frames.server_audio(bytes(pending_audio)))
            self.count_frame()
        if subtitles_on and shown >= 0:
            await self.subtitle("subtitle_off", sentences[shown], base_ms)
        return done_frames * media.FRAME_MS

    async def subtitle(self, kind: str, sentence: tuple[str, int, int], base_ms: int) -> None:
        text, start, end = sentence
        await self.event(
            kind, {"text": text, "start_time_ms": base_ms + start, "end_time_ms": base_ms + end}
        )

    def count_frame(self) -> None:
        self.frames_sent += 1
        self.state.stats.tta_frames_sent += 1
        limit = self.opts.drop_after_frames
        if limit is not None and self.frames_sent >= limit:
            raise Dropped

    async def finish(self) -> None:
        assert self.media is not None and self.config is not None
        config = self.config
        if config.subtitle_control:
            await self.event("all_subtitles", {"subtitles": self.subtitles})
        if config.codec:
            if self.media.duration_ms == 0:
                await self.status(
                    INVALID, "nothing to produce: no utterance was spoken", T_PRODUCTION
                )
            else:
                await self.deliver(config)
        await self.status(OK, "session closed", T_CLOSE)
        await self.ws.close(code=1000)

    async def deliver(self, config: OpenConfig) -> None:
        assert self.media is not None and config.codec is not None
        if self.opts.production_factor > 0:
            await anyio.sleep(self.media.duration_ms / 1000 * self.opts.production_factor)
        data = await anyio.to_thread.run_sync(self.media.produce)
        if config.output_url:
            video_id, signature = self.state.store_video(data, config.codec)
            host, port = self.ws.scope["server"] or ("127.0.0.1", 80)
            host = f"[{host}]" if ":" in host else host
            url = f"http://{host}:{port}/tta/videos/{video_id}.{config.codec}?signature={signature}"
            await self.event("video_url", {"video_url": url})
        else:
            size = self.opts.media_chunk_bytes
            pacer = Pacer(lambda: self.opts.video_send_bps)
            for start in range(0, len(data), size):
                last = start + size >= len(data)
                piece = data[start : start + size]
                await pacer.wait(len(piece))
                await self.send_bytes(frames.server_media(piece, last=last))
            self.state.stats.tta_videos_delivered += 1
        await self.status(OK, "video produced", T_PRODUCTION)


def _audio_problem(pcm: bytes, last: bool, audio_mode: bool) -> str | None:
    """Why a ``|CTL|08|``/``|CTL|09|`` frame is refused, if it is (doc 001 §2.1)."""
    if not audio_mode:
        return "streaming audio needs input_mode=audio"
    if len(pcm) % 2:
        return f"|CTL|08| payload of {len(pcm)} bytes: 16-bit PCM needs an even length"
    if not last and len(pcm) < _SECOND_BYTES:
        return (
            f"|CTL|08| frame of {len(pcm)} bytes: at least 1 s (32000 bytes of 16 kHz mono "
            "s16le) per frame; only the |CTL|09| tail may be shorter"
        )
    return None


_SECOND_BYTES = 32_000  # doc 001 §2.1: 1 s of 16 kHz mono s16le, the least per |CTL|08| frame
