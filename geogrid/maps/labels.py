"""Words on the maps, in Chinese (default) and English."""

from __future__ import annotations

from typing import Final, Literal

from geogrid.errors import InvalidInput

Lang = Literal["zh", "en"]
LANGS: Final = ("zh", "en")

_TEXT: Final[dict[str, tuple[str, str]]] = {
    # titles and captions
    "coverage_title": ("网格覆盖图", "Grid coverage map"),
    "hotspot_title": ("未结诉求热点图", "Hot spots of unresolved requests"),
    "plan_title": ("网格划分方案对比", "Boundary plan comparison"),
    "plan": ("方案", "plan"),
    "as_of": ("截至", "as of"),
    "period": ("统计周期", "period"),
    "all_history": ("全部", "all history"),
    "public": ("公开版", "public"),
    "official": ("内部版（姓名已脱敏）", "officials (names masked)"),
    "synthetic": (
        "演示数据：地点、人员与诉求均为虚构",
        "Demo data: places, people and requests are fictional",
    ),
    "communities": ("个社区", "communities"),
    "no_data": ("无数据", "no data"),
    # layers
    "layer_grids": ("网格", "Grids"),
    "layer_grid_labels": ("网格编码与名称", "Grid codes and names"),
    "layer_fields": ("责任田（按党员）", "Responsibility fields (per member)"),
    "layer_uncovered": ("未覆盖住户", "Households outside every field"),
    "layer_members": ("党员位置", "Members' positions"),
    "layer_streets": ("街巷", "Streets"),
    "layer_boundary": ("社区边界", "Community boundary"),
    "layer_hotspots": ("热点与冷点（Gi*）", "Hot and cold spots (Gi*)"),
    "layer_heat": ("未结诉求密度", "Density of open requests"),
    "layer_requests": ("未结诉求（聚合）", "Open requests (clustered)"),
    "layer_active": ("现行方案网格", "Active plan's grids"),
    "layer_draft": ("草案网格", "Draft plan's grids"),
    "layer_moved_households": ("调整网格的住户", "Households changing grid"),
    "layer_moved_fields": ("调整网格的责任田", "Fields changing grid"),
    # measures
    "households_per_member": ("每名党员联系户数", "Households per member"),
    "visit_coverage": ("走访覆盖率", "Visit coverage"),
    "open_per_100": ("每百户未结诉求", "Open requests per 100 households"),
    # figures
    "grid_code": ("网格编码", "Grid code"),
    "grid_name": ("网格名称", "Grid name"),
    "community": ("社区", "Community"),
    "households": ("住户", "Households"),
    "residents": ("居民", "Residents"),
    "members": ("党员", "Members"),
    "lead_member": ("网格长", "Grid lead"),
    "branch": ("党支部", "Branch"),
    "fields": ("责任田", "Responsibility fields"),
    "fields_vacant": ("空缺责任田", "Vacant fields"),
    "uncovered": ("未覆盖住户", "Households outside fields"),
    "open_requests": ("未结诉求", "Open requests"),
    "received": ("受理诉求", "Requests received"),
    "resolved": ("已解决", "Resolved"),
    "resolution_rate": ("解决率", "Resolution rate"),
    "visited": ("已走访住户", "Households visited"),
    "field": ("责任田", "Field"),
    "member": ("党员", "Member"),
    "assigned": ("已落实", "held"),
    "vacant": ("空缺", "vacant"),
    "kind": ("类别", "Kind"),
    "count": ("数量", "Count"),
    "street": ("街巷", "Street"),
    # hot spots
    "cell": ("单元", "Cell"),
    "requests_in_cell": ("未结诉求", "Open requests"),
    "rate_per_100": ("每百户", "Per 100 households"),
    "z_score": ("Gi* z 值", "Gi* z-score"),
    "p_value": ("p 值", "p-value"),
    "confidence": ("置信度", "Confidence"),
    "hot": ("热点", "Hot spot"),
    "cold": ("冷点", "Cold spot"),
    "not_significant": ("不显著", "Not significant"),
    "category": ("类别", "Category"),
    "programme": ("工程", "Programme"),
    "status": ("状态", "Status"),
    "received_on": ("受理日期", "Received"),
    "days_open": ("已办天数", "Days open"),
    "overdue": ("已超期", "Overdue"),
    "only_open": ("未结诉求", "open requests"),
    "only_overdue": ("超期未结诉求", "overdue open requests"),
    "unit_h3": ("H3 六边形（分辨率 {res}）", "H3 hexagons (resolution {res})"),
    "unit_grids": ("网格", "grids"),
    "fdr_note": (
        "Getis-Ord Gi*，经 Benjamini-Hochberg 错误发现率校正",
        "Getis-Ord Gi*, Benjamini-Hochberg false-discovery-rate corrected",
    ),
    "too_few_features": (
        "单元太少（{n} 个，至少需要 {min} 个），无法进行热点分析：仅显示数量，不标注热点",
        "Too few features ({n}; at least {min} are needed) for hot-spot statistics: "
        "counts only, no hot or cold spots",
    ),
    "too_few_requests": (
        "诉求太少（{n} 条，至少需要 {min} 条），无法进行热点分析：仅显示数量，不标注热点",
        "Too few requests ({n}; at least {min} are needed) for hot-spot statistics: "
        "counts only, no hot or cold spots",
    ),
    "no_variation": (
        "各单元数值相同，不存在热点或冷点",
        "Every feature has the same value: no hot or cold spots",
    ),
    "outside_units": ("{n} 条诉求不在任何网格内", "{n} requests lie outside every grid"),
    "moved_from": ("原网格", "From grid"),
    "moved_to": ("新网格", "To grid"),
}

KINDS: Final[dict[str, tuple[str, str]]] = {
    "resident": ("社区党员", "resident"),
    "registered_elsewhere": ("外地党员", "registered elsewhere"),
    "duty_post": ("市区党员责任岗", "duty post"),
    "new_org": ("两新组织党员", "new organisation"),
    "stationed": ("驻点工作人员", "stationed"),
}
PROGRAMMES: Final[dict[str, tuple[str, str]]] = {
    "convenience": ("便民", "convenience"),
    "integration": ("融入", "migrant integration"),
    "care": ("关爱", "special-population care"),
    "mediation": ("调处", "dispute mediation"),
    "safety": ("平安", "public safety"),
}
STATUSES: Final[dict[str, tuple[str, str]]] = {
    "received": ("受理", "received"),
    "registered": ("立案", "registered"),
    "dispatched": ("派遣", "dispatched"),
    "in_progress": ("处置中", "in progress"),
    "escalated": ("已上报", "escalated"),
    "resolved": ("已处置", "resolved"),
    "closed": ("已结案", "closed"),
    "rejected": ("不予受理", "rejected"),
}


def check_lang(lang: str | None) -> Lang:
    value = (lang or "zh").strip().lower()
    if value in ("zh", "zh-cn", "cn"):
        return "zh"
    if value in ("en", "en-gb", "en-us"):
        return "en"
    raise InvalidInput(f"lang must be zh or en, got {lang!r}", field="lang")


def t(key: str, lang: Lang, **values: object) -> str:
    """The text ``key`` in ``lang``, with ``{name}`` placeholders filled."""
    zh, en = _TEXT[key]
    text = en if lang == "en" else zh
    return text.format(**values) if values else text


def pick(table: dict[str, tuple[str, str]], key: str | None, lang: Lang) -> str:
    """A code's label from ``table`` (the code itself when unknown)."""
    if key is None:
        return "–"
    zh, en = table.get(key, (key, key))
    return en if lang == "en" else zh
