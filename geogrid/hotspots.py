"""Hot and cold spots of requests: Getis-Ord Gi* with a false-discovery-rate correction.

A pure algorithm over GeoDataFrames (no database), in three explicit steps:

1. **Aggregate** request points to features: H3 hexagons (:func:`aggregate_h3`) covering the
   study area, or the grids of a plan (:func:`aggregate_grids`); households are counted the
   same way.
2. **Normalize** by households: the value of a feature is requests per 100 households, where
   a feature's households count as at least ``min_households`` (see :func:`hotspots`), or the
   plain count (``normalize="none"``).
3. **Gi\\*** (Getis & Ord 1992; Ord & Getis 1995) over contiguity neighbours — H3 ring 1, or
   grids touching at an edge or a corner (queen) — with the focal feature included, computed
   by esda's ``G_Local(star=True, transform="B")``. Its z-score is the analytic one
   (``permutations=0``): no numba compilation on a request path (../shared/PERF_NOTES.md),
   and the same answer every run. Two-sided p-values are corrected for the many tests with
   the Benjamini-Hochberg false discovery rate (Benjamini & Hochberg 1995; for local
   statistics: Caldas de Castro & Singer 2006), separately at each confidence level, and each
   feature is binned as ArcGIS's *Hot Spot Analysis* does (``Gi_Bin``): ±99, ±95, ±90 or 0.

With fewer than ``min_features`` features (30, the usual floor for Gi*'s normal
approximation) or fewer than ``min_requests`` requests the statistics mean nothing; the result
then says so (``status``, ``message``) and every feature stays unbinned.

Example — a 10 × 10 lattice with one busy 3 × 3 block:

>>> import geopandas as gpd, numpy as np
>>> from shapely.geometry import Point, box
>>> cells = gpd.GeoDataFrame(
...     {"code": [f"{r}-{c}" for r in range(10) for c in range(10)]},
...     geometry=[box(c, r, c + 1, r + 1) for r in range(10) for c in range(10)],
...     crs="EPSG:4326")
>>> homes = gpd.GeoSeries([Point(c + .5, r + .5) for r in range(10) for c in range(10)] * 20,
...     crs="EPSG:4326")
>>> busy = [Point(c + .5, r + .5) for r in (4, 5, 6) for c in (4, 5, 6)] * 8
>>> calm = [Point(c + .5, r + .5) for r in range(10) for c in range(0, 10, 3)]
>>> result = hotspots(gpd.GeoSeries(busy + calm, crs="EPSG:4326"), homes,
...     unit="grids", grids=cells)
>>> result.status, int(result.cells.set_index("id").loc["5-5", "confidence"])
('ok', 99)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from geogrid.errors import InvalidInput

__all__ = [
    "CONFIDENCE_LEVELS",
    "HotSpotResult",
    "aggregate_grids",
    "aggregate_h3",
    "benjamini_hochberg",
    "confidence_bins",
    "gi_star",
    "h3_neighbours",
    "hotspots",
    "polygon_neighbours",
    "warm_up",
]

FloatArray = npt.NDArray[np.float64]
Unit = Literal["h3", "grids"]
Normalize = Literal["households", "none"]
Status = Literal["ok", "too_few_features", "too_few_requests", "no_variation"]

#: Confidence levels of the bins (ArcGIS Hot Spot Analysis: 90, 95 and 99 %).
CONFIDENCE_LEVELS: Final = (0.90, 0.95, 0.99)
#: Fewer features than this and Gi*'s normal approximation means nothing.
MIN_FEATURES: Final = 30
MIN_REQUESTS: Final = 10
#: H3 resolution by default: 10 (hexagons of ~0.015 km², 66 m edges) resolves a community's
#: compounds and streets; 9 (~0.1 km²) suits a district.
DEFAULT_RESOLUTION: Final = 10


@dataclass
class HotSpotResult:
    """Features with their counts, values, Gi* z-scores, p-values and confidence bins.

    ``cells`` columns: ``id`` (H3 cell or grid code), ``name``, ``requests``, ``households``,
    ``value`` (requests per 100 households, or the count), ``z``, ``p`` (two-sided, before
    correction), ``confidence`` (±99/±95/±90, 0 = not significant after the FDR correction),
    ``geometry`` (EPSG:4326). ``status`` is ``ok`` or why nothing was binned.
    """

    cells: gpd.GeoDataFrame
    status: Status
    message: str | None
    unit: Unit
    resolution: int | None
    normalize: Normalize
    household_floor: float
    n_requests: int
    requests_outside: int
    fdr_thresholds: dict[float, float] = field(default_factory=dict)
    min_features: int = MIN_FEATURES
    min_requests: int = MIN_REQUESTS

    @property
    def n_features(self) -> int:
        return len(self.cells)

    @property
    def hot(self) -> int:
        return int((self.cells["confidence"] > 0).sum())

    @property
    def cold(self) -> int:
        return int((self.cells["confidence"] < 0).sum())

    def summary(self) -> dict[str, Any]:
        """The figures a map's caption or a JSON answer needs."""
        return {
            "status": self.status,
            "message": self.message,
            "unit": self.unit,
            "resolution": self.resolution,
            "normalize": self.normalize,
            "household_floor": self.household_floor,
            "features": self.n_features,
            "requests": self.n_requests,
            "requests_outside": self.requests_outside,
            "hot": self.hot,
            "cold": self.cold,
            "fdr_thresholds": {str(k): v for k, v in self.fdr_thresholds.items()},
        }


# --- aggregation -----------------------------------------------------------------------------


def _lonlat(points: gpd.GeoSeries | gpd.GeoDataFrame) -> tuple[FloatArray, FloatArray]:
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if len(geoms) and geoms.crs is not None and not geoms.crs.equals("EPSG:4326"):
        geoms = geoms.to_crs("EPSG:4326")
    xy = shapely.get_coordinates(np.asarray(geoms.values))
    if len(xy) != len(geoms):
        raise InvalidInput("points must be single, non-empty points", field="geometry")
    return xy[:, 0], xy[:, 1]


def _cells_of(lon: FloatArray, lat: FloatArray, resolution: int) -> list[str]:
    import h3

    return [h3.latlng_to_cell(y, x, resolution) for x, y in zip(lon, lat, strict=True)]


def _hexagons(cells: Sequence[str]) -> npt.NDArray[np.object_]:
    """The cells' polygons (lon/lat), built in one call when all are hexagons."""
    import h3

    rings = [h3.cell_to_boundary(c) for c in cells]
    if rings and all(len(r) == 6 for r in rings):
        return np.asarray(shapely.polygons(np.asarray(rings, dtype=np.float64)[:, :, ::-1]))
    # Pentagons (12 in the world, none in China) have 5 vertices.
    return np.array([Polygon([(lng, lat) for lat, lng in r]) for r in rings], dtype=object)


def aggregate_h3(
    requests: gpd.GeoSeries | gpd.GeoDataFrame,
    households: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    area: BaseGeometry | None = None,
) -> gpd.GeoDataFrame:
    """H3 cells with ``requests`` and ``households`` counts, ordered by cell id.

    The cells are those whose centre lies in ``area`` (the study area: e.g. the communities'
    boundaries), plus any cell holding a household or a request, so that empty places inside
    the area count as the zeros they are and no point is dropped at the edge.
    """
    import h3

    if not 0 <= resolution <= 15:
        raise InvalidInput(f"H3 resolution must be 0–15, got {resolution}", field="resolution")
    r_cells = pd.Series(_cells_of(*_lonlat(requests), resolution), dtype=object)
    h_cells = pd.Series(_cells_of(*_lonlat(households), resolution), dtype=object)
    cells = set(r_cells) | set(h_cells)
    if area is not None and not area.is_empty:
        cells |= set(h3.geo_to_cells(shapely.geometry.mapping(area), resolution))
    ids = sorted(cells)
    frame = pd.DataFrame({"id": ids})
    frame["name"] = frame["id"]
    frame["requests"] = r_cells.value_counts().reindex(ids, fill_value=0).to_numpy()
    frame["households"] = h_cells.value_counts().reindex(ids, fill_value=0).to_numpy()
    return gpd.GeoDataFrame(frame, geometry=_hexagons(ids), crs="EPSG:4326")


def aggregate_grids(
    requests: gpd.GeoSeries | gpd.GeoDataFrame,
    households: gpd.GeoSeries | gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    key: str = "code",
    name: str | None = "name",
) -> tuple[gpd.GeoDataFrame, int]:
    """Grids with ``requests`` and ``households`` counts; and how many requests fell outside.

    Points go to the covering grid with the lowest ``key`` (the edge rule,
    :func:`geogrid.spatial.assign_points`).
    """
    from geogrid.spatial import assign_points

    if key not in grids.columns:
        raise InvalidInput(f"grids have no {key!r} column", field="key")
    grids = grids.to_crs("EPSG:4326") if grids.crs and not grids.crs.equals("EPSG:4326") else grids
    keys = grids[key].to_numpy()
    rx, ry = _lonlat(requests)
    hx, hy = _lonlat(households)
    r_idx = assign_points(shapely.points(rx, ry), grids, key=keys)
    h_idx = assign_points(shapely.points(hx, hy), grids, key=keys)
    n = len(grids)
    frame = pd.DataFrame({"id": keys.astype(str)})
    frame["name"] = (
        grids[name].astype(object).where(grids[name].notna(), None).to_numpy()
        if name and name in grids.columns
        else frame["id"]
    )
    frame["requests"] = np.bincount(r_idx[r_idx >= 0], minlength=n)
    frame["households"] = np.bincount(h_idx[h_idx >= 0], minlength=n)
    out = gpd.GeoDataFrame(frame, geometry=np.asarray(grids.geometry.values), crs="EPSG:4326")
    return out, int((r_idx < 0).sum())


# --- neighbours and statistics ---------------------------------------------------------------


def h3_neighbours(cells: Sequence[str]) -> dict[int, list[int]]:
    """Positional neighbours among ``cells``: the ring-1 cells that are present."""
    import h3

    index = {c: i for i, c in enumerate(cells)}
    return {i: sorted(index[n] for n in h3.grid_ring(c, 1) if n in index) for c, i in index.items()}


def polygon_neighbours(polygons: gpd.GeoDataFrame | gpd.GeoSeries) -> dict[int, list[int]]:
    """Queen contiguity: positional neighbours sharing at least a point (edge or corner)."""
    geoms = np.asarray(polygons.geometry.values)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    out: dict[int, list[int]] = {i: [] for i in range(len(geoms))}
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a != b:
            out[a].append(b)
    return {k: sorted(v) for k, v in out.items()}


def warm_up() -> None:
    """Import esda and libpysal (≈2 s) so the first hot-spot map does not pay for it."""
    gi_star(np.arange(4, dtype=float), {0: [1], 1: [0, 2], 2: [1, 3], 3: [2]})


def gi_star(
    values: npt.ArrayLike, neighbours: dict[int, list[int]]
) -> tuple[FloatArray, FloatArray]:
    """Gi* z-scores and two-sided p-values (analytic, normal approximation) by esda.

    ``neighbours`` maps positions to neighbouring positions (without the focal one: Gi*
    adds it with weight 1). Binary weights, as Getis & Ord define Gi*.
    """
    from esda.getisord import G_Local
    from libpysal.graph import Graph

    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    # Binary weights with the focal feature included (the diagonal: Gi*, not Gi), as a
    # libpysal Graph: built from arrays, ~5× faster than a dict-based W at 80k cells.
    focal = [np.arange(n)] + [np.full(len(v), k) for k, v in neighbours.items() if v]
    neighbour = [np.arange(n)] + [np.asarray(v, dtype=np.int64) for v in neighbours.values() if v]
    focal_ids = np.concatenate(focal)
    graph = Graph.from_arrays(
        focal_ids, np.concatenate(neighbour), np.ones(len(focal_ids), dtype=np.float64)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = G_Local(y, graph, transform="B", permutations=0, star=True)
    z = np.asarray(g.Zs, dtype=np.float64)
    # esda's p_norm is one-tailed for |z|; hot and cold are both tested: two-sided.
    p = np.minimum(1.0, 2.0 * np.asarray(g.p_norm, dtype=np.float64))
    return z, p


def benjamini_hochberg(p: npt.ArrayLike, alpha: float) -> float:
    """The Benjamini-Hochberg threshold: reject every p ≤ it (−1 when none is rejected).

    The largest p(k) with p(k) ≤ k·α/m over the sorted p-values (Benjamini & Hochberg 1995).
    """
    ps = np.sort(np.asarray(p, dtype=np.float64)[~np.isnan(np.asarray(p, dtype=np.float64))])
    m = len(ps)
    if m == 0:
        return -1.0
    ok = np.nonzero(ps <= alpha * np.arange(1, m + 1) / m)[0]
    return float(ps[ok[-1]]) if len(ok) else -1.0


def confidence_bins(
    z: npt.ArrayLike, p: npt.ArrayLike, levels: Sequence[float] = CONFIDENCE_LEVELS
) -> tuple[npt.NDArray[np.int64], dict[float, float]]:
    """Signed confidence bin of each feature (99, 95, 90, 0, −90, …) after the FDR correction,
    and the p-value threshold found at each level."""
    z = np.asarray(z, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    bins = np.zeros(len(z), dtype=np.int64)
    thresholds: dict[float, float] = {}
    for level in sorted(levels):
        threshold = benjamini_hochberg(p, 1.0 - level)
        thresholds[level] = threshold
        hit = (p <= threshold) & ~np.isnan(z)
        bins[hit] = round(level * 100)
    return np.where(z < 0, -bins, bins), thresholds


# --- the whole analysis ----------------------------------------------------------------------


def hotspots(
    requests: gpd.GeoSeries | gpd.GeoDataFrame,
    households: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    unit: Unit = "h3",
    resolution: int = DEFAULT_RESOLUTION,
    grids: gpd.GeoDataFrame | None = None,
    grid_key: str = "code",
    area: BaseGeometry | None = None,
    normalize: Normalize = "households",
    min_households: float | Literal["median"] | None = None,
    min_features: int = MIN_FEATURES,
    min_requests: int = MIN_REQUESTS,
    levels: Sequence[float] = CONFIDENCE_LEVELS,
) -> HotSpotResult:
    """Gi* hot and cold spots of ``requests`` (points) among features; see the module doc.

    ``unit``: ``"h3"`` hexagons at ``resolution`` covering ``area`` (and every point), or
    ``"grids"`` (``grids`` with a ``grid_key`` column, e.g. a plan's grids).
    ``normalize``: ``"households"`` → requests per 100 households, where a feature's households
    count as at least ``min_households``; ``"none"`` → the count (H3 cells are of equal area,
    so this is a density).
    ``min_households``: the floor of the denominator. ``"median"`` (default for H3) is the
    median household count of the cells that have households: a cell with 2 households and
    one request is not "50 per 100", and a street or market with no households — where
    street lights and parking are reported — is measured against a typical cell instead of
    dropped. Grids default to 1 (every grid has its households).
    """
    if unit not in ("h3", "grids"):
        raise InvalidInput(f"unit must be h3 or grids, got {unit!r}", field="unit")
    if normalize not in ("households", "none"):
        raise InvalidInput(
            f"normalize must be households or none, got {normalize!r}", field="normalize"
        )
    if unit == "h3":
        cells = aggregate_h3(requests, households, resolution=resolution, area=area)
        outside = 0
        neighbours = h3_neighbours(cells["id"].tolist())
    else:
        if grids is None:
            raise InvalidInput("unit=grids needs the grids", field="grids")
        cells, outside = aggregate_grids(requests, households, grids, key=grid_key)
        neighbours = polygon_neighbours(cells)
    counts = cells["requests"].to_numpy(dtype=np.float64)
    homes = cells["households"].to_numpy(dtype=np.float64)
    floor = _floor(homes, unit, min_households)
    if normalize == "households":
        cells["value"] = counts / np.maximum(homes, floor) * 100.0
    else:
        cells["value"] = counts
    cells["z"] = np.nan
    cells["p"] = np.nan
    cells["confidence"] = 0
    n_requests = int(counts.sum()) + outside
    result = HotSpotResult(
        cells=cells,
        status="ok",
        message=None,
        unit=unit,
        resolution=resolution if unit == "h3" else None,
        normalize=normalize,
        household_floor=floor,
        n_requests=n_requests,
        requests_outside=outside,
        min_features=min_features,
        min_requests=min_requests,
    )
    if len(cells) < min_features:
        result.status = "too_few_features"
        result.message = (
            f"only {len(cells)} features (at least {min_features} are needed for Gi*): "
            "counts are shown, no hot or cold spots"
        )
        return result
    if counts.sum() < min_requests:
        result.status = "too_few_requests"
        result.message = (
            f"only {int(counts.sum())} requests (at least {min_requests} are needed): "
            "counts are shown, no hot or cold spots"
        )
        return result
    values = cells["value"].to_numpy(dtype=np.float64)
    if np.allclose(values, values[0]):
        result.status = "no_variation"
        result.message = "every feature has the same value: no hot or cold spots"
        return result
    z, p = gi_star(values, neighbours)
    bins, thresholds = confidence_bins(z, p, levels)
    cells["z"] = z
    cells["p"] = p
    cells["confidence"] = bins
    result.fdr_thresholds = thresholds
    return result


def _floor(homes: FloatArray, unit: Unit, min_households: float | str | None) -> float:
    if min_households is None:
        min_households = "median" if unit == "h3" else 1.0
    if min_households == "median":
        populated = homes[homes > 0]
        return float(np.median(populated)) if len(populated) else 1.0
    try:
        floor = float(min_households)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"min_households must be a number or 'median', got {min_households!r}",
            field="min_households",
        ) from None
    if not math.isfinite(floor) or floor <= 0:
        raise InvalidInput("min_households must be a positive number", field="min_households")
    return floor
