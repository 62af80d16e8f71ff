"""Building blocks of the query modules: geometry binds and reads (WKB), counts, bulk writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from geoalchemy2 import Geometry, WKTElement
from geoalchemy2 import functions as gfunc
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Select, func, insert, select, text

from geogrid.db import dialect, models

WGS84 = "EPSG:4326"


def geom_value(geom: BaseGeometry | None) -> Any:
    """A bind value for a geometry column (EPSG:4326)."""
    return None if geom is None else from_shape(geom, srid=models.SRID)


def read_frame(
    conn: Connection, stmt: Select[Any], *, geometry: str = "geometry"
) -> gpd.GeoDataFrame:
    """Run ``stmt`` (with its geometry selected as ``ST_AsBinary(...).label(geometry)``).

    SpatiaLite stores its own blob format, so geometries always travel as WKB.
    """
    result = conn.execute(stmt)
    columns = list(result.keys())
    rows = result.all()
    data: dict[str, list[Any]] = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    wkb = data.pop(geometry)
    geoms = shapely.from_wkb([bytes(b) if b is not None else None for b in wkb])
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)


def wkb(column: Any, label: str = "geometry") -> Any:
    """``ST_AsBinary(column)`` labelled for :func:`read_frame`."""
    return gfunc.ST_AsBinary(column).label(label)


def count(conn: Connection, model: Any, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def bulk_insert(
    conn: Connection, model: Any, rows: Iterable[dict[str, Any]], *, chunk: int = 5000
) -> int:
    """Insert ``rows`` in chunks (executemany); return how many."""
    n = 0
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            conn.execute(insert(model), batch)
            n += len(batch)
            batch = []
    if batch:
        conn.execute(insert(model), batch)
        n += len(batch)
    return n


def bind_geometries(model: Any, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with shapely geometries as bind values, converted in one vectorised call per
    column: the EWKT text GeoAlchemy2 would send anyway. Bound as WKB (``geom_value``) each
    geometry went shape → WKB → shape → WKT row by row in GeoAlchemy2's bind processors (on
    both backends), ~20 µs a row."""
    out = [dict(r) for r in rows]
    for key in _geometry_keys(model):
        at = [i for i, r in enumerate(rows) if isinstance(r.get(key), BaseGeometry)]
        texts = shapely.to_wkt(
            np.asarray([rows[i][key] for i in at], dtype=object), rounding_precision=-1
        )
        for i, wkt in zip(at, texts.tolist(), strict=True):
            out[i][key] = WKTElement(wkt, srid=models.SRID)
    return out


def bulk_load(conn: Connection, model: Any, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` (shapely geometries in EPSG:4326) when their ids are not needed back:
    ``dialect.load_rows`` (``COPY`` on PostGIS). Rows with different keys go in separate
    batches, so a column a row leaves out keeps its server default."""
    geometry = set(_geometry_keys(model))
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return sum(
        dialect.load_rows(
            conn,
            table=model.__tablename__,
            columns={k: [r[k] for r in group] for k in keys},
            geometry=geometry,
            srid=models.SRID,
        )
        for keys, group in groups.items()
    )


def _geometry_keys(model: Any) -> list[str]:
    return [c.key for c in model.__table__.columns if isinstance(c.type, Geometry)]


def insert_returning_ids(conn: Connection, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows one statement each batch and return their ids in input order."""
    if not rows:
        return []
    result = conn.execute(
        insert(model).returning(model.id, sort_by_parameter_order=True), list(rows)
    )
    return [int(r[0]) for r in result.all()]


def update_ids(
    conn: Connection,
    model: Any,
    column: str,
    values: Sequence[tuple[int, int | None]],
    *,
    chunk: int = 5000,
) -> int:
    """Set integer ``column`` of ``model``'s rows: ``[(id, value), …]``; returns the count."""
    return _update_from_values(
        conn,
        model,
        [(int(key), None if value is None else int(value)) for key, value in values],
        slots=("CAST({} AS INTEGER)", "CAST({} AS INTEGER)"),
        assign=f"{column} = v.column2",
        chunk=chunk,
    )


def _update_from_values(
    conn: Connection,
    model: Any,
    rows: Sequence[Sequence[Any]],
    *,
    slots: Sequence[str],
    assign: str,
    chunk: int,
) -> int:
    """``UPDATE table SET assign FROM (VALUES …) AS v WHERE table.id = v.column1``, per chunk.

    Each row is ``(id, value, …)``; ``slots`` wraps each position's parameter (``{}``) in SQL,
    e.g. a cast, so the ``VALUES`` columns have a type even when a chunk's values are all
    NULL. One statement per chunk rather than per row: each statement fires the tables'
    data-version trigger, and 30,000 one-row updates in one PostgreSQL transaction grew from
    40 to 180 µs each as the counter row's versions piled up (benchmarks/README.md,
    planning). ``column1``, ``column2`` … are the names both PostgreSQL and SQLite give the
    columns of a ``VALUES`` list; SQLite caps a statement's parameters (32,766), hence the
    chunks. Returns the rows updated.
    """
    table = models.table(model).name
    n = 0
    for start in range(0, len(rows), chunk):
        params: dict[str, Any] = {}
        values = []
        for k, row in enumerate(rows[start : start + chunk]):
            names = [f"p{k}_{j}" for j in range(len(slots))]
            params |= dict(zip(names, row, strict=True))
            values.append(
                "(" + ", ".join(t.format(f":{p}") for t, p in zip(slots, names, strict=True)) + ")"
            )
        result = conn.execute(
            text(
                f"UPDATE {table} SET {assign} FROM (VALUES {', '.join(values)}) AS v "
                f"WHERE {table}.id = v.column1"
            ),
            params,
        )
        n += int(result.rowcount or 0)
    return n
