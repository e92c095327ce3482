"""Running the emulator: in-process (``async with Emulator()``) or as a command."""

from __future__ import annotations

import contextlib
import socket
import types
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any, Literal, Self, Unpack

import anyio
import uvicorn

from avatarkit._host import TaskHost
from avatarkit.emulator.app import create_app
from avatarkit.emulator.options import EmulatorOptions
from avatarkit.emulator.routes import client_env
from avatarkit.emulator.state import EmulatorState, Stats
from avatarkit.errors import AvatarError

if TYPE_CHECKING:
    # The SDK is imported only by the convenience methods that build its clients.
    from avatarkit._session import AvatarSession, Endpoints, SessionOptions
    from avatarkit.metastudio.client import MetaStudio

__all__ = ["Emulator", "bind", "serve", "serve_asgi"]


class _InProcessServer(uvicorn.Server):
    """uvicorn without signal handling: the host program owns its signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _config(
    app: Any,
    *,
    log_level: str = "warning",
    lifespan: Literal["auto", "on", "off"] = "on",
    **kwargs: Any,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_max_size=64 * 1024 * 1024,
        lifespan=lifespan,
        log_config=None,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, *, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve any ASGI app (a callback receiver, a file server…) on a free loopback port,
    in this process, until the block ends; yields its base URL."""
    sock = bind(host, 0)
    server = _InProcessServer(_config(app, lifespan="off"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                shown = f"[{host}]" if ":" in host else host
                yield f"http://{shown}:{sock.getsockname()[1]}"
            finally:
                server.should_exit = True
    finally:
        sock.close()


class Emulator:
    """The emulator on a loopback port, in this process.

    ::

        async with Emulator() as emu:
            async with emu.session() as av:
                ...

    ``port=0`` (default) picks a free port; :attr:`endpoints`, :attr:`appid` and
    :attr:`token` say how to reach it. Options come as an :class:`EmulatorOptions`
    (``options=``) or as its fields (``Emulator(pace="realtime", latency_ms=20)``), not
    both. ``await Emulator()`` starts it too, for notebooks (see :meth:`open`).

    Raises:
        TypeError: both ``options=`` and option fields given, or an unknown option field.
        ValidationError: an option makes no sense (a negative latency, a
            ``failure_rate`` outside 0..1, an empty MetaStudio credential…); the field is
            named.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: EmulatorOptions | None = None,
        **option_fields: Any,
    ) -> None:
        if options is not None and option_fields:
            raise TypeError("pass options= or option fields, not both")
        self.options = options or EmulatorOptions(**option_fields)
        """The options it runs with. The shaping knobs and the training and job timings are
        read at each use, so a test may change them here while it runs."""
        self.host = host
        """The address it listens on (default ``127.0.0.1``; an IPv6 address works too)."""
        self._port = port
        self.app = create_app(self.options)
        """The emulator's ASGI app (Starlette), every service on one port; its shared state
        is at ``app.state.emulator``."""
        self._server: _InProcessServer | None = None
        self._host = TaskHost()
        self._opened = False
        self._sock: socket.socket | None = None

    @property
    def state(self) -> EmulatorState:
        """What the services share: options, counters, uploads, trainings, jobs and
        produced videos (the emulator's internals, for tests that look inside)."""
        state: EmulatorState = self.app.state.emulator
        return state

    @property
    def stats(self) -> Stats:
        """Counters tests and benchmarks read: TTA connections, opens and frames sent,
        digime parts, MetaStudio PUTs, injected failures…"""
        return self.state.stats

    @property
    def port(self) -> int:
        """The bound port (the free one picked for ``port=0``).

        Raises :class:`~avatarkit.errors.AvatarError` when the emulator is not running.
        """
        if self._sock is None:
            raise AvatarError("the emulator is not running")
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def http_url(self) -> str:
        """``http://host:port``, the base of the HTTP services (IPv6 hosts in brackets).

        Raises :class:`~avatarkit.errors.AvatarError` when the emulator is not running.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The client environment (``AVATARKIT_*``, ``METASTUDIO_*``, ``CLOUD_SDK_*``).

        The variables ``AvatarSession.from_env()``, ``MetaStudio.from_env()`` and the CLI
        read, pointing at this emulator with its credentials. Raises
        :class:`~avatarkit.errors.AvatarError` when the emulator is not running.
        """
        return client_env(self.http_url, self.options)

    @property
    def endpoints(self) -> Endpoints:
        """The TTA, digime and SAMI URLs of this emulator, for ``AvatarSession(endpoints=…)``.

        Raises :class:`~avatarkit.errors.AvatarError` when the emulator is not running.
        """
        from avatarkit._session import Endpoints

        env = self.env
        return Endpoints(
            tta=env["AVATARKIT_TTA_URL"],
            digime=env["AVATARKIT_DIGIME_URL"],
            sami=env["AVATARKIT_SAMI_URL"],
        )

    @property
    def appid(self) -> str:
        """The appid it accepts (``options.appid``)."""
        return self.options.appid

    @property
    def token(self) -> str:
        """The token it accepts (``options.token``)."""
        return self.options.token

    def session(self, **options: Unpack[SessionOptions]) -> AvatarSession:
        """An :class:`AvatarSession` pointed at this emulator (not yet open).

        ``options`` are :class:`AvatarSession`'s own (``timeout``, ``retry``,
        ``stream_limits``…); the credentials and endpoints are the emulator's.

        Raises:
            AvatarError: the emulator is not running (its port is not known yet).
            ValidationError: a session option breaks its rule.
            TypeError: an option :class:`AvatarSession` does not take.
        """
        from avatarkit._session import AvatarSession

        return AvatarSession(self.appid, self.token, endpoints=self.endpoints, **options)

    def metastudio(self, *, auth: Literal["aksk", "token"] = "aksk", **kwargs: Any) -> MetaStudio:
        """A :class:`~avatarkit.metastudio.MetaStudio` client pointed at this emulator.

        ``auth="aksk"`` (default) signs with the emulator's AK/SK; ``"token"`` sends its IAM
        token. ``kwargs`` are the client's other options (``timeout``, ``retry``…).

        Raises:
            AvatarError: the emulator is not running (its port is not known yet).
            ValidationError: a client option breaks its rule.
            TypeError: an option the client does not take.
        """
        from avatarkit.metastudio.client import MetaStudio

        opts = self.options
        credentials: dict[str, Any] = (
            {"ak": opts.metastudio_ak, "sk": opts.metastudio_sk}
            if auth == "aksk"
            else {"token": opts.metastudio_token}
        )
        return MetaStudio(
            opts.metastudio_project_id, endpoint=self.http_url, **credentials, **kwargs
        )

    def __repr__(self) -> str:
        where = self.http_url if self._sock is not None else "not running"
        return f"Emulator({where})"

    async def open(self) -> None:
        """Bind the port and start serving (what ``async with`` does on entry).

        In a notebook: ``emu = await Emulator()`` starts it, ``await emu.aclose()``,
        from any later cell, stops it. Returns once the app's startup has run; the socket
        already listens, so clients may connect at once.

        Raises:
            AvatarError: it was started (or closed) before, since an emulator starts once;
                or the server stopped during startup.
            OSError: the address cannot be bound (the port is in use, an unknown host).

        Cancellation:
            The server is stopped and the port released (shielded) before the
            cancellation propagates; the emulator cannot be started again, so create a new
            one.
        """
        if self._opened:
            raise AvatarError("an Emulator can be started once")
        self._opened = True
        sock = bind(self.host, self._port)
        self._sock = sock
        self._server = server = _InProcessServer(_config(self.app))
        # The socket already listens, so clients may connect as soon as the
        # app's startup ran: the kernel queues them until uvicorn accepts.
        ready = self.state.started

        async def run() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                ready.set()  # also wakes the waiter below when serve() fails early

        try:
            group = await self._host.start()
            group.start_soon(run)
            await ready.wait()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise
        if server.should_exit or not self.state.running:
            await self.aclose()
            raise AvatarError("the emulator failed to start")

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
    ) -> None:
        await self.aclose()  # the body's exception (if any) propagates as it is

    async def aclose(self) -> None:
        """Stop serving and release the port; idempotent, callable from any task.

        Waits for uvicorn's graceful shutdown (open connections get at most 2 s). Once
        closed, the emulator cannot be started again.

        Raises:
            ExceptionGroup: the server's task failed while it ran (re-raised here; rare).

        Cancellation:
            The wait is shielded: the server is stopped and the port released before the
            cancellation takes effect; nothing is left running.
        """
        self._opened = True  # closed is final, as for a session
        if self._server is not None:
            self._server.should_exit = True  # uvicorn's own graceful timeout bounds the wait
        try:
            await self._host.stop(cancel=False)
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def bind(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (0: any free port).

    Raises:
        OSError: the address cannot be bound (the port is in use, an unknown host).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; asyncio only sets it itself on sockets
        # created with IPPROTO_TCP, and without it keep-alive requests stall ~40 ms
        # on delayed ACKs.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    options: EmulatorOptions | None = None,
    *,
    log_level: str = "info",
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Run the emulator in the foreground until interrupted (``avatarkit emulator``).

    ``options`` default to :class:`EmulatorOptions`'s defaults. ``on_ready`` gets the
    bound port (useful with ``port=0``), once the socket listens and before serving
    starts. Blocks, running its own event loop (uvicorn's), until SIGINT or SIGTERM; the
    socket is closed on the way out.

    Raises:
        ValidationError: an option makes no sense (checked before the port is bound).
        OSError: the address cannot be bound (the port is in use, an unknown host).
        KeyboardInterrupt: after Ctrl-C: uvicorn shuts down gracefully, then raises the
            signal again for the previous handler (Python's default raises this; a
            SIGTERM likewise ends the process once the server has stopped).
    """
    app = create_app(options)
    sock = bind(host, port)
    try:
        if on_ready is not None:
            on_ready(sock.getsockname()[1])
        server = uvicorn.Server(_config(app, log_level=log_level))
        server.run(sockets=[sock])
    finally:
        sock.close()
