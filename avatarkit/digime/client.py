"""``session.digime`` and ``session.voice_clone``: uploads, training, status."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import msgspec

from avatarkit._http import retrying
from avatarkit._poll import Pause, poll
from avatarkit._redact import protected_logger
from avatarkit._schema_errors import JSON_DECODE_ERRORS
from avatarkit._upload_handle import Upload
from avatarkit.digime._wire import (
    InitTrain,
    TrainingInfo,
    TrainingInfoRequest,
    TrainingState,
)
from avatarkit.digime.rules import (
    DEFAULT_PART_SIZE,
    MIN_PART_SIZE,
    MaterialType,
    check_conf_name,
    check_input_resource,
    check_non_empty,
    check_suffix,
    check_tts_type,
    check_type,
)
from avatarkit.digime.upload import (
    Uploader,
    UploadProgress,
    UploadResult,
    UploadTarget,
    post_json,
)
from avatarkit.errors import ProtocolError, TrainingFailed, ValidationError

# Loaded on the first upload: the file/folder sources (tarfile for folders) and
# the resume journal (tempfile, hashlib).
if TYPE_CHECKING:
    from avatarkit._session import AvatarSession
    from avatarkit.digime.callbacks import CallbackReceiver
    from avatarkit.digime.source import Source

__all__ = ["VIDEO_RESOLUTIONS", "DigimeClient", "VoiceCloneClient"]

log = protected_logger(__name__)

#: 1080p and 4K, either orientation (SPEC §1.1: training videos are 1080p or 4K).
VIDEO_RESOLUTIONS: Final = frozenset(
    {(1920, 1080), (1080, 1920), (3840, 2160), (2160, 3840), (4096, 2160), (2160, 4096)}
)
_encoder: Final = msgspec.json.Encoder()
_info_decoder: Final = msgspec.json.Decoder(TrainingInfo)


def probe_resolution(path: Path) -> tuple[int, int] | None:
    """The video's (width, height), or None when PyAV is not installed."""
    try:
        import av
    except ImportError:
        log.debug("PyAV not installed: skipping the resolution check of %s", path)
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValidationError("path", str(path), "has no video stream")
            stream = container.streams.video[0]
            return int(stream.codec_context.width), int(stream.codec_context.height)
    except av.error.FFmpegError as exc:
        raise ValidationError("path", str(path), f"is not a readable video ({exc})") from None


def _check_resolution(path: Path) -> None:
    size = probe_resolution(path)
    if size is not None and size not in VIDEO_RESOLUTIONS:
        raise ValidationError(
            "path",
            str(path),
            f"is {size[0]}x{size[1]}: training videos must be 1080p or 4K "
            "(pass check_resolution=False to skip this check)",
        )


class _Uploads:
    """What both clients share: turning a validated target into a running Upload."""

    def __init__(self, session: AvatarSession) -> None:
        self._session = session

    def _upload(
        self,
        path: str | os.PathLike[str],
        target_for: Callable[[Source], UploadTarget],
        *,
        part_size: int,
        min_part: int,
        resume: bool,
        check: Callable[[Path], None] | None = None,
    ) -> Upload[UploadResult]:
        from avatarkit.digime.journal import Journal, default_journal_dir
        from avatarkit.digime.source import open_source

        session = self._session
        source_path = Path(path).expanduser()

        async def run(report: Callable[[UploadProgress], None]) -> UploadResult:
            # Preflight on the file itself, in a thread, before any byte is sent.
            source = await anyio.to_thread.run_sync(open_source, source_path)
            try:
                target = target_for(source)
                if check is not None:
                    await anyio.to_thread.run_sync(check, source_path)
                journal = None
                if resume:
                    key = "\n".join(
                        map(
                            str,
                            (
                                session.endpoints.digime,
                                target.appid,
                                target.conf_name,
                                int(target.type),
                                target.file_suffix,
                                source_path.resolve(),
                            ),
                        )
                    )
                    journal = Journal(session.journal_dir or default_journal_dir(), key)

                uploader = Uploader(
                    http=session.http,
                    base_url=session.endpoints.digime,
                    token=session.token,
                    target=target,
                    source=source,
                    part_size=part_size,
                    min_part=min_part,
                    policy=session.upload_retry,
                    journal=journal,
                    on_progress=report,
                )
                async with session.upload_slots:
                    return await uploader.run()
            finally:
                source.close()

        return Upload(run, lambda: session.task_group)

    async def _call(self, path: str, body: msgspec.Struct) -> msgspec.Raw:
        session = self._session
        payload = _encoder.encode(body)
        url = f"{session.endpoints.digime.rstrip('/')}/{path}"
        what = f"POST /{path}"
        envelope = await retrying(
            lambda: post_json(session.http, url, session.token, payload, what=what),
            policy=session.retry,
            what=what,
        )
        return envelope.data


class DigimeClient(_Uploads):
    """``session.digime``: digital-avatar training material, training and its status (SPEC §1).

    The same four verbs as :class:`~avatarkit.MetaStudio`: :meth:`upload`,
    :meth:`start_training`, :meth:`status`, :meth:`wait`, and
    :meth:`run_training` for all of them in one call.
    """

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        conf_name: str,
        role_show_name: str,
        input_resource: str,
        type: str | int = "training",
        part_size: int = DEFAULT_PART_SIZE,
        min_part: int = MIN_PART_SIZE,
        check_resolution: bool = True,
        resume: bool = True,
    ) -> Upload[UploadResult]:
        """Upload a video (mp4/mov) in parts; ``await`` it, or iterate its progress.

        ``type``: ``"training"`` (1), ``"template"`` (2) or ``"review"`` (3).
        Training videos must be 1080p or 4K (checked with PyAV when installed;
        ``check_resolution=False`` skips it).  Parts are ``part_size`` bytes
        (10 MiB), a last one under ``min_part`` merged into the one before.
        With ``resume``, an interrupted upload of the same file to the same
        target goes on where it stopped.

        Returns:
            The handle: ``await`` it for the :class:`UploadResult`, or
            ``async for progress in upload`` (at least once per MiB sent).

        Raises:
            ValidationError: an argument or the file breaks a rule; raised by
                this call, before anything is sent (checks that read the file
                are raised by the upload, still before any byte is sent).
            ServiceError: the service refused a step (errno and errMsg).
            AuthenticationError: the token was refused.
            ConnectionLost: the service stayed unreachable through the
                session's ``upload_retry`` policy.
            TimeoutError: a step got no answer within the session's timeout.

        Cancellation:
            Cancelling the awaiting task, or leaving the progress loop early,
            stops the upload at once.  The acknowledged parts are kept in the
            resume journal: uploading the same file again goes on from there.
        """
        material = check_type(type)
        if material is MaterialType.AUDIO:
            raise ValidationError("type", type, "audio archives go through session.voice_clone")
        check_conf_name(conf_name)
        check_non_empty("role_show_name", role_show_name)
        check_input_resource(input_resource)
        suffix = check_suffix(material, Path(path).suffix.lstrip("."), field="path suffix")
        appid = self._session.appid

        def target(source: Source) -> UploadTarget:
            if source.suffix != suffix:
                raise ValidationError("path", str(path), "must be a video file, not a folder")
            return UploadTarget(
                appid=appid,
                type=material,
                file_suffix=suffix,
                input_resource=input_resource,
                conf_name=conf_name,
                role_show_name=role_show_name,
            )

        check = (
            _check_resolution if check_resolution and material is MaterialType.TRAINING else None
        )
        return self._upload(
            path,
            target,
            part_size=part_size,
            min_part=min_part,
            resume=resume,
            check=check,
        )

    async def start_training(self, conf_name: str, *, callback_url: str) -> None:
        """Start training ``conf_name`` on its uploaded training video (``/init_train_digime``).

        The service POSTs the outcome to ``callback_url`` (a
        :class:`CallbackReceiver` can take it) and :meth:`status` reports it.

        Raises:
            ValidationError: ``conf_name`` breaks its rule, or ``callback_url``
                is not an http(s) URL; nothing is sent.
            ServiceError: the service refused (its errno and errMsg).
            AuthenticationError: the token was refused.
            ConnectionLost: the service could not be reached (after retries).
            TimeoutError: no answer within the session's timeout.

        Cancellation:
            The request is abandoned; the service may or may not have started
            training, so ask :meth:`status` before starting again.
        """
        check_conf_name(conf_name)
        if not isinstance(callback_url, str) or not callback_url.startswith(
            ("http://", "https://")
        ):
            raise ValidationError(
                "callback_url", callback_url, "must be an http:// or https:// URL"
            )
        await self._call(
            "init_train_digime",
            InitTrain(appid=self._session.appid, conf_name=conf_name, callback_url=callback_url),
        )

    async def status(self, conf_name: str) -> TrainingInfo:
        """The training state of ``conf_name`` (``/digime_training_info``).

        Returns:
            Its state (in progress, success, failure) and, once trained, its pictures.

        Raises:
            ValidationError: ``conf_name`` breaks its rule.
            ServiceError: the service refused (an unknown ``conf_name``, say).
            AuthenticationError: the token was refused.
            ProtocolError: the answer is not the documented shape.
            ConnectionLost: the service could not be reached (after retries).
            TimeoutError: no answer within the session's timeout.

        Cancellation:
            Safe: a read; nothing is left running.
        """
        check_conf_name(conf_name)
        data = await self._call(
            "digime_training_info",
            TrainingInfoRequest(appid=self._session.appid, conf_name=conf_name),
        )
        try:
            return _info_decoder.decode(data)
        except JSON_DECODE_ERRORS as exc:
            raise ProtocolError(
                f"POST /digime_training_info: unexpected data ({exc})", bytes(data)
            ) from None

    async def wait(
        self,
        conf_name: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 2.0,
        max_poll_interval: float = 60.0,
        receiver: CallbackReceiver | None = None,
    ) -> TrainingInfo:
        """Wait for the training of ``conf_name`` to end, and return its final status.

        Polls :meth:`status` at once, then after ``poll_interval`` seconds, each
        pause 1.5 times the one before, up to ``max_poll_interval``.  With a
        ``receiver`` (the :class:`CallbackReceiver` mounted at the training's
        ``callback_url``) it wakes as soon as the service's callback arrives.

        Raises:
            TrainingFailed: the training ended in failure (its status attached).
            TimeoutError: not done after ``timeout`` seconds (None: no limit).
            ValidationError: a bad ``conf_name`` or interval.
            ServiceError: a status call was refused.

        Cancellation:
            Safe: polling stops; the training goes on at the service.
        """
        check_conf_name(conf_name)

        def done(info: TrainingInfo) -> bool:
            if info.state is TrainingState.FAILED:
                raise TrainingFailed(conf_name, info)
            return info.state is TrainingState.SUCCESS

        return await poll(
            lambda: self.status(conf_name),
            done,
            what=f"training of {conf_name!r}",
            state=lambda info: info.state.name,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            pause=anyio.sleep if receiver is None else _woken_by(receiver, conf_name),
        )

    async def run_training(
        self,
        path: str | os.PathLike[str],
        *,
        conf_name: str,
        role_show_name: str,
        input_resource: str,
        callback_url: str,
        receiver: CallbackReceiver | None = None,
        timeout: float | None = None,
        check_resolution: bool = True,
        on_progress: Callable[[UploadProgress], None] | None = None,
    ) -> TrainingInfo:
        """The whole flow: :meth:`upload` the training video, :meth:`start_training`, :meth:`wait`.

        Arguments are those of the three calls; ``timeout`` bounds the wait for
        training only (the upload is bounded by the session's retry policy);
        ``on_progress`` is given the upload's progress.

        Returns:
            The final status, once training succeeded.

        Raises:
            ValidationError: a bad argument or video, before any byte is sent.
            TrainingFailed: the training ended in failure.
            TimeoutError: the training was not done after ``timeout`` seconds.
            ServiceError: the service refused a step.

        Cancellation:
            Stops where it is.  An interrupted upload resumes on the next call
            for the same file; a started training goes on at the service.
        """
        upload = self.upload(
            path,
            conf_name=conf_name,
            role_show_name=role_show_name,
            input_resource=input_resource,
            check_resolution=check_resolution,
        )
        if on_progress is None:
            await upload
        else:
            async for progress in upload:
                on_progress(progress)
        await self.start_training(conf_name, callback_url=callback_url)
        return await self.wait(conf_name, timeout=timeout, receiver=receiver)


def _woken_by(receiver: CallbackReceiver, conf_name: str) -> Pause:
    """A pause that ends early when a new callback for ``conf_name`` arrives."""
    seen = receiver.latest(conf_name)

    async def pause(delay: float) -> None:
        nonlocal seen
        with anyio.move_on_after(delay):
            callback = await receiver.wait_for(conf_name)
            if callback is seen:  # an old one: nothing new to wake for
                await anyio.sleep(delay)
            seen = callback

    return pause


class VoiceCloneClient(_Uploads):
    """``session.voice_clone``: voice-clone audio material (SPEC §1.1, type 11)."""

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        tts_type: str,
        input_resource: str,
        conf_name: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        min_part: int = MIN_PART_SIZE,
        resume: bool = True,
    ) -> Upload[UploadResult]:
        """Upload a zip/tar archive as is, or a folder of audio files archived on the fly (tar).

        ``tts_type``: ``tts_model_v1`` (30-minute clone) or ``tts_model_v2``
        (10-minute).  The service trains the voice from the uploaded archive:
        the document has no separate training call for it.

        Returns:
            The handle: ``await`` it for the :class:`UploadResult`, or
            ``async for progress in upload`` (at least once per MiB sent).

        Raises:
            ValidationError: an argument or the file breaks a rule; raised by
                this call, before anything is sent (checks that read the file
                are raised by the upload, still before any byte is sent).
            ServiceError: the service refused a step (errno and errMsg).
            AuthenticationError: the token was refused.
            ConnectionLost: the service stayed unreachable through the
                session's ``upload_retry`` policy.
            TimeoutError: a step got no answer within the session's timeout.

        Cancellation:
            Cancelling the awaiting task, or leaving the progress loop early,
            stops the upload at once.  The acknowledged parts are kept in the
            resume journal: uploading the same file again goes on from there.
        """
        check_tts_type(tts_type)
        check_input_resource(input_resource)
        if conf_name is not None:
            check_conf_name(conf_name)
        if not Path(path).is_dir():
            check_suffix(MaterialType.AUDIO, Path(path).suffix.lstrip("."), field="path suffix")
        appid = self._session.appid

        def target(source: Source) -> UploadTarget:
            suffix = check_suffix(MaterialType.AUDIO, source.suffix, field="path suffix")
            return UploadTarget(
                appid=appid,
                type=MaterialType.AUDIO,
                file_suffix=suffix,
                input_resource=input_resource,
                conf_name=conf_name,
                tts_type=tts_type,
            )

        return self._upload(
            path,
            target,
            part_size=part_size,
            min_part=min_part,
            resume=resume,
        )
