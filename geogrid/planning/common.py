"""Pieces shared by the planning algorithms: the local metric CRS, the numbering rule and the
households-per-grid target range."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from geogrid.errors import InvalidInput

__all__ = [
    "DEFAULT_TARGET",
    "grid_order",
    "local_crs",
    "number_grids",
    "parse_target",
    "to_local",
]

#: Households per grid a plan should keep each grid within (inclusive), unless told otherwise.
DEFAULT_TARGET: Final = (300, 500)


def local_crs(bounds: Sequence[float] | BaseGeometry | gpd.GeoDataFrame) -> pyproj.CRS:
    """An azimuthal equidistant projection in metres centred on ``bounds`` (WGS 84).

    Areas and lengths of a community (a few km across) are within 0.01 % of the ellipsoidal
    values here, with no UTM zone to choose and no zone edge to fall on.
    """
    if isinstance(bounds, gpd.GeoDataFrame | gpd.GeoSeries):
        x0, y0, x1, y1 = bounds.total_bounds
    elif isinstance(bounds, BaseGeometry):
        x0, y0, x1, y1 = bounds.bounds
    else:
        x0, y0, x1, y1 = bounds
    lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
    return pyproj.CRS.from_proj4(
        f"+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs"
    )


def to_local(frame: gpd.GeoDataFrame | gpd.GeoSeries, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    """``frame`` (WGS 84, or no CRS taken as WGS 84) in the local ``crs``."""
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    out = frame.to_crs(crs)
    return out if isinstance(out, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=out)


def grid_order(x: Sequence[float], y: Sequence[float], heights: Sequence[float]) -> list[int]:
    """Positions of grids in code order: rows north→south, then west→east within a row.

    The numbering rule (Beijing DB11/T 1198 practice of numbering cells west→east,
    north→south), made exact for irregular polygons: ``x``/``y`` are the grids'
    representative points (any CRS where y grows northwards), ``heights`` their typical
    north–south extent (e.g. √area). A grid opens a new row when its point lies more than half
    the median height south of the first (northernmost) point of the current row: a latitude
    band. Within a row, grids are ordered by x (west→east), ties by y (north first).
    """
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    if not len(xs):
        return []
    band = 0.5 * float(np.median(np.asarray(heights, float)))
    rows: list[list[int]] = []
    top = np.inf
    for i in np.argsort(-ys, kind="stable"):
        if not rows or ys[i] < top - band:
            rows.append([])
            top = ys[i]
        rows[-1].append(int(i))
    return [i for row in rows for i in sorted(row, key=lambda j: (xs[j], -ys[j]))]


def number_grids(grids: gpd.GeoDataFrame, community_code: str) -> list[str]:
    """The codes :func:`grid_order` gives ``grids`` (WGS 84), in ``grids``' row order.

    A 12-digit (Chinese) community code gets a 3-digit sequence (15-digit grid codes); any
    other code gets ``-`` and a sequence number as wide as needed.
    """
    if not len(grids):
        return []
    local = to_local(grids, local_crs(grids))
    geoms = np.asarray(local.geometry.values)
    reps = shapely.point_on_surface(geoms)
    order = grid_order(
        shapely.get_x(reps).tolist(),
        shapely.get_y(reps).tolist(),
        np.sqrt(shapely.area(geoms)).tolist(),
    )
    chinese = bool(re.fullmatch(r"\d{12}", community_code))
    if chinese and len(order) > 999:
        raise InvalidInput(
            f"{len(order)} grids do not fit a 3-digit sequence (at most 999 per community)",
            field="grids",
        )
    width = 3 if chinese else max(3, len(str(len(order))))
    sep = "" if chinese else "-"
    codes = [""] * len(order)
    for position, i in enumerate(order):
        codes[i] = f"{community_code}{sep}{position + 1:0{width}d}"
    return codes


def parse_target(text: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"300:500"`` (or a pair) → (300, 500); the default range when None."""
    if text is None:
        return DEFAULT_TARGET
    if isinstance(text, tuple):
        lo, hi = text
    else:
        m = re.fullmatch(r"\s*(\d+)\s*[:\-–~]\s*(\d+)\s*", text)
        if not m:
            raise InvalidInput(
                f"households per grid must be a range like 300:500, got {text!r}",
                field="households_per_grid",
            )
        lo, hi = int(m.group(1)), int(m.group(2))
    if lo < 1 or hi < lo:
        raise InvalidInput(
            f"households per grid {lo}:{hi}: need 1 ≤ low ≤ high", field="households_per_grid"
        )
    return int(lo), int(hi)
