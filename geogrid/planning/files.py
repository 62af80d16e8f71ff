"""Boundary-plan files: GeoJSON under ``boundaries/<community>/``, with provenance.

A plan file is a GeoJSON FeatureCollection (RFC 7946, WGS 84) of grids with ``code``, ``name``
and optionally ``lead_member``; a ``geogrid`` member (a foreign member, RFC 7946 §6.1) says
where it came from (method, seed, date, metrics). Coordinates are written at full precision
(Python's shortest round-trip repr), so a plan reads back exactly as it was validated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely

from geogrid.values import plain

__all__ = ["write_plan_geojson"]


def write_plan_geojson(
    path: Path,
    grids: gpd.GeoDataFrame,
    *,
    name: str,
    provenance: dict[str, Any] | None = None,
    columns: tuple[str, ...] = ("code", "name", "lead_member", "households"),
) -> Path:
    """Write ``grids`` (WGS 84) as a plan file; returns the path."""
    frame = grids if grids.crs is None else grids.to_crs("EPSG:4326")
    features = []
    for i in range(len(frame)):
        row = frame.iloc[i]
        # Coordinates at full precision: rounding them would make thin parts of a grid
        # invalid, and a written plan must read back exactly as validated.
        geom = row.geometry
        props = {c: plain(row[c]) for c in columns if c in frame.columns}
        features.append(
            {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}
        )
    doc: dict[str, Any] = {"type": "FeatureCollection", "name": name}
    if provenance:
        doc["geogrid"] = provenance
    doc["features"] = features
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str), encoding="utf-8"
    )
    return path
