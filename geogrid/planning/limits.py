"""How big an uploaded plan may be, counted before any expensive work.

The plan API refuses a plan with too many grids or vertices (422 ``too_complex``) before it
validates, measures or diffs it: the overlays grow with the vertices, the pairwise checks
with the grids, and a 54 MB plan once kept a server at 100 % CPU and 7.7 GB for 12 minutes.
Counting is cheap: on a parsed GeoJSON body (:func:`check_geojson_size`) a walk of its
coordinate lists that stops at the first position past the limit, before any geometry is
built; on parsed geometries one vectorised shapely call (``get_num_coordinates``). The time
the work may then take is the caller's :class:`geogrid.budget.Budget`.

>>> from shapely.geometry import box
>>> import geopandas as gpd
>>> grids = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)] * 3, crs="EPSG:4326")
>>> check_plan_size(grids, max_features=2)
Traceback (most recent call last):
...
geogrid.errors.TooComplex: the plan has 3 features; at most 2
>>> check_plan_size(grids, max_vertices=12)
Traceback (most recent call last):
...
geogrid.errors.TooComplex: the plan has 15 vertices; at most 12
>>> body = {"type": "FeatureCollection", "features": [
...     {"type": "Feature", "geometry": box(0, 0, 1, 1).__geo_interface__}] * 3}
>>> check_geojson_size(body, max_vertices=12)
Traceback (most recent call last):
...
geogrid.errors.TooComplex: the plan has more than 12 vertices
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geogrid.errors import TooComplex

__all__ = [
    "check_feature_count",
    "check_geojson_size",
    "check_plan_size",
    "vertex_count",
]


def check_feature_count(n: int, *, max_features: int | None) -> None:
    """:class:`TooComplex` (field ``features``) when ``n`` is over ``max_features``."""
    if max_features is not None and n > max_features:
        raise TooComplex(
            f"the plan has {n:,} features; at most {max_features:,}",
            field="features",
            details={"count": n, "limit": max_features},
        )


def vertex_count(grids: gpd.GeoDataFrame) -> int:
    """Vertices of every geometry together (rings' closing points counted, as GeoJSON)."""
    geoms = np.asarray(grids.geometry.values, dtype=object)
    return int(shapely.get_num_coordinates(geoms).sum()) if len(geoms) else 0


def check_plan_size(
    grids: gpd.GeoDataFrame, *, max_features: int | None = None, max_vertices: int | None = None
) -> None:
    """:class:`TooComplex` when the plan has more grids (field ``features``) or vertices
    (field ``vertices``) than allowed; ``None`` allows any number. Features are checked
    first."""
    check_feature_count(len(grids), max_features=max_features)
    if max_vertices is None:
        return
    n = vertex_count(grids)
    if n > max_vertices:
        raise TooComplex(
            f"the plan has {n:,} vertices; at most {max_vertices:,}",
            field="vertices",
            details={"count": n, "limit": max_vertices},
        )


def _positions(coords: Any, budget: int) -> int:
    """Positions in a GeoJSON ``coordinates`` value, counting no further than ``budget`` + 1
    (a position is a list whose first item is not a list; anything else malformed counts 0 and
    is the reader's to report)."""
    if not isinstance(coords, list | tuple) or not coords:
        return 0
    if not isinstance(coords[0], list | tuple):
        return 1
    n = 0
    for part in coords:
        n += _positions(part, budget - n)
        if n > budget:
            break
    return n


def _geometry_positions(geometry: Any, budget: int) -> int:
    if not isinstance(geometry, dict):
        return 0
    if geometry.get("type") == "GeometryCollection":
        n = 0
        for g in geometry.get("geometries") or []:
            n += _geometry_positions(g, budget - n)
            if n > budget:
                break
        return n
    return _positions(geometry.get("coordinates"), budget)


def check_geojson_size(
    body: dict[str, Any], *, max_features: int | None = None, max_vertices: int | None = None
) -> None:
    """:class:`TooComplex` when a parsed GeoJSON FeatureCollection has more features or
    vertices than allowed, counted on the JSON itself (no geometry built) and stopping at the
    first vertex past the limit, so a refusal costs a fraction of reading the plan."""
    features = body.get("features")
    if not isinstance(features, list):
        return
    check_feature_count(len(features), max_features=max_features)
    if max_vertices is None:
        return
    n = 0
    for feature in features:
        if isinstance(feature, dict):
            n += _geometry_positions(feature.get("geometry"), max_vertices - n)
        if n > max_vertices:
            raise TooComplex(
                f"the plan has more than {max_vertices:,} vertices",
                field="vertices",
                details={"limit": max_vertices},
            )
