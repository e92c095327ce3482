"""The speakers of SAMI VoiceConversion: the appendix table of doc 002, as data.

The doc's gender column is icons, lost in the text; the gender here comes
from the speaker id (``zh_female_…``/``zh_male_…``), which always says it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Literal

import msgspec

__all__ = ["SPEAKERS", "Speaker"]


class Speaker(msgspec.Struct, frozen=True, kw_only=True):
    """One speaker: its id (the ``speaker`` payload field) and what it sounds like."""

    id: str
    """The speaker id to send as ``speaker`` (``zh_female_qingxin``…)."""
    language: Literal["zh", "en"]
    """``zh`` (the doc's Chinese speakers) or ``en`` (English), from the id's prefix."""
    scene: str  # the doc's 场景 column (通用, 方言趣味, …)
    """What the voice suits, as the doc's 场景 column says it (通用 general, 方言趣味
    dialects and fun, 广告/短视频 ads and short videos…)."""
    name: str  # the doc's 音色 column, as published
    """The voice's name, as the doc's 音色 column publishes it (``清新女声``…)."""
    description: str  # the same in English
    """The name in English (``fresh female voice``…)."""
    gender: Literal["female", "male"]
    """``female`` or ``male``, from the id (the doc's gender column is icons, lost in
    its text)."""


def _speaker(id: str, scene: str, name: str, description: str) -> Speaker:
    language: Literal["zh", "en"] = "en" if id.startswith("en_") else "zh"
    gender: Literal["female", "male"] = "female" if "_female_" in id else "male"
    return Speaker(
        id=id, language=language, scene=scene, name=name, description=description, gender=gender
    )


_TABLE: Final = (
    # 中文发音人 (Chinese speakers)
    _speaker("zh_female_qingxin", "通用", "清新女声", "fresh female voice"),
    _speaker("zh_male_chunhou", "通用", "醇厚男声", "mellow, deep male voice"),
    _speaker("zh_male_xiaohai", "通用", "童年伙伴(可爱男孩)", "childhood friend (cute boy)"),
    _speaker("zh_male_huoli", "通用", "温柔男声(活力男声)", "gentle male voice (lively male)"),
    _speaker("zh_female_tianmei", "通用", "甜美女声", "sweet female voice"),
    _speaker("zh_male_silang", "通用", "四郎", "Silang (a TV-drama emperor)"),
    _speaker("zh_male_rap", "方言趣味", "嘻哈歌手", "hip-hop singer"),
    _speaker("zh_female_sichuan", "方言趣味", "四川女声", "Sichuan-dialect female voice"),
    _speaker("zh_female_mengyatou", "方言趣味", "萌丫头", "cute girl"),
    _speaker("zh_female_guli", "方言趣味", "顾姐", "Sister Gu"),
    _speaker("zh_male_xionger", "方言趣味", "熊二", "Xiong Er (cartoon bear)"),
    _speaker("zh_female_lindaiyu", "方言趣味", "林黛玉", "Lin Daiyu (classic-novel heroine)"),
    _speaker("zh_female_tvb", "方言趣味", "TVB女声", "TVB (Hong Kong drama) female voice"),
    _speaker("zh_male_sunwukong", "方言趣味", "猴哥", "Monkey King"),
    _speaker("zh_male_commentate", "广告/短视频", "磁性解说男声", "magnetic male narrator"),
    _speaker("zh_female_xiaoqian", "超自然", "邻家女孩", "girl next door"),
    _speaker("zh_male_xiaojian", "超自然", "开朗男声", "cheerful male voice"),
    _speaker("zh_female_xiaopengyou", "教育/陪伴", "小孩", "child"),
    # 英文发音人 (English speakers)
    _speaker("en_male_cupid", "通用", "美英男声-Cupid", "American English male voice (Cupid)"),
)

#: Speaker id -> :class:`Speaker`, in the doc's order.
SPEAKERS: Final = MappingProxyType({s.id: s for s in _TABLE})
