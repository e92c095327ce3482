"""AvatarSession: the one object that owns connections, limits and tasks."""

from __future__ import annotations

import os
import types
from collections.abc import Generator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self, TypedDict, Unpack

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
    from avatarkit.tta._proxy import Proxy
    from avatarkit.tta.client import TtaClient
    from avatarkit.tta.limits import StreamLimits
    from avatarkit.tta.stream import TtaStream
    from avatarkit.voice.client import VoiceClient

__all__ = ["AvatarSession", "Endpoints"]

log = protected_logger(__name__)


class Endpoints(msgspec.Struct, frozen=True, kw_only=True):
    """Base URLs of the services; point them at the emulator to work offline."""

    tta: str = "wss://openspeech.bytedance.com/api/v1/volc_virtual_human/tta"
    """The TTA WebSocket base (doc 001); ``/2d`` or ``/3d`` is added per stream."""
    digime: str = "https://openspeech.bytedance.com/virtual_human/avatar_platform/digime"
    """The digime HTTP base (doc 000 §6): uploads, training, status."""
    sami: str = "https://sami.bytedance.com/api/v1/invoke"
    """The SAMI invoke URL (doc 002): voice conversion."""


ENV_APPID = "AVATARKIT_APPID"
ENV_TOKEN = "AVATARKIT_TOKEN"
ENV_SAMI_APPKEY = "AVATARKIT_SAMI_APPKEY"
ENV_SAMI_TOKEN = "AVATARKIT_SAMI_TOKEN"
_ENV_URLS = {
    "tta": "AVATARKIT_TTA_URL",
    "digime": "AVATARKIT_DIGIME_URL",
    "sami": "AVATARKIT_SAMI_URL",
}


class SessionOptions(TypedDict, total=False):
    """The keyword options of :class:`AvatarSession` besides credentials and endpoints.

    ``from_env(**options)`` and ``Emulator.session(**options)`` take these, so a
    misspelt option fails type checking there too.
    """

    timeout: float | httpx.Timeout
    retry: RetryPolicy | None
    http_client: httpx.AsyncClient | None
    close_timeout: float
    upload_retry: RetryPolicy | None
    max_uploads: int
    journal_dir: str | os.PathLike[str] | None
    stream_limits: StreamLimits | None
    ssl_context: ssl.SSLContext | None
    proxy: str | None
    ws_headers: Mapping[str, str] | None


class _Life:
    """What a session and its :meth:`~AvatarSession.with_options` views share."""

    def __init__(self, http: httpx.AsyncClient | None, timeout: float | httpx.Timeout) -> None:
        self.timeout = timeout  # the session's own; a view with another has its own client
        self.state = "new"  # new → opening → open → closing → closed
        self.host = TaskHost()
        self.tg: TaskGroup | None = None
        self.streams: set[TtaStream] = set()
        self.own_http = http is None
        self.http = http


class AvatarSession:
    """An async session multiplexing TTA streams, uploads and voice conversion.

    ::

        async with AvatarSession(appid="…", token="…") as av:
            async with av.tta.open(role="GuoXiaoyuan", codec="mp4") as stream:
                ...

    Leaving ``async with`` closes every stream still open and waits for every
    task the session started.  Without ``async with`` (a notebook):
    ``av = await AvatarSession(…)`` … ``await av.aclose()``.

    ``timeout`` (seconds, or an ``httpx.Timeout``) bounds each HTTP request;
    ``proxy`` (``http://[user:password@]host:port``) carries HTTP calls and
    tunnels the TTA WebSockets (without it, ``HTTPS_PROXY``/``HTTP_PROXY``/
    ``NO_PROXY`` decide); ``ws_headers`` are extra WebSocket handshake headers.

    Raises:
        ValidationError: an argument breaks its rule (an empty ``appid`` or
            ``token``, ``max_uploads < 1``, a ``timeout`` that is not positive, a
            ``proxy`` that is not a URL…); the error names it, never a secret.

    Attributes:
        appid: The application id (doc 001's ``appid``), sent with every call.
        sami_appkey: SAMI's appkey (voice conversion): ``sami_appkey``, else ``appid``.
        endpoints: The services' base URLs.
        retry: How HTTP calls and WebSocket connects are retried.
        upload_retry: How each upload part is retried (more patient than ``retry``).
        upload_slots: Upload parts in flight at once, across the session (``max_uploads``).
        journal_dir: Where upload resume journals live (None: the platform's state
            directory, or ``AVATARKIT_STATE_DIR``).
    """

    def __init__(
        self,
        appid: str,
        token: str,
        *,
        endpoints: Endpoints | None = None,
        timeout: float | httpx.Timeout = 30.0,
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
        proxy: str | None = None,
        ws_headers: Mapping[str, str] | None = None,
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
        self.retry = _policy("retry", retry) or RetryPolicy()
        self._timeout = check_timeout(timeout)
        self._close_timeout = close_timeout
        self._life = _Life(http_client, self._timeout)
        self._view_http: httpx.AsyncClient | None = None  # a with_options view's own client
        self.upload_retry = _policy("upload_retry", upload_retry) or RetryPolicy(
            attempts=8, base_delay=0.5, max_delay=15.0, total_timeout=900.0
        )
        if max_uploads < 1:
            raise ValidationError("max_uploads", max_uploads, "must be >= 1")
        self.upload_slots = anyio.CapacityLimiter(max_uploads)
        self.journal_dir = Path(journal_dir) if journal_dir is not None else None
        self._stream_limits = _check_limits(stream_limits)
        if ssl_context is not None and not _is_ssl_context(ssl_context):
            raise ValidationError("ssl_context", ssl_context, "must be an ssl.SSLContext")
        self._ssl = ssl_context
        self._proxy = proxy
        ws_proxy: Proxy | None = None
        if proxy is not None:
            from avatarkit.tta._proxy import parse_proxy

            if not isinstance(proxy, str):
                raise ValidationError("proxy", proxy, "must be a URL string")
            ws_proxy = parse_proxy(proxy)
            register_secret(ws_proxy.authorization)
            register_secret(ws_proxy.password)
        self._ws_proxy = ws_proxy
        self._ws_headers = _check_headers(ws_headers)

    # -- the sub-clients, made on first use -------------------------------
    # (cached_property: made once, then a plain attribute; assigning one replaces it)

    @cached_property
    def tta(self) -> TtaClient:
        """TTA streams: ``av.tta.open(role=…)``."""
        from avatarkit.tta._proxy import WsOptions
        from avatarkit.tta.client import TtaClient

        return TtaClient(
            self,
            base_url=self.endpoints.tta,
            appid=self.appid,
            token=self._token,
            retry=self.retry,
            limits=self._stream_limits,
            ws=WsOptions(self._ssl, self._ws_proxy, self._ws_headers),
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
    def from_env(
        cls,
        *,
        endpoints: Endpoints | None = None,
        sami_appkey: str | None = None,
        sami_token: str | None = None,
        **options: Unpack[SessionOptions],
    ) -> AvatarSession:
        """A session from ``AVATARKIT_APPID``/``AVATARKIT_TOKEN`` (and ``AVATARKIT_*_URL``).

        ``AVATARKIT_SAMI_APPKEY``/``AVATARKIT_SAMI_TOKEN``, when set, are the
        voice-conversion credentials (else appid/token are used).  Arguments
        given here win over the environment.  The session is not open yet:
        ``async with`` it, or ``await`` it.

        Raises:
            ValidationError: ``AVATARKIT_APPID`` or ``AVATARKIT_TOKEN`` is not set
                (the error names the variable), or an option breaks its rule.
        """
        values: dict[str, str] = {}
        for name, var in ((ENV_APPID, "appid"), (ENV_TOKEN, "token")):
            value = os.environ.get(name, "")
            if not value:
                raise ValidationError(name, None, "environment variable is not set")
            values[var] = value
        urls = {field: os.environ[var] for field, var in _ENV_URLS.items() if os.environ.get(var)}
        if endpoints is None and urls:
            endpoints = Endpoints(**urls)
        return cls(
            values["appid"],
            values["token"],
            endpoints=endpoints,
            sami_appkey=sami_appkey or os.environ.get(ENV_SAMI_APPKEY) or None,
            sami_token=sami_token or os.environ.get(ENV_SAMI_TOKEN) or None,
            **options,
        )

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        upload_retry: RetryPolicy | None = None,
        stream_limits: StreamLimits | None = None,
    ) -> AvatarSession:
        """This session with other timeouts or retries, for some calls::

            await av.with_options(timeout=120, retry=RetryPolicy(attempts=1)).voice.convert(…)

        The view shares everything else: connections, streams, tasks and the
        lifecycle (closing either closes both).  Options left ``None`` are kept.

        Raises:
            ValidationError: an option breaks its rule (a ``timeout`` that is not
                positive, a ``retry`` that is not a :class:`RetryPolicy`…).
        """
        view = object.__new__(AvatarSession)
        view.__dict__.update(
            (key, value) for key, value in self.__dict__.items() if key not in _MADE_ON_USE
        )
        view._view_http = None
        if timeout is not None:
            view._timeout = check_timeout(timeout)
        if retry is not None:
            view.retry = _policy("retry", retry) or self.retry
        if upload_retry is not None:
            view.upload_retry = _policy("upload_retry", upload_retry) or self.upload_retry
        if stream_limits is not None:
            view._stream_limits = _check_limits(stream_limits)
        return view

    def __repr__(self) -> str:
        return f"AvatarSession(appid={self.appid!r}, token='***', state={self._life.state!r})"

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
        """The session's task group: what starts here is cancelled when the session closes.

        Raises:
            AvatarError: the session is not open.
        """
        life = self._life
        if life.tg is None or life.state != "open":
            raise self._not_open()
        return life.tg

    @property
    def http(self) -> httpx.AsyncClient:
        """The session's HTTP client, made on first use (its TLS setup costs ~40 ms).

        Raises:
            AvatarError: the session is not open.
        """
        life = self._life
        if life.state != "open":
            raise self._not_open()
        if life.http is None:
            import httpx

            life.http = httpx.AsyncClient(
                timeout=life.timeout, verify=self._ssl or True, proxy=self._proxy
            )
        if self._timeout is life.timeout:
            return life.http
        if self._view_http is None:
            # A view with its own timeout: its own client, sending through the
            # session's (one connection pool; closed with the session, not here).
            import httpx

            self._view_http = httpx.AsyncClient(
                transport=_through(life.http), timeout=self._timeout, trust_env=False
            )
        return self._view_http

    def _not_open(self) -> AvatarError:
        return AvatarError(
            f"the session is {self._life.state}, not open: use "
            "`async with AvatarSession(...) as av` or `av = await AvatarSession(...)`"
        )

    def _register(self, stream: TtaStream) -> None:
        if self._life.state != "open":
            raise self._not_open()
        self._life.streams.add(stream)

    def _unregister(self, stream: TtaStream) -> None:
        self._life.streams.discard(stream)

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        """Start the session (what ``async with`` does on entry).

        For notebooks and other code that cannot keep one ``async with`` block:
        ``av = await AvatarSession.from_env()`` opens it, and ``await av.aclose()``,
        from any task (another Jupyter cell), closes it.  Nothing touches the
        network yet: connections are made on first use.

        Raises:
            AvatarError: the session was opened before (a session opens once).

        Cancellation:
            Safe: the session is left closed, with no task running.
        """
        life = self._life
        if life.state != "new":
            raise AvatarError(f"a session can be opened once (it is {life.state})")
        life.state = "opening"
        try:
            life.tg = await life.host.start()
        except BaseException:
            life.state = "closed"
            raise
        life.state = "open"

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

        Idempotent, callable from any task, and bounded by ``close_timeout``:
        streams still open are closed together (each with its own close
        handshake) and, past the bound, abandoned.  Raises nothing of its own.

        Cancellation:
            Shielded: cancelling the caller does not leave half a session behind;
            the close completes (within ``close_timeout``), then the cancellation
            is delivered.
        """
        life = self._life
        if life.state in ("closing", "closed"):
            return
        life.state = "closing"
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._close_timeout):
                async with anyio.create_task_group() as closers:
                    for stream in list(life.streams):
                        closers.start_soon(stream.aclose)
                if life.own_http and life.http is not None:
                    await life.http.aclose()
            # Whatever the session started ends with it.  Our tasks never raise.
            await life.host.stop(cancel=True)
            life.tg = None
        life.state = "closed"


#: Attributes a view makes for itself (cached sub-clients carry the options they were made with).
_MADE_ON_USE: Final = frozenset({"tta", "digime", "voice_clone", "voice", "_view_http"})


def _through(client: httpx.AsyncClient) -> httpx.AsyncBaseTransport:
    """A transport that sends with ``client``: a view's requests use the session's pool."""
    import httpx

    class Through(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await client.send(request, stream=True)

        # aclose() is the base's no-op: the connections are the session's to close.

    return Through()


def check_timeout(value: object) -> float | httpx.Timeout:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value > 0:
            raise ValidationError("timeout", value, "must be > 0 seconds")
        return value
    import httpx  # one is given: the caller has loaded httpx already

    if not isinstance(value, httpx.Timeout):
        raise ValidationError("timeout", value, "must be seconds (a number) or an httpx.Timeout")
    return value


def _policy(field: str, value: object) -> RetryPolicy | None:
    if value is not None and not isinstance(value, RetryPolicy):
        raise ValidationError(field, value, "must be a RetryPolicy")
    return value


def _check_limits(value: object) -> StreamLimits | None:
    if value is None:
        return None
    from avatarkit.tta.limits import StreamLimits

    if not isinstance(value, StreamLimits):
        raise ValidationError("stream_limits", value, "must be a StreamLimits")
    return value


def _check_headers(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ValidationError("ws_headers", value, "must be a mapping of header names to values")
    pairs = tuple(value.items())
    # Values may be credentials (a gateway's key): errors show them as ***.
    for name, text in pairs:
        field = f"ws_headers[{name!r}]"
        if not isinstance(name, str) or not isinstance(text, str):
            raise ValidationError(field, "***", "names and values must be strings")
        if not name or any(c in name + text for c in "\r\n"):
            raise ValidationError(field, "***", "must be a non-empty name and a one-line value")
        if name.lower() in _OWN_HEADERS:
            raise ValidationError(field, "***", "is set by the SDK itself")
    return pairs


#: Handshake headers the SDK writes (the WebSocket's own, and the service's Resource-Id).
_OWN_HEADERS: Final = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "resource-id",
    }
)


def _is_ssl_context(value: object) -> bool:
    import ssl  # only when one is given: ssl costs import time

    return isinstance(value, ssl.SSLContext)
