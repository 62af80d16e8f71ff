"""Name pools of the synthetic demo community: every name here is made up.

Street, compound, village and unit names are plausible for a Huizhou suburb but fictional;
person names are drawn at random from common surnames and given-name characters, so they refer
to nobody. Nothing here is a phone number, an ID number or a real person.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: Common surnames of Huizhou (Cantonese and Hakka families), most common first.
SURNAMES: Final[tuple[str, ...]] = tuple(
    "陈李黄张刘林叶钟曾邓罗何杨吴周王梁赖谢朱徐郑蔡古温廖邱江许卢彭蓝骆欧苏胡谭冯"
)
#: Relative frequency of each surname (a gentle Zipf curve: a few dominate, as in reality).
SURNAME_WEIGHTS: Final = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8

#: Characters used in given names.
GIVEN_CHARS: Final[tuple[str, ...]] = tuple(
    "伟芳敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建国文辉志红玲海燕东春晓俊鹏宇欣婷雪琳"
    "浩锋斌娟梅兰珍荣新成金祥福德永玉凤婉嘉颖思佳子涵梓晨慧小彬展宏伦坤美莲淑雅"
)

#: The four main roads (路) along which the grid boundaries run: two north–south, two east–west.
MAIN_ROADS_NS: Final = ("金源路", "榕湖路")
MAIN_ROADS_EW: Final = ("金山路", "长宁路")

#: Names of the lanes (巷) that cross villages north–south.
NAMED_LANES: Final = (
    "榕树巷",
    "井头巷",
    "祠堂巷",
    "竹园巷",
    "龙眼巷",
    "荔枝巷",
    "书院巷",
    "石板巷",
    "米铺巷",
    "塘边巷",
    "凤凰巷",
    "杨桃巷",
    "龙船巷",
    "水井巷",
    "麻石巷",
    "豆腐巷",
    "榄树巷",
    "桂花巷",
    "茶园巷",
    "新屋巷",
    "东门巷",
    "西门巷",
)

#: Chinese ordinals for numbered lanes (上塘一巷, 上塘二巷 …).
ORDINALS: Final = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二")

#: The 18 resident units (驻区单位) and their relative size (how many duty-post members).
RESIDENT_UNITS: Final[tuple[tuple[str, float], ...]] = (
    ("金源实验小学", 30),
    ("长湖中学", 34),
    ("金源幼儿园", 10),
    ("金源医院", 52),
    ("金源社区卫生服务站", 8),
    ("金源供电所", 26),
    ("榕湖供水所", 16),
    ("惠源银行金源支行", 12),
    ("榕城信用社长湖分社", 9),
    ("金源邮政所", 8),
    ("金源燃气站", 10),
    ("金源电子有限公司", 40),
    ("榕湖物流有限公司", 22),
    ("长湖建材有限公司", 18),
    ("金山食品有限公司", 28),
    ("金源市场管理处", 12),
    ("金源物业服务有限公司", 20),
    ("长湖敬老院", 13),
)

#: The six branches (党支部) of the community party committee; the first four sit on grids.
BRANCHES: Final = (
    "金源社区第一党支部",
    "金源社区第二党支部",
    "金源社区第三党支部",
    "金源社区第四党支部",
    "金源社区离退休党支部",
    "金源社区两新组织党支部",
)


def person_names(rng: np.random.Generator, n: int, *, unique: bool = False) -> list[str]:
    """``n`` fictional full names (surname + one or two given characters).

    With ``unique`` no name repeats (drawn in order; duplicates are dropped and redrawn).
    """
    out: list[str] = []
    seen: set[str] = set()
    p = SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum()
    while len(out) < n:
        m = max(2 * (n - len(out)), 16)
        sur = rng.choice(len(SURNAMES), size=m, p=p)
        two = rng.random(m) < 0.7  # most given names have two characters
        g1 = rng.integers(0, len(GIVEN_CHARS), size=m)
        g2 = rng.integers(0, len(GIVEN_CHARS), size=m)
        for s, t, a, b in zip(sur, two, g1, g2, strict=True):
            name = SURNAMES[s] + GIVEN_CHARS[a] + (GIVEN_CHARS[b] if t and a != b else "")
            if unique:
                if name in seen:
                    continue
                seen.add(name)
            out.append(name)
            if len(out) == n:
                break
    return out


def cn_number(n: int) -> str:
    """A small positive integer in Chinese numerals (1–99), as in 第十二网格."""
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


#: Short descriptions of requests by category code; ``{place}`` is a street, compound or
#: village name. They carry no personal data by construction.
DESCRIPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "sewer_blocked": (
        "{place}下水道堵塞，污水外溢",
        "{place}排水沟淤塞，雨后积水",
        "{place}化粪池满溢",
    ),
    "street_light": ("{place}路灯不亮", "{place}一段路灯缺失，夜间漆黑", "{place}路灯闪烁"),
    "manhole_cover": ("{place}井盖缺失", "{place}井盖破损松动"),
    "water_supply": ("{place}停水", "{place}水压不足", "{place}供水管漏水"),
    "power_outage": ("{place}停电", "{place}电线老化跳闸"),
    "road_damage": ("{place}路面坑洼", "{place}人行道砖松动", "{place}路面塌陷"),
    "trash_bin": ("{place}垃圾桶满溢", "{place}垃圾桶破损"),
    "green_damage": ("{place}绿化带被毁", "{place}树木倒伏"),
    "sanitation": ("{place}垃圾乱堆乱放", "{place}卫生死角无人清理", "{place}建筑垃圾堆放"),
    "illegal_advert": ("{place}墙面小广告", "{place}乱张贴广告"),
    "illegal_construction": ("{place}楼顶违法搭建", "{place}私自加建围墙"),
    "street_vending": ("{place}占道摆卖", "{place}店外经营阻碍通行"),
    "illegal_parking": ("{place}车辆乱停堵塞通道", "{place}消防通道被占用"),
    "fire_hazard": ("{place}电动车楼道充电", "{place}消防通道堆放杂物", "{place}灭火器过期"),
    "gas_hazard": ("{place}闻到燃气味", "{place}燃气管道老化"),
    "public_security": ("{place}夜间有可疑人员", "{place}监控损坏"),
    "noise": ("{place}夜间施工噪声", "{place}商铺音响扰民"),
    "neighbour_dispute": ("{place}邻里漏水纠纷", "{place}邻里通道纠纷"),
    "tenancy_dispute": ("{place}押金退还纠纷", "{place}租金纠纷"),
    "hardship_subsidy": ("{place}住户申请临时救助", "{place}住户咨询低保申请"),
    "elderly_care": ("{place}独居老人需上门照料", "{place}老人申请助餐服务"),
    "disability_support": ("{place}残疾人申请辅具", "{place}残疾人申请就业帮扶"),
    "residence_permit": ("{place}租户办理居住证", "{place}流动人口登记"),
    "migrant_schooling": ("{place}随迁子女入学咨询", "{place}随迁子女转学申请"),
    "wage_arrears": ("{place}务工人员被拖欠工资", "{place}务工人员讨薪求助"),
}
