"""The TTA session config as the emulator reads doc 001 — its own reading, not the SDK's.

Pure: no I/O.  :func:`read_config` turns the ``|CTL|00|`` JSON into an :class:`OpenConfig`
or raises :class:`~avatarkit.emulator.tta.errors.InvalidParameter` (MSG 1001) naming the
field, the value and the rule.  The catalogs below are copied from doc 001 itself.

Readings of doc 001, each with the sentence it rests on:

* **Empty optional strings mean "not given"** (SPEC §6).  §2.1.1 says of ``background``
  "不设置或者为空时使用默认背景" (unset *or empty*: the default background), and the
  doc's own demo (§5.1.1) sends ``"role_conf": {"pose_type": "", "clothes_type": ""}``.
  So ``background``, ``role_conf.voice_type``, ``pose_type`` and ``clothes_type`` may be
  ``""``; the emulator treats them as absent.  ``logo.logo_url: ""`` is §2.1.1's own
  rule: "为空时忽略其他logo配置" (empty: the other logo settings are ignored).
* **role** (§2.1.1 "必需", §2.1.2 动作库, §二 数据格式): a catalog role — 2D
  ``GuoXiaoyuan``, ``XiaoHuan``; 3D ``COCO``, exact case as listed — or a customer's own
  avatar id ("数字分身…形象id填入role"), which on this emulator means a digime trained
  here (doc 000).  Anything else is refused at open with 1001 naming the role
  (the API checks the trained names; see :func:`role_problem`).  A catalog role on the
  other dimension's endpoint is refused too (§三: one endpoint per dimension).
* **appid** (§2.1.1 "必需"): the doc's own examples (§2.1, §2.2.2) and demo (§5.1.1) never
  send it in the config; every one sends it in the URL (§三).  Read as: the URL's appid
  satisfies "必需"; a config appid, when sent, must equal the URL's.
* **video** (§2.1.1): width/height 240..1920; only height given → width at 16:9
  portrait; only width → 16:9 landscape if > 1080, else portrait; neither → 1080×1920.
  A derived side outside 240..1920 is refused.  ``I_frame_interval`` 25..250, default 250
  (§2.2.2).  ``subtitle_control`` only in video production (§2.2.4.1
  "当前仅支持在视频创作场景下添加字幕"): it needs ``codec`` and no rtc/rtmp.
* **logo** (§2.1.1 "如果logo字段存在,其他logo配置字段必须存在"): all five fields present;
  offsets unsigned ("可以为0"); width/height unsigned and, with a non-empty logo_url,
  not 0 ("logo字段不空时不可为0").
* **role_conf** (§2.1.1): ``role_width`` 100..video_width; ``role_left_offset`` any
  integer ("值小于0…时,主播会左右超出屏幕": the avatar may leave the frame);
  ``role_top_offset`` 0 ≤ v < video_height; ``speed`` [0.25, 3], ``pitch`` [0, 10],
  ``volume`` [0, 3].  ``voice_type`` is not checked against §2.1.1's list: a cloned
  voice's id goes there too ("声音复刻:声音id填入voice_type").  ``pose_type`` and
  ``clothes_type`` are not checked against §2.1.2's combinations: the doc lists
  combinations ("pose2_clothes1"), not the values of each field, and its own §2.1
  example sends ``"standing_fullbody"``/``"uniform"``.
* **input_mode** text (default) or audio; **codec** mp4/webm/mov, and not with rtc or
  rtmp ("实时交互和实时直播场景不能传递该参数", §2.1.1, §四).
* **rtc** app_id, room, uid, token and **rtmp** addr, live_id: "RTC/RTMP场景下必需" —
  present, non-empty strings; addr an ``rtmp://`` (or ``rtmps://``) URL.
* **output_url** is in no table; the demo (§5.1.1) sends ``"output_url": True`` and
  reads a ``video_url`` event: a boolean.
* Unknown top-level fields are ignored (the service's tables are not exhaustive: the
  demo's ``output_url`` is proof).  Integers are JSON integers (not booleans, not
  floats); floats accept integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import msgspec

from avatarkit.emulator.tta.errors import InvalidParameter

__all__ = [
    "ACTIONS",
    "CAMERA_MODE",
    "CAMERA_SCENES",
    "ROLES_2D",
    "ROLES_3D",
    "VOICES",
    "OpenConfig",
    "read_config",
    "role_problem",
]

Dimension = Literal["2d", "3d"]

# --- catalogs, copied from doc 001 ----------------------------------------------------

#: §2.1.1 ``role``: "2D GuoXiaoyuan(小源) XiaoHuan(小焕); 3D COCO".
ROLES_2D: Final = frozenset({"GuoXiaoyuan", "XiaoHuan"})
ROLES_3D: Final = frozenset({"COCO"})

#: §2.1.1 ``voice_type``: the listed voices.  Informative only (a cloned voice works too).
VOICES: Final = frozenset(
    {
        "BV405",
        "BV418",
        "BV005_ParaTaco",
        "BV007_ParaTaco",
        "BV057_ParaTaco",
        "BV009_DPE_ParaTaco",
        "BV700",
        "BV008_DPE_ParaTaco",
        "BV419",
    }
)

#: §2.1.2 动作库: the ``type`` of ``<action/>`` each catalog role takes (ids as published,
#: including COCO's mixed ``_ANI``/``_Ani`` suffixes).
ACTIONS: Final[dict[str, frozenset[str]]] = {
    "GuoXiaoyuan": frozenset(
        [
            "0",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10",
            "11",
            "12",
            "13",
            "15",
            "16",
            "17",
            "18",
            "19",
            "20",
            "22",
            "24",
            "25",
            "26",
            "28",
            "31",
            "32",
            "33",
            "34",
            "35",
            "36",
        ]
    ),
    "XiaoHuan": frozenset(
        [
            "OPENING_BOWING",
            "3",
            "5",
            "7",
            "9",
            "11",
            "13",
            "14",
            "18",
            "20",
            "21",
            "24",
            "26",
            "29",
            "OK",
            "34",
            "35",
            "37",
            "39",
            "42",
            "46",
            "49",
            "IDLE",
            "51",
            "54",
            "55",
            "57",
            "59",
            "61",
            "63",
            "66",
            "67",
            "69",
            "ENDING_BOWING",
        ]
    ),
    "COCO": frozenset(
        [
            "coco_normal_01_ANI",
            "coco_hello_01_ANI",
            "coco_introduction_03_ANI",
            "coco_selling_1_01_ANI",
            "coco_selling_2_01_ANI",
            "coco_selling_3_01_ANI",
            "coco_selling_4_02_ANI",
            "coco_talking_1_02_ANI",
            "coco_talking_2_01_ANI",
            "coco_talking_3_01_ANI",
            "coco_talking_4_01_Ani",
            "coco_talking_5_01_Ani",
            "coco_talking_6_01_Ani",
            "coco_talking_7_01_ANI",
            "coco_talking_8_01_ANI",
            "coco_talking_9_01_ANI",
            "coco_talking_10_01_ANI",
            "coco_upper_left_01_ANI",
            "coco_upper_right_01_ANI",
            "coco_buttom_left_02_ANI",
            "coco_buttom_right_01_ANI",
            "coco_left_01_ANI",
            "coco_right_02_ANI",
            "coco_front_02_ANI",
            "coco_heart_01_ANI",
            "coco_thumbup_01_2_ANI",
            "coco_ok_03_ANI",
            "coco_no_01_2_ANI",
            "coco_sale_01_2_ANI",
            "coco_order_06_2_ANI",
            "coco_answer_1_01_ANI",
            "coco_answer_2_02_ANI",
            "coco_barrage_03_ANI",
            "coco_refund_02_ANI",
            "coco_soldout_05_ANI",
            "coco_bye_01_ANI",
            "coco_lookaround_01_ANI",
            "coco_yoga_02_2_ANI",
            "coco_laugh_1_02_ANI",
            "coco_think_01_2_ANI",
            "coco_wave_04_2_ANI",
            "coco_akimbo_01_ANI",
            "coco_nod_01_2_ANI",
            "coco_jidong_01_2_ANI",
        ]
    ),
}

#: §2.1.5: ``<camera mode='Camera3D' scene=…/>``, three scenes (3D only).
CAMERA_MODE: Final = "Camera3D"
CAMERA_SCENES: Final = frozenset({"3dCameraFrontAll", "3dCameraFrontHalf", "3dCameraFrontFace"})

_CODECS: Final = ("mp4", "webm", "mov")
_INPUT_MODES: Final = ("text", "audio")
_MIN_SIDE, _MAX_SIDE = 240, 1920
_DEFAULT_W, _DEFAULT_H = 1080, 1920
_DEFAULT_GOP: Final = 250


@dataclass(frozen=True, slots=True)
class OpenConfig:
    """What the emulator needs of an accepted config (the rest only had to be valid)."""

    role: str
    width: int
    height: int
    gop: int
    input_mode: Literal["text", "audio"]
    codec: str | None
    output_url: bool
    subtitle_control: bool
    appid: str | None
    rtmp: tuple[str, str] | None  # (addr, live_id)
    rtc: bool


def role_problem(role: str, dimension: Dimension, trained: bool) -> str | None:
    """Why ``role`` cannot be opened on ``dimension``'s endpoint, or None (§2.1.1, §三)."""
    if dimension == "2d" and role in ROLES_3D:
        return "is a 3D role: use the /3d endpoint"
    if dimension == "3d" and role in ROLES_2D:
        return "is a 2D role: use the /2d endpoint"
    if role in ROLES_2D or role in ROLES_3D or trained:
        return None
    catalog = ", ".join(sorted(ROLES_2D | ROLES_3D))
    return (
        f"unknown role: neither a catalog role (doc 001 §2.1.1: {catalog}; case matters) "
        "nor a digime trained on this emulator"
    )


# --- reading the JSON ---------------------------------------------------------------------


def _fail(field: str, value: Any, rule: str, *, secret: bool = False) -> InvalidParameter:
    return InvalidParameter(field, value, rule, secret=secret)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


def _is_url(value: str, schemes: tuple[str, ...]) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme.lower() in schemes and bool(parts.hostname)
    except ValueError:
        return False


class _Object:
    """One JSON object of the config, read field by field with the field's dotted name."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path or "config", value if path else None, "must be a JSON object")
        self.data: dict[str, Any] = value
        self.prefix = f"{path}." if path else ""

    def name(self, key: str) -> str:
        return self.prefix + key

    def string(self, key: str, *, required: bool = False, empty_ok: bool = True) -> str | None:
        """A string; ``""`` is "not given" where ``empty_ok`` (SPEC §6), returned as None."""
        value = self.data.get(key)
        if value is None:
            if required:
                raise _fail(self.name(key), None, "is required")
            return None
        if not isinstance(value, str):
            raise _fail(self.name(key), value, "must be a string")
        if not value.strip():
            if empty_ok and not required:
                return None
            raise _fail(self.name(key), value, "must be a non-empty string")
        return value

    def integer(
        self, key: str, low: int | None = None, high: int | None = None, *, required: bool = False
    ) -> int | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise _fail(self.name(key), None, "is required")
            return None
        if not _is_int(value):
            raise _fail(self.name(key), value, "must be an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                rule = f"must be >= {low}"
            elif low is None:
                rule = f"must be <= {high}"
            else:
                rule = f"must be between {low} and {high}"
            raise _fail(self.name(key), value, rule)
        return int(value)

    def number(self, key: str, low: float, high: float) -> None:
        value = self.data.get(key)
        if value is None:
            return
        if not _is_number(value):
            raise _fail(self.name(key), value, "must be a number")
        if not low <= value <= high:
            raise _fail(self.name(key), value, f"must be between {low:g} and {high:g}")

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise _fail(self.name(key), value, "must be a boolean")
        return value

    def child(self, key: str) -> _Object | None:
        value = self.data.get(key)
        return None if value is None else _Object(value, self.name(key))


def _resolution(video: _Object | None) -> tuple[int, int]:
    """§2.1.1 video_width/video_height, with the doc's derivation rules."""
    width = video.integer("video_width", _MIN_SIDE, _MAX_SIDE) if video else None
    height = video.integer("video_height", _MIN_SIDE, _MAX_SIDE) if video else None
    if width is None and height is None:
        return _DEFAULT_W, _DEFAULT_H
    if width is None:
        assert height is not None
        derived, side = round(height * 9 / 16), "video_width"
        width = derived
    elif height is None:
        derived = round(width * 9 / 16) if width > _DEFAULT_W else round(width * 16 / 9)
        side = "video_height"
        height = derived
    else:
        return width, height
    if not _MIN_SIDE <= derived <= _MAX_SIDE:
        raise _fail(
            f"video.{side}",
            derived,
            f"derived at 16:9 from the other side; must be between {_MIN_SIDE} and {_MAX_SIDE}",
        )
    return width, height


def _check_logo(logo: _Object) -> None:
    url = logo.data.get("logo_url")
    for key in ("logo_url", "logo_top_offset", "logo_left_offset", "logo_width", "logo_height"):
        if logo.data.get(key) is None:
            raise _fail(logo.name(key), None, "is required when logo is present (doc 001 §2.1.1)")
    logo.string("logo_url")
    logo.integer("logo_top_offset", 0)
    logo.integer("logo_left_offset", 0)
    given = isinstance(url, str) and bool(url.strip())
    if isinstance(url, str) and given and not _is_url(url, ("http", "https")):
        raise _fail("logo.logo_url", url, "must be an http:// or https:// URL")
    for key in ("logo_width", "logo_height"):
        size = logo.integer(key, 0)
        if given and size == 0:
            raise _fail(logo.name(key), size, "must not be 0 when logo_url is set")


def _check_role_conf(conf: _Object, width: int, height: int) -> None:
    for key in ("voice_type", "pose_type", "clothes_type"):
        conf.string(key)  # "" = not given (SPEC §6, the demo of §5.1.1)
    conf.integer("role_width", 100, width)
    conf.integer("role_left_offset")
    conf.integer("role_top_offset", 0, height - 1)
    conf.number("speed", 0.25, 3)
    conf.number("pitch", 0, 10)
    conf.number("volume", 0, 3)


def _rtmp(config: _Object) -> tuple[str, str] | None:
    rtmp = config.child("rtmp")
    if rtmp is None:
        return None
    addr = rtmp.data.get("addr")
    if addr is None:
        raise _fail("rtmp.addr", None, "is required in the RTMP scenario")
    if not isinstance(addr, str) or not _is_url(addr, ("rtmp", "rtmps")):
        raise _fail("rtmp.addr", None, "must be an rtmp:// URL", secret=True)
    live_id = rtmp.string("live_id", required=True)
    assert live_id is not None
    return addr, live_id


def _rtc(config: _Object) -> bool:
    rtc = config.child("rtc")
    if rtc is None:
        return False
    for key in ("app_id", "room", "uid", "token"):
        value = rtc.data.get(key)
        if value is None:
            raise _fail(rtc.name(key), None, "is required in the RTC scenario")
        if not isinstance(value, str) or not value.strip():
            raise _fail(rtc.name(key), None, "must be a non-empty string", secret=True)
    return True


def read_config(raw: str | bytes) -> OpenConfig:
    """The ``|CTL|00|`` payload, checked against doc 001 as read in the module docstring."""
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        # Only the reason: the raw text may hold an rtc token.
        raise _fail("config", None, f"must be a JSON object ({type(exc).__name__})") from None
    config = _Object(data, "")
    role = config.string("role", required=True)
    assert role is not None
    config.string("uid")
    appid = config.string("appid")
    background = config.string("background")
    if background is not None and not _is_url(background, ("http", "https")):
        raise _fail("background", background, "must be an http:// or https:// URL")
    logo = config.child("logo")
    if logo is not None:
        _check_logo(logo)
    video = config.child("video")
    width, height = _resolution(video)
    gop = (video.integer("I_frame_interval", 25, 250) if video else None) or _DEFAULT_GOP
    subtitles = bool(video.boolean("subtitle_control")) if video else False
    role_conf = config.child("role_conf")
    if role_conf is not None:
        _check_role_conf(role_conf, width, height)
    mode = config.string("input_mode") or "text"
    if mode not in _INPUT_MODES:
        raise _fail("input_mode", mode, "must be 'text' or 'audio'")
    codec = config.string("codec")
    if codec is not None and codec not in _CODECS:
        raise _fail("codec", codec, "must be one of 'mp4', 'webm', 'mov'")
    output_url = bool(config.boolean("output_url"))
    rtmp = _rtmp(config)
    rtc = _rtc(config)
    live = rtc or rtmp is not None
    if codec is not None and live:
        raise _fail("codec", codec, "offline production (codec) cannot be combined with rtc/rtmp")
    if subtitles and (codec is None or live):
        raise _fail(
            "video.subtitle_control",
            True,
            "subtitles are for video production only (doc 001 §2.2.4.1): set codec, no rtc/rtmp",
        )
    return OpenConfig(
        role=role,
        width=width,
        height=height,
        gop=gop,
        input_mode="audio" if mode == "audio" else "text",
        codec=codec,
        output_url=output_url,
        subtitle_control=subtitles,
        appid=appid,
        rtmp=rtmp,
        rtc=rtc,
    )
