"""Which grid and member cover this point or address? In-memory lookups of the active plan.

The lookup path answers from memory (``../shared/DESIGN.md``: set-based work in SQL, the hot
lookup path from an in-memory spatial index). Two layers:

* :class:`LookupIndex` — one community's active plan: grids (codes, names, lead member),
  responsibility fields (member), the branch on each grid, buildings with the party group
  sitting on them, street lines (to say which grids a street crosses) and the members with
  **masked** names only (:func:`mask_name`; full names are dropped when the index is built).
  Polygons are found through a bucket grid per layer (:class:`_Cells`, built with a shapely
  STRtree; tested to answer exactly as an STRtree query with the edge rule): ~5 µs for
  :meth:`~LookupIndex.lookup_point`, millions of points a second for
  :meth:`~LookupIndex.lookup_points`. Pure: built from frames, testable without a database
  (:meth:`LookupIndex.from_db` reads them).
* :class:`LookupService` — an index (and an address gazetteer, ``geogrid.address``) for every
  community in the database, kept current: a background thread reads the change counters
  (``data_versions``, bumped by triggers on every table the indexes are built from) once per
  ``poll_interval`` — one single-row read, never a query per lookup — and when a counter
  moved it builds new indexes off the request path and swaps one reference. A change made by
  another process (the CLI) is therefore answered within ``poll_interval`` + build time (≈ 1 s
  + tens of ms for a community of the demo's size).

Rules, the same as the SQL assignment (``geogrid.assign``, ``geogrid.db.dialect``):

* A point on an edge shared by two grids goes to the grid with the **lowest code**; between
  overlapping responsibility fields the **lowest field id** wins (docs/api.md, "The edge
  rule"). Points are covered by their polygons' boundaries (``ST_Covers`` ≡ shapely
  ``intersects`` for a point and a polygon).
* The member is the holder of the responsibility field covering the point (``member_rule``
  ``"field"``); when no field covers it, or the field is vacant, the grid's lead member
  (``"grid_lead"``; ``member`` is null when the grid has no lead either).
* A point outside every grid is :class:`~geogrid.errors.NotFound`; its details name the
  nearest grid and the distance to it in metres: the nearest point of the grid is found in a
  local equirectangular frame (x scaled by cos φ of the community), then the distance is
  measured on the WGS 84 ellipsoid (geodesic, ``pyproj.Geod``).

Coordinates come in any CRS :func:`geogrid.crs.normalize_crs` accepts; GCJ-02 and BD-09 are
converted to WGS 84 on the way in, and the answer gives the point in WGS 84 and in the
requested CRS (docs/api.md, "Lookup").
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely
import shapely.ops
from geopandas import GeoDataFrame
from shapely.geometry import Point
from sqlalchemy import Connection, Engine

from geogrid import crs as gcrs
from geogrid.errors import DatabaseNotReady, GeogridError, InvalidInput, NotFound
from geogrid.privacy import mask_name

if TYPE_CHECKING:  # pragma: no cover
    from geogrid.lookup.address import AddressMatch, Candidate, Gazetteer

__all__ = [
    "MAX_BATCH",
    "RULE_FIELD",
    "RULE_GRID_LEAD",
    "LookupIndex",
    "LookupResult",
    "LookupService",
    "PointLookup",
    "PointLookups",
    "mask_name",
]

log = logging.getLogger("geogrid.lookup")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Most items one batch may hold (``POST /v1/lookup/batch``).
MAX_BATCH: Final = 10_000
#: ``member_rule``: the holder of the responsibility field covering the point.
RULE_FIELD: Final = "field"
#: ``member_rule``: no field (or a vacant one) covers the point: the grid's lead member.
RULE_GRID_LEAD: Final = "grid_lead"
#: ``member.role``: leads a grid of the active plan (网格长).
ROLE_GRID_LEAD: Final = "grid_lead"
#: ``member.role``: holds a responsibility field (责任田).
ROLE_FIELD_HOLDER: Final = "field_holder"
#: ``member.role``: neither.
ROLE_MEMBER: Final = "member"
#: Decimals of coordinates in answers (1e-7° ≈ 1 cm).
COORD_DECIMALS: Final = 7

_GEOD: Final = pyproj.Geod(ellps="WGS84")

# --------------------------------------------------------------------------------------------
# What an answer holds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommunityInfo:
    id: int
    code: str
    name: str
    #: Place names above and of the community (province … community), for address prefixes.
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanInfo:
    id: int
    version: int


@dataclass(frozen=True, slots=True)
class GridInfo:
    id: int
    code: str
    name: str | None
    lead_member_id: int | None


@dataclass(frozen=True, slots=True)
class BranchInfo:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class BuildingInfo:
    id: int
    name: str | None
    compound: str | None


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    name: str
    building: BuildingInfo


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member as the public sees them: no name, only a masked one."""

    id: int
    kind: str
    role: str
    display_name: str


@dataclass(frozen=True, slots=True)
class FieldInfo:
    id: int
    name: str | None
    member_id: int | None


@dataclass(frozen=True, slots=True)
class StreetGrid:
    """A grid a street crosses, with the share of the street's length inside it (0–1)."""

    grid: GridInfo
    share: float


@dataclass(frozen=True, slots=True)
class PointLookup:
    """What covers one WGS 84 point: grid, field, member (and rule), branch, building group."""

    community: CommunityInfo
    plan: PlanInfo
    grid: GridInfo
    field: FieldInfo | None
    member: MemberInfo | None
    member_rule: str
    branch: BranchInfo | None
    group: GroupInfo | None
    lon: float
    lat: float
    #: The place part as JSON without its closing brace, shared by every point with the same
    #: grid, field and building (made once per index; see :meth:`LookupResult.to_json`).
    place_json: str = dataclasses.field(default="", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The place part of the ``/v1/lookup`` body (docs/api.md)."""
        return _place_dict(self)


def _place_dict(p: PointLookup) -> dict[str, Any]:
    g, f, mb, br, gr = p.grid, p.field, p.member, p.branch, p.group
    return {
        "community": {"code": p.community.code, "name": p.community.name},
        "grid": {"code": g.code, "name": g.name},
        "branch": None if br is None else {"id": br.id, "name": br.name},
        "group": None
        if gr is None
        else {
            "id": gr.id,
            "name": gr.name,
            "building": {
                "id": gr.building.id,
                "name": gr.building.name,
                "compound": gr.building.compound,
            },
        },
        "member": None
        if mb is None
        else {"id": mb.id, "kind": mb.kind, "role": mb.role, "display_name": mb.display_name},
        "member_rule": p.member_rule,
        "field": None if f is None else {"id": f.id, "name": f.name},
        "plan": {"id": p.plan.id, "version": p.plan.version},
    }


def _coord(v: float) -> float:
    return round(float(v), COORD_DECIMALS)


def _dumps(data: Any) -> str:
    """Compact JSON, UTF-8 text as is (the API's bodies)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


#: Most place fragments an index keeps serialised (distinct grid × field × building).
_JSON_CACHE_SIZE: Final = 100_000


# --------------------------------------------------------------------------------------------
# The index of one community
# --------------------------------------------------------------------------------------------


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return int(value)


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _frame(data: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    if data is None:
        return pd.DataFrame({c: [] for c in columns})
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}")
    return data


def _geoms(data: pd.DataFrame) -> npt.NDArray[np.object_]:
    """The frame's geometries (its active geometry column, else ``geometry``)."""
    if len(data) == 0:
        return np.empty(0, dtype=object)
    column = data.geometry if isinstance(data, GeoDataFrame) else data["geometry"]
    return np.asarray(column.to_numpy(), dtype=object)


class _Cells:
    """A uniform bucket grid over one layer's polygons, for lookups without Point objects.

    Each cell of an ``n × n`` grid over the layer's bounds holds the polygons that intersect
    the cell's closed box, widened by :data:`_CELL_PAD` so that a point rounded into a
    neighbouring cell still finds every polygon covering it. A cell is *pure* when its
    lowest-ranked polygon contains the widened box properly: every point in it is answered
    with that polygon, no geometry test at all; *empty* cells answer −1;
    only points in *mixed* cells (along edges) are tested, candidates in rank order, first
    hit wins: the edge rule (positions are ranks). With ~0.5 µs per single lookup instead of
    ~3 µs for an STRtree query through shapely's Python layer (+ 2.6 µs to make the Point),
    and no Point objects in bulk (``shapely.points`` alone costs ~0.35 s per million), this
    is the "bucket grid" of ../shared/PERF_NOTES.md in numpy. The predicate is the same as
    the STRtree's and the SQL's: ``intersects`` ≡ ``ST_Covers`` for a point and a polygon.
    """

    def __init__(self, geoms: npt.NDArray[np.object_]) -> None:
        self.geoms = geoms
        self._geom_list = list(geoms)
        self.size = len(geoms)
        if self.size == 0:
            self.xmin = self.ymin = 1.0
            self.xmax = self.ymax = 0.0  # contains nothing
            self.nx = self.ny = 1
            self.dx = self.dy = 1.0
            self.answer = np.full(1, -1, dtype=np.int64)
            self.start = np.zeros(1, dtype=np.int64)
            self.count = np.zeros(1, dtype=np.int64)
            self.cand = np.zeros(0, dtype=np.int64)
            self._answer_list: list[int] = [-1]
            self._cand_lists: list[tuple[int, ...]] = [()]
            return
        xmin, ymin, xmax, ymax = (float(v) for v in shapely.total_bounds(geoms))
        n = int(min(_CELLS_MAX, max(_CELLS_MIN, math.ceil(math.sqrt(self.size) * 16))))
        self.nx = self.ny = n
        self.xmin, self.ymin, self.xmax, self.ymax = xmin, ymin, xmax, ymax
        self.dx = (xmax - xmin) / n or 1e-9
        self.dy = (ymax - ymin) / n or 1e-9
        i = np.tile(np.arange(n), n)  # cell c = j * n + i
        j = np.repeat(np.arange(n), n)
        boxes = shapely.box(
            xmin + i * self.dx - _CELL_PAD,
            ymin + j * self.dy - _CELL_PAD,
            xmin + (i + 1) * self.dx + _CELL_PAD,
            ymin + (j + 1) * self.dy + _CELL_PAD,
        )
        cell, poly = shapely.STRtree(geoms).query(boxes, predicate="intersects")
        order = np.lexsort((poly, cell))  # by cell, then rank
        cell, poly = cell[order].astype(np.int64), poly[order].astype(np.int64)
        self.count = np.bincount(cell, minlength=n * n).astype(np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)
        self.cand = poly
        answer = np.full(n * n, -1, dtype=np.int64)
        has = np.flatnonzero(self.count > 0)
        first = poly[self.start[has]]
        pure = shapely.contains_properly(geoms[first], boxes[has])
        answer[has] = np.where(pure, first, _MIXED)
        self.answer = answer
        self._answer_list = answer.tolist()
        self._cand_lists = [
            tuple(poly[a : a + k].tolist()) if k and ans == _MIXED else ()
            for a, k, ans in zip(
                self.start.tolist(), self.count.tolist(), self._answer_list, strict=True
            )
        ]

    def find(self, x: float, y: float) -> int:
        """Position (= rank) of the lowest-ranked polygon covering (x, y); −1 if none."""
        if not (self.xmin <= x <= self.xmax and self.ymin <= y <= self.ymax):
            return -1  # also NaN
        i = min(int((x - self.xmin) / self.dx), self.nx - 1)
        j = min(int((y - self.ymin) / self.dy), self.ny - 1)
        c = j * self.nx + i
        answer = self._answer_list[c]
        if answer != _MIXED:
            return answer
        for g in self._cand_lists[c]:
            if shapely.lib.intersects_xy(self._geom_list[g], x, y):
                return g
        return -1

    def find_many(self, x: FloatArray, y: FloatArray) -> IntArray:
        """:meth:`find` over arrays (non-finite coordinates find nothing)."""
        out = np.full(len(x), -1, dtype=np.int64)
        inb = np.flatnonzero(
            (x >= self.xmin) & (x <= self.xmax) & (y >= self.ymin) & (y <= self.ymax)
        )
        if len(inb) == 0:
            return out
        i = np.minimum(((x[inb] - self.xmin) / self.dx).astype(np.int64), self.nx - 1)
        j = np.minimum(((y[inb] - self.ymin) / self.dy).astype(np.int64), self.ny - 1)
        cell = j * self.nx + i
        answer = self.answer[cell]
        out[inb] = np.where(answer == _MIXED, -1, answer)
        mixed = answer == _MIXED
        if not mixed.any():
            return out
        pts, cells = inb[mixed], cell[mixed]
        counts = self.count[cells]
        owner = np.repeat(np.arange(len(pts)), counts)  # pair → its point (non-decreasing)
        ends = np.cumsum(counts)
        offset = np.arange(int(ends[-1])) - np.repeat(ends - counts, counts)
        cand = self.cand[np.repeat(self.start[cells], counts) + offset]
        hit = shapely.intersects_xy(self.geoms[cand], x[pts[owner]], y[pts[owner]])
        owner, cand = owner[hit], cand[hit]
        if len(owner):
            # Candidates of a cell are in rank order: the first hit of a point is the lowest.
            first = np.ones(len(owner), dtype=bool)
            first[1:] = owner[1:] != owner[:-1]
            out[pts[owner[first]]] = cand[first]
        return out


#: Cells per side of a layer's bucket grid: √(polygons) × 16, within these bounds.
_CELLS_MIN: Final = 32
_CELLS_MAX: Final = 256
#: Cell boxes are widened by this (degrees, ~0.1 mm) against rounding of the cell index.
_CELL_PAD: Final = 1e-9
_MIXED: Final = -2


@dataclass(frozen=True)
class PointLookups:
    """Bulk answers of :meth:`LookupIndex.lookup_points`: positions and ids per point.

    ``grid``, ``field``, ``building`` are positions into the index's sorted layers (−1: none);
    ``member_id`` is −1 where there is no member; ``rule`` is 0 outside every grid,
    1 ``field``, 2 ``grid_lead``.
    """

    index: LookupIndex
    lon: FloatArray
    lat: FloatArray
    grid: IntArray
    field: IntArray
    building: IntArray
    member_id: IntArray
    rule: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.grid)

    @property
    def found(self) -> npt.NDArray[np.bool_]:
        return self.grid >= 0

    def grid_codes(self) -> npt.NDArray[np.object_]:
        """The grid code of each point (None outside)."""
        codes = np.asarray([g.code for g in self.index.grids] + [None], dtype=object)
        return codes[self.grid]  # −1 picks the trailing None

    def member_rules(self) -> npt.NDArray[np.object_]:
        return np.asarray([None, RULE_FIELD, RULE_GRID_LEAD], dtype=object)[self.rule]

    def get(self, i: int) -> PointLookup | None:
        """The full answer for point ``i`` (None when it is outside every grid)."""
        gi = int(self.grid[i])
        if gi < 0:
            return None
        return self.index._answer(
            gi, int(self.field[i]), int(self.building[i]), float(self.lon[i]), float(self.lat[i])
        )


class LookupIndex:
    """In-memory index of one community's active plan (see the module docstring).

    Frames (extra columns are ignored; geometries in WGS 84):

    * ``grids``: ``id, code, name, lead_member_id`` + polygons (of the plan).
    * ``fields``: ``id, name, member_id`` + polygons (the community's responsibility fields).
    * ``members``: ``id, name, kind`` — names are masked here and not kept.
    * ``branch_grids``: ``grid_id, branch_id, branch_name``.
    * ``buildings``: ``id, name, compound`` + footprints; ``groups``: ``id, name, building_id``.
    * ``streets``: ``id, name`` + lines.
    """

    def __init__(
        self,
        *,
        community: CommunityInfo,
        plan: PlanInfo,
        grids: GeoDataFrame,
        fields: GeoDataFrame | None = None,
        members: pd.DataFrame | None = None,
        branch_grids: pd.DataFrame | None = None,
        buildings: GeoDataFrame | None = None,
        groups: pd.DataFrame | None = None,
        streets: GeoDataFrame | None = None,
    ) -> None:
        self.community = community
        self.plan = plan
        self._json_cache: dict[tuple[int, int, int], str] = {}
        grids = _frame(grids, ["id", "code", "name", "lead_member_id"])
        fields = _frame(fields, ["id", "name", "member_id"])
        members = _frame(members, ["id", "name", "kind"])
        branch_grids = _frame(branch_grids, ["grid_id", "branch_id", "branch_name"])
        buildings = _frame(buildings, ["id", "name", "compound"])
        groups = _frame(groups, ["id", "name", "building_id"])
        streets = _frame(streets, ["id", "name"])

        # Grids in the order of the edge rule: code, then id (as the SQL's ORDER BY).
        grids = grids.sort_values(["code", "id"], kind="stable") if len(grids) else grids
        self.grids: tuple[GridInfo, ...] = tuple(
            GridInfo(int(r.id), str(r.code), _opt_str(r.name), _opt_int(r.lead_member_id))
            for r in grids.itertuples(index=False)
        )
        self._grid_geoms = _geoms(grids)
        if len(self.grids) == 0:
            raise NotFound(
                f"community {community.code} has no grids in its active plan", field="community"
            )
        shapely.prepare(self._grid_geoms)
        self._grid_tree = shapely.STRtree(self._grid_geoms)
        self._grid_cells = _Cells(self._grid_geoms)
        self._grid_pos = {g.id: i for i, g in enumerate(self.grids)}

        # Fields by id (lowest id wins on shared edges).
        fields = fields.sort_values("id", kind="stable") if len(fields) else fields
        self.fields: tuple[FieldInfo, ...] = tuple(
            FieldInfo(int(r.id), _opt_str(r.name), _opt_int(r.member_id))
            for r in fields.itertuples(index=False)
        )
        self._field_geoms = _geoms(fields)
        shapely.prepare(self._field_geoms)
        self._field_cells = _Cells(self._field_geoms)

        # Members: masked once, full names not kept. Roles from the active plan.
        leads = {g.lead_member_id for g in self.grids if g.lead_member_id is not None}
        holders = {f.member_id for f in self.fields if f.member_id is not None}
        self.members: dict[int, MemberInfo] = {}
        for r in members.itertuples(index=False):
            mid = int(r.id)
            role = (
                ROLE_GRID_LEAD
                if mid in leads
                else ROLE_FIELD_HOLDER
                if mid in holders
                else ROLE_MEMBER
            )
            self.members[mid] = MemberInfo(mid, str(r.kind), role, mask_name(_opt_str(r.name)))
        self._field_member = np.asarray(
            [f.member_id if f.member_id in self.members else -1 for f in self.fields] + [-1],
            dtype=np.int64,
        )
        self._grid_lead = np.asarray(
            [g.lead_member_id if g.lead_member_id in self.members else -1 for g in self.grids]
            + [-1],
            dtype=np.int64,
        )

        # The branch on each grid (lowest branch id when several share one).
        branch_of: dict[int, BranchInfo] = {}
        for r in branch_grids.sort_values(["grid_id", "branch_id"]).itertuples(index=False):
            branch_of.setdefault(int(r.grid_id), BranchInfo(int(r.branch_id), str(r.branch_name)))
        self._grid_branch: tuple[BranchInfo | None, ...] = tuple(
            branch_of.get(g.id) for g in self.grids
        )

        # Buildings by id and the group sitting on each (lowest group id).
        buildings = buildings.sort_values("id", kind="stable") if len(buildings) else buildings
        self.buildings: tuple[BuildingInfo, ...] = tuple(
            BuildingInfo(int(r.id), _opt_str(r.name), _opt_str(r.compound))
            for r in buildings.itertuples(index=False)
        )
        self._building_geoms = _geoms(buildings)
        shapely.prepare(self._building_geoms)
        self._building_cells = _Cells(self._building_geoms)
        self._building_pos = {b.id: i for i, b in enumerate(self.buildings)}
        group_of: dict[int, tuple[int, str]] = {}
        for r in groups.sort_values("id").itertuples(index=False):
            bid = _opt_int(r.building_id)
            if bid is not None:
                group_of.setdefault(bid, (int(r.id), str(r.name)))
        self._building_group: tuple[GroupInfo | None, ...] = tuple(
            GroupInfo(group_of[b.id][0], group_of[b.id][1], b) if b.id in group_of else None
            for b in self.buildings
        )

        # A local metric frame for distances and lengths: x scaled by cos φ of the plan.
        xmin, ymin, xmax, ymax = shapely.total_bounds(self._grid_geoms)
        self.bounds: tuple[float, float, float, float] = (
            float(xmin),
            float(ymin),
            float(xmax),
            float(ymax),
        )
        self._kx = math.cos(math.radians((ymin + ymax) / 2))
        self._local_grids = shapely.transform(self._grid_geoms, self._to_local)
        self._local_tree = shapely.STRtree(self._local_grids)

        # Which grids each street crosses, with the share of its length in each.
        self.street_grids: dict[int, tuple[StreetGrid, ...]] = {}
        for r in streets.itertuples(index=False):
            self.street_grids[int(r.id)] = self._crossings(r.geometry)

    # --- construction from the database ----------------------------------------------------

    @classmethod
    def from_db(cls, conn: Connection, *, community: CommunityInfo) -> LookupIndex:
        """The index of ``community``'s active plan (:class:`NotFound` when it has none)."""
        return cls.from_frames(_read_frames(conn, community), community)

    @classmethod
    def from_frames(cls, frames: _Frames, community: CommunityInfo) -> LookupIndex:
        if frames.plan is None:
            raise NotFound(
                f"community {community.code} has no active boundary plan", field="community"
            )
        return cls(
            community=community,
            plan=frames.plan,
            grids=frames.grids,
            fields=frames.fields,
            members=frames.members,
            branch_grids=frames.branch_grids,
            buildings=frames.buildings,
            groups=frames.groups,
            streets=frames.streets,
        )

    # --- geometry helpers ------------------------------------------------------------------

    def _to_local(self, coords: FloatArray) -> FloatArray:
        out = coords.copy()
        out[:, 0] *= self._kx
        return out

    def _crossings(self, line: Any) -> tuple[StreetGrid, ...]:
        if line is None or shapely.is_empty(line):
            return ()
        local = shapely.transform(line, self._to_local)
        total = float(shapely.length(local))
        if total <= 0:
            return ()
        out = []
        for i in sorted(self._grid_tree.query(line, predicate="intersects")):
            piece = shapely.intersection(self._local_grids[i], local)
            share = float(shapely.length(piece)) / total
            if share > 0:
                out.append(StreetGrid(self.grids[int(i)], round(share, 3)))
        return tuple(out)

    def covers(self, lon: float, lat: float) -> bool:
        """Whether a grid covers the WGS 84 point."""
        return self._grid_cells.find(lon, lat) >= 0

    def locate(self, lon: float, lat: float) -> tuple[int, int, int]:
        """Positions (grid, field, building) covering the point by the edge rule; −1 for none."""
        gi = self._grid_cells.find(lon, lat)
        if gi < 0:
            return -1, -1, -1
        return gi, self._field_cells.find(lon, lat), self._building_cells.find(lon, lat)

    def _answer(
        self, gi: int, fi: int, bi: int, lon: float, lat: float, *, building_id: int | None = None
    ) -> PointLookup:
        grid = self.grids[gi]
        fld = self.fields[fi] if fi >= 0 else None
        holder = int(self._field_member[fi])
        member: MemberInfo | None
        if holder >= 0:
            member, rule = self.members[holder], RULE_FIELD
        else:
            lead = int(self._grid_lead[gi])
            member, rule = (self.members[lead] if lead >= 0 else None), RULE_GRID_LEAD
        if building_id is not None and building_id in self._building_pos:
            bi = self._building_pos[building_id]
        group = self._building_group[bi] if bi >= 0 else None
        key = (gi, fi, -1 if group is None else bi)
        cached = self._json_cache.get(key)
        place = PointLookup(
            community=self.community,
            plan=self.plan,
            grid=grid,
            field=fld,
            member=member,
            member_rule=rule,
            branch=self._grid_branch[gi],
            group=group,
            lon=lon,
            lat=lat,
            place_json=cached or "",
        )
        if cached is None:
            cached = _dumps(_place_dict(place))[:-1]
            if len(self._json_cache) < _JSON_CACHE_SIZE:
                self._json_cache[key] = cached
            object.__setattr__(place, "place_json", cached)  # frozen: set once, here
        return place

    # --- lookups -----------------------------------------------------------------------------

    def lookup_point(
        self, lon: float, lat: float, *, building_id: int | None = None
    ) -> PointLookup:
        """What covers the WGS 84 point; :class:`NotFound` (with the nearest grid) outside.

        ``building_id`` (from an address match) names the building whose group answers,
        instead of the footprint under the point (a door point lies just outside its wall).
        """
        gi, fi, bi = self.locate(lon, lat)
        if gi < 0:
            raise self.outside_error(lon, lat)
        return self._answer(gi, fi, bi, lon, lat, building_id=building_id)

    def lookup_points(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike, *, buildings: bool = True
    ) -> PointLookups:
        """Bulk :meth:`lookup_point` over WGS 84 arrays, vectorised per layer (:class:`_Cells`).

        Same edge rule as the SQL (and :func:`geogrid.spatial.assign_points`, tested equal);
        non-finite coordinates are outside. ``buildings=False`` skips the footprints.
        """
        x = np.ascontiguousarray(lons, dtype=np.float64).reshape(-1)
        y = np.ascontiguousarray(lats, dtype=np.float64).reshape(-1)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} longitudes for {len(y)} latitudes")
        n = len(x)
        grid = self._grid_cells.find_many(x, y)
        inside = np.flatnonzero(grid >= 0)
        fld = np.full(n, -1, dtype=np.int64)
        bld = np.full(n, -1, dtype=np.int64)
        if len(inside):
            xi, yi = x[inside], y[inside]
            fld[inside] = self._field_cells.find_many(xi, yi)
            if buildings:
                bld[inside] = self._building_cells.find_many(xi, yi)
        holder = self._field_member[fld]  # −1 picks the trailing −1
        lead = self._grid_lead[grid]
        member = np.where(holder >= 0, holder, lead)
        rule = np.where(grid < 0, 0, np.where(holder >= 0, 1, 2)).astype(np.int8)
        member = np.where(grid < 0, -1, member)
        return PointLookups(self, x, y, grid, fld, bld, member, rule)

    def nearest_grid(self, lon: float, lat: float) -> tuple[GridInfo, float]:
        """The grid nearest to the point and the geodesic distance to it in metres."""
        p = Point(lon * self._kx, lat)
        i = int(self._local_tree.nearest(p))
        near, _ = shapely.ops.nearest_points(self._local_grids[i], p)
        _, _, dist = _GEOD.inv(lon, lat, near.x / self._kx, near.y)
        return self.grids[i], float(dist)

    def outside_error(self, lon: float, lat: float, *, field: str | None = None) -> NotFound:
        grid, dist = self.nearest_grid(lon, lat)
        return NotFound(
            f"the point (lon {lon:.6f}, lat {lat:.6f}) is outside every grid of "
            f"{self.community.name} ({self.community.code}); the nearest grid is "
            f"{grid.code} at {dist:,.0f} m",
            field=field,
            details={
                "point": {"lon": _coord(lon), "lat": _coord(lat)},
                "nearest_grid": _nearest_dict(self, grid, dist),
            },
        )

    def group_of_building(self, building_id: int | None) -> GroupInfo | None:
        if building_id is None or building_id not in self._building_pos:
            return None
        return self._building_group[self._building_pos[building_id]]


def _nearest_dict(index: LookupIndex, grid: GridInfo, dist: float) -> dict[str, Any]:
    return {
        "community": index.community.code,
        "code": grid.code,
        "name": grid.name,
        "distance_m": round(dist, 1),
    }


# --------------------------------------------------------------------------------------------
# Reading the frames
# --------------------------------------------------------------------------------------------


@dataclass
class _Frames:
    plan: PlanInfo | None
    grids: GeoDataFrame | None = None
    fields: GeoDataFrame | None = None
    members: pd.DataFrame | None = None
    branch_grids: pd.DataFrame | None = None
    buildings: GeoDataFrame | None = None
    groups: pd.DataFrame | None = None
    streets: GeoDataFrame | None = None


def _read_frames(conn: Connection, community: CommunityInfo, *, plan_only: bool = False) -> _Frames:
    from geogrid.db import queries as q

    plan = q.active_plan(conn, community_id=community.id)
    frames = _Frames(plan=None if plan is None else PlanInfo(int(plan.id), int(plan.version)))
    if plan is not None:
        frames.grids = q.grids_frame(conn, plan_id=plan.id)
        frames.fields = q.fields_frame(conn, community_id=community.id)
        frames.members = q.members_frame(conn, community_id=community.id)
        frames.branch_grids = q.branch_grids_frame(conn, plan_id=plan.id)
        frames.groups = q.party_groups_frame(conn, community_id=community.id)
    if not plan_only:
        frames.buildings = q.buildings_frame(conn, community_id=community.id)
        frames.streets = q.streets_frame(conn, community_id=community.id)
    return frames


def _gazetteer_frames(
    conn: Connection, community: CommunityInfo, frames: _Frames
) -> dict[str, pd.DataFrame]:
    """The frames ``geogrid.address.Gazetteer.from_frames`` takes (points as lon/lat)."""
    from geogrid.db import queries as q

    households = q.address_households_frame(conn, community_id=community.id)
    streets = frames.streets if frames.streets is not None else GeoDataFrame()
    buildings = frames.buildings if frames.buildings is not None else GeoDataFrame()
    street_names = (
        dict(zip(streets["id"].astype(int), streets["name"], strict=True)) if len(streets) else {}
    )
    if len(streets):
        mid = shapely.line_interpolate_point(streets.geometry.to_numpy(), 0.5, normalized=True)
        st = pd.DataFrame(
            {
                "id": streets["id"].astype(int),
                "name": streets["name"],
                "kind": streets["kind"],
                "lon": shapely.get_x(mid),
                "lat": shapely.get_y(mid),
            }
        )
    else:
        st = pd.DataFrame({c: [] for c in ("id", "name", "kind", "lon", "lat")})
    if len(buildings):
        rep = shapely.point_on_surface(buildings.geometry.to_numpy())
        bl = pd.DataFrame(
            {
                "id": buildings["id"].astype(int),
                "name": buildings["name"],
                "compound": buildings["compound"],
                "aliases": [
                    list(a) if isinstance(a, list | tuple) else [] for a in buildings["aliases"]
                ],
                "street_name": [
                    street_names.get(_opt_int(s) or -1) for s in buildings["street_id"]
                ],
                "house_number": buildings["house_number"],
                "lon": shapely.get_x(rep),
                "lat": shapely.get_y(rep),
            }
        )
    else:
        bl = pd.DataFrame(
            {
                c: []
                for c in (
                    *("id", "name", "compound", "aliases"),
                    *("street_name", "house_number", "lon", "lat"),
                )
            }
        )
    return {"households": households, "buildings": bl, "streets": st}


# --------------------------------------------------------------------------------------------
# The service: every community, kept current
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupResult:
    """One answer of :meth:`LookupService.lookup`: the place, the point, the address match."""

    place: PointLookup
    crs: str
    requested_lon: float
    requested_lat: float
    match: AddressMatch | None = None
    street_grids: tuple[StreetGrid, ...] | None = None
    #: The grid of each of ``match.candidates`` (None outside every grid).
    candidate_grids: tuple[GridInfo | None, ...] = ()

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON, reusing the place's cached JSON.

        Same text as ``json.dumps(to_dict(), ensure_ascii=False, separators=(",", ":"))``
        (floats are written by ``repr`` in both; tested), several times faster.
        """
        p = self.place
        if not p.place_json:
            return _dumps(self.to_dict())
        match = (
            "null"
            if self.match is None
            else _dumps(_match_dict(self.match, self.street_grids, self.candidate_grids))
        )
        return (
            f'{p.place_json},"point":{{"wgs84":{{"lon":{_coord(p.lon)!r},"lat":{_coord(p.lat)!r}}},'
            f'"requested":{{"crs":{_dumps(self.crs)},"lon":{_coord(self.requested_lon)!r},'
            f'"lat":{_coord(self.requested_lat)!r}}}}},"match":{match}}}'
        )

    def to_dict(self) -> dict[str, Any]:
        """The body of ``GET /v1/lookup`` (docs/api.md, "Lookup")."""
        out = _place_dict(self.place)
        out["point"] = {
            "wgs84": {"lon": _coord(self.place.lon), "lat": _coord(self.place.lat)},
            "requested": {
                "crs": self.crs,
                "lon": _coord(self.requested_lon),
                "lat": _coord(self.requested_lat),
            },
        }
        out["match"] = (
            None
            if self.match is None
            else _match_dict(self.match, self.street_grids, self.candidate_grids)
        )
        return out


def _match_dict(
    match: AddressMatch,
    street_grids: tuple[StreetGrid, ...] | None,
    candidate_grids: Sequence[GridInfo | None] = (),
) -> dict[str, Any]:
    grids = list(candidate_grids) + [None] * (len(match.candidates) - len(candidate_grids))
    return {
        "level": match.level,
        "confidence": round(float(match.confidence), 3),
        "normalized": match.normalized,
        "candidates": [_candidate_dict(c, g) for c, g in zip(match.candidates, grids, strict=True)],
        "street_grids": None
        if street_grids is None
        else [{"code": s.grid.code, "name": s.grid.name, "share": s.share} for s in street_grids],
    }


def _candidate_dict(c: Candidate, grid: GridInfo | None) -> dict[str, Any]:
    """A candidate of an ambiguous match: its label is building level at most (never a unit
    or room, ``geogrid.address``), its point in WGS 84 and the grid covering it."""
    return {
        "level": c.level,
        "label": c.label,
        "confidence": round(float(c.confidence), 3),
        "lon": _coord(c.lon),
        "lat": _coord(c.lat),
        "grid": None if grid is None else {"code": grid.code, "name": grid.name},
    }


@dataclass(frozen=True)
class _CommunityState:
    info: CommunityInfo
    index: LookupIndex | None
    #: Why there is no index (no active plan, no grids), for the error.
    problem: str | None
    gazetteer: Gazetteer | None


@dataclass(frozen=True)
class _State:
    versions: dict[str, int] = field(default_factory=dict)
    communities: tuple[_CommunityState, ...] = ()
    by_code: dict[str, _CommunityState] = field(default_factory=dict)
    built_at: float = 0.0


@functools.lru_cache(maxsize=64)
def _crs_kind(name: str) -> str:
    """``lonlat`` for geographic CRSs (and GCJ-02/BD-09), ``projected`` otherwise."""
    if name in (gcrs.WGS84, gcrs.CGCS2000, gcrs.GCJ02, gcrs.BD09):
        return "lonlat"
    return "lonlat" if pyproj.CRS.from_user_input(name).is_geographic else "projected"


def _check_point(lon: Any, lat: Any, crs: str) -> tuple[float, float]:
    """Validated (x, y) in ``crs``: :class:`InvalidInput` names the parameter at fault.

    Lon/lat CRSs (WGS 84, CGCS2000, GCJ-02, BD-09, geographic EPSG codes) are checked by
    :func:`geogrid.crs.check_lonlat` (finite, in range, a hint when they look swapped); a
    projected CRS's easting/northing only for being finite numbers (the range is checked on
    the converted point, :func:`_convert_point`).
    """
    if lon is None or (isinstance(lon, str) and not lon.strip()):
        raise InvalidInput("lon is missing: give lon and lat (or an address)", field="lon")
    if lat is None or (isinstance(lat, str) and not lat.strip()):
        raise InvalidInput("lat is missing: give lon and lat (or an address)", field="lat")
    if _crs_kind(crs) == "lonlat":
        return gcrs.check_lonlat(lon, lat)
    return _finite(lon, "lon"), _finite(lat, "lat")


def _convert_point(x: float, y: float, crs: str) -> tuple[float, float]:
    """A checked point in ``crs`` → WGS 84 lon/lat."""
    if crs in (gcrs.WGS84, gcrs.CGCS2000):
        return x, y
    wlon, wlat = gcrs.to_wgs84(x, y, crs)
    if _crs_kind(crs) != "lonlat":
        if not (math.isfinite(wlon) and math.isfinite(wlat)):
            raise InvalidInput(f"the point ({x}, {y}) is outside the domain of {crs}", field="lon")
        gcrs.check_lonlat(wlon, wlat)
    return wlon, wlat


def _parse_point(lon: Any, lat: Any, crs: str) -> tuple[float, float, float, float]:
    """Checked (x, y) in ``crs`` and the same point as WGS 84 lon/lat."""
    x, y = _check_point(lon, lat, crs)
    return (x, y, *_convert_point(x, y, crs))


def _finite(value: Any, name: str) -> float:
    """check_lonlat's number rules without its degree ranges (for projected CRSs)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number, got {value!r}", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}", field=name) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}", field=name)
    return number


class LookupService:
    """Point and address lookups over every community of a database, kept current.

    ``start()`` builds the indexes and starts the poller thread (``poll_interval`` seconds,
    default 1); ``stop()`` ends it. ``freeze_gc`` (for servers) keeps the long-lived objects
    out of the garbage collector's reach (:func:`gc.freeze`, see :meth:`refresh`). Without
    ``start()`` (the CLI) call :meth:`refresh` yourself. Lookups never touch the database:
    they read the current snapshot, which :meth:`refresh` replaces in one assignment once a
    new one is fully built.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        poll_interval: float = 1.0,
        addresses: bool = True,
        freeze_gc: bool = False,
    ) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self.addresses = addresses
        self.freeze_gc = freeze_gc
        self._state = _State()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Build the indexes now (errors are logged, not raised) and start polling."""
        try:
            self.refresh(force=True)
        except Exception as exc:  # the database may not be ready yet: keep polling
            self.last_error = str(exc)
            log.warning("lookup indexes not built at start: %s", exc)
        if self.poll_interval and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="geogrid-lookup-poll", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.freeze_gc:
            gc.unfreeze()  # hand everything back to the collector

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.refresh()
                self.last_error = None
            except Exception as exc:  # keep serving the last good snapshot
                if str(exc) != self.last_error:
                    log.warning("lookup index refresh failed: %s", exc)
                self.last_error = str(exc)

    @property
    def versions(self) -> dict[str, int]:
        """The change counters the current snapshot was built at."""
        return dict(self._state.versions)

    @property
    def communities(self) -> tuple[CommunityInfo, ...]:
        return tuple(c.info for c in self._state.communities)

    def index(self, community: str | None = None) -> LookupIndex:
        """The index of ``community`` (code; default: the only one)."""
        state = self._scope(community)[0]
        if state.index is None:
            raise NotFound(state.problem or "no active boundary plan", field="community")
        return state.index

    # --- refreshing --------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild what changed since the snapshot (one cheap read when nothing did).

        Returns whether a new snapshot was installed.
        """
        from geogrid.db import queries as q

        with self._refresh_lock:
            if not force:
                with self.engine.connect() as conn:
                    versions = q.data_versions(conn)
                if versions == self._state.versions:
                    return False
            started = time.perf_counter()
            old_versions = self._state.versions
            new = self._build(self._state, force=force)
            first = not old_versions
            self._state = new  # one reference: readers see the old or the new, never a mix
            if self.freeze_gc:
                # The indexes and gazetteers are ~200,000 long-lived objects; a full
                # collection walks them all (~120 ms on the demo), which lands on a request
                # as a latency spike (p99 at 64 connections). Frozen objects are left out of
                # collections. On a rebuild the previous snapshot is unfrozen and collected
                # first — one pause per data change, on this thread — so none of it leaks.
                if not first:
                    gc.unfreeze()
                    gc.collect()
                gc.freeze()
            log.info(
                "lookup indexes rebuilt at %s in %.0f ms",
                new.versions,
                (time.perf_counter() - started) * 1000,
            )
            return True

    def _build(self, old: _State, *, force: bool) -> _State:
        from geogrid.db import queries as q
        from geogrid.db.engine import Backend, backend_of

        conn = self.engine.connect()
        if backend_of(self.engine) is Backend.POSTGIS:
            # One snapshot for the counters and every frame: a change committed meanwhile
            # shows as a newer counter at the next poll, never as a half-read plan.
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            with conn.begin():
                versions = q.data_versions(conn)
                gazetteer_changed = force or versions.get("gazetteer") != old.versions.get(
                    "gazetteer"
                )
                states = []
                for row in q.lookup_communities(conn):
                    info = CommunityInfo(
                        id=int(row.id),
                        code=str(row.code),
                        name=str(row.name),
                        prefixes=tuple(
                            str(p)
                            for p in (
                                *(row.province, row.city, row.district),
                                *(row.subdistrict, row.name),
                            )
                            if p
                        ),
                    )
                    frames = _read_frames(conn, info)
                    index: LookupIndex | None = None
                    problem: str | None = None
                    try:
                        index = LookupIndex.from_frames(frames, info)
                    except NotFound as exc:
                        problem = exc.message
                    previous = old.by_code.get(info.code)
                    gazetteer = None
                    if self.addresses:
                        if (
                            not gazetteer_changed
                            and previous is not None
                            and previous.info == info
                            and previous.gazetteer is not None
                        ):
                            gazetteer = previous.gazetteer
                        else:
                            gazetteer = self._gazetteer(conn, info, frames)
                    states.append(_CommunityState(info, index, problem, gazetteer))
        finally:
            conn.close()
        return _State(
            versions=versions,
            communities=tuple(states),
            by_code={s.info.code: s for s in states},
            built_at=time.time(),
        )

    def _gazetteer(
        self, conn: Connection, info: CommunityInfo, frames: _Frames
    ) -> Gazetteer | None:
        try:
            from geogrid.lookup.address import Gazetteer
        except ImportError:  # pragma: no cover - address matching not installed
            return None
        return Gazetteer.from_frames(
            **_gazetteer_frames(conn, info, frames), prefixes=info.prefixes
        )

    # --- scope ---------------------------------------------------------------------------------

    def _scope(self, community: str | None) -> tuple[_CommunityState, ...]:
        state = self._state
        if community is not None:
            found = state.by_code.get(str(community))
            if found is None:
                raise NotFound(f"no community with code {community!r}", field="community")
            return (found,)
        if not state.communities:
            if self.last_error and not state.versions:
                raise DatabaseNotReady(
                    "the lookup indexes could not be built: is the schema created "
                    "(`geogrid db init`)?"
                )
            raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
        return state.communities

    @staticmethod
    def _indexes(scope: Sequence[_CommunityState]) -> list[LookupIndex]:
        indexes = [s.index for s in scope if s.index is not None]
        if not indexes:
            raise NotFound(scope[0].problem or "no active boundary plan", field="community")
        return indexes

    # --- single lookups ------------------------------------------------------------------------

    def lookup(
        self,
        *,
        address: str | None = None,
        lon: Any = None,
        lat: Any = None,
        crs: Any = "wgs84",
        community: str | None = None,
    ) -> LookupResult:
        """Answer one address (``address``) or point (``lon``, ``lat`` in ``crs``).

        Raises :class:`InvalidInput` (a bad or missing parameter, named in ``field``),
        :class:`~geogrid.errors.CRSError` or :class:`NotFound` (no match; outside every grid,
        with the nearest grid).
        """
        name = gcrs.normalize_crs(crs if crs not in (None, "") else "wgs84", field="crs")
        has_point = lon is not None or lat is not None
        if address is not None and has_point:
            raise InvalidInput("give either address or lon and lat, not both", field="address")
        scope = self._scope(community)
        if address is not None:
            return self._lookup_address(address, name, scope)
        if not has_point:
            raise InvalidInput("give an address, or lon and lat", field="address")
        return self._lookup_point(lon, lat, name, scope)

    def _lookup_point(
        self, lon: Any, lat: Any, crs: str, scope: Sequence[_CommunityState]
    ) -> LookupResult:
        indexes = self._indexes(scope)
        try:
            x, y, wlon, wlat = _parse_point(lon, lat, crs)
        except InvalidInput as exc:
            raise self._with_swap_hint(exc, lon, lat, crs, indexes) from None
        for index in indexes:
            gi, fi, bi = index.locate(wlon, wlat)
            if gi >= 0:
                return LookupResult(index._answer(gi, fi, bi, wlon, wlat), crs, x, y)
        swapped = self._swapped_inside(lon, lat, crs, indexes)
        if swapped is not None:
            raise InvalidInput(
                f"the point (lon {x}, lat {y}) is outside every grid, but with lon and lat "
                f"swapped it is inside {swapped.community.name} ({swapped.community.code}): "
                "are lon and lat swapped?",
                field="lon",
                details={"swapped_inside": _swap_dict(swapped)},
            )
        raise self._outside(wlon, wlat, indexes)

    @staticmethod
    def _outside(lon: float, lat: float, indexes: Sequence[LookupIndex]) -> NotFound:
        best: tuple[float, LookupIndex, GridInfo] | None = None
        for index in indexes:
            grid, dist = index.nearest_grid(lon, lat)
            if best is None or dist < best[0]:
                best = (dist, index, grid)
        assert best is not None
        return best[1].outside_error(lon, lat)

    @staticmethod
    def _swapped_inside(
        lon: Any, lat: Any, crs: str, indexes: Sequence[LookupIndex]
    ) -> PointLookup | None:
        try:
            _, _, wlon, wlat = _parse_point(lat, lon, crs)
        except (GeogridError, ValueError, TypeError):
            return None
        for index in indexes:
            gi, fi, bi = index.locate(wlon, wlat)
            if gi >= 0:
                return index._answer(gi, fi, bi, wlon, wlat)
        return None

    def _with_swap_hint(
        self, exc: InvalidInput, lon: Any, lat: Any, crs: str, indexes: Sequence[LookupIndex]
    ) -> InvalidInput:
        swapped = self._swapped_inside(lon, lat, crs, indexes)
        if swapped is None:
            return exc
        return InvalidInput(
            f"{exc.message}; with lon and lat swapped the point is inside "
            f"{swapped.community.name} ({swapped.community.code}): are they swapped?",
            field=exc.field,
            details={**exc.details, "swapped_inside": _swap_dict(swapped)},
        )

    def _lookup_address(
        self, text: Any, crs: str, scope: Sequence[_CommunityState]
    ) -> LookupResult:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("address is empty", field="address")
        best: tuple[_CommunityState, AddressMatch] | None = None
        failure: NotFound | None = None
        for state in scope:
            if state.gazetteer is None:
                continue
            try:
                match = state.gazetteer.match(text)
            except NotFound as exc:
                failure = _merge_not_found(failure, exc)
                continue
            if best is None or float(match.confidence) > float(best[1].confidence):
                best = (state, match)
        if best is None:
            if failure is not None:
                raise failure
            raise NotFound("no address gazetteer is loaded", field="address")
        return self._answer_match(best[0], best[1], crs)

    def _answer_match(self, state: _CommunityState, match: AddressMatch, crs: str) -> LookupResult:
        index = state.index
        if index is None:
            raise NotFound(state.problem or "no active boundary plan", field="community")
        lon, lat = float(match.lon), float(match.lat)
        building_id = match.building_id
        gi, fi, bi = index.locate(lon, lat)
        if gi < 0:
            err = index.outside_error(lon, lat, field="address")
            err.details["match"] = _match_dict(match, None)
            raise err
        place = index._answer(gi, fi, bi, lon, lat, building_id=building_id)
        # A street-level answer (also a fuzzy one): say which grids the street crosses.
        street_id = match.street_id
        street_grids = (
            index.street_grids.get(street_id, ())
            if street_id is not None and match.building_id is None and match.household_id is None
            else None
        )
        candidate_grids = tuple(_grid_at(index, c.lon, c.lat) for c in match.candidates)
        rx, ry = (lon, lat) if gcrs.same_crs(crs, gcrs.WGS84) else gcrs.from_wgs84(lon, lat, crs)
        return LookupResult(place, crs, rx, ry, match, street_grids, candidate_grids)

    # --- batches -----------------------------------------------------------------------------

    def lookup_many(
        self, items: Sequence[Any], *, progress: Any = None
    ) -> list[LookupResult | GeogridError]:
        """One answer or error per item, in order; one bad item never fails the others.

        Each item is a mapping with ``address`` or ``lon`` + ``lat``, and optionally ``crs``
        (default wgs84) and ``community``. Points are answered in bulk per CRS and
        community (:meth:`LookupIndex.lookup_points`), addresses with the gazetteer's
        ``match_many``. ``progress(n)`` is called with the number of items done.
        """
        if len(items) > MAX_BATCH:
            raise InvalidInput(
                f"a batch holds at most {MAX_BATCH:,} items, got {len(items):,}", field="items"
            )
        out: list[LookupResult | GeogridError | None] = [None] * len(items)
        points: dict[tuple[str, str | None], list[tuple[int, Any, Any]]] = {}
        addresses: dict[str | None, list[tuple[int, str, str]]] = {}
        for i, item in enumerate(items):
            try:
                kind, payload = self._parse_item(item)
            except GeogridError as exc:
                out[i] = exc
                continue
            if kind == "point":
                lon, lat, crs, community = payload
                points.setdefault((crs, community), []).append((i, lon, lat))
            else:
                text, crs, community = payload
                addresses.setdefault(community, []).append((i, text, crs))
        done = sum(1 for r in out if r is not None)
        for (crs, community), group in points.items():
            self._batch_points(group, crs, community, out)
            done += len(group)
            if progress:
                progress(done)
        for community, agroup in addresses.items():
            self._batch_addresses(agroup, community, out)
            done += len(agroup)
            if progress:
                progress(done)
        return [r if r is not None else GeogridError("no answer") for r in out]

    @staticmethod
    def _parse_item(item: Any) -> tuple[str, tuple[Any, ...]]:
        if not isinstance(item, Mapping):
            raise InvalidInput(
                "each item must be an object with address, or lon and lat", field="items"
            )
        crs = gcrs.normalize_crs(item.get("crs") or "wgs84", field="crs")
        community = item.get("community")
        community = None if community in (None, "") else str(community)
        address = item.get("address")
        has_point = item.get("lon") is not None or item.get("lat") is not None
        if address is not None and has_point:
            raise InvalidInput("give either address or lon and lat, not both", field="address")
        if address is not None:
            if not isinstance(address, str) or not address.strip():
                raise InvalidInput("address is empty", field="address")
            return "address", (address, crs, community)
        if not has_point:
            raise InvalidInput("give an address, or lon and lat", field="address")
        return "point", (item.get("lon"), item.get("lat"), crs, community)

    def _batch_points(
        self,
        group: list[tuple[int, Any, Any]],
        crs: str,
        community: str | None,
        out: list[LookupResult | GeogridError | None],
    ) -> None:
        try:
            indexes = self._indexes(self._scope(community))
        except GeogridError as exc:
            for i, _, _ in group:
                out[i] = exc
            return
        ok: list[tuple[int, float, float]] = []
        for i, lon, lat in group:
            try:
                x, y = _check_point(lon, lat, crs)
                if _crs_kind(crs) != "lonlat":
                    _convert_point(x, y, crs)  # the range is checked after conversion
                ok.append((i, x, y))
            except InvalidInput as exc:
                out[i] = self._with_swap_hint(exc, lon, lat, crs, indexes)
        if not ok:
            return
        pos = np.asarray([i for i, _, _ in ok], dtype=np.int64)
        xs = np.asarray([x for _, x, _ in ok], dtype=np.float64)
        ys = np.asarray([y for _, _, y in ok], dtype=np.float64)
        wx, wy = (xs, ys) if gcrs.same_crs(crs, gcrs.WGS84) else gcrs.to_wgs84(xs, ys, crs)
        todo = np.arange(len(ok))
        for index in indexes:
            if not len(todo):
                break
            res = index.lookup_points(wx[todo], wy[todo])
            for j in np.flatnonzero(res.found):
                k = int(todo[j])
                place = res.get(int(j))
                assert place is not None
                out[int(pos[k])] = LookupResult(place, crs, float(xs[k]), float(ys[k]))
            todo = todo[~res.found]
        raw = {i: (lon, lat) for i, lon, lat in group}
        for kk in todo:
            k, i = int(kk), int(pos[kk])
            swapped = self._swapped_inside(*raw[i], crs, indexes)
            if swapped is not None:
                out[i] = InvalidInput(
                    "the point is outside every grid, but with lon and lat swapped it is "
                    f"inside {swapped.community.name} ({swapped.community.code}): "
                    "are lon and lat swapped?",
                    field="lon",
                    details={"swapped_inside": _swap_dict(swapped)},
                )
            else:
                out[i] = self._outside(float(wx[k]), float(wy[k]), indexes)

    def _batch_addresses(
        self,
        group: list[tuple[int, str, str]],
        community: str | None,
        out: list[LookupResult | GeogridError | None],
    ) -> None:
        try:
            scope = self._scope(community)
        except GeogridError as exc:
            for i, _, _ in group:
                out[i] = exc
            return
        gazetteers = [s for s in scope if s.gazetteer is not None]
        if len(gazetteers) != 1:
            # Several communities (or none): item by item picks the best community.
            for i, text, crs in group:
                try:
                    out[i] = self._lookup_address(text, crs, scope)
                except GeogridError as exc:
                    out[i] = exc
            return
        state = gazetteers[0]
        assert state.gazetteer is not None
        matches = state.gazetteer.match_many([t for _, t, _ in group])
        for (i, _, crs), match in zip(group, matches, strict=True):
            if isinstance(match, GeogridError):
                out[i] = match
                continue
            try:
                out[i] = self._answer_match(state, match, crs)
            except GeogridError as exc:
                out[i] = exc


def _grid_at(index: LookupIndex, lon: float, lat: float) -> GridInfo | None:
    gi = index.locate(lon, lat)[0]
    return index.grids[gi] if gi >= 0 else None


def _swap_dict(p: PointLookup) -> dict[str, Any]:
    return {
        "community": p.community.code,
        "grid": p.grid.code,
        "lon": _coord(p.lon),
        "lat": _coord(p.lat),
    }


def _merge_not_found(a: NotFound | None, b: NotFound) -> NotFound:
    if a is None:
        return b
    sa = list(a.details.get("suggestions", []))
    sb = list(b.details.get("suggestions", []))
    return NotFound(a.message, field=a.field, details={**a.details, "suggestions": sa + sb})


def result_row(result: LookupResult | GeogridError) -> dict[str, Any]:
    """The columns ``geogrid lookup --file`` adds to each row (docs/api.md)."""
    if isinstance(result, GeogridError):
        return {
            "grid_code": "",
            "grid_name": "",
            "member_id": "",
            "member_display_name": "",
            "member_rule": "",
            "match_level": "",
            "match_confidence": "",
            "error": f"{result.code}: {result.message}",
        }
    p = result.place
    return {
        "grid_code": p.grid.code,
        "grid_name": p.grid.name or "",
        "member_id": "" if p.member is None else p.member.id,
        "member_display_name": "" if p.member is None else p.member.display_name,
        "member_rule": p.member_rule,
        "match_level": "" if result.match is None else result.match.level,
        "match_confidence": ""
        if result.match is None
        else round(float(result.match.confidence), 3),
        "error": "",
    }


def iter_chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
