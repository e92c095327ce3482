"""Reading a server's WebSocket frames: the common case fast, the rest to websockets.

Pure (no I/O): the connection hands it reads through :meth:`FrameReader.get_buffer`
and :meth:`FrameReader.filled` (asyncio's ``BufferedProtocol`` shape).

websockets' parser is a generator that copies each frame out of a stream
buffer; on a stream of small media frames it costs as much as everything
else the client does.  Nearly every frame a TTA service sends is one whole,
unmasked, uncompressed text or binary frame, so this reader splits those out
of a reusable read buffer itself (RFC 6455 §5.2) and leaves everything else
to websockets' sans-I/O protocol, which keeps the protocol's semantics
(close handshake, pongs, every error and its close code) in one place:

* the HTTP response head, up to its blank line, goes to ``handler.head``;
* a whole control frame (ping, pong, close) goes to ``handler.control``, raw;
* from the first frame it does not handle (fragmented, reserved bits or
  opcodes, masked, over ``max_size``), every byte goes to
  ``handler.passthrough``, for good.

websockets' parser therefore only ever sees whole frames from a frame
boundary, as if it had read every frame itself: it keeps no state about the
data frames it was spared (they carry no fragmentation state).

Each message handed to ``on_message`` is a fresh ``bytearray`` of its own
(the router views media payloads without copying them).  A payload of at
least ``direct_bytes`` that is not in the buffer yet is read straight into
its own buffer, so large frames (keyframes) are not copied at all; smaller
ones are copied once out of the read buffer, which costs less than the extra
``recv`` a direct read needs (measured with ``benchmarks/tta_receive.py``:
5.4-6.0 against 6.4-6.6 µs per frame on 40 KB frames).  Memory: the read
buffer (16 KiB, growing to ``read_bytes``, 256 KiB, while reads fill it)
plus the one frame being received.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

__all__ = ["FrameHandler", "FrameReader"]

_TEXT_FIN: Final = 0x81
_DATA_FIN: Final = frozenset((0x81, 0x82))  # text, binary; FIN set, no RSV
_CONTROL_FIN: Final = frozenset((0x88, 0x89, 0x8A))  # close, ping, pong; FIN set, no RSV
_HEAD_END: Final = b"\r\n\r\n"
_MAX_HEAD: Final = 65536  # longer than websockets accepts: it rejects the response itself


class FrameHandler(Protocol):
    """What the connection does with what the reader does not handle itself."""

    def head(self, data: bytes) -> bool:
        """The handshake response's head; True when frames follow (101 accepted)."""

    def control(self, frame: bytes) -> bool:
        """One whole control frame, header included; True to keep reading frames."""

    def passthrough(self, data: bytes) -> None:
        """Bytes from the first frame the reader does not handle onwards."""


_Message = Callable[[bytearray, bool], None]


class FrameReader:
    """Splits a server's byte stream into whole messages (see the module docstring)."""

    __slots__ = (
        "_big",
        "_big_have",
        "_big_text",
        "_big_view",
        "_buf",
        "_cap",
        "_direct",
        "_end",
        "_filled_all",
        "_handler",
        "_head",
        "_max_size",
        "_need",
        "_offered",
        "_passing",
        "_start",
        "_view",
        "halted",
        "on_message",
    )

    def __init__(
        self,
        handler: FrameHandler,
        on_message: _Message,
        *,
        max_size: int,
        read_bytes: int = 256 * 1024,
        initial_bytes: int = 16 * 1024,
        direct_bytes: int = 128 * 1024,
    ) -> None:
        self._handler = handler
        self.on_message = on_message  # replaceable: the stream attaches its router later
        self._max_size = max_size
        # The buffer starts small (an idle or quiet stream, an open handshake: a fresh
        # 256 KiB per connection costs its page faults) and grows 4x, up to read_bytes,
        # whenever a read fills it or a partial frame needs the room.
        self._cap = max(read_bytes, 64)
        self._buf = bytearray(min(max(initial_bytes, 64), self._cap))
        self._view = memoryview(self._buf)
        self._offered = 0  # the size of the last read-buffer view handed out
        self._filled_all = False  # the last read filled it: the peer has more
        self._need = 0  # the whole length of the partial frame at _start, when known
        # A partial frame below direct_bytes waits in the buffer: it must fit in it.
        self._direct = min(max(direct_bytes, 1), self._cap // 2)
        self._start = self._end = 0  # unparsed bytes are _buf[_start:_end]
        self._head = True  # the handshake response comes first
        self._passing = False
        self._big: bytearray | None = None  # a payload read straight into its own buffer
        self._big_view: memoryview | None = None
        self._big_have = 0
        self._big_text = False
        self.halted = False  # set by the owner after a fatal error: parse no further

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed on (the partial frame)."""
        return self._end - self._start + self._big_have

    def get_buffer(self) -> memoryview:
        """Where the next read goes (fill it, then call :meth:`filled`)."""
        if self._big_view is not None:
            return self._big_view[self._big_have :]
        start, end = self._start, self._end
        rest, size, cap = end - start, len(self._buf), self._cap
        target = min(cap, size * 4) if self._filled_all else size
        while target < cap and (self._need > target or rest + target // 4 > target):
            target = min(cap, target * 4)
        if target != size:
            grown = bytearray(target)
            grown[:rest] = self._view[start:end]
            self._buf, self._view = grown, memoryview(grown)
            self._start, self._end = 0, rest
            end = rest
        elif size - end < size // 4 or start + self._need > size:
            if rest:  # a partial frame or header, below direct_bytes: cheap to move
                self._view[:rest] = self._view[start:end]
            self._start, self._end = 0, rest
            end = rest
        view = self._view[end:]
        self._offered = len(view)
        return view

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Hand over ``data`` that was read elsewhere (tests, other transports)."""
        view = memoryview(data).cast("B")
        while view and not self.halted:
            target = self.get_buffer()
            n = min(len(target), len(view))
            target[:n] = view[:n]
            view = view[n:]
            self.filled(n)

    def filled(self, nbytes: int) -> None:
        """``nbytes`` were written into the buffer last returned by :meth:`get_buffer`."""
        big = self._big
        if big is not None:
            have = self._big_have + nbytes
            if have < len(big):
                self._big_have = have
                return
            self._big = self._big_view = None
            self._big_have = 0
            self.on_message(big, self._big_text)
            return
        self._end += nbytes
        self._filled_all = nbytes >= self._offered
        if self._passing:
            self._pass_rest(self._start)
        elif self._head:
            self._parse_head()
        else:
            self._parse()

    # -- internals -------------------------------------------------------

    def _pass_rest(self, start: int) -> None:
        data = bytes(self._view[start : self._end])
        self._start = self._end = 0
        self._passing = True
        self._handler.passthrough(data)

    def _parse_head(self) -> None:
        at = self._buf.find(_HEAD_END, 0, self._end)
        if at < 0:
            if self._end >= _MAX_HEAD:
                self._head = False
                self._pass_rest(0)
            return
        self._head = False
        stop = at + len(_HEAD_END)
        if not self._handler.head(bytes(self._view[:stop])):
            self._pass_rest(stop)
            return
        self._start = stop
        self._parse()

    def _parse(self) -> None:
        buf, pos, end = self._buf, self._start, self._end
        message = self.on_message
        limit = self._max_size
        need = 0
        while end - pos >= 2 and not self.halted:
            b0 = buf[pos]
            n = buf[pos + 1]  # the mask bit set makes it >= 128: not a frame we handle
            if n < 126:
                body = pos + 2
            elif n == 126:
                if end - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                body = pos + 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                body = pos + 10
            else:  # masked: websockets fails the connection (a server must not mask)
                self._pass_rest(pos)
                return
            stop = body + n
            if b0 in _DATA_FIN and n <= limit:
                if stop > end:
                    if n >= self._direct:  # read the rest straight into its own buffer
                        have = end - body
                        big = self._big = bytearray(n)
                        big[:have] = self._view[body:end]
                        self._big_view = memoryview(big)
                        self._big_have = have
                        self._big_text = b0 == _TEXT_FIN
                        pos = end = 0
                    else:
                        need = stop - pos
                    break
                data = buf[body:stop]  # a fresh bytearray: the message's own
                pos = stop
                message(data, b0 == _TEXT_FIN)
            elif b0 in _CONTROL_FIN and n <= 125:
                if stop > end:
                    need = stop - pos
                    break
                frame = bytes(self._view[pos:stop])
                pos = stop
                if not self._handler.control(frame):
                    self._pass_rest(pos)
                    return
            else:  # fragmented, reserved bits or opcode, or too big: websockets decides
                self._pass_rest(pos)
                return
        self._need = need
        if pos == end:
            self._start = self._end = 0
        else:
            self._start = pos
