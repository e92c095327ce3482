"""``session.voice``: SAMI VoiceConversion (SPEC §3, doc 002)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

import anyio
import msgspec

from avatarkit._redact import protected_logger, redact_url
from avatarkit._schema_errors import JSON_DECODE_ERRORS
from avatarkit.errors import AuthenticationError, ValidationError
from avatarkit.voice._wire import (
    AudioConfig,
    ConvertPayload,
    InvokeRequest,
    QueryInvokeRequest,
    check_response,
    encode,
)
from avatarkit.voice.rules import (
    NAMESPACE,
    VERSION,
    check_audio_config,
    check_duration,
    check_enable_background,
    check_size,
    classify_source,
)
from avatarkit.voice.rules import check_speaker as _check_speaker  # a flag of convert()

# Loaded on first use: httpx (``avatarkit._http``) on the first convert(), the WAV
# probe (``wave``) on the first local source.
if TYPE_CHECKING:
    from avatarkit._session import AvatarSession
    from avatarkit.tta.events import JSON

__all__ = ["ConvertedAudio", "VoiceClient"]

log = protected_logger(__name__)
_HEADERS: Final = {"Content-Type": "application/json"}


class ConvertedAudio:
    """Converted audio: ``data`` in ``format`` at ``sample_rate`` Hz with ``channel`` channels.

    ``payload`` is the response's ``payload`` parsed when it is JSON (else the
    string as sent, ``None`` when absent); ``task_id`` identifies the call
    for the vendor's support.
    """

    __slots__ = ("channel", "data", "format", "payload", "sample_rate", "task_id")

    def __init__(
        self,
        *,
        data: bytes,
        format: str,
        sample_rate: int,
        channel: int,
        task_id: str,
        payload: JSON = None,
    ) -> None:
        self.data = data
        """The converted audio, encoded as ``format`` (decoded from the response's base64)."""
        self.format = format
        """The encoding asked for: ``wav``, ``mp3`` or ``aac`` (doc 002 default ``wav``)."""
        self.sample_rate = sample_rate
        """The sample rate asked for, in Hz (doc 002 default 24000)."""
        self.channel = channel
        """The number of channels asked for: 1 (doc 002 default) or 2."""
        self.task_id = task_id
        """SAMI's id of the call (the response's ``task_id``), for the vendor's support;
        ``""`` when the response has none."""
        self.payload = payload
        """The response's ``payload``: parsed when it is JSON, else the string as sent;
        ``None`` when absent or empty."""

    def __repr__(self) -> str:
        return (
            f"ConvertedAudio(<{len(self.data)} bytes>, format={self.format!r}, "
            f"sample_rate={self.sample_rate}, channel={self.channel}, task_id={self.task_id!r})"
        )

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        """Jupyter: an inline audio player with the audio embedded."""
        from avatarkit._display import media_bundle

        mime = _MIME.get(self.format, f"audio/{self.format}")
        return media_bundle("audio", self.data, mime, repr(self), missing="no audio")

    async def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the audio to ``path`` (atomically: a temp file renamed at the end).

        The bytes go to ``.<name>.partial`` beside ``path``, which is then renamed to
        ``path`` (on POSIX, replacing a file there).

        Returns:
            ``path``, as a :class:`~pathlib.Path`.

        Raises:
            OSError: the file cannot be written or renamed (a missing directory, no
                permission, a full disk); the temp file is removed.

        Cancellation:
            The temp file is removed (shielded), and ``path`` is left either as it was
            or complete, never half written.  A write already under way in its worker
            thread finishes first.
        """
        target = Path(path)
        partial = target.with_name(f".{target.name}.partial")
        try:
            await anyio.Path(partial).write_bytes(self.data)
            await anyio.Path(partial).rename(target)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.Path(partial).unlink(missing_ok=True)
            raise
        return target


_MIME: Final = {"wav": "audio/wav", "mp3": "audio/mpeg", "aac": "audio/aac"}


def _parse_payload(text: str | None) -> JSON:
    if not text:
        return None
    try:
        value: JSON = msgspec.json.decode(text)  # JSON decodes to exactly these types
    except JSON_DECODE_ERRORS:
        return text
    return value


#: SAMI's error codes for a refused appkey (the rest of 401/403 is the token's).
_APPKEY_CODES: Final = frozenset({40100001})


def _naming_credential(exc: AuthenticationError) -> AuthenticationError:
    """``exc`` again, naming which SAMI credential was refused and where it comes from."""
    appkey = exc.code in _APPKEY_CODES or "appkey" in exc.service_message.lower()
    credential = (
        "SAMI appkey (AVATARKIT_SAMI_APPKEY, else AVATARKIT_APPID)"
        if appkey
        else "SAMI token (AVATARKIT_SAMI_TOKEN, else AVATARKIT_TOKEN)"
    )
    return AuthenticationError(
        exc.code,
        exc.service_message,
        status=exc.status,
        request_id=exc.request_id,
        retryable=exc.retryable,
        credential=credential,
    )


def _read_checked(path: Path) -> bytes:
    """The file's bytes after the size and duration rules (runs in a worker thread)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValidationError("source", str(path), "does not exist") from None
    except OSError as exc:
        raise ValidationError("source", str(path), f"cannot be read: {exc.strerror}") from None
    if not path.is_file():
        raise ValidationError("source", str(path), "is not a regular file")
    check_size(info.st_size, str(path))  # before reading: a 5 GB file is refused unread
    from avatarkit.voice.probe import probe_duration

    try:
        check_duration(probe_duration(path=path), str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError("source", str(path), f"cannot be read: {exc.strerror}") from None
    check_size(len(data), str(path))  # it may have changed since the stat
    return data


def _checked_bytes(data: bytes) -> bytes:
    from avatarkit.voice.probe import probe_duration

    check_duration(probe_duration(data=data), f"<{len(data)} bytes>")
    return data


class VoiceClient:
    """Voice conversion through ``session.voice``; one request per conversion."""

    def __init__(self, session: AvatarSession) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"VoiceClient(url={redact_url(self._session.endpoints.sami)!r})"

    async def convert(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        speaker: str,
        format: Literal["wav", "mp3", "aac"] = "wav",
        sample_rate: int = 24000,
        channel: int = 1,
        enable_background: bool = False,
        check_speaker: bool = True,
        auth: Literal["body", "query"] = "body",
        timeout: float | None = None,
    ) -> ConvertedAudio:
        """Convert ``source`` (a path, the audio's bytes, or an http(s) URL) to ``speaker``'s voice.

        Every rule of doc 002 is checked first (:class:`ValidationError`):
        speaker in the documented table (``check_speaker=False`` lets new
        speakers through), output format/sample_rate/channel, input not empty,
        at most 100 MB and — where the duration can be read (WAV, ``.pcm`` as
        16 kHz mono s16le, others with PyAV) — at most 10 minutes.  A URL is
        sent as ``payload.url`` for the service to fetch.  ``auth="query"``
        sends the credentials in the query string (the doc's Go demo) instead
        of the body.  Transport errors, 5xx and 429 are retried with the
        session's retry policy; ``timeout`` overrides the session's for this
        call (long inputs take a while to convert).

        Returns:
            The converted audio, in the ``format``, ``sample_rate`` and ``channel`` asked
            for.

        Raises:
            ValidationError: an argument or the input breaks a doc 002 rule (speaker,
                format, sample_rate, channel, ``enable_background``, ``auth``; a source
                that is empty, missing, unreadable, over 100 MB or over 10 minutes), or
                ``endpoints.sami`` is not a usable URL; nothing is sent.
            AuthenticationError: the appkey or the token was refused (HTTP 401/403);
                ``credential`` names which, and its variable.
            ServiceError: the service refused (its ``status_code`` and ``status_text``,
                e.g. 40000022 ``IllegalPayload:InvalidSpeaker`` for a speaker
                ``check_speaker=False`` let through), or 5xx/429 until the retries ran
                out.
            ProtocolError: the answer is not a SAMI response, lacks ``status_code``, or
                carries no audio.
            ConnectionLost: the service could not be reached (after retries).
            TimeoutError: no answer within ``timeout`` (else the session's), after
                retries.
            AvatarError: the session is not open.

        Cancellation:
            The request is abandoned and nothing is left running (a file being read in
            a worker thread is read to the end first); no file is written.  The
            service may still convert what it received, but that result is lost:
            call again.
        """
        speaker = _check_speaker(speaker, known=check_speaker)
        fmt, rate, channels = check_audio_config(format, sample_rate, channel)
        check_enable_background(enable_background)
        if auth not in ("body", "query"):
            raise ValidationError("auth", auth, "must be 'body' or 'query'")
        kind, value = classify_source(source)
        url: str | msgspec.UnsetType = msgspec.UNSET
        data = b""
        if kind == "url":
            assert isinstance(value, str)
            url = value
        elif kind == "path":
            assert isinstance(value, Path)
            data = await anyio.to_thread.run_sync(_read_checked, value)
        else:
            assert isinstance(value, bytes)
            data = await anyio.to_thread.run_sync(_checked_bytes, value)

        payload = encode(
            ConvertPayload(
                speaker=speaker,
                url=url,
                enable_background=enable_background,
                audio_config=AudioConfig(format=fmt, sample_rate=rate, channel=channels),
            )
        ).decode()
        session = self._session
        endpoint = session.endpoints.sami
        params: dict[str, str] | None = None
        if auth == "body":
            body = encode(
                InvokeRequest(
                    appkey=session.sami_appkey, token=session.sami_token, payload=payload, data=data
                )
            )
        else:
            body = encode(QueryInvokeRequest(payload=payload, data=data))
            params = {
                "appkey": session.sami_appkey,
                "token": session.sami_token,
                "namespace": NAMESPACE,
                "version": VERSION,
            }
        what = f"POST {urlsplit(endpoint).path or '/'} (voice conversion to {speaker})"
        log.debug(
            "%s: POST %s (%d bytes of audio%s, auth in %s) -> %s %d Hz x%d",
            what,
            redact_url(endpoint),
            len(data),
            f", url {redact_url(url)}" if isinstance(url, str) else "",
            auth,
            fmt,
            rate,
            channels,
        )
        from avatarkit._http import http_errors, retrying

        http = session.http
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}

        async def attempt() -> ConvertedAudio:
            with http_errors(what, endpoint, url_field="endpoints.sami"):
                response = await http.post(
                    endpoint, content=body, headers=_HEADERS, params=params, **extra
                )
                try:
                    result = check_response(response.content, status=response.status_code)
                except AuthenticationError as exc:
                    raise _naming_credential(exc) from None
            return ConvertedAudio(
                data=result.data,
                format=fmt,
                sample_rate=rate,
                channel=channels,
                task_id=result.task_id,
                payload=_parse_payload(result.payload),
            )

        converted = await retrying(attempt, policy=session.retry, what=what)
        log.debug("%s: task %s, %d bytes", what, converted.task_id, len(converted.data))
        return converted
