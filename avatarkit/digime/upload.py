"""The upload engine shared by digime videos and voice-clone archives (SPEC §1.1).

Parts go out in order, one request in flight.  Each part's body is streamed:
a JSON prefix, the standard base64 of the part read from the source in
3-byte-aligned chunks, a JSON suffix, with an exact ``Content-Length``.
While the page cache holds the file, each chunk is read without blocking
and encoded on the event loop just before it is sent; once a read would
wait for the disk, a read-ahead keeps the next chunk (or the next part's
first chunk) read and encoded on a worker thread while the current one is
on the wire, so the link never waits for the disk.  An upload holds at most
two chunks in memory, whatever the part size.  Retried parts are rebuilt
from the source.

What one chunk costs: a file is read with ``preadv`` into one reused buffer
(no allocation per read), then base64-encoded straight from it in
:data:`PIECE_BYTES` slices, each result being exactly the bytes httpx
writes: h11 passes a lone ``bytes`` through without joining it, so nothing
is copied between the encoder and the transport.  The encoder is
pybase64's SIMD one when the ``[speed]`` extra installed it, else
msgspec's, written into a reused per-thread buffer and copied out once
without its JSON quotes: 0.70 s/GiB here against ``binascii``'s 1.29
(``binascii`` shifts bit by bit and allocates every result afresh).  The
pieces (768 KiB of base64) are large enough to keep httpx's per-write cost
small and small enough to stay below glibc's mmap threshold, so they are
recycled from the heap instead of being page-faulted in afresh.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import anyio.lowlevel
import httpx
import msgspec
from anyio.abc import TaskGroup

from avatarkit._http import http_errors, retrying
from avatarkit._progress import UploadProgress
from avatarkit._redact import protected_logger
from avatarkit._retry import RetryPolicy
from avatarkit.digime._wire import (
    CompleteUpload,
    Envelope,
    InitUpload,
    check_envelope,
    upload_id_from,
)
from avatarkit.digime.journal import Journal, JournalEntry
from avatarkit.digime.plan import Part, plan_parts
from avatarkit.digime.rules import MaterialType
from avatarkit.digime.source import FileSource, Source
from avatarkit.errors import AuthenticationError, ServiceError, ValidationError

__all__ = [
    "CHUNK_BYTES",
    "TOKEN_CREDENTIAL",
    "UploadProgress",
    "UploadResult",
    "UploadTarget",
    "post_json",
]

log = protected_logger(__name__)

#: Raw bytes per read: a multiple of 3 so that base64 chunks concatenate.  Much
#: smaller chunks cost more per GiB in httpx's per-write overhead than they save.
CHUNK_BYTES: Final = 3 * 512 * 1024
#: Raw bytes per base64 piece handed to httpx (a multiple of 3): 768 KiB of base64.
PIECE_BYTES: Final = 3 * 192 * 1024

_encoder: Final = msgspec.json.Encoder()


#: preadv's flag to fail instead of waiting for the disk (Linux 4.14+), or None.
_NOWAIT: Final[int | None] = getattr(os, "RWF_NOWAIT", None)

_scratch = threading.local()  # each encoding thread's reused output buffer


def b64encode_plain(data: memoryview) -> bytes:
    """Standard base64, no newline, by msgspec: the JSON string it writes, unquoted."""
    buffer: bytearray | None = getattr(_scratch, "buffer", None)
    if buffer is None:
        buffer = _scratch.buffer = bytearray()
    _encoder.encode_into(data, buffer)  # grows the buffer once, then reuses it
    with memoryview(buffer) as view:
        return bytes(view[1:-1])


b64encode: Callable[[memoryview], bytes]
try:  # the [speed] extra: SIMD base64, the same bytes (tests/test_uploads.py checks it)
    from pybase64 import b64encode as _simd_b64encode

    b64encode = _simd_b64encode
except ImportError:  # pragma: no cover - depends on the extra
    b64encode = b64encode_plain


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where an upload goes: the fields that identify it to the service."""

    appid: str
    type: MaterialType
    file_suffix: str
    input_resource: str
    conf_name: str | None = None
    role_show_name: str | None = None
    tts_type: str | None = None


class UploadResult(msgspec.Struct, frozen=True, kw_only=True):
    """A completed upload (``/video_complete_upload`` succeeded), as an awaited
    :class:`Upload` returns it."""

    upload_id: str
    """The service's id of the upload (from ``/init_part_upload``)."""
    size: int
    """Bytes uploaded: the file's size, or the size of the tar made of a folder."""
    parts: int
    """How many parts the file was sent in (``part_num`` 1 to ``parts``)."""
    parts_sent: int  # in this run (a resumed upload sends fewer)
    """Parts sent in this run: fewer than ``parts`` when it resumed an interrupted upload."""
    resumed: bool
    """Whether this run continued an interrupted upload from its resume journal."""
    conf_name: str | None
    """The avatar's id the material was uploaded for (``None``: a voice-clone archive sent
    without one)."""
    type: int
    """The material type sent: 1 training, 2 template, 3 review video, 11 audio archive
    (:class:`MaterialType`)."""
    file_suffix: str
    """The ``file_suffix`` sent, lower-case: ``mp4``/``mov``, or ``zip``/``tar``."""


#: What a refused token is called in errors (the session's ``token``).
TOKEN_CREDENTIAL: Final = "token (AVATARKIT_TOKEN)"
#: The emulator's errno for a refused ``Authorization`` (the real service publishes none).
UNAUTHORIZED_ERRNO: Final = 40100


async def post_json(
    http: httpx.AsyncClient,
    url: str,
    token: str,
    body: bytes | AsyncIterator[bytes],
    *,
    what: str,
    content_length: int | None = None,
) -> Envelope:
    """POST a digime request and return its success envelope.

    Raises :class:`AuthenticationError` when the token is refused, another
    :class:`ServiceError` for any other error answer, and whatever
    :func:`avatarkit._http.http_errors` maps transport failures to.
    """
    headers = {"Content-Type": "application/json", "Authorization": token}
    if content_length is not None:
        headers["Content-Length"] = str(content_length)
    with http_errors(what, url, url_field="endpoints.digime"):
        response = await http.post(url, content=body, headers=headers)
        try:
            return check_envelope(response.content, status=response.status_code, what=what)
        except ServiceError as exc:
            if exc.status in (401, 403) or exc.code == UNAUTHORIZED_ERRNO:
                raise AuthenticationError(
                    exc.code,
                    exc.service_message,
                    status=exc.status,
                    request_id=exc.request_id,
                    credential=TOKEN_CREDENTIAL,
                ) from None
            raise


class _ReadAhead:
    """Reads and base64-encodes chunks: from the page cache on the event loop, else
    the next chunk in a worker thread while one is sent.

    A chunk is a list of base64 pieces (``bytes``, at most :data:`PIECE_BYTES`
    raw bytes each), ready to be written as they are.
    """

    def __init__(self, tg: TaskGroup, source: Source) -> None:
        self._tg = tg
        self._source = source
        self._key: tuple[int, int] | None = None
        self._done = anyio.Event()
        self._value: list[bytes] | None = None
        self._error: Exception | None = None
        # One raw buffer, reused for every read; the lock keeps two encodes (a
        # read-ahead and a direct one) from sharing it.
        self._raw = bytearray(CHUNK_BYTES)
        self._lock = threading.Lock()
        # Chunks are read and encoded on the event loop while the page cache
        # holds them (see _encode_cached), on worker threads once it does not.
        self._cached = True

    def _read_into(self, view: memoryview, offset: int) -> None:
        source = self._source
        try:
            if isinstance(source, FileSource):
                # pread straight into the reused buffer: no bytes object per read.
                got = os.preadv(source._fd, [view], offset)
                if got != len(view):
                    raise ValidationError("path", str(source.path), "changed size while uploading")
            else:
                view[:] = source.read(offset, len(view))
        except OSError as exc:  # a local file problem, not a network one
            raise ValidationError(
                "path", str(source.path), f"cannot be read: {exc.strerror}"
            ) from None

    def _pieces(self, view: memoryview) -> list[bytes]:
        # Each piece is one ``bytes``, written by httpx as it is.  The encoder is
        # looked up per chunk: a test swaps in the plain one.
        encode = b64encode
        return [encode(view[i : i + PIECE_BYTES]) for i in range(0, len(view), PIECE_BYTES)]

    def _encode(self, offset: int, length: int) -> list[bytes]:
        with self._lock:
            view = memoryview(self._raw)[:length]
            try:
                self._read_into(view, offset)
                return self._pieces(view)
            finally:
                view.release()

    def _encode_cached(self, offset: int, length: int) -> list[bytes] | None:
        """The chunk encoded here and now if the page cache holds all of it, else None.

        ``RWF_NOWAIT`` makes the read fail rather than wait for the disk, so the
        event loop never blocks on I/O; encoding in place of a worker thread
        saves the hand-off and the cross-core copy (about a tenth of the
        upload's CPU), at about 1 ms of loop time per chunk (0.1 with pybase64).
        """
        source = self._source
        if not self._cached or not isinstance(source, FileSource) or _NOWAIT is None:
            return None
        if not self._lock.acquire(blocking=False):  # pragma: no cover - get() awaits threads first
            return None
        view = memoryview(self._raw)[:length]
        try:
            try:
                got = os.preadv(source._fd, [view], offset, _NOWAIT)
            except OSError:  # EAGAIN: not cached; EOPNOTSUPP: a filesystem without it
                got = -1
            if got != len(view):  # read on a worker thread, with the read-ahead, from now on
                self._cached = False
                return None
            return self._pieces(view)
        finally:
            view.release()
            self._lock.release()

    def prefetch(self, key: tuple[int, int]) -> None:
        if self._key is not None or self._cached:
            return  # one read-ahead at a time bounds memory; a cached chunk needs none
        self._key, self._done, self._value, self._error = key, anyio.Event(), None, None
        self._tg.start_soon(self._run, key, self._done)

    async def _run(self, key: tuple[int, int], done: anyio.Event) -> None:
        try:
            value = await anyio.to_thread.run_sync(self._encode, *key)
            if self._key == key:
                self._value = value
        except Exception as exc:  # delivered to get(); a task error would end the upload's group
            if self._key == key:
                self._error = exc
        finally:
            done.set()

    async def get(self, key: tuple[int, int]) -> list[bytes]:
        pending = self._key
        if pending is not None:
            await self._done.wait()
            value, error = self._value, self._error
            self._key = self._value = self._error = None
            if pending == key:
                if error is not None:
                    raise error
                assert value is not None
                return value
        cached = self._encode_cached(*key)
        if cached is not None:
            await anyio.lowlevel.checkpoint()  # the one await a thread hop would have given
            return cached
        return await anyio.to_thread.run_sync(self._encode, *key)


def _chunks(part: Part) -> list[tuple[int, int]]:
    end = part.offset + part.length
    return [(o, min(CHUNK_BYTES, end - o)) for o in range(part.offset, end, CHUNK_BYTES)]


class Uploader:
    """One upload's run: init (or resume), parts in order, complete."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        token: str,
        target: UploadTarget,
        source: Source,
        part_size: int,
        min_part: int,
        policy: RetryPolicy,
        journal: Journal | None,
        on_progress: Callable[[UploadProgress], None] | None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.target = target
        self.source = source
        self.parts = plan_parts(source.size, part_size, min_part)
        self.part_size = part_size
        self.min_part = min_part
        self.policy = policy
        self.journal = journal
        self.on_progress = on_progress
        self._acked = 0  # bytes of the parts acknowledged
        self._sent = 0  # high-water mark of bytes handed to httpx: a retry never lowers it
        self._part = 0

    async def _post(
        self,
        path: str,
        body: bytes | AsyncIterator[bytes],
        what: str,
        content_length: int | None = None,
    ) -> Envelope:
        return await post_json(
            self.http,
            f"{self.base_url}/{path}",
            self.token,
            body,
            what=what,
            content_length=content_length,
        )

    async def _retried(self, what: str, call: Callable[[], Awaitable[Envelope]]) -> Envelope:
        return await retrying(call, policy=self.policy, what=what)

    async def _init(self) -> str:
        t = self.target
        body = _encoder.encode(
            InitUpload(
                appid=t.appid,
                type=int(t.type),
                input_resource=t.input_resource,
                file_suffix=t.file_suffix,
                conf_name=t.conf_name,
                role_show_name=t.role_show_name,
                tts_type=t.tts_type,
            )
        )
        what = "POST /init_part_upload"
        envelope = await self._retried(what, lambda: self._post("init_part_upload", body, what))
        return upload_id_from(envelope.data)

    def _part_prefix(self, upload_id: str, part: Part) -> bytes:
        t = self.target
        meta: dict[str, Any] = {
            "appid": t.appid,
            "type": int(t.type),
            "upload_id": upload_id,
            "file_suffix": t.file_suffix,
            "part_num": part.number,
        }
        if t.conf_name is not None:
            meta["conf_name"] = t.conf_name
        return _encoder.encode(meta)[:-1] + b',"content":"'

    async def _send_part(self, upload_id: str, part: Part, ahead: _ReadAhead) -> None:
        prefix = self._part_prefix(upload_id, part)
        length = len(prefix) + 4 * math.ceil(part.length / 3) + 2
        chunks = _chunks(part)
        following = self.parts[part.number] if part.number < len(self.parts) else None

        async def body() -> AsyncIterator[bytes]:
            yield prefix
            sent = self._acked  # this attempt's count, from the part's start
            for i, (offset, size) in enumerate(chunks):
                data = await ahead.get((offset, size))
                if i + 1 < len(chunks):
                    ahead.prefetch(chunks[i + 1])
                elif following is not None:  # the next part's first chunk, during our response
                    ahead.prefetch(_chunks(following)[0])
                data.reverse()
                end = offset + size
                while data:  # each piece is dropped once written
                    yield data.pop()
                    # httpx asks for the next piece once it wrote this one: count it
                    sent = min(sent + PIECE_BYTES, end)
                    if sent > self._sent:
                        self._sent = sent
                        self._report()
            yield b'"}'

        what = f"POST /video_part_upload part {part.number}/{len(self.parts)}"
        await self._retried(what, lambda: self._post("video_part_upload", body(), what, length))

    async def _complete(self, upload_id: str) -> None:
        t = self.target
        body = _encoder.encode(
            CompleteUpload(
                appid=t.appid,
                type=int(t.type),
                upload_id=upload_id,
                file_suffix=t.file_suffix,
                conf_name=t.conf_name,
            )
        )
        what = "POST /video_complete_upload"
        await self._retried(what, lambda: self._post("video_complete_upload", body, what))

    def _entry(self, upload_id: str, done: int, fingerprint: str) -> JournalEntry:
        return JournalEntry(
            upload_id=upload_id,
            fingerprint=fingerprint,
            size=self.source.size,
            part_size=self.part_size,
            min_part=self.min_part,
            parts_done=done,
        )

    def _resume_point(self, fingerprint: str) -> JournalEntry | None:
        if self.journal is None:
            return None
        entry = self.journal.load()
        if entry is None:
            return None
        same = (entry.fingerprint, entry.size, entry.part_size, entry.min_part) == (
            fingerprint,
            self.source.size,
            self.part_size,
            self.min_part,
        )
        if not same or not 0 <= entry.parts_done <= len(self.parts):
            log.info(
                "%s changed since its interrupted upload %s: starting a new upload",
                self.source.path,
                entry.upload_id,
            )
            self.journal.remove()
            return None
        return entry

    async def run(self) -> UploadResult:
        fingerprint = await anyio.to_thread.run_sync(self.source.fingerprint)
        entry = self._resume_point(fingerprint)
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            ahead = _ReadAhead(tg, self.source)
            try:
                result = await self._run(ahead, entry, fingerprint)
            except Exception as exc:  # raised as itself, not inside an ExceptionGroup
                error = exc
            finally:
                tg.cancel_scope.cancel()  # an unclaimed read-ahead
        if error is not None:
            raise error
        return result

    async def _run(
        self, ahead: _ReadAhead, entry: JournalEntry | None, fingerprint: str
    ) -> UploadResult:
        if entry is not None:
            upload_id, done = entry.upload_id, entry.parts_done
            log.info(
                "resuming upload %s of %s at part %d/%d",
                upload_id,
                self.source.path,
                done + 1,
                len(self.parts),
            )
            try:
                return await self._parts(ahead, upload_id, done, fingerprint, resumed=True)
            except ServiceError as exc:
                if exc.retryable:
                    raise
                log.warning(
                    "the service refused to resume upload %s (%s): starting a new upload",
                    upload_id,
                    exc.service_message,
                )
                if self.journal is not None:
                    self.journal.remove()
        upload_id = await self._init()
        if self.journal is not None:
            await anyio.to_thread.run_sync(
                self.journal.save, self._entry(upload_id, 0, fingerprint)
            )
        self._acked = self._sent = self._part = 0  # a refused resume starts over
        self._report()
        return await self._parts(ahead, upload_id, 0, fingerprint, resumed=False)

    async def _parts(
        self, ahead: _ReadAhead, upload_id: str, done: int, fingerprint: str, *, resumed: bool
    ) -> UploadResult:
        self._acked = self._sent = sum(p.length for p in self.parts[:done])
        self._part = done
        if resumed:
            self._report()
        sent = 0
        for part in self.parts[done:]:
            await self._send_part(upload_id, part, ahead)
            sent += 1
            self._acked = self._sent = part.offset + part.length
            self._part = part.number
            if self.journal is not None:
                entry = self._entry(upload_id, part.number, fingerprint)
                await anyio.to_thread.run_sync(self.journal.save, entry)
            self._report()
        await self._complete(upload_id)
        if self.journal is not None:
            self.journal.remove()
        t = self.target
        return UploadResult(
            upload_id=upload_id,
            size=self.source.size,
            parts=len(self.parts),
            parts_sent=sent,
            resumed=resumed,
            conf_name=t.conf_name,
            type=int(t.type),
            file_suffix=t.file_suffix,
        )

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(
                UploadProgress(
                    sent_bytes=self._sent,
                    acked_bytes=self._acked,
                    total_bytes=self.source.size,
                    part=self._part,
                    parts=len(self.parts),
                )
            )
