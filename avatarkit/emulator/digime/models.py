"""The digime service's state and rules, as the emulator reads doc 000 (no I/O here).

Section names are doc 000's own (制作分身 "making an avatar", 制作音色
"making a voice", then the numbered operations).  The emulator reads the
document itself; it shares no rule with the SDK (:mod:`avatarkit.digime.rules`).

Decisions on the reading (each also in the report of issue 9):

- ``input_resource`` (制作分身 说明 3, §1 init example): "必传" (the key is
  required), and both init examples send ``""``: an empty value is accepted
  (SPEC §6: the vendor's examples are evidence).  A missing key is refused.
- ``conf_name`` (说明 2): ``^[A-Za-z0-9-]+$``.  Required for videos (§1–§3,
  "必传"); for a voice archive (制作音色 §1) "可选", and its example sends
  ``""``: empty means not given.  The demo's own ``"conf_name"`` placeholder
  (it has an underscore) breaks the stated rule; the rule wins (SPEC §6).
- ``type`` (§1): 1 training, 2 template, 3 review video; 11 voice archive.  A
  JSON integer only (``true`` and ``"1"`` are refused: the doc says int).
- ``file_suffix`` (§1): ``mp4``/``mov`` for videos, ``zip``/``tar`` for
  archives.  Case-insensitive: the demo derives it from the file name
  (``file_path[-3:]``), so ``X.MP4`` sends ``MP4``.
- ``role_show_name`` (§1 video init): "必传", a non-empty display name (its
  example is ``"刘璇"``; an empty name names nothing).  Not asked of archives.
- ``tts_type`` (制作音色 §1): the comment lists exactly ``tts_model_v1`` (30-
  minute clone) and ``tts_model_v2`` (10-minute clone); the example's ``"xxx"``
  is a placeholder for one of them.  Required for type 11 (a clone needs a
  model).  Videos do not have it: absent or ``""`` (not given) is accepted,
  anything else refused, so a misplaced field is not silently ignored.
- Parts (§2 说明: "建议分片大小为10M,最后一片不足5M的与前一分片合并上传"):
  ``part_num`` from 1, consecutive (§2 "要求第一个分片必须从1开始"); every part
  but the last is at least 5 MiB (the demo's ``5242880``), a short last part
  being merged into the one before.  Resending the last part replaces it.
- ``content`` (§2): standard base64 (RFC 4648, padded).
- Part and complete (§2, §3) must repeat the init's type, suffix and (videos)
  conf_name.
- ``/init_part_upload``'s ``data`` (§1 返回): ``{"upload_id": …}``, as the
  response example shows.  The demo reads ``ret["data"]`` as the id itself;
  ``digime_init_data_shape="bare"`` answers that shape for it (SPEC §1.1: the
  client accepts both; the emulator answers one, the documented object).
- ``/init_train_digime`` (§4): ``appid`` and ``conf_name`` "必传";
  ``callback_url`` is required too (the service POSTs the result there, "传递
  的URL地址需支持POST method") and must be an http(s) URL.  Training needs a
  completed type-1 upload of the conf_name (制作分身 step 1 → 2).
- Training review (制作分身: "训练视频:允许格式 1080p/4K mp4/mov"): the
  latest training video is probed with PyAV (:mod:`.review`): an mp4/mov
  container, a decodable video stream, 1080p (1920×1080, either orientation)
  or 4K (3840×2160 or 4096×2160, either orientation).  Anything else ends the
  training in state 3 (§4 callback "3:制作失败").  The documented answer has
  no reason field; the emulator adds ``fail_reason`` (emulator-only, present
  only on failure) to the callback and to ``/digime_training_info``'s data,
  and logs it, so that a user can act on it.
- Voice archive review (制作音色 step 1: "多条音频文件放到一个文件夹下压缩,
  格式要求zip或者tar"): there is no training call for voices in doc 000, so the
  archive is probed at ``/video_complete_upload``: it must open as the
  declared zip or tar, hold at least one audio file, and every file in it
  (hidden files and ``__MACOSX`` excepted) must be audio FFmpeg can open and
  decode.  Otherwise the complete is refused (40008) and the upload stays open.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec

from avatarkit.emulator.digime.errors import MISMATCH, UNKNOWN_UPLOAD, DigimeError
from avatarkit.emulator.store import ServiceStore
from avatarkit.errors import ValidationError

__all__ = [
    "MIN_PART_BYTES",
    "CompleteUploadBody",
    "DigimeStore",
    "InitTrainBody",
    "InitUploadBody",
    "MaterialType",
    "PartUploadBody",
    "TrainingInfoBody",
    "TrainingInfoData",
    "TrainingRecord",
    "TrainingState",
    "UploadRecord",
]

#: 制作分身 说明 2: "允许大小写字母数字以及'-'".
CONF_NAME: Final = re.compile(r"[A-Za-z0-9-]+")
#: §2 说明: a last part under 5M is merged into the one before it, so every other
#: part is at least 5 MiB; the demo's own threshold is ``5242880``.
MIN_PART_BYTES: Final = 5 * 1024 * 1024
#: 制作音色 §1: "tts_model_v1 30min复刻 tts_model_v2 10min复刻".
TTS_TYPES: Final = ("tts_model_v1", "tts_model_v2")
VIDEO_SUFFIXES: Final = ("mp4", "mov")  # §1 "mp4或mov"
ARCHIVE_SUFFIXES: Final = ("zip", "tar")  # 制作音色 §1 "zip或tar"


class MaterialType(IntEnum):
    """§1 ``type``: "1:训练视频 2:模版视频 3:审核视频"; 制作音色 §1 "11:音频压缩包数据"."""

    TRAINING = 1
    TEMPLATE = 2
    REVIEW = 3
    AUDIO = 11


class TrainingState(IntEnum):
    """§5 ``state``: "1:制作中,2:制作成功,3:制作失败"."""

    IN_PROGRESS = 1
    SUCCESS = 2
    FAILED = 3


# -- request bodies, as the emulator reads them (types only; rules below) --------


class InitUploadBody(msgspec.Struct, kw_only=True):
    """§1 / 制作音色 §1 ``/init_part_upload``."""

    appid: str
    type: int
    input_resource: str
    file_suffix: str
    conf_name: str | None = None
    role_show_name: str | None = None
    tts_type: str | None = None


class PartUploadBody(msgspec.Struct, kw_only=True):
    """§2 ``/video_part_upload``; ``content`` is standard base64 on the wire."""

    appid: str
    type: int
    upload_id: str
    file_suffix: str
    part_num: int
    content: bytes
    conf_name: str | None = None


class CompleteUploadBody(msgspec.Struct, kw_only=True):
    """§3 ``/video_complete_upload``."""

    appid: str
    type: int
    upload_id: str
    file_suffix: str
    conf_name: str | None = None


class InitTrainBody(msgspec.Struct, kw_only=True):
    """§4 ``/init_train_digime``."""

    appid: str
    conf_name: str
    callback_url: str


class TrainingInfoBody(msgspec.Struct, kw_only=True):
    """§5 ``/digime_training_info``."""

    appid: str
    conf_name: str


class TrainingInfoData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """§5's ``data`` and §4's callback body; ``fail_reason`` is emulator-only."""

    conf_name: str
    role_pic: str
    pre_pic: str
    state: int
    fail_reason: str | msgspec.UnsetType = msgspec.UNSET


# -- rules ------------------------------------------------------------------------


def check_conf_name(value: object, field: str = "conf_name") -> str:
    if not isinstance(value, str) or CONF_NAME.fullmatch(value) is None:
        raise ValidationError(field, value, "must match ^[A-Za-z0-9-]+$ (letters, digits, '-')")
    return value


def check_type(value: int) -> MaterialType:
    if value not in MaterialType._value2member_map_:
        raise ValidationError(
            "type", value, "must be one of training=1, template=2, review=3, audio=11"
        )
    return MaterialType(value)


def check_suffix(material: MaterialType, value: str) -> str:
    allowed = ARCHIVE_SUFFIXES if material is MaterialType.AUDIO else VIDEO_SUFFIXES
    if value.lower() not in allowed:
        what = "an audio archive" if material is MaterialType.AUDIO else "a video"
        raise ValidationError("file_suffix", value, f"{what} must be {' or '.join(allowed)}")
    return value.lower()


def check_tts_type(material: MaterialType, value: str | None) -> str | None:
    if material is MaterialType.AUDIO:
        if value not in TTS_TYPES:
            raise ValidationError("tts_type", value, f"must be one of {', '.join(TTS_TYPES)}")
        return value
    if value:  # "" is "not given" (SPEC §6)
        raise ValidationError("tts_type", value, "is only for audio (type 11)")
    return None


def check_role_show_name(material: MaterialType, value: str | None) -> str | None:
    if material is MaterialType.AUDIO:
        return value
    if value is None:
        raise ValidationError(
            "role_show_name", value, "is required for video uploads (type 1, 2, 3)"
        )
    if not value.strip():
        raise ValidationError("role_show_name", value, "must be a non-empty string")
    return value


def conf_name_for(material: MaterialType, value: str | None) -> str | None:
    """Required for videos; optional for archives, where ``""`` means not given."""
    if material is MaterialType.AUDIO:
        return check_conf_name(value) if value else None
    if value is None:
        raise ValidationError("conf_name", value, "is required for video uploads (type 1, 2, 3)")
    return check_conf_name(value)


def check_same(
    record: UploadRecord, material: MaterialType, suffix: str, conf_name: str | None
) -> None:
    """§2/§3: parts and complete describe the upload as its init did."""
    pairs: list[tuple[str, object, object]] = [
        ("type", int(material), int(record.type)),
        ("file_suffix", suffix, record.file_suffix),
    ]
    if material is not MaterialType.AUDIO or conf_name is not None:
        pairs.append(("conf_name", conf_name, record.conf_name))
    for name, got, want in pairs:
        if got != want:
            raise DigimeError(
                400,
                MISMATCH,
                f"{name}={got!r}: differs from the init of upload_id={record.upload_id!r} "
                f"({name}={want!r})",
            )


# -- state ------------------------------------------------------------------------


@dataclass
class UploadRecord:
    """One chunked upload, from init to complete."""

    upload_id: str
    appid: str
    conf_name: str | None
    type: MaterialType
    file_suffix: str
    tts_type: str | None
    role_show_name: str | None
    input_resource: str
    path: Path
    part_sizes: list[int] = field(default_factory=list)
    completed: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False, compare=False)


@dataclass
class TrainingRecord:
    """The latest training of one conf_name."""

    conf_name: str
    callback_url: str
    video: Path | None = None  # the training video under review
    state: TrainingState = TrainingState.IN_PROGRESS
    role_pic: str = ""
    pre_pic: str = ""
    fail_reason: str | None = None  # emulator-only: why the training failed
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope, repr=False)
    # Set once the result is known and its callback was delivered or given up.
    finished: anyio.Event = field(default_factory=anyio.Event, repr=False)

    def info(self) -> TrainingInfoData:
        return TrainingInfoData(
            conf_name=self.conf_name,
            role_pic=self.role_pic,
            pre_pic=self.pre_pic,
            state=int(self.state),
            fail_reason=msgspec.UNSET if self.fail_reason is None else self.fail_reason,
        )


class DigimeStore(ServiceStore):
    """Uploads, their files and trainings; ``state.digime``."""

    prefix = "avatarkit-digime-"

    def __init__(self) -> None:
        super().__init__()
        self.uploads: dict[str, UploadRecord] = {}
        self.trainings: dict[str, TrainingRecord] = {}
        self._completed: list[str] = []  # upload ids, in completion order

    def completed_file(self, conf_name: str | None = None, upload_id: str | None = None) -> Path:
        """The assembled file of the latest completed upload matching the arguments."""
        for uid in reversed(self._completed):
            record = self.uploads[uid]
            if upload_id is not None and uid != upload_id:
                continue
            if conf_name is not None and record.conf_name != conf_name:
                continue
            return record.path
        raise KeyError(f"no completed upload for conf_name={conf_name} upload_id={upload_id}")

    def latest_completed(self, conf_name: str, material: MaterialType) -> UploadRecord | None:
        for uid in reversed(self._completed):
            record = self.uploads[uid]
            if record.conf_name == conf_name and record.type is material:
                return record
        return None

    def new_upload(self, **fields: Any) -> UploadRecord:
        upload_id = secrets.token_hex(12)
        path = self.directory / f"{upload_id}.{fields['file_suffix']}"
        path.touch()
        record = UploadRecord(upload_id=upload_id, path=path, **fields)
        self.uploads[upload_id] = record
        return record

    def open_upload(self, upload_id: str) -> UploadRecord:
        record = self.uploads.get(upload_id)
        if record is None:
            raise DigimeError(400, UNKNOWN_UPLOAD, f"upload_id={upload_id!r}: unknown upload_id")
        check_open(record)
        return record

    def mark_completed(self, record: UploadRecord) -> None:
        record.completed = True
        self._completed.append(record.upload_id)

    def new_training(self, conf_name: str, callback_url: str, video: Path) -> TrainingRecord:
        """A fresh training of ``conf_name``; training again cancels the one before."""
        old = self.trainings.get(conf_name)
        if old is not None:
            old.scope.cancel()
        record = TrainingRecord(conf_name=conf_name, callback_url=callback_url, video=video)
        self.trainings[conf_name] = record
        return record


def check_open(record: UploadRecord) -> None:
    if record.completed:
        raise DigimeError(
            400,
            UNKNOWN_UPLOAD,
            f"upload_id={record.upload_id!r}: the upload is already completed",
        )
