"""How big an uploaded plan may be, counted before any expensive work.

The plan API refuses a plan with too many grids or vertices (422 ``too_complex``) before it
validates, measures or diffs it: the overlays grow with the vertices, the pairwise checks
with the grids, and a 54 MB plan once kept a server at 100 % CPU and 7.7 GB for 12 minutes.
Counting is cheap: the features of a parsed GeoJSON body are a list, the vertices of parsed
geometries one vectorised shapely call (``get_num_coordinates``). The time the work may then
take is the caller's :class:`geogrid.budget.Budget`.

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
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geogrid.errors import TooComplex

__all__ = ["check_feature_count", "check_plan_size", "vertex_count"]


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
