"""Catalogs from doc 001: action libraries (§2.1.2), camera scenes (§2.1.5), fonts (§2.2.4.2).

Plain data, transcribed as published (typos and duplicate descriptions kept, so
ids match what the service expects).  Read-only views, shared by the SSML
validator and anyone building a UI.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "ACTIONS",
    "CAMERA_MODE",
    "CAMERA_SCENES",
    "CATALOG_ROLES",
    "FONTS",
    "POSE_CLOTHES",
    "near_miss_role",
]

_GUO_XIAOYUAN: Final = {
    "0": "opening_wave_hand",
    "2": "指向前方 双手",
    "3": "指向前方 右手",
    "4": "指向前方 左手",
    "5": "指向侧上方 右手",
    "6": "指向侧上方 左手",
    "7": "指向侧下方 右手",
    "8": "指向侧下方 左手",
    "9": "指向斜前上方 右手",
    "10": "指向斜前上方 左手",
    "11": "指向斜前下方 右手",
    "12": "指向斜前下方 左手",
    "13": "鼓掌",
    "15": "ok",
    "16": "数字1",
    "17": "数字2",
    "18": "数字3",
    "19": "展示从外向内 右手",
    "20": "展示从外向内 左手",
    "22": "展示从内向外 右手",
    "24": "展示从内向外 左手",
    "25": "单手强调 右手",
    "26": "单手摊开 右手",
    "28": "单手摊开 左手",
    "31": "双手强调",
    "32": "双手摊开",
    "33": "双手点赞",
    "34": "右手 点赞",
    "35": "右手比心",
    "36": "结束动作 摆手",
}

_XIAO_HUAN: Final = {
    "OPENING_BOWING": "opening_bowing",
    "3": "指向前方(双手)",
    "5": "指向前方(右)",
    "7": "指向前方(左)",
    "9": "指向侧上方(右)",
    "11": "指向侧上方(左)",
    "13": "指向侧下方(右)",
    "14": "指向侧下方(左)",
    "18": "指向斜前上方(右)",
    "20": "指向斜前上方(左)",
    "21": "指向斜前下方(右)",
    "24": "指向斜前下方(左)",
    "26": "鼓掌",
    "29": "摆手",
    "OK": "ok",
    "34": "数字1",
    "35": "数字2",
    "37": "数字3",
    "39": "打招呼",
    "42": "单手强调",
    "46": "单手摊开(右手)",
    "49": "单手摊开(左手)",
    "IDLE": "idle",
    "51": "从外向内(右手)",
    "54": "从外向内(左手)",
    "55": "从内向外(右手)",
    "57": "从内向外(左手)",
    "59": "双手强调",
    "61": "双手摊开",
    "63": "双手比心",
    "66": "双手点赞",
    "67": "右手比心",
    "69": "右手点赞",
    "ENDING_BOWING": "ending_bowing",
}

# Mixed "_ANI"/"_Ani" suffixes and the repeated "平静介绍商品4/5" are as published.
_COCO: Final = {
    "coco_normal_01_ANI": "自然站立",
    "coco_hello_01_ANI": "打招呼",
    "coco_introduction_03_ANI": "自我介绍",
    "coco_selling_1_01_ANI": "兴奋带货1",
    "coco_selling_2_01_ANI": "兴奋带货2",
    "coco_selling_3_01_ANI": "兴奋带货3",
    "coco_selling_4_02_ANI": "兴奋带货4",
    "coco_talking_1_02_ANI": "平静介绍商品1",
    "coco_talking_2_01_ANI": "平静介绍商品2",
    "coco_talking_3_01_ANI": "平静介绍商品3",
    "coco_talking_4_01_Ani": "平静介绍商品4",
    "coco_talking_5_01_Ani": "平静介绍商品5",
    "coco_talking_6_01_Ani": "平静介绍商品6",
    "coco_talking_7_01_ANI": "平静介绍商品7",
    "coco_talking_8_01_ANI": "平静介绍商品8",
    "coco_talking_9_01_ANI": "平静介绍商品4",
    "coco_talking_10_01_ANI": "平静介绍商品5",
    "coco_upper_left_01_ANI": "展示左上角",
    "coco_upper_right_01_ANI": "展示右上角",
    "coco_buttom_left_02_ANI": "展示左下角",
    "coco_buttom_right_01_ANI": "展示右下角",
    "coco_left_01_ANI": "展示左侧",
    "coco_right_02_ANI": "展示右侧",
    "coco_front_02_ANI": "展示身前",
    "coco_heart_01_ANI": "比心",
    "coco_thumbup_01_2_ANI": "点赞",
    "coco_ok_03_ANI": "ok",
    "coco_no_01_2_ANI": "不对",
    "coco_sale_01_2_ANI": "上链接",
    "coco_order_06_2_ANI": "逼单",
    "coco_answer_1_01_ANI": "回答商品问题1",
    "coco_answer_2_02_ANI": "回答商品问题2",
    "coco_barrage_03_ANI": "看弹幕",
    "coco_refund_02_ANI": "退款介绍",
    "coco_soldout_05_ANI": "卖光了",
    "coco_bye_01_ANI": "下播",
    "coco_lookaround_01_ANI": "四处观望",
    "coco_yoga_02_2_ANI": "做瑜伽",
    "coco_laugh_1_02_ANI": "捂嘴笑",
    "coco_think_01_2_ANI": "思考",
    "coco_wave_04_2_ANI": "晃动",
    "coco_akimbo_01_ANI": "叉腰",
    "coco_nod_01_2_ANI": "点头",
    "coco_jidong_01_2_ANI": "激动",
}

#: role -> action id (the ``type`` of ``<action/>``) -> description.
ACTIONS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "GuoXiaoyuan": MappingProxyType(_GUO_XIAOYUAN),
        "XiaoHuan": MappingProxyType(_XIAO_HUAN),
        "COCO": MappingProxyType(_COCO),
    }
)

#: The catalog roles of doc 001 §2.1.1 (2D GuoXiaoyuan, XiaoHuan; 3D COCO), exact case.
CATALOG_ROLES: Final[tuple[str, ...]] = ("GuoXiaoyuan", "XiaoHuan", "COCO")


def _distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transpositions (optimal string alignment)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def near_miss_role(role: str) -> str | None:
    """The catalog role ``role`` looks like a slip of, or None.

    A near miss differs from a catalog role only in case (``guoxiaoyuan``,
    ``GuoXiaoYuan``), or by at most 2 edits (1 for the four-letter ``COCO``)
    ignoring case.  An exact catalog name is never a near miss; neither is a
    name far from all of them (a trained avatar's conf_name, unknowable here).
    """
    if role in CATALOG_ROLES:
        return None
    folded = role.casefold()
    for name in CATALOG_ROLES:
        allowed = 1 if len(name) < 8 else 2
        # Cheap length filter first: the distance is at least the length difference.
        if abs(len(folded) - len(name)) > allowed:
            continue
        if _distance(folded, name.casefold()) <= allowed:
            return name
    return None


#: role -> the pose/clothes combination the action library was recorded in
#: (站姿全身_客服装, standing full body, service uniform).
POSE_CLOTHES: Final[Mapping[str, str]] = MappingProxyType(
    {"GuoXiaoyuan": "pose2_clothes1", "XiaoHuan": "pose1_clothes1", "COCO": "pose_clothes2"}
)

#: ``<camera mode=…/>``: the only documented mode.
CAMERA_MODE: Final = "Camera3D"
#: ``<camera scene=…/>`` values (3D only).
CAMERA_SCENES: Final[tuple[str, ...]] = (
    "3dCameraFrontAll",
    "3dCameraFrontHalf",
    "3dCameraFrontFace",
)

#: Subtitle ``fontname`` values (the "fontname" column of §2.2.4.2).
FONTS: Final[frozenset[str]] = frozenset(
    {
        # Simplified Chinese
        "Source Han Serif CN",
        "Source Han Serif CN SemiBold",
        "Source Han Serif CN Bold",
        "Source Han Sans CN Normal",
        "Source Han Sans CN Heavy",
        "Roboto",
        "Roboto Medium",
        "PangMenZhengDao",
        "ZhuoJianGanLanJianTi Regular",
        "ShouShuti",
        "xiaowei",
        "zcoolwenyiti",
        "zcoolqingkehuangyouti-Regular",
        "zcool-gdh",
        "HappyZcool-2016",
        "ZCOOL_KuHei",
        "YouSheBiaoTiHei",
        "新叶念体 Regular",
        "sucaijishi",
        "Pangmenzhengdaoqingsongti",
        "MuyaoPleased",
        "PangMenZhengDao-Cu",
        "lianmengqiyilushuaizhengruiheiti Regular",
        "jiangxizhuokai Regular",
        "XianErTi",
        "HCSZT Regular",
        # Traditional Chinese
        "QIJIC",
        "清松手寫體1",
        "Source Han Sans TW",
        "Source Han Serif TW",
        "GenWanMin JP Regular",
        # English
        "ZCOOL Addict Italic 01",
        "Public Sans Regular",
        "Raleway",
        "Montserrat Regular",
        "Source Sans Pro",
        "Sinkin Sans 400 Regular",
        "Quicksand-Regular",
        "KaushanScript-Regular",
        "Cantarell Regular",
        "ChunkFive Regular",
    }
)
