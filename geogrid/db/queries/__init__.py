"""Keyword-only, typed query functions: the ordinary SQL of geogrid, one code path.

Written with PostGIS function names through GeoAlchemy2; the few statements that differ per
backend live in ``geogrid.db.dialect``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from geoalchemy2 import functions as gfunc
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Select, delete, func, insert, select, text, update

from geogrid.db import models as m
from geogrid.errors import Conflict, NotFound

WGS84 = "EPSG:4326"


def geom_value(geom: BaseGeometry | None) -> Any:
    """A bind value for a geometry column (EPSG:4326)."""
    return None if geom is None else from_shape(geom, srid=m.SRID)


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


# --- communities and plans -------------------------------------------------------------


def community_row(conn: Connection, *, code: str | None = None, field: str = "community") -> Any:
    """The community's row (``id``, ``code``, ``name``, …); the only one when ``code`` is None.

    The one "community by code, else 404": ``field`` names the parameter that carried the
    code (``community``, Open311's ``jurisdiction_id``) in the error."""
    stmt = select(
        m.Community.id,
        m.Community.code,
        m.Community.name,
        m.Community.name_en,
        m.Community.timezone,
        m.Community.synthetic,
    )
    if code is not None:
        row = conn.execute(stmt.where(m.Community.code == code)).one_or_none()
        if row is None:
            raise NotFound(f"no community with code {code!r}", field=field)
        return row
    rows = conn.execute(stmt.order_by(m.Community.code)).all()
    if not rows:
        raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
    if len(rows) > 1:
        codes = ", ".join(r.code for r in rows)
        raise Conflict(f"several communities ({codes}): name one with --community", field=field)
    return rows[0]


def community_by_id(conn: Connection, *, community_id: int) -> Any:
    return conn.execute(
        select(
            m.Community.id,
            m.Community.code,
            m.Community.name,
            m.Community.name_en,
            m.Community.timezone,
            m.Community.synthetic,
        ).where(m.Community.id == community_id)
    ).one()


def list_communities(conn: Connection) -> Sequence[Any]:
    return conn.execute(
        select(m.Community.id, m.Community.code, m.Community.name).order_by(m.Community.code)
    ).all()


def community_boundary(conn: Connection, *, community_id: int) -> BaseGeometry:
    b = conn.execute(
        select(gfunc.ST_AsBinary(m.Community.boundary)).where(m.Community.id == community_id)
    ).scalar_one()
    return shapely.from_wkb(bytes(b))


def active_plan(conn: Connection, *, community_id: int) -> Any | None:
    """The community's active boundary plan row, or None."""
    return conn.execute(
        select(m.BoundaryPlan.id, m.BoundaryPlan.version, m.BoundaryPlan.name).where(
            m.BoundaryPlan.community_id == community_id,
            m.BoundaryPlan.status == m.PlanStatus.ACTIVE.value,
        )
    ).one_or_none()


def require_active_plan(conn: Connection, *, community_id: int) -> Any:
    plan = active_plan(conn, community_id=community_id)
    if plan is None:
        raise NotFound("the community has no active boundary plan: import grids with --commit")
    return plan


def next_plan_version(conn: Connection, *, community_id: int) -> int:
    current = conn.execute(
        select(func.max(m.BoundaryPlan.version)).where(m.BoundaryPlan.community_id == community_id)
    ).scalar()
    return int(current or 0) + 1


def create_plan(
    conn: Connection,
    *,
    community_id: int,
    name: str,
    source: str | None = None,
    description: str | None = None,
) -> int:
    """Insert a draft plan based on the currently active one; return its id."""
    base = active_plan(conn, community_id=community_id)
    return int(
        conn.execute(
            insert(m.BoundaryPlan)
            .values(
                community_id=community_id,
                version=next_plan_version(conn, community_id=community_id),
                name=name,
                status=m.PlanStatus.DRAFT.value,
                source=source,
                description=description,
                base_plan_id=base.id if base else None,
                created_at=m.utcnow(),
            )
            .returning(m.BoundaryPlan.id)
        ).scalar_one()
    )


def mark_plan_active(conn: Connection, *, community_id: int, plan_id: int) -> None:
    """Retire the active plan (if any) and make ``plan_id`` active, in the caller's transaction."""
    now = m.utcnow()
    conn.execute(
        update(m.BoundaryPlan)
        .where(
            m.BoundaryPlan.community_id == community_id,
            m.BoundaryPlan.status == m.PlanStatus.ACTIVE.value,
        )
        .values(status=m.PlanStatus.RETIRED.value, retired_at=now)
    )
    conn.execute(
        update(m.BoundaryPlan)
        .where(m.BoundaryPlan.id == plan_id)
        .values(status=m.PlanStatus.ACTIVE.value, activated_at=now)
    )


def data_versions(conn: Connection) -> dict[str, int]:
    """The change counters (``spatial``, ``gazetteer``): a cheap poll for in-memory indexes."""
    return {
        str(name): int(version)
        for name, version in conn.execute(select(m.DataVersion.name, m.DataVersion.version))
    }


def instance_secret(conn: Connection, name: str) -> str:
    """This installation's secret ``name`` (made once, 256 random bits, then kept)."""
    table = m.InstanceSecret
    value = conn.execute(select(table.value).where(table.name == name)).scalar()
    if value is None:
        value = secrets.token_hex(32)
        conn.execute(insert(table).values(name=name, value=value, created_at=m.utcnow()))
    return str(value)


# --- frames --------------------------------------------------------------------------------


def grids_frame(conn: Connection, *, plan_id: int) -> gpd.GeoDataFrame:
    """The plan's grids: ``id, code, name, lead_member_id, geometry`` ordered by code."""
    return read_frame(
        conn,
        select(m.Grid.id, m.Grid.code, m.Grid.name, m.Grid.lead_member_id, wkb(m.Grid.geom))
        .where(m.Grid.plan_id == plan_id)
        .order_by(m.Grid.code, m.Grid.id),
    )


def fields_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    f = m.ResponsibilityField
    return read_frame(
        conn,
        select(
            f.id,
            f.name,
            f.member_id,
            f.street_id,
            f.grid_id,
            f.needs_review,
            wkb(f.geom),
        )
        .where(f.community_id == community_id)
        .order_by(f.id),
    )


def household_assignments(conn: Connection, *, plan_id: int) -> dict[int, tuple[int, int | None]]:
    """``{household_id: (grid_id, field_id)}`` of a plan."""
    a = m.HouseholdAssignment
    rows = conn.execute(
        select(a.household_id, a.grid_id, a.field_id).where(a.plan_id == plan_id)
    ).all()
    return {r.household_id: (r.grid_id, r.field_id) for r in rows}


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


def insert_returning_ids(conn: Connection, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows one statement each batch and return their ids in input order."""
    if not rows:
        return []
    result = conn.execute(
        insert(model).returning(model.id, sort_by_parameter_order=True), list(rows)
    )
    return [int(r[0]) for r in result.all()]


# --- summary -------------------------------------------------------------------------------


def summary_counts(
    conn: Connection, *, community_id: int, received_from: dt.datetime, received_to: dt.datetime
) -> dict[str, Any]:
    """Counts for ``/v1/summary`` of one community; requests by received time in [from, to)."""
    plan = active_plan(conn, community_id=community_id)
    grids = count(conn, m.Grid, m.Grid.plan_id == plan.id) if plan else 0
    kinds = dict(
        conn.execute(
            select(m.Member.kind, func.count())
            .where(m.Member.community_id == community_id, m.Member.active.is_(True))
            .group_by(m.Member.kind)
        ).all()
    )
    r = m.Request
    in_period = (
        r.community_id == community_id,
        r.received_at >= received_from,
        r.received_at < received_to,
    )
    received = count(conn, r, *in_period)
    resolved = count(conn, r, *in_period, r.status.in_(m.RESOLVED_STATUSES))
    return {
        "plan": plan,
        "grids": grids,
        "branches": count(conn, m.Branch, m.Branch.community_id == community_id),
        "branches_on_grids": int(
            conn.execute(
                select(func.count(func.distinct(m.BranchGrid.branch_id)))
                .join(m.Grid, m.Grid.id == m.BranchGrid.grid_id)
                .where(m.Grid.plan_id == (plan.id if plan else -1))
            ).scalar_one()
        ),
        "members_by_kind": {k.value: int(kinds.get(k.value, 0)) for k in m.MemberKind},
        "households": count(conn, m.Household, m.Household.community_id == community_id),
        "residents": int(
            conn.execute(
                select(func.coalesce(func.sum(m.Household.size), 0)).where(
                    m.Household.community_id == community_id
                )
            ).scalar_one()
        ),
        "responsibility_fields": count(
            conn, m.ResponsibilityField, m.ResponsibilityField.community_id == community_id
        ),
        "received": received,
        "resolved": resolved,
    }


# --- lookup (geogrid.lookup): what the in-memory indexes are built from ----------------------


def lookup_communities(conn: Connection) -> Sequence[Any]:
    """Every community with its place names (the address prefixes), ordered by code."""
    c = m.Community
    return conn.execute(
        select(
            c.id, c.code, c.name, c.name_en, c.province, c.city, c.district, c.subdistrict
        ).order_by(c.code)
    ).all()


def members_frame(conn: Connection, *, community_id: int) -> pd.DataFrame:
    """The community's members: ``id, name, kind, active`` (``name`` is personal: mask it)."""
    mb = m.Member
    rows = conn.execute(
        select(mb.id, mb.name, mb.kind, mb.active)
        .where(mb.community_id == community_id)
        .order_by(mb.id)
    ).all()
    return pd.DataFrame(rows, columns=["id", "name", "kind", "active"])


def branch_grids_frame(conn: Connection, *, plan_id: int) -> pd.DataFrame:
    """Which branch sits on which grid of a plan: ``grid_id, branch_id, branch_name``."""
    bg, b, g = m.BranchGrid, m.Branch, m.Grid
    rows = conn.execute(
        select(bg.grid_id, b.id, b.name)
        .join(b, b.id == bg.branch_id)
        .join(g, g.id == bg.grid_id)
        .where(g.plan_id == plan_id)
        .order_by(bg.grid_id, b.id)
    ).all()
    return pd.DataFrame(rows, columns=["grid_id", "branch_id", "branch_name"])


def party_groups_frame(conn: Connection, *, community_id: int) -> pd.DataFrame:
    """The community's party groups: ``id, name, branch_id, building_id``."""
    gr, b = m.Group, m.Branch
    rows = conn.execute(
        select(gr.id, gr.name, gr.branch_id, gr.building_id)
        .join(b, b.id == gr.branch_id)
        .where(b.community_id == community_id)
        .order_by(gr.id)
    ).all()
    return pd.DataFrame(rows, columns=["id", "name", "branch_id", "building_id"])


def buildings_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    """The community's buildings: ``id, name, compound, aliases, street_id, house_number``."""
    b = m.Building
    return read_frame(
        conn,
        select(b.id, b.name, b.compound, b.aliases, b.street_id, b.house_number, wkb(b.geom))
        .where(b.community_id == community_id)
        .order_by(b.id),
    )


def streets_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    """The community's streets: ``id, name, kind`` and their lines."""
    s = m.Street
    return read_frame(
        conn,
        select(s.id, s.name, s.kind, wkb(s.geom))
        .where(s.community_id == community_id)
        .order_by(s.id),
    )


def address_households_frame(conn: Connection, *, community_id: int) -> pd.DataFrame:
    """The household addresses of the gazetteer, door point as ``lon, lat`` (WGS 84).

    ``id, address_id, street_name, house_number, compound, building_name, unit, room,
    building_id, street_id, lon, lat``. ``unit`` and ``room`` complete a personal address:
    they may be matched on, never shown.
    """
    h = m.Household
    rows = conn.execute(
        select(
            h.id,
            h.address_id,
            h.street_name,
            h.house_number,
            h.compound,
            h.building_name,
            h.unit,
            h.room,
            h.building_id,
            h.street_id,
            gfunc.ST_X(h.geom),
            gfunc.ST_Y(h.geom),
        )
        .where(h.community_id == community_id)
        .order_by(h.id)
    ).all()
    return pd.DataFrame(
        rows,
        columns=[
            "id",
            "address_id",
            "street_name",
            "house_number",
            "compound",
            "building_name",
            "unit",
            "room",
            "building_id",
            "street_id",
            "lon",
            "lat",
        ],
    )


# --- boundary planning ---------------------------------------------------------------------


def plan_row(conn: Connection, *, plan_id: int) -> Any:
    """A boundary plan's row; :class:`NotFound` when there is none."""
    p = m.BoundaryPlan
    row = conn.execute(
        select(
            p.id,
            p.community_id,
            p.version,
            p.name,
            p.status,
            p.source,
            p.description,
            p.base_plan_id,
            p.created_at,
            p.activated_at,
            p.retired_at,
        ).where(p.id == plan_id)
    ).first()
    if row is None:
        raise NotFound(f"no boundary plan with id {plan_id}", field="plan")
    return row


def plans(conn: Connection, *, community_id: int) -> Sequence[Any]:
    """The community's plans, newest first, with their grid counts."""
    p, g = m.BoundaryPlan, m.Grid
    grids = select(func.count()).where(g.plan_id == p.id).scalar_subquery()
    return conn.execute(
        select(
            p.id,
            p.version,
            p.name,
            p.status,
            p.base_plan_id,
            p.source,
            p.created_at,
            p.activated_at,
            p.retired_at,
            grids.label("grids"),
        )
        .where(p.community_id == community_id)
        .order_by(p.version.desc())
    ).all()


def planning_households_frame(
    conn: Connection, *, community_id: int, plan_id: int | None
) -> gpd.GeoDataFrame:
    """Households for planning: ``id, address_id, size, building_id, grid_id, field_id``
    (the assignment under ``plan_id``; null without one) and door points."""
    h, a = m.Household, m.HouseholdAssignment
    on = (a.household_id == h.id) & (a.plan_id == (plan_id if plan_id is not None else -1))
    return read_frame(
        conn,
        select(h.id, h.address_id, h.size, h.building_id, a.grid_id, a.field_id, wkb(h.geom))
        .outerjoin(a, on)
        .where(h.community_id == community_id)
        .order_by(h.id),
    )


def open_requests_frame(conn: Connection, *, community_id: int) -> gpd.GeoDataFrame:
    """The community's open requests with a location: ``id, grid_id, member_id`` and points."""
    r = m.Request
    return read_frame(
        conn,
        select(r.id, r.grid_id, r.member_id, wkb(r.geom))
        .where(
            r.community_id == community_id,
            r.status.in_(m.OPEN_STATUSES),
            r.geom.is_not(None),
        )
        .order_by(r.id),
    )


def plan_branches_frame(conn: Connection, *, plan_id: int) -> pd.DataFrame:
    """Branches on a plan's grids: ``branch_id, branch_name, grid_id, code, needs_review``."""
    bg, b, g = m.BranchGrid, m.Branch, m.Grid
    rows = conn.execute(
        select(b.id, b.name, g.id, g.code, bg.needs_review)
        .join(b, b.id == bg.branch_id)
        .join(g, g.id == bg.grid_id)
        .where(g.plan_id == plan_id)
        .order_by(g.code, b.id)
    ).all()
    return pd.DataFrame(
        rows, columns=["branch_id", "branch_name", "grid_id", "code", "needs_review"]
    )


def insert_plan_event(
    conn: Connection,
    *,
    community_id: int,
    plan_id: int,
    previous_plan_id: int | None,
    action: str,
    actor: str | None,
) -> int:
    return int(
        conn.execute(
            insert(m.PlanEvent)
            .values(
                community_id=community_id,
                plan_id=plan_id,
                previous_plan_id=previous_plan_id,
                action=action,
                actor=actor,
                at=m.utcnow(),
                report={},
            )
            .returning(m.PlanEvent.id)
        ).scalar_one()
    )


def set_plan_event_report(conn: Connection, *, event_id: int, report: dict[str, Any]) -> None:
    conn.execute(update(m.PlanEvent).where(m.PlanEvent.id == event_id).values(report=report))


def last_plan_event(conn: Connection, *, community_id: int, plan_id: int) -> Any | None:
    """The latest activation or rollback that made ``plan_id`` active."""
    e = m.PlanEvent
    return conn.execute(
        select(e.id, e.action, e.previous_plan_id, e.at, e.report)
        .where(e.community_id == community_id, e.plan_id == plan_id)
        .order_by(e.id.desc())
        .limit(1)
    ).first()


def plan_events(conn: Connection, *, community_id: int) -> Sequence[Any]:
    e = m.PlanEvent
    return conn.execute(
        select(e.id, e.plan_id, e.previous_plan_id, e.action, e.actor, e.at)
        .where(e.community_id == community_id)
        .order_by(e.id.desc())
    ).all()


def save_field_revisions(conn: Connection, *, event_id: int, field_ids: Sequence[int]) -> int:
    """Keep the fields' current geometry and review flags under ``event_id`` (for rollback)."""
    if not field_ids:
        return 0
    f = m.ResponsibilityField
    rows = conn.execute(
        select(f.id, wkb(f.geom, "wkb"), f.needs_review, f.review_note).where(
            f.id.in_([int(i) for i in field_ids])
        )
    ).all()
    return bulk_insert(
        conn,
        m.FieldRevision,
        (
            {
                "event_id": event_id,
                "field_id": r.id,
                "geom_wkb": bytes(r.wkb),
                "needs_review": bool(r.needs_review),
                "review_note": r.review_note,
            }
            for r in rows
        ),
    )


def field_revisions(conn: Connection, *, event_id: int) -> Sequence[Any]:
    fr = m.FieldRevision
    return conn.execute(
        select(fr.field_id, fr.geom_wkb, fr.needs_review, fr.review_note)
        .where(fr.event_id == event_id)
        .order_by(fr.id)
    ).all()


def update_fields(
    conn: Connection,
    rows: Sequence[tuple[int, BaseGeometry, bool, str | None]],
    *,
    chunk: int = 2000,
) -> int:
    """Set fields' geometry and review flags: ``[(id, geom, needs_review, review_note), …]``.

    Set-based (:func:`_update_from_values`). ``ST_GeomFromWKB`` has this name in PostGIS and
    SpatiaLite.
    """
    return _update_from_values(
        conn,
        m.ResponsibilityField,
        [(int(i), shapely.to_wkb(g), bool(r), note) for i, g, r, note in rows],
        slots=("CAST({} AS INTEGER)", "{}", "CAST({} AS BOOLEAN)", "CAST({} AS TEXT)"),
        assign=f"geom = ST_GeomFromWKB(v.column2, {m.SRID}), needs_review = v.column3, "
        "review_note = v.column4",
        chunk=chunk,
    )


def set_grid_leads(conn: Connection, *, leads: dict[int, int]) -> None:
    """``{grid_id: member_id}``."""
    update_ids(conn, m.Grid, "lead_member_id", list(leads.items()))


def insert_branch_grids(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """``{branch_id, grid_id, needs_review}`` rows."""
    return bulk_insert(conn, m.BranchGrid, rows)


def set_plan_status(
    conn: Connection,
    *,
    plan_id: int,
    status: str,
    activated_at: dt.datetime | None = None,
    retired_at: dt.datetime | None = None,
) -> None:
    conn.execute(
        update(m.BoundaryPlan)
        .where(m.BoundaryPlan.id == plan_id)
        .values(status=status, activated_at=activated_at, retired_at=retired_at)
    )


def delete_plan(conn: Connection, *, plan_id: int) -> None:
    """Delete a plan and its grids (drafts only: ``planning.store.delete_draft`` checks)."""
    conn.execute(delete(m.Grid).where(m.Grid.plan_id == plan_id))
    conn.execute(delete(m.BoundaryPlan).where(m.BoundaryPlan.id == plan_id))


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
    table = m.table(model).name
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


def review_fields(conn: Connection, *, community_id: int) -> Sequence[Any]:
    """The community's fields flagged ``needs_review``: id, name, member_id, grid code, note."""
    f, g = m.ResponsibilityField, m.Grid
    return conn.execute(
        select(f.id, f.name, f.member_id, g.code.label("grid_code"), f.review_note)
        .outerjoin(g, g.id == f.grid_id)
        .where(f.community_id == community_id, f.needs_review.is_(True))
        .order_by(f.id)
    ).all()


def clear_field_reviews(
    conn: Connection, *, community_id: int, field_ids: Sequence[int] | None
) -> int:
    """Clear ``needs_review`` (and the note) of the given fields, or of all when None."""
    f = m.ResponsibilityField
    stmt = update(f).where(f.community_id == community_id, f.needs_review.is_(True))
    if field_ids is not None:
        stmt = stmt.where(f.id.in_([int(i) for i in field_ids]))
    return int(conn.execute(stmt.values(needs_review=False, review_note=None)).rowcount or 0)


def clear_branch_reviews(
    conn: Connection, *, plan_id: int, branch_ids: Sequence[int] | None
) -> int:
    """Clear ``needs_review`` of a plan's branch–grid mappings (given branches, or all)."""
    bg, g = m.BranchGrid, m.Grid
    stmt = update(bg).where(
        bg.grid_id.in_(select(g.id).where(g.plan_id == plan_id)), bg.needs_review.is_(True)
    )
    if branch_ids is not None:
        stmt = stmt.where(bg.branch_id.in_([int(i) for i in branch_ids]))
    return int(conn.execute(stmt.values(needs_review=False)).rowcount or 0)


def member_community_id(conn: Connection, *, member_id: int) -> int | None:
    """The community of member ``member_id`` (None when there is no such member)."""
    return conn.execute(
        select(m.Member.community_id).where(m.Member.id == member_id)
    ).scalar_one_or_none()
