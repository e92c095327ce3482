"""Fuzz targets: the pure decoders and validators on generated and mutated input.

Five targets: the frame decoder both ways (``frames.decode``, and
``frames.decode_client`` followed, for an open frame, by ``decode_config`` as
the emulator does), the config decoder, the SSML validator and the callback
receiver's body parser.  Each is fed real input (frames from the encoders, a
checked config, SSML from the doc, a training callback) mutated by byte flips,
truncation, deletion, duplication and insertion of ``[``/``{`` runs, lone
surrogates, invalid UTF-8, huge numbers and wrong JSON types; also freshly
generated input and arguments of the wrong type.  The only exceptions allowed
are avatarkit's own, and of the kind each target documents.

Bounded for CI (derandomized, no example database: the same inputs every run).
``benchmarks/fuzz.py`` runs these targets and seeds on 10**6 inputs with a fast
random mutator instead of hypothesis.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import anyio
import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatarkit.digime.callbacks import BadCallbackBody, CallbackReceiver, parse_callback_body
from avatarkit.errors import AvatarError, ProtocolError, ValidationError
from avatarkit.tta import frames, ssml
from avatarkit.tta.config import decode_config, encode_config, make_config

# --- targets -------------------------------------------------------------------------


def _client_side(frame: Any) -> None:
    """What the emulator does with a client frame: decode it, then an open frame's config."""
    decoded = frames.decode_client(frame)
    if isinstance(decoded, frames.OpenSession):
        decode_config(decoded.config)


Target = Callable[[Any], object]
TARGETS: Final[dict[str, Target]] = {
    "decode": frames.decode,
    "decode_client": _client_side,
    "decode_config": decode_config,
    "ssml": ssml.validate,
    "callback_body": parse_callback_body,
}
# The errors each target raises for wire input (str/bytes); any other argument
# type is the caller's mistake, a ValidationError.  decode_client's open frames
# also go through decode_config, hence ValidationError there.
WIRE_ERRORS: Final[dict[str, tuple[type[AvatarError], ...]]] = {
    "decode": (ProtocolError,),
    "decode_client": (ProtocolError, ValidationError),
    "decode_config": (ValidationError,),
    "ssml": (ValidationError,),
    "callback_body": (BadCallbackBody, ValidationError),  # ValidationError: a str body
}


def feed(target: str, data: object) -> AvatarError | None:
    """Run ``target`` on ``data``; return the avatarkit error it raised, re-raise any other."""
    try:
        TARGETS[target](data)
    except AvatarError as exc:
        error = exc
    else:
        return None
    wire = isinstance(data, str | bytes | bytearray | memoryview)
    allowed = WIRE_ERRORS[target] if wire else (ValidationError,)
    assert isinstance(error, allowed), f"{target}: {type(error).__name__}: {error}"
    assert str(error)  # the message was built
    if isinstance(error, BadCallbackBody):
        assert error.status in (400, 422)
    return error


# --- seeds: real, valid input ----------------------------------------------------------

_CONFIG = make_config(
    "GuoXiaoyuan",
    uid="u1",
    background="https://x.example/bg.png",
    logo={
        "logo_url": "https://x.example/logo.png",
        "logo_top_offset": 0,
        "logo_left_offset": 10,
        "logo_width": 100,
        "logo_height": 50,
    },
    video={"video_width": 720, "I_frame_interval": 50},
    role_conf={"voice_type": "BV405", "role_width": 600, "speed": 1.25, "pitch": 5, "volume": 1},
    rtc={"app_id": "app", "room": "room-1", "uid": "pusher", "token": "rtc-token"},
)
CONFIG_JSON: Final = encode_config(_CONFIG)
IMG = "https://x.example/a.png"
SSML_SEEDS: Final = (
    # From tests/test_ssml.py (the doc's own examples) and the builder.
    "今天天气不错",
    '<speak>今天<action type="OK"/>天气真不错</speak>',
    f'<speak><image url="{IMG}" left="500" top="500" width="600" height="600" level="1">'
    "这是图片显示范围中的第一句话。</image></speak>",
    f'<speak>开始<image mode="opening" track_id="1" url="{IMG}" left="200" top="200" '
    'width="600" height="600" level="0"/>下一次测试。<image mode="closing" track_id="1"/>'
    "显示结束了!</speak>",
    '<speak>文本一<video url="http://localhost:8000/a.mp4" left="10" top="20" '
    'width="40" height="80" level="0"/>文本二</speak>',
    '<speak><action type="LISTENING" time="3000ms" /></speak>',
    '<speak><audio url="http://xxxx/test.mp3" format="mp3"/>'
    '<subtitle text="今天天气真不错"/></speak>',
    "那就让我们<camera mode='Camera3D' scene='3dCameraFrontFace' sensor_height='36.0'/>好物,"
    "<background type='image' url='https://x.example/bg.jpeg' transition_effect='shutters' "
    "scene_levelmap='0'/>首先<py>hao3</py><break time='500ms'/>介绍。",
    str(
        ssml.Speak("大家好")
        .action("LISTENING", time="3s")
        .image(IMG, left=0, top=0, width=10, height=10, level=2, text="看")
        .raw("<!-- a comment --><![CDATA[ a < b ]]>")
    ),
)
CALLBACK_BODY: Final = msgspec.json.encode(
    {
        "conf_name": "avatar-1",
        "role_pic": "https://cdn.example/role.png",
        "pre_pic": "https://cdn.example/pre.png",
        "state": 2,
    }
)
SEEDS: Final[dict[str, Sequence[str | bytes]]] = {
    "decode": (
        frames.server_event("voice_start", {}),
        frames.server_event("voice_end", {"interrupted": True}),
        frames.server_event(
            "subtitle_on", {"text": "你好", "start_time_ms": 0, "end_time_ms": 880}
        ),
        frames.server_event("subtitle_off", {"text": "你好"}).encode(),
        frames.server_event(
            "all_subtitles", {"subtitles": [{"text": "好", "start_time_ms": 0, "end_time_ms": 9}]}
        ),
        frames.server_event("video_url", {"video_url": "https://x.example/v.mp4?sig=s"}),
        frames.server_event("lip_sync", {"x": [1, 2.5, None, {"y": "z"}]}),
        frames.server_status(1000, "session opened", 0),
        frames.server_status(1002, "busy", 2).encode(),
        frames.server_audio(bytes(range(64))),
        frames.server_video(b"\x00\x00\x00\x01\x67\x42\x00\x1f"),
        frames.server_media(b"\x00\x00\x00\x18ftypmp42"),
        frames.server_media(b"moov", last=True),
        b"|MSG|07|future",
    ),
    "decode_client": (
        frames.encode_open(CONFIG_JSON),
        frames.encode_open('{"role":"COCO","input_mode":"audio"}').encode(),
        frames.encode_chat("今天天气不错"),
        frames.encode_chat(SSML_SEEDS[2]),
        frames.encode_bitrate(800),
        frames.encode_styled_chat("<speak>好</speak>", ssml.subtitle(fontsize=18, bold=True)),
        frames.encode_audio_url("https://x.example/a.pcm", format="pcm", sample_rate=16000),
        frames.encode_audio(bytes(40), last=True),
        frames.encode_close(),
        frames.encode_interrupt().encode(),
    ),
    "decode_config": (
        CONFIG_JSON,
        CONFIG_JSON.decode(),
        b'{"role":"COCO"}',
        encode_config(
            make_config(
                "XiaoHuan",
                codec="webm",
                output_url=True,
                video={"video_height": 1280, "subtitle_control": True},
            )
        ),
        encode_config(
            make_config("GuoXiaoyuan", rtmp={"addr": "rtmp://h/app/key", "live_id": "1"})
        ),
    ),
    "ssml": SSML_SEEDS,
    "callback_body": (CALLBACK_BODY, CALLBACK_BODY.replace(b'"state":2', b'"state":3')),
}

# --- mutations -------------------------------------------------------------------------

#: Pieces inserted or substituted: nesting past msgspec's recursion limit, what
#: UTF-8 cannot carry, numbers past int64/float, JSON of the wrong type, markup.
TOKENS: Final = (
    "[" * 1200,
    "{" * 1200,
    '{"a":' * 1200,
    "[" * 30,
    "]" * 30,
    "\ud800",
    "\udfff",
    "\x00",
    "\x1b",
    "\ufffe",
    "é",
    "好",
    "😀",
    "1" * 5000,
    "-" + "9" * 30,
    "18446744073709551616",
    "1e999",
    "-1e-999",
    "NaN",
    "null",
    "true",
    "[]",
    "{}",
    '""',
    '"\\ud800"',
    '"\\u0000"',
    '"|DAT|02|"',
    ",",
    ":",
    '"',
    "\\",
    "<",
    ">",
    "&",
    "&amp;",
    "]]>",
    "<!DOCTYPE x>",
    "<!--",
    "<speak>",
    "</speak>",
    "<image>",
    "</image>",
    '<image mode="closing" track_id="1"/>',
    '<action type="LISTENING" time="1e9s"/>',
    "<py>" * 2000,
    "|DAT|02|",
    "|MSG|00|",
    "|CTL|00|",
    "|CTL|08|",
)
#: Arguments of the wrong type.
WRONG_TYPES: Final[tuple[object, ...]] = (
    None,
    0,
    -1,
    10**5000,
    1.5,
    float("nan"),
    True,
    [],
    ["|DAT|00|"],
    {},
    {"role": "COCO"},
    object(),
    bytearray(b"|DAT|00|\x00\x01"),
    bytearray(b'{"role":"COCO"}'),
    memoryview(b"|MSG|00|{}"),
    memoryview(CALLBACK_BODY),
)

Op = tuple[str, int, int]  # (kind, position, argument)


S = TypeVar("S", str, bytes)


def _flip(piece: S, mask: int) -> S:
    if isinstance(piece, bytes):
        return bytes([piece[0] ^ (mask & 0xFF or 1)])
    return chr((ord(piece) ^ (mask or 1)) % 0x110000)  # may land on a surrogate: good


def _token(data: S, index: int) -> S:
    token = TOKENS[index % len(TOKENS)]
    # In bytes a lone surrogate becomes invalid UTF-8 (ED A0 80), which is what we want.
    return token.encode("utf-8", "surrogatepass") if isinstance(data, bytes) else token


def mutate(data: S, ops: Sequence[Op]) -> S:
    """``data`` with each operation applied in turn (positions wrap around the length)."""
    for kind, position, arg in ops:
        size = len(data)
        at = position % (size + 1)
        if kind == "flip" and size:
            at = position % size
            data = data[:at] + _flip(data[at : at + 1], arg) + data[at + 1 :]
        elif kind == "cut":
            data = data[:at]
        elif kind == "delete":
            data = data[:at] + data[at + arg % 64 :]
        elif kind == "dup":
            data = data[:at] + data[at : at + arg % 64] + data[at:]
        elif kind == "insert":
            data = data[:at] + _token(data, arg) + data[at:]
        elif kind == "replace":
            data = data[:at] + _token(data, arg) + data[at + arg % 8 :]
    return data


OPS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "delete", "dup", "insert", "insert", "replace"]),
        st.integers(0, 2**16),
        st.integers(0, 2**16),
    ),
    min_size=1,
    max_size=6,
)
FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the fuzz tests ----------------------------------------------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
@FUZZ
@given(data=st.data())
def test_mutated_seeds_raise_only_avatarkit_errors(target: str, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS[target]), label="seed")
    if target in ("decode", "decode_client", "decode_config") and data.draw(st.booleans()):
        # These take both frame kinds: try the other one too.
        seed = seed.decode("utf-8") if isinstance(seed, bytes) else seed.encode()
    ops = data.draw(OPS, label="ops")
    feed(target, mutate(seed, ops) if isinstance(seed, str) else mutate(bytes(seed), ops))


def test_the_seeds_themselves_are_accepted() -> None:
    for target, seeds in SEEDS.items():
        for seed in seeds:
            assert feed(target, seed) is None, (target, seed)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "GuoXiaoyuan", "https://x.example/a.png", "2", 2, 3]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=16,
)
_KEYS = st.sampled_from(
    [
        *("role", "video", "video_width", "rtc", "token", "conf_name", "state", "callback_info"),
        *("type", "data", "code", "message", "subtitles", "text", "logo", "role_conf"),
    ]
)
_OBJECTS = st.dictionaries(_KEYS, _JSON, max_size=6)


def _as_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


@pytest.mark.parametrize("target", sorted(TARGETS))
@FUZZ
@given(data=st.data())
def test_generated_inputs_raise_only_avatarkit_errors(target: str, data: st.DataObject) -> None:
    header = st.sampled_from(["|DAT|02|", "|MSG|00|", "|CTL|00|", "|CTL|02|", "|DAT|00|", ""])
    value: str | bytes = data.draw(
        st.binary(max_size=200)
        | st.text(max_size=200)
        | st.tuples(header, _OBJECTS | _JSON).map(lambda pair: pair[0] + _as_json(pair[1]))
    )
    if isinstance(value, str) and data.draw(st.booleans()):
        value = value.encode("utf-8", "surrogatepass")
    feed(target, value)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_wrong_argument_types_are_validation_errors(target: str) -> None:
    for value in WRONG_TYPES:
        if isinstance(value, bytearray | memoryview) and target != "ssml":
            feed(target, value)  # accepted like bytes: any avatarkit error
            continue
        assert isinstance(feed(target, value), ValidationError), (target, value)


@pytest.mark.parametrize("target", ["decode", "decode_client", "decode_config", "callback_body"])
@pytest.mark.parametrize("token", ["[", "{", '{"a":', '{"callback_info":{"type":"x","data":'])
def test_nesting_past_the_recursion_limit(target: str, token: str) -> None:
    for seed in SEEDS[target]:
        for depth in (990, 5_000, 100_000):
            body = token * depth + "0" + ("]" if token == "[" else "}") * depth
            for at in (0, 8, len(seed) // 2, len(seed) - 1):
                if isinstance(seed, str):
                    feed(target, seed[:at] + body + seed[at:])
                else:
                    feed(target, seed[:at] + body.encode() + seed[at:])


# --- the public builders and encoders, with arguments of every type --------------------

_ANY_ARG = st.one_of(
    st.sampled_from(WRONG_TYPES),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "x\udc00", "https://x.example/a", "OK", "3s", "0", "mp3"]),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.binary(max_size=8),
    _JSON,
)
_GEO: Final = {"left": 0, "top": 0, "width": 1, "height": 1, "level": 0}
_BUILDERS: Final[dict[str, tuple[Callable[..., object], dict[str, Any]]]] = {
    "Speak": (ssml.Speak, {"text": "x"}),
    "text": (ssml.Speak().text, {"text": "x"}),
    "action": (ssml.Speak().action, {"type": "OK", "time": None, "is_silence": None}),
    "image": (ssml.Speak().image, {"url": IMG, **_GEO, "text": "x"}),
    "image_open": (ssml.Speak().image_open, {"track_id": "1", "url": IMG, **_GEO}),
    "image_close": (ssml.Speak().image_close, {"track_id": "1"}),
    "video": (ssml.Speak().video, {"url": IMG, **_GEO}),
    "camera": (ssml.Speak().camera, {"scene": "3dCameraFrontAll", "sensor_height": "36.0"}),
    "background": (ssml.Speak().background, {"url": IMG, "scene_levelmap": 0}),
    "raw": (ssml.Speak().raw, {"markup": "<py>a</py>"}),
    "audio": (ssml.Speak().audio, {"url": IMG, "format": "mp3", "sample_rate": 16000, "ac": 1}),
    "subtitle": (ssml.Speak().subtitle, {"text": "x"}),
    "validate": (ssml.validate, {"ssml_text": "x", "role": "COCO", "dimension": "3d"}),
    "check_subtitle_style": (ssml.check_subtitle_style, {"style": {"fontsize": 18}}),
    "ssml.subtitle": (ssml.subtitle, {"style": None, "fontsize": 18, "margin_l": 0}),
    "make_config": (make_config, {"role": "COCO", "uid": "u", "video": {"video_width": 720}}),
    "encode_open": (frames.encode_open, {"config_json": CONFIG_JSON}),
    "encode_chat": (frames.encode_chat, {"text": "x"}),
    "encode_bitrate": (frames.encode_bitrate, {"kbps": 800}),
    "encode_audio_url": (frames.encode_audio_url, {"url": IMG, "format": "mp3", "channels": 1}),
    "encode_styled_chat": (frames.encode_styled_chat, {"text": "x", "subtitle": {}}),
    "encode_audio": (frames.encode_audio, {"pcm": bytes(4), "last": True}),
}


@pytest.mark.parametrize("builder", sorted(_BUILDERS))
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_builders_raise_only_validation_errors(builder: str, data: st.DataObject) -> None:
    call, kwargs = _BUILDERS[builder]
    call(**kwargs)  # the defaults are valid
    name = data.draw(st.sampled_from(sorted(kwargs)), label="argument")
    kwargs = {**kwargs, name: data.draw(_ANY_ARG, label="value")}
    with contextlib.suppress(ValidationError):  # the one exception allowed
        call(**kwargs)


# --- the receiver over ASGI: a bad body is 400 or 422, never 500 -----------------------


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(ops=OPS)
def test_receiver_answers_mutated_bodies_without_500(ops: Sequence[Op]) -> None:
    body = mutate(CALLBACK_BODY, ops)
    assert isinstance(body, bytes)

    async def post() -> int:
        receiver = CallbackReceiver()
        transport = httpx.ASGITransport(app=receiver)
        async with httpx.AsyncClient(transport=transport, base_url="http://cb") as client:
            response = await client.post("/", content=body)
        assert response.json()["errno"] in (0, response.status_code)
        return response.status_code

    status = anyio.run(post)
    error = feed("callback_body", body)
    assert status == (error.status if isinstance(error, BadCallbackBody) else 200)
