"""The HTTP boundary (avatarkit._http): every failure comes out as an AvatarError.

Unit tests of the mapping, then every public HTTP coroutine against hostile
loopback peers (tests/hostile.py), retries made visible (log, hook, CLI), and
refused credentials named for every HTTP service.
"""

from __future__ import annotations

import builtins
import errno
import inspect
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest

from avatarkit import (
    AuthenticationError,
    AvatarError,
    AvatarSession,
    ConnectionLost,
    Endpoints,
    ProducedVideo,
    ProtocolError,
    RetryPolicy,
    ServiceError,
    TimeoutError,
    ValidationError,
)
from avatarkit._http import describe, failure_of, http_errors, is_transient, map_http_error
from avatarkit._retry import RetryEvent, on_retry, retry
from avatarkit.emulator import Emulator
from avatarkit.metastudio import MetaStudio
from tests.audio_helpers import sine_wav
from tests.hostile import BEHAVIOURS, GARBAGE, dead_port, hostile_server

pytestmark = pytest.mark.anyio

TOKEN = "SECRET-TOKEN-123"
SK = "SECRET-SK-0123456789"
SIG = "SECRETSIG"
SECRET_URL = f"http://127.0.0.1:9/bucket/part-1?X-Amz-Signature={SIG}&X-Amz-Security-Token={TOKEN}"
SECRETS = (TOKEN, SK, SIG)
FEMALE = "zh_female_qingxin"
# Two tries, hardly any wait: the retry path runs, quickly.
QUICK = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002, total_timeout=10)
STALL_TIMEOUT_S = 0.2  # seconds a stalled peer is waited for
# The clients' own timeout, set through their public API.  Connecting to loopback never
# stalls (every scenario accepts): a generous connect bound keeps a loaded machine (CI's
# two cores) from turning a "reset" into a connect timeout.
STALL_TIMEOUT = httpx.Timeout(STALL_TIMEOUT_S, connect=10.0)


def assert_clean(error: BaseException) -> None:
    """No secret in the message, the repr or the printed traceback (nothing chained)."""
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


@contextmanager
def retries() -> Iterator[list[RetryEvent]]:
    events: list[RetryEvent] = []
    with on_retry(events.append):
        yield events


# -- the mapping, class by class ----------------------------------------------------

REQUEST = httpx.Request("POST", SECRET_URL)
RESPONSE = httpx.Response(503, request=REQUEST)


def _make(cls: type[BaseException]) -> BaseException:
    """An instance of an httpx exception class, its message holding the secret URL."""
    params = inspect.signature(cls.__init__).parameters
    if "response" in params:
        return cls(f"failed: {SECRET_URL}", request=REQUEST, response=RESPONSE)  # type: ignore[call-arg]
    if "request" in params:
        return cls(f"failed: {SECRET_URL}", request=REQUEST)  # type: ignore[call-arg]
    if "message" in params:
        return cls(f"failed: {SECRET_URL}")
    return cls()


HTTPX_EXPECTED: dict[str, type[AvatarError]] = {
    "ConnectError": ConnectionLost,
    "ReadError": ConnectionLost,
    "WriteError": ConnectionLost,
    "CloseError": ConnectionLost,
    "NetworkError": ConnectionLost,
    "RemoteProtocolError": ConnectionLost,
    "LocalProtocolError": ConnectionLost,
    "ProtocolError": ConnectionLost,
    "ProxyError": ConnectionLost,
    "TransportError": ConnectionLost,
    "RequestError": ConnectionLost,
    "HTTPError": ConnectionLost,
    "ConnectTimeout": TimeoutError,
    "ReadTimeout": TimeoutError,
    "WriteTimeout": TimeoutError,
    "PoolTimeout": TimeoutError,
    "TimeoutException": TimeoutError,
    "UnsupportedProtocol": ValidationError,  # the URL is the user's (url_field given)
    "InvalidURL": ValidationError,
    "DecodingError": ProtocolError,
    "TooManyRedirects": ProtocolError,
    "StreamError": ProtocolError,
    "StreamConsumed": ProtocolError,
    "StreamClosed": ProtocolError,
    "ResponseNotRead": ProtocolError,
    "RequestNotRead": ProtocolError,
    "CookieConflict": ProtocolError,
    "HTTPStatusError": ServiceError,
}
TRANSIENT = {
    "ConnectError",
    "ReadError",
    "WriteError",
    "CloseError",
    "NetworkError",
    "RemoteProtocolError",
    "ProtocolError",
    "ProxyError",
    "TransportError",
    "RequestError",
    "HTTPError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "TimeoutException",
    "HTTPStatusError",  # a 503
}


def test_every_httpx_exception_class_is_covered() -> None:
    classes = {
        name
        for name in dir(httpx)
        if isinstance(getattr(httpx, name), type) and issubclass(getattr(httpx, name), Exception)
    }
    assert classes == set(HTTPX_EXPECTED)


@pytest.mark.parametrize("name", sorted(HTTPX_EXPECTED))
def test_httpx_exceptions_map_to_the_error_tree(name: str) -> None:
    what = "POST /init_part_upload"
    with pytest.raises(AvatarError) as info:
        with http_errors(what, SECRET_URL, url_field="endpoints.digime"):
            raise _make(getattr(httpx, name))
    error = info.value
    assert type(error) is HTTPX_EXPECTED[name]
    assert_clean(error)
    assert is_transient(error) is (name in TRANSIENT)
    if isinstance(error, ValidationError):
        assert error.field == "endpoints.digime" and error.rule
        assert "X-Amz-Signature=***" in str(error)
    else:
        assert what in str(error)
    if not isinstance(error, ServiceError):
        assert name in str(error)  # the exception type is named
        assert "/bucket/part-1?X-Amz-Signature=***" in str(error)  # the URL, redacted


@pytest.mark.parametrize("name", ["UnsupportedProtocol", "InvalidURL"])
def test_a_bad_url_from_the_service_is_a_protocol_error(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        with http_errors("GET produced video", SECRET_URL):  # no url_field: the service's URL
            raise _make(getattr(httpx, name))
    assert_clean(info.value)
    assert "GET produced video" in str(info.value)


@pytest.mark.parametrize(
    ("raised", "expected", "transient"),
    [
        (RecursionError("maximum recursion depth exceeded"), ProtocolError, False),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), ProtocolError, False),
        (msgspec.DecodeError(f"bad JSON near {SECRET_URL}"), ProtocolError, False),
        (UnicodeEncodeError("ascii", "中", 0, 1, "ordinal not in range"), ValidationError, False),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), ConnectionLost, True),
        (OSError(errno.EIO, f"I/O error on {SECRET_URL}"), ConnectionLost, True),
        (builtins.TimeoutError("timed out"), TimeoutError, True),
    ],
)
def test_builtin_errors_inside_an_exchange(
    raised: BaseException, expected: type[AvatarError], transient: bool
) -> None:
    with pytest.raises(AvatarError) as info:
        with http_errors("POST /digime_training_info", SECRET_URL):
            raise raised
    assert type(info.value) is expected
    assert_clean(info.value)
    assert is_transient(info.value) is transient


def test_avatar_errors_and_foreign_errors_pass_unchanged() -> None:
    mine = ServiceError(40001, "bad conf_name", status=400)
    with pytest.raises(ServiceError) as info:
        with http_errors("POST /init_part_upload"):
            raise mine
    assert info.value is mine
    with pytest.raises(KeyError):  # a bug of ours stays a bug, not a ConnectionLost
        with http_errors("POST /init_part_upload"):
            raise KeyError("x")
    assert map_http_error(KeyError("x"), what="x") is None


def test_reasons_and_outcomes() -> None:
    refused = httpx.ConnectError("All connection attempts failed", request=REQUEST)
    refused.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")
    error = map_http_error(refused, what="POST /init_part_upload")
    assert isinstance(error, ConnectionLost)
    assert describe(error) == "connection refused" and "[Errno 111]" in str(error)
    failure = failure_of(error)
    assert failure is not None and not failure.outcome_unknown  # it never left
    lost = map_http_error(httpx.ReadError("", request=REQUEST), what="PUT part 1")
    assert lost is not None and failure_of(lost).outcome_unknown  # type: ignore[union-attr]
    assert describe(ServiceError(50300, "busy", status=503, retryable=True)) == (
        "HTTP 503 [50300] busy"
    )
    assert is_transient(ServiceError(50300, "busy", status=503, retryable=True))
    assert not is_transient(AuthenticationError(40100, "no", status=401))
    assert not is_transient(ValidationError("x", 1, "rule"))
    assert not is_transient(ProtocolError("garbage"))
    assert is_transient(httpx.ReadTimeout("", request=REQUEST))  # unmapped: same rule
    assert not is_transient(httpx.UnsupportedProtocol("", request=REQUEST))


# -- every public HTTP coroutine against hostile peers -------------------------------


@dataclass
class Clients:
    av: AvatarSession
    ms: MetaStudio
    files: Path
    base: str
    http: httpx.AsyncClient

    def video(self) -> ProducedVideo:
        return ProducedVideo(
            data=None,
            url=f"{self.base}/videos/out.mp4?X-Amz-Signature={SIG}",
            codec="mp4",
            http=self.http,
            retry=QUICK,
        )


async def _iterate_upload(c: Clients) -> None:
    upload = c.av.digime.upload(
        c.files / "talk.mp4",
        conf_name="Liu-Xuan",
        role_show_name="刘璇",
        input_resource="acme",
        check_resolution=False,
        resume=False,
    )
    async for _ in upload:
        pass


CALLS: dict[str, Callable[[Clients], Awaitable[Any]]] = {
    "digime.upload": lambda c: c.av.digime.upload(
        c.files / "talk.mp4",
        conf_name="Liu-Xuan",
        role_show_name="刘璇",
        input_resource="acme",
        check_resolution=False,
        resume=False,
    ),
    "digime.upload (iterated)": _iterate_upload,
    "voice_clone.upload": lambda c: c.av.voice_clone.upload(
        c.files / "voice.zip", tts_type="tts_model_v2", input_resource="acme", resume=False
    ),
    "digime.start_training": lambda c: c.av.digime.start_training(
        "Liu-Xuan", callback_url="http://127.0.0.1:9/callback"
    ),
    "digime.status": lambda c: c.av.digime.status("Liu-Xuan"),
    "digime.wait": lambda c: c.av.digime.wait("Liu-Xuan", poll_interval=0.001),
    "digime.run_training": lambda c: c.av.digime.run_training(
        c.files / "talk.mp4",
        conf_name="Liu-Xuan",
        role_show_name="刘璇",
        input_resource="acme",
        callback_url="http://127.0.0.1:9/callback",
        check_resolution=False,
    ),
    "voice.convert": lambda c: c.av.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE),
    "voice.convert (query auth)": lambda c: c.av.voice.convert(
        sine_wav(seconds=0.2), speaker=FEMALE, auth="query"
    ),
    "metastudio.create_training_job": lambda c: c.ms.create_training_job("角色"),
    "metastudio.command": lambda c: c.ms.command("job-1", "GET_MULTIPART_UPLOADED"),
    "metastudio.uploaded_parts": lambda c: c.ms.uploaded_parts("job-1"),
    "metastudio.confirm_uploaded": lambda c: c.ms.confirm_uploaded("job-1"),
    "metastudio.start_training": lambda c: c.ms.start_training("job-1"),
    "metastudio.status": lambda c: c.ms.status("job-1"),
    "metastudio.list_jobs": lambda c: c.ms.list_jobs(state=["JOB_SUCCESS"]),
    "metastudio.delete_job": lambda c: c.ms.delete_job("job-1"),
    "metastudio.wait": lambda c: c.ms.wait("job-1", poll_interval=0.001),
    "metastudio.upload": lambda c: c.ms.upload(
        "job-1", c.files / "talk.mp4", urls=[f"{c.base}/put/1?X-Amz-Signature={SIG}"]
    ),
    "metastudio.upload_file": lambda c: c.ms.upload_file(
        f"{c.base}/put/cover?X-Amz-Signature={SIG}", c.files / "cover.jpg"
    ),
    "metastudio.run_training": lambda c: c.ms.run_training(
        "角色", video=c.files / "talk.mp4", check_video=False, poll_interval=0.001
    ),
    "ProducedVideo.save": lambda c: c.video().save(c.files / "out.mp4"),
    "ProducedVideo.read": lambda c: c.video().read(),
}


def test_every_public_http_call_is_in_the_table() -> None:
    """A new public call on an HTTP client joins CALLS, or this fails."""
    from avatarkit.digime import DigimeClient, VoiceCloneClient
    from avatarkit.voice import VoiceClient

    clients = {
        "digime": DigimeClient,
        "voice_clone": VoiceCloneClient,
        "voice": VoiceClient,
        "metastudio": MetaStudio,
    }
    missing = []
    for prefix, cls in clients.items():
        for name, member in vars(cls).items() | vars(cls.__mro__[1]).items():
            if name.startswith("_") or not callable(member):
                continue
            returns = str(inspect.signature(member).return_annotation)
            public_call = inspect.iscoroutinefunction(member) or "Upload" in returns
            if public_call and f"{prefix}.{name}" not in CALLS and name not in ("open", "aclose"):
                missing.append(f"{prefix}.{name}")
    assert not missing, missing


# Calls that never decode a body: a 200 with garbage is simply a success for them.
NO_BODY = {"metastudio.delete_job", "metastudio.upload_file", "ProducedVideo.save"}
NO_BODY |= {"ProducedVideo.read"}
EXPECTED: dict[str, type[AvatarError]] = {
    "dead": ConnectionLost,
    "reset": ConnectionLost,
    "stall": TimeoutError,
    **dict.fromkeys(GARBAGE, ProtocolError),
}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "talk.mp4").write_bytes(os.urandom(20_000))
    (tmp_path / "voice.zip").write_bytes(os.urandom(5_000))
    (tmp_path / "cover.jpg").write_bytes(os.urandom(2_000))
    return tmp_path


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
async def test_only_avatar_errors_come_out(behaviour: str, call: str, files: Path) -> None:
    async with hostile_server(behaviour) as base:
        endpoints = Endpoints(
            tta=f"ws://{base[7:]}/tta", digime=f"{base}/digime", sami=f"{base}/api/v1/invoke"
        )
        session = AvatarSession(
            "app",
            TOKEN,
            endpoints=endpoints,
            retry=QUICK,
            upload_retry=QUICK,
            timeout=STALL_TIMEOUT,
            journal_dir=files / "journal",
        )
        metastudio = MetaStudio(
            "project",
            endpoint=base,
            ak="AK0123456789",
            sk=SK,
            retry=QUICK,
            upload_retry=QUICK,
            timeout=STALL_TIMEOUT,
        )
        async with (
            session as av,
            metastudio as ms,
            httpx.AsyncClient(timeout=STALL_TIMEOUT) as http,
        ):
            clients = Clients(av=av, ms=ms, files=files, base=base, http=http)
            try:
                await CALLS[call](clients)
            except AvatarError as exc:
                error: AvatarError | None = exc
            else:
                error = None
    if behaviour in GARBAGE and call in NO_BODY:
        assert error is None
        return
    assert type(error) is EXPECTED[behaviour], repr(error)
    assert_clean(error)


@pytest.mark.parametrize("behaviour", ["dead", "reset", "stall"])
async def test_presigned_puts_against_hostile_peers(behaviour: str, files: Path) -> None:
    """The API answers (the emulator); only the presigned part URL is hostile."""
    async with Emulator() as emu, hostile_server(behaviour) as base:
        async with emu.metastudio(retry=QUICK, upload_retry=QUICK, timeout=STALL_TIMEOUT) as ms:
            job = await ms.create_training_job("角色", video_multipart_count=1)
            with retries() as events, pytest.raises(AvatarError) as info:
                await ms.upload(
                    job.job_id, files / "talk.mp4", urls=[f"{base}/put/1?X-Amz-Signature={SIG}"]
                )
    assert type(info.value) is EXPECTED[behaviour]
    assert_clean(info.value)
    assert f"PUT part 1 of job {job.job_id}" in str(info.value)
    assert [e.what for e in events] == [f"PUT part 1 of job {job.job_id}"]  # retried once


async def test_a_single_file_put_is_not_resent_when_it_may_have_arrived(files: Path) -> None:
    async with hostile_server("stall") as base:
        async with MetaStudio(
            "project", endpoint=base, token=TOKEN, upload_retry=QUICK, timeout=STALL_TIMEOUT
        ) as ms:
            with retries() as events, pytest.raises(TimeoutError):
                await ms.upload_file(f"{base}/put/cover?X-Amz-Signature={SIG}", files / "cover.jpg")
            assert events == []  # a single-use URL that may have been used is not reused
            with retries() as events, pytest.raises(ConnectionLost):
                await ms.upload_file(
                    f"http://127.0.0.1:{dead_port()}/put?X-Amz-Signature={SIG}",
                    files / "cover.jpg",
                )
            assert len(events) == 1  # refused: it never left, so it is tried again


async def test_a_bad_endpoint_is_a_validation_error_naming_the_setting() -> None:
    endpoints = Endpoints(digime="ftp://127.0.0.1/digime", sami="ftp://127.0.0.1/invoke")
    async with AvatarSession("app", TOKEN, endpoints=endpoints, retry=QUICK) as av:
        with pytest.raises(ValidationError) as info:
            await av.digime.status("Liu-Xuan")
        assert info.value.field == "endpoints.digime"
        with pytest.raises(ValidationError) as info:
            await av.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE)
        assert info.value.field == "endpoints.sami"


# -- retries, visible --------------------------------------------------------------


def dead_session(**kwargs: Any) -> AvatarSession:
    base = f"http://127.0.0.1:{dead_port()}"
    return AvatarSession("app", TOKEN, endpoints=Endpoints(digime=f"{base}/digime"), **kwargs)


async def test_retries_are_logged_at_warning_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="avatarkit._retry")
    policy = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002, total_timeout=10)
    async with dead_session(retry=policy) as av:
        with retries() as events, pytest.raises(ConnectionLost) as info:
            await av.digime.status("Liu-Xuan")
    assert_clean(info.value)
    assert [(e.what, e.attempt, e.attempts, e.reason) for e in events] == [
        ("POST /digime_training_info", 1, 3, "connection refused"),
        ("POST /digime_training_info", 2, 3, "connection refused"),
    ]
    assert all(0.0005 <= e.delay <= 0.002 for e in events)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == ["avatarkit._retry"] * 2
    first = warnings[0].getMessage()
    assert "retrying POST /digime_training_info: attempt 1/3 failed: connection refused" in first
    assert "next try in 0.0s" in first
    assert TOKEN not in caplog.text


async def test_an_upload_to_a_dead_port_gives_up_at_total_timeout(files: Path) -> None:
    # Attempts would allow 100000 tries; the time budget must end it first.
    policy = RetryPolicy(attempts=100_000, base_delay=0.01, max_delay=0.01, total_timeout=0.3)
    async with dead_session(upload_retry=policy, journal_dir=files / "journal") as av:
        upload = av.digime.upload(
            files / "talk.mp4",
            conf_name="Liu-Xuan",
            role_show_name="刘璇",
            input_resource="acme",
            check_resolution=False,
        )
        with retries() as events, pytest.raises(ConnectionLost) as info:
            async for _ in upload:  # the upload runs in the session's task group
                pass
    assert "POST /init_part_upload" in str(info.value) and "connection refused" in str(info.value)
    # Every wait is at least base_delay/2, and all of them fit in total_timeout.
    assert 1 <= len(events) <= policy.total_timeout / (policy.base_delay / 2)  # type: ignore[operator]
    assert {e.what for e in events} == {"POST /init_part_upload"}


async def test_retry_never_waits_past_the_deadline() -> None:
    tries = 0

    async def failing() -> None:
        nonlocal tries
        tries += 1
        raise ConnectionLost("down")

    policy = RetryPolicy(attempts=50, base_delay=30, max_delay=30, total_timeout=1)
    with retries() as events, pytest.raises(ConnectionLost):
        await retry(failing, policy=policy, retry_on=is_transient, what="x")
    assert tries == 1 and events == []  # the first wait (15 to 30 s) would overrun 1 s


async def test_a_failing_listener_does_not_break_the_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries = 0

    async def flaky() -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise ConnectionLost("down")
        return "ok"

    def broken(event: RetryEvent) -> None:
        raise RuntimeError("listener bug")

    with on_retry(broken):
        assert await retry(flaky, policy=QUICK, retry_on=is_transient, what="x") == "ok"
    assert "retry listener" in caplog.text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": -1}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"base_delay": -1}, "base_delay"),
        ({"base_delay": float("nan")}, "base_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"max_delay": "1"}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"total_timeout": 0}, "total_timeout"),
        ({"total_timeout": -5}, "total_timeout"),
    ],
)
def test_bad_retry_policies_are_validation_errors(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**fields)
    assert info.value.field == f"RetryPolicy.{field}"
    assert info.value.value == fields[field] or info.value.value != info.value.value  # nan
    assert info.value.rule and "must be" in info.value.rule


# -- the CLI shows each retry ----------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
    env |= {
        "AVATARKIT_APPID": "app",
        "AVATARKIT_TOKEN": TOKEN,
        "AVATARKIT_DIGIME_URL": f"http://127.0.0.1:{dead_port()}/digime",
    }
    return subprocess.run(
        [sys.executable, "-m", "avatarkit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_cli_prints_each_retry_on_stderr() -> None:
    result = cli("status", "Liu-Xuan", "--retry-timeout", "1")
    assert result.returncode == 5 and result.stdout == ""  # 5: the connection class
    lines = result.stderr.splitlines()
    retried = [line for line in lines if line.startswith("avatarkit: retrying ")]
    assert retried and len(retried) == len(lines) - 1  # the retries, then the error
    assert retried[0].startswith(
        "avatarkit: retrying POST /digime_training_info: attempt 1/5 failed: connection refused; "
        "next try in "
    )
    assert lines[-1].startswith("avatarkit: ConnectionLost: POST /digime_training_info")
    assert TOKEN not in result.stderr


def test_cli_retry_lines_are_json_with_json() -> None:
    result = cli("status", "Liu-Xuan", "--retry-timeout", "1", "--json")
    assert result.returncode == 5 and result.stdout == ""
    *events, last = result.stderr.splitlines()
    error = json.loads(last)["error"]  # the error too is one JSON object
    assert (error["type"], error["exit_code"]) == ("ConnectionLost", 5)
    parsed = [json.loads(line) for line in events]
    assert parsed[0]["event"] == "retry" and parsed[0]["attempt"] == 1
    assert {p["what"] for p in parsed} == {"POST /digime_training_info"}
    assert {p["reason"] for p in parsed} == {"connection refused"}
    assert all(p["attempts"] == 5 and p["delay"] > 0 for p in parsed)


def test_cli_retry_timeout_is_checked() -> None:
    result = cli("status", "Liu-Xuan", "--retry-timeout", "0")
    assert result.returncode == 2 and "--retry-timeout=0.0" in result.stderr


# -- refused credentials, named, for every HTTP service ---------------------------------


async def test_digime_refuses_a_bad_token(files: Path) -> None:
    async with Emulator() as emu:
        bad = "SECRET-TOKEN-123-wrong"
        async with AvatarSession(
            emu.appid,
            bad,
            endpoints=emu.endpoints,
            retry=QUICK,
            upload_retry=QUICK,
            journal_dir=files / "journal",
        ) as av:
            with retries() as events:
                for call in (
                    lambda: av.digime.status("Liu-Xuan"),
                    lambda: av.digime.start_training(
                        "Liu-Xuan", callback_url="http://127.0.0.1:9/cb"
                    ),
                    lambda: av.digime.upload(
                        files / "talk.mp4",
                        conf_name="Liu-Xuan",
                        role_show_name="x",
                        input_resource="acme",
                        check_resolution=False,
                    ),
                ):
                    with pytest.raises(AuthenticationError) as info:
                        await call()
                    error = info.value
                    assert error.credential == "token (AVATARKIT_TOKEN)"
                    assert str(error).startswith("token (AVATARKIT_TOKEN) was refused: [40100]")
                    assert error.status == 401 and bad not in str(error)
            assert events == []  # a refused credential is not retried


async def test_sami_names_the_refused_credential() -> None:
    async with Emulator(sami_appkey="sami-appkey", sami_token="sami-token-abcdef") as emu:
        for kwargs, variable in (
            ({}, "AVATARKIT_SAMI_APPKEY"),  # appid is not SAMI's appkey here
            ({"sami_appkey": "sami-appkey", "sami_token": TOKEN}, "AVATARKIT_SAMI_TOKEN"),
        ):
            async with emu.session(retry=QUICK, **kwargs) as av:
                with pytest.raises(AuthenticationError) as info:
                    await av.voice.convert(sine_wav(seconds=0.2), speaker=FEMALE)
            assert info.value.credential and variable in info.value.credential
            assert variable in str(info.value) and TOKEN not in str(info.value)


async def test_metastudio_names_the_refused_credential() -> None:
    async with Emulator() as emu:
        opts = emu.options
        cases: list[tuple[MetaStudio, str]] = [
            (
                MetaStudio(
                    opts.metastudio_project_id, endpoint=emu.http_url, ak=opts.metastudio_ak, sk=SK
                ),
                "CLOUD_SDK_AK / CLOUD_SDK_SK",
            ),
            (
                MetaStudio(opts.metastudio_project_id, endpoint=emu.http_url, token=TOKEN),
                "METASTUDIO_TOKEN",
            ),
            (
                MetaStudio(
                    "another-project",
                    endpoint=emu.http_url,
                    ak=opts.metastudio_ak,
                    sk=opts.metastudio_sk,
                ),
                "METASTUDIO_PROJECT_ID",
            ),
        ]
        for client, variable in cases:
            async with client as ms:
                with pytest.raises(AuthenticationError) as info:
                    await ms.list_jobs()
            assert info.value.credential and variable in info.value.credential
            assert variable in str(info.value)
            assert_clean(info.value)


async def test_a_spent_presigned_url_is_not_an_authentication_error(files: Path) -> None:
    async with Emulator() as emu, emu.metastudio(retry=QUICK, upload_retry=QUICK) as ms:
        job = await ms.create_training_job("角色", video_multipart_count=1)
        url = job.training_video_upload_url[0]
        await ms.upload(job, files / "talk.mp4")
        with pytest.raises(ServiceError) as info:
            await ms.upload_file(url, files / "cover.jpg")  # single-use: spent
    assert info.value.status == 403 and not isinstance(info.value, AuthenticationError)
    query = urlsplit(url).query
    assert "X-Amz-Signature=***" in str(info.value)  # the URL, redacted
    signature = parse_qs(query)["X-Amz-Signature"][0]
    assert signature not in str(info.value) and "already used" in str(info.value)
