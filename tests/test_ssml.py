"""Tests for avatarkit.tta.ssml: the SSML builder, validator and subtitle styling (SPEC §2.4)."""

from __future__ import annotations

import functools
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatarkit.errors import ValidationError
from avatarkit.tta import frames, ssml
from avatarkit.tta.catalogs import ACTIONS, CAMERA_SCENES, FONTS, POSE_CLOTHES
from avatarkit.tta.ssml import Speak, check_subtitle_style, subtitle, validate

IMG = "https://b-ssl.duitang.com/uploads/item/201804/17/20180417143206_kdpwj.png"
# The doc's multi-track examples use the placeholders url_1/url_2; URLs must be http(s).
URL1 = "https://example.com/1.png"
URL2 = "https://example.com/2.png"
GEO = 'url="https://x.example/a.png" left="1" top="2" width="3" height="4"'


def fails(text: str, rule: str, value: str | None = None, **kwargs: Any) -> ValidationError:
    """validate(text) raises a ValidationError on "ssml" whose rule contains ``rule``."""
    with pytest.raises(ValidationError) as info:
        validate(text, **kwargs)
    err = info.value
    assert err.field == "ssml"
    assert rule in err.rule, err.rule
    if value is not None:
        assert err.value == value
    return err


# --- the doc's own examples ---------------------------------------------------------------

# Two long tags of the multi-track examples, verbatim but for the URL placeholders.
OPEN1 = (
    f"<image mode='opening' track_id='1' url='{URL1}' "
    "left='100' top='100' height='100' width='100' level='1'/>"
)
OPEN2 = (
    f"<image mode='opening' track_id='2' url='{URL2}' "
    "left='200' top='200' height='200' width='200' level='2'/>"
)

DOC_VALID_2D = [
    # §2.1 chat examples
    "今天天气不错",
    '<speak>今天<action type="OK"/>天气真不错</speak>',
    # §2.1.3 single image
    f'<speak><image url="{IMG}" left="500" top="500" width="600" height="600" level="1">'
    "开始下一次测试。这是图片显示范围中的第一句话。显示结束了</image></speak>",
    # §2.1.3 opening/closing (the doc drops the closing </speak>)
    f'<speak>开始<image mode="opening" track_id="1" url="{IMG}" left="200" top="200" '
    'width="600" height="600" level="0"/>下一次测试。3、2、1,开始。这是一个包含图片的文本,'
    '这是图片显示范围中的第一句话。<image mode="closing" track_id="1"/>'
    "这是图片显示范围中的第二句话。显示结束了!</speak>",
    # §2.1.3 the four multi-track examples, comments included
    f"""<speak>
    <image url='{URL1}' left='100' top='100' height='100' width='100' level='1'>
        这是图片内的文本
    </image>
</speak> <!-- 单张图片显示-->""",
    f"""<speak>
    {OPEN1}
        这是图片内的文本
    <image mode='closing' track_id='1'/>
</speak> <!-- 效果等同于第一个-->""",
    f"""<speak>
    {OPEN1}
    {OPEN2}
        这是图片内的文本
    <image mode='closing' track_id='2'/>
    <image mode='closing' track_id='1'/>
</speak> <!-- 多张图片显示-->""",
    f"""<speak>
    {OPEN2}
    <image url='{URL1}' left='100' top='100' height='100' width='100' level='1'>
        这是图片内的文本
    </image>
    <image mode='closing' track_id='2'/>
</speak> <!--混合使用-->""",
    # §2.1.3 video (without the stray "。" after </speak>)
    '<speak>文本一<video url="http://localhost:8000/test_xiaozhao.mp4" left="10" top="20" '
    'width="40" height="80" level="0"/>文本二</speak>',
    # §2.1.2 LISTENING and is_silence
    '<speak><action type="LISTENING" time="3s" /></speak>',
    '<speak><action type="LISTENING" time="3000ms" /></speak>',
    '<speak><action type="OK" is_silence="true" /></speak>',
    # §2.2.4.1 audio mode with a subtitle
    '<speak><audio url="http://xxxx/test.mp3" format="mp3"/>'
    '<subtitle text="今天天气真不错"/></speak>',
    # §2.1 audio drive
    '<audio url="http://xxx.pcm" format="pcm" sample_rate="48000" ac="1"/>',
]

DOC_CAMERA = (
    "那就让我们赶快看看今天有哪些<camera mode='Camera3D' scene='3dCameraFrontFace' "
    "sensor_height='36.0'/>好物,首先给大家介绍的这款手机。<camera mode='Camera3D' "
    "scene='3dCameraFrontHalf' sensor_height='36.0'/>哈喽,直播间的宝宝们,小琦刚跑完5公里,"
    "元气满满的跟大家见面啦,我可是一个很烫很烫的科技发烧友,对智能产品<camera mode='Camera3D' "
    "scene='3dCameraFrontAll' sensor_height='36.0'/>非常懂行的呦。"
)
DOC_BACKGROUND = (
    "<background type='image' url='https://lf3-speech.bytetos.com/obj/speech-tts-external/"
    "ec-live/xiaomi_whole_body.jpeg' transition_effect='shutters' scene_levelmap='0'/>"
    "那就让我们赶快看看今天有哪些好物。"
)
DOC_INVALID = f"""<speak>
    <image url='{URL1}' left='100' top='100' height='100' width='100' level='1'>
        {OPEN2}
        这是图片内的文本
        <image mode='closing' track_id='2'/>
    </image>
</speak> <!--混合使用-->"""


@pytest.mark.parametrize("text", DOC_VALID_2D)
def test_doc_examples_validate(text: str) -> None:
    validate(text)
    validate(text, dimension="2d")


def test_doc_action_example_with_roles() -> None:
    validate('<speak>今天<action type="OK"/>天气真不错</speak>', role="XiaoHuan")
    validate('<speak>今天<action type="15"/>天气真不错</speak>', role="GuoXiaoyuan")


@pytest.mark.parametrize("text", [DOC_CAMERA, DOC_BACKGROUND])
def test_doc_3d_examples_validate(text: str) -> None:
    validate(text, role="COCO")
    validate(text, dimension="3d")
    validate(text)  # dimension unknown: 3D-only tags are not judged


def test_doc_invalid_example_fails() -> None:
    fails(
        DOC_INVALID,
        "must not contain another <image>",
        value='<image mode="opening" track_id="2" …>',
    )


# --- parsing --------------------------------------------------------------------------------


def test_plain_text_and_empty_are_valid() -> None:
    validate("")
    validate("   ")
    validate("Hello, 世界!")
    validate('今天<action type="OK"/>天气')  # bare text with inline tags is wrapped


def test_prolog_namespace_and_comments_are_accepted() -> None:
    validate('<?xml version="1.0" encoding="UTF-8"?>\n<speak>hi</speak>')
    validate("<!-- intro --><speak>hi</speak><!-- outro -->")
    validate('<speak xmlns="http://www.w3.org/2001/10/synthesis"><action type="OK"/></speak>')
    validate("<speak><![CDATA[a < b & c]]></speak>")


def test_root_detection_is_linear_time() -> None:
    # A lazy ".*?" over comments used to backtrack exponentially here.
    start = time.perf_counter()
    validate("<!---->" * 3000 + "x")
    validate(" " * 100_000 + "x")
    fails('<?xml version="1.0"?>' + " " * 100_000 + "<!--" * 3000, "malformed XML")
    assert time.perf_counter() - start < 2


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    validate("<speak>" + "<py>" * 20_000 + "x" + "</py>" * 20_000 + "</speak>")


def test_parse_error_reports_line_and_column() -> None:
    err = fails(
        "<speak>\n  <action type='OK'/>\n  <image></speak>", "malformed XML (mismatched tag)"
    )
    assert "line 3, column 12" in err.rule
    assert err.value == "  <image></speak>"


def test_parse_error_column_is_relative_to_the_users_text() -> None:
    err = fails("a & b", "malformed XML (not well-formed (invalid token))")
    assert "line 1, column 4" in err.rule  # where expat notices: just after the "&"


def test_undefined_entity_is_malformed() -> None:
    fails("<speak>a&nbsp;b</speak>", "undefined entity")


def test_junk_after_root() -> None:
    fails("<speak>a</speak>b", "junk after document element")


@pytest.mark.parametrize(
    "text",
    [
        '<!DOCTYPE speak [<!ENTITY x "boom">]><speak>&x;</speak>',
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        "<speak>&lol2;</speak>",
        '<!DOCTYPE speak SYSTEM "file:///etc/passwd"><speak/>',
        '<speak><!ENTITY x "y"></speak>',
    ],
)
def test_declarations_are_refused_before_parsing(text: str) -> None:
    err = fails(text, "DOCTYPE/ENTITY declarations are not allowed")
    assert err.value.startswith("<!")


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\ud800", "\ufffe"])
def test_characters_xml_cannot_carry(char: str) -> None:
    err = fails(f"<speak>a{char}b</speak>", f"contains U+{ord(char):04X}")
    assert len(err.value) <= 40


def test_non_string_input() -> None:
    with pytest.raises(ValidationError) as info:
        validate(b"<speak/>")  # type: ignore[arg-type]
    assert info.value.field == "ssml"
    assert info.value.value == "bytes"


# --- tags -----------------------------------------------------------------------------------


def test_nested_speak_is_rejected() -> None:
    fails("<speak>a<speak>b</speak></speak>", "<speak> may only be the root", value="<speak>")
    fails("hello <speak>x</speak>", "<speak> may only be the root")


def test_unknown_tags_are_named() -> None:
    err = fails('<speak><phoneme ph="a">x</phoneme></speak>', "unknown tag <phoneme>")
    assert err.value == '<phoneme ph="a">'


@pytest.mark.parametrize(
    "text",
    [
        '<speak><py value="chu2">锄</py>禾</speak>',
        '<speak>以色列<break time="500ms"/>国</speak>',
        '<speak>单词 <speed rate="1.5">rabbit</speed></speak>',
        '<speak><volume level="2" anything="goes">rabbit</volume></speak>',
        "<speak><pitch>rabbit</pitch></speak>",
    ],
)
def test_pronunciation_tags_pass_through(text: str) -> None:
    validate(text, role="GuoXiaoyuan")


def test_pass_through_tag_content_is_still_checked() -> None:
    fails("<speak><speed rate='2'><action/></speed></speak>", "<action> needs a non-empty type")


def test_unknown_attribute_on_known_tag() -> None:
    err = fails('<action type="OK" is_slience="true"/>', "<action> has no attribute 'is_slience'")
    assert "is_silence" in err.rule


def test_first_offending_tag_in_document_order_is_reported() -> None:
    text = f'<speak><action/><image mode="opening" {GEO} level="1"/></speak>'
    fails(text, "<action> needs a non-empty type", value="<action>")
    # An opening never closed is reported where it stands, before later faults.
    text = f'<speak><image mode="opening" track_id="a" {GEO} level="1"/><action/></speak>'
    fails(text, "'a' is opened but never closed")


# --- action ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "rule"),
    [
        ("<action/>", "<action> needs a non-empty type"),
        ('<action type=" "/>', "<action> needs a non-empty type"),
        ('<action type="OK">words</action>', "<action> must be self-closing"),
        ('<action type="LISTENING"/>', "LISTENING needs time"),
        ('<action type="LISTENING" time="3"/>', "time must be a number of seconds"),
        ('<action type="LISTENING" time="3 s"/>', "time must be a number of seconds"),
        ('<action type="LISTENING" time="-3s"/>', "time must be a number of seconds"),
        ('<action type="LISTENING" time="3min"/>', "time must be a number of seconds"),
        ('<action type="LISTENING" time="0s"/>', "time must be > 0 and at most 100 s"),
        ('<action type="LISTENING" time="0ms"/>', "time must be > 0 and at most 100 s"),
        ('<action type="LISTENING" time="100.5s"/>', "time must be > 0 and at most 100 s"),
        ('<action type="LISTENING" time="100001ms"/>', "time must be > 0 and at most 100 s"),
        ('<action type="OK" time="3s"/>', "time is only for LISTENING actions"),
        ('<action type="OK" is_silence="yes"/>', "is_silence must be 'true' or 'false'"),
        ('<action type="OK" is_silence="True"/>', "is_silence must be 'true' or 'false'"),
    ],
)
def test_action_rules(tag: str, rule: str) -> None:
    fails(f"<speak>{tag}</speak>", rule)


@pytest.mark.parametrize("time", ["1s", "100s", "100000ms", "1.5s", "250ms", "0.001s"])
def test_listening_time_forms(time: str) -> None:
    validate(f'<action type="LISTENING" time="{time}"/>', role="XiaoHuan")


def test_action_catalog_per_role() -> None:
    validate('<action type="15"/>', role="GuoXiaoyuan")
    err = fails(
        '<action type="OK"/>', "'OK' is not in GuoXiaoyuan's action library", role="GuoXiaoyuan"
    )
    assert err.value == '<action type="OK">'
    validate('<action type="OK"/><action type="ENDING_BOWING"/>', role="XiaoHuan")
    fails('<action type="15"/>', "not in XiaoHuan's action library", role="XiaoHuan")
    validate('<action type="coco_ok_03_ANI"/>', role="COCO")
    fails('<action type="OK"/>', "not in COCO's action library", role="COCO")
    # Other roles (a trained digime, say) have no published catalog: not checked, and said so.
    assert validate('<action type="whatever"/>', role="MyTwin").unchecked_actions == ("whatever",)
    assert validate('<action type="whatever"/>').actions_checked  # no role: nothing to check


def test_a_skipped_action_check_is_said_plainly(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 9: for a role without a documented library the action check is skipped, loudly."""
    caplog.set_level("WARNING", logger="avatarkit.tta")
    text = '<speak><action type="wave"/>你好<action type="bow"/><action type="wave"/></speak>'
    check = validate(text, role="MyTwin")
    assert (check.role, check.unchecked_actions, check.actions_checked) == (
        "MyTwin",
        ("wave", "bow"),
        False,
    )
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "'MyTwin'" in record.getMessage() and "not checked" in record.getMessage()
    assert "'wave'" in record.getMessage() and "'bow'" in record.getMessage()
    # checked roles and action-free SSML say nothing
    caplog.clear()
    assert validate('<action type="15"/>', role="GuoXiaoyuan").actions_checked
    assert validate("<speak>你好</speak>", role="MyTwin").actions_checked
    assert validate('<action type="LISTENING" time="3s"/>', role="MyTwin").actions_checked
    assert caplog.records == []


def test_action_check_notice_warns_once_per_role(caplog: pytest.LogCaptureFixture) -> None:
    """What a stream keeps: one WARNING per role however often it says()."""
    caplog.set_level("WARNING", logger="avatarkit.tta")
    notice = ssml.ActionCheckNotice()
    for _ in range(3):
        validate('<action type="wave"/>', role="MyTwin", notice=notice)
    validate('<action type="wave"/>', role="OtherTwin", notice=notice)
    assert [r.getMessage().split("'")[1] for r in caplog.records] == ["MyTwin", "OtherTwin"]
    # a fresh notice (a new stream) says it again
    validate('<action type="wave"/>', role="MyTwin", notice=ssml.ActionCheckNotice())
    assert len(caplog.records) == 3


def test_listening_and_is_silence_are_2d_only() -> None:
    fails('<action type="LISTENING" time="3s"/>', "LISTENING is not supported on 3D", role="COCO")
    fails(
        '<action type="coco_ok_03_ANI" is_silence="true"/>',
        "is_silence is not supported on 3D",
        role="COCO",
    )
    fails(
        '<action type="x" is_silence="false"/>', "is_silence is not supported on 3D", dimension="3d"
    )
    validate('<action type="x" is_silence="false"/>', dimension="2d")


# --- image ----------------------------------------------------------------------------------


def image(level: int | str = 1, *, text: str = "文本", **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f'<image {GEO} level="{level}"{extra}>{text}</image>'


def opening(track: str, level: int | str, **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f'<image mode="opening" track_id="{track}" {GEO} level="{level}"{extra}/>'


def closing(track: str) -> str:
    return f'<image mode="closing" track_id="{track}"/>'


@pytest.mark.parametrize("attr", ["url", "left", "top", "width", "height", "level"])
def test_default_image_needs_geometry(attr: str) -> None:
    attrs = {
        "url": "https://x/a.png",
        "left": "1",
        "top": "2",
        "width": "3",
        "height": "4",
        "level": "1",
    }
    del attrs[attr]
    tag = "<image " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + ">t</image>"
    fails(tag, f"<image> needs a non-empty {attr}")


@pytest.mark.parametrize(
    ("attr", "value", "rule"),
    [
        ("url", "url_1", "url must be an http:// or https:// URL"),
        ("url", "ftp://x/a.png", "url must be an http:// or https:// URL"),
        ("url", "http://[::1/a", "url must be an http:// or https:// URL"),
        ("left", "1.5", "left must be an integer"),
        ("top", "+3", "top must be an integer"),
        ("top", "٣", "top must be an integer"),
        ("width", "0", "width must be >= 1"),
        ("height", "-4", "height must be >= 1"),
        ("level", "-1", "level must be >= 0"),
        ("level", "1234567890", "level is out of range"),
    ],
)
def test_image_attribute_values(attr: str, value: str, rule: str) -> None:
    attrs = {
        "url": "https://x/a.png",
        "left": "1",
        "top": "2",
        "width": "3",
        "height": "4",
        "level": "1",
        attr: value,
    }
    tag = "<image " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + ">t</image>"
    fails(tag, rule)


def test_negative_offsets_are_allowed() -> None:
    validate(
        '<image url="https://x/a" left="-10" top="-20" width="5" height="5" level="0">t</image>'
    )


def test_default_image_rules() -> None:
    fails(f'<image {GEO} level="1"/>', "default-mode <image> must wrap the text")
    fails(image(text="  <break/> "), "default-mode <image> must wrap the text")
    fails(image(track_id="1"), "track_id is only for mode 'opening'/'closing'")
    fails(image(mode="Default"), "image mode must be 'default', 'opening' or 'closing'")
    validate(image(mode="default"))
    validate(image(text='a<action type="OK"/>b<break time="1s"/>'))


def test_default_image_must_not_contain_an_image() -> None:
    fails(image(text=f"a{image(2)}"), "must not contain another <image>")
    fails(image(text="a" + closing("1")), "must not contain another <image>")


def test_opening_and_closing_rules() -> None:
    fails(f'<image mode="opening" {GEO} level="1"/>', "<image> needs a non-empty track_id")
    fails(
        f'<image mode="opening" track_id="1" {GEO} level="1">x</image>' + closing("1"),
        "an opening <image> must be self-closing",
    )
    fails(opening("1", 1) + opening("1", 2) + closing("1"), "track_id '1' is already open")
    fails(
        opening("1", 1),
        "track_id '1' is opened but never closed",
        value='<image mode="opening" track_id="1" …>',
    )
    err = fails("a" + closing("9"), "closing track_id '9' matches no open opening")
    assert err.value == '<image mode="closing" track_id="9">'
    fails(opening("1", 1) + closing("1") + closing("1"), "matches no open opening")
    fails(
        opening("1", 1) + '<image mode="closing" track_id="1" level="1"/>',
        "a closing <image> takes only mode and track_id, not level",
    )
    fails(
        opening("1", 1) + '<image mode="closing" track_id="1">x</image>',
        "a closing <image> must be self-closing",
    )
    fails('<image mode="closing"/>', "<image> needs a non-empty track_id")


def test_tracks_may_overlap_and_close_in_any_order() -> None:
    validate(opening("a", 0) + "x" + opening("b", 1) + "y" + closing("a") + "z" + closing("b"))
    # Closing and reopening a track id is fine.
    validate(opening("a", 0) + closing("a") + opening("a", 1) + closing("a"))


def test_one_image_per_level_at_a_time() -> None:
    err = fails(
        opening("1", 1)
        + opening("2", 3)
        + opening("3", 1)
        + closing("1")
        + closing("2")
        + closing("3"),
        "level 1 already shows an image (track '1')",
    )
    assert 'track_id="3"' in err.value
    fails(
        opening("1", 2) + "x" + image(3) + image(2) + closing("1"),
        "level 2 already shows an image (track '1')",
    )


def test_adjacent_images_must_not_share_a_level() -> None:
    fails(image(1) + "text" + image(1), "adjacent images must not share a level (both on level 1)")
    fails(
        opening("1", 0) + closing("1") + opening("2", 0) + closing("2"),
        "adjacent images must not share a level",
    )
    validate(image(1) + image(2) + image(1))
    # Closings do not count as images: the next start is compared with the last start.
    validate(opening("1", 0) + closing("1") + image(1) + opening("2", 0) + closing("2"))


def test_multi_track_is_not_supported_on_3d() -> None:
    fails(
        opening("1", 1) + closing("1"),
        "multi-track images (mode opening/closing) is not supported on 3D",
        role="COCO",
    )
    fails(closing("1"), "not supported on 3D", dimension="3d")
    validate(image(1), role="COCO")


# --- video ----------------------------------------------------------------------------------


def video(level: int) -> str:
    return f'<video {GEO} level="{level}"/>'


def test_video_rules() -> None:
    fails(f'<video {GEO} level="0">x</video>', "<video> must be self-closing")
    fails(
        '<video url="https://x/v.mp4" left="1" top="2" width="3" height="4"/>',
        "<video> needs a non-empty level",
    )
    fails(f'<video {GEO} level="0" mode="opening"/>', "<video> has no attribute 'mode'")
    fails(video(0) + "text" + video(0), "adjacent videos must not share a level (both on level 0)")
    validate(video(0) + video(1) + video(0))
    # Images and videos have separate levels.
    validate(image(0) + video(0) + image(1) + video(1))
    validate(image(1, text="a" + video(1) + "b"))


# --- camera and background ------------------------------------------------------------------


def test_camera_rules() -> None:
    ok = "<camera mode='Camera3D' scene='3dCameraFrontAll' sensor_height='36.0'/>"
    fails(ok, "<camera> is 3D only", role="GuoXiaoyuan")
    fails(ok, "<camera> is 3D only", dimension="2d")
    fails(
        "<camera mode='Camera2D' scene='3dCameraFrontAll'/>",
        "camera mode must be 'Camera3D'",
        role="COCO",
    )
    fails("<camera mode='Camera3D' scene='front'/>", "camera scene must be one of", role="COCO")
    fails("<camera mode='Camera3D'/>", "<camera> needs a non-empty scene", role="COCO")
    fails("<camera scene='3dCameraFrontAll'/>", "<camera> needs a non-empty mode", role="COCO")
    for bad in ("abc", "0", "-1", "1e3"):
        fails(
            f"<camera mode='Camera3D' scene='3dCameraFrontAll' sensor_height='{bad}'/>",
            "sensor_height must be a positive number",
            role="COCO",
        )
    fails(
        "<camera mode='Camera3D' scene='3dCameraFrontAll'>x</camera>",
        "<camera> must be self-closing",
        role="COCO",
    )
    validate("<camera mode='Camera3D' scene='3dCameraFrontHalf'/>", role="COCO")


def test_background_rules() -> None:
    ok = "<background type='image' url='https://x/bg.jpg'/>"
    validate(ok, role="COCO")
    fails(ok, "<background> is 3D only", role="XiaoHuan")
    fails(
        "<background type='video' url='https://x/bg.mp4'/>",
        "background type must be 'image'",
        role="COCO",
    )
    fails("<background type='image'/>", "<background> needs a non-empty url", role="COCO")
    fails("<background type='image' url='bg.jpg'/>", "url must be an http", role="COCO")
    fails(
        "<background type='image' url='https://x/bg.jpg' transition_effect=''/>",
        "needs a non-empty transition_effect",
        role="COCO",
    )


# --- audio and subtitle ---------------------------------------------------------------------


def test_audio_and_subtitle_rules() -> None:
    fails('<audio url="https://x/a.mp3"/>', "<audio> needs a non-empty format")
    fails('<audio format="mp3"/>', "<audio> needs a non-empty url")
    fails(
        '<audio url="https://x/a.mp3" format="mp3" sample_rate="fast"/>',
        "sample_rate must be a positive integer",
    )
    fails('<audio url="https://x/a.mp3" format="mp3" ac="0"/>', "ac must be a positive integer")
    fails('<audio url="https://x/a.mp3" format="mp3">x</audio>', "<audio> must be self-closing")
    fails("<subtitle/>", "<subtitle> needs a non-empty text")
    fails('<subtitle text="a" style="b"/>', "<subtitle> has no attribute 'style'")


# --- role and dimension ---------------------------------------------------------------------


def test_dimension_arguments() -> None:
    assert ssml.infer_dimension("COCO") == "3d"
    assert ssml.infer_dimension("GuoXiaoyuan") == "2d"
    assert ssml.infer_dimension("XiaoHuan") == "2d"
    assert ssml.infer_dimension("MyTwin") is None
    assert ssml.infer_dimension(None) is None
    with pytest.raises(ValidationError) as info:
        validate("hi", role="COCO", dimension="2d")
    assert (info.value.field, info.value.value) == ("dimension", "2d")
    assert "3D role" in info.value.rule
    with pytest.raises(ValidationError) as info:
        validate("hi", dimension="4d")  # type: ignore[arg-type]
    assert info.value.field == "dimension"
    with pytest.raises(ValidationError) as info:
        validate("hi", role=3)  # type: ignore[arg-type]
    assert info.value.field == "role"


def test_error_text_carries_little_user_content() -> None:
    long = "x" * 10_000
    err = fails(
        f'<image url="https://x/{long}" left="a" top="1" width="1" height="1" level="1">t</image>',
        "left must be an integer",
    )
    assert len(err.value) <= 70
    assert len(str(err)) < 250
    err = fails(f'<action type="{long}"/>', "not in XiaoHuan's", role="XiaoHuan")
    assert len(str(err)) < 250
    err = fails(f"<{long}/>", "unknown tag")
    assert len(str(err)) < 300
    err = fails(f"<speak>{long}&</speak>", "malformed XML")
    assert len(err.value) <= 40


# --- builder --------------------------------------------------------------------------------


def test_builder_example() -> None:
    doc = (
        Speak()
        .text("今天")
        .action("15")
        .text("天气")
        .action("LISTENING", time="3s")
        .action("OK", is_silence=True)
        .image(
            "https://x/a.png",
            left=250,
            top=500,
            width=500,
            height=500,
            level=1,
            text="天气真不错。",
        )
        .image_open(
            track_id="1", url="https://x/b.png", left=0, top=0, width=10, height=10, level=0
        )
        .text("……")
        .image_close(track_id="1")
        .video("https://x/v.mp4", left=10, top=20, width=40, height=80, level=0)
        .raw('<break time="500ms"/>')
        .audio(url="https://x/a.mp3", format="mp3")
        .subtitle("今天天气真不错")
    )
    text = str(doc)
    assert text.startswith('<speak>今天<action type="15"/>天气')
    assert '<action type="OK" is_silence="true"/>' in text
    assert '<image mode="closing" track_id="1"/>' in text
    assert doc.validate(dimension="2d") is doc
    validate(text)
    with pytest.raises(ValidationError, match="'OK' is not in GuoXiaoyuan"):
        doc.validate(role="GuoXiaoyuan")
    assert repr(doc).startswith("Speak('<speak>")


def test_builder_3d_example() -> None:
    doc = (
        Speak("大家好")
        .camera("3dCameraFrontFace")
        .action("coco_hello_01_ANI")
        .background("https://x/bg.jpg", transition_effect="shutters", scene_levelmap=0)
        .text("欢迎")
    )
    assert '<camera mode="Camera3D" scene="3dCameraFrontFace" sensor_height="36.0"/>' in str(doc)
    doc.validate(role="COCO")
    with pytest.raises(ValidationError, match="3D only"):
        doc.validate(dimension="2d")


def test_builder_nested_fragment() -> None:
    inner = Speak().text("a<b").action("OK").text("c")
    doc = Speak().image("https://x/a.png", left=0, top=0, width=1, height=1, level=0, text=inner)
    root = ET.fromstring(str(doc))
    img = root[0]
    assert img.text == "a<b"
    assert img[0].get("type") == "OK"
    assert img[0].tail == "c"
    doc.validate(role="XiaoHuan")


def test_empty_builder() -> None:
    assert str(Speak()) == "<speak></speak>"
    assert Speak().fragment() == ""
    Speak().validate()


def test_builder_escapes_text_and_attributes() -> None:
    nasty = "a<b>&c\"d'e\r\nf\tg]]>h"
    doc = Speak().text(nasty).subtitle(nasty).action(nasty)
    root = ET.fromstring(str(doc))
    assert root.text == nasty
    assert root[0].get("text") == nasty
    assert root[1].get("type") == nasty
    validate(str(doc))


def test_builder_refuses_characters_xml_cannot_carry() -> None:
    with pytest.raises(ValidationError, match="U\\+0000") as info:
        Speak().text("a\x00b")
    assert info.value.field == "ssml"
    with pytest.raises(ValidationError, match="U\\+0007"):
        Speak().subtitle("\x07")


def test_escape_helpers() -> None:
    assert ssml.escape("<&>\"'") == "&lt;&amp;&gt;\"'"
    assert ssml.escape_attr("<&>\"'\n") == "&lt;&amp;&gt;&quot;&apos;&#10;"


# --- catalogs -------------------------------------------------------------------------------


def test_catalogs() -> None:
    assert ACTIONS["GuoXiaoyuan"]["15"] == "ok"
    assert ACTIONS["XiaoHuan"]["OK"] == "ok"
    assert ACTIONS["COCO"]["coco_talking_4_01_Ani"] == "平静介绍商品4"
    assert len(ACTIONS["GuoXiaoyuan"]) == 30
    assert len(ACTIONS["XiaoHuan"]) == 34
    assert len(ACTIONS["COCO"]) == 44
    assert set(ACTIONS) == set(POSE_CLOTHES)
    assert CAMERA_SCENES == ("3dCameraFrontAll", "3dCameraFrontHalf", "3dCameraFrontFace")
    assert {"Source Han Serif CN", "新叶念体 Regular", "清松手寫體1", "ChunkFive Regular"} <= FONTS
    assert len(FONTS) == 41
    assert ssml.ACTIONS is ACTIONS
    with pytest.raises(TypeError):
        ACTIONS["COCO"]["x"] = "y"  # type: ignore[index]


# --- subtitle styling -----------------------------------------------------------------------

DOC_STYLE: dict[str, object] = {
    "fontname": "Source Han Serif CN",
    "fontsize": 18,
    "bold": True,
    "italic": True,
    "underline": True,
    "primary_colour": "0000ff00",
    "outline_colour": "0000ff00",
    "back_colour": "0000ff00",
    "margin_l": 100,
    "margin_r": 100,
    "margin_v": 140,
}


def test_doc_subtitle_style_is_valid() -> None:
    assert check_subtitle_style(DOC_STYLE) == DOC_STYLE
    styled = subtitle(DOC_STYLE)
    assert styled == {"global_style": DOC_STYLE}
    frame = frames.encode_styled_chat("<speak>今天天气真不错</speak>", styled)
    body = json.loads(frame[len("|CTL|02|") :])
    assert body == {
        "text": "<speak>今天天气真不错</speak>",
        "subtitle": {"global_style": DOC_STYLE},
    }


def test_subtitle_helper_merges_keywords_and_drops_none() -> None:
    assert subtitle(fontsize=20) == {"global_style": {"fontsize": 20}}
    assert subtitle({"fontsize": 18, "bold": True}, fontsize=24, italic=None) == {
        "global_style": {"fontsize": 24, "bold": True}
    }
    assert subtitle() == {"global_style": {}}
    assert check_subtitle_style({"primary_colour": "FFAABBCC"}) == {"primary_colour": "FFAABBCC"}


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("fontname", "Comic Sans", "is not a supported subtitle font"),
        ("fontname", 3, "must be a string"),
        ("fontsize", 0, "must be a positive integer"),
        ("fontsize", -3, "must be a positive integer"),
        ("fontsize", True, "must be a positive integer"),
        ("fontsize", "18", "must be a positive integer"),
        ("fontsize", 18.0, "must be a positive integer"),
        ("bold", "true", "must be a boolean"),
        ("italic", 1, "must be a boolean"),
        ("underline", None, ""),  # None is "not set": accepted
        ("primary_colour", "0000ff0", "must be 8 hex digits AABBGGRR"),
        ("outline_colour", "0000ff0g", "must be 8 hex digits"),
        ("back_colour", "#0000ff00", "must be 8 hex digits"),
        ("back_colour", 0xFF, "must be 8 hex digits"),
        ("margin_l", -1, "must be a non-negative integer"),
        ("margin_r", 1.5, "must be a non-negative integer"),
        ("margin_v", False, "must be a non-negative integer"),
        ("font", "Roboto", "unknown subtitle style field"),
    ],
)
def test_subtitle_style_fields(key: str, value: object, rule: str) -> None:
    if not rule:
        assert check_subtitle_style({key: value}) == {}
        return
    with pytest.raises(ValidationError) as info:
        check_subtitle_style({key: value})
    assert info.value.field == f"subtitle.global_style.{key}"
    assert info.value.value == value
    assert rule in info.value.rule


def test_subtitle_font_case_hint() -> None:
    with pytest.raises(ValidationError, match="did you mean 'Roboto Medium'"):
        subtitle(fontname="roboto medium")


def test_subtitle_style_must_be_an_object() -> None:
    for bad in (["bold"], "bold", None):
        with pytest.raises(ValidationError) as info:
            check_subtitle_style(bad)  # type: ignore[arg-type]
        assert info.value.field == "subtitle.global_style"
    with pytest.raises(ValidationError):
        subtitle(["x"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="field names must be strings"):
        check_subtitle_style({1: 2})  # type: ignore[dict-item]


# --- properties -----------------------------------------------------------------------------

XML_CHARS = st.characters(
    exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"
) | st.sampled_from("\t\n\r<>&\"'")
TEXT = st.text(XML_CHARS, max_size=12)
WORDS = TEXT.map(lambda s: s + "字")  # never blank
URLS = st.builds(lambda path: f"https://cdn.example.com/{path}", TEXT)
OFFSETS = st.integers(-2000, 2000)
SIZES = st.integers(1, 4000)
RAW = st.sampled_from(
    ['<break time="500ms"/>', '<py value="chu2">锄</py>', '<speed rate="1.2">rabbit</speed>']
)
ROLES: dict[str, list[str | None]] = {
    "2d": [None, "GuoXiaoyuan", "XiaoHuan", "MyTwin"],
    "3d": [None, "COCO"],
}


def _add_action(draw: st.DrawFn, doc: Speak, role: str | None, dimension: str) -> None:
    catalog = ACTIONS.get(role) if role else None
    if dimension == "2d" and draw(st.booleans()):
        time = draw(
            st.integers(1, 100).map(lambda n: f"{n}s")
            | st.integers(1, 100_000).map(lambda n: f"{n}ms")
        )
        doc.action("LISTENING", time=time, is_silence=draw(st.none() | st.booleans()))
        return
    kind = draw(st.sampled_from(sorted(catalog)) if catalog else WORDS)
    silence = draw(st.none() | st.booleans()) if dimension == "2d" else None
    doc.action(kind, is_silence=silence)


@st.composite
def documents(draw: st.DrawFn, dimension: str) -> tuple[Speak, str | None]:
    """A random, valid builder document and the role it was built for."""
    role = draw(st.sampled_from(ROLES[dimension]))
    doc = Speak()
    open_tracks: dict[str, int] = {}
    last_image: int | None = None
    last_video: int | None = None
    kinds = ["text", "action", "image", "video", "raw", "audio", "subtitle"]
    kinds += ["open", "open", "close"] if dimension == "2d" else ["camera", "background"]

    def geometry() -> dict[str, Any]:
        return {
            "left": draw(OFFSETS),
            "top": draw(OFFSETS),
            "width": draw(SIZES),
            "height": draw(SIZES),
        }

    def image_level() -> int:
        busy = {*open_tracks.values(), last_image}
        return draw(st.sampled_from([n for n in range(6) if n not in busy]))

    for kind in draw(st.lists(st.sampled_from(kinds), max_size=14)):
        if kind == "text":
            doc.text(draw(TEXT))
        elif kind == "action":
            _add_action(draw, doc, role, dimension)
        elif kind == "image":
            last_image = level = image_level()
            content: str | Speak = draw(WORDS)
            if draw(st.booleans()):
                content = Speak(draw(TEXT)).raw(draw(RAW)).text(draw(WORDS))
                _add_action(draw, content, role, dimension)
            doc.image(draw(URLS), level=level, text=content, **geometry())
        elif kind == "open" and len(open_tracks) < 3:
            track = f"t{len(open_tracks)}-{draw(TEXT)}"
            if track in open_tracks:
                continue
            last_image = open_tracks[track] = level = image_level()
            doc.image_open(track, draw(URLS), level=level, **geometry())
        elif kind == "close" and open_tracks:
            track = draw(st.sampled_from(sorted(open_tracks)))
            del open_tracks[track]
            doc.image_close(track)
        elif kind == "video":
            level = draw(st.sampled_from([n for n in range(4) if n != last_video]))
            last_video = level
            doc.video(draw(URLS), level=level, **geometry())
        elif kind == "raw":
            doc.raw(draw(RAW))
        elif kind == "audio":
            doc.audio(
                draw(URLS),
                format=draw(st.sampled_from(["mp3", "pcm", "wav"])),
                sample_rate=draw(st.none() | st.sampled_from([16000, 48000])),
                ac=draw(st.none() | st.sampled_from([1, 2])),
            )
        elif kind == "subtitle":
            doc.subtitle(draw(WORDS))
        elif kind == "camera":
            doc.camera(
                draw(st.sampled_from(CAMERA_SCENES)),
                sensor_height=draw(st.sampled_from(["36.0", 24, 35.5, None])),
            )
        elif kind == "background":
            doc.background(
                draw(URLS),
                transition_effect=draw(st.sampled_from([None, "shutters"])),
                scene_levelmap=draw(st.sampled_from([None, "0", 1])),
            )
    for track in sorted(open_tracks):
        doc.image_close(track)
    return doc, role


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["2d", "3d"]).flatmap(lambda d: st.tuples(st.just(d), documents(d))))
def test_built_documents_validate(case: tuple[str, tuple[Speak, str | None]]) -> None:
    dimension, (doc, role) = case
    doc.validate(role=role, dimension=dimension)  # type: ignore[arg-type]
    validate(str(doc), role=role)
    ET.fromstring(str(doc))


@settings(max_examples=100, deadline=None)
@given(st.text(XML_CHARS, max_size=40))
def test_builder_text_round_trips(text: str) -> None:
    doc = Speak().text(text).subtitle(text or "x")
    root = ET.fromstring(str(doc))
    assert (root.text or "") == text
    assert root[0].get("text") == (text or "x")


TAGS = [
    "speak",
    "action",
    "image",
    "video",
    "camera",
    "background",
    "audio",
    "subtitle",
    "py",
    "break",
    "foo",
]
ATTRS = [
    "type",
    "time",
    "is_silence",
    "mode",
    "track_id",
    "url",
    "left",
    "top",
    "width",
    "height",
    "level",
    "scene",
    "sensor_height",
    "format",
    "text",
    "x",
]
VALUES = st.sampled_from(
    [
        "OK",
        "15",
        "LISTENING",
        "3s",
        "100ms",
        "true",
        "opening",
        "closing",
        "default",
        "0",
        "1",
        "-1",
        "https://a.b/c",
        "Camera3D",
        "3dCameraFrontAll",
        "image",
        "mp3",
        "",
    ]
) | st.text(max_size=5)
SOUP_PIECES = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        [
            "<",
            ">",
            "&",
            "&amp;",
            "<!DOCTYPE x>",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<?xml version='1.0'?>",
            "/>",
            '"',
            "'",
            "=",
        ]
    ),
    st.sampled_from(TAGS).map(lambda t: f"<{t}>"),
    st.sampled_from(TAGS).map(lambda t: f"</{t}>"),
    st.tuples(st.sampled_from(TAGS), st.sampled_from(ATTRS), VALUES).map(
        lambda t: f'<{t[0]} {t[1]}="{t[2]}"/>'
    ),
)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> str:
    """Well-formed random markup, so that the rules (not just the parser) are exercised."""
    tag = draw(st.sampled_from(TAGS))
    attrs = draw(st.dictionaries(st.sampled_from(ATTRS), VALUES, max_size=7))
    head = tag + "".join(
        f' {k}="{ssml.escape_attr(v)}"' for k, v in attrs.items() if not ssml._NON_XML.search(v)
    )
    if depth >= 3 or draw(st.booleans()):
        return f"<{head}/>"
    children = draw(st.lists(trees(depth + 1) | TEXT.map(ssml.escape), max_size=4))
    return f"<{head}>{''.join(children)}</{tag}>"


ANY_ROLE = st.sampled_from([None, "GuoXiaoyuan", "XiaoHuan", "COCO", "MyTwin"])
ANY_DIMENSION = st.sampled_from([None, "2d", "3d"])


def _only_validation_errors(text: str, role: str | None, dimension: str | None) -> None:
    try:
        validate(text, role=role, dimension=dimension)  # type: ignore[arg-type]
    except ValidationError as err:
        error = err
    else:
        return
    assert error.field in ("ssml", "dimension")
    assert len(str(error)) < 400


@settings(max_examples=300, deadline=None)
@given(st.lists(SOUP_PIECES, max_size=12).map("".join), ANY_ROLE, ANY_DIMENSION)
def test_tag_soup_raises_only_validation_errors(
    text: str, role: str | None, dimension: str | None
) -> None:
    _only_validation_errors(text, role, dimension)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(trees() | TEXT.map(ssml.escape), max_size=5).map("".join),
    st.booleans(),
    ANY_ROLE,
    ANY_DIMENSION,
)
def test_random_trees_raise_only_validation_errors(
    body: str, wrap: bool, role: str | None, dimension: str | None
) -> None:
    _only_validation_errors(f"<speak>{body}</speak>" if wrap else body, role, dimension)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_random_strings_raise_only_validation_errors(text: str) -> None:
    _only_validation_errors(text, None, None)


STYLE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 200),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.sampled_from(sorted(FONTS)),
    st.sampled_from(["0000ff00", "FFFFFFFF", "0000ff0"]),
    st.lists(st.integers(), max_size=2),
)
STYLE_KEYS = st.sampled_from(ssml.SUBTITLE_STYLE_FIELDS) | st.text(max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(STYLE_KEYS, STYLE_VALUES, max_size=6))
def test_random_subtitle_styles_raise_only_validation_errors(style: dict[str, object]) -> None:
    try:
        checked = check_subtitle_style(style)
    except ValidationError as err:
        error = err
    else:
        assert checked == {k: v for k, v in style.items() if v is not None}
        json.dumps(checked)
        return
    assert error.field.startswith("subtitle.global_style")


# --- wrong-typed arguments: ValidationError naming the argument (issue 8, 4d) ----------

_GEO: dict[str, Any] = {"left": 0, "top": 0, "width": 1, "height": 1, "level": 0}
_HUGE = 10**5000  # str() of it raises ValueError (the int-to-str digit limit)
_NAN = float("nan")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: Speak().text(b"x"), "text"),
        (lambda: Speak().text(None), "text"),
        (lambda: Speak().text(5), "text"),
        (lambda: Speak(b"x"), "text"),
        (lambda: Speak(0), "text"),
        (lambda: Speak().action(b"OK"), "type"),
        (lambda: Speak().action(None), "type"),
        (lambda: Speak().action(15), "type"),
        (lambda: Speak().action("LISTENING", time=3), "time"),
        (lambda: Speak().action("OK", is_silence="true"), "is_silence"),
        (lambda: Speak().image("https://x/a", **_GEO, text=b"x"), "text"),
        (lambda: Speak().image("https://x/a", **_GEO, text=None), "text"),
        (lambda: Speak().image(b"https://x/a", **_GEO, text="x"), "url"),
        (lambda: Speak().image("https://x/a", **{**_GEO, "left": None}, text="x"), "left"),
        (lambda: Speak().image("https://x/a", **{**_GEO, "top": "0"}, text="x"), "top"),
        (lambda: Speak().image("https://x/a", **{**_GEO, "width": 1.5}, text="x"), "width"),
        (lambda: Speak().image("https://x/a", **{**_GEO, "height": True}, text="x"), "height"),
        (lambda: Speak().image("https://x/a", **{**_GEO, "level": _HUGE}, text="x"), "level"),
        (lambda: Speak().image_open([1], "https://x/a", **_GEO), "track_id"),
        (lambda: Speak().image_open(None, "https://x/a", **_GEO), "track_id"),
        (lambda: Speak().image_open("1", "https://x/a", **{**_GEO, "left": _HUGE}), "left"),
        (lambda: Speak().image_close(b"1"), "track_id"),
        (lambda: Speak().image_close(_HUGE), "track_id"),
        (lambda: Speak().video(None, **_GEO), "url"),
        (lambda: Speak().video("https://x/v", **{**_GEO, "level": object()}), "level"),
        (lambda: Speak().camera(None), "scene"),
        (lambda: Speak().camera("3dCameraFrontAll", sensor_height=_NAN), "sensor_height"),
        (lambda: Speak().camera("3dCameraFrontAll", sensor_height=b"36"), "sensor_height"),
        (lambda: Speak().camera("3dCameraFrontAll", mode=None), "mode"),
        (lambda: Speak().background(5), "url"),
        (lambda: Speak().background("https://x/b", transition_effect=1), "transition_effect"),
        (lambda: Speak().background("https://x/b", scene_levelmap=1.0), "scene_levelmap"),
        (lambda: Speak().background("https://x/b", type=None), "type"),
        (lambda: Speak().raw(b"<break/>"), "markup"),
        (lambda: Speak().raw(None), "markup"),
        (lambda: Speak().audio("https://x/a", format=None), "format"),
        (lambda: Speak().audio("https://x/a", format="mp3", sample_rate="16000"), "sample_rate"),
        (lambda: Speak().audio("https://x/a", format="mp3", ac=_HUGE), "ac"),
        (lambda: Speak().subtitle(None), "text"),
        (lambda: Speak().subtitle(["x"]), "text"),
        (lambda: ssml.escape(b"x"), "text"),
        (lambda: ssml.escape_attr(None), "value"),
    ],
)
def test_builder_wrong_types_name_the_argument(call: Any, argument: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == argument
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "style",
    [
        {"margin_l": -_HUGE},  # repr of the value raised ValueError
        {"margin_v": functools.reduce(lambda inner, _: [inner], range(100_000), [])},
        {_HUGE: 1},
    ],
)
def test_subtitle_style_unshowable_values(style: dict[Any, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        subtitle(style)
    assert info.value.field.startswith("subtitle.global_style")
    assert len(str(info.value)) < 200
