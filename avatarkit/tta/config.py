"""TTA session config: the JSON sent in the ``|CTL|00|`` open frame.

The rules come from doc 001 §2.1.1 (fields), §2.2.2 (I-frame interval) and
§2.2.4.1 (subtitles), restated in SPEC §2.3.  Everything here is pure: no I/O,
no asyncio, so the client and the emulator share one set of rules.

Structs are plain ``msgspec`` Structs that users may build directly, so
:meth:`SessionConfig.checked` re-checks runtime types as well as the rules.
Every failure is a :class:`~avatarkit.errors.ValidationError` naming the
dotted field, the offending value and the rule; also for input that msgspec
cannot take (JSON nested too deeply, strings with lone surrogates, objects
it cannot encode).

Readings of doc 001 made here (SPEC §6):

* **Empty optional strings mean "not given".**  ``background: ""`` (§2.1.1:
  "不设置或者为空时使用默认背景"), and ``role_conf.voice_type``, ``pose_type``,
  ``clothes_type`` ``""`` (the doc's own demo, §5.1.1, sends
  ``"pose_type": "", "clothes_type": ""``) are accepted and sent as given:
  the service reads them as unset, exactly as the demo relies on.  Until
  issue 9 the SDK refused them ("must be a non-empty string").
* **Role.**  A role is a catalog role (§2.1.1: GuoXiaoyuan, XiaoHuan; COCO)
  or a customer's own avatar id ("形象id填入role", §二), which the SDK cannot
  know: an unknown name is never refused here; the service refuses it (1001).
  :func:`make_config` does refuse a *near miss* of a catalog name (a case slip
  such as ``guoxiaoyuan`` or ``GuoXiaoYuan``, or one or two typos) with "did
  you mean 'GuoXiaoyuan'?", because the catalog lists exact names; pass
  ``strict_role=False`` for an avatar whose id really is that close.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import (
    Any,
    Final,
    Literal,
    NoReturn,
    TypeAlias,
    TypedDict,
    Union,
    Unpack,
    get_args,
    get_origin,
)
from urllib.parse import urlsplit

import msgspec

from avatarkit._schema_errors import (
    JSON_DECODE_ERRORS,
    decode_failure,
    field_problem,
    printable,
    reportable,
    unicode_problem,
    value_at,
)
from avatarkit.errors import ValidationError
from avatarkit.tta.catalogs import near_miss_role

__all__ = [
    "CODECS",
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "INPUT_MODES",
    "KNOWN_ROLES_2D",
    "KNOWN_ROLES_3D",
    "KNOWN_VOICES",
    "Codec",
    "ConfigFields",
    "InputMode",
    "Logo",
    "LogoFields",
    "RoleConf",
    "RoleConfFields",
    "RtcConfig",
    "RtcFields",
    "RtmpConfig",
    "RtmpFields",
    "SessionConfig",
    "VideoConfig",
    "VideoFields",
    "check_role_name",
    "decode_config",
    "encode_config",
    "make_config",
]

#: Voices listed in doc 001 §2.1.1 (BV009_DPE_ParaTaco is the service's default); a
#: cloned voice's id works too, so these are hints, not a whitelist.
KNOWN_VOICES: Final = (
    "BV405",
    "BV418",
    "BV005_ParaTaco",
    "BV007_ParaTaco",
    "BV057_ParaTaco",
    "BV009_DPE_ParaTaco",
    "BV700",
    "BV008_DPE_ParaTaco",
    "BV419",
)
#: Stock 2D roles (doc 001 §2.1.1); a trained digime's conf_name is also a valid role.
KNOWN_ROLES_2D: Final = ("GuoXiaoyuan", "XiaoHuan")
#: Stock 3D roles (doc 001 §2.1.1); the 3D endpoint is used for them.
KNOWN_ROLES_3D: Final = ("COCO",)
#: ``codec`` values: offline production formats; webm and mov carry an alpha channel.
CODECS: Final = ("mp4", "webm", "mov")
#: ``input_mode`` values: ``text`` (the service's default) or ``audio``.
INPUT_MODES: Final = ("text", "audio")
#: Video width in pixels when neither side is given (1080×1920 portrait, doc 001 §2.1.1).
DEFAULT_WIDTH: Final = 1080
#: Video height in pixels when neither side is given.
DEFAULT_HEIGHT: Final = 1920

_MIN_SIDE: Final = 240
_MAX_SIDE: Final = 1920
_MASK: Final = "***"

# Inclusive numeric bounds (None: unbounded above).  Ranges that depend on the
# resolved resolution (role_width, role_top_offset) are checked in _check_role_conf.
_RANGES: Final[dict[str, tuple[float, float | None]]] = {
    "video.video_width": (_MIN_SIDE, _MAX_SIDE),
    "video.video_height": (_MIN_SIDE, _MAX_SIDE),
    "video.I_frame_interval": (25, 250),
    "logo.logo_top_offset": (0, None),
    "logo.logo_left_offset": (0, None),
    "role_conf.speed": (0.25, 3),
    "role_conf.pitch": (0, 10),
    "role_conf.volume": (0, 3),
}


class Logo(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Logo overlay; the doc requires every field once ``logo`` is present (doc 001 §2.1.1).

    Every field is required (no defaults); sizes and offsets are integers in pixels
    (a bool is refused).
    """

    logo_url: str
    """URL of the logo image, http:// or https://.  ``""`` makes the service ignore the
    logo; the sizes may then be 0 (but not negative)."""
    logo_top_offset: int
    """Distance of the logo from the top edge of the video, in pixels; >= 0."""
    logo_left_offset: int
    """Distance of the logo from the left edge of the video, in pixels; >= 0."""
    logo_width: int
    """Logo width in pixels; > 0 when ``logo_url`` is set (>= 0 when it is ``""``)."""
    logo_height: int
    """Logo height in pixels; > 0 when ``logo_url`` is set (>= 0 when it is ``""``)."""


class VideoConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Output video: resolution, I-frame interval, subtitles (offline only).

    Every field defaults to ``None``: left out of the JSON, so the service's default
    applies.  Doc 001 §2.1.1 names 1080p, 720p and 480p (landscape: the sides swapped);
    the SDK checks only the range of each side.
    """

    video_width: int | None = None
    """Frame width in pixels, 240..1920.  Not given: 1080 if the height is not given
    either, else ``round(video_height * 9 / 16)`` (16:9 portrait); the derived width must
    also fall in 240..1920.  :meth:`SessionConfig.checked` fills it in."""
    video_height: int | None = None
    """Frame height in pixels, 240..1920.  Not given: 1920 if the width is not given
    either; else ``round(video_width * 9 / 16)`` (16:9 landscape) when the width is over
    1080, ``round(video_width * 16 / 9)`` (16:9 portrait) otherwise; the derived height
    must also fall in 240..1920.  :meth:`SessionConfig.checked` fills it in."""
    I_frame_interval: int | None = None
    """Frames from one I-frame to the next, 25..250; the service's default is 250
    (doc 001 §2.2.2)."""
    subtitle_control: bool | None = None
    """True asks for subtitles and their events (``subtitle_on``/``subtitle_off``,
    ``all_subtitles``).  Offline production only (doc 001 §2.2.4.1): True needs ``codec``
    and cannot be combined with ``rtc`` or ``rtmp``."""


class RoleConf(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Avatar voice, look, placement and speech prosody (doc 001 §2.1.1).

    Every field defaults to ``None``: left out of the JSON, so the service's default
    applies.  Sizes and offsets are integers in pixels of the video frame; the
    prosody fields are numbers (int or float; NaN is refused).
    """

    voice_type: str | None = None
    """Voice id: one of :data:`KNOWN_VOICES` (service default ``BV009_DPE_ParaTaco``) or a
    cloned voice's id.  Any string is accepted; ``""`` means "not given"."""
    pose_type: str | None = None
    """The avatar's pose; valid values depend on the role (doc 001 §2.1.2), so any string
    is accepted; ``""`` means "not given"."""
    clothes_type: str | None = None
    """The avatar's clothes; valid values depend on the role (doc 001 §2.1.2), so any
    string is accepted; ``""`` means "not given"."""
    role_width: int | None = None
    """Width of the avatar in pixels, 100..``video_width`` (the resolved width); the
    height follows from it.  Too wide and the lower body may leave the frame."""
    role_left_offset: int | None = None
    """Distance of the avatar from the left edge, in pixels; any integer (the service
    centres the avatar by default, and lets it leave the frame, so this is not checked)."""
    role_top_offset: int | None = None
    """Distance of the avatar from the top edge, in pixels; ``0 <= v < video_height``
    (the resolved height)."""
    speed: float | None = None
    """Speaking rate, 0.25..3; the service's default is 1.0."""
    pitch: float | None = None
    """Speaking pitch, 0..10; the service's default is 1.0."""
    volume: float | None = None
    """Speaking volume, 0..3; the service's default is 1.0."""


class RtcConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """ByteRTC room the stream is pushed to (real-time interaction, doc 001 §4).

    All four fields are required, each a non-empty string (not only whitespace).
    ``rtc`` cannot be combined with ``codec``.  ``repr`` and errors never show the token.
    """

    app_id: str
    """The ByteRTC application id."""
    room: str
    """The ByteRTC room id the avatar joins."""
    uid: str
    """The avatar's user id in the room; viewers must join with a different uid."""
    token: str
    """The ByteRTC token generated for ``room`` and ``uid``; it must stay valid for the
    whole interaction."""

    def __repr__(self) -> str:
        # The token grants access to the room: never show it.
        return (
            f"RtcConfig(app_id={self.app_id!r}, room={self.room!r}, uid={self.uid!r}, token='***')"
        )


class RtmpConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RTMP address the stream is pushed to (live streaming, doc 001 §4; about 5 s latency).

    Both fields are required.  ``rtmp`` cannot be combined with ``codec``.
    """

    addr: str
    """The push address, an ``rtmp://`` or ``rtmps://`` URL with a host.  Its path usually
    holds the stream key, so ``repr`` and errors show only the scheme and host."""
    live_id: str
    """The RTMP live id; a non-empty string (not only whitespace)."""

    def __repr__(self) -> str:
        # The path of an RTMP address usually carries the stream key.
        return f"RtmpConfig(addr={_redact_addr(self.addr)!r}, live_id={self.live_id!r})"


class SessionConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The whole open-session config; ``None`` fields are left out of the JSON.

    Fields as in doc 001 §2.1.1 (SPEC §2.3).  Every field but ``role`` defaults to
    ``None``: not sent, so the service's default applies.  Constructing one checks
    nothing; :meth:`checked` (or :func:`make_config`) applies the rules below.
    The three scenarios: offline production (``codec``), real-time interaction (``rtc``)
    and live streaming (``rtmp``); ``codec`` excludes the other two.
    """

    role: str
    """Required, non-empty: a catalog role (2D ``GuoXiaoyuan``, ``XiaoHuan``; 3D ``COCO``)
    or your own avatar's id (a trained digime's conf_name).  Unknown names are sent; only
    :func:`make_config` (``strict_role``) refuses a near miss of a catalog name."""
    uid: str | None = None
    """The caller's user id, any string (the doc's demo sends ``avatar_py_demo``)."""
    appid: str | None = None
    """The account id (doc 001 requires it); ``tta.open`` fills in the session's appid
    when it is ``None``."""
    background: str | None = None
    """URL (http:// or https://) of a background image (png/jpg/jpeg/bmp…) or video
    (flv/mp4/mov/avi).  ``None`` or ``""``: the default background."""
    logo: Logo | None = None
    """A logo overlay; see :class:`Logo`."""
    video: VideoConfig | None = None
    """Resolution, I-frame interval and subtitles; ``None``: 1080×1920 portrait.
    :meth:`checked` returns it with both sides filled in."""
    role_conf: RoleConf | None = None
    """Voice, look, placement and prosody of the avatar; see :class:`RoleConf`."""
    input_mode: str | None = None
    """``"text"`` (the service's default: chats are text or SSML) or ``"audio"`` (the
    avatar speaks audio: ``<audio/>`` chats or ``|CTL|08|`` frames)."""
    codec: str | None = None
    """Offline production: the file format, ``"mp4"``, ``"webm"`` or ``"mov"`` (webm and
    mov carry alpha).  Cannot be combined with ``rtc`` or ``rtmp``."""
    output_url: bool | None = None
    """True: the produced video is delivered as a ``video_url`` event
    (:class:`~avatarkit.tta.events.VideoUrl`) instead of ``|DAT|03|``/``|DAT|04|`` bytes."""
    rtc: RtcConfig | None = None
    """Push the stream to a ByteRTC room (real-time interaction, under 1 s latency); see
    :class:`RtcConfig`."""
    rtmp: RtmpConfig | None = None
    """Push the stream to an RTMP address (live streaming, about 5 s latency); see
    :class:`RtmpConfig`."""

    @property
    def resolution(self) -> tuple[int, int]:
        """``(width, height)`` after the doc's derivation rules; not validated."""
        width, height, _ = _derive(self.video)
        return width, height

    def checked(self) -> SessionConfig:
        """Validate every rule; return a copy with the video size filled in.

        Checks the runtime type of every field (the Struct may have been built by
        hand), then the rules of each field and the scenario rules.  The role is not
        compared with the catalog (see :func:`make_config`).

        Raises:
            ValidationError: at the first violation: a required field missing, a field of
                the wrong type (a nested part given as a dict instead of its Struct, a bool
                where a number belongs, a string with a lone surrogate) or a rule broken.
                It names the dotted field, the value (secrets masked) and the rule.
        """
        _check_types(self, "")
        _check_rules(self)
        width, height = self.resolution
        video = self.video or VideoConfig()
        video = msgspec.structs.replace(video, video_width=width, video_height=height)
        return msgspec.structs.replace(self, video=video)


# --- the same fields as keyword arguments (``tta.open(**fields)``), for type checkers ----
# tests/test_config.py checks that these match the Structs above, key for key.

Codec: TypeAlias = Literal["mp4", "webm", "mov"]
"""``codec`` values, for type checkers: offline production formats (webm and mov carry alpha)."""
InputMode: TypeAlias = Literal["text", "audio"]
"""``input_mode`` values, for type checkers: ``text`` (default) or ``audio``."""


class LogoFields(TypedDict):
    """:class:`Logo`'s fields as a dict (every key required): the ``logo=`` keyword."""

    logo_url: str
    logo_top_offset: int
    logo_left_offset: int
    logo_width: int
    logo_height: int


class VideoFields(TypedDict, total=False):
    """:class:`VideoConfig`'s fields as a dict (every key optional): the ``video=`` keyword."""

    video_width: int | None
    video_height: int | None
    I_frame_interval: int | None
    subtitle_control: bool | None


class RoleConfFields(TypedDict, total=False):
    """:class:`RoleConf`'s fields as a dict (every key optional): the ``role_conf=`` keyword."""

    voice_type: str | None
    pose_type: str | None
    clothes_type: str | None
    role_width: int | None
    role_left_offset: int | None
    role_top_offset: int | None
    speed: float | None
    pitch: float | None
    volume: float | None


class RtcFields(TypedDict):
    """:class:`RtcConfig`'s fields as a dict (every key required): the ``rtc=`` keyword."""

    app_id: str
    room: str
    uid: str
    token: str


class RtmpFields(TypedDict):
    """:class:`RtmpConfig`'s fields as a dict (every key required): the ``rtmp=`` keyword."""

    addr: str
    live_id: str


class ConfigFields(TypedDict, total=False):
    """:class:`SessionConfig`'s fields but ``role``, as ``tta.open``/``make_config`` keywords;
    nested parts as Structs or dicts."""

    uid: str | None
    appid: str | None
    background: str | None
    logo: Logo | LogoFields | None
    video: VideoConfig | VideoFields | None
    role_conf: RoleConf | RoleConfFields | None
    input_mode: InputMode | None
    codec: Codec | None
    output_url: bool | None
    rtc: RtcConfig | RtcFields | None
    rtmp: RtmpConfig | RtmpFields | None


# --- field types (users construct Structs directly, so types are not a given) ----


def _field_kind(annotation: Any) -> Any:
    """The non-None type of ``X | None`` (or ``X`` itself)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


_STRUCTS: Final = (Logo, VideoConfig, RoleConf, RtcConfig, RtmpConfig, SessionConfig)
# Per Struct: (field name, expected type, required).
_SCHEMA: Final[dict[type, tuple[tuple[str, Any, bool], ...]]] = {
    cls: tuple((f.name, _field_kind(f.type), f.required) for f in msgspec.structs.fields(cls))
    for cls in _STRUCTS
}
# Nested part name -> its Struct, for make_config's unknown-key check.
_NESTED: Final[dict[str, type[msgspec.Struct]]] = {
    name: kind
    for name, kind, _ in _SCHEMA[SessionConfig]
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct)
}


def _type_error(kind: Any, value: Any) -> str | None:
    """The rule ``value`` breaks for ``kind``, or None when it fits."""
    if kind is bool:
        return None if isinstance(value, bool) else "must be a boolean"
    if kind is int:
        # bool is an int subclass, but true/false is never a size.
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be an integer"
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if kind is str:
        # A lone surrogate passes msgspec's checks but fails its encoder (encode_config).
        return unicode_problem(value) if isinstance(value, str) else "must be a string"
    if isinstance(value, kind):
        return None
    return f"must be a {kind.__name__} (make_config accepts dicts)"


def _check_types(obj: msgspec.Struct, prefix: str) -> None:
    for name, kind, required in _SCHEMA[type(obj)]:
        path = f"{prefix}{name}"
        value = getattr(obj, name)
        if value is None:
            if required:
                _fail(path, value, "is required")
            continue
        problem = _type_error(kind, value)
        if problem is not None:
            _fail(path, value, problem)
        if isinstance(value, msgspec.Struct):
            _check_types(value, f"{path}.")


# --- the rules -----------------------------------------------------------------


def _shown(path: str, value: Any) -> Any:
    """``value`` as it may appear in an error: secrets masked."""
    if path == "rtc.token":
        return _MASK
    if path == "rtmp.addr" and isinstance(value, str):
        return _redact_addr(value)
    return value


def _fail(path: str, value: Any, rule: str) -> NoReturn:
    raise ValidationError(printable(path), reportable(_shown(path, value)), rule)


def _redact_addr(addr: str) -> str:
    """Scheme and host of an RTMP address; its path usually holds the stream key."""
    try:
        parts = urlsplit(addr)
        host, port = parts.hostname, parts.port
    except ValueError:
        return _MASK
    if not parts.scheme or not host:
        return _MASK
    netloc = host if port is None else f"{host}:{port}"
    hidden = parts.path.strip("/") or parts.query or parts.fragment or parts.username
    return f"{parts.scheme}://{netloc}" + (f"/{_MASK}" if hidden else "")


def _is_url(value: str, schemes: tuple[str, ...]) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme.lower() in schemes and bool(parts.hostname)
    except ValueError:
        return False


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _check_range(path: str, value: float | None) -> None:
    if value is None:
        return
    low, high = _RANGES[path]
    # Written as "not (within)" so that NaN fails too.
    if high is None:
        if not value >= low:
            _fail(path, value, f"must be >= {_fmt(low)}")
    elif not low <= value <= high:
        _fail(path, value, f"must be between {_fmt(low)} and {_fmt(high)}")


def _check_nonempty(path: str, value: str | None) -> None:
    if value is not None and not value.strip():
        _fail(path, value, "must be a non-empty string")


def _derive(video: VideoConfig | None) -> tuple[int, int, tuple[str, str] | None]:
    """Resolved ``(width, height, derived)``; ``derived`` is (side, how) when one side was."""
    width = video.video_width if video else None
    height = video.video_height if video else None
    if width is None:
        if height is None:
            return DEFAULT_WIDTH, DEFAULT_HEIGHT, None
        how = f"video_height={height} at 16:9 portrait"
        return round(height * 9 / 16), height, ("video_width", how)
    if height is None:
        if width > DEFAULT_WIDTH:
            how = f"video_width={width} at 16:9 landscape"
            return width, round(width * 9 / 16), ("video_height", how)
        how = f"video_width={width} at 16:9 portrait"
        return width, round(width * 16 / 9), ("video_height", how)
    return width, height, None


def _check_video(video: VideoConfig | None) -> tuple[int, int]:
    if video is not None:
        _check_range("video.video_width", video.video_width)
        _check_range("video.video_height", video.video_height)
        _check_range("video.I_frame_interval", video.I_frame_interval)
    width, height, derived = _derive(video)
    if derived is not None:
        # The given side is in range, yet the derived one can still fall outside it.
        side, how = derived
        value = width if side == "video_width" else height
        if not _MIN_SIDE <= value <= _MAX_SIDE:
            _fail(
                f"video.{side}",
                value,
                f"derived from {how}; must be between {_MIN_SIDE} and {_MAX_SIDE}"
                f" — set {side} explicitly",
            )
    return width, height


def _check_logo(logo: Logo) -> None:
    _check_range("logo.logo_top_offset", logo.logo_top_offset)
    _check_range("logo.logo_left_offset", logo.logo_left_offset)
    if not logo.logo_url:
        # An empty logo_url makes the service ignore the logo; sizes may be 0.
        for name in ("logo_width", "logo_height"):
            if getattr(logo, name) < 0:
                _fail(f"logo.{name}", getattr(logo, name), "must be >= 0")
        return
    if not _is_url(logo.logo_url, ("http", "https")):
        _fail("logo.logo_url", logo.logo_url, "must be an http:// or https:// URL")
    for name in ("logo_width", "logo_height"):
        if getattr(logo, name) <= 0:
            _fail(f"logo.{name}", getattr(logo, name), "must be > 0 when logo_url is set")


def _check_role_conf(conf: RoleConf, width: int, height: int) -> None:
    # voice_type, pose_type and clothes_type: any string, "" meaning "not given"
    # (SPEC §6; the demo of doc 001 §5.1.1 sends "pose_type": "", "clothes_type": "").
    if conf.role_width is not None and not 100 <= conf.role_width <= width:
        _fail(
            "role_conf.role_width",
            conf.role_width,
            f"must be between 100 and video_width ({width})",
        )
    # role_left_offset may be any integer: the doc lets the avatar leave the frame.
    top = conf.role_top_offset
    if top is not None and not 0 <= top < height:
        _fail("role_conf.role_top_offset", top, f"must be >= 0 and < video_height ({height})")
    for name in ("speed", "pitch", "volume"):
        _check_range(f"role_conf.{name}", getattr(conf, name))


def _check_scenario(cfg: SessionConfig) -> None:
    """Offline production (codec) vs real-time (rtc) vs live (rtmp)."""
    if cfg.input_mode is not None and cfg.input_mode not in INPUT_MODES:
        _fail("input_mode", cfg.input_mode, "must be one of 'text', 'audio'")
    streaming = cfg.rtc is not None or cfg.rtmp is not None
    if cfg.codec is not None:
        if cfg.codec not in CODECS:
            _fail("codec", cfg.codec, "must be one of 'mp4', 'webm', 'mov'")
        if streaming:
            _fail("codec", cfg.codec, "offline production (codec) cannot be combined with rtc/rtmp")
    if cfg.video is not None and cfg.video.subtitle_control:
        # Doc 001 §2.2.4.1: subtitles only in the video-creation scenario.
        if streaming:
            _fail(
                "video.subtitle_control",
                True,
                "subtitles are offline-production only; cannot be combined with rtc/rtmp",
            )
        if cfg.codec is None:
            _fail(
                "video.subtitle_control", True, "subtitles are offline-production only; set codec"
            )
    if cfg.rtc is not None:
        for name in ("app_id", "room", "uid", "token"):
            _check_nonempty(f"rtc.{name}", getattr(cfg.rtc, name))
    if cfg.rtmp is not None:
        if not _is_url(cfg.rtmp.addr, ("rtmp", "rtmps")):
            _fail("rtmp.addr", cfg.rtmp.addr, "must be an rtmp:// or rtmps:// URL")
        _check_nonempty("rtmp.live_id", cfg.rtmp.live_id)


def _check_rules(cfg: SessionConfig) -> None:
    _check_nonempty("role", cfg.role)
    if cfg.background and not _is_url(cfg.background, ("http", "https")):
        _fail("background", cfg.background, "must be an http:// or https:// URL")
    if cfg.logo is not None:
        _check_logo(cfg.logo)
    width, height = _check_video(cfg.video)
    if cfg.role_conf is not None:
        _check_role_conf(cfg.role_conf, width, height)
    _check_scenario(cfg)


# --- building, encoding, decoding ---------------------------------------------------

_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(SessionConfig)


def _from_msgspec(error: msgspec.ValidationError, source: Any) -> ValidationError:
    """Turn msgspec's "<rule> - at `$.a.b`" into a ValidationError on ``a.b``."""
    problem = field_problem(str(error))
    path = problem.path.replace("[", ".").replace("]", "")
    if not path:
        # The whole document is wrong; it may hold secrets, so only its type is named.
        return ValidationError("config", None, f"must be a JSON object: {problem.rule}")
    value = None if problem.missing else value_at(source, path)
    return ValidationError(path, reportable(_shown(path, value)), problem.rule)


def _reject_unknown(fields: Mapping[str, Any], struct: type[msgspec.Struct], prefix: str) -> None:
    """make_config is for humans: a misspelt key is an error, not silently dropped.

    Also refuses strings with lone surrogates: msgspec.convert UTF-8 encodes a
    str it finds where another type belongs, and fails with UnicodeEncodeError.
    """
    known = {name for name, _, _ in _SCHEMA[struct]}
    for key, value in fields.items():
        if key not in known:
            _fail(f"{prefix}{key}", value, "unknown config field")
        problem = unicode_problem(value) if isinstance(value, str) else None
        if problem is not None:
            _fail(f"{prefix}{key}", value, problem)
        nested = _NESTED.get(key) if not prefix else None
        if nested is not None and isinstance(value, Mapping):
            _reject_unknown(value, nested, f"{key}.")


def check_role_name(role: str) -> None:
    """Refuse a near miss of a catalog role (``guoxiaoyuan``): "did you mean …?".

    Unknown names pass: a trained avatar's conf_name is a valid role that only
    the service knows (doc 001 §二).

    Raises:
        ValidationError: ``role`` differs from a catalog role only in case or by one or
            two typos (one for ``COCO``); the error names the catalog role.
    """
    close = near_miss_role(role)
    if close is not None:
        _fail(
            "role",
            role,
            f"is not a catalog role; did you mean {close!r}? (doc 001 §2.1.1 lists exact "
            "names; pass strict_role=False if this is your own avatar's id)",
        )


def make_config(
    role: str | None = None,
    *,
    config: SessionConfig | Mapping[str, object] | None = None,
    strict_role: bool = True,
    **fields: Unpack[ConfigFields],
) -> SessionConfig:
    """Build and check a config from keyword fields (nested parts as dicts or Structs).

    Fields given here replace the same top-level fields of ``config`` whole;
    nested parts are not merged key by key.  ``strict_role`` (default True)
    refuses near misses of catalog roles (:func:`check_role_name`); unknown
    role names are always accepted.  ``None`` values mean "not set".  Returns the
    config as :meth:`SessionConfig.checked` does, video size filled in.

    Raises:
        ValidationError: ``config`` is neither a SessionConfig nor a mapping; a key is
            not a config field (nested keys too); ``role`` is missing; a field has the
            wrong type or holds a lone surrogate; a rule is broken (see
            :meth:`SessionConfig.checked`); or, with ``strict_role``, the role is a near
            miss of a catalog role.  It names the field, the value (secrets masked) and
            the rule.
    """
    merged: dict[str, Any]
    if config is None:
        merged = {}
    elif isinstance(config, SessionConfig):
        merged = {name: getattr(config, name) for name, _, _ in _SCHEMA[SessionConfig]}
    elif isinstance(config, Mapping):
        merged = dict(config)
    else:
        raise ValidationError(
            "config", type(config).__name__, "must be a SessionConfig or a mapping"
        )
    merged.update(fields)
    if role is not None:
        merged["role"] = role
    _reject_unknown(merged, SessionConfig, "")
    # None means "not set": drop it so msgspec reports a missing role by name.
    merged = {key: value for key, value in merged.items() if value is not None}
    try:
        cfg = msgspec.convert(merged, SessionConfig, strict=True)
    except msgspec.ValidationError as error:
        raise _from_msgspec(error, merged) from None
    except (RecursionError, UnicodeEncodeError) as error:  # deeper than the checks above
        raise ValidationError("config", None, f"cannot be read: {decode_failure(error)}") from None
    checked = cfg.checked()
    if strict_role:
        check_role_name(checked.role)
    return checked


_ENCODE_ERRORS: Final = (TypeError, ValueError, OverflowError, RecursionError)


def encode_config(cfg: SessionConfig) -> bytes:
    """Compact JSON for the ``|CTL|00|`` frame; ``None`` fields are omitted.

    ``cfg`` is not checked (see :meth:`SessionConfig.checked`), but one that
    cannot be encoded is a ValidationError naming the field that stops it.

    Raises:
        ValidationError: ``cfg`` is not a SessionConfig, or a field cannot be encoded
            (a wrong type, a lone surrogate).
    """
    if not isinstance(cfg, SessionConfig):
        raise ValidationError("config", type(cfg).__name__, "must be a SessionConfig")
    try:
        return _ENCODER.encode(cfg)
    except _ENCODE_ERRORS as error:
        why = decode_failure(error)
    # Only now look for the field (a wrong type, a lone surrogate): this raises naming it.
    _check_types(cfg, "")
    raise ValidationError("config", None, f"cannot be encoded: {why}")


def decode_config(data: bytes | str) -> SessionConfig:
    """Parse and check a config as a client sent it; unknown JSON fields are ignored.

    Raises:
        ValidationError: ``data`` is not bytes, bytearray, memoryview or str; it is not a
            JSON object (the input itself is never quoted: it may hold the rtc token); a
            field is missing or has the wrong type; or a rule is broken
            (:meth:`SessionConfig.checked`).
    """
    if not isinstance(data, bytes | bytearray | memoryview | str):
        raise ValidationError("config", type(data).__name__, "must be JSON text (bytes or str)")
    try:
        cfg = _DECODER.decode(data)
    except msgspec.ValidationError as error:
        try:
            source: Any = msgspec.json.decode(data)
        except JSON_DECODE_ERRORS:
            source = None
        raise _from_msgspec(error, source) from None
    except JSON_DECODE_ERRORS as error:
        # The raw text may hold the rtc token: report the reason, not the input.
        why = decode_failure(error)
        raise ValidationError("config", None, f"must be a JSON object: {why}") from None
    return cfg.checked()
