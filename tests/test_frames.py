"""The sans-I/O frame codec: every frame kind both ways, and garbage."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avatarkit.errors import ProtocolError, ValidationError
from avatarkit.tta import events as ev
from avatarkit.tta import frames

# -- client frames -------------------------------------------------------


def test_open_frame_carries_config_json() -> None:
    frame = frames.encode_open(b'{"role":"GuoXiaoyuan"}')
    assert frame == '|CTL|00|{"role":"GuoXiaoyuan"}'
    decoded = frames.decode_client(frame)
    assert decoded == frames.OpenSession('{"role":"GuoXiaoyuan"}')


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (frames.encode_close(), frames.CloseSession()),
        (frames.encode_interrupt(), frames.Interrupt()),
        (frames.encode_chat("今天天气不错"), frames.Chat("今天天气不错")),
        (frames.encode_bitrate(400), frames.Chat('{"bitrate":400}')),
        (frames.encode_bitrate(5000), frames.Chat('{"bitrate":5000}')),
    ],
)
def test_control_frames_round_trip(frame: str, expected: frames.ClientFrame) -> None:
    assert frame[:8] in ("|CTL|01|", "|CTL|02|", "|CTL|03|")
    assert frames.decode_client(frame) == expected
    assert frames.decode_client(frame.encode()) == expected  # any header in either frame kind


@pytest.mark.parametrize("kbps", [399, 5001, 0, -1, True, 1000.0, "1000"])
def test_bitrate_out_of_range(kbps: object) -> None:
    with pytest.raises(ValidationError) as info:
        frames.encode_bitrate(kbps)  # type: ignore[arg-type]
    assert info.value.field == "bitrate"
    assert "400 to 5000" in info.value.rule


@pytest.mark.parametrize("text", ["", "   ", None, 42])
def test_chat_needs_text(text: object) -> None:
    with pytest.raises(ValidationError) as info:
        frames.encode_chat(text)  # type: ignore[arg-type]
    assert info.value.field == "text"


def test_audio_url_chat() -> None:
    frame = frames.encode_audio_url(
        "https://x/a b.pcm?x=1&y=2", format="pcm", sample_rate=48000, channels=1
    )
    assert frame == (
        '|CTL|02|<audio url="https://x/a b.pcm?x=1&amp;y=2" format="pcm" '
        'sample_rate="48000" ac="1"/>'
    )
    assert frames.decode_client(frame) == frames.Chat(frame[8:])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "ftp://x/a.pcm", "format": "pcm"}, "url"),
        ({"url": "https://x/a.flac", "format": "flac"}, "format"),
        ({"url": "https://x/a.pcm", "format": "pcm", "sample_rate": 0}, "sample_rate"),
        ({"url": "https://x/a.pcm", "format": "pcm", "channels": 3}, "channels"),
    ],
)
def test_audio_url_chat_rules(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        frames.encode_audio_url(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_styled_chat() -> None:
    style = {"fontname": "Source Han Serif CN", "fontsize": 18, "primary_colour": "0000ff00"}
    frame = frames.encode_styled_chat("<speak>今天天气真不错</speak>", {"global_style": style})
    decoded = frames.decode_client(frame)
    assert isinstance(decoded, frames.Chat)
    assert json.loads(decoded.text) == {
        "text": "<speak>今天天气真不错</speak>",
        "subtitle": {"global_style": style},
    }
    with pytest.raises(ValidationError):
        frames.encode_styled_chat("", {})


def test_audio_frames() -> None:
    second = bytes(32_000)
    assert frames.encode_audio(second) == b"|CTL|08|" + second
    assert frames.decode_client(frames.encode_audio(second)) == frames.AudioData(second, False)
    tail = frames.encode_audio(b"\x01\x00" * 10, last=True)
    assert tail[:8] == b"|CTL|09|"
    assert frames.decode_client(tail) == frames.AudioData(b"\x01\x00" * 10, True)


def test_audio_frame_under_one_second_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        frames.encode_audio(bytes(31_998))
    assert "at least 1 s" in info.value.rule
    with pytest.raises(ValidationError, match="even length"):
        frames.encode_audio(bytes(32_001))


# -- server frames -------------------------------------------------------


@pytest.mark.parametrize("as_text", [False, True])
def test_binary_media_frames(as_text: bool) -> None:
    cases: list[tuple[bytes, ev.Event]] = [
        (frames.server_audio(b"\x01\x02"), ev.AudioChunk(b"\x01\x02")),
        (frames.server_video(b"\x00\x00\x00\x01\x67"), ev.VideoChunk(b"\x00\x00\x00\x01\x67")),
        (frames.server_media(b"mp4-part"), ev.MediaChunk(b"mp4-part")),
        (frames.server_media(b"last", last=True), ev.MediaEnd(b"last")),
    ]
    for raw, expected in cases:
        frame: str | bytes = raw.decode("latin-1") if as_text else raw
        decoded = frames.decode(frame)
        if as_text:  # a text frame's payload arrives as UTF-8 bytes
            assert type(decoded) is type(expected)
        else:
            assert decoded == expected


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        ("voice_start", {}, ev.VoiceStart({})),
        ("voice_end", {"interrupted": True}, ev.VoiceEnd({"interrupted": True})),
        (
            "subtitle_on",
            {"text": "你好", "start_time_ms": 0, "end_time_ms": 880},
            ev.SubtitleOn("你好", 0, 880),
        ),
        ("subtitle_off", {"text": "你好"}, ev.SubtitleOff("你好", None, None)),
        (
            "all_subtitles",
            {"subtitles": [{"end_time_ms": 2880, "start_time_ms": 0, "text": "今天天气真不错。"}]},
            ev.AllSubtitles((ev.SubtitleItem("今天天气真不错。", 0, 2880),)),
        ),
        (
            "video_url",
            {"video_url": "https://x/v.mp4?sig=s3cr3t"},
            ev.VideoUrl("https://x/v.mp4?sig=s3cr3t"),
        ),
    ],
)
def test_event_frames(
    event_type: str, data: dict[str, object], expected: ev.Event, as_bytes: bool
) -> None:
    frame: str | bytes = frames.server_event(event_type, data)
    assert frame.startswith("|DAT|02|")
    if as_bytes:
        frame = frame.encode()
    assert frames.decode(frame) == expected


def test_subtitle_events_match_the_base_class() -> None:
    match frames.decode(frames.server_event("subtitle_on", {"text": "a", "start_time_ms": 5})):
        case ev.Subtitle(text=text, start_ms=start):
            assert (text, start) == ("a", 5)
        case _:
            pytest.fail("SubtitleOn must match events.Subtitle")


def test_unknown_event_type_is_delivered() -> None:
    event = frames.decode(frames.server_event("lip_sync", {"x": [1, 2]}))
    assert isinstance(event, ev.Unknown)
    assert event.event_type == "lip_sync"
    assert event.data == {"x": [1, 2]}
    assert event.header == "|DAT|02|"


@pytest.mark.parametrize("as_bytes", [False, True])
def test_status_frames(as_bytes: bool) -> None:
    frame: str | bytes = frames.server_status(1002, "busy", 0)
    if as_bytes:
        frame = frame.encode()
    event = frames.decode(frame)
    assert event == ev.Status(1002, "busy", 0)
    assert not event.ok  # type: ignore[union-attr]


@pytest.mark.parametrize("frame", ["|MSG|01|{}", b"|MSG|02|", b"|DAT|09|\x00\x01", "|ABC|77|x"])
def test_unknown_headers_are_delivered(frame: str | bytes) -> None:
    event = frames.decode(frame)
    assert isinstance(event, ev.Unknown)
    assert event.header == (frame[:8] if isinstance(frame, str) else frame[:8].decode())
    assert event.payload == frame[8:]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "shorter"),
        ("|DAT|0", "shorter"),
        (b"DAT|00|\x00\x00", "bad frame header"),
        ("|dat|00|x", "bad frame header"),
        (b"|DAT|0x|", "bad frame header"),
        ("|DAT|02|{not json", "bad event JSON"),
        (b"|DAT|02|[]", "bad event JSON"),
        ('|DAT|02|{"callback_info":{"type":"video_url","data":{}}}', "'video_url' event"),
        ("|MSG|00|{}", "bad MSG JSON"),
        (b'|MSG|00|{"code":"x"}', "bad MSG JSON"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: str | bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        frames.decode(frame)
    assert reason in str(info.value)
    assert len(info.value.excerpt) <= 80


def test_protocol_error_excerpt_is_redacted() -> None:
    from avatarkit._redact import register_secret

    register_secret("tok-SECRET-123")
    with pytest.raises(ProtocolError) as info:
        frames.decode("|DAT|02|{tok-SECRET-123")
    assert "tok-SECRET-123" not in str(info.value)
    assert "***" in str(info.value)


def test_binary_payload_is_not_copied() -> None:
    payload = bytes(range(256)) * 160  # 40 KiB
    frame = frames.server_video(payload)
    event = frames.decode(frame)
    assert isinstance(event, ev.VideoChunk)
    assert event.nal == payload
    assert event.nal.readonly
    assert event.nal.obj is frame  # a view into the received frame, not a copy


# -- properties ----------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.binary(max_size=4096))
def test_media_round_trip(payload: bytes) -> None:
    assert frames.decode(frames.server_audio(payload)) == ev.AudioChunk(payload)
    assert frames.decode(frames.server_video(payload)) == ev.VideoChunk(payload)
    assert frames.decode(frames.server_media(payload, last=True)) == ev.MediaEnd(payload)


@given(st.integers(-(2**31), 2**31), st.text(max_size=50), st.integers(0, 10))
def test_status_round_trip(code: int, message: str, kind: int) -> None:
    assert frames.decode(frames.server_status(code, message, kind)) == ev.Status(
        code, message, kind
    )


@given(
    st.text(min_size=1, max_size=20).filter(lambda t: t not in frames._EVENT_BUILDERS), _json_values
)
def test_unknown_events_round_trip(event_type: str, data: object) -> None:
    event = frames.decode(frames.server_event(event_type, data))
    assert isinstance(event, ev.Unknown)
    assert (event.event_type, event.data) == (event_type, data)


@given(st.text(min_size=1, max_size=200).filter(str.strip))
def test_chat_round_trip(text: str) -> None:
    assert frames.decode_client(frames.encode_chat(text)) == frames.Chat(text)


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_garbage_raises_only_protocol_error(data: bytes | str) -> None:
    with contextlib.suppress(ProtocolError):
        frames.decode(data)
    with contextlib.suppress(ProtocolError):
        frames.decode_client(data)


@given(st.sampled_from(["|DAT|02|", "|MSG|00|"]), st.binary(max_size=200) | st.text(max_size=200))
def test_json_frames_with_garbage_raise_only_protocol_error(header: str, body: bytes | str) -> None:
    frame: str | bytes = header + body if isinstance(body, str) else header.encode() + body
    with contextlib.suppress(ProtocolError):
        frames.decode(frame)


@given(_json_values)
def test_event_json_garbage_raises_only_protocol_error(value: object) -> None:
    with contextlib.suppress(ProtocolError):
        frames.decode("|DAT|02|" + json.dumps(value))


# -- foreign exceptions turned into avatarkit's own (issue 8, 4c/4d) ------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize(
    "frame",
    [
        '|DAT|02|{"callback_info":{"type":"x","data":' + DEEP + "}}",  # an Unknown's data
        '|DAT|02|{"callback_info":{"type":"x","data":' + "[" * 100_000,  # never closed
        '|DAT|02|{"callback_info":{"type":"voice_start","data":{"a":' + DEEP + "}}}",
        '|MSG|00|{"code":1000,"extra":' + DEEP + "}",  # skipped, yet msgspec recurses
    ],
)
def test_deeply_nested_json_is_a_protocol_error(frame: str, as_bytes: bool) -> None:
    # msgspec recursed past the interpreter's limit: RecursionError escaped.
    with pytest.raises(ProtocolError, match="nested too deeply"):
        frames.decode(frame.encode() if as_bytes else frame)


@pytest.mark.parametrize("header", ["|DAT|00|", "|DAT|01|", "|DAT|02|", "|MSG|00|", "|DAT|04|"])
def test_str_frame_with_a_lone_surrogate_is_a_protocol_error(header: str) -> None:
    with pytest.raises(ProtocolError, match="lone surrogate U\\+D800"):
        frames.decode(header + '{"code": "\ud800"}')


@pytest.mark.parametrize("header", ["|CTL|00|", "|CTL|02|", "|CTL|08|", "|CTL|09|"])
def test_client_str_frame_with_a_lone_surrogate_is_a_protocol_error(header: str) -> None:
    with pytest.raises(ProtocolError, match="lone surrogate U\\+DC00"):
        frames.decode_client(header + "ok\udc00")


def test_client_text_audio_frame_keeps_its_utf8_bytes() -> None:
    # latin-1 could not encode "€": UnicodeEncodeError.  A text frame's bytes are its UTF-8.
    assert frames.decode_client("|CTL|09|é€") == frames.AudioData("é€".encode(), True)


@pytest.mark.parametrize("decoder", [frames.decode, frames.decode_client])
def test_frames_of_the_wrong_type_are_validation_errors(decoder: object) -> None:
    released = memoryview(b"|DAT|00|\x00\x00")
    released.release()
    for frame in (None, 12, 1.5, released, ["|DAT|00|"]):
        with pytest.raises(ValidationError) as info:
            decoder(frame)  # type: ignore[operator]
        assert info.value.field == "frame"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: frames.encode_open("\ud800"), "config_json"),
        (lambda: frames.encode_open(b'{"role":"\xff"}'), "config_json"),
        (lambda: frames.encode_open(None), "config_json"),
        (lambda: frames.encode_chat("hi \ud800"), "text"),
        (lambda: frames.encode_chat(10**5000), "text"),
        (lambda: frames.encode_audio_url("https://x/\udfff.mp3", format="mp3"), "url"),
        (
            lambda: frames.encode_audio_url("https://x/a", format="mp3", sample_rate=-(10**5000)),
            "sample_rate",
        ),
        (lambda: frames.encode_styled_chat("\ud800", {}), "text"),
        (
            lambda: frames.encode_styled_chat("hi", {"global_style": {"fontname": "\ud800"}}),
            "subtitle",
        ),
        (lambda: frames.encode_styled_chat("hi", {"global_style": object()}), "subtitle"),
        (lambda: frames.encode_bitrate(10**5000), "bitrate"),
        (lambda: frames.encode_audio(None), "pcm"),
        (lambda: frames.encode_audio("ab" * 20_000), "pcm"),
    ],
)
def test_encoders_raise_only_validation_errors(call: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == field
    str(info.value)


def test_audio_frame_size_counts_bytes_not_items() -> None:
    import array

    half_second = memoryview(array.array("h", bytes(16_000)))  # 8000 items, 16000 bytes
    with pytest.raises(ValidationError, match="at least 1 s"):
        frames.encode_audio(memoryview(array.array("h", bytes(31_998))))
    assert frames.encode_audio(half_second, last=True) == b"|CTL|09|" + bytes(16_000)
    one_second = memoryview(array.array("h", bytes(32_000)))  # 16000 items
    assert len(frames.encode_audio(one_second)) == 8 + 32_000


def test_media_events_are_not_tracked_by_the_garbage_collector() -> None:
    # 50 a second per real-time stream: tracked, they kept the collector busy enough
    # to lag every stream at a thousand streams (benchmarks/tta_realtime.py).
    import gc

    payload = memoryview(bytearray(b"\x00\x00\x00\x01"))
    for event in (
        ev.AudioChunk(pcm=payload),
        ev.VideoChunk(nal=payload),
        ev.MediaChunk(data=payload),
    ):
        assert not gc.is_tracked(event)
    decoded = frames.decode_owned(bytearray(b"|DAT|01|\x00\x00\x00\x01"))
    assert isinstance(decoded, ev.VideoChunk) and not gc.is_tracked(decoded)
