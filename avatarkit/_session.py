"""AvatarSession: the one object that owns connections, limits and tasks."""

from __future__ import annotations

import os
import types
from collections.abc import Generator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import anyio
import msgspec

from avatarkit._host import TaskHost
from avatarkit._redact import protected_logger, register_secret
from avatarkit._retry import RetryPolicy
from avatarkit.errors import AvatarError, ValidationError

# Everything else loads on first use (``import avatarkit`` stays cheap): the
# sub-clients are made when ``av.tta``/``av.digime``/``av.voice``/``av.voice_clone``
# is first read, httpx when ``av.http`` first makes a client.
if TYPE_CHECKING:
    import ssl

    import httpx
    from anyio.abc import TaskGroup

    from avatarkit.digime.client import DigimeClient, VoiceCloneClient
    from avatarkit.tta.client import TtaClient
    from avatarkit.tta.limits import StreamLimits
    from avatarkit.tta.stream import TtaStream
    from avatarkit.voice.client import VoiceClient

__all__ = ["AvatarSession", "Endpoints"]

log = protected_logger(__name__)


class Endpoints(msgspec.Struct, frozen=True, kw_only=True):
    """Base URLs of the services; point them at the emulator to work offline."""

    tta: str = "wss://openspeech.bytedance.com/api/v1/volc_virtual_human/tta"
    digime: str = "https://openspeech.bytedance.com/virtual_human/avatar_platform/digime"
    sami: str = "https://sami.bytedance.com/api/v1/invoke"


ENV_APPID = "AVATARKIT_APPID"
ENV_TOKEN = "AVATARKIT_TOKEN"
ENV_SAMI_APPKEY = "AVATARKIT_SAMI_APPKEY"
ENV_SAMI_TOKEN = "AVATARKIT_SAMI_TOKEN"
_ENV_URLS = {
    "tta": "AVATARKIT_TTA_URL",
    "digime": "AVATARKIT_DIGIME_URL",
    "sami": "AVATARKIT_SAMI_URL",
}


class AvatarSession:
    """An async session multiplexing TTA streams, uploads and voice conversion.

    ::

        async with AvatarSession(appid="…", token="…") as av:
            async with av.tta.open(role="GuoXiaoyuan", codec="mp4") as stream:
                ...

    Leaving ``async with`` closes every stream still open and waits for every
    task the session started.
    """

    def __init__(
        self,
        appid: str,
        token: str,
        *,
        endpoints: Endpoints | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        close_timeout: float = 10.0,
        upload_retry: RetryPolicy | None = None,
        max_uploads: int = 4,
        journal_dir: str | os.PathLike[str] | None = None,
        sami_appkey: str | None = None,
        sami_token: str | None = None,
        stream_limits: StreamLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not isinstance(appid, str) or not appid:
            raise ValidationError("appid", appid, "must be a non-empty string")
        if not isinstance(token, str) or not token:
            raise ValidationError("token", "***", "must be a non-empty string")
        register_secret(token)
        self.appid = appid
        self._token = token
        # SAMI (voice conversion) has its own appkey/token; by default the same as appid/token.
        if sami_appkey is not None and (not isinstance(sami_appkey, str) or not sami_appkey):
            raise ValidationError("sami_appkey", sami_appkey, "must be a non-empty string")
        if sami_token is not None and (not isinstance(sami_token, str) or not sami_token):
            raise ValidationError("sami_token", "***", "must be a non-empty string")
        register_secret(sami_token)
        self.sami_appkey = sami_appkey or appid
        self._sami_token = sami_token or token
        self.endpoints = endpoints or Endpoints()
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._close_timeout = close_timeout
        self._own_http = http_client is None
        self._http = http_client
        self._host = TaskHost()
        self._tg: TaskGroup | None = None
        self._streams: set[TtaStream] = set()
        self._state = "new"
        self.upload_retry = upload_retry or RetryPolicy(
            attempts=8, base_delay=0.5, max_delay=15.0, total_timeout=900.0
        )
        if max_uploads < 1:
            raise ValidationError("max_uploads", max_uploads, "must be >= 1")
        self.upload_slots = anyio.CapacityLimiter(max_uploads)
        self.journal_dir = Path(journal_dir) if journal_dir is not None else None
        if stream_limits is not None:
            from avatarkit.tta.limits import StreamLimits

            if not isinstance(stream_limits, StreamLimits):
                raise ValidationError("stream_limits", stream_limits, "must be a StreamLimits")
        self._stream_limits = stream_limits
        if ssl_context is not None and not _is_ssl_context(ssl_context):
            raise ValidationError("ssl_context", ssl_context, "must be an ssl.SSLContext")
        self._ssl = ssl_context

    # -- the sub-clients, made on first use -------------------------------
    # (cached_property: made once, then a plain attribute; assigning one replaces it)

    @cached_property
    def tta(self) -> TtaClient:
        """TTA streams: ``av.tta.open(role=…)``."""
        from avatarkit.tta.client import TtaClient

        return TtaClient(
            self,
            base_url=self.endpoints.tta,
            appid=self.appid,
            token=self._token,
            retry=self.retry,
            limits=self._stream_limits,
            ssl_context=self._ssl,
        )

    @cached_property
    def digime(self) -> DigimeClient:
        """Digime training uploads: ``av.digime.upload(…)``."""
        from avatarkit.digime.client import DigimeClient

        return DigimeClient(self)

    @cached_property
    def voice_clone(self) -> VoiceCloneClient:
        """Voice-clone training."""
        from avatarkit.digime.client import VoiceCloneClient

        return VoiceCloneClient(self)

    @cached_property
    def voice(self) -> VoiceClient:
        """SAMI voice conversion: ``av.voice.convert(…)``."""
        from avatarkit.voice.client import VoiceClient

        return VoiceClient(self)

    @classmethod
    def from_env(cls, **kwargs: object) -> AvatarSession:
        """A session from ``AVATARKIT_APPID``/``AVATARKIT_TOKEN`` (and ``AVATARKIT_*_URL``).

        ``AVATARKIT_SAMI_APPKEY``/``AVATARKIT_SAMI_TOKEN``, when set, are the
        voice-conversion credentials (else appid/token are used).
        """
        values: dict[str, str] = {}
        for name, var in ((ENV_APPID, "appid"), (ENV_TOKEN, "token")):
            value = os.environ.get(name, "")
            if not value:
                raise ValidationError(name, None, "environment variable is not set")
            values[var] = value
        for name, var in ((ENV_SAMI_APPKEY, "sami_appkey"), (ENV_SAMI_TOKEN, "sami_token")):
            if os.environ.get(name) and var not in kwargs:
                kwargs[var] = os.environ[name]
        urls = {field: os.environ[var] for field, var in _ENV_URLS.items() if os.environ.get(var)}
        if urls and "endpoints" not in kwargs:
            kwargs["endpoints"] = Endpoints(**urls)
        return cls(values["appid"], values["token"], **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"AvatarSession(appid={self.appid!r}, token='***', state={self._state!r})"

    # -- what streams and uploads need ----------------------------------

    @property
    def token(self) -> str:
        """The access token (kept out of reprs and logs)."""
        return self._token

    @property
    def sami_token(self) -> str:
        """The SAMI (voice conversion) token (kept out of reprs and logs)."""
        return self._sami_token

    @property
    def task_group(self) -> TaskGroup:
        if self._tg is None or self._state != "open":
            raise self._not_open()
        return self._tg

    @property
    def http(self) -> httpx.AsyncClient:
        """The session's HTTP client, made on first use (its TLS setup costs ~40 ms)."""
        if self._state != "open":
            raise self._not_open()
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=self._timeout, verify=self._ssl or True)
        return self._http

    def _not_open(self) -> AvatarError:
        return AvatarError(
            f"the session is {self._state}, not open: use `async with AvatarSession(...) as av`"
            " or `av = await AvatarSession(...)`"
        )

    def register(self, stream: TtaStream) -> None:
        if self._state != "open":
            raise self._not_open()
        self._streams.add(stream)

    def unregister(self, stream: TtaStream) -> None:
        self._streams.discard(stream)

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        """Start the session (what ``async with`` does on entry).

        For notebooks and other code that cannot keep one ``async with`` block:
        ``av = await AvatarSession.from_env()`` opens it, and ``await av.aclose()``,
        from any task (another Jupyter cell), closes it.
        """
        if self._state != "new":
            raise AvatarError(f"a session can be opened once (it is {self._state})")
        self._state = "opening"
        try:
            self._tg = await self._host.start()
        except BaseException:
            self._state = "closed"
            raise
        self._state = "open"

    def __await__(self) -> Generator[Any, None, Self]:
        return self._open_and_return().__await__()

    async def _open_and_return(self) -> Self:
        await self.open()
        return self

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool | None:
        await self.aclose()  # the body's own exception (if any) propagates as it is
        return None

    async def aclose(self) -> None:
        """Close every stream and client, and end every task the session started.

        Idempotent, callable from any task, bounded by ``close_timeout``, and
        shielded: cancelling the caller does not leave half a session behind.
        """
        if self._state in ("closing", "closed"):
            return
        self._state = "closing"
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._close_timeout):
                async with anyio.create_task_group() as closers:
                    for stream in list(self._streams):
                        closers.start_soon(stream.aclose)
                if self._own_http and self._http is not None:
                    await self._http.aclose()
            # Whatever the session started ends with it.  Our tasks never raise.
            await self._host.stop(cancel=True)
            self._tg = None
        self._state = "closed"


def _is_ssl_context(value: object) -> bool:
    import ssl  # only when one is given: ssl costs import time

    return isinstance(value, ssl.SSLContext)
