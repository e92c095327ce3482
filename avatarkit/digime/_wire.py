"""Wire models of the digime API: request bodies, the response envelope, callbacks."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final

import msgspec

from avatarkit._schema_errors import JSON_DECODE_ERRORS
from avatarkit.errors import ProtocolError, ServiceError

__all__ = [
    "CompleteUpload",
    "Envelope",
    "InitTrain",
    "InitUpload",
    "PartUpload",
    "TrainingCallback",
    "TrainingInfo",
    "TrainingInfoRequest",
    "TrainingState",
    "check_envelope",
    "upload_id_from",
]


class InitUpload(msgspec.Struct, kw_only=True, omit_defaults=True):
    appid: str
    type: int
    input_resource: str
    file_suffix: str
    conf_name: str | None = None
    role_show_name: str | None = None
    tts_type: str | None = None


class PartUpload(msgspec.Struct, kw_only=True, omit_defaults=True):
    appid: str
    type: int
    upload_id: str
    file_suffix: str
    part_num: int
    content: bytes  # standard base64 on the wire
    conf_name: str | None = None


class CompleteUpload(msgspec.Struct, kw_only=True, omit_defaults=True):
    appid: str
    type: int
    upload_id: str
    file_suffix: str
    conf_name: str | None = None


class InitTrain(msgspec.Struct, kw_only=True):
    appid: str
    conf_name: str
    callback_url: str


class TrainingInfoRequest(msgspec.Struct, kw_only=True):
    appid: str
    conf_name: str


class TrainingState(IntEnum):
    """The ``state`` of a digime training (doc 000 §4 callback, §5 status query; SPEC §1.2)."""

    IN_PROGRESS = 1
    """Training is under way (only ``/digime_training_info`` reports it; a callback
    never carries it)."""
    SUCCESS = 2
    """Training succeeded: the avatar (its ``conf_name``) can be used as a TTA ``role``."""
    FAILED = 3
    """Training failed (:meth:`DigimeClient.wait` raises
    :class:`~avatarkit.errors.TrainingFailed`)."""


class TrainingInfo(msgspec.Struct, kw_only=True):
    """``/digime_training_info`` data, and the body of a training callback."""

    conf_name: str
    """The avatar's id, as given to the upload and to training."""
    state: TrainingState
    """1 in progress, 2 success, 3 failure (a callback: 2 or 3)."""
    role_pic: str | None = None  # may be null, e.g. when training failed
    """The URL of the avatar image (doc 000: 形象图); may be ``None`` (e.g. when training
    failed)."""
    pre_pic: str | None = None
    """The URL of the foreground image (doc 000: 前景图); may be ``None``."""

    @property
    def done(self) -> bool:
        """Whether training has ended, in success or in failure (state 2 or 3)."""
        return self.state is not TrainingState.IN_PROGRESS


class TrainingCallback(TrainingInfo, kw_only=True):
    """What the service POSTs to ``callback_url`` (state 2 success, 3 failure)."""


class Envelope(msgspec.Struct):
    errno: int
    errMsg: str = ""  # the wire's name
    data: msgspec.Raw = msgspec.Raw(b"null")


class _UploadIdObject(msgspec.Struct):
    upload_id: str


_envelope: Final = msgspec.json.Decoder(Envelope)
_upload_id_either: Final = msgspec.json.Decoder(_UploadIdObject | str)
_any: Final = msgspec.json.Decoder()


def check_envelope(body: bytes, *, status: int, what: str) -> Envelope:
    """The envelope of a response, or :class:`ServiceError` when it is not a success.

    Success is ``errno == 0 and errMsg == "success"`` on HTTP 200.  5xx are
    retryable; an ``errno`` says the input is wrong and is not.
    """
    try:
        envelope = _envelope.decode(body)
    except JSON_DECODE_ERRORS:
        if status != 200:
            raise ServiceError(
                f"http_{status}",
                f"{what} failed",
                status=status,
                retryable=status >= 500 or status == 429,
            ) from None
        raise ProtocolError(f"{what}: response is not a digime envelope", body) from None
    if status != 200 or envelope.errno != 0 or envelope.errMsg != "success":
        raise ServiceError(
            envelope.errno,
            f"{what}: {envelope.errMsg}",
            status=status,
            retryable=status >= 500 or status == 429,
        )
    return envelope


def upload_id_from(data: msgspec.Raw) -> str:
    """``data`` of ``/init_part_upload``: ``{"upload_id": …}`` or the bare id (SPEC §1.1)."""
    try:
        value = _upload_id_either.decode(data)
    except JSON_DECODE_ERRORS as exc:
        raise ProtocolError(
            f"init_part_upload: no upload_id in data ({exc})", bytes(data)
        ) from None
    upload_id = value if isinstance(value, str) else value.upload_id
    if not upload_id:
        raise ProtocolError("init_part_upload: empty upload_id", bytes(data))
    return upload_id


def decode_any(data: msgspec.Raw) -> Any:
    return _any.decode(data)
