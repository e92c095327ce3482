"""The frame reader (``tta/_wsread.py``): pure, so checked over random streams and reads.

The frames are serialized by websockets itself (a server's: unmasked), so the
reader is checked against the library's reading of RFC 6455, not ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame, Opcode

from avatarkit.tta._wsread import FrameReader

HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def wire(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=False)


@dataclass
class Recorder:
    """A FrameHandler and message sink that records what it was handed."""

    accept_head: bool = True
    stop_on_close: bool = True
    messages: list[tuple[bytearray, bool]] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
    controls: list[bytes] = field(default_factory=list)
    passed: bytearray = field(default_factory=bytearray)

    def head(self, data: bytes) -> bool:
        self.heads.append(data)
        return self.accept_head

    def control(self, frame: bytes) -> bool:
        self.controls.append(frame)
        return not (self.stop_on_close and frame[0] & 0x0F == Opcode.CLOSE)

    def passthrough(self, data: bytes) -> None:
        self.passed += data

    def message(self, data: bytearray, text: bool) -> None:
        self.messages.append((data, text))


def reader(rec: Recorder, **kwargs: int) -> FrameReader:
    return FrameReader(rec, rec.message, max_size=kwargs.pop("max_size", 1 << 20), **kwargs)


def feed_in_reads(r: FrameReader, stream: bytes, reads: list[int]) -> None:
    """Feed ``stream`` as a socket would: each read at most what get_buffer offers."""
    at, k = 0, 0
    while at < len(stream):
        target = r.get_buffer()
        want = reads[k % len(reads)] if reads else len(target)
        k += 1
        n = max(1, min(len(target), want, len(stream) - at))
        target[:n] = stream[at : at + n]
        at += n
        r.filled(n)


sizes = st.one_of(
    st.integers(0, 125),  # 7-bit length
    st.integers(126, 3000),  # 16-bit, partial in small read buffers
    st.integers(3000, 70_000),  # read straight into their own buffers; past 65535 64-bit
    st.sampled_from([0, 1, 125, 126, 127, 65_535, 65_536, 16_383, 16_384]),
)
messages = st.lists(st.tuples(st.booleans(), sizes), max_size=30)
reads = st.lists(st.integers(1, 100_000), max_size=8)


def payload(i: int, n: int) -> bytes:
    return bytes((i + j) % 251 for j in range(min(n, 64))) * (n // 64) + bytes(n % 64)


@settings(max_examples=150, deadline=None)
@given(
    messages,
    reads,
    st.sampled_from([4096, 65536]),
    st.integers(1, 40_000),
    st.sampled_from([64, 1000, 16384]),
)
def test_every_message_arrives_whole_in_order_whatever_the_reads(
    msgs: list[tuple[bool, int]], chunks: list[int], read_bytes: int, direct: int, initial: int
) -> None:
    sent = [(payload(i, n), text) for i, (text, n) in enumerate(msgs)]
    stream = HEAD + b"".join(wire(Opcode.TEXT if t else Opcode.BINARY, d) for d, t in sent)
    rec = Recorder()
    r = reader(rec, read_bytes=read_bytes, direct_bytes=direct, initial_bytes=initial)
    feed_in_reads(r, stream, chunks)
    assert rec.heads == [HEAD]
    assert [(bytes(d), t) for d, t in rec.messages] == sent
    assert all(type(d) is bytearray for d, _ in rec.messages)
    assert len({id(d) for d, _ in rec.messages}) == len(rec.messages)  # each its own buffer
    assert rec.controls == [] and rec.passed == b""
    assert r.buffered == 0


controls = st.sampled_from(["ping", "pong"])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.tuples(st.just("msg"), sizes), st.tuples(controls, st.integers(0, 125)))),
    reads,
    st.integers(0, 3),
)
def test_control_frames_go_whole_to_the_protocol_and_a_close_hands_over_the_rest(
    items: list[tuple[str, int]], chunks: list[int], tail: int
) -> None:
    frames: list[bytes] = []
    expected_messages: list[bytes] = []
    expected_controls: list[bytes] = []
    for i, (kind, n) in enumerate(items):
        data = payload(i, n)
        if kind == "msg":
            frames.append(wire(Opcode.BINARY, data))
            expected_messages.append(data)
        else:
            frames.append(wire(Opcode.PING if kind == "ping" else Opcode.PONG, data))
            expected_controls.append(frames[-1])
    close = wire(Opcode.CLOSE, Close(1000, "bye").serialize())
    after = b"".join(wire(Opcode.BINARY, payload(99, 300)) for _ in range(tail))
    rec = Recorder()
    feed_in_reads(reader(rec), HEAD + b"".join(frames) + close + after, chunks)
    assert [bytes(d) for d, _ in rec.messages] == expected_messages
    assert rec.controls == [*expected_controls, close]
    assert rec.passed == after  # after the close, websockets decides (it discards)


irregular = st.sampled_from(["fragment", "rsv1", "masked", "opcode", "too_big", "long_ping"])


def irregular_frame(kind: str, max_size: int) -> bytes:
    if kind == "fragment":
        return wire(Opcode.TEXT, b"half", fin=False) + wire(Opcode.CONT, b" two")
    if kind == "rsv1":  # compressed, never negotiated (websockets refuses to write it)
        return bytes([0xC2, 10]) + b"x" * 10
    if kind == "masked":  # a server must not mask
        return Frame(Opcode.BINARY, b"x" * 10).serialize(mask=True)
    if kind == "opcode":
        return bytes([0x83, 2]) + b"zz"
    if kind == "too_big":
        return wire(Opcode.BINARY, b"x" * (max_size + 1))
    return bytes([0x89, 126, 0, 200]) + b"p" * 200  # a control frame over 125 bytes


@settings(max_examples=100, deadline=None)
@given(st.lists(sizes, max_size=5), irregular, reads)
def test_from_the_first_irregular_frame_every_byte_goes_to_websockets(
    before: list[int], kind: str, chunks: list[int]
) -> None:
    max_size = 1000
    good = [payload(i, min(n, max_size)) for i, n in enumerate(before)]
    odd = irregular_frame(kind, max_size)
    rest = odd + wire(Opcode.BINARY, b"after") + wire(Opcode.PING, b"")
    rec = Recorder()
    r = reader(rec, max_size=max_size)
    feed_in_reads(r, HEAD + b"".join(wire(Opcode.BINARY, d) for d in good) + rest, chunks)
    assert [bytes(d) for d, _ in rec.messages] == good
    assert rec.passed == rest and rec.controls == []


@given(st.integers(1, len(HEAD) + 20))
def test_the_response_head_is_handed_over_alone_and_a_refusal_passes_the_rest(cut: int) -> None:
    body = b"<refused>" + wire(Opcode.BINARY, b"not a frame here")
    rec = Recorder(accept_head=False)
    r = reader(rec)
    stream = HEAD.replace(b"101 Switching Protocols", b"401 Unauthorized") + body
    feed_in_reads(r, stream, [cut])
    assert rec.heads == [stream[: len(stream) - len(body)]]
    assert rec.passed == body and rec.messages == []


def test_a_head_without_an_end_is_passed_on_once_it_is_too_long() -> None:
    rec = Recorder()
    r = reader(rec)
    r.feed(b"HTTP/1.1 101 OK\r\n" + b"X: y\r\n" * 12_000)
    assert rec.heads == [] and len(rec.passed) == 17 + 6 * 12_000


def test_a_large_payload_is_read_straight_into_the_buffer_it_is_delivered_in() -> None:
    rec = Recorder()
    r = reader(rec, read_bytes=65536, direct_bytes=16384)
    data = payload(7, 200_000)
    frame = wire(Opcode.BINARY, data)
    r.feed(HEAD + frame[:1000])
    target = r.get_buffer()  # the rest of the payload's own buffer, not the read buffer
    assert len(target) == len(data) - (1000 - 10)
    target[:] = frame[1000:]
    r.filled(len(target))
    [(got, text)] = rec.messages
    assert got == data and not text
    assert target.obj is got  # the kernel wrote into the delivered buffer: no copy


def test_nothing_is_parsed_once_halted() -> None:
    rec = Recorder()
    r = reader(rec)

    def halt_after_first(data: bytearray, text: bool) -> None:
        rec.messages.append((data, text))
        r.halted = True

    r.on_message = halt_after_first
    r.feed(HEAD + wire(Opcode.BINARY, b"one") + wire(Opcode.BINARY, b"two"))
    assert [bytes(d) for d, _ in rec.messages] == [b"one"]


def test_the_read_buffer_keeps_its_size_and_a_partial_frame_moves_to_its_front() -> None:
    rec = Recorder()
    r = reader(rec, read_bytes=4096, direct_bytes=1024)
    small = wire(Opcode.BINARY, b"s" * 500)
    stream = HEAD + small * 40
    feed_in_reads(r, stream, [777])
    assert len(rec.messages) == 40 and all(bytes(d) == b"s" * 500 for d, _ in rec.messages)
    assert len(r.get_buffer()) == 4096  # drained: the whole buffer is offered again


def test_the_buffer_starts_small_and_grows_while_reads_fill_it() -> None:
    rec = Recorder()
    r = reader(rec, read_bytes=65536, initial_bytes=1024, direct_bytes=32768)
    assert len(r.get_buffer()) == 1024  # an open handshake needs no more
    r.feed(HEAD)
    frame = wire(Opcode.BINARY, b"g" * 3000)
    sizes = []
    for _ in range(8):  # a fast stream: every read fills what it is offered
        r.feed(frame * 30)
        sizes.append(len(r._buf))
    assert sizes[-1] == 65536 and sizes == sorted(sizes)
    assert len(rec.messages) == 8 * 30


def test_a_partial_frame_larger_than_the_buffer_makes_room_for_itself() -> None:
    rec = Recorder()
    r = reader(rec, read_bytes=65536, initial_bytes=1024, direct_bytes=32768)
    r.feed(HEAD)
    data = payload(3, 20_000)  # below direct_bytes: it is completed in the read buffer
    frame = wire(Opcode.BINARY, data)
    feed_in_reads(r, frame, [700])  # reads that never fill the buffer
    assert [bytes(d) for d, _ in rec.messages] == [data]
    assert len(r._buf) >= len(frame)
