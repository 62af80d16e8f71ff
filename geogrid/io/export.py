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
``buildings``              Polygon           ``id``, ``community_code``, ``name``,
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
=========================  ================  ===========================================

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
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, Select, and_, func, select
from sqlalchemy.orm import aliased

from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.io.readers import gdal_without_spatialite
from geogrid.privacy import mask_name, pseudonym, scrub

__all__ = ["LAYERS", "PERSONAL_COLUMNS", "export_geopackage", "mask_name"]

log = logging.getLogger(__name__)

#: Layer names in the order they are written, with their geometry types.
LAYERS: dict[str, str] = {
    "communities": "MultiPolygon",
    "grids": "MultiPolygon",
    "responsibility_fields": "MultiPolygon",
    "streets": "MultiLineString",
    "buildings": "Polygon",
    "households": "Point",
    "members": "Point",
    "requests": "Point",
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
) -> dict[str, int]:
    """Write every layer to ``out`` (replaced if it exists); return ``{layer: features}``.

    ``community_code`` limits the export to one community (default: all of them).
    """
    out = Path(out)
    if community_code is not None:
        ids = [q.community_row(conn, code=community_code).id]
    else:
        ids = [int(r.id) for r in q.list_communities(conn)]
    zones = {
        int(cid): ZoneInfo(tz or "Asia/Shanghai")
        for cid, tz in conn.execute(
            select(m.Community.id, m.Community.timezone).where(m.Community.id.in_(ids))
        ).all()
    }
    plans = [
        int(p)
        for p in conn.execute(
            select(m.BoundaryPlan.id).where(
                m.BoundaryPlan.community_id.in_(ids),
                m.BoundaryPlan.status == m.PlanStatus.ACTIVE.value,
            )
        ).scalars()
    ]
    if include_personal:
        # Every read of unmasked data is logged (DESIGN: data rules); never the data itself.
        log.warning("export with personal data of communities %s to %s", ids, out.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    # Without personal data, address ids (which encode unit and room) become stable
    # stand-ins: the same in every export of this database, so layers and exports still join.
    key = None if include_personal else q.instance_secret(conn, "pseudonyms").encode()
    counts: dict[str, int] = {}
    for layer, geometry_type in LAYERS.items():
        frame = _BUILDERS[layer](conn, ids, plans)
        frame = _finish(frame, layer, zones, include_personal)
        if key is not None:
            frame = _minimise(frame, layer, key)
        with gdal_without_spatialite():
            frame.to_file(
                out, layer=layer, driver="GPKG", engine="pyogrio", geometry_type=geometry_type
            )
        counts[layer] = len(frame)
    return counts


# --- one query per layer --------------------------------------------------------------------

Builder = Callable[[Connection, list[int], list[int]], gpd.GeoDataFrame]
_c = m.Community.code.label("community_code")


def _frame(conn: Connection, stmt: Select[*tuple[Any, ...]]) -> gpd.GeoDataFrame:
    return q.read_frame(conn, stmt)


def _communities(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    c = m.Community
    return _frame(
        conn,
        select(
            c.id.label("community_id"),
            c.code,
            c.name,
            c.name_en,
            c.subdistrict,
            c.district,
            c.city,
            c.province,
            c.country,
            c.timezone,
            c.synthetic,
            q.wkb(c.boundary),
        )
        .where(c.id.in_(ids))
        .order_by(c.code),
    )


def _household_counts(column: Any, plans: list[int]) -> Any:
    a = m.HouseholdAssignment
    return (
        select(column.label("key"), func.count().label("n"))
        .where(a.plan_id.in_(plans), column.is_not(None))
        .group_by(column)
        .subquery()
    )


def _grids(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    g, p, lead = m.Grid, m.BoundaryPlan, aliased(m.Member)
    counts = _household_counts(m.HouseholdAssignment.grid_id, plans)
    return _frame(
        conn,
        select(
            p.community_id,
            _c,
            g.code,
            g.name,
            g.plan_id,
            p.version.label("plan_version"),
            p.name.label("plan_name"),
            p.activated_at.label("plan_activated_at"),
            g.lead_member_id,
            lead.name.label("lead_member_masked"),
            func.coalesce(counts.c.n, 0).label("households"),
            q.wkb(g.geom),
        )
        .join(p, p.id == g.plan_id)
        .join(m.Community, m.Community.id == p.community_id)
        .outerjoin(lead, lead.id == g.lead_member_id)
        .outerjoin(counts, counts.c.key == g.id)
        .where(g.plan_id.in_(plans))
        .order_by(m.Community.code, g.code),
    )


def _fields(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    f = m.ResponsibilityField
    counts = _household_counts(m.HouseholdAssignment.field_id, plans)
    return _frame(
        conn,
        select(
            f.community_id,
            f.id,
            _c,
            f.name,
            f.member_id,
            m.Member.name.label("member_masked"),
            m.Grid.code.label("grid_code"),
            m.Street.name.label("street_name"),
            f.needs_review,
            func.coalesce(counts.c.n, 0).label("households"),
            q.wkb(f.geom),
        )
        .join(m.Community, m.Community.id == f.community_id)
        .outerjoin(m.Member, m.Member.id == f.member_id)
        .outerjoin(m.Grid, m.Grid.id == f.grid_id)
        .outerjoin(m.Street, m.Street.id == f.street_id)
        .outerjoin(counts, counts.c.key == f.id)
        .where(f.community_id.in_(ids))
        .order_by(f.id),
    )


def _streets(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    s = m.Street
    return _frame(
        conn,
        select(s.community_id, s.id, _c, s.name, s.kind, q.wkb(s.geom))
        .join(m.Community, m.Community.id == s.community_id)
        .where(s.community_id.in_(ids))
        .order_by(s.id),
    )


def _buildings(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    b = m.Building
    frame = _frame(
        conn,
        select(
            b.community_id,
            b.id,
            _c,
            b.name,
            b.compound,
            b.aliases,
            b.house_number,
            b.floors,
            m.Street.name.label("street_name"),
            q.wkb(b.geom),
        )
        .join(m.Community, m.Community.id == b.community_id)
        .outerjoin(m.Street, m.Street.id == b.street_id)
        .where(b.community_id.in_(ids))
        .order_by(b.id),
    )
    frame["aliases"] = [_joined(v) for v in frame["aliases"]]
    return frame


def _households(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    h, a, p = m.Household, m.HouseholdAssignment, m.HouseholdPersonal
    f = m.ResponsibilityField
    frame = _frame(
        conn,
        select(
            h.community_id,
            h.address_id,
            _c,
            m.Grid.code.label("grid_code"),
            a.field_id,
            f.member_id,
            h.street_name,
            h.house_number,
            h.compound,
            h.building_name,
            h.unit,
            h.room,
            h.size,
            h.registered,
            p.head_name,
            p.phone,
            p.care_flags,
            q.wkb(h.geom),
        )
        .join(m.Community, m.Community.id == h.community_id)
        .outerjoin(a, and_(a.household_id == h.id, a.plan_id.in_(plans)))
        .outerjoin(m.Grid, m.Grid.id == a.grid_id)
        .outerjoin(f, f.id == a.field_id)
        .outerjoin(p, p.household_id == h.id)
        .where(h.community_id.in_(ids))
        .order_by(h.address_id),
    )
    frame["care_flags"] = [_joined(v) for v in frame["care_flags"]]
    return frame


def _members(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    mem = m.Member
    frame = _frame(
        conn,
        select(
            mem.community_id,
            mem.id,
            _c,
            mem.name.label("name_masked"),
            mem.kind,
            m.Branch.name.label("branch"),
            m.ResidentUnit.name.label("home_unit"),
            mem.active,
            mem.name,
            mem.phone,
            q.wkb(mem.position),
        )
        .join(m.Community, m.Community.id == mem.community_id)
        .outerjoin(m.Branch, m.Branch.id == mem.branch_id)
        .outerjoin(m.ResidentUnit, m.ResidentUnit.id == mem.home_unit_id)
        .where(mem.community_id.in_(ids))
        .order_by(mem.id),
    )
    return frame


def _requests(conn: Connection, ids: list[int], plans: list[int]) -> gpd.GeoDataFrame:
    r, cat = m.Request, m.Category
    return _frame(
        conn,
        select(
            r.community_id,
            r.id,
            _c,
            cat.code.label("category"),
            cat.name.label("category_name"),
            r.programme,
            r.status,
            r.received_at,
            r.registered_at,
            r.dispatched_at,
            r.due_at,
            r.resolved_at,
            r.closed_at,
            m.Grid.code.label("grid_code"),
            r.field_id,
            r.member_id,
            m.Member.name.label("member_masked"),
            r.assignment_rule,
            r.source,
            r.address_id,
            r.description,
            m.Department.code.label("escalated_to"),
            r.satisfaction,
            q.wkb(r.geom),
        )
        .join(m.Community, m.Community.id == r.community_id)
        .join(cat, cat.id == r.category_id)
        .outerjoin(m.Grid, m.Grid.id == r.grid_id)
        .outerjoin(m.Member, m.Member.id == r.member_id)
        .outerjoin(m.Department, m.Department.id == r.escalated_to_id)
        .where(r.community_id.in_(ids))
        .order_by(r.id),
    )


_BUILDERS: dict[str, Builder] = {
    "communities": _communities,
    "grids": _grids,
    "responsibility_fields": _fields,
    "streets": _streets,
    "buildings": _buildings,
    "households": _households,
    "members": _members,
    "requests": _requests,
}


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
