"""CallbackReceiver over real loopback HTTP: delivery, every refusal, the secret, close."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import anyio
import anyio.abc
import httpx
import msgspec
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from avatarkit.digime._wire import TrainingCallback, TrainingState
from avatarkit.digime.callbacks import (
    _LATEST_LIMIT,
    BadCallbackBody,
    CallbackReceiver,
    parse_callback_body,
)
from avatarkit.emulator.server import _InProcessServer, bind
from avatarkit.errors import ProtocolError, StreamClosed, ValidationError

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t+/&= value-Zq81"  # needs quoting in a URL
MOUNT = "/avatarkit/callback"
Message = MutableMapping[str, Any]


def payload(conf_name: str = "avatar-1", state: int = 2) -> dict[str, Any]:
    return {
        "conf_name": conf_name,
        "role_pic": "https://cdn.example/role.png",
        "pre_pic": "https://cdn.example/pre.png",
        "state": state,
    }


@dataclass
class Spy:
    """ASGI wrapper around the receiver under test: what it read and when it answered."""

    app: CallbackReceiver = field(default_factory=CallbackReceiver)
    reads: int = 0
    statuses: list[int] = field(default_factory=list)
    answered: anyio.Event = field(default_factory=anyio.Event)

    def reset(self, app: CallbackReceiver) -> None:
        self.app, self.reads, self.statuses, self.answered = app, 0, [], anyio.Event()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        async def counting_receive() -> Message:
            self.reads += 1
            return await receive()

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append(message["status"])
                self.answered.set()
            await send(message)

        await self.app(scope, counting_receive, watching_send)


@dataclass
class Served:
    receiver: CallbackReceiver
    spy: Spy
    client: httpx.AsyncClient
    url: str  # the mount point's URL, without a secret

    async def post(self, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        return await self.client.post(self.url, **kwargs)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-scoped so that one server serves every test here


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[tuple[Spy, str]]:
    """A Starlette app mounting the receiver under test, run by uvicorn on loopback."""
    spy = Spy()
    ready = anyio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ready.set()
        yield

    app = Starlette(routes=[Mount(MOUNT, app=spy)], lifespan=lifespan)
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=1
    )
    server = _InProcessServer(config)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            await ready.wait()
            try:
                yield spy, f"http://127.0.0.1:{sock.getsockname()[1]}{MOUNT}/"
            finally:
                server.should_exit = True
    finally:
        sock.close()


Mounter = Callable[[CallbackReceiver], Served]


@pytest.fixture
async def mount(server: tuple[Spy, str]) -> AsyncIterator[Mounter]:
    """Put a receiver behind the server; a fresh client per test."""
    spy, url = server
    async with httpx.AsyncClient(timeout=5) as client:

        def mount(receiver: CallbackReceiver) -> Served:
            spy.reset(receiver)
            return Served(receiver, spy, client, url)

        yield mount


@pytest.fixture
def served(mount: Mounter) -> Served:
    return mount(CallbackReceiver())


@pytest.fixture
def guarded(mount: Mounter) -> Served:
    return mount(CallbackReceiver(secret=SECRET))


# -- delivery -------------------------------------------------------------------


@pytest.mark.parametrize("state", [TrainingState.SUCCESS, TrainingState.FAILED])
async def test_callback_reaches_iterator_and_waiters(served: Served, state: TrainingState) -> None:
    receiver = served.receiver
    got: list[TrainingCallback] = []

    async def wait(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()  # wait_for registers before its first suspension
        got.append(await receiver.wait_for("avatar-1"))

    async with anyio.create_task_group() as tg:
        await tg.start(wait)
        response = await served.post(payload(state=state))
    assert response.status_code == 200
    assert response.json() == {"errno": 0, "errMsg": "success"}

    expected = TrainingCallback(
        conf_name="avatar-1",
        state=state,
        role_pic="https://cdn.example/role.png",
        pre_pic="https://cdn.example/pre.png",
    )
    assert got == [expected]
    assert await receiver.get() == expected
    assert receiver.latest("avatar-1") == expected
    assert receiver.latest("other") is None
    # After arrival wait_for answers at once, however often it is asked.
    with anyio.fail_after(1):
        assert await receiver.wait_for("avatar-1") == expected


async def test_iteration_keeps_order_and_waiters_see_latest(served: Served) -> None:
    for name, state in [("a", 3), ("b", 2), ("a", 2)]:
        assert (await served.post(payload(name, state))).status_code == 200
    seen = []
    async for callback in served.receiver:
        seen.append((callback.conf_name, int(callback.state)))
        if len(seen) == 3:
            break
    assert seen == [("a", 3), ("b", 2), ("a", 2)]
    assert (await served.receiver.wait_for("a")).state is TrainingState.SUCCESS


async def test_unknown_fields_and_any_path_under_the_mount(served: Served) -> None:
    body = {**payload("x"), "extra": [1, 2]}
    response = await served.client.post(served.url + "deep/path?x=1", json=body)
    assert response.status_code == 200
    assert (await served.receiver.get()).conf_name == "x"


async def test_full_queue_answers_503_but_waiters_still_get_it(mount: Mounter) -> None:
    served = mount(CallbackReceiver(queue_size=1))
    assert (await served.post(payload("first"))).status_code == 200
    response = await served.post(payload("second", 3))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "full" in response.json()["errMsg"]
    with anyio.fail_after(1):
        waited = await served.receiver.wait_for("second")
    assert waited.state is TrainingState.FAILED
    # The sender's retry succeeds once the program has read the queue.
    assert (await served.receiver.get()).conf_name == "first"
    assert (await served.post(payload("second", 3))).status_code == 200
    assert (await served.receiver.get()).conf_name == "second"


# -- refusals ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
async def test_non_post_is_405(served: Served, method: str) -> None:
    response = await served.client.request(method, served.url)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert served.spy.reads == 0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "malformed JSON"),
        (b"{not json", 400, "malformed JSON"),
        (b'{"conf_name": 5, oops', 400, "malformed JSON"),
        (b'{"conf_name": "a", "state": 2', 400, "malformed JSON"),
        (b"[1, 2]", 422, "object"),
        (b'{"state": 2}', 422, "conf_name"),
        (b'{"conf_name": "a"}', 422, "state"),
        (b'{"conf_name": 5, "state": 2}', 422, "conf_name"),
        (b'{"conf_name": "a", "state": "2"}', 422, "state"),
        (b'{"conf_name": "a", "state": 2, "role_pic": 1}', 422, "role_pic"),
        (b'{"conf_name": "", "state": 2}', 422, "conf_name"),
        (b'{"conf_name": "a", "state": 1}', 422, "state must be 2"),
        (b'{"conf_name": "a", "state": 7}', 422, "state"),
    ],
)
async def test_bad_bodies(served: Served, body: bytes, status: int, words: str) -> None:
    response = await served.client.post(
        served.url, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["errno"] == status
    assert words in response.json()["errMsg"]
    assert served.receiver.latest("a") is None
    # Nothing broke: the next good callback is taken.
    assert (await served.post(payload("a"))).status_code == 200


async def test_oversize_by_content_length_is_refused_unread(mount: Mounter) -> None:
    served = mount(CallbackReceiver(max_body=1024))
    response = await served.client.post(served.url, content=b"x" * 1025)
    assert response.status_code == 413
    assert "1024" in response.json()["errMsg"]
    assert served.spy.reads == 0
    # Exactly at the limit is fine (and here a valid callback).
    body = msgspec.json.encode(payload())
    padded = body[:-1] + b" " * (1024 - len(body)) + b"}"
    assert (await served.client.post(served.url, content=padded)).status_code == 200


async def test_oversize_streamed_is_refused_before_the_end(mount: Mounter) -> None:
    served = mount(CallbackReceiver(max_body=1024))

    async def chunks() -> AsyncIterator[bytes]:
        yield b"{" + b" " * 600
        yield b" " * 600
        # The answer must come before the body ends: we hold the rest until it does.
        with anyio.fail_after(5):
            await served.spy.answered.wait()

    response = await served.client.post(served.url, content=chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert served.spy.statuses == [413]
    # The connection was closed, not poisoned: a new request works.
    assert (await served.post(payload())).status_code == 200


async def test_client_disconnect_and_broken_receive_never_raise() -> None:
    receiver = CallbackReceiver()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    async def broken() -> Message:
        raise RuntimeError("transport exploded")

    scope = {"type": "http", "method": "POST", "headers": [], "query_string": b""}
    await receiver(scope, gone, send)
    assert sent == []  # nobody left to answer
    await receiver(scope, broken, send)
    assert sent[0]["status"] == 500

    async def refusing_send(message: Message) -> None:
        raise OSError("peer went away")

    async def body() -> Message:
        return {"type": "http.request", "body": msgspec.json.encode(payload())}

    await receiver(scope, body, refusing_send)  # the callback still counts
    assert receiver.latest("avatar-1") is not None


# -- the secret ---------------------------------------------------------------------


async def test_secret_in_query_or_header(guarded: Served) -> None:
    receiver = guarded.receiver
    url = receiver.callback_url(guarded.url)
    assert SECRET not in url  # quoted
    assert (await guarded.client.post(url, json=payload("q"))).status_code == 200
    by_header = await guarded.post(payload("h"), headers={"X-Avatarkit-Secret": SECRET})
    assert by_header.status_code == 200
    assert [(await receiver.get()).conf_name for _ in range(2)] == ["q", "h"]


@pytest.mark.parametrize(
    "how",
    [
        {},
        {"params": {"secret": "wrong-secret"}},
        {"params": {"secret": ""}},
        {"params": {"secret": SECRET[:-1]}},
        {"headers": {"X-Avatarkit-Secret": "wrong-secret"}},
        {"params": {"Secret": SECRET}},
    ],
)
async def test_missing_or_wrong_secret_is_401(guarded: Served, how: dict[str, Any]) -> None:
    response = await guarded.post(payload(), **how)
    assert response.status_code == 401
    assert guarded.spy.reads == 0  # the body of a stranger is not read
    assert guarded.receiver.latest("avatar-1") is None


async def test_secret_never_leaks(guarded: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = guarded.receiver
    url = receiver.callback_url(guarded.url)
    bodies = [
        await guarded.post(payload(), params={"secret": SECRET[:-1]}),
        await guarded.client.post(url, content=b'{"conf_name": "' + SECRET.encode()),
        await guarded.client.post(url, json={"conf_name": SECRET, "state": 9}),
        await guarded.client.get(url),
        await guarded.client.post(url, json=payload(SECRET)),
    ]
    assert [b.status_code for b in bodies] == [401, 400, 422, 405, 200]
    texts = [b.text for b in bodies] + [caplog.text, repr(receiver)]
    for text in texts:
        assert SECRET not in text
    assert "***" in repr(receiver)
    assert "rejected training callback request: 401" in caplog.text
    assert "rejected training callback request: 422" in caplog.text


async def test_callback_url_keeps_the_existing_query() -> None:
    receiver = CallbackReceiver(secret=SECRET)
    url = receiver.callback_url("https://host.example/cb/?tenant=a%20b&x=1#frag")
    parsed = httpx.URL(url)
    assert parsed.params.get_list("tenant") == ["a b"]
    assert parsed.params["x"] == "1"
    assert parsed.params["secret"] == SECRET
    assert parsed.fragment == "frag"
    # A stale secret is replaced, not doubled.
    again = httpx.URL(receiver.callback_url(url))
    assert again.params.get_list("secret") == [SECRET]
    assert CallbackReceiver().callback_url("http://h/cb?x=1") == "http://h/cb?x=1"


def test_constructor_checks() -> None:
    with pytest.raises(ValidationError) as info:
        CallbackReceiver(secret="short")
    assert "short" not in str(info.value)
    with pytest.raises(ValidationError):
        CallbackReceiver(max_body=0)
    with pytest.raises(ValidationError):
        CallbackReceiver(queue_size=0)


# -- close, lifespan, unmounted -------------------------------------------------------


async def test_close_ends_iterators_and_waiters(served: Served) -> None:
    receiver = served.receiver
    assert (await served.post(payload("queued"))).status_code == 200
    outcomes: list[object] = []

    async def iterate(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        outcomes.extend([cb.conf_name async for cb in receiver])

    async def wait(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        with pytest.raises(StreamClosed):
            await receiver.wait_for("never")
        outcomes.append("waiter ended")

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await tg.start(iterate)
            await tg.start(wait)
            receiver.close()
    # The acknowledged callback is still handed out, then iteration ends.
    assert sorted(map(str, outcomes)) == ["queued", "waiter ended"]
    with pytest.raises(StreamClosed):
        await receiver.get()
    with pytest.raises(StreamClosed):
        await receiver.wait_for("never")
    assert (await receiver.wait_for("queued")).conf_name == "queued"
    assert "closed" in repr(receiver)
    late = await served.post(payload("late"))
    assert late.status_code == 503
    assert receiver.latest("late") is None


async def test_cancelled_waiter_is_forgotten(served: Served) -> None:
    receiver = served.receiver

    async def wait(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        await receiver.wait_for("slow")

    async with anyio.create_task_group() as tg:
        await tg.start(wait)
        assert list(receiver._waiters) == ["slow"]
        tg.cancel_scope.cancel()
    assert receiver._waiters == {}
    assert (await served.post(payload("slow"))).status_code == 200


async def test_latest_is_bounded() -> None:
    receiver = CallbackReceiver(queue_size=1)
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://cb") as client:
        for i in range(_LATEST_LIMIT + 1):
            await client.post("/", json=payload(f"c{i}"))
    assert receiver.latest("c0") is None
    assert receiver.latest("c1") is not None
    assert receiver.latest(f"c{_LATEST_LIMIT}") is not None


async def test_works_unmounted_with_asgi_transport() -> None:
    receiver = CallbackReceiver(secret=SECRET)
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport) as client:
        url = receiver.callback_url("http://callbacks.local/")
        response = await client.post(url, json=payload("solo", 3))
        assert response.status_code == 200
        assert (await client.post("http://callbacks.local/", json=payload())).status_code == 401
    callback = await receiver.get()
    assert (callback.conf_name, callback.state) == ("solo", TrainingState.FAILED)


async def test_lifespan_and_websocket_scopes() -> None:
    receiver = CallbackReceiver()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await receiver({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent.clear()
    await receiver({"type": "websocket"}, receive, send)
    assert sent[0]["type"] == "websocket.close"


# -- the body parser on its own, and bodies msgspec cannot take (issue 8, 4c) ----------

DEEP_BODIES = [
    # Within max_body, yet past msgspec's ~1000-level recursion limit: was a 500.
    b'{"conf_name": "a", "state": 2, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"conf_name": 5, "state": 2, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"[" * 20_000,
]


@pytest.mark.parametrize("body", DEEP_BODIES)
async def test_deeply_nested_body_is_400(served: Served, body: bytes) -> None:
    response = await served.client.post(served.url, content=body)
    assert response.status_code == 400
    assert response.json() == {"errno": 400, "errMsg": "malformed JSON: nested too deeply"}
    assert (await served.post(payload("a"))).status_code == 200


def test_parse_callback_body() -> None:
    body = msgspec.json.encode(payload("p", 3))
    for form in (body, bytearray(body), memoryview(body)):
        callback = parse_callback_body(form)
        assert (callback.conf_name, callback.state) == ("p", TrainingState.FAILED)
    for bad, status in [
        (b"{", 400),
        (b'"\xff"', 400),
        (b'{"conf_name": "a", "state": 1}', 422),
        (b'{"conf_name": "", "state": 2}', 422),
        *((deep, 400) for deep in DEEP_BODIES),
    ]:
        with pytest.raises(BadCallbackBody) as info:
            parse_callback_body(bad)
        assert info.value.status == status
        assert isinstance(info.value, ProtocolError)
    with pytest.raises(ValidationError):
        parse_callback_body("{}")  # type: ignore[arg-type]


async def test_the_log_filter_keeps_the_secret_out_of_uvicorns_access_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = CallbackReceiver(secret=SECRET)
    access = logging.getLogger("uvicorn.access")
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(receiver, lifespan="off", log_config=None, access_log=True)
    server = _InProcessServer(config)
    url = receiver.callback_url(f"http://127.0.0.1:{sock.getsockname()[1]}/cb")
    try:
        async with anyio.create_task_group() as tg, httpx.AsyncClient(timeout=5) as client:
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            assert (await client.post(url, json=payload())).status_code == 200
            access.addFilter(receiver.log_filter)
            try:
                assert (await client.post(url, json=payload())).status_code == 200
            finally:
                access.removeFilter(receiver.log_filter)
                server.should_exit = True
    finally:
        sock.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == 2, lines
    encoded = urlencode({"secret": SECRET})  # as it stands in the URL
    assert encoded in lines[0]  # what the access log holds without the filter
    assert encoded not in lines[1] and SECRET not in lines[1] and "secret=***" in lines[1]


def test_a_callback_base_that_cannot_be_parsed_is_a_validation_error() -> None:
    receiver = CallbackReceiver(secret="a-long-secret")
    with pytest.raises(ValidationError, match="cannot be parsed") as caught:
        receiver.callback_url("http://[::1/cb?token=t0k3n")
    assert caught.value.field == "base" and "t0k3n" not in str(caught.value)
    assert "a-long-secret" not in str(caught.value)
