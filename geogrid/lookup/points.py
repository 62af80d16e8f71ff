"""Incoming coordinates: checked, and converted to the WGS 84 lon/lat the indexes hold.

Coordinates come in any CRS :func:`geogrid.crs.normalize_crs` accepts; GCJ-02 and BD-09 are
converted to WGS 84 on the way in, and the answer gives the point in WGS 84 and in the
requested CRS (docs/api.md, "Lookup"). Each error is an :class:`InvalidInput` naming the
parameter at fault (``lon`` or ``lat``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pyproj

from geogrid import crs as gcrs
from geogrid.errors import InvalidInput

__all__ = ["check_point", "convert_point", "crs_kind", "parse_point"]


@functools.lru_cache(maxsize=64)
def crs_kind(name: str) -> str:
    """``lonlat`` for geographic CRSs (and GCJ-02/BD-09), ``projected`` otherwise."""
    if name in (gcrs.WGS84, gcrs.CGCS2000, gcrs.GCJ02, gcrs.BD09):
        return "lonlat"
    return "lonlat" if pyproj.CRS.from_user_input(name).is_geographic else "projected"


def check_point(lon: Any, lat: Any, crs: str) -> tuple[float, float]:
    """Validated (x, y) in ``crs``: :class:`InvalidInput` names the parameter at fault.

    Lon/lat CRSs (WGS 84, CGCS2000, GCJ-02, BD-09, geographic EPSG codes) are checked by
    :func:`geogrid.crs.check_lonlat` (finite, in range, a hint when they look swapped); a
    projected CRS's easting/northing only for being finite numbers (the range is checked on
    the converted point, :func:`convert_point`).
    """
    if lon is None or (isinstance(lon, str) and not lon.strip()):
        raise InvalidInput("lon is missing: give lon and lat (or an address)", field="lon")
    if lat is None or (isinstance(lat, str) and not lat.strip()):
        raise InvalidInput("lat is missing: give lon and lat (or an address)", field="lat")
    if crs_kind(crs) == "lonlat":
        return gcrs.check_lonlat(lon, lat)
    return gcrs.finite_number(lon, "lon"), gcrs.finite_number(lat, "lat")


def convert_point(x: float, y: float, crs: str) -> tuple[float, float]:
    """A checked point in ``crs`` → WGS 84 lon/lat."""
    if crs in (gcrs.WGS84, gcrs.CGCS2000):
        return x, y
    wgs_lon, wgs_lat = gcrs.to_wgs84(x, y, crs)
    if crs_kind(crs) != "lonlat":
        if not (math.isfinite(wgs_lon) and math.isfinite(wgs_lat)):
            raise InvalidInput(f"the point ({x}, {y}) is outside the domain of {crs}", field="lon")
        gcrs.check_lonlat(wgs_lon, wgs_lat)
    return wgs_lon, wgs_lat


def parse_point(lon: Any, lat: Any, crs: str) -> tuple[float, float, float, float]:
    """Checked (x, y) in ``crs`` and the same point as WGS 84 lon/lat."""
    x, y = check_point(lon, lat, crs)
    return (x, y, *convert_point(x, y, crs))
