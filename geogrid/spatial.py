"""In-memory spatial algorithms over GeoDataFrames (no database).

``assign_points`` applies the same edge rule as the SQL in ``geogrid.db.dialect``: a point is
assigned to a polygon that covers it, and on a shared edge to the one with the lowest key.
``overlaps`` finds polygons that overlap by more than an area in square metres (the
communities import refuses them, ``geogrid check`` reports them); ``metres_per_degree`` and
``local_metres`` give the local metric frame both measure in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import shapely
from geopandas import GeoDataFrame, GeoSeries
from shapely import affinity
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

#: Metres per degree of latitude, lower bound (at the equator; 111 694 m at the poles).
M_PER_DEG_LAT = 110_574.0
#: Metres per degree of longitude at the equator (WGS 84 semi-major axis × π/180).
M_PER_DEG_LON = 111_320.0


def assign_points(
    points: GeoSeries | npt.ArrayLike,
    polygons: GeoDataFrame | GeoSeries,
    *,
    key: npt.ArrayLike | None = None,
) -> npt.NDArray[np.int64]:
    """Positional index into ``polygons`` of the polygon covering each point, −1 if none.

    ``key`` orders the polygons for the edge rule (lowest wins); by default their position.
    For a point and a polygon, *intersects* equals *covers*, and the STRtree's ``intersects``
    query is the fastest bulk predicate here (../shared/PERF_NOTES.md).
    """
    geoms = np.asarray(polygons.geometry if isinstance(polygons, GeoDataFrame) else polygons)
    pts = np.asarray(points.values if isinstance(points, GeoSeries) else points)
    out = np.full(len(pts), -1, dtype=np.int64)
    if len(pts) == 0 or len(geoms) == 0:
        return out
    tree = shapely.STRtree(geoms)
    pt_idx, poly_idx = tree.query(pts, predicate="intersects")
    if len(pt_idx) == 0:
        return out
    rank = _rank(key, len(geoms))
    # Sort hits by (point, rank) and keep the first hit of each point: the lowest key wins.
    order = np.lexsort((rank[poly_idx], pt_idx))
    pt_sorted, poly_sorted = pt_idx[order], poly_idx[order]
    first = np.ones(len(pt_sorted), dtype=bool)
    first[1:] = pt_sorted[1:] != pt_sorted[:-1]
    out[pt_sorted[first]] = poly_sorted[first]
    return out


def _rank(key: npt.ArrayLike | None, n: int) -> npt.NDArray[np.int64]:
    """Dense rank of each polygon's key (0 = lowest); position when no key is given."""
    if key is None:
        return np.arange(n, dtype=np.int64)
    keys = np.asarray(key)
    if len(keys) != n:
        raise ValueError(f"{len(keys)} keys for {n} polygons")
    order = np.argsort(keys, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64)
    return rank


def multi(geom: BaseGeometry) -> BaseGeometry:
    """Polygons and lines as their Multi* form, as the columns are declared."""
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, LineString):
        return MultiLineString([geom])
    return geom


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Local metres per degree of longitude and of latitude at latitude ``lat``.

    An equirectangular frame: good to < 1 % over a community. Latitude uses the lower bound,
    so a margin given in metres and converted with the smaller of the two is at least that
    many metres in every direction.
    """
    return M_PER_DEG_LON * max(math.cos(math.radians(lat)), 0.01), M_PER_DEG_LAT


def local_metres(geom: BaseGeometry, *, lat: float | None = None) -> BaseGeometry:
    """``geom`` (lon/lat) scaled to local metres at latitude ``lat`` (default: its centroid's),
    for areas and distances at community scale."""
    if lat is None:
        lat = geom.centroid.y if not geom.is_empty else 0.0
    mx, my = metres_per_degree(lat)
    return affinity.scale(geom, xfact=mx, yfact=my, origin=(0, 0))


class Overlap(NamedTuple):
    """Polygons ``left`` and ``right`` (positions) overlap by ``area_m2`` around ``where``."""

    left: int
    right: int
    area_m2: float
    where: Point


def overlaps(
    geoms: Sequence[BaseGeometry] | GeoSeries,
    *,
    min_area_m2: float,
    first: int | None = None,
) -> list[Overlap]:
    """Pairs of polygons that overlap by more than ``min_area_m2``, each pair once.

    Only pairs with at least one of the first ``first`` polygons (default: all) are looked
    at: the new ones against each other and against the rest, as an import or a check of a
    few communities needs. The area is measured in local metres at the overlap's own
    latitude (:func:`local_metres`); ``where`` is a point inside the overlap.
    """
    polygons = list(geoms.values if isinstance(geoms, GeoSeries) else geoms)
    n = len(polygons) if first is None else first
    if n == 0:
        return []
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons[:n], predicate="intersects")
    found: list[Overlap] = []
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if b <= a and b < n:
            continue  # itself, or a pair of two queried polygons already seen the other way
        overlap = polygons[a].intersection(polygons[b])
        area = float(local_metres(overlap).area)
        if area > min_area_m2:
            found.append(Overlap(a, b, area, overlap.representative_point()))
    return found
