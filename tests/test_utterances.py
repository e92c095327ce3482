"""The utterance tracker: every utterance gets exactly the events between its own
start and end, whatever strays the service sends around them."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from avatarkit.tta import events as ev
from avatarkit.tta._utterances import UtteranceTracker, Verdict
from avatarkit.tta.frames import MsgCode, MsgType

ACK = ev.Status(MsgCode.OK, "chat accepted", MsgType.CHAT)
REFUSAL = ev.Status(MsgCode.INVALID_PARAMETER, "bad chat", MsgType.CHAT)


def test_a_stray_voice_end_before_the_first_voice_start_is_stray() -> None:
    tracker = UtteranceTracker()
    uid = tracker.begin()
    assert tracker.feed(ev.VoiceEnd()).verdict is Verdict.STRAY
    assert tracker.feed(ev.VoiceStart()) == (Verdict.DELIVER, uid)
    assert tracker.feed(ev.AudioChunk(memoryview(b"x"))) == (Verdict.DELIVER, uid)
    assert tracker.feed(ev.VoiceEnd()) == (Verdict.END, uid)
    assert tracker.finished(uid) and not tracker.busy


def test_media_with_nothing_speaking_is_stray() -> None:
    tracker = UtteranceTracker()
    assert tracker.feed(ev.VideoChunk(memoryview(b"x"))).verdict is Verdict.STRAY
    tracker.begin()
    assert tracker.feed(ev.AudioChunk(memoryview(b"x"))).verdict is Verdict.STRAY  # not started


def test_a_second_voice_start_while_speaking_is_stray() -> None:
    tracker = UtteranceTracker()
    first, _second = tracker.begin(), tracker.begin()
    assert tracker.feed(ev.VoiceStart()) == (Verdict.DELIVER, first)
    assert tracker.feed(ev.VoiceStart()).verdict is Verdict.STRAY


def test_a_refusal_ends_the_oldest_utterance_not_yet_started() -> None:
    tracker = UtteranceTracker()
    first, second = tracker.begin(), tracker.begin()
    tracker.feed(ev.VoiceStart())
    assert tracker.feed(REFUSAL) == (Verdict.REFUSED, second)  # refused before it is spoken
    assert tracker.feed(ev.VoiceEnd()) == (Verdict.END, first)
    # with nothing waiting to start (a refused set_bitrate), it is shown to the speaker
    third = tracker.begin()
    tracker.feed(ev.VoiceStart())
    assert tracker.feed(REFUSAL) == (Verdict.DELIVER, third)


def test_session_events_belong_to_no_utterance() -> None:
    tracker = UtteranceTracker()
    tracker.begin()
    tracker.feed(ev.VoiceStart())
    for event in (
        ev.MediaChunk(memoryview(b"x")),
        ev.MediaEnd(memoryview(b"x")),
        ev.VideoUrl("http://127.0.0.1/v.mp4"),
        ev.AllSubtitles(()),
        ev.Status(MsgCode.OK, "", MsgType.CLOSE),
    ):
        assert tracker.feed(event).verdict is Verdict.SESSION


def test_audio_bytes_count_the_speech_received() -> None:
    tracker = UtteranceTracker()
    tracker.begin()
    tracker.feed(ev.VoiceStart())
    tracker.feed(ev.AudioChunk(memoryview(bytes(640))))
    tracker.feed(ev.AudioChunk(memoryview(bytes(320))))
    assert tracker.audio_bytes == 960


# -- the property -------------------------------------------------------------
#
# A script: for each utterance, the client's chat ("send"), then what the
# service answers (a refusal, or ack/voice_start/body/voice_end).  Stray events
# are inserted only where they are out of place by construction: voice_end,
# media and subtitles while nothing speaks, voice_start while something does.
# The user may send the next chat before the previous one is spoken.


@dataclass
class Script:
    steps: list[tuple[str, object]] = field(default_factory=list)  # ("send", uid) | ("event", e)
    owned: dict[int, list[ev.Event]] = field(default_factory=dict)


def _media(uid: int, n: int) -> ev.Event:
    return ev.AudioChunk(memoryview(f"{uid}:{n}".encode()))


_idle_strays = st.sampled_from(
    [
        ev.VoiceEnd({"stray": True}),
        ev.VideoChunk(memoryview(b"stray")),
        ev.AudioChunk(memoryview(b"stray")),
        ev.SubtitleOn("stray"),
        ev.Status(MsgCode.OK, "closed", MsgType.CLOSE),
        ev.MediaChunk(memoryview(b"stray")),
    ]
)
_speaking_strays = st.sampled_from(
    [ev.VoiceStart({"stray": True}), ev.MediaChunk(memoryview(b"x")), ev.AllSubtitles(())]
)


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    script = Script()
    count = draw(st.integers(1, 6))
    sent = 0
    for uid in range(1, count + 1):
        # Chats may be sent ahead: every chat up to `ahead` goes out now.
        ahead = draw(st.integers(uid, count))
        while sent < ahead:
            sent += 1
            script.steps.append(("send", sent))
        if draw(st.booleans()):
            script.steps.append(("event", draw(_idle_strays)))
        owned: list[ev.Event] = []
        if draw(st.integers(0, 4)) == 0:  # the service refuses this chat
            owned.append(REFUSAL)
            script.steps.append(("event", REFUSAL))
            script.owned[uid] = owned
            continue
        for event in (ACK, ev.VoiceStart({"n": uid})):
            owned.append(event)
            script.steps.append(("event", event))
        for n in range(draw(st.integers(0, 5))):
            if draw(st.integers(0, 3)) == 0:
                script.steps.append(("event", draw(_speaking_strays)))
            event = _media(uid, n) if n % 3 else ev.SubtitleOn(f"{uid}:{n}")
            owned.append(event)
            script.steps.append(("event", event))
        end = ev.VoiceEnd({"n": uid})
        owned.append(end)
        script.steps.append(("event", end))
        script.owned[uid] = owned
        if draw(st.booleans()):
            script.steps.append(("event", draw(_idle_strays)))
    return script


@settings(max_examples=400, deadline=None)
@given(scripts())
def test_each_utterance_gets_exactly_its_own_events(script: Script) -> None:
    tracker = UtteranceTracker()
    ids: dict[int, int] = {}
    got: dict[int, list[ev.Event]] = {}
    for kind, item in script.steps:
        if kind == "send":
            assert isinstance(item, int)
            ids[tracker.begin()] = item
            continue
        assert isinstance(item, ev.Event)
        verdict, owner = tracker.feed(item)
        if verdict in (Verdict.DELIVER, Verdict.END, Verdict.REFUSED):
            assert owner is not None
            got.setdefault(ids[owner], []).append(item)
    assert got == {uid: events for uid, events in script.owned.items()}
    assert not tracker.busy
