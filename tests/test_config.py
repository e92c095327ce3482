"""Tests for avatarkit.tta.config: the TTA open-session config rules (SPEC §2.3)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatarkit.errors import ValidationError
from avatarkit.tta.config import (
    CODECS,
    INPUT_MODES,
    KNOWN_VOICES,
    Logo,
    RoleConf,
    RtcConfig,
    RtmpConfig,
    SessionConfig,
    VideoConfig,
    decode_config,
    encode_config,
    make_config,
)

TOKEN = "rtc-secret-token-7f3a9"
RTC = {"app_id": "app", "room": "room1", "uid": "u1", "token": TOKEN}
RTMP = {"addr": "rtmp://live.example.com/app/streamkey-123", "live_id": "live1"}
LOGO = {
    "logo_url": "https://example.com/logo.png",
    "logo_top_offset": 0,
    "logo_left_offset": 0,
    "logo_width": 10,
    "logo_height": 10,
}


def fails(**fields: Any) -> ValidationError:
    """The ValidationError make_config("COCO", **fields) raises."""
    fields.setdefault("role", "COCO")
    with pytest.raises(ValidationError) as info:
        make_config(**fields)
    return info.value


def check_fails(cfg: SessionConfig) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        cfg.checked()
    return info.value


def decode_fails(data: bytes | str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        decode_config(data)
    return info.value


def assert_error(err: ValidationError, field: str, value: Any, *words: str) -> None:
    assert err.field == field
    assert err.value == value
    for word in words:
        assert word in err.rule, (word, err.rule)


# --- rule 1: role ------------------------------------------------------------------


@pytest.mark.parametrize("role", ["", "   "])
def test_role_must_be_non_empty(role: str) -> None:
    assert_error(fails(role=role), "role", role, "non-empty")


@pytest.mark.parametrize(
    ("role", "meant"),
    [
        ("guoxiaoyuan", "GuoXiaoyuan"),
        ("GuoXiaoYuan", "GuoXiaoyuan"),
        ("Guoxiaoyuan", "GuoXiaoyuan"),
        ("GUOXIAOYUAN", "GuoXiaoyuan"),
        ("GuoXiaoyaun", "GuoXiaoyuan"),  # a transposition
        ("GuoXiayuan", "GuoXiaoyuan"),  # a letter missing
        ("xiaohuan", "XiaoHuan"),
        ("XiaoHuang", "XiaoHuan"),
        ("coco", "COCO"),
        ("Coco", "COCO"),
    ],
)
def test_near_misses_of_catalog_roles_say_did_you_mean(role: str, meant: str) -> None:
    err = fails(role=role)
    assert_error(err, "role", role, f"did you mean {meant!r}?", "strict_role=False")
    # the user can insist: their own avatar may really be called that
    assert make_config(role, strict_role=False).role == role


@pytest.mark.parametrize(
    "role", ["GuoXiaoyuan", "XiaoHuan", "COCO", "NoSuchRole", "LiuXuan", "Liu-Xuan", "XiaoYu"]
)
def test_catalog_and_unknown_roles_are_not_refused_before_io(role: str) -> None:
    """Trained avatars' names are unknowable here: only the service refuses them."""
    assert make_config(role).role == role


def test_decode_config_reads_what_was_sent_without_the_near_miss_check() -> None:
    assert decode_config(b'{"role": "guoxiaoyuan"}').role == "guoxiaoyuan"


def test_role_missing_and_wrong_type() -> None:
    assert_error(fails(role=None), "role", None, "missing")
    assert_error(check_fails(SessionConfig(role=5)), "role", 5, "string")  # type: ignore[arg-type]
    assert make_config("my_trained_digime").role == "my_trained_digime"


# --- rule 2: background ------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://x/bg.png", "bg.png", "http://", "javascript:alert(1)"])
def test_background_must_be_http_url(url: str) -> None:
    assert_error(fails(background=url), "background", url, "http://", "https://")


@pytest.mark.parametrize("url", ["", "http://x/bg.mp4", "HTTPS://x/bg.png?sig=1"])
def test_background_accepted(url: str) -> None:
    assert make_config("COCO", background=url).background == url


# --- rule 3: logo ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logo_top_offset", "logo_left_offset"])
def test_logo_offsets_non_negative(name: str) -> None:
    assert make_config("COCO", logo={**LOGO, name: 0}).logo is not None
    assert_error(fails(logo={**LOGO, name: -1}), f"logo.{name}", -1, ">= 0")
    err = fails(logo={**LOGO, "logo_url": "", name: -1})
    assert_error(err, f"logo.{name}", -1, ">= 0")


@pytest.mark.parametrize("name", ["logo_width", "logo_height"])
def test_logo_size_positive_when_url_set(name: str) -> None:
    assert_error(fails(logo={**LOGO, name: 0}), f"logo.{name}", 0, "> 0", "logo_url")
    assert make_config("COCO", logo={**LOGO, name: 1}).logo is not None
    # An empty logo_url means the logo is ignored: 0 is fine, negative is not.
    assert make_config("COCO", logo={**LOGO, "logo_url": "", name: 0}).logo is not None
    assert_error(fails(logo={**LOGO, "logo_url": "", name: -1}), f"logo.{name}", -1, ">= 0")


def test_logo_url_must_be_http() -> None:
    assert_error(fails(logo={**LOGO, "logo_url": "x.png"}), "logo.logo_url", "x.png", "http")


@pytest.mark.parametrize("name", list(LOGO))
def test_logo_every_field_required(name: str) -> None:
    partial = {k: v for k, v in LOGO.items() if k != name}
    assert_error(fails(logo=partial), f"logo.{name}", None, "missing")
    raw = json.dumps({"role": "COCO", "logo": partial})
    assert_error(decode_fails(raw), f"logo.{name}", None, "missing")


def test_logo_constructed_with_none_is_caught() -> None:
    logo = Logo(**{**LOGO, "logo_width": None})  # type: ignore[arg-type]
    assert_error(
        check_fails(SessionConfig(role="x", logo=logo)), "logo.logo_width", None, "required"
    )


# --- rule 4: resolution -------------------------------------------------------------


@pytest.mark.parametrize("side", ["video_width", "video_height"])
@pytest.mark.parametrize(("value", "ok"), [(239, False), (240, True), (1920, True), (1921, False)])
def test_video_side_range(side: str, value: int, ok: bool) -> None:
    video = {"video_width": 720, "video_height": 1280, side: value}
    if ok:
        assert getattr(make_config("COCO", video=video).video, side) == value
    else:
        assert_error(fails(video=video), f"video.{side}", value, "between 240 and 1920")


@pytest.mark.parametrize(
    ("video", "expected"),
    [
        (None, (1080, 1920)),
        ({}, (1080, 1920)),
        ({"video_height": 1280}, (720, 1280)),
        ({"video_width": 720}, (720, 1280)),
        ({"video_width": 1080}, (1080, 1920)),
        ({"video_width": 1920}, (1920, 1080)),
        ({"video_width": 1280}, (1280, 720)),
        ({"video_width": 480, "video_height": 480}, (480, 480)),
    ],
)
def test_resolution_derivation(video: dict[str, int] | None, expected: tuple[int, int]) -> None:
    cfg = make_config("COCO", video=video)
    assert cfg.resolution == expected
    assert cfg.video is not None
    assert (cfg.video.video_width, cfg.video.video_height) == expected
    # Works on unchecked configs too.
    raw = SessionConfig(role="x", video=None if video is None else VideoConfig(**video))  # type: ignore[arg-type]
    assert raw.resolution == expected


@pytest.mark.parametrize(("height", "width"), [(240, 135), (425, 239)])
def test_derived_width_out_of_range(height: int, width: int) -> None:
    err = fails(video={"video_height": height})
    assert_error(err, "video.video_width", width, "derived", f"video_height={height}", "240")
    assert make_config("COCO", video={"video_height": 426}).resolution == (240, 426)


# --- rule 5: I_frame_interval ----------------------------------------------------------


@pytest.mark.parametrize(("value", "ok"), [(24, False), (25, True), (250, True), (251, False)])
def test_i_frame_interval(value: int, ok: bool) -> None:
    if ok:
        cfg = make_config("COCO", video={"I_frame_interval": value})
        assert cfg.video is not None
        assert cfg.video.I_frame_interval == value
    else:
        err = fails(video={"I_frame_interval": value})
        assert_error(err, "video.I_frame_interval", value, "between 25 and 250")


def test_i_frame_interval_not_filled_in() -> None:
    cfg = make_config("COCO")
    assert cfg.video is not None
    assert cfg.video.I_frame_interval is None


# --- rule 6: subtitle_control ---------------------------------------------------------


def test_subtitle_control_offline_only() -> None:
    sub = {"subtitle_control": True}
    assert_error(fails(video=sub), "video.subtitle_control", True, "offline", "codec")
    assert_error(fails(video=sub, rtc=RTC), "video.subtitle_control", True, "rtc/rtmp")
    assert_error(fails(video=sub, rtmp=RTMP), "video.subtitle_control", True, "rtc/rtmp")
    assert make_config("COCO", video=sub, codec="mp4").video is not None
    assert make_config("COCO", video={"subtitle_control": False}, rtc=RTC).rtc is not None
    err = check_fails(SessionConfig(role="x", video=VideoConfig(subtitle_control=1)))  # type: ignore[arg-type]
    assert_error(err, "video.subtitle_control", 1, "boolean")


# --- rule 7: role_conf ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bad", "good", "words"),
    [
        ("speed", [0.24, 3.01, -1], [0.25, 1, 3], "between 0.25 and 3"),
        ("pitch", [-0.01, 10.5], [0, 10, 1.5], "between 0 and 10"),
        ("volume", [-1, 3.001], [0, 3, 2.5], "between 0 and 3"),
    ],
)
def test_role_conf_prosody(name: str, bad: list[float], good: list[float], words: str) -> None:
    for value in good:
        cfg = make_config("COCO", role_conf={name: value})
        assert getattr(cfg.role_conf, name) == value
    for value in bad:
        assert_error(fails(role_conf={name: value}), f"role_conf.{name}", value, words)
    conf = RoleConf(**{name: True})  # type: ignore[arg-type]
    err = check_fails(SessionConfig(role="x", role_conf=conf))
    assert_error(err, f"role_conf.{name}", True, "number")


def test_role_width_bounded_by_resolved_width() -> None:
    video = {"video_width": 720}
    assert_error(fails(role_conf={"role_width": 99}), "role_conf.role_width", 99, "100")
    assert make_config("COCO", video=video, role_conf={"role_width": 100}).role_conf
    assert make_config("COCO", video=video, role_conf={"role_width": 720}).role_conf
    err = fails(video=video, role_conf={"role_width": 721})
    assert_error(err, "role_conf.role_width", 721, "video_width (720)")
    # Default width 1080 applies when no video is given.
    assert_error(fails(role_conf={"role_width": 1081}), "role_conf.role_width", 1081, "1080")


def test_role_top_offset_bounded_by_resolved_height() -> None:
    video = {"video_width": 1920}  # derived height 1080
    assert make_config("COCO", video=video, role_conf={"role_top_offset": 0}).role_conf
    assert make_config("COCO", video=video, role_conf={"role_top_offset": 1079}).role_conf
    err = fails(video=video, role_conf={"role_top_offset": 1080})
    assert_error(err, "role_conf.role_top_offset", 1080, "video_height (1080)")
    assert_error(fails(role_conf={"role_top_offset": -1}), "role_conf.role_top_offset", -1, ">= 0")


@pytest.mark.parametrize("value", [-5000, 0, 5000])
def test_role_left_offset_any_int(value: int) -> None:
    cfg = make_config("COCO", role_conf={"role_left_offset": value})
    assert cfg.role_conf is not None
    assert cfg.role_conf.role_left_offset == value


@pytest.mark.parametrize("name", ["voice_type", "pose_type", "clothes_type"])
def test_role_conf_empty_strings_mean_not_given(name: str) -> None:
    """SPEC §6; doc 001 §5.1.1's demo sends "pose_type": "", "clothes_type": ""."""
    cfg = make_config("COCO", role_conf={name: ""})
    assert cfg.role_conf is not None and getattr(cfg.role_conf, name) == ""
    # passed through as given, the way the demo sends it
    assert json.loads(encode_config(cfg))["role_conf"] == {name: ""}
    assert make_config("COCO", role_conf={name: "S_cloned_voice_1"}).role_conf
    assert_error(fails(role_conf={name: 5}), f"role_conf.{name}", 5, "str")


def test_the_demo_config_of_doc_001_is_accepted() -> None:
    """Doc 001 §5.1.1: the demo's param, with its role placeholder filled in."""
    demo = {
        "uid": "avatar_py_demo",
        "role": "GuoXiaoyuan",
        "codec": "mp4",
        "role_conf": {"pose_type": "", "clothes_type": ""},
        "output_url": True,
    }
    assert make_config(config=demo).role_conf == RoleConf(pose_type="", clothes_type="")
    assert decode_config(json.dumps(demo)).codec == "mp4"
    assert make_config("COCO", background="").background == ""


def test_known_voices_accepted() -> None:
    assert len(KNOWN_VOICES) == 9
    for voice in KNOWN_VOICES:
        assert make_config("COCO", role_conf={"voice_type": voice}).role_conf


# --- rule 8 / 9: input_mode, codec -------------------------------------------------------


def test_input_mode() -> None:
    for mode in INPUT_MODES:
        assert make_config("COCO", input_mode=mode).input_mode == mode
    assert_error(fails(input_mode="video"), "input_mode", "video", "text", "audio")


def test_codec() -> None:
    for codec in CODECS:
        assert make_config("COCO", codec=codec).codec == codec
    assert_error(fails(codec="avi"), "codec", "avi", "mp4", "webm", "mov")
    rule = "offline production (codec) cannot be combined with rtc/rtmp"
    assert_error(fails(codec="mp4", rtc=RTC), "codec", "mp4", rule)
    assert_error(fails(codec="mp4", rtmp=RTMP), "codec", "mp4", rule)


# --- rule 10: rtc / rtmp ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["app_id", "room", "uid", "token"])
def test_rtc_fields_non_empty(name: str) -> None:
    shown = "***" if name == "token" else ""
    assert_error(fails(rtc={**RTC, name: ""}), f"rtc.{name}", shown, "non-empty")
    partial = {k: v for k, v in RTC.items() if k != name}
    err = fails(rtc=partial)
    assert err.field == f"rtc.{name}"
    assert "missing" in err.rule


@pytest.mark.parametrize("addr", ["http://h/live", "rtmp:/h", "live/key", ""])
def test_rtmp_addr_scheme(addr: str) -> None:
    err = fails(rtmp={**RTMP, "addr": addr})
    assert err.field == "rtmp.addr"
    assert "rtmp://" in err.rule
    assert "key" not in str(err.value)


def test_rtmp_accepted_and_live_id() -> None:
    assert make_config("COCO", rtmp={**RTMP, "addr": "rtmps://h:443/k"}).rtmp is not None
    assert_error(fails(rtmp={**RTMP, "live_id": ""}), "rtmp.live_id", "", "non-empty")


def test_rtmp_repr_hides_stream_key() -> None:
    text = repr(RtmpConfig(**RTMP))
    assert "streamkey" not in text
    assert "rtmp://live.example.com" in text


# --- rule 11: output_url, uid, appid, runtime types --------------------------------------


def test_output_url_uid_appid() -> None:
    cfg = make_config("COCO", output_url=True, uid="u", appid="123")
    assert (cfg.output_url, cfg.uid, cfg.appid) == (True, "u", "123")
    assert_error(fails(output_url="yes"), "output_url", "yes", "bool")
    assert_error(fails(uid=5), "uid", 5, "str")
    assert_error(fails(appid=123), "appid", 123, "str")


@pytest.mark.parametrize("bad", [True, 1.0, "720"])
def test_int_fields_reject_bool_float_str(bad: Any) -> None:
    cfg = SessionConfig(role="x", video=VideoConfig(video_width=bad))
    assert_error(check_fails(cfg), "video.video_width", bad, "must be an integer")
    assert fails(video={"video_width": bad}).field == "video.video_width"


def test_nested_part_must_be_struct_when_constructed() -> None:
    cfg = SessionConfig(role="x", video={"video_width": 720})  # type: ignore[arg-type]
    assert_error(check_fails(cfg), "video", {"video_width": 720}, "VideoConfig")


# --- make_config -----------------------------------------------------------------------


def test_make_config_dicts_and_structs_agree() -> None:
    from_dicts = make_config("COCO", video={"video_width": 720}, rtc=RTC, role_conf={"speed": 1})
    from_structs = make_config(
        "COCO",
        video=VideoConfig(video_width=720),
        rtc=RtcConfig(**RTC),
        role_conf=RoleConf(speed=1),
    )
    assert from_dicts == from_structs
    assert isinstance(from_dicts.rtc, RtcConfig)


def test_make_config_merges_onto_config() -> None:
    base = make_config("COCO", input_mode="audio", video={"video_width": 720})
    cfg = make_config(config=base, video={"video_height": 1280})
    assert (cfg.role, cfg.input_mode, cfg.resolution) == ("COCO", "audio", (720, 1280))
    assert make_config("XiaoHuan", config={"role": "COCO", "codec": "webm"}).role == "XiaoHuan"
    assert make_config(config={"role": "COCO", "codec": "webm"}).codec == "webm"


def test_make_config_unknown_fields() -> None:
    assert_error(fails(colour="red"), "colour", "red", "unknown config field")
    assert_error(fails(video={"width": 1}), "video.width", 1, "unknown config field")
    with pytest.raises(ValidationError) as info:
        make_config(config={"role": "x", "bogus": 1})
    assert info.value.field == "bogus"


def test_checked_is_a_copy_and_idempotent() -> None:
    raw = SessionConfig(role="COCO")
    done = raw.checked()
    assert raw.video is None
    assert done.checked() == done


# --- encode / decode -------------------------------------------------------------------


def test_encode_omits_none_and_round_trips() -> None:
    cfg = make_config("COCO", role_conf={"voice_type": "BV700"}, rtc=RTC)
    data = encode_config(cfg)
    assert b"null" not in data
    assert b" " not in data
    assert json.loads(data)["role_conf"] == {"voice_type": "BV700"}
    assert decode_config(data) == cfg
    assert decode_config(data.decode()) == cfg


def test_decode_ignores_unknown_fields() -> None:
    cfg = decode_config(b'{"role": "COCO", "future_field": {"x": 1}, "video": {"new": 1}}')
    assert cfg.role == "COCO"


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (b"{", "config", ["JSON object"]),
        (b"\xff", "config", ["JSON object"]),
        (b"[1, 2]", "config", ["JSON object", "array"]),
        (b'"COCO"', "config", ["JSON object"]),
        (b'{"role": "x", "video": {"video_width": "abc"}}', "video.video_width", ["int"]),
        (b'{"role": "x", "video": 5}', "video", ["object"]),
        (b'{"role": "x", "video": {"video_width": 1.0}}', "video.video_width", ["int"]),
        (b'{"video": {}}', "role", ["missing"]),
        (b'{"role": "x", "video": {"video_width": 100}}', "video.video_width", ["240"]),
    ],
)
def test_decode_errors_name_the_field(data: bytes, field: str, words: list[str]) -> None:
    err = decode_fails(data)
    assert err.field == field
    for word in words:
        assert word in err.rule


def test_decode_wrong_type_value() -> None:
    err = decode_fails(b'{"role": "x", "video": {"video_width": "abc"}}')
    assert_error(err, "video.video_width", "abc", "int")


# --- secrets -----------------------------------------------------------------------------


def test_rtc_token_never_shown() -> None:
    rtc = RtcConfig(**RTC)
    assert TOKEN not in repr(rtc)
    assert "token='***'" in repr(rtc)
    assert TOKEN not in repr(make_config("COCO", rtc=RTC))
    errors = [
        fails(rtc={**RTC, "token": 12345678}),
        fails(rtc=RTC, codec="mp4"),
        fails(rtc=RTC, video={"subtitle_control": True}),
        decode_fails(json.dumps({"role": 1, "rtc": RTC})),
        decode_fails(json.dumps({"role": "x", "rtc": {**RTC, "room": 5}})),
        decode_fails('{"rtc": {"token": "' + TOKEN),
    ]
    for err in errors:
        assert TOKEN not in str(err)
        assert TOKEN not in repr(err.value)
    assert fails(rtc={**RTC, "token": 12345678}).value == "***"


# --- property tests ----------------------------------------------------------------------

_names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12)
_urls = _names.map(lambda s: f"https://cdn.example.com/{s}.png")


@st.composite
def valid_configs(draw: st.DrawFn) -> SessionConfig:
    shape = draw(st.sampled_from(["none", "both", "width", "height"]))
    width = draw(st.integers(240, 1920)) if shape in ("both", "width") else None
    height = draw(st.integers(427, 1920)) if shape in ("both", "height") else None
    scenario = draw(st.sampled_from(["plain", "offline", "rtc", "rtmp"]))
    video = VideoConfig(
        video_width=width,
        video_height=height,
        I_frame_interval=draw(st.none() | st.integers(25, 250)),
        subtitle_control=draw(st.none() | st.booleans()) if scenario == "offline" else None,
    )
    cfg = SessionConfig(
        role=draw(_names), video=video if shape != "none" or draw(st.booleans()) else None
    )
    res_w, res_h = cfg.resolution
    role_conf = RoleConf(
        voice_type=draw(st.none() | st.sampled_from(KNOWN_VOICES)),
        pose_type=draw(st.none() | _names),
        role_width=draw(st.none() | st.integers(100, max(100, res_w))),
        role_left_offset=draw(st.none() | st.integers(-(2**31), 2**31)),
        role_top_offset=draw(st.none() | st.integers(0, res_h - 1)),
        speed=draw(st.none() | st.floats(0.25, 3) | st.integers(1, 3)),
        pitch=draw(st.none() | st.floats(0, 10)),
        volume=draw(st.none() | st.floats(0, 3)),
    )
    logo = Logo(
        logo_url=draw(st.just("") | _urls),
        logo_top_offset=draw(st.integers(0, 2000)),
        logo_left_offset=draw(st.integers(0, 2000)),
        logo_width=draw(st.integers(1, 2000)),
        logo_height=draw(st.integers(1, 2000)),
    )
    return msgspec.structs.replace(
        cfg,
        uid=draw(st.none() | _names),
        appid=draw(st.none() | st.from_regex(r"[0-9]{1,10}", fullmatch=True)),
        background=draw(st.none() | st.just("") | _urls),
        logo=draw(st.none() | st.just(logo)),
        role_conf=draw(st.none() | st.just(role_conf)),
        input_mode=draw(st.none() | st.sampled_from(INPUT_MODES)),
        codec=draw(st.sampled_from(CODECS)) if scenario == "offline" else None,
        output_url=draw(st.none() | st.booleans()),
        rtc=RtcConfig(**RTC) if scenario == "rtc" else None,
        rtmp=RtmpConfig(**RTMP) if scenario == "rtmp" else None,
    )


@settings(max_examples=200, deadline=None)
@given(valid_configs())
def test_valid_configs_check_and_round_trip(cfg: SessionConfig) -> None:
    checked = cfg.checked()
    assert checked.resolution == cfg.resolution
    assert decode_config(encode_config(checked)) == checked
    assert decode_config(encode_config(cfg)) == checked


_FIELD_NAMES = [
    *(f.name for f in msgspec.structs.fields(SessionConfig)),
    *(f.name for f in msgspec.structs.fields(VideoConfig)),
    *(f.name for f in msgspec.structs.fields(RoleConf)),
    *(f.name for f in msgspec.structs.fields(Logo)),
    *(f.name for f in msgspec.structs.fields(RtcConfig)),
    *(f.name for f in msgspec.structs.fields(RtmpConfig)),
]
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["COCO", "mp4", "text", "rtmp://h/k", "https://x/y"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_FIELD_NAMES) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(_FIELD_NAMES) | st.text(max_size=4), _json, max_size=8),
    st.booleans(),
)
def test_decode_arbitrary_json_only_raises_validation_error(
    doc: dict[str, Any], with_role: bool
) -> None:
    if with_role:  # get past the missing-role error to the deeper rules
        doc["role"] = "COCO"
    error: ValidationError | None = None
    try:
        decode_config(json.dumps(doc))
    except ValidationError as exc:  # the only exception allowed
        error = exc
    if error is not None:
        assert error.field
        assert TOKEN not in str(error)


@settings(max_examples=300, deadline=None)
@given(
    st.none() | st.integers(-(2**40), 2**40) | st.integers(0, 2500),
    st.none() | st.integers(-(2**40), 2**40) | st.integers(0, 2500),
)
def test_random_dimensions_check_or_name_video(width: int | None, height: int | None) -> None:
    cfg = SessionConfig(role="COCO", video=VideoConfig(video_width=width, video_height=height))
    error: ValidationError | None = None
    try:
        cfg = cfg.checked()
    except ValidationError as exc:
        error = exc
    if error is not None:
        assert error.field.startswith("video.")
    else:
        w, h = cfg.resolution
        assert 240 <= w <= 1920
        assert 240 <= h <= 1920


# --- foreign exceptions turned into ValidationError (issue 8, 4c/4d) ------------

DEEP = "[" * 100_000 + "]" * 100_000


def _deep_list(depth: int = 100_000) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "data",
    [
        '{"role": "COCO", "extra": ' + DEEP + "}",  # an ignored field, still parsed
        '{"role": "COCO", "extra": ' + "[" * 100_000,
        '{"role": 5, "extra": ' + DEEP + "}",  # a type error first, then the deep source
        DEEP,
    ],
)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_decode_deeply_nested_json(data: str, as_bytes: bool) -> None:
    with pytest.raises(ValidationError) as info:
        decode_config(data.encode() if as_bytes else data)
    assert info.value.field in ("config", "role")


@pytest.mark.parametrize(
    "data", ['{"role": "\ud800"}', '{"role": "COCO", "uid": "a\udc00"}', "\udfff"]
)
def test_decode_str_with_a_lone_surrogate(data: str) -> None:
    with pytest.raises(ValidationError, match="lone surrogate") as info:
        decode_config(data)
    assert info.value.field == "config"


@pytest.mark.parametrize("data", [None, 5, ["{}"], {"role": "COCO"}])
def test_decode_wrong_input_type(data: Any) -> None:
    with pytest.raises(ValidationError) as info:
        decode_config(data)
    assert info.value.field == "config"


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"role": "\ud800"}, "role"),
        ({"uid": "\udc00"}, "uid"),
        ({"background": "https://x/\udc00.png"}, "background"),
        ({"role_conf": {"voice_type": "BV\ud800"}}, "role_conf.voice_type"),
        ({"rtc": {**RTC, "room": "r\udc00"}}, "rtc.room"),
    ],
)
def test_make_config_refuses_lone_surrogates(fields: dict[str, Any], path: str) -> None:
    # They passed every check, then failed in encode_config (UnicodeEncodeError).
    with pytest.raises(ValidationError, match="lone surrogate") as info:
        make_config(**{"role": "COCO", **fields})
    assert info.value.field == path


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"video": {"video_width": 10**5000}}, "video.video_width"),  # repr of it: ValueError
        ({"role_conf": {"role_top_offset": -(10**5000)}}, "role_conf.role_top_offset"),
        ({"logo": _deep_list()}, "logo"),  # repr of it: RecursionError
        ({"role": _deep_list()}, "role"),
        ({"uid": 10**5000}, "uid"),
    ],
)
def test_make_config_unshowable_values(fields: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_config(**{"role": "COCO", **fields})
    assert info.value.field == path
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("cfg", "path"),
    [
        (SessionConfig(role="\ud800"), "role"),
        (
            SessionConfig(
                role="COCO", rtc=RtcConfig(app_id="a", room="r", uid="u", token="\ud800")
            ),
            "rtc.token",
        ),
        (SessionConfig(role=object()), "role"),  # type: ignore[arg-type]
        (SessionConfig(role="COCO", logo={"x": object()}), "logo"),  # type: ignore[arg-type]
    ],
)
def test_encode_unencodable_config_names_the_field(cfg: SessionConfig, path: str) -> None:
    with pytest.raises(ValidationError) as info:
        encode_config(cfg)
    assert info.value.field == path
    if path == "rtc.token":
        assert info.value.value == "***"  # masked, even when it cannot be encoded


def test_encode_needs_a_session_config() -> None:
    with pytest.raises(ValidationError, match="must be a SessionConfig"):
        encode_config({"role": "COCO"})  # type: ignore[arg-type]


# -- the keyword TypedDicts match the Structs (one list of fields, checked) -----------


def test_keyword_typed_dicts_match_the_structs() -> None:
    import typing

    import msgspec

    from avatarkit.tta import config as c

    pairs = [
        (c.LogoFields, c.Logo),
        (c.VideoFields, c.VideoConfig),
        (c.RoleConfFields, c.RoleConf),
        (c.RtcFields, c.RtcConfig),
        (c.RtmpFields, c.RtmpConfig),
    ]
    for fields, struct in pairs:
        names = {f.name for f in msgspec.structs.fields(struct)}
        required = {f.name for f in msgspec.structs.fields(struct) if f.required}
        assert set(fields.__annotations__) == names, struct
        assert set(fields.__required_keys__) == required, struct
    session = {f.name for f in msgspec.structs.fields(c.SessionConfig)} - {"role"}
    assert set(c.ConfigFields.__annotations__) == session
    assert typing.get_args(c.Codec) == c.CODECS
    assert typing.get_args(c.InputMode) == c.INPUT_MODES


def test_session_options_match_the_session_keywords() -> None:
    import inspect

    from avatarkit._session import AvatarSession, SessionOptions

    keywords = {
        name
        for name, p in inspect.signature(AvatarSession).parameters.items()
        if p.kind is p.KEYWORD_ONLY
    }
    # from_env and Emulator.session take credentials and endpoints themselves
    assert set(SessionOptions.__annotations__) == keywords - {
        "endpoints",
        "sami_appkey",
        "sami_token",
    }
