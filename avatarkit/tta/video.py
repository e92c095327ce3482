"""The video an offline-production stream hands back: whole from ``finish()``
(:class:`ProducedVideo`), or as it arrives from ``stream_video()`` (:class:`VideoStream`)."""

from __future__ import annotations

import os
import types
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

import anyio

from avatarkit._redact import redact_url
from avatarkit._retry import RetryPolicy
from avatarkit.errors import ServiceError, TimeoutError, ValidationError
from avatarkit.tta.events import SubtitleItem

if TYPE_CHECKING:
    import httpx

__all__ = ["ProducedVideo", "VideoStream"]


class ProducedVideo:
    """A produced video: its bytes (``data``) or where it lives (``url``).

    ``subtitles`` holds the ``all_subtitles`` lines when the session asked for
    subtitles.  ``await video.save(path)`` works for both forms; for a URL it
    streams the download to disk and never leaves a partial file behind.
    Downloads are retried with ``retry`` (transport failures, 5xx, 429).
    """

    __slots__ = ("_http", "_retry", "codec", "data", "subtitles", "url")

    def __init__(
        self,
        *,
        data: bytes | None,
        url: str | None,
        codec: str | None,
        subtitles: tuple[SubtitleItem, ...] = (),
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.data = data
        """The video's bytes, if the service sent them (or once :meth:`read` fetched them)."""
        self.url = url
        """Where the service put the video (``output_url`` sessions), or None."""
        self.codec = codec
        """The container asked for (``mp4``, ``webm``, ``mov``), or None."""
        self.subtitles = subtitles
        """The ``all_subtitles`` lines, when the session asked for subtitles."""
        self._http = http
        self._retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        where = f"url={redact_url(self.url)!r}" if self.url else f"<{len(self.data or b'')} bytes>"
        return f"ProducedVideo({where}, codec={self.codec!r}, subtitles={len(self.subtitles)})"

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        """Jupyter: an inline player with the video embedded (once its bytes are here)."""
        from avatarkit._display import media_bundle

        # mov from the service is H.264/AAC in ISO BMFF: browsers play it as mp4, not as
        # video/quicktime.
        mime = "video/webm" if self.codec == "webm" else "video/mp4"
        return media_bundle(
            "video", self.data, mime, repr(self), missing="not downloaded yet: `await video.read()`"
        )

    async def read(self) -> bytes:
        """The video's bytes, downloading them first when only a URL is known.

        Raises:
            ServiceError: the session produced no video (an RTC/RTMP session), or
                the download was answered with an error status.
            ConnectionLost: the download failed (after retries).
            TimeoutError: the download timed out (after retries).

        Cancellation:
            Safe: the download is abandoned and nothing is kept; call again.
        """
        from avatarkit import _http  # httpx loads only when a video is downloaded

        if self.data is not None:
            return self.data
        if self.url is None or self._http is None:
            raise ServiceError("no_video", "the service returned no video")
        url, http = self.url, self._http

        async def attempt() -> bytes:
            with _http.http_errors(_WHAT, url):
                response = await http.get(url)
                _check_status(response, url)
                return response.content

        self.data = await _http.retrying(attempt, policy=self._retry, what=_WHAT)
        return self.data

    async def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the video to ``path`` (atomically: a temp file renamed at the end).

        A URL is streamed to disk, not held in memory.

        Returns:
            ``path``, as a :class:`~pathlib.Path`.

        Raises:
            ValidationError: ``path`` cannot be written (no such directory, no
                permission, a full disk: the error names the path and the reason).
            ServiceError: no video was produced, or the download got an error status.
            ConnectionLost: the download failed (after retries).
            TimeoutError: the download timed out (after retries).

        Cancellation:
            Safe: the temp file is removed (shielded); ``path`` is untouched.
        """
        from avatarkit import _http  # httpx loads only when a video is downloaded

        target = Path(path)
        partial = target.with_name(f".{target.name}.partial")
        try:
            if self.data is None and self.url is not None and self._http is not None:
                await _http.retrying(
                    lambda: self._download(partial), policy=self._retry, what=_WHAT
                )
            else:
                data = await self.read()
                try:
                    await anyio.Path(partial).write_bytes(data)
                except OSError as exc:
                    raise _unwritable(partial, exc) from None
            try:
                await anyio.Path(partial).rename(target)
            except OSError as exc:
                raise _unwritable(partial, exc) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.Path(partial).unlink(missing_ok=True)
            raise
        return target

    async def _download(self, partial: Path) -> None:
        """One try: the whole body streamed into ``partial`` (rewritten from the start)."""
        from avatarkit import _http  # httpx loads only when a video is downloaded

        assert self.url is not None and self._http is not None
        with _http.http_errors(_WHAT, self.url):
            async with self._http.stream("GET", self.url) as response:
                _check_status(response, self.url)
                try:
                    out = await anyio.open_file(partial, "wb")
                except OSError as exc:
                    raise _unwritable(partial, exc) from None
                async with out:
                    async for chunk in response.aiter_bytes(1 << 20):
                        try:
                            await out.write(chunk)
                        except OSError as exc:  # the disk's fault, not the network's
                            raise _unwritable(partial, exc) from None


_WHAT = "GET produced video"


def _unwritable(partial: Path, exc: OSError) -> ValidationError:
    target = partial.with_name(partial.name.removeprefix(".").removesuffix(".partial"))
    return ValidationError("path", str(target), f"cannot be written: {exc.strerror}")


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code != 200:
        status = response.status_code
        raise ServiceError(
            "download_failed",
            f"{_WHAT} at {redact_url(url)}",
            status=status,
            retryable=status >= 500 or status == 429,
        )


class MediaSource(Protocol):
    """What a :class:`VideoStream` reads: a session's production, piece by piece."""

    url: str | None
    subtitles: tuple[SubtitleItem, ...]

    async def start(self) -> None: ...

    async def next_piece(self) -> memoryview | None: ...

    async def aclose(self) -> None: ...


class VideoStream:
    """The produced video's bytes as they arrive (from :meth:`TtaStream.stream_video`).

    An async iterator of ``bytes``; use it as ``async with`` (or call :meth:`aclose`)
    so that leaving early closes the session and any download.  The first
    ``__anext__`` sends the close frame.  When the service sent the video itself,
    the chunks are its ``|DAT|03|``/``|DAT|04|`` packets; when it answered with a
    ``video_url``, the TTA session is closed and the chunks are the download's
    (opening it is retried like :meth:`ProducedVideo.read`; once bytes have been
    handed on, a failure ends the iteration with the error).

    Attributes:
        codec: The container asked for (``mp4``, ``webm``, ``mov``).
        url: The ``video_url`` the service answered with, once known (else None).
        subtitles: The ``all_subtitles`` lines, complete once the iteration has ended.
        bytes_received: Bytes handed on so far.

    Iterating raises:
        ServiceError: the service reported a failed production or close, or the
            download got an error status (after retries).
        TimeoutError: a wait passed ``idle_timeout`` plus the speech so far, or the
            whole passed ``timeout``.
        ConnectionLost: the connection (or the download) dropped.
        ProtocolError: an undecodable frame.
        StreamClosed: the stream was closed meanwhile.
    """

    def __init__(
        self,
        source: MediaSource,
        *,
        codec: str,
        http: Callable[[], httpx.AsyncClient],
        retry: RetryPolicy,
        timeout: float | None = None,
        chunk_bytes: int = 1 << 16,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValidationError("timeout", timeout, "must be > 0 seconds (or None)")
        if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
            raise ValidationError("chunk_bytes", chunk_bytes, "must be an integer >= 1")
        self._source = source
        self._http = http
        self._retry = retry
        self._timeout = timeout
        self._chunk_bytes = chunk_bytes
        self._deadline: float | None = None
        self._state = "new"  # new -> sending -> downloading -> done
        self._response: httpx.Response | None = None
        self._body: AsyncIterator[bytes] | None = None
        self.codec = codec
        self.url: str | None = None
        self.subtitles: tuple[SubtitleItem, ...] = ()
        self.bytes_received = 0

    def __repr__(self) -> str:
        where = f", url={redact_url(self.url)!r}" if self.url else ""
        return (
            f"VideoStream(codec={self.codec!r}{where}, state={self._state!r}, "
            f"bytes_received={self.bytes_received})"
        )

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> bytes:
        if self._state == "done":
            raise StopAsyncIteration
        try:
            if self._deadline is None:
                self._deadline = anyio.current_time() + (self._timeout or float("inf"))
            with anyio.move_on_after(self._deadline - anyio.current_time()) as scope:
                chunk = await self._next()
            if scope.cancelled_caught:
                raise TimeoutError(
                    f"stream_video() did not complete within {self._timeout}s (timeout)"
                )
        except BaseException:
            await self.aclose()
            raise
        if chunk is None:
            await self.aclose()
            raise StopAsyncIteration
        self.bytes_received += len(chunk)
        return chunk

    async def _next(self) -> bytes | None:
        source = self._source
        if self._state == "new":
            self._state = "sending"
            await source.start()
        if self._state == "sending":
            while (piece := await source.next_piece()) is not None:
                if piece:
                    return bytes(piece)
            self.subtitles = source.subtitles
            await source.aclose()  # the session is over: its media (or their URL) is in
            if source.url is None:
                return None
            self.url = source.url
            await self._open_download(source.url)
            self._state = "downloading"
        if self._body is None:
            return None
        from avatarkit import _http

        with _http.http_errors(_WHAT, self.url):
            async for chunk in self._body:
                return chunk
        return None

    async def _open_download(self, url: str) -> None:
        from avatarkit import _http  # httpx loads only when a video is downloaded

        http = self._http()

        async def attempt() -> httpx.Response:
            with _http.http_errors(_WHAT, url):
                response = await http.send(http.build_request("GET", url), stream=True)
            try:
                _check_status(response, url)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
                raise
            return response

        self._response = await _http.retrying(attempt, policy=self._retry, what=_WHAT)
        self._body = self._response.aiter_bytes(self._chunk_bytes)

    async def aclose(self) -> None:
        """End the iteration: close the TTA session and any download.  Idempotent.

        Raises nothing of its own.

        Cancellation:
            Shielded: the socket and the download are closed before the
            cancellation is delivered.
        """
        self._state = "done"
        with anyio.CancelScope(shield=True):
            body, self._body = self._body, None
            response, self._response = self._response, None
            closer = getattr(body, "aclose", None)
            if closer is not None:
                await closer()
            if response is not None:
                await response.aclose()
            await self._source.aclose()
