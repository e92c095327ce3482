"""The video an offline-production stream hands back from ``finish()``."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import httpx

from avatarkit._redact import redact_url
from avatarkit.errors import ServiceError
from avatarkit.tta.events import SubtitleItem

__all__ = ["ProducedVideo"]


class ProducedVideo:
    """A produced video: its bytes (``data``) or where it lives (``url``).

    ``subtitles`` holds the ``all_subtitles`` lines when the session asked for
    subtitles.  ``await video.save(path)`` works for both forms; for a URL it
    streams the download to disk and never leaves a partial file behind.
    """

    __slots__ = ("_http", "codec", "data", "subtitles", "url")

    def __init__(
        self,
        *,
        data: bytes | None,
        url: str | None,
        codec: str | None,
        subtitles: tuple[SubtitleItem, ...] = (),
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.data = data
        self.url = url
        self.codec = codec
        self.subtitles = subtitles
        self._http = http

    def __repr__(self) -> str:
        where = f"url={redact_url(self.url)!r}" if self.url else f"<{len(self.data or b'')} bytes>"
        return f"ProducedVideo({where}, codec={self.codec!r}, subtitles={len(self.subtitles)})"

    async def read(self) -> bytes:
        """The video's bytes, downloading them first when only a URL is known."""
        if self.data is not None:
            return self.data
        if self.url is None or self._http is None:
            raise ServiceError("no_video", "the service returned no video")
        response = await self._http.get(self.url)
        if response.status_code != 200:
            raise ServiceError(
                "download_failed", f"GET {redact_url(self.url)}", status=response.status_code
            )
        self.data = response.content
        return self.data

    async def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the video to ``path`` (atomically: a temp file renamed at the end)."""
        target = Path(path)
        partial = target.with_name(f".{target.name}.partial")
        try:
            if self.data is None and self.url is not None and self._http is not None:
                await self._download(partial)
            else:
                await anyio.Path(partial).write_bytes(await self.read())
            await anyio.Path(partial).rename(target)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.Path(partial).unlink(missing_ok=True)
            raise
        return target

    async def _download(self, partial: Path) -> None:
        assert self.url is not None and self._http is not None
        async with self._http.stream("GET", self.url) as response:
            if response.status_code != 200:
                raise ServiceError(
                    "download_failed", f"GET {redact_url(self.url)}", status=response.status_code
                )
            async with await anyio.open_file(partial, "wb") as out:
                async for chunk in response.aiter_bytes(1 << 20):
                    await out.write(chunk)
