"""What the maps read (:mod:`geogrid.maps.data` shapes it for the builders).

Everything in WGS 84; geometries travel as WKB (:func:`geogrid.db.queries.read_frame`),
points as ``lon, lat``. Member names are read raw where a map shows them (grid leads, field
holders, officials' member layer): the caller masks them at once
(:func:`geogrid.privacy.mask_name`). Household heads, phones, care flags, units and rooms are
never read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import geopandas as gpd
from geoalchemy2 import functions as gfunc
from sqlalchemy import Connection, Select, and_, func, select

from geogrid.db import models, queries

__all__ = [
    "ActivePlan",
    "GridFigures",
    "LonLat",
    "MemberPoint",
    "RequestPoint",
    "active_plans",
    "category_codes",
    "communities_frame",
    "coverage_grids_frame",
    "field_households",
    "fields_frame",
    "grid_figures",
    "grids_frame",
    "household_points",
    "member_points",
    "request_points",
    "streets_frame",
    "uncovered_households",
]


class ActivePlan(NamedTuple):
    """A community's active boundary plan."""

    community_id: int
    plan_id: int
    version: int
    name: str
    activated_at: dt.datetime | None


class LonLat(NamedTuple):
    """A point (WGS 84) with nothing that names it."""

    lon: float
    lat: float


class MemberPoint(NamedTuple):
    """An active member's map position; ``name`` is personal (mask it)."""

    id: int
    name: str
    kind: str
    branch: str | None
    lon: float
    lat: float


class RequestPoint(NamedTuple):
    """A request as a point: no description, address or person."""

    id: int
    category: str
    category_name: str
    category_name_en: str | None
    programme: str
    status: str
    received_at: dt.datetime
    due_at: dt.datetime | None
    lon: float
    lat: float
    grid_code: str | None = None
    #: The request's community's zone: its dates are read there (each community its own).
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class GridFigures:
    """Counts per grid id under the active plans (grids without any are absent)."""

    households: dict[int, int]
    residents: dict[int, int]
    uncovered: dict[int, int]
    fields: dict[int, int]
    fields_vacant: dict[int, int]
    members: dict[int, int]
    visited: dict[int, int]


def communities_frame(conn: Connection, *, codes: Sequence[str] | None) -> gpd.GeoDataFrame:
    """The communities (all when ``codes`` is None or empty), ordered by code: ``id, code,
    name, name_en, district, synthetic, timezone`` and the boundary."""
    c = models.Community
    stmt = select(
        c.id,
        c.code,
        c.name,
        c.name_en,
        c.district,
        c.synthetic,
        c.timezone,
        queries.wkb(c.boundary),
    ).order_by(c.code)
    if codes:
        stmt = stmt.where(c.code.in_(list(codes)))
    return queries.read_frame(conn, stmt)


def active_plans(conn: Connection, *, community_ids: Sequence[int]) -> list[ActivePlan]:
    """The active plans of the communities (none for a community without one)."""
    p = models.BoundaryPlan
    rows = conn.execute(
        select(p.community_id, p.id, p.version, p.name, p.activated_at).where(
            p.community_id.in_(list(community_ids)),
            p.status == models.PlanStatus.ACTIVE.value,
        )
    ).all()
    return [ActivePlan(*row) for row in rows]


def coverage_grids_frame(conn: Connection, *, plan_ids: Sequence[int]) -> gpd.GeoDataFrame:
    """The plans' grids by code: ``grid_id, code, name, plan_id, community_code,
    lead_member`` (the lead's raw name: mask it) and polygons."""
    g, p, lead = models.Grid, models.BoundaryPlan, models.Member
    return queries.read_frame(
        conn,
        select(
            g.id.label("grid_id"),
            g.code,
            g.name,
            g.plan_id,
            models.Community.code.label("community_code"),
            lead.name.label("lead_member"),
            queries.wkb(g.geom),
        )
        .join(p, p.id == g.plan_id)
        .join(models.Community, models.Community.id == p.community_id)
        .outerjoin(lead, lead.id == g.lead_member_id)
        .where(g.plan_id.in_(list(plan_ids)))
        .order_by(g.code, g.id),
    )


def grids_frame(conn: Connection, *, plan_ids: Sequence[int]) -> gpd.GeoDataFrame:
    """The plans' grids by code: ``grid_id, code, name, community_code`` and polygons."""
    g, p = models.Grid, models.BoundaryPlan
    return queries.read_frame(
        conn,
        select(
            g.id.label("grid_id"),
            g.code,
            g.name,
            models.Community.code.label("community_code"),
            queries.wkb(g.geom),
        )
        .join(p, p.id == g.plan_id)
        .join(models.Community, models.Community.id == p.community_id)
        .where(g.plan_id.in_(list(plan_ids)))
        .order_by(g.code, g.id),
    )


def _counts(conn: Connection, stmt: Select[*tuple[Any, ...]]) -> dict[int, int]:
    """``{key: count}`` of a two-column grouped statement."""
    return {int(key): int(value) for key, value in conn.execute(stmt).all()}


def grid_figures(
    conn: Connection, *, plan_ids: Sequence[int], visited_from: dt.date, visited_to: dt.date
) -> GridFigures:
    """Households, residents, uncovered households, fields, vacant fields, members holding a
    field, and households visited in ``visited_from``…``visited_to`` (inclusive) per grid."""
    ids = list(plan_ids)
    a, f, v = models.HouseholdAssignment, models.ResponsibilityField, models.Visit
    in_grids = f.grid_id.in_(select(models.Grid.id).where(models.Grid.plan_id.in_(ids)))
    return GridFigures(
        households=_counts(
            conn, select(a.grid_id, func.count()).where(a.plan_id.in_(ids)).group_by(a.grid_id)
        ),
        residents=_counts(
            conn,
            select(a.grid_id, func.coalesce(func.sum(models.Household.size), 0))
            .join(models.Household, models.Household.id == a.household_id)
            .where(a.plan_id.in_(ids))
            .group_by(a.grid_id),
        ),
        uncovered=_counts(
            conn,
            select(a.grid_id, func.count())
            .where(a.plan_id.in_(ids), a.field_id.is_(None))
            .group_by(a.grid_id),
        ),
        fields=_counts(conn, select(f.grid_id, func.count()).where(in_grids).group_by(f.grid_id)),
        fields_vacant=_counts(
            conn,
            select(f.grid_id, func.count())
            .where(in_grids, f.member_id.is_(None))
            .group_by(f.grid_id),
        ),
        members=_counts(
            conn,
            select(f.grid_id, func.count(func.distinct(f.member_id)))
            .where(in_grids, f.member_id.is_not(None))
            .group_by(f.grid_id),
        ),
        # Households visited in the period (distinct), by the grid that holds them.
        visited=_counts(
            conn,
            select(a.grid_id, func.count(func.distinct(v.household_id)))
            .join(a, and_(a.household_id == v.household_id, a.plan_id.in_(ids)))
            .where(v.visited_on >= visited_from, v.visited_on <= visited_to)
            .group_by(a.grid_id),
        ),
    )


def fields_frame(conn: Connection, *, community_ids: Sequence[int]) -> gpd.GeoDataFrame:
    """The communities' responsibility fields: ``field_id, name, member_id, grid_id,
    member`` (the holder's raw name: mask it) and polygons."""
    f = models.ResponsibilityField
    return queries.read_frame(
        conn,
        select(
            f.id.label("field_id"),
            f.name,
            f.member_id,
            f.grid_id,
            models.Member.name.label("member"),
            queries.wkb(f.geom),
        )
        .outerjoin(models.Member, models.Member.id == f.member_id)
        .where(f.community_id.in_(list(community_ids)))
        .order_by(f.id),
    )


def field_households(conn: Connection, *, plan_ids: Sequence[int]) -> dict[int, int]:
    """``{field_id: households}`` under the plans (fields without any are absent)."""
    a = models.HouseholdAssignment
    return _counts(
        conn,
        select(a.field_id, func.count())
        .where(a.plan_id.in_(list(plan_ids)), a.field_id.is_not(None))
        .group_by(a.field_id),
    )


def uncovered_households(
    conn: Connection, *, plan_ids: Sequence[int], community_ids: Sequence[int]
) -> list[LonLat]:
    """The doors of households no field covers (no identity)."""
    h, a = models.Household, models.HouseholdAssignment
    # Households no field covers: in a grid without a field, or outside every grid.
    rows = conn.execute(
        select(gfunc.ST_X(h.geom), gfunc.ST_Y(h.geom))
        .outerjoin(a, and_(a.household_id == h.id, a.plan_id.in_(list(plan_ids))))
        .where(h.community_id.in_(list(community_ids)), a.field_id.is_(None))
    ).all()
    return [LonLat(*row) for row in rows]


def streets_frame(conn: Connection, *, community_ids: Sequence[int]) -> gpd.GeoDataFrame:
    """The communities' streets: ``id, name`` and lines."""
    s = models.Street
    return queries.read_frame(
        conn,
        select(s.id, s.name, queries.wkb(s.geom))
        .where(s.community_id.in_(list(community_ids)))
        .order_by(s.id),
    )


def member_points(conn: Connection, *, community_ids: Sequence[int]) -> list[MemberPoint]:
    """The communities' active members that have a map position, with their branch."""
    mb = models.Member
    rows = conn.execute(
        select(
            mb.id,
            mb.name,
            mb.kind,
            models.Branch.name,
            gfunc.ST_X(mb.position),
            gfunc.ST_Y(mb.position),
        )
        .outerjoin(models.Branch, models.Branch.id == mb.branch_id)
        .where(
            mb.community_id.in_(list(community_ids)),
            mb.active.is_(True),
            mb.position.is_not(None),
        )
        .order_by(mb.id)
    ).all()
    return [MemberPoint(*row) for row in rows]


def request_points(
    conn: Connection,
    *,
    community_ids: Sequence[int],
    received_from: dt.datetime,
    received_before: dt.datetime,
    open_only: bool = False,
    due_before: dt.datetime | None = None,
    categories: Sequence[str] | None = None,
    programmes: Sequence[str] | None = None,
) -> list[RequestPoint]:
    """Requests received in [``received_from``, ``received_before``), by id: only open ones
    with ``open_only``, only those due before ``due_before`` when given, only of the
    ``categories`` (codes) and ``programmes`` when given."""
    r, cat, g, c = models.Request, models.Category, models.Grid, models.Community
    stmt = (
        select(
            r.id,
            cat.code,
            cat.name,
            cat.name_en,
            r.programme,
            r.status,
            r.received_at,
            r.due_at,
            gfunc.ST_X(r.geom),
            gfunc.ST_Y(r.geom),
            g.code,
            c.timezone,
        )
        .join(cat, cat.id == r.category_id)
        .join(c, c.id == r.community_id)
        .outerjoin(g, g.id == r.grid_id)
        .where(
            r.community_id.in_(list(community_ids)),
            r.received_at >= received_from,
            r.received_at < received_before,
        )
        .order_by(r.id)
    )
    if open_only:
        stmt = stmt.where(r.status.in_(models.OPEN_STATUSES))
    if due_before is not None:
        stmt = stmt.where(r.due_at.is_not(None), r.due_at < due_before)
    if categories:
        stmt = stmt.where(cat.code.in_(list(categories)))
    if programmes:
        stmt = stmt.where(r.programme.in_(list(programmes)))
    return [RequestPoint(*row) for row in conn.execute(stmt).all()]


def category_codes(conn: Connection) -> set[str]:
    """Every category code of the catalogue (retired ones too)."""
    return set(conn.execute(select(models.Category.code)).scalars())


def household_points(conn: Connection, *, community_ids: Sequence[int]) -> list[LonLat]:
    """The communities' household doors by id (no identity)."""
    h = models.Household
    rows = conn.execute(
        select(gfunc.ST_X(h.geom), gfunc.ST_Y(h.geom))
        .where(h.community_id.in_(list(community_ids)))
        .order_by(h.id)
    ).all()
    return [LonLat(*row) for row in rows]
