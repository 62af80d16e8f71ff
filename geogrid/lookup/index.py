"""One community's active plan in memory: which grid, field, member and group cover a point.

:class:`LookupIndex` holds grids (codes, names, lead member), responsibility fields
(member), the branch on each grid, buildings with the party group sitting on them, street
lines (to say which grids a street crosses) and the members with **masked** names only
(:func:`~geogrid.privacy.mask_name`; full names are dropped when the index is built).
Polygons are found through a bucket grid per layer (:class:`~geogrid.lookup.cells.Cells`,
built with a shapely STRtree; tested to answer exactly as an STRtree query with the edge
rule): ~5 µs for :meth:`~LookupIndex.lookup_point`, millions of points a second for
:meth:`~LookupIndex.lookup_points` (:class:`PointLookups`). Pure: built from frames,
testable without a database (:meth:`LookupIndex.from_db` reads them,
``geogrid.lookup.frames``).

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely
import shapely.ops
from geopandas import GeoDataFrame
from shapely.geometry import Point
from sqlalchemy import Connection

from geogrid.errors import NotFound
from geogrid.lookup.cells import Cells, FloatArray, IntArray
from geogrid.lookup.frames import Frames, int_or_none, read_frames, str_or_none
from geogrid.lookup.places import (
    ROLE_FIELD_HOLDER,
    ROLE_GRID_LEAD,
    ROLE_MEMBER,
    RULE_FIELD,
    RULE_GRID_LEAD,
    BranchInfo,
    BuildingInfo,
    CommunityInfo,
    FieldInfo,
    GridInfo,
    GroupInfo,
    MemberInfo,
    PlanInfo,
    PointLookup,
    StreetGrid,
    place_dict,
)
from geogrid.lookup.result import compact_json, round_coord
from geogrid.privacy import mask_name

__all__ = ["CellsFactory", "LookupIndex", "PointLookups"]

#: Makes a layer's bucket grid: ``cells(layer, polygons)``, layer ``grids``, ``fields`` or
#: ``buildings``.
CellsFactory = Callable[[str, npt.NDArray[np.object_]], Cells]

_GEOD: Final = pyproj.Geod(ellps="WGS84")

#: Most place fragments an index keeps serialised (distinct grid × field × building).
_JSON_CACHE_SIZE: Final = 100_000


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
        grid_pos = int(self.grid[i])
        if grid_pos < 0:
            return None
        return self.index.answer(
            grid_pos,
            int(self.field[i]),
            int(self.building[i]),
            float(self.lon[i]),
            float(self.lat[i]),
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
        cells: CellsFactory | None = None,
    ) -> None:
        make_cells: CellsFactory = cells or (lambda _layer, geoms: Cells(geoms))
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
            GridInfo(int(r.id), str(r.code), str_or_none(r.name), int_or_none(r.lead_member_id))
            for r in grids.itertuples(index=False)
        )
        self._grid_geoms = _geoms(grids)
        if len(self.grids) == 0:
            raise NotFound(
                f"community {community.code} has no grids in its active plan", field="community"
            )
        shapely.prepare(self._grid_geoms)
        self._grid_tree = shapely.STRtree(self._grid_geoms)
        self._grid_cells = make_cells("grids", self._grid_geoms)
        self._grid_pos = {g.id: i for i, g in enumerate(self.grids)}

        # Fields by id (lowest id wins on shared edges).
        fields = fields.sort_values("id", kind="stable") if len(fields) else fields
        self.fields: tuple[FieldInfo, ...] = tuple(
            FieldInfo(int(r.id), str_or_none(r.name), int_or_none(r.member_id))
            for r in fields.itertuples(index=False)
        )
        self._field_geoms = _geoms(fields)
        shapely.prepare(self._field_geoms)
        self._field_cells = make_cells("fields", self._field_geoms)

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
            self.members[mid] = MemberInfo(mid, str(r.kind), role, mask_name(str_or_none(r.name)))
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
            BuildingInfo(int(r.id), str_or_none(r.name), str_or_none(r.compound))
            for r in buildings.itertuples(index=False)
        )
        self._building_geoms = _geoms(buildings)
        shapely.prepare(self._building_geoms)
        self._building_cells = make_cells("buildings", self._building_geoms)
        self._building_pos = {b.id: i for i, b in enumerate(self.buildings)}
        group_of: dict[int, tuple[int, str]] = {}
        for r in groups.sort_values("id").itertuples(index=False):
            bid = int_or_none(r.building_id)
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
        return cls.from_frames(read_frames(conn, community), community)

    @classmethod
    def from_frames(
        cls, frames: Frames, community: CommunityInfo, *, cells: CellsFactory | None = None
    ) -> LookupIndex:
        """The index of ``frames``' plan; ``cells(layer, polygons)`` makes each layer's bucket
        grid (default: :class:`Cells` of the polygons; the service may share them between
        processes, ``geogrid.lookup.store``)."""
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
            cells=cells,
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
        grid_pos = self._grid_cells.find(lon, lat)
        if grid_pos < 0:
            return -1, -1, -1
        return grid_pos, self._field_cells.find(lon, lat), self._building_cells.find(lon, lat)

    def answer(
        self,
        grid_pos: int,
        field_pos: int,
        building_pos: int,
        lon: float,
        lat: float,
        *,
        building_id: int | None = None,
    ) -> PointLookup:
        """The answer for positions found by :meth:`locate` (``grid_pos`` ≥ 0).

        ``building_id`` (from an address match) names the building whose group answers,
        instead of the footprint at ``building_pos``.
        """
        grid = self.grids[grid_pos]
        fld = self.fields[field_pos] if field_pos >= 0 else None
        holder = int(self._field_member[field_pos])
        member: MemberInfo | None
        if holder >= 0:
            member, rule = self.members[holder], RULE_FIELD
        else:
            lead = int(self._grid_lead[grid_pos])
            member, rule = (self.members[lead] if lead >= 0 else None), RULE_GRID_LEAD
        if building_id is not None and building_id in self._building_pos:
            building_pos = self._building_pos[building_id]
        group = self._building_group[building_pos] if building_pos >= 0 else None
        key = (grid_pos, field_pos, -1 if group is None else building_pos)
        cached = self._json_cache.get(key)
        place = PointLookup(
            community=self.community,
            plan=self.plan,
            grid=grid,
            field=fld,
            member=member,
            member_rule=rule,
            branch=self._grid_branch[grid_pos],
            group=group,
            lon=lon,
            lat=lat,
            place_json=cached or "",
        )
        if cached is None:
            cached = compact_json(place_dict(place))[:-1]
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
        grid_pos, field_pos, building_pos = self.locate(lon, lat)
        if grid_pos < 0:
            raise self.outside_error(lon, lat)
        return self.answer(grid_pos, field_pos, building_pos, lon, lat, building_id=building_id)

    def lookup_points(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike, *, buildings: bool = True
    ) -> PointLookups:
        """Bulk :meth:`lookup_point` over WGS 84 arrays, vectorised per layer (:class:`Cells`).

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
                "point": {"lon": round_coord(lon), "lat": round_coord(lat)},
                "nearest_grid": _nearest_dict(self, grid, dist),
            },
        )


def _nearest_dict(index: LookupIndex, grid: GridInfo, dist: float) -> dict[str, Any]:
    return {
        "community": index.community.code,
        "code": grid.code,
        "name": grid.name,
        "distance_m": round(dist, 1),
    }
