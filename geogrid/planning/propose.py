"""Automatic balanced redraw of a community's grids (``geogrid plan propose``).

:func:`propose_plan` draws a new boundary plan whose grids are contiguous, follow streets or the
gaps between buildings (never split a building), each hold a number of households inside the
target range (DESIGN.md: about 300–500 households per grid, Haikou practice), are as compact as
it can make them, keep as many households as it can in their current grid and, given the
responsibility fields (责任田), keep each field whole where the bounds allow.

Method — a regionalisation over small units, with a hard upper *and* lower bound:

1. **Units.** The community is cut into *blocks* by the streets (the faces of the street
   network, clipped to the boundary, so they tile the community exactly). Inside each block
   every building gets a *cell*: the Voronoi region of points along its outline and of its
   households' doors (a discrete approximation of its zone of influence), clipped to the block.
   A grid boundary inside a block therefore runs midway between buildings. Households without a
   building are units of their own; blocks without anyone are units too. A unit's population is
   its households. With fields, the blocks are cut further along the fields' outlines: inside a
   field the cells are drawn among that field's buildings only (open ground outside every field
   still goes to the nearest buildings of the block), so a cell never carries a sliver of one
   field into another's grid. Each unit belongs to the field of most of its households.
2. **Graph.** Units sharing more than :data:`MIN_SHARED_M` of boundary are neighbours (rook
   adjacency); GerryChain's :class:`~gerrychain.Graph` carries it.
3. **Count.** ``K`` grids of ``lo..hi`` households need ``N/hi ≤ K ≤ N/lo``; the midpoint of
   the range sets ``K = round(N / ((lo + hi) / 2))`` within those bounds.
4. **Start.** Nested where it can: each current grid's units are split on their own into
   ``k_i`` parts by recursive spanning-tree cuts (as GerryChain's ``recursive_tree_part``, but
   each cut is bounded by ``[lo, hi]`` rather than a percentage of the ideal), so every household
   starts in a grid derived from its current one. A current grid whose households no whole
   number of grids can hold (520 at 300–500) is split together with a neighbour; when nesting
   cannot give the count asked for, the whole community is split instead. With fields, the
   spanning trees of these cuts carry the field surcharge (below), so the start already cuts
   few fields.
5. **Improve.** ReCom — merge two adjacent grids and split them again along a cut edge of a
   random spanning tree (DeFord, Duchin & Solomon 2021, "Recombination: A family of Markov
   chains for redistricting", Harvard Data Science Review 3(1),
   https://doi.org/10.1162/99608f92.eb30390f) — with the cut bounded so that both halves stay
   inside ``[lo, hi]``. The spanning trees carry GerryChain's region surcharge on edges that
   cross a current grid's line, a street or a field's outline (:data:`SURCHARGE`,
   :data:`FIELD_SURCHARGE`), so new lines prefer old lines, streets and the lines between
   fields. The chain is run as *short bursts* (Cannon, Goldbloom-Helzner, Gupta, Matthews &
   Suwal 2023, "Voting Rights, Markov Chains, and Optimization by Short Bursts", Methodology and
   Computing in Applied Probability 25:36): each burst restarts from the best plan so far,
   minimising Σ 1/Polsby–Popper over the grids (Polsby & Popper 1991; GerryChain's
   ``L1_reciprocal_polsby_popper``) + :data:`KEEP_WEIGHT` × households moved out of the grid
   they derive from + :data:`HOLE_PENALTY` × grids surrounding another grid, and with fields
   + :data:`FIELD_WEIGHT` × households cut off from their field + :data:`FIELD_CUT_PENALTY` ×
   fields cut, by the rule of the impact diff (:func:`.diff.diff_plans`): a field keeps its
   largest piece and loses the households outside it. The household bounds stay hard: no
   weight buys a grid out of range.
6. **Geometry.** Each grid is the union of its units' cells; every building then goes whole to
   the grid of its cell (the plan still tiles the community) and specks of gap under 1 m² that
   the union leaves between cells are filled; grids are numbered by
   :func:`.common.number_grids` and every constraint is checked once more on the polygons.

Randomness comes from one ``random.Random(seed)`` handed to every GerryChain call, so a seed
gives the same plan on every run.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Final, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components
from shapely.geometry import LineString, MultiPoint, Polygon
from shapely.geometry.base import BaseGeometry

from geogrid.budget import Budget
from geogrid.errors import InfeasiblePlan, InvalidInput
from geogrid.planning.common import DEFAULT_TARGET, local_crs, number_grids, to_local
from geogrid.planning.diff import CUT_SHARE
from geogrid.spatial import assign_points

if TYPE_CHECKING:
    from gerrychain import Graph, Partition

__all__ = ["GRIDS_TOLERANCE", "Proposal", "propose_plan"]

Array = npt.NDArray[Any]

#: With ``grids=K`` and no range, each grid may hold the mean ± this share.
GRIDS_TOLERANCE: Final = 0.15
#: Units sharing less boundary than this (metres) are not neighbours (they touch at a corner).
MIN_SHARED_M: Final = 1.0
#: Street ends are extended by this much (metres) so that near misses still close blocks.
STREET_SNAP_M: Final = 2.0
#: Spacing (metres) of the points along a building's outline that seed its cell.
OUTLINE_SPACING_M: Final = 2.0
#: Score of one household moved out of the grid it derives from, in units of 1/Polsby–Popper:
#: moving a 10-household building costs 0.5, more than turning a square grid (1/PP = 1.27)
#: into a 2:1 rectangle (1.43) three times over.
KEEP_WEIGHT: Final = 0.05
#: Score of a grid that surrounds another grid (a doughnut), as much as 100 households moved.
HOLE_PENALTY: Final = 5.0
#: Score of one household cut off from its responsibility field (a field's households outside
#: the grid that keeps the field's largest piece), in units of 1/Polsby–Popper.
FIELD_WEIGHT: Final = 0.05
#: Score of one responsibility field cut at all (by :data:`.diff.CUT_SHARE`), whether or not it
#: loses households: activation clips it, and its holder must be told.
FIELD_CUT_PENALTY: Final = 1.0

#: ReCom steps per burst (Cannon et al. 2023 study bursts of a handful to a few dozen steps).
BURST_LENGTH: Final = 10
#: Default number of ReCom steps (the demo's 12,500 households: about 5 s on two slow cores).
DEFAULT_STEPS: Final = 1000
#: Spanning-tree surcharges (GerryChain ``region_surcharge``; random weights are in [0, 1)).
SURCHARGE: Final = {"current": 1.0, "block": 0.5}
#: Surcharge on spanning-tree edges between units of different responsibility fields, as on a
#: current grid's line: it outweighs the random weights, so a tree joins each field inside
#: itself first and a ReCom cut falls between fields. (2.0, above the other two together, drew
#: the same fields whole on the demo and grids a little less compact.)
FIELD_SURCHARGE: Final = 1.0

_SNAP_M: Final = 0.05  # distance under which two units touch (coordinate noise)
_GRID_M: Final = 1e-4  # precision grid of the output polygons (snap-rounding overlay)
_CUT_M2: Final = 1.0  # a field cut by less than this (m²) is not cut (diff_plans' tolerance)
_SPLIT_ATTEMPTS: Final = 5  # full restarts of a recursive split before giving up
_TREE_ATTEMPTS: Final = 200  # spanning trees per cut in the start
_RECOM_TREES: Final = 20  # spanning trees per merged pair in a ReCom step
_RECOM_PAIRS: Final = 8  # pairs tried per ReCom step before staying put


@dataclass
class Proposal:
    """A proposed plan and how it was made (see :func:`propose_plan`)."""

    #: WGS 84 grids: ``code``, ``name``, ``households`` (int), ``geometry`` (Polygon).
    grids: gpd.GeoDataFrame
    #: The households-per-grid range used; None when a grid count was asked for without one.
    target: tuple[int, int] | None
    k: int
    seed: int
    #: One line naming the method and its size.
    method: str
    households: int
    #: Households whose new grid derives from their current grid (0 without a current plan).
    kept_households: int
    #: JSON-ready figures (units, blocks, bounds, steps, boundary lengths, timings, warnings…).
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; ``grids`` as a GeoJSON FeatureCollection (WGS 84)."""
        return {
            "target": list(self.target) if self.target else None,
            "k": self.k,
            "seed": self.seed,
            "method": self.method,
            "households": self.households,
            "kept_households": self.kept_households,
            "kept_share": (
                round(self.kept_households / self.households, 4) if self.households else None
            ),
            "report": self.report,
            "grids": self.grids.to_geo_dict(drop_id=True),
        }


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------


def propose_plan(
    community: BaseGeometry,
    buildings: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    community_code: str,
    community_name: str | None = None,
    streets: gpd.GeoDataFrame | None = None,
    current: gpd.GeoDataFrame | None = None,
    target: tuple[int, int] | None = None,
    grids: int | None = None,
    seed: int = 0,
    steps: int | None = None,
    fields: gpd.GeoDataFrame | None = None,
    budget: Budget | None = None,
) -> Proposal:
    """Draw a new plan of contiguous, balanced grids for ``community`` (all inputs WGS 84).

    ``buildings`` have ``id`` and a polygon; ``households`` a door point and ``building_id``
    (nullable); ``streets`` lines; ``current`` the active plan's grids (``code``, polygon);
    ``fields`` the responsibility fields (``id``, polygon), kept whole where the bounds allow.
    A household's field is its ``field_id`` when ``households`` has that column, else the
    field covering its door (as :func:`.diff.diff_plans` finds it).
    Give ``target`` (households per grid, inclusive) or ``grids`` (an exact count, balanced
    within ±:data:`GRIDS_TOLERANCE` of the mean), not both; neither means
    :data:`.common.DEFAULT_TARGET`. ``steps``: ReCom steps (default :data:`DEFAULT_STEPS`),
    rounded up to whole bursts; 0 keeps the start. Same inputs and ``seed``, same plan.
    ``budget`` (default: none) is checked between the stages and the ReCom steps
    (:mod:`geogrid.budget`).

    Raises :class:`~geogrid.errors.InfeasiblePlan` naming the constraint that cannot be met.
    """
    started = time.perf_counter()
    with warnings.catch_warnings():
        # GerryChain's __init__ calls warnings.simplefilter("once") for the whole process.
        import gerrychain  # noqa: F401
    if target is not None and grids is not None:
        raise InvalidInput(
            "give either a households-per-grid range or a number of grids, not both",
            field="grids",
        )
    if grids is not None and grids < 1:
        raise InvalidInput(f"number of grids must be at least 1, got {grids}", field="grids")
    if target is not None and (target[0] < 1 or target[1] < target[0]):
        raise InvalidInput(
            f"households per grid {target[0]}:{target[1]}: need 1 ≤ low ≤ high",
            field="households_per_grid",
        )
    n_steps = DEFAULT_STEPS if steps is None else int(steps)
    if n_steps < 0:
        raise InvalidInput(f"steps must be ≥ 0, got {steps}", field="steps")
    notes: list[str] = []
    check = (budget or Budget(None)).check

    crs = local_crs(community)
    com = _local_community(community, crs)
    bld = _local_buildings(buildings, crs)
    hh_points, hh_building = _local_households(households, crs)
    fld = _local_fields(fields, crs)
    hh_field = (
        _household_fields(households, hh_points, fld)
        if fld is not None
        else np.full(len(hh_points), -1, dtype=np.int64)
    )
    street_geoms = (
        np.asarray(to_local(streets, crs).geometry.values)
        if streets is not None and len(streets)
        else np.empty(0, dtype=object)
    )

    # Households count where their door is: outside the community they are not ours.
    inside = assign_points(hh_points, gpd.GeoSeries([com])) == 0
    if (~inside).any():
        notes.append(f"{int((~inside).sum()):,} households lie outside the community: left out")
    hh_points, hh_building, hh_field = hh_points[inside], hh_building[inside], hh_field[inside]

    check("the street blocks")
    blocks = _blocks(com, street_geoms)
    faces, face_block, ground = (
        _field_faces(blocks, com, street_geoms, fld)
        if fld is not None
        else (blocks, np.arange(len(blocks)), np.ones(len(blocks), dtype=bool))
    )
    units = _units(faces, face_block, ground, bld, hh_points, hh_building)
    total = int(units.pop.sum())
    if total == 0:
        raise InfeasiblePlan(
            "the community has no households inside its boundary: nothing to balance",
            field="households",
        )
    lo, hi, k_target, tolerance = _bounds(total, target, grids)
    _check_units(units, hi)
    edges, lengths = _adjacency(units.geoms)
    edges, lengths = _connect(units, edges, lengths)

    cur_frame = _local_current(current, crs)
    hh_current = (
        assign_points(hh_points, cur_frame, key=cur_frame["code"].to_numpy())
        if cur_frame is not None
        else np.full(len(hh_points), -1, dtype=np.int64)
    )
    unit_current = _unit_current(units, hh_current, cur_frame)
    field_data = _field_data(units, fld, hh_field) if fld is not None else None
    surcharge = dict(SURCHARGE) | ({"field": FIELD_SURCHARGE} if field_data else {})

    check("the unit graph")
    graph = _graph(
        units, edges, lengths, unit_current, None if field_data is None else field_data.unit_field
    )
    rng = random.Random(seed)
    current_codes = [] if cur_frame is None else cur_frame["code"].tolist()
    start_parts, k, start_kind, start_notes = _start(
        graph,
        units,
        unit_current,
        current_codes,
        lo,
        hi,
        k_target,
        exact=grids is not None,
        rng=rng,
        surcharge={"field": FIELD_SURCHARGE} if field_data else None,
    )
    notes += start_notes
    if grids is None and k != k_target:
        notes.append(
            f"{k} grids instead of {k_target}: the nearest count whose grids can each be "
            "drawn inside one current grid"
        )

    check("the ReCom chain")
    rim = shapely.buffer(com.boundary, _SNAP_M)
    unit_rim = shapely.length(shapely.intersection(shapely.boundary(units.geoms), rim))
    on_edge = unit_rim > MIN_SHARED_M
    chain = _improve(
        graph,
        start_parts,
        hh_unit=units.hh_unit,
        hh_current=hh_current,
        lengths={(int(a), int(b)): float(w) for (a, b), w in zip(edges, lengths, strict=True)},
        on_edge=on_edge,
        unit_area=shapely.area(units.geoms),
        unit_rim=unit_rim,
        lo=lo,
        hi=hi,
        steps=n_steps,
        rng=rng,
        surcharge=surcharge,
        fields=field_data,
        check=check,
    )

    check("the grid polygons")
    frame_local = _grid_polygons(com, units, chain.parts, bld)
    out = frame_local.to_crs("EPSG:4326")
    codes = number_grids(out, community_code)
    out["code"] = codes
    out["name"] = [_grid_name(community_name, community_code, c) for c in codes]
    hh_wgs84 = gpd.GeoSeries(hh_points, crs=crs).to_crs("EPSG:4326")
    out = _final_checks(out, frame_local, com, bld, hh_wgs84, lo, hi)

    # Kept: each new grid derives from the current grid holding most of its households.
    new_of_hh = assign_points(hh_wgs84, out, key=out["code"].to_numpy())
    kept = _kept(new_of_hh, hh_current, len(out), 0 if cur_frame is None else len(cur_frame))
    if cur_frame is None:
        notes.append("no current plan given: no household can be kept in its grid")
    field_report: dict[str, Any] = {
        "fields": 0,
        "households_in_fields": None,
        "fields_cut_before": None,
        "fields_cut_after": None,
        "households_cut_from_fields_before": None,
        "households_cut_from_fields_after": None,
        "fields_still_cut": None,
    }
    if fld is not None and field_data is not None:
        # On the drawn polygons, by the rule the impact diff applies (so the figures agree).
        cut_after, hh_cut_after, still_cut = _field_cuts(
            fld, np.asarray(frame_local.geometry.values), hh_field, new_of_hh
        )
        field_report = {
            "fields": int(field_data.inside.sum()),
            "households_in_fields": int((hh_field >= 0).sum()),
            "fields_cut_before": chain.fields_cut_before,
            "fields_cut_after": cut_after,
            "households_cut_from_fields_before": chain.hh_cut_before,
            "households_cut_from_fields_after": hh_cut_after,
            "fields_still_cut": [_json(fld["id"].iloc[f]) for f in still_cut],
        }
        outside = np.flatnonzero(field_data.inside & (field_data.outside_m2 > 1.0))
        if len(outside):
            notes.append(
                f"{len(outside):,} fields reach outside the community: clipped by any plan"
            )

    seconds = round(time.perf_counter() - started, 2)
    counts = out["households"].to_numpy()
    report: dict[str, Any] = {
        "units": len(units.pop),
        "building_cells": int(units.n_buildings),
        "point_units": int(units.n_points),
        "empty_units": int((units.pop == 0).sum()),
        "blocks": len(blocks),
        "adjacencies": len(edges),
        "k": k,
        "k_target": k_target,
        "ideal": round(total / k, 1),
        "low": lo,
        "high": hi,
        "tolerance": tolerance,
        "min_households": int(counts.min()),
        "max_households": int(counts.max()),
        "start": start_kind,
        "steps": chain.steps,
        "burst_length": BURST_LENGTH,
        "accepted": chain.accepted,
        "improvements": chain.improvements,
        "cut_edges_before": chain.cut_before,
        "cut_edges_after": chain.cut_after,
        "boundary_m_before": round(chain.length_before, 1),
        "boundary_m_after": round(chain.length_after, 1),
        "moved_before": chain.moved_before,
        "moved_after": chain.moved_after,
        "grids_with_holes_before": chain.holes_before,
        "grids_with_holes_after": chain.holes_after,
        **field_report,
        "keep_weight": KEEP_WEIGHT,
        "field_weight": FIELD_WEIGHT if field_data else None,
        "field_cut_penalty": FIELD_CUT_PENALTY if field_data else None,
        "surcharge": surcharge,
        "polsby_popper_after": _mean_polsby_popper(np.asarray(frame_local.geometry.values)),
        "polsby_popper_current": (
            _mean_polsby_popper(np.asarray(cur_frame.geometry.values))
            if cur_frame is not None
            else None
        ),
        "kept_households": kept,
        "kept_share": round(kept / total, 4),
        "seconds": seconds,
        "warnings": notes,
    }
    method = (
        f"ReCom (GerryChain {version('gerrychain')}, DeFord–Duchin–Solomon 2021) bounded to "
        f"{lo:,}–{hi:,} households, in short bursts (Cannon et al. 2023) minimising "
        f"Σ 1/Polsby–Popper, over {units.n_buildings:,} building cells in {len(blocks):,} "
        f"street blocks"
        + (
            f", keeping {int(field_data.inside.sum()):,} responsibility fields whole "
            "(cells cut along their outlines, spanning trees and score)"
            if field_data
            else ""
        )
        + f"; {start_kind} start; {chain.steps:,} steps"
    )
    frame = gpd.GeoDataFrame(
        {"code": out["code"], "name": out["name"], "households": out["households"]},
        geometry=out.geometry.values,
        crs="EPSG:4326",
    )
    frame = frame.sort_values("code", kind="stable").reset_index(drop=True)
    return Proposal(
        grids=frame,
        target=(lo, hi) if grids is None else None,
        k=k,
        seed=seed,
        method=method,
        households=total,
        kept_households=kept,
        report=report,
    )


# ------------------------------------------------------------------------------------------
# Inputs in the local metric CRS
# ------------------------------------------------------------------------------------------


def _local_community(community: BaseGeometry, crs: pyproj.CRS) -> BaseGeometry:
    geom = to_local(gpd.GeoSeries([community], crs="EPSG:4326"), crs).geometry.iloc[0]
    geom = shapely.make_valid(geom)
    polys = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and p.area > 0]
    if not polys:
        raise InvalidInput("the community boundary has no area", field="community")
    return shapely.union_all(polys)


def _local_buildings(buildings: gpd.GeoDataFrame, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    if "id" not in buildings.columns:
        raise InvalidInput("buildings need an 'id' column", field="buildings")
    if buildings["id"].duplicated().any():
        raise InvalidInput("building ids must be unique", field="buildings")
    frame = to_local(buildings[["id", "geometry"]], crs)
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()].reset_index(drop=True)
    frame["geometry"] = shapely.make_valid(np.asarray(frame.geometry.values))
    return frame


def _local_households(households: gpd.GeoDataFrame, crs: pyproj.CRS) -> tuple[Array, Array]:
    """Door points (local) and building ids (object array, None where there is none)."""
    if "building_id" not in households.columns:
        raise InvalidInput("households need a 'building_id' column", field="households")
    pts = to_local(households[["geometry"]], crs)
    ids = households["building_id"].astype(object).where(households["building_id"].notna(), None)
    return np.asarray(pts.geometry.values), ids.to_numpy(dtype=object)


def _local_current(current: gpd.GeoDataFrame | None, crs: pyproj.CRS) -> gpd.GeoDataFrame | None:
    if current is None or not len(current):
        return None
    frame = to_local(current[["code", "geometry"]], crs).reset_index(drop=True)
    frame["code"] = frame["code"].astype(str)
    return frame


def _local_fields(fields: gpd.GeoDataFrame | None, crs: pyproj.CRS) -> gpd.GeoDataFrame | None:
    """Responsibility fields in the local CRS, in the given order (``id``, valid polygons)."""
    if fields is None or not len(fields):
        return None
    if "id" not in fields.columns:
        raise InvalidInput("responsibility fields need an 'id' column", field="fields")
    frame = to_local(fields[["id", "geometry"]], crs).reset_index(drop=True)
    frame["geometry"] = _polygonal(shapely.make_valid(np.asarray(frame.geometry.values)))
    return frame


def _polygonal(geoms: Array) -> Array:
    """The polygons of each geometry (lines and points of a collection dropped; None empty)."""
    return np.asarray(
        [
            shapely.union_all([p for p in shapely.get_parts(g) if isinstance(p, Polygon)])
            if g is not None
            else Polygon()
            for g in geoms
        ],
        dtype=object,
    )


def _household_fields(households: gpd.GeoDataFrame, points: Array, fld: gpd.GeoDataFrame) -> Array:
    """Each household's field (position in ``fld``, −1 for none), as :func:`.diff.diff_plans`
    finds it: the stored ``field_id`` when the frame has one, else the field covering the door."""
    if "field_id" not in households.columns:
        return assign_points(points, fld)
    pos = {_id(v): i for i, v in enumerate(fld["id"].tolist())}
    col = households["field_id"].astype(object)
    return np.array(
        [-1 if v is None else pos.get(_id(v), -1) for v in col.where(col.notna(), None)],
        dtype=np.int64,
    )


# ------------------------------------------------------------------------------------------
# Units: blocks cut by streets, building cells inside blocks
# ------------------------------------------------------------------------------------------


def _blocks(com: BaseGeometry, streets: Array, outlines: Array | None = None) -> list[BaseGeometry]:
    """The faces of the street network inside the community; together they tile it exactly.

    Streets are noded with the boundary (``union_all``) and polygonised; dangling streets
    bound nothing and are ignored. Street ends are first extended by :data:`STREET_SNAP_M`, so a
    street drawn to stop a few centimetres short of the boundary or of a cross street (or
    moved off it by reprojection) still closes its blocks. Faces outside the community are
    dropped; whatever of the community no face covers (no street closes it) is added as blocks
    of its own. ``outlines`` (fields' outlines) are noded with the streets, not extended.
    """
    extra = np.empty(0, dtype=object) if outlines is None else outlines
    if not len(streets) and not len(extra):
        return list(shapely.get_parts(com))
    ends = _extend_ends(streets) if len(streets) else np.empty(0, dtype=object)
    lines = shapely.union_all(np.concatenate([ends, [com.boundary], extra]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    keep = shapely.within(shapely.point_on_surface(faces), com)
    out: list[BaseGeometry] = []
    for face in faces[keep]:
        piece = shapely.intersection(face, com)
        out += [p for p in shapely.get_parts(piece) if isinstance(p, Polygon) and p.area > 1e-6]
    rest = shapely.difference(com, shapely.union_all(out)) if out else com
    out += [p for p in shapely.get_parts(rest) if isinstance(p, Polygon) and p.area > 1e-6]
    return out


def _extend_ends(streets: Array) -> Array:
    """Each line of ``streets`` with both ends pushed on by :data:`STREET_SNAP_M`."""
    out: list[BaseGeometry] = []
    for line in shapely.get_parts(shapely.line_merge(streets)):
        xy = shapely.get_coordinates(line)
        if len(xy) < 2 or not isinstance(line, LineString):
            continue
        ends = []
        for tip, prev in ((xy[0], xy[1]), (xy[-1], xy[-2])):
            step = tip - prev
            norm = float(np.hypot(*step))
            ends.append(tip + step / norm * STREET_SNAP_M if norm > 0 else tip)
        out.append(LineString(np.vstack([ends[0], xy, ends[1]])))
    return np.asarray(out, dtype=object)


def _field_faces(
    blocks: list[BaseGeometry], com: BaseGeometry, streets: Array, fld: gpd.GeoDataFrame
) -> tuple[list[BaseGeometry], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The street blocks cut further along the fields' outlines: (faces, street block of each
    face, faces outside every field).

    The outlines are noded with the streets and the boundary (:func:`_blocks`), so faces share
    their vertices exactly; the hair-thin faces between an outline drawn along a street and the
    street (coordinate noise) join the neighbour they share most boundary with. Cells are drawn
    inside faces, so a building's cell ends where its field ends and a plan that keeps a field's
    units together keeps the whole field (a cell reaching across a field's outline would carry a
    sliver of the field into another grid).
    """
    outlines = shapely.boundary(
        _polygonal(shapely.intersection(np.asarray(fld.geometry.values), com))
    )
    faces = _merge_slivers(_blocks(com, streets, outlines[~shapely.is_empty(outlines)]))
    reps = shapely.point_on_surface(np.asarray(faces, dtype=object))
    block_geoms = np.asarray(blocks, dtype=object)
    face_block = assign_points(reps, block_geoms)
    for i in np.flatnonzero(face_block < 0).tolist():
        face_block[i] = int(np.argmax(shapely.area(shapely.intersection(block_geoms, faces[i]))))
    ground = assign_points(reps, fld) < 0
    return faces, face_block, ground


def _merge_slivers(faces: list[BaseGeometry]) -> list[BaseGeometry]:
    """``faces`` with those thinner than :data:`_SNAP_M` (2·area/perimeter) joined to the
    neighbour they share most boundary with (coordinate noise, not ground to draw on)."""
    arr = np.asarray(faces, dtype=object)
    thin = 2 * shapely.area(arr) / shapely.length(arr) < _SNAP_M
    if not thin.any() or thin.all():
        return faces
    tree = shapely.STRtree(arr)
    gone = np.zeros(len(arr), dtype=bool)
    for i in np.flatnonzero(thin).tolist():
        near = [
            int(j)
            for j in tree.query(arr[i], predicate="dwithin", distance=_SNAP_M)
            if not thin[j] and not gone[j]
        ]
        if not near:
            continue
        shared = shapely.length(
            shapely.intersection(arr[i].boundary, shapely.buffer(arr[near], _SNAP_M))
        )
        j = near[int(np.argmax(shared))]
        merged = [
            p for p in shapely.get_parts(shapely.union(arr[j], arr[i])) if isinstance(p, Polygon)
        ]
        arr[j] = max(merged, key=lambda p: p.area)
        gone[i] = True
    return [f for f, g in zip(arr.tolist(), gone.tolist(), strict=True) if not g]


@dataclass
class _Units:
    geoms: Array  # unit polygons (local CRS)
    pop: npt.NDArray[np.int64]
    block: npt.NDArray[np.int64]  # the block holding most of the unit
    building: list[Any]  # building id, or None (households without a building, empty blocks)
    hh_unit: npt.NDArray[np.int64]  # unit of each household
    n_buildings: int
    n_points: int


def _units(
    blocks: list[BaseGeometry],
    face_block: npt.NDArray[np.int64],
    ground: npt.NDArray[np.bool_],
    bld: gpd.GeoDataFrame,
    hh_points: Array,
    hh_building: Array,
) -> _Units:
    """Building cells, household points without a building and empty blocks, with households.

    A building's cell is the union of the Voronoi cells of points every
    :data:`OUTLINE_SPACING_M` along its outline and of its households' doors, clipped to each
    block: the cell holds the whole building (up to the spacing) and its doors, so grid lines
    drawn between cells pass between buildings and count every household with its building.
    ``blocks`` may be faces of the street blocks cut along the fields' outlines; ``face_block``
    gives the street block of each (the unit's ``block``). A face inside a field is shared out
    among the seeds inside it; a *ground* face (outside every field, or every face without
    fields) among all the seeds of its street block, so open ground goes with the nearest
    buildings as it does without fields.
    """
    block_geoms = np.asarray(blocks, dtype=object)
    # Buildings inside the community (by a point on their surface) become units 0..B-1.
    b_block = assign_points(shapely.point_on_surface(np.asarray(bld.geometry.values)), block_geoms)
    kept_b = np.flatnonzero(b_block >= 0)
    b_ids = bld["id"].to_numpy()[kept_b]
    unit_of_id = {_id(bid): i for i, bid in enumerate(b_ids.tolist())}
    n_b = len(kept_b)

    hh_unit = np.full(len(hh_points), -1, dtype=np.int64)
    for h, bid in enumerate(hh_building):
        if bid is not None:
            hh_unit[h] = unit_of_id.get(_id(bid), -1)
    # Households without a (known) building: one unit per distinct door point.
    loose = np.flatnonzero(hh_unit < 0)
    xy = np.round(shapely.get_coordinates(hh_points[loose]), 3) if len(loose) else np.empty((0, 2))
    _, first, inverse = np.unique(xy, axis=0, return_index=True, return_inverse=True)
    hh_unit[loose] = n_b + inverse.reshape(-1)
    n_p = len(first)

    # Seeds: outline points of each building, and every door, labelled with the unit.
    outlines = shapely.segmentize(
        shapely.boundary(np.asarray(bld.geometry.values)[kept_b]), OUTLINE_SPACING_M
    )
    seed_xy: list[Array] = []
    seed_unit: list[Array] = []
    if n_b:
        coords, owner = shapely.get_coordinates(outlines, return_index=True)
        seed_xy.append(coords)
        seed_unit.append(owner)
    if len(hh_points):
        seed_xy.append(shapely.get_coordinates(hh_points))
        seed_unit.append(hh_unit)
    all_xy = np.concatenate(seed_xy) if seed_xy else np.empty((0, 2))
    all_unit = np.concatenate(seed_unit) if seed_unit else np.empty(0, dtype=np.int64)
    # One seed per location (Voronoi merges duplicates); the first label wins.
    _, uniq = np.unique(np.round(all_xy, 3), axis=0, return_index=True)
    uniq = np.sort(uniq)
    all_xy, all_unit = all_xy[uniq], all_unit[uniq]
    seed_face = assign_points(shapely.points(all_xy), block_geoms)
    seed_block = np.where(seed_face >= 0, face_block[seed_face], -1)

    pieces: dict[int, list[BaseGeometry]] = {}
    piece_area: dict[int, dict[int, float]] = {}
    n_units = n_b + n_p
    for j, block in enumerate(block_geoms):
        mine = np.flatnonzero(seed_block == face_block[j] if ground[j] else seed_face == j)
        labels = np.unique(all_unit[mine])
        if len(labels) == 0:
            cells = [(n_units, block)]
            n_units += 1
        elif len(labels) == 1:
            cells = [(int(labels[0]), block)]
        else:
            vor = shapely.voronoi_polygons(MultiPoint(all_xy[mine]), extend_to=block, ordered=True)
            clipped = shapely.intersection(shapely.get_parts(vor), block)
            lab = all_unit[mine]
            cells = [(int(u), shapely.union_all(clipped[lab == u])) for u in labels.tolist()]
        for u, geom in cells:
            pieces.setdefault(u, []).append(geom)
            piece_area.setdefault(u, {})[j] = piece_area.get(u, {}).get(j, 0.0) + geom.area

    geoms = np.empty(n_units, dtype=object)
    block_of = np.full(n_units, -1, dtype=np.int64)
    for u in range(n_units):
        parts = pieces.get(u)
        if not parts:
            # A building whose every seed fell outside the community (on its edge): no cell.
            geoms[u] = Polygon()
            continue
        geoms[u] = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        block_of[u] = face_block[max(piece_area[u].items(), key=lambda kv: (kv[1], -kv[0]))[0]]
    pop = np.bincount(hh_unit[hh_unit >= 0], minlength=n_units).astype(np.int64)
    building: list[Any] = [*b_ids.tolist(), *([None] * (n_units - n_b))]

    # Drop units without a cell, giving their households to the unit whose cell covers them.
    empty = shapely.is_empty(geoms)
    if empty.any():
        keep = np.flatnonzero(~empty)
        remap = np.full(n_units, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        geoms, block_of = geoms[keep], block_of[keep]
        building = [building[i] for i in keep.tolist()]
        lost = empty[hh_unit]
        hh_unit = remap[hh_unit]
        if lost.any():
            hh_unit[lost] = assign_points(hh_points[lost], geoms)
        pop = np.bincount(hh_unit[hh_unit >= 0], minlength=len(keep)).astype(np.int64)
        n_b = sum(1 for b in building if b is not None)
    return _Units(geoms, pop, block_of, building, hh_unit, n_b, n_p)


def _id(value: Any) -> Any:
    """Building ids as plain Python values, so 7, 7.0 and numpy's 7 match."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _check_units(units: _Units, hi: int) -> None:
    """A unit (a building) holding more than ``hi`` households can fit in no grid."""
    big = np.flatnonzero(units.pop > hi)
    if not len(big):
        return
    worst = big[np.argsort(-units.pop[big], kind="stable")]
    named = [
        (
            f"building {units.building[i]}"
            if units.building[i] is not None
            else "one door without a building"
        )
        + f" holds {int(units.pop[i]):,} households"
        for i in worst[:5]
    ]
    more = f" (and {len(worst) - 5} more)" if len(worst) > 5 else ""
    raise InfeasiblePlan(
        f"households per grid at most {hi:,}: {'; '.join(named)}{more}, and a building is "
        f"never split between grids; raise the upper bound to at least {int(units.pop.max()):,}",
        field="households_per_grid",
        details={
            "constraint": "high",
            "high": hi,
            "units": [
                {"building_id": _json(units.building[i]), "households": int(units.pop[i])}
                for i in worst
            ],
        },
    )


def _json(value: Any) -> Any:
    value = _id(value)
    return value if isinstance(value, int | str) or value is None else str(value)


# ------------------------------------------------------------------------------------------
# Graph
# ------------------------------------------------------------------------------------------


def _adjacency(geoms: Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Pairs ``i < j`` of units that touch and the length of boundary they share (m).

    Measured as the length of ``i``'s outline within :data:`_SNAP_M` of ``j``: cells clipped to
    neighbouring blocks share an edge whose vertices differ, where an exact intersection of
    the outlines would return scattered points.
    """
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="dwithin", distance=_SNAP_M)
    mask = i < j
    i, j = i[mask], j[mask]
    if not len(i):
        return np.empty((0, 2), dtype=np.int64), np.empty(0)
    near = shapely.buffer(geoms, _SNAP_M, quad_segs=2)
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[i]), near[j]))
    shared = np.maximum(shared - 2 * _SNAP_M, 0.0)
    return np.stack([i, j], axis=1).astype(np.int64), shared.astype(float)


def _connect(
    units: _Units, edges: npt.NDArray[np.int64], lengths: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Neighbours by shared boundary > :data:`MIN_SHARED_M`; corner contacts join pieces only
    the corner joins, and a community in separate pieces is infeasible (grids are one piece)."""
    n = len(units.pop)
    strong = lengths > MIN_SHARED_M
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(map(tuple, edges[strong].tolist()))
    if nx.is_connected(g):
        return edges[strong], lengths[strong]
    comp = np.empty(n, dtype=np.int64)
    for c, nodes in enumerate(nx.connected_components(g)):
        comp[list(nodes)] = c
    keep = strong.copy()
    for e in np.argsort(-lengths, kind="stable"):
        a, b = edges[e]
        if not strong[e] and comp[a] != comp[b]:
            keep[e] = True
            old, new = comp[b], comp[a]
            comp[comp == old] = new
    g.add_edges_from(map(tuple, edges[keep & ~strong].tolist()))
    if nx.is_connected(g):
        return edges[keep], lengths[keep]
    pieces = sorted(
        (sorted(c) for c in nx.connected_components(g)), key=lambda c: -int(units.pop[c].sum())
    )
    pops = [int(units.pop[c].sum()) for c in pieces]
    raise InfeasiblePlan(
        f"contiguity: the community is in {len(pieces)} separate pieces (holding "
        f"{', '.join(f'{p:,}' for p in pops)} households) and every grid must be one piece; "
        "redraw each piece as its own community or join them",
        field="community",
        details={"constraint": "contiguity", "pieces": len(pieces), "households": pops},
    )


def _unit_current(units: _Units, hh_current: Array, cur: gpd.GeoDataFrame | None) -> Array:
    """Each unit's current grid: where most of its households are, else where it lies."""
    n = len(units.pop)
    if cur is None:
        return np.full(n, -1, dtype=np.int64)
    c = len(cur)
    ok = (units.hh_unit >= 0) & (hh_current >= 0)
    counts = np.zeros((n, c), dtype=np.int64)
    np.add.at(counts, (units.hh_unit[ok], hh_current[ok]), 1)
    out = counts.argmax(axis=1).astype(np.int64)
    empty = counts.sum(axis=1) == 0
    if empty.any():
        pts = shapely.point_on_surface(units.geoms[empty])
        out[empty] = assign_points(pts, cur, key=cur["code"].to_numpy())
    return out


@dataclass
class _FieldData:
    """Responsibility fields seen from the units (positions as in the fields frame)."""

    unit_field: Array  # per unit: the field of most of its households (else of its area), −1
    pair_unit: Array  # unit × field overlaps: unit, field, m²
    pair_field: Array
    pair_area: Array
    area: Array  # each field's whole area (m²), inside the community or not
    outside_m2: Array  # each field's area outside the community
    inside: Array  # fields with area inside the community
    hh_field: Array  # per household: its field, −1


def _field_data(units: _Units, fld: gpd.GeoDataFrame, hh_field: Array) -> _FieldData:
    """Each unit's field and the area each unit holds of each field.

    A unit goes with the field of most of its households (households in no field count as a
    field of their own); a unit without households with the field covering more than half of
    its cell.
    """
    f_geoms = np.asarray(fld.geometry.values)
    n, n_f = len(units.pop), len(f_geoms)
    area = shapely.area(f_geoms)
    u, f = shapely.STRtree(f_geoms).query(units.geoms, predicate="intersects")
    a = shapely.area(shapely.intersection(units.geoms[u], f_geoms[f]))
    keep = a > 0
    u, f, a = u[keep].astype(np.int64), f[keep].astype(np.int64), a[keep]
    inside_m2 = np.bincount(f, weights=a, minlength=n_f)

    unit_field = np.full(n, -1, dtype=np.int64)
    ok = units.hh_unit >= 0
    if ok.any():
        keys, votes = np.unique(
            units.hh_unit[ok] * (n_f + 1) + hh_field[ok] + 1, return_counts=True
        )
        ku, kf = keys // (n_f + 1), keys % (n_f + 1) - 1
        order = np.lexsort((kf, -votes, ku))  # per unit: most votes, then the lowest field
        first = np.ones(len(order), dtype=bool)
        first[1:] = ku[order][1:] != ku[order][:-1]
        unit_field[ku[order][first]] = kf[order][first]
    unit_area = shapely.area(units.geoms)
    for i in np.argsort(-a, kind="stable").tolist():
        if units.pop[u[i]] == 0 and unit_field[u[i]] < 0 and a[i] > unit_area[u[i]] / 2:
            unit_field[u[i]] = f[i]
    return _FieldData(
        unit_field=unit_field,
        pair_unit=u,
        pair_field=f,
        pair_area=a,
        area=area,
        outside_m2=area - inside_m2,
        inside=inside_m2 > 0,
        hh_field=hh_field,
    )


def _graph(
    units: _Units,
    edges: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.float64],
    unit_current: Array,
    unit_field: Array | None = None,
) -> Graph:
    """The unit adjacency as a GerryChain graph (nodes 0..n-1, populations, regions).

    With fields, ``field`` is the unit's field, or a region of its own (a negative number) for
    a unit in none: two units outside every field are not "in the same field".
    """
    from gerrychain import Graph

    g: nx.Graph[int] = nx.Graph()
    for u in range(len(units.pop)):
        extra = (
            {}
            if unit_field is None
            else {"field": int(unit_field[u]) if unit_field[u] >= 0 else -1 - u}
        )
        g.add_node(
            u,
            population=int(units.pop[u]),
            current=int(unit_current[u]),
            block=int(units.block[u]),
            **extra,
        )
    for (a, b), w in zip(edges.tolist(), lengths.tolist(), strict=True):
        g.add_edge(a, b, length=float(w))
    return Graph.from_networkx(g)


# ------------------------------------------------------------------------------------------
# Count and start
# ------------------------------------------------------------------------------------------


def _bounds(
    total: int, target: tuple[int, int] | None, grids: int | None
) -> tuple[int, int, int, float | None]:
    """(lo, hi, K, tolerance): the bounds every grid must meet and the grid count to aim at."""
    if grids is not None:
        ideal = total / grids
        lo = max(1, math.ceil(ideal * (1 - GRIDS_TOLERANCE)))
        hi = math.floor(ideal * (1 + GRIDS_TOLERANCE))
        if grids > total or lo > hi:
            raise InfeasiblePlan(
                f"number of grids: {grids:,} grids of {total:,} households would hold "
                f"{ideal:,.2f} each, and a grid needs whole households (±"
                f"{GRIDS_TOLERANCE:.0%} leaves {lo:,}–{hi:,})",
                field="grids",
                details={"constraint": "grids", "grids": grids, "households": total},
            )
        return lo, hi, grids, GRIDS_TOLERANCE
    lo, hi = target if target is not None else DEFAULT_TARGET
    k_min, k_max = math.ceil(total / hi), math.floor(total / lo)
    if k_min > k_max:
        raise InfeasiblePlan(
            f"households per grid {lo:,}:{hi:,}: {total:,} households need at least "
            f"{total / hi:,.2f} grids (÷ {hi:,}) and at most {total / lo:,.2f} (÷ {lo:,}), "
            "and no whole number of grids lies in between; widen the range",
            field="households_per_grid",
            details={
                "constraint": "range",
                "households": total,
                "low": lo,
                "high": hi,
                "min_grids": total / hi,
                "max_grids": total / lo,
            },
        )
    k = min(max(round(total / ((lo + hi) / 2)), k_min), k_max)
    return lo, hi, k, None


def _start(
    graph: Graph,
    units: _Units,
    unit_current: Array,
    current_codes: list[str],
    lo: int,
    hi: int,
    k: int,
    *,
    exact: bool,
    rng: random.Random,
    surcharge: dict[str, float] | None = None,
) -> tuple[Array, int, str, list[str]]:
    """The first plan: (part of each unit, K, kind of start, notes on what was not nested).

    ``surcharge``: spanning-tree surcharges for the cuts (fields: cut between them).
    """
    regions, counts, notes = _nested_regions(
        graph, units, unit_current, current_codes, lo, hi, k, exact=exact
    )
    parts = np.full(len(units.pop), -1, dtype=np.int64)
    if regions is not None and counts is not None:
        try:
            label = 0
            for (nodes, members), k_i in zip(regions, counts, strict=True):
                what = _region_name(members, current_codes)
                for piece in _tree_split(
                    graph, nodes, k_i, lo, hi, rng, what=what, surcharge=surcharge
                ):
                    parts[list(piece)] = label
                    label += 1
        except InfeasiblePlan as exc:
            notes.append(f"not nested in the current grids: {exc.message}")
        else:
            kind = "nested" if all(len(m) == 1 for _, m in regions) else "partly nested"
            return parts, int(sum(counts)), kind, notes
    for label, piece in enumerate(
        _tree_split(
            graph,
            list(range(len(units.pop))),
            k,
            lo,
            hi,
            rng,
            what="the community",
            surcharge=surcharge,
        )
    ):
        parts[list(piece)] = label
    return parts, k, "whole-community", notes


def _nested_regions(
    graph: Graph,
    units: _Units,
    unit_current: Array,
    current_codes: list[str],
    lo: int,
    hi: int,
    k: int,
    *,
    exact: bool,
) -> tuple[list[tuple[list[int], frozenset[int]]] | None, list[int] | None, list[str]]:
    """Regions of the current plan to split on their own, and how many grids each gets.

    A region starts as one connected piece of a current grid. A piece of ``p`` households can
    hold ``k`` grids only when ``p/hi ≤ k ≤ p/lo`` for a whole ``k`` (none for 520 households
    at 300–500, nor for an empty piece): such a piece is merged with the neighbouring region it
    shares most boundary with, smallest first, until every region can be split. Counts then
    rise from their minimum one at a time, always in the region whose grids are largest
    (D'Hondt's rule), until they sum to ``k`` (or as near as the regions allow, when ``k`` is
    not exact). Returns (regions as (units, current grids), counts, notes) or (None, None,
    notes) when no nesting is possible.
    """
    notes: list[str] = []
    if (unit_current < 0).all():
        return None, None, notes
    nxg = graph.get_nx_graph() if graph.is_nx_graph() else None
    assert nxg is not None
    region_of = np.empty(len(units.pop), dtype=np.int64)
    regions: list[tuple[list[int], frozenset[int]]] = []
    for lab in sorted(set(unit_current.tolist())):
        nodes = np.flatnonzero(unit_current == lab).tolist()
        for comp in sorted(sorted(c) for c in nx.connected_components(nxg.subgraph(nodes))):
            region_of[comp] = len(regions)
            regions.append((comp, frozenset({int(lab)})))
    alive = set(range(len(regions)))

    def pop(r: int) -> int:
        return int(units.pop[regions[r][0]].sum())

    def feasible(r: int) -> bool:
        p = pop(r)
        return p > 0 and math.ceil(p / hi) <= math.floor(p / lo)

    while len(alive) > 1:
        bad = sorted((r for r in alive if not feasible(r)), key=lambda r: (pop(r), r))
        if not bad:
            break
        r = bad[0]
        shared: dict[int, float] = {}
        for u in regions[r][0]:
            for v in nxg.neighbors(u):
                o = int(region_of[v])
                if o != r:
                    shared[o] = shared.get(o, 0.0) + float(nxg.edges[u, v]["length"])
        o = max(shared.items(), key=lambda kv: (kv[1], -kv[0]))[0]
        p = pop(r)
        if p > 0 and len(notes) < 5:
            notes.append(
                f"{_region_name(regions[r][1], current_codes)} holds {p:,} households, which "
                f"no whole number of grids of {lo:,}–{hi:,} makes: split together with "
                f"{_region_name(regions[o][1], current_codes)}"
            )
        nodes = regions[o][0] + regions[r][0]
        regions[o] = (sorted(nodes), regions[o][1] | regions[r][1])
        region_of[regions[r][0]] = o
        alive.discard(r)
    chosen = sorted(alive)
    if len(chosen) == 1 and len(regions[chosen[0]][1]) > 1:
        notes.append("no current grid could be split on its own: started from the whole community")
        return None, None, notes
    k_min = [math.ceil(pop(r) / hi) for r in chosen]
    k_max = [math.floor(pop(r) / lo) for r in chosen]
    if exact and not sum(k_min) <= k <= sum(k_max):
        notes.append(
            f"not nested in the current grids: split within them they make {sum(k_min)}–"
            f"{sum(k_max)} grids of {lo:,}–{hi:,} households, not {k}; started from the "
            "whole community"
        )
        return None, None, notes
    want = min(max(k, sum(k_min)), sum(k_max))
    counts = list(k_min)
    pops = [pop(r) for r in chosen]
    while sum(counts) < want:
        i = max(
            (i for i in range(len(counts)) if counts[i] < k_max[i]),
            key=lambda i: (pops[i] / counts[i], -i),
        )
        counts[i] += 1
    return [regions[r] for r in chosen], counts, notes


def _region_name(members: Iterable[int], codes: list[str]) -> str:
    names = [codes[m] if m >= 0 else "the area outside the current grids" for m in sorted(members)]
    if len(names) == 1:
        return names[0] if names[0].startswith("the ") else f"current grid {names[0]}"
    return "current grids " + " + ".join(names)


def _tree_split(
    graph: Graph,
    nodes: Sequence[int],
    k: int,
    lo: int,
    hi: int,
    rng: random.Random,
    *,
    what: str,
    surcharge: dict[str, float] | None = None,
) -> list[set[int]]:
    """Split connected ``nodes`` into ``k`` connected parts of ``lo..hi`` households each.

    Recursive spanning-tree cuts as GerryChain's ``recursive_tree_part``: cut one part off a
    random spanning tree, then split the rest. Each part's window is ``[lo, hi]`` narrowed so
    the rest can still make ``k - 1`` parts: ``[max(lo, P - (k-1)·hi), min(hi, P - (k-1)·lo)]``.
    A failed split restarts with the same RNG stream a few times before giving up.
    """
    from gerrychain.tree import bipartition_tree

    pops = {int(n): int(graph.node_data(n)["population"]) for n in nodes}
    failure = ""
    for _attempt in range(_SPLIT_ATTEMPTS):
        remaining = set(pops)
        parts: list[set[int]] = []
        left = k
        try:
            while left > 1:
                total = sum(pops[n] for n in remaining)
                low = max(lo, total - (left - 1) * hi)
                high = min(hi, total - (left - 1) * lo)
                mid = (low + high) / 2
                piece = bipartition_tree(
                    graph.subgraph(sorted(remaining)),
                    pop_col="population",
                    pop_target=mid,
                    epsilon=(high - mid) / mid + 1e-9,
                    single_district_cut=True,
                    region_surcharge=surcharge,
                    max_attempts=_TREE_ATTEMPTS,
                    warn_attempts=_TREE_ATTEMPTS + 1,
                    rng=rng,
                )
                part = {int(cast(int, n)) for n in piece}
                parts.append(part)
                remaining -= part
                left -= 1
        except RuntimeError as exc:
            failure = str(exc)
            continue
        parts.append(remaining)
        return parts
    total = sum(pops.values())
    raise InfeasiblePlan(
        f"households per grid {lo:,}–{hi:,}: {what} ({total:,} households) could not be cut "
        f"into {k} contiguous grids in range after {_SPLIT_ATTEMPTS} tries ({failure.strip()}); "
        "buildings too large or too unevenly spread for the range — widen it or try another seed",
        field="households_per_grid",
        details={"constraint": "split", "households": total, "grids": k},
    )


# ------------------------------------------------------------------------------------------
# Improve: bounded ReCom in short bursts
# ------------------------------------------------------------------------------------------


@dataclass
class _ChainResult:
    parts: Array
    steps: int
    accepted: int
    improvements: int
    cut_before: int
    cut_after: int
    length_before: float
    length_after: float
    moved_before: int
    moved_after: int
    holes_before: int
    holes_after: int
    fields_cut_before: int | None = None
    fields_cut_after: int | None = None
    hh_cut_before: int | None = None
    hh_cut_after: int | None = None


class _BoundedReCom:
    """ReCom proposal whose split keeps both merged grids inside ``[lo, hi]``.

    GerryChain's ``recom`` bounds each half by ``ideal·(1 ± ε)``; a range of households per grid
    is a different, asymmetric bound. For a merged pair of ``P`` households, half ``A`` must
    satisfy ``lo ≤ A ≤ hi`` and ``lo ≤ P - A ≤ hi``, i.e. lie in ``[max(lo, P-hi), min(hi,
    P-lo)]`` — a window centred on ``P/2``, so ``bipartition_tree`` with target ``P/2`` and the
    matching ε checks exactly that. The pair is the two grids on either side of a cut edge
    drawn uniformly (GerryChain's ``pair_selection="cut_edges"``).
    """

    def __init__(self, lo: int, hi: int, surcharge: dict[str, float]) -> None:
        self.lo, self.hi, self.surcharge = lo, hi, surcharge

    def __call__(self, partition: Partition, *, rng: random.Random) -> Partition:
        from gerrychain.tree import ReselectException, bipartition_tree

        edges = sorted(partition["cut_edges"])
        tried: set[tuple[Hashable, Hashable]] = set()
        for _ in range(min(_RECOM_PAIRS * 4, len(edges))):
            u, v = edges[rng.randrange(len(edges))]
            a, b = partition.assignment[u], partition.assignment[v]
            pair = (a, b) if repr(a) < repr(b) else (b, a)
            if pair in tried:
                continue
            tried.add(pair)
            if len(tried) > _RECOM_PAIRS:
                break
            nodes = partition.parts[a] | partition.parts[b]
            total = partition["population"][a] + partition["population"][b]
            high = min(self.hi, total - self.lo)
            mid = total / 2
            try:
                piece = bipartition_tree(
                    partition.graph.subgraph(sorted(cast(set[int], nodes))),
                    pop_col="population",
                    pop_target=mid,
                    epsilon=(high - mid) / mid + 1e-9,
                    region_surcharge=self.surcharge,
                    max_attempts=_RECOM_TREES,
                    allow_pair_reselection=True,
                    rng=rng,
                )
            except ReselectException:
                continue
            flips = {n: a for n in piece} | {n: b for n in nodes - set(piece)}
            return partition.flip(flips)
        return partition.flip({})


def _improve(
    graph: Graph,
    start: Array,
    *,
    hh_unit: Array,
    hh_current: Array,
    lengths: dict[tuple[int, int], float],
    on_edge: Array,
    unit_area: Array,
    unit_rim: Array,
    lo: int,
    hi: int,
    steps: int,
    rng: random.Random,
    surcharge: dict[str, float],
    fields: _FieldData | None = None,
    check: Callable[[str], None] | None = None,
) -> _ChainResult:
    """Short bursts of bounded ReCom minimising the score (see :func:`_Score`); ``check``
    (a :meth:`Budget.check`) is called before every step."""
    from gerrychain import Partition
    from gerrychain.constraints import Bounds, contiguous
    from gerrychain.optimization import SingleMetricOptimizer
    from gerrychain.updaters import Tally, cut_edges

    partition = Partition(
        graph,
        {int(u): int(p) for u, p in enumerate(start.tolist())},
        updaters={"population": Tally("population", alias="population"), "cut_edges": cut_edges},
    )
    pg = partition.graph
    n = len(start)
    # GerryChain renumbers nodes internally (rustworkx): unit → internal id.
    to_internal = np.empty(n, dtype=np.int64)
    for i in range(n):
        to_internal[int(pg.original_nx_node_id_for_internal_node_id(i))] = i
    rows = [to_internal[a] for a, _ in lengths] + [to_internal[b] for _, b in lengths]
    cols = rows[len(lengths) :] + rows[: len(lengths)]
    rim = to_internal[np.flatnonzero(on_edge)].tolist()
    rows += rim + [n] * len(rim)
    cols += [n] * len(rim) + rim
    scorer = _Score(
        k=int(start.max()) + 1,
        edge_len={
            (
                min(int(to_internal[a]), int(to_internal[b])),
                max(int(to_internal[a]), int(to_internal[b])),
            ): w
            for (a, b), w in lengths.items()
        },
        hh_internal=to_internal[hh_unit[(hh_unit >= 0) & (hh_current >= 0)]],
        hh_current=hh_current[(hh_unit >= 0) & (hh_current >= 0)],
        adjacency=csr_array(
            (np.ones(len(rows), dtype=np.int8), (np.asarray(rows), np.asarray(cols))),
            shape=(n + 1, n + 1),
        ),
        area=np.zeros(n),
        rim=np.zeros(n),
    )
    scorer.area[to_internal] = unit_area
    scorer.rim[to_internal] = unit_rim
    if fields is not None:
        in_field = (hh_unit >= 0) & (fields.hh_field >= 0)
        scorer.f_unit = to_internal[fields.pair_unit]
        scorer.f_field = fields.pair_field
        scorer.f_area = fields.pair_area
        scorer.f_whole = np.where(fields.inside, fields.area, 0.0)
        scorer.hh_f_internal = to_internal[hh_unit[in_field]]
        scorer.hh_f = fields.hh_field[in_field]
    partition.updaters["holes"] = scorer.holes
    partition.updaters["score"] = scorer.score

    def score(p: Partition) -> float:
        return float(p["score"])

    length_before, moved_before = scorer.boundary(partition), scorer.moved(partition)
    holes_before = len(partition["holes"])
    cut_before = len(partition["cut_edges"])
    fields_before = scorer.fields_cut(partition)
    accepted = improvements = 0
    best = partition
    if steps > 0:
        optimizer = SingleMetricOptimizer(
            _BoundedReCom(lo, hi, surcharge),
            [contiguous, Bounds(lambda p: p["population"].values(), (lo, hi))],
            partition,
            score,
            maximize=False,
            rng=rng,
        )
        bursts = max(1, math.ceil(steps / BURST_LENGTH))
        best_score = score(partition)
        # Each burst's chain yields its starting plan, then BURST_LENGTH proposed plans (all
        # accepted: a burst is an unbiased ReCom walk; only the restarts select).
        for i, state in enumerate(optimizer.short_bursts(BURST_LENGTH + 1, bursts)):
            if check is not None:
                check("the ReCom chain")
            if i % (BURST_LENGTH + 1) and state.flips:
                accepted += 1
            s = score(state)
            if s < best_score:
                improvements += 1
                best_score = s
        best = optimizer.best_part or partition
    vec = np.asarray(best.assignment_vector, dtype=np.int64)
    fields_after = scorer.fields_cut(best)
    return _ChainResult(
        parts=vec[to_internal],
        steps=math.ceil(steps / BURST_LENGTH) * BURST_LENGTH,
        accepted=accepted,
        improvements=improvements,
        cut_before=cut_before,
        cut_after=len(best["cut_edges"]),
        length_before=length_before,
        length_after=scorer.boundary(best),
        moved_before=moved_before,
        moved_after=scorer.moved(best),
        holes_before=holes_before,
        holes_after=len(best["holes"]),
        fields_cut_before=None if fields is None else fields_before[0],
        fields_cut_after=None if fields is None else fields_after[0],
        hh_cut_before=None if fields is None else fields_before[1],
        hh_cut_after=None if fields is None else fields_after[1],
    )


def _no_ints() -> Array:
    return np.empty(0, dtype=np.int64)


@dataclass
class _Score:
    """The chain's score: ``Σ 1/PP + KEEP_WEIGHT × moved + HOLE_PENALTY × holes`` (lower wins),
    plus ``FIELD_WEIGHT × households cut off + FIELD_CUT_PENALTY × fields cut`` with fields.

    * Σ 1/PP: perimeter² / (4π·area) summed over the grids, from the units' areas, their
      share of the community's edge and the lengths of the cut edges. The total length of the
      lines between grids (ReCom's cut edges, by length) was tried first: on a community of
      dense compounds in open land it draws rings around compounds and long arms through open
      land; the Polsby–Popper score keeps territories whole and square;
    * moved: households whose new grid does not derive from their current grid;
    * holes: grids that surround another grid (a doughnut). Grids within grids are hard to
      walk and to explain;
    * fields cut and households cut off, by the impact diff's rule (:func:`.diff.diff_plans`,
      which is what activation does): a field keeps its largest piece (by area) and is cut
      when more than :data:`.diff.CUT_SHARE` of its area (and over 1 m²) lies outside it; its
      households outside that piece's grid are cut off. Cells end at field outlines, so the
      areas summed over units are the areas of the grids' polygons.

    Node ids are GerryChain's internal ones.
    """

    k: int
    edge_len: dict[tuple[int, int], float]
    hh_internal: Array
    hh_current: Array
    #: Adjacency (CSR) of the internal nodes plus a last node outside the community.
    adjacency: csr_array
    area: Array
    rim: Array
    #: Fields: (internal unit, field, m²) overlaps, each field's whole area (0 for one outside
    #: the community), and the internal unit and field of each household in a field.
    f_unit: Array = field(default_factory=_no_ints)
    f_field: Array = field(default_factory=_no_ints)
    f_area: Array = field(default_factory=lambda: np.empty(0))
    f_whole: Array = field(default_factory=lambda: np.empty(0))
    hh_f_internal: Array = field(default_factory=_no_ints)
    hh_f: Array = field(default_factory=_no_ints)

    def boundary(self, p: Partition) -> float:
        return float(sum(self.edge_len[e] for e in p["cut_edges"]))

    def moved(self, p: Partition) -> int:
        n_cur = int(self.hh_current.max()) + 1 if len(self.hh_current) else 0
        if not n_cur:
            return 0
        vec = np.asarray(p.assignment_vector, dtype=np.int64)
        m = np.bincount(vec[self.hh_internal] * n_cur + self.hh_current, minlength=self.k * n_cur)
        return int(len(self.hh_current) - m.reshape(self.k, n_cur).max(axis=1).sum())

    def holes(self, p: Partition) -> frozenset[Hashable]:
        """Parts with a hole: some of the rest cannot reach the community's edge around them."""
        if p.parent is None or p.flips is None:
            changed = set(p.parts)
            kept: set[Hashable] = set()
        else:
            changed = set(p.flips.values()) | {p.parent.assignment[u] for u in p.flips}
            kept = set(p.parent["holes"]) - changed
        vec = np.asarray(p.assignment_vector)
        return frozenset(kept | {part for part in changed if self._has_hole(vec, part)})

    def _has_hole(self, vec: Array, part: Hashable) -> bool:
        # The rest of the plan plus a node for "beyond the community edge" must be connected.
        rest = np.append(vec != part, True)
        sub = self.adjacency[rest][:, rest]
        return bool(connected_components(sub, directed=False, return_labels=False) > 1)

    def inverse_pp(self, p: Partition) -> float:
        """Σ over grids of 1/Polsby–Popper = perimeter² / (4π·area)."""
        vec = np.asarray(p.assignment_vector, dtype=np.int64)
        area = np.bincount(vec, weights=self.area, minlength=self.k)
        perim = np.bincount(vec, weights=self.rim, minlength=self.k)
        for e in p["cut_edges"]:
            w = self.edge_len[e]
            perim[vec[e[0]]] += w
            perim[vec[e[1]]] += w
        return float(np.sum(perim**2 / (4 * math.pi * area)))

    def fields_cut(self, p: Partition) -> tuple[int, int]:
        """(fields cut, households cut off from their field)."""
        n_f = len(self.f_whole)
        if not n_f:
            return 0, 0
        vec = np.asarray(p.assignment_vector, dtype=np.int64)
        pieces = np.bincount(
            vec[self.f_unit] * n_f + self.f_field, weights=self.f_area, minlength=self.k * n_f
        ).reshape(self.k, n_f)
        keep = pieces.argmax(axis=0)
        off = self.f_whole - pieces.max(axis=0)
        cut = (off > _CUT_M2) & (off > CUT_SHARE * self.f_whole)
        lost = cut[self.hh_f] & (vec[self.hh_f_internal] != keep[self.hh_f])
        return int(cut.sum()), int(lost.sum())

    def score(self, p: Partition) -> float:
        s = self.inverse_pp(p) + KEEP_WEIGHT * self.moved(p) + HOLE_PENALTY * len(p["holes"])
        if len(self.f_whole):
            n_cut, lost = self.fields_cut(p)
            s += FIELD_WEIGHT * lost + FIELD_CUT_PENALTY * n_cut
        return s


# ------------------------------------------------------------------------------------------
# Geometry and checks
# ------------------------------------------------------------------------------------------


def _grid_polygons(
    com: BaseGeometry, units: _Units, parts: Array, bld: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """One polygon per part: its cells, with every building given whole to its cell's grid."""
    k = int(parts.max()) + 1
    # Snap-rounded unions (a 0.1 mm grid): cells clipped to neighbouring blocks meet along
    # edges whose vertices differ by float noise, which a plain union leaves unmerged.
    geoms = [shapely.union_all(units.geoms[parts == p], grid_size=_GRID_M) for p in range(k)]
    # Buildings: clipped to the community, owned by the grid of their unit.
    unit_of_building = {b: u for u, b in enumerate(units.building) if b is not None}
    b_geoms = shapely.intersection(np.asarray(bld.geometry.values), com)
    owner = np.array(
        [
            parts[unit_of_building[_id(b)]] if _id(b) in unit_of_building else -1
            for b in bld["id"].tolist()
        ],
        dtype=np.int64,
    )
    grid_arr = np.asarray(geoms, dtype=object)
    # A building without a unit (its point on surface outside the community) goes whole to
    # the grid holding most of what lies inside.
    for i in np.flatnonzero((owner < 0) & (shapely.area(b_geoms) > 0)):
        owner[i] = int(np.argmax(shapely.area(shapely.intersection(grid_arr, b_geoms[i]))))
    own = np.flatnonzero(owner >= 0)
    outside = shapely.area(shapely.difference(b_geoms[own], grid_arr[owner[own]]))
    for i in own[outside > 1e-6]:
        b, g = b_geoms[i], int(owner[i])
        for other in range(k):
            if other != g and shapely.intersects(grid_arr[other], b):
                grid_arr[other] = shapely.difference(grid_arr[other], b, grid_size=_GRID_M)
        grid_arr[g] = shapely.union(grid_arr[g], b, grid_size=_GRID_M)
    grid_arr = _fill_specks(_one_piece(grid_arr))
    return gpd.GeoDataFrame(geometry=list(grid_arr), crs=bld.crs)


def _fill_specks(grids: Array) -> Array:
    """Grids without specks of gap: holes under 1 m² that no other grid fills.

    Cells clipped to neighbouring faces meet along edges whose vertices differ; where their
    union leaves a hair-thin gap, its outline would count in the grid's perimeter.
    """
    tree = shapely.STRtree(grids)
    for g in range(len(grids)):
        geom = grids[g]
        if not isinstance(geom, Polygon) or not geom.interiors:
            continue
        rings = []
        for ring in geom.interiors:
            hole = Polygon(ring)
            others = [o for o in tree.query(hole, predicate="intersects").tolist() if o != g]
            filled = (
                bool(others)
                and float(shapely.area(shapely.intersection(grids[others], hole)).sum()) > 0
            )
            if hole.area >= 1.0 or filled:
                rings.append(ring)
        if len(rings) < len(geom.interiors):
            grids[g] = Polygon(geom.exterior, rings)
    return grids


def _one_piece(grids: Array) -> Array:
    """Valid polygons; stray pieces without area worth keeping (< 1 m²) join a neighbour."""
    grids = shapely.make_valid(grids)
    for _ in range(3):
        changed = False
        for g in range(len(grids)):
            polys = [p for p in shapely.get_parts(grids[g]) if isinstance(p, Polygon)]
            polys.sort(key=lambda p: -p.area)
            if len(polys) <= 1:
                grids[g] = polys[0] if polys else grids[g]
                continue
            grids[g] = polys[0]
            for piece in polys[1:]:
                if piece.area >= 1.0:
                    grids[g] = shapely.union(grids[g], piece, grid_size=_GRID_M)
                    continue
                near = [
                    (shapely.length(shapely.intersection(piece.boundary, grids[o].buffer(0.01))), o)
                    for o in range(len(grids))
                    if o != g and shapely.dwithin(grids[o], piece, 0.01)
                ]
                if near:
                    o = max(near)[1]
                    grids[o] = shapely.union(grids[o], piece, grid_size=_GRID_M)
                    changed = True
        if not changed:
            break
    return shapely.make_valid(grids)


def _final_checks(
    out: gpd.GeoDataFrame,
    local: gpd.GeoDataFrame,
    com: BaseGeometry,
    bld: gpd.GeoDataFrame,
    hh_wgs84: gpd.GeoSeries,
    lo: int,
    hi: int,
) -> gpd.GeoDataFrame:
    """Count households in the WGS 84 polygons and check every promise the plan makes."""
    geoms = np.asarray(local.geometry.values)
    problems: list[str] = []
    single = np.array([isinstance(g, Polygon) for g in out.geometry.values])
    if not single.all():
        problems.append(
            f"contiguity: {', '.join(out['code'][~single].tolist())} would be in several pieces"
        )
    owner = assign_points(hh_wgs84, out, key=out["code"].to_numpy())
    counts = np.bincount(owner[owner >= 0], minlength=len(out))
    out = out.assign(households=counts.astype(int))
    bad = np.flatnonzero((counts < lo) | (counts > hi))
    if len(bad):
        problems.append(
            "households per grid: "
            + ", ".join(f"{out['code'].iloc[i]} holds {counts[i]:,}" for i in bad[:5])
            + f" (range {lo:,}–{hi:,})"
        )
    if (owner < 0).any():
        problems.append(f"{int((owner < 0).sum()):,} households fall in no grid")
    union_area = shapely.area(shapely.union_all(geoms))
    if abs(union_area - com.area) > 1.0 or abs(shapely.area(geoms).sum() - com.area) > 1.0:
        problems.append(
            f"tiling: the grids cover {union_area:,.1f} m² (overlapping "
            f"{shapely.area(geoms).sum() - union_area:,.1f} m²) of a {com.area:,.1f} m² community"
        )
    b_geoms = shapely.intersection(np.asarray(bld.geometry.values), com)
    tree = shapely.STRtree(geoms)
    bi, gi = tree.query(b_geoms, predicate="intersects")
    inter = shapely.area(shapely.intersection(b_geoms[bi], geoms[gi]))
    best = np.zeros(len(b_geoms))
    np.maximum.at(best, bi, inter)
    split = np.flatnonzero(shapely.area(b_geoms) - best > 0.01)
    if len(split):
        ids = bld["id"].iloc[split[:5]].tolist()
        problems.append(f"buildings split between grids: {', '.join(map(str, ids))}")
    if problems:
        raise InfeasiblePlan(
            "the drawn plan failed its own checks: " + "; ".join(problems),
            details={"constraint": "final_check", "problems": problems},
        )
    return out


def _field_cuts(
    fld: gpd.GeoDataFrame, grids: Array, hh_field: Array, hh_grid: Array
) -> tuple[int, int, list[int]]:
    """(fields cut, households cut off, positions of the cut fields) on the drawn grids.

    The impact diff's rule (:func:`.diff.diff_plans`): a field keeps its largest piece; it is
    cut when more than :data:`.diff.CUT_SHARE` of its area, and over 1 m², lies outside that
    piece; its households whose grid is not that piece's are cut off.
    """
    f_geoms = np.asarray(fld.geometry.values)
    area = shapely.area(f_geoms)
    fi, gj = shapely.STRtree(grids).query(f_geoms, predicate="intersects")
    pieces = np.zeros((len(f_geoms), len(grids)))
    np.add.at(pieces, (fi, gj), shapely.area(shapely.intersection(f_geoms[fi], grids[gj])))
    keep = pieces.argmax(axis=1)
    largest = pieces.max(axis=1)
    off = np.where(largest > 0, area - largest, 0.0)
    cut = (off > _CUT_M2) & (off > CUT_SHARE * area)
    has = hh_field >= 0
    f_of = np.where(has, hh_field, 0)
    lost = has & cut[f_of] & (hh_grid != keep[f_of])
    return int(cut.sum()), int(lost.sum()), np.flatnonzero(cut).tolist()


def _kept(new_of_hh: Array, hh_current: Array, k: int, n_cur: int) -> int:
    """Households whose new grid derives from their current grid (the one holding most)."""
    if not n_cur:
        return 0
    ok = (new_of_hh >= 0) & (hh_current >= 0)
    m = np.bincount(new_of_hh[ok] * n_cur + hh_current[ok], minlength=k * n_cur)
    return int(m.reshape(k, n_cur).max(axis=1).sum())


def _mean_polsby_popper(geoms: Iterable[BaseGeometry]) -> float | None:
    """Mean 4πA/P² (Polsby & Popper 1991): 1 for a disc, near 0 for a ribbon."""
    arr = np.asarray(list(geoms), dtype=object)
    if not len(arr):
        return None
    pp = 4 * math.pi * shapely.area(arr) / np.square(shapely.length(arr))
    return round(float(np.mean(pp)), 4)


def _grid_name(community_name: str | None, community_code: str, code: str) -> str | None:
    """A new grid's name: 金源社区第3网格 for a Chinese community, "Kluuvi grid 3" elsewhere
    (a community whose code is not 12 digits)."""
    if not community_name:
        return None
    number = int(code[len(community_code) :].lstrip("-"))
    if len(community_code) == 12 and community_code.isdigit():
        return f"{community_name}第{number}网格"
    return f"{community_name} grid {number}"
