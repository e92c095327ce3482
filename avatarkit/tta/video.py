"""The video an offline-production stream hands back from ``finish()``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from avatarkit._redact import redact_url
from avatarkit._retry import RetryPolicy
from avatarkit.errors import ServiceError, ValidationError
from avatarkit.tta.events import SubtitleItem

if TYPE_CHECKING:
    import httpx

__all__ = ["ProducedVideo"]


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
