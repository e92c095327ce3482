"""SAMI VoiceConversion as the emulator reads doc 002: limits, the speaker table, the payload.

The emulator reads the document itself; it shares no rule or catalog with
the SDK (:mod:`avatarkit.voice.rules`, :mod:`avatarkit.voice.speakers`).
Section names are doc 002's own.

Decisions on the reading (each also in the report of issue 9):

- The body (公共参数, the Python demo): ``{appkey, token, namespace, payload,
  data}``.  The Go demo (参考示例 Golang) sends ``appkey``, ``token``,
  ``namespace`` and ``version=v4`` in the query string and only ``data`` and
  ``payload`` in the body: accepted too.  Credentials in the body win when
  the body has any.  Unknown envelope fields are allowed (the common protocol
  the doc refers to may add some).
- ``payload`` (配置参数): a JSON *string*; ``speaker`` required, from the
  appendix table (附录 发音人列表), else 40000022 ``IllegalPayload:
  InvalidSpeaker`` (常见问题, HTTP 400, the one documented error).  Unknown
  payload fields are refused, so that a misplaced field (``format`` outside
  ``audio_config``) is not silently ignored.
- Empty optional strings mean not given (SPEC §6): ``url: ""`` is no URL,
  ``audio_config.format: ""`` is the default ``wav``.
- ``audio_config`` (配置参数): format wav/mp3/aac (default wav), sample_rate
  8000/16000/22050/24000/32000/44100/48000 (default 24000), channel 1/2
  (default 1) — 输出结果格式 "默认输出24kHz,单通道wav".  JSON numbers only
  (``true`` is not a number).
- ``url`` (配置参数: "若data字段为空,则使用该url下载音频数据"): used only when
  ``data`` is empty; http(s) only, and the emulator fetches loopback hosts
  only (it must never reach the internet).
- Input limits (使用备注): "小于等于10分钟" → at most 600 s; "小于等于100MB" →
  at most 100 MiB (read as the binary unit; the SDK reads it the same way);
  "支持wav、pcm、mp3、aac等常见格式" → anything FFmpeg decodes, and data
  without a container magic is raw PCM, taken as 16 kHz mono s16le (the doc
  names no layout for pcm; 16 kHz mono is its recommended input, 音频编码).
  "建议大于1s" is advice, not a limit: shorter audio is converted.
- Audio outside those limits is refused with the emulator's own codes
  (40000032 too large, 40000033 too long, 40000034 undecodable), HTTP 400
  like the documented error: doc 002 lists no code for them.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final, Literal

import msgspec

from avatarkit.errors import ValidationError

__all__ = [
    "CHANNELS",
    "FORMATS",
    "MAX_INPUT_BYTES",
    "MAX_SECONDS",
    "NAMESPACE",
    "PCM_BYTES_PER_SECOND",
    "SAMPLE_RATES",
    "SPEAKERS",
    "VERSION",
    "AudioConfigBody",
    "EnvelopeBody",
    "PayloadBody",
    "Speaker",
    "check_audio_config",
    "check_url",
]

NAMESPACE: Final = "VoiceConversion"  # 响应格式 namespace "比如VoiceConversion"
VERSION: Final = "v4"  # the Go demo's ``version`` query parameter
FORMATS: Final = ("wav", "mp3", "aac")
SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
CHANNELS: Final = (1, 2)
MAX_INPUT_BYTES: Final = 100 * 1024 * 1024  # 音频大小限制 "小于等于100MB"
MAX_SECONDS: Final = 600.0  # 音频时长限制 "小于等于10分钟"
PCM_BYTES_PER_SECOND: Final = 16_000 * 2  # raw pcm: 16 kHz mono s16le


class Speaker(msgspec.Struct, frozen=True):
    """One row of 附录 发音人列表.  The gender column is icons, lost in the document's
    text; it is read from the id (``zh_female_…``/``zh_male_…``), which always says it."""

    id: str
    scene: str  # 场景
    name: str  # 音色
    child: bool = False  # a child's voice (童年伙伴, 萌丫头, 小孩): pitched higher

    @property
    def gender(self) -> Literal["female", "male"]:
        return "female" if "_female_" in self.id else "male"


_TABLE: Final = (
    # 中文发音人
    Speaker("zh_female_qingxin", "通用", "清新女声"),
    Speaker("zh_male_chunhou", "通用", "醇厚男声"),
    Speaker("zh_male_xiaohai", "通用", "童年伙伴(可爱男孩)", child=True),
    Speaker("zh_male_huoli", "通用", "温柔男声(活力男声)"),
    Speaker("zh_female_tianmei", "通用", "甜美女声"),
    Speaker("zh_male_silang", "通用", "四郎"),
    Speaker("zh_male_rap", "方言趣味", "嘻哈歌手"),
    Speaker("zh_female_sichuan", "方言趣味", "四川女声"),
    Speaker("zh_female_mengyatou", "方言趣味", "萌丫头", child=True),
    Speaker("zh_female_guli", "方言趣味", "顾姐"),
    Speaker("zh_male_xionger", "方言趣味", "熊二"),
    Speaker("zh_female_lindaiyu", "方言趣味", "林黛玉"),
    Speaker("zh_female_tvb", "方言趣味", "TVB女声"),
    Speaker("zh_male_sunwukong", "方言趣味", "猴哥"),
    Speaker("zh_male_commentate", "广告/短视频", "磁性解说男声"),
    Speaker("zh_female_xiaoqian", "超自然", "邻家女孩"),
    Speaker("zh_male_xiaojian", "超自然", "开朗男声"),
    Speaker("zh_female_xiaopengyou", "教育/陪伴", "小孩", child=True),
    # 英文发音人
    Speaker("en_male_cupid", "通用", "美英男声-Cupid"),
)

#: 附录 发音人列表: speaker id -> :class:`Speaker`, in the doc's order.
SPEAKERS: Final = MappingProxyType({s.id: s for s in _TABLE})


# -- the request, as the emulator reads it (types only; rules below) -------------


class EnvelopeBody(msgspec.Struct):
    """公共参数 / the Python demo's ``req``: every field optional here (the Go demo's form
    has credentials and namespace in the query string)."""

    appkey: str | None = None
    token: str | None = None
    namespace: str | None = None
    payload: str | None = None
    data: str = ""


class AudioConfigBody(msgspec.Struct, forbid_unknown_fields=True):
    """配置参数 ``audio_config``; values as sent, judged by :func:`check_audio_config`."""

    format: str = "wav"
    sample_rate: int = 24000
    channel: int = 1


class PayloadBody(msgspec.Struct, forbid_unknown_fields=True):
    """配置参数: the ``payload`` JSON string."""

    speaker: str
    url: str | None = None
    enable_background: bool = False
    audio_config: AudioConfigBody = msgspec.field(default_factory=AudioConfigBody)


# -- rules ------------------------------------------------------------------------

_URL: Final = re.compile(r"(?i)^https?://[^/?#\s]+")


def _choice(value: int, field: str, choices: tuple[int, ...]) -> int:
    if isinstance(value, bool) or value not in choices:
        raise ValidationError(field, value, f"must be one of {', '.join(map(str, choices))}")
    return value


def check_audio_config(config: AudioConfigBody) -> tuple[str, int, int]:
    """``(format, sample_rate, channel)``; an empty format is the default wav (SPEC §6)."""
    fmt = config.format or "wav"
    if fmt not in FORMATS:
        raise ValidationError("audio_config.format", config.format, "must be one of wav, mp3, aac")
    rate = _choice(config.sample_rate, "audio_config.sample_rate", SAMPLE_RATES)
    channel = _choice(config.channel, "audio_config.channel", CHANNELS)
    return fmt, rate, channel


def check_url(value: str) -> str:
    if not _URL.match(value):
        raise ValidationError("url", value, "must be an http(s) URL naming a host")
    return value
