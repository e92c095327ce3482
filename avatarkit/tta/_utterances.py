"""Which utterance an event belongs to: a pure state machine, no I/O.

A TTA session speaks its chats one after another, in the order they were
sent.  The stream feeds every event it receives to :class:`UtteranceTracker`,
which answers, for each one, who it belongs to:

* ``DELIVER``/``END`` to an utterance (``END`` is its ``voice_end``);
* ``REFUSED``: the service refused that utterance's chat (a ``|MSG|`` type-2
  error), which ends it;
* ``SESSION``: it belongs to the session, not to an utterance (the open and
  close replies, the produced video, subtitles of the whole video);
* ``STRAY``: it cannot belong to any utterance — a ``voice_end`` or media
  while nothing is being spoken, a second ``voice_start`` while one is.

Rules (doc 001 §3: one chat → ``voice_start`` … media and subtitles …
``voice_end``):

* An utterance starts at the first ``voice_start`` after its chat was sent,
  once every earlier utterance has ended; it ends at the next ``voice_end``.
* Media (``|DAT|00|``/``|DAT|01|``) and subtitles belong to the utterance that
  is speaking; with none speaking they are stray.
* A chat refusal is answered before the chat is spoken, so it ends the oldest
  utterance that has not started; with none waiting to start (e.g. a refused
  ``set_bitrate``), it is delivered to the speaking utterance as a plain event.
* A ``|MSG|`` ok reply to a chat or an interrupt, and events this version does
  not know, go to the oldest unfinished utterance (the session if none).

Nothing here moves an event into another utterance: an utterance's iterator
yields exactly the events between its own start and its own end.
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

from avatarkit.tta import events as ev
from avatarkit.tta.frames import MsgType

__all__ = ["Decision", "UtteranceTracker", "Verdict"]


class Verdict(enum.Enum):
    DELIVER = "deliver"
    END = "end"
    REFUSED = "refused"
    SESSION = "session"
    STRAY = "stray"


class Decision(NamedTuple):
    verdict: Verdict
    utterance: int | None  # the utterance it belongs to, for DELIVER, END, REFUSED


_SESSION: Final = Decision(Verdict.SESSION, None)
_STRAY: Final = Decision(Verdict.STRAY, None)
_SPOKEN: Final = (ev.AudioChunk, ev.VideoChunk, ev.SubtitleOn, ev.SubtitleOff)
_SESSION_EVENTS: Final = (ev.MediaChunk, ev.MediaEnd, ev.VideoUrl, ev.AllSubtitles)


class UtteranceTracker:
    """Attributes events to utterances; see the module docstring for the rules."""

    __slots__ = ("_deliver", "_next_id", "_pending", "_speaking", "audio_bytes")

    def __init__(self) -> None:
        self._next_id = 1
        self._speaking: int | None = None  # the utterance between voice_start and voice_end
        self._deliver = _STRAY  # DELIVER to the speaking utterance, made once per utterance
        self._pending: list[int] = []  # sent, not started, in the order they were sent
        self.audio_bytes = 0  # PCM received: how much speech the production will hold

    def begin(self) -> int:
        """A chat that the service will speak was sent: a new utterance's id."""
        uid = self._next_id
        self._next_id += 1
        self._pending.append(uid)
        return uid

    @property
    def busy(self) -> bool:
        """Whether an utterance is under way (sent and not yet ended)."""
        return self._speaking is not None or bool(self._pending)

    def finished(self, uid: int) -> bool:
        """Whether ``uid`` has ended (or was refused)."""
        return uid < self._next_id and uid != self._speaking and uid not in self._pending

    def _oldest(self) -> int | None:
        if self._speaking is not None:
            return self._speaking
        return self._pending[0] if self._pending else None

    def feed(self, event: ev.Event) -> Decision:
        """Who ``event`` belongs to; updates the state."""
        if type(event) is ev.AudioChunk:  # the hot path: media of the speaking utterance
            self.audio_bytes += len(event.pcm)
            return self._deliver
        kind = type(event)
        if kind is ev.VideoChunk:
            return self._deliver
        speaking = self._speaking
        if isinstance(event, _SPOKEN):
            return self._deliver
        if isinstance(event, ev.VoiceStart):
            if speaking is not None or not self._pending:
                return _STRAY
            self._speaking = uid = self._pending.pop(0)
            self._deliver = Decision(Verdict.DELIVER, uid)
            return self._deliver
        if isinstance(event, ev.VoiceEnd):
            if speaking is None:
                return _STRAY
            self._speaking = None
            self._deliver = _STRAY
            return Decision(Verdict.END, speaking)
        if isinstance(event, ev.Status):
            if event.type == MsgType.CHAT and not event.ok and self._pending:
                return Decision(Verdict.REFUSED, self._pending.pop(0))
            if event.type in (MsgType.CHAT, MsgType.INTERRUPT):
                oldest = self._oldest()
                return _SESSION if oldest is None else Decision(Verdict.DELIVER, oldest)
            return _SESSION
        if isinstance(event, _SESSION_EVENTS):
            return _SESSION
        oldest = self._oldest()  # Unknown and anything newer: shown, never dropped
        return _SESSION if oldest is None else Decision(Verdict.DELIVER, oldest)
