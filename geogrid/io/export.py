"""Export every layer of one or all communities to a GeoPackage that QGIS opens.

``export_geopackage`` writes, in EPSG:4326, with pyogrio:

=========================  ================  ===========================================
layer                      geometry          columns (personal ones only with
                                             ``include_personal=True``)
=========================  ================  ===========================================
``communities``            MultiPolygon      ``code``, ``name``, ``name_en``, ``subdistrict``,
                                             ``district``, ``city``, ``province``,
                                             ``country``, ``timezone``, ``synthetic``
``grids``                  MultiPolygon      ``community_code``, ``code``, ``name``,
                                             ``plan_id``, ``plan_version``, ``plan_name``,
                                             ``plan_activated_at``, ``lead_member_id``,
                                             ``lead_member_masked``, ``households``
``responsibility_fields``  MultiPolygon      ``id``, ``community_code``, ``name``,
                                             ``member_id``, ``member_masked``, ``grid_code``,
                                             ``street_name``, ``needs_review``, ``households``
``streets``                MultiLineString   ``id``, ``community_code``, ``name``, ``kind``
``buildings``              MultiPolygon      ``id``, ``community_code``, ``name``,
                                             ``compound``, ``aliases`` (``;``-separated),
                                             ``house_number``, ``floors``, ``street_name``
``households``             Point             ``address_id``, ``community_code``,
                                             ``grid_code``, ``field_id``, ``member_id``,
                                             ``street_name``, ``house_number``, ``compound``,
                                             ``building_name``, ``size``, ``registered``;
                                             personal: ``unit``, ``room``, ``head_name``,
                                             ``phone``, ``care_flags`` (``;``-separated)
``members``                Point (position)  ``id``, ``community_code``, ``name_masked``,
                                             ``kind``, ``branch``, ``home_unit``, ``active``;
                                             personal: ``name``, ``phone``
``requests``               Point             ``id``, ``community_code``, ``category``,
                                             ``category_name``, ``programme``, ``status``,
                                             ``received_at``, ``registered_at``,
                                             ``dispatched_at``, ``due_at``, ``resolved_at``,
                                             ``closed_at``, ``grid_code``, ``field_id``,
                                             ``member_id``, ``member_masked``,
                                             ``assignment_rule``, ``source``, ``address_id``,
                                             ``description``, ``escalated_to``,
                                             ``satisfaction``
``data_sources``           none (a table)    ``community_code``, ``kind``, ``name``,
                                             ``licence``, ``attribution``, ``url``,
                                             ``sha256``, ``layers`` (``;``-separated),
                                             ``data_timestamp``, ``imported_at``
=========================  ================  ===========================================

``data_sources`` says where layers came from and under which licence: an OpenStreetMap
extract's buildings and streets are ODbL 1.0, and whoever shares the file must keep
"© OpenStreetMap contributors" with them.

``grids`` are the active plan's; ``grid_code`` and ``field_id`` of households are their
assignment under that plan (a closed request keeps the grid it had, possibly of an older
plan). Times are ISO 8601 strings with the community's UTC offset (``2026-07-01T09:30:00+08:00``).
Personal data (docs/api.md) — member names and phones, household heads, phones, care flags and
the unit and room that complete a household's address — is left out unless
``include_personal``; members' names then appear only masked (张*明, :func:`mask_name`),
``address_id`` is a stable keyed-hash stand-in (``a-`` and 16 hex digits, the key kept in the
database), request descriptions are scrubbed of phone numbers, ID numbers and e-mail
addresses, and members have no position.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor, as_actor
from geogrid.db import queries
from geogrid.db.queries import export as export_queries
from geogrid.db.queries import osm as osm_queries
from geogrid.io.readers import gdal_without_spatialite
from geogrid.privacy import mask_name, pseudonym, scrub

__all__ = ["LAYERS", "PERSONAL_COLUMNS", "export_geopackage", "mask_name"]

log = logging.getLogger(__name__)

#: Layer names in the order they are written, with their geometry types (None: a table).
LAYERS: dict[str, str | None] = {
    "communities": "MultiPolygon",
    "grids": "MultiPolygon",
    "responsibility_fields": "MultiPolygon",
    "streets": "MultiLineString",
    "buildings": "MultiPolygon",
    "households": "Point",
    "members": "Point",
    "requests": "Point",
    "data_sources": None,
}
#: Columns written only with ``include_personal=True``.
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "households": ("unit", "room", "head_name", "phone", "care_flags"),
    "members": ("name", "phone"),
}
_TIMES = (
    "received_at",
    "registered_at",
    "dispatched_at",
    "due_at",
    "resolved_at",
    "closed_at",
    "plan_activated_at",
)


def export_geopackage(
    conn: Connection,
    *,
    out: Path,
    community_code: str | None = None,
    include_personal: bool = False,
    actor: Actor | None = None,
) -> dict[str, int]:
    """Write every layer to ``out`` (replaced if it exists); return ``{layer: features}``.

    ``community_code`` limits the export to one community (default: all of them). An export
    with personal data is an ``export`` entry of the audit log (``actor``'s, default the
    local operator): the file's name, the communities and the personal columns written.
    """
    out = Path(out)
    if community_code is not None:
        ids = [queries.community_row(conn, code=community_code).id]
    else:
        ids = [int(r.id) for r in queries.list_communities(conn)]
    zones = {
        cid: ZoneInfo(tz or "Asia/Shanghai")
        for cid, tz in export_queries.community_timezones(conn, community_ids=ids).items()
    }
    plans = export_queries.active_plan_ids(conn, community_ids=ids)
    if include_personal:
        # Every read of unmasked data is logged (DESIGN: data rules); never the data itself.
        log.warning("export with personal data of communities %s to %s", ids, out.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    # Without personal data, address ids (which encode unit and room) become stable
    # stand-ins: the same in every export of this database, so layers and exports still join.
    key = None if include_personal else queries.instance_secret(conn, "pseudonyms").encode()
    counts: dict[str, int] = {}
    for layer, geometry_type in LAYERS.items():
        if geometry_type is None:
            continue
        frame = _BUILDERS[layer](conn, community_ids=ids, plan_ids=plans)
        if layer in _LISTS:
            frame[_LISTS[layer]] = [_joined(v) for v in frame[_LISTS[layer]]]
        frame = _finish(frame, layer, zones, include_personal)
        if key is not None:
            frame = _minimise(frame, layer, key)
        with gdal_without_spatialite():
            frame.to_file(
                out, layer=layer, driver="GPKG", engine="pyogrio", geometry_type=geometry_type
            )
        counts[layer] = len(frame)
    counts["data_sources"] = _write_sources(conn, out, ids, zones)
    if include_personal:
        audit.record(
            conn,
            actor=as_actor(actor),
            action="export",
            subject="geopackage",
            subject_id=community_code,
            fields=[f"{layer}.{c}" for layer, cols in PERSONAL_COLUMNS.items() for c in cols],
            details={"file": out.name, "community_ids": ids, "features": counts},
        )
    return counts


def _write_sources(
    conn: Connection, out: Path, community_ids: list[int], zones: dict[int, ZoneInfo]
) -> int:
    """The ``data_sources`` table (no geometry): each layer's source and licence."""
    import pyogrio

    rows = osm_queries.data_sources(conn, community_ids=community_ids)
    columns = ["community_code", "kind", "name", "licence", "attribution", "url", "sha256"]
    frame = pd.DataFrame(
        {
            **{c: pd.Series([getattr(r, c) for r in rows], dtype="string") for c in columns},
            "layers": pd.Series([_joined(r.layers) for r in rows], dtype="string"),
            "data_timestamp": pd.Series(
                [_iso(r.data_timestamp, zones.get(r.community_id or 0)) for r in rows],
                dtype="string",
            ),
            "imported_at": pd.Series(
                [_iso(r.imported_at, zones.get(r.community_id or 0)) for r in rows],
                dtype="string",
            ),
        }
    )
    with gdal_without_spatialite():
        pyogrio.write_dataframe(frame, out, layer="data_sources", driver="GPKG")
    return len(frame)


# --- one query per layer (geogrid.db.queries.export) ---------------------------------------


class Builder(Protocol):
    """A layer's query: the communities exported and their active plans → a frame."""

    def __call__(
        self, conn: Connection, *, community_ids: list[int], plan_ids: list[int]
    ) -> gpd.GeoDataFrame: ...


_BUILDERS: dict[str, Builder] = {
    "communities": export_queries.communities,
    "grids": export_queries.grids,
    "responsibility_fields": export_queries.fields,
    "streets": export_queries.streets,
    "buildings": export_queries.buildings,
    "households": export_queries.households,
    "members": export_queries.members,
    "requests": export_queries.requests,
}
#: Columns holding a JSON list, written as ``a;b`` (GeoPackage has no list type).
_LISTS: dict[str, str] = {"buildings": "aliases", "households": "care_flags"}


# --- finishing: masks, times, personal data, column types -----------------------------------


def _finish(
    frame: gpd.GeoDataFrame, layer: str, zones: dict[int, ZoneInfo], include_personal: bool
) -> gpd.GeoDataFrame:
    """Mask names, format times, drop personal columns, give every column a stable type."""
    for col in frame.columns:
        if col.endswith("_masked"):
            frame[col] = [mask_name(v) or None for v in frame[col]]
    for col in _TIMES:
        if col in frame.columns:
            frame[col] = [
                _iso(v, zones.get(int(cid)))
                for v, cid in zip(frame[col], frame["community_id"], strict=True)
            ]
    drop = [] if include_personal else list(PERSONAL_COLUMNS.get(layer, ()))
    drop.append("community_id")
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    for col in frame.columns:
        if col == "geometry":
            continue
        frame[col] = _typed(frame[col])
    return frame


def _minimise(frame: gpd.GeoDataFrame, layer: str, key: bytes) -> gpd.GeoDataFrame:
    """What an export without personal data keeps (PIPL: the minimum necessary): address ids
    pseudonymised, free text scrubbed of phones, ID numbers and e-mails, no member positions."""
    if "address_id" in frame.columns:
        frame["address_id"] = [
            None if _missing(v) else pseudonym(str(v), key) for v in frame["address_id"]
        ]
    if "description" in frame.columns:
        frame["description"] = [
            None if _missing(v) else scrub(str(v)) for v in frame["description"]
        ]
    if layer == "members":
        frame = frame.set_geometry(gpd.GeoSeries([None] * len(frame), crs=frame.crs))
    return frame


def _iso(value: Any, zone: ZoneInfo | None) -> str | None:
    """An aware datetime as ISO 8601 in ``zone`` (UTC if unknown)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(dt.UTC)
    return stamp.tz_convert(zone or dt.UTC).isoformat()


def _joined(value: Any) -> str | None:
    """A JSON list as ``a;b`` (GeoPackage has no list type)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value) or None
    return str(value)


#: Column types by name (the rest are text), so even an empty layer has a stable schema.
_INTEGERS = frozenset(
    {"id", "plan_id", "plan_version", "lead_member_id", "households", "member_id", "field_id"}
    | {"floors", "size"}
)
_BOOLEANS = frozenset({"synthetic", "needs_review", "registered", "active"})


def _typed(series: pd.Series) -> pd.Series:
    """The column as nullable Int64, boolean or string (GeoPackage INTEGER, BOOLEAN, TEXT)."""
    values = [None if _missing(v) else v for v in series]
    if series.name in _INTEGERS:
        return pd.Series(values, index=series.index, dtype="Int64")
    if series.name in _BOOLEANS:
        return pd.Series(values, index=series.index, dtype="boolean")
    return pd.Series(
        [None if v is None else str(v) for v in values], index=series.index, dtype="string"
    )


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
