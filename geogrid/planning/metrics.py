"""Plan metrics: how balanced, staffed and compact the grids of a boundary plan are.

:func:`measure_plan` counts, per grid, the households (and residents), responsibility fields,
members and open requests it holds, and measures its shape; the grids come back worst first
(furthest outside the households-per-grid target), with plan-wide figures beside them.

* **Balance.** Practice keeps about 300–500 households per grid (Haikou; DESIGN.md), the
  default ``target``. ``target_gap`` says how many households a grid lacks (negative) or has
  too many (positive); ``deviation`` is its households relative to the plan's mean, the
  relative deviation from the "ideal" size of redistricting practice (NCSL, *Redistricting
  Law 2020*, ch. 4, population equality).
* **Compactness.** Polsby–Popper 4πA/P² (Polsby & Popper 1991, Yale Law & Policy Review 9:301):
  1 for a disc, π/4 for a square, small for long or ragged grids. Reock A / area of the
  minimum bounding circle (Reock 1961, Midwest J. of Political Science 5:70): 1 for a disc,
  2/π for a square, small for elongated grids.
* **Staffing.** The members of a grid are the distinct holders of the responsibility fields
  in it, and its lead member; households per member is the load each one carries.

Points go to grids by :func:`geogrid.spatial.assign_points` with the grid codes as the key, the
same edge rule as the database (a point on a shared edge goes to the lowest code); a field goes
to the grid holding its representative point (``point_on_surface``, always inside the field).
Areas and perimeters are measured in the local azimuthal equidistant projection
(:func:`.common.local_crs`).

Example — two 1 km squares, 400 households in the west one and 100 in the east:

>>> import geopandas as gpd
>>> from shapely.geometry import Point, box
>>> grids = gpd.GeoDataFrame({"code": ["A", "B"]},
...     geometry=[box(114.40, 23.10, 114.41, 23.11), box(114.41, 23.10, 114.42, 23.11)],
...     crs="EPSG:4326")
>>> homes = gpd.GeoDataFrame(geometry=[Point(114.405, 23.105)] * 400
...     + [Point(114.415, 23.105)] * 100, crs="EPSG:4326")
>>> m = measure_plan(grids, households=homes)
>>> m.grids[["code", "households", "target_gap", "in_target"]].values.tolist()
[['B', 100, -200, False], ['A', 400, 0, True]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geogrid.budget import Budget
from geogrid.errors import InvalidInput
from geogrid.planning.common import DEFAULT_TARGET, local_crs, parse_target, to_local
from geogrid.spatial import assign_points
from geogrid.values import plain

__all__ = ["GRID_COLUMNS", "PlanMetrics", "measure_plan"]

#: The per-grid columns of :attr:`PlanMetrics.grids`, in order.
GRID_COLUMNS: Final[tuple[str, ...]] = (
    "code",
    "name",
    "households",
    "residents",
    "members",
    "households_per_member",
    "fields",
    "open_requests",
    "area_km2",
    "polsby_popper",
    "reock",
    "deviation",
    "target_gap",
    "in_target",
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class PlanMetrics:
    """Per-grid figures (worst first) and plan-wide figures of one plan."""

    #: Households per grid the plan should keep each grid within (inclusive).
    target: tuple[int, int]
    #: One row per grid, worst first; columns :data:`GRID_COLUMNS`.
    grids: pd.DataFrame
    #: Plan-wide figures, plain Python values (None where undefined).
    plan: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``{"target": [lo, hi], "plan": {...}, "grids": [records]}``, JSON-ready."""
        records = [
            {column: plain(value) for column, value in zip(self.grids.columns, row, strict=True)}
            for row in self.grids.itertuples(index=False, name=None)
        ]
        return {
            "target": [int(self.target[0]), int(self.target[1])],
            "plan": {key: plain(value) for key, value in self.plan.items()},
            "grids": records,
        }


def measure_plan(
    grids: gpd.GeoDataFrame,
    *,
    households: gpd.GeoDataFrame | None = None,
    fields: gpd.GeoDataFrame | None = None,
    open_requests: gpd.GeoDataFrame | None = None,
    target: tuple[int, int] = DEFAULT_TARGET,
    budget: Budget | None = None,
) -> PlanMetrics:
    """Measure a plan's ``grids`` (WGS 84; ``code``, optional ``name``, ``lead_member_id``).

    ``households`` are door points with an optional ``size`` (residents, 1 when absent);
    ``fields`` are responsibility-field polygons with an optional ``member_id``;
    ``open_requests`` are points. Each is optional; what is absent counts as none.
    ``budget`` (default: none) is checked between the steps (:mod:`geogrid.budget`).
    """
    check = (budget or Budget(None)).check
    lo, hi = parse_target(target)
    grids = _wgs84(grids, "grids")
    if "code" not in grids.columns:
        raise InvalidInput("grids need a 'code' column", field="grids")
    n = len(grids)
    codes = ["" if plain(c) is None else str(c) for c in grids["code"].tolist()]
    names = grids["name"].tolist() if "name" in grids.columns else [None] * n

    # Households and residents.
    check("the households")
    home_grid = _assign(households, grids, codes, "households")
    if households is not None and "size" in households.columns:
        size = pd.to_numeric(households["size"], errors="coerce").fillna(1).to_numpy(float)
    else:
        size = np.ones(len(home_grid))
    inside = home_grid >= 0
    homes = np.bincount(home_grid[inside], minlength=n).astype(np.int64)
    residents_f = np.bincount(home_grid[inside], weights=size[inside], minlength=n)
    whole = bool(np.all(size == np.round(size)))
    residents: npt.NDArray[Any] = residents_f.astype(np.int64) if whole else residents_f

    # Fields and the members who hold them, with each grid's lead member.
    check("the fields")
    field_grid = np.full(0, -1, dtype=np.int64)
    pairs: list[tuple[int, Any]] = []
    if fields is not None and len(fields):
        fields = _wgs84(fields, "fields")
        reps = shapely.point_on_surface(np.asarray(fields.geometry.values, dtype=object))
        field_grid = assign_points(reps, grids, key=codes)
        if "member_id" in fields.columns:
            pairs += _pairs(field_grid, fields["member_id"].tolist())
    if "lead_member_id" in grids.columns:
        pairs += _pairs(np.arange(n, dtype=np.int64), grids["lead_member_id"].tolist())
    unique_pairs = set(pairs)
    members = np.bincount(
        np.asarray([g for g, _ in unique_pairs], dtype=np.int64), minlength=n
    ).astype(np.int64)
    all_members = len({m for _, m in unique_pairs})
    field_counts = np.bincount(field_grid[field_grid >= 0], minlength=n).astype(np.int64)

    check("the open requests")
    request_grid = _assign(open_requests, grids, codes, "open_requests")
    request_counts = np.bincount(request_grid[request_grid >= 0], minlength=n).astype(np.int64)

    # Shape, in metres.
    check("the shapes")
    local = np.asarray(grids.geometry.values, dtype=object)
    if n:
        local = np.asarray(to_local(grids, local_crs(grids)).geometry.values, dtype=object)
    area = np.asarray(shapely.area(local), dtype=float)
    perimeter = np.asarray(shapely.length(local), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        polsby = np.where(perimeter > 0, 4 * math.pi * area / perimeter**2, np.nan)
        # πr² of the minimum bounding circle's radius: exact, where the area of shapely's
        # minimum_bounding_circle polygon (a buffered point) falls short by ~0.6 %.
        circle = math.pi * np.asarray(shapely.minimum_bounding_radius(local), dtype=float) ** 2
        reock = np.where(circle > 0, area / circle, np.nan)
        per_member = np.where(members > 0, homes / np.maximum(members, 1), np.nan)

    mean = float(homes.mean()) if n else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = homes / mean - 1 if mean > 0 else np.full(n, np.nan)
    gap = np.where(homes < lo, homes - lo, np.where(homes > hi, homes - hi, 0)).astype(np.int64)

    table = pd.DataFrame(
        {
            "code": codes,
            "name": names,
            "households": homes,
            "residents": residents,
            "members": members,
            "households_per_member": per_member.astype(float),
            "fields": field_counts,
            "open_requests": request_counts,
            "area_km2": area / 1e6,
            "polsby_popper": polsby.astype(float),
            "reock": reock.astype(float),
            "deviation": np.asarray(deviation, dtype=float),
            "target_gap": gap,
            "in_target": gap == 0,
        },
        columns=list(GRID_COLUMNS),
    )
    # Worst first: furthest outside the target, then furthest from the mean, then least
    # compact; the code breaks ties so the order is stable. The floats are rounded so that
    # equal figures tie instead of being ordered by rounding noise.
    order = np.lexsort(
        (
            np.asarray(codes, dtype=str),
            np.round(np.nan_to_num(polsby, nan=np.inf), 6),
            -np.round(np.nan_to_num(np.abs(np.asarray(deviation, dtype=float)), nan=0.0), 9),
            -np.abs(gap),
        )
    )
    table = table.iloc[order].reset_index(drop=True)

    homes_in = int(homes.sum())
    plan: dict[str, Any] = {
        "grids": n,
        "households": homes_in,
        "residents": plain(residents.sum()),
        "members": all_members,
        "households_outside": int((~inside).sum()),
        "mean_households": _stat(homes, np.mean),
        "median_households": _stat(homes, np.median),
        "min_households": int(homes.min()) if n else None,
        "max_households": int(homes.max()) if n else None,
        # Population standard deviation: the grids are the whole plan, not a sample.
        "std_households": _stat(homes, np.std),
        "cv_households": float(homes.std() / mean) if n and mean > 0 else None,
        "in_target": int((gap == 0).sum()),
        "in_target_share": float((gap == 0).mean()) if n else None,
        "max_abs_deviation": _stat(np.abs(np.asarray(deviation, dtype=float)), np.max),
        "households_per_member": homes_in / all_members if all_members else None,
        "fields": int(field_counts.sum()),
        "open_requests": int(request_counts.sum()),
        "mean_polsby_popper": _stat(polsby, np.mean),
        "min_polsby_popper": _stat(polsby, np.min),
        "mean_reock": _stat(reock, np.mean),
        "min_reock": _stat(reock, np.min),
        "area_km2": float(np.nansum(area) / 1e6),
    }
    return PlanMetrics(target=(lo, hi), grids=table, plan=plan)


def _wgs84(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """``frame`` in WGS 84 (no CRS taken as WGS 84)."""
    if not isinstance(frame, gpd.GeoDataFrame | gpd.GeoSeries):
        raise InvalidInput(f"{name} must be a GeoDataFrame", field=name)
    if frame.crs is None:
        return frame.set_crs("EPSG:4326")
    if frame.crs.to_epsg() != 4326:
        return frame.to_crs("EPSG:4326")
    return frame


def _assign(
    points: gpd.GeoDataFrame | None, grids: gpd.GeoDataFrame, codes: list[str], name: str
) -> IntArray:
    """Row of the grid holding each point (−1 outside every grid); empty when no points."""
    if points is None or not len(points):
        return np.full(0, -1, dtype=np.int64)
    points = _wgs84(points, name)
    return assign_points(points.geometry, grids, key=codes)


def _pairs(grid: IntArray, member_ids: list[Any]) -> list[tuple[int, Any]]:
    """(grid row, member id) for every row in a grid with a member."""
    out = []
    for g, member in zip(grid.tolist(), member_ids, strict=True):
        member = plain(member)
        if g >= 0 and member is not None:
            out.append((g, member))
    return out


def _stat(values: npt.NDArray[Any], how: Any) -> float | None:
    """``how`` over the finite ``values`` as a float; None when there are none."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(how(finite)) if len(finite) else None
