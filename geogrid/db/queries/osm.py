"""The reads and writes of the OpenStreetMap import (``geogrid import osm``, ``geogrid.io.osm``)
and the data sources that exports and maps credit.

Buildings are matched on (community, OSM type, OSM id), streets on (community, name), data
sources on (community, kind ``osm``, file sha256): a re-run updates rather than duplicates.
Every function is keyword-only and returns typed rows; geometries travel as WKB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import shapely
from geoalchemy2 import functions as gfunc
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, bindparam, insert, select, update

from geogrid.db import models
from geogrid.db.queries.core import geom_value
from geogrid.errors import Conflict, NotFound

#: Values per ``IN`` list: SQLite caps a statement's parameters.
_IN_CHUNK = 900


def _geom(value: Any) -> BaseGeometry:
    return shapely.from_wkb(bytes(value))


class OsmCommunity(NamedTuple):
    """A community an OSM extract is imported into, with its boundary (EPSG:4326)."""

    id: int
    code: str
    name: str
    boundary: BaseGeometry


def osm_communities(
    conn: Connection, *, community_code: str | None = None, subdistrict_code: str | None = None
) -> list[OsmCommunity]:
    """The community ``community_code``, or every community of subdistrict
    ``subdistrict_code`` (ordered by code); the only community when neither is given."""
    c = models.Community
    stmt = select(c.id, c.code, c.name, gfunc.ST_AsBinary(c.boundary)).order_by(c.code)
    if subdistrict_code is not None:
        rows = conn.execute(stmt.where(c.subdistrict_code == subdistrict_code)).all()
        if not rows:
            raise NotFound(
                f"no community with subdistrict_code {subdistrict_code!r}", field="subdistrict"
            )
    elif community_code is not None:
        rows = conn.execute(stmt.where(c.code == community_code)).all()
        if not rows:
            raise NotFound(f"no community with code {community_code!r}", field="community")
    else:
        rows = conn.execute(stmt).all()
        if not rows:
            raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
        if len(rows) > 1:
            codes = ", ".join(str(r[1]) for r in rows)
            raise Conflict(
                f"several communities ({codes}): name one with --community or --subdistrict",
                field="community",
            )
    return [OsmCommunity(int(r[0]), str(r[1]), str(r[2]), _geom(r[3])) for r in rows]


# --- buildings ------------------------------------------------------------------------------


class OsmBuilding(NamedTuple):
    """A building's values as the OSM import writes them (``id`` of a stored one, else None)."""

    id: int | None
    community_id: int
    osm_type: str
    osm_id: int
    name: str
    aliases: list[str]
    house_number: str | None
    floors: int | None
    street_id: int | None
    street_name: str | None
    geom: BaseGeometry


def stored_osm_buildings(conn: Connection, *, community_ids: Sequence[int]) -> list[OsmBuilding]:
    """The buildings of ``community_ids`` that came from OpenStreetMap (have an OSM id)."""
    b = models.Building
    out: list[OsmBuilding] = []
    for start in range(0, len(community_ids), _IN_CHUNK):
        chunk = list(community_ids[start : start + _IN_CHUNK])
        rows = conn.execute(
            select(
                b.id,
                b.community_id,
                b.osm_type,
                b.osm_id,
                b.name,
                b.aliases,
                b.house_number,
                b.floors,
                b.street_id,
                b.street_name,
                gfunc.ST_AsBinary(b.geom),
            )
            .where(b.community_id.in_(chunk), b.osm_id.is_not(None))
            .order_by(b.id)
        ).all()
        out.extend(
            OsmBuilding(
                id=int(r[0]),
                community_id=int(r[1]),
                osm_type=str(r[2]),
                osm_id=int(r[3] or 0),  # never NULL here: the query asks for OSM ids
                name=str(r[4]),
                aliases=list(r[5] or []),
                house_number=r[6],
                floors=r[7],
                street_id=r[8],
                street_name=r[9],
                geom=_geom(r[10]),
            )
            for r in rows
        )
    return out


def _building_values(row: OsmBuilding) -> dict[str, Any]:
    values = row._asdict()
    values.pop("id")
    values["geom"] = geom_value(row.geom)
    return values


def insert_buildings(conn: Connection, *, rows: Sequence[OsmBuilding]) -> int:
    """Insert new OSM buildings; return how many."""
    if rows:
        conn.execute(insert(models.Building), [_building_values(r) for r in rows])
    return len(rows)


def update_buildings(conn: Connection, *, rows: Sequence[OsmBuilding]) -> int:
    """Update stored OSM buildings (by ``id``) with new values; return how many."""
    return _update_by_id(conn, models.Building, [(r.id, _building_values(r)) for r in rows])


# --- streets --------------------------------------------------------------------------------


class OsmStreet(NamedTuple):
    """A street's values as the OSM import writes them (``id`` of a stored one, else None)."""

    id: int | None
    community_id: int
    name: str
    kind: str | None
    geom: BaseGeometry


def stored_streets(conn: Connection, *, community_ids: Sequence[int]) -> list[OsmStreet]:
    """Every street of ``community_ids`` (whatever its source): the OSM import matches them
    by name."""
    s = models.Street
    out: list[OsmStreet] = []
    for start in range(0, len(community_ids), _IN_CHUNK):
        chunk = list(community_ids[start : start + _IN_CHUNK])
        rows = conn.execute(
            select(s.id, s.community_id, s.name, s.kind, gfunc.ST_AsBinary(s.geom))
            .where(s.community_id.in_(chunk))
            .order_by(s.id)
        ).all()
        out.extend(
            OsmStreet(int(r[0]), int(r[1]), str(r[2]), r[3], _geom(r[4]))
            for r in rows
            if r[4] is not None
        )
    return out


def _street_values(row: OsmStreet) -> dict[str, Any]:
    values = row._asdict()
    values.pop("id")
    values["geom"] = geom_value(row.geom)
    return values


def insert_streets(conn: Connection, *, rows: Sequence[OsmStreet]) -> list[int]:
    """Insert new streets; return their ids in order (buildings link to them by name)."""
    if not rows:
        return []
    s = models.Street
    result = conn.execute(
        insert(s).returning(s.id, sort_by_parameter_order=True),
        [_street_values(r) for r in rows],
    )
    return [int(r[0]) for r in result.all()]


def update_streets(conn: Connection, *, rows: Sequence[OsmStreet]) -> int:
    """Update stored streets (by ``id``) with new values; return how many."""
    return _update_by_id(conn, models.Street, [(r.id, _street_values(r)) for r in rows])


def _update_by_id(
    conn: Connection, model: type[models.Base], rows: Sequence[tuple[int | None, dict[str, Any]]]
) -> int:
    """``UPDATE … SET … WHERE id = :id`` for rows with the same columns (executemany)."""
    if not rows:
        return 0
    table = models.table(model)
    columns = list(rows[0][1])
    stmt = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
    )
    conn.execute(stmt, [{"_id": rid, **{f"v_{c}": v[c] for c in columns}} for rid, v in rows])
    return len(rows)


# --- data sources ---------------------------------------------------------------------------


class DataSourceRow(NamedTuple):
    """A data source of a community (``data_sources``): what exports and maps credit."""

    community_id: int | None
    community_code: str | None
    kind: str
    name: str
    licence: str | None
    attribution: str | None
    url: str | None
    sha256: str | None
    layers: list[str]
    data_timestamp: dt.datetime | None
    imported_at: dt.datetime


class DataSourceValues(NamedTuple):
    """What an import records of its source (one row per community and file sha256)."""

    community_id: int
    kind: str
    name: str
    licence: str
    attribution: str
    url: str
    sha256: str
    layers: list[str]
    data_timestamp: dt.datetime | None
    imported_at: dt.datetime


def upsert_data_source(
    conn: Connection, *, values: DataSourceValues
) -> Literal["inserted", "updated"]:
    """Record ``values``: update the community's row of the same kind and sha256, else insert."""
    d = models.DataSource
    existing = conn.execute(
        select(d.id)
        .where(
            d.community_id == values.community_id,
            d.kind == values.kind,
            d.sha256 == values.sha256,
        )
        .order_by(d.id)
        .limit(1)
    ).scalar_one_or_none()
    if existing is None:
        conn.execute(insert(d).values(values._asdict()))
        return "inserted"
    conn.execute(update(d).where(d.id == existing).values(values._asdict()))
    return "updated"


def data_sources(conn: Connection, *, community_ids: Sequence[int]) -> list[DataSourceRow]:
    """The data sources of ``community_ids``, by community code, kind, name and import time."""
    d, c = models.DataSource, models.Community
    out: list[DataSourceRow] = []
    for start in range(0, len(community_ids), _IN_CHUNK):
        chunk = list(community_ids[start : start + _IN_CHUNK])
        rows = conn.execute(
            select(
                d.community_id,
                c.code,
                d.kind,
                d.name,
                d.licence,
                d.attribution,
                d.url,
                d.sha256,
                d.layers,
                d.data_timestamp,
                d.imported_at,
            )
            .outerjoin(c, c.id == d.community_id)
            .where(d.community_id.in_(chunk))
            .order_by(c.code, d.kind, d.name, d.imported_at)
        ).all()
        out.extend(
            DataSourceRow(
                community_id=r[0],
                community_code=r[1],
                kind=str(r[2]),
                name=str(r[3]),
                licence=r[4],
                attribution=r[5],
                url=r[6],
                sha256=r[7],
                layers=list(r[8] or []),
                data_timestamp=r[9],
                imported_at=r[10],
            )
            for r in rows
        )
    return out
