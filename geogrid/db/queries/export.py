"""The reads of ``geogrid export`` (``geogrid.io.export``): one query per GeoPackage layer.

Every layer query takes the communities exported and their active plans, and returns a frame
with a ``community_id`` column (for times in the community's zone) and its geometry; masking,
time formats and dropping personal columns are ``geogrid.io.export``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
from sqlalchemy import Connection, Select, Subquery, and_, func, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from geogrid.db import models, queries

_community_code = models.Community.code.label("community_code")


def _frame(conn: Connection, stmt: Select[*tuple[Any, ...]]) -> gpd.GeoDataFrame:
    """:func:`~geogrid.db.queries.read_frame` for selects of more than ten columns."""
    return queries.read_frame(conn, stmt)


def community_timezones(conn: Connection, *, community_ids: Sequence[int]) -> dict[int, str | None]:
    """``{community_id: time zone name}`` (None where unset)."""
    c = models.Community
    return {
        int(cid): tz
        for cid, tz in conn.execute(select(c.id, c.timezone).where(c.id.in_(community_ids))).all()
    }


def active_plan_ids(conn: Connection, *, community_ids: Sequence[int]) -> list[int]:
    """The ids of the communities' active boundary plans."""
    p = models.BoundaryPlan
    return [
        int(plan_id)
        for plan_id in conn.execute(
            select(p.id).where(
                p.community_id.in_(community_ids), p.status == models.PlanStatus.ACTIVE.value
            )
        ).scalars()
    ]


# --- one query per layer --------------------------------------------------------------------


def communities(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``communities`` layer: code, names, place names, time zone and boundary."""
    c = models.Community
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
            queries.wkb(c.boundary),
        )
        .where(c.id.in_(community_ids))
        .order_by(c.code),
    )


def _household_counts(column: InstrumentedAttribute[Any], plan_ids: Sequence[int]) -> Subquery:
    """Households per ``column`` (grid or field) under the plans: ``key, n``."""
    a = models.HouseholdAssignment
    return (
        select(column.label("key"), func.count().label("n"))
        .where(a.plan_id.in_(plan_ids), column.is_not(None))
        .group_by(column)
        .subquery()
    )


def grids(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``grids`` layer: the active plans' grids, their lead and household counts."""
    g, p, lead = models.Grid, models.BoundaryPlan, aliased(models.Member)
    counts = _household_counts(models.HouseholdAssignment.grid_id, plan_ids)
    return _frame(
        conn,
        select(
            p.community_id,
            _community_code,
            g.code,
            g.name,
            g.plan_id,
            p.version.label("plan_version"),
            p.name.label("plan_name"),
            p.activated_at.label("plan_activated_at"),
            g.lead_member_id,
            lead.name.label("lead_member_masked"),
            func.coalesce(counts.c.n, 0).label("households"),
            queries.wkb(g.geom),
        )
        .join(p, p.id == g.plan_id)
        .join(models.Community, models.Community.id == p.community_id)
        .outerjoin(lead, lead.id == g.lead_member_id)
        .outerjoin(counts, counts.c.key == g.id)
        .where(g.plan_id.in_(plan_ids))
        .order_by(models.Community.code, g.code),
    )


def fields(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``responsibility_fields`` layer: member, grid, street and household counts."""
    f = models.ResponsibilityField
    counts = _household_counts(models.HouseholdAssignment.field_id, plan_ids)
    return _frame(
        conn,
        select(
            f.community_id,
            f.id,
            _community_code,
            f.name,
            f.member_id,
            models.Member.name.label("member_masked"),
            models.Grid.code.label("grid_code"),
            models.Street.name.label("street_name"),
            f.needs_review,
            func.coalesce(counts.c.n, 0).label("households"),
            queries.wkb(f.geom),
        )
        .join(models.Community, models.Community.id == f.community_id)
        .outerjoin(models.Member, models.Member.id == f.member_id)
        .outerjoin(models.Grid, models.Grid.id == f.grid_id)
        .outerjoin(models.Street, models.Street.id == f.street_id)
        .outerjoin(counts, counts.c.key == f.id)
        .where(f.community_id.in_(community_ids))
        .order_by(f.id),
    )


def streets(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``streets`` layer."""
    s = models.Street
    return _frame(
        conn,
        select(s.community_id, s.id, _community_code, s.name, s.kind, queries.wkb(s.geom))
        .join(models.Community, models.Community.id == s.community_id)
        .where(s.community_id.in_(community_ids))
        .order_by(s.id),
    )


def buildings(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``buildings`` layer (``aliases`` as stored: a JSON list)."""
    b = models.Building
    return _frame(
        conn,
        select(
            b.community_id,
            b.id,
            _community_code,
            b.name,
            b.compound,
            b.aliases,
            b.house_number,
            b.floors,
            func.coalesce(models.Street.name, b.street_name).label("street_name"),
            queries.wkb(b.geom),
        )
        .join(models.Community, models.Community.id == b.community_id)
        .outerjoin(models.Street, models.Street.id == b.street_id)
        .where(b.community_id.in_(community_ids))
        .order_by(b.id),
    )


def households(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``households`` layer with their assignment under the plans and personal data."""
    h, a, p = models.Household, models.HouseholdAssignment, models.HouseholdPersonal
    f = models.ResponsibilityField
    return _frame(
        conn,
        select(
            h.community_id,
            h.address_id,
            _community_code,
            models.Grid.code.label("grid_code"),
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
            queries.wkb(h.geom),
        )
        .join(models.Community, models.Community.id == h.community_id)
        .outerjoin(a, and_(a.household_id == h.id, a.plan_id.in_(plan_ids)))
        .outerjoin(models.Grid, models.Grid.id == a.grid_id)
        .outerjoin(f, f.id == a.field_id)
        .outerjoin(p, p.household_id == h.id)
        .where(h.community_id.in_(community_ids))
        .order_by(h.address_id),
    )


def members(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``members`` layer, personal columns included, with positions."""
    mem = models.Member
    return _frame(
        conn,
        select(
            mem.community_id,
            mem.id,
            _community_code,
            mem.name.label("name_masked"),
            mem.kind,
            models.Branch.name.label("branch"),
            models.ResidentUnit.name.label("home_unit"),
            mem.active,
            mem.name,
            mem.phone,
            queries.wkb(mem.position),
        )
        .join(models.Community, models.Community.id == mem.community_id)
        .outerjoin(models.Branch, models.Branch.id == mem.branch_id)
        .outerjoin(models.ResidentUnit, models.ResidentUnit.id == mem.home_unit_id)
        .where(mem.community_id.in_(community_ids))
        .order_by(mem.id),
    )


def requests(
    conn: Connection, *, community_ids: Sequence[int], plan_ids: Sequence[int]
) -> gpd.GeoDataFrame:
    """The ``requests`` layer with category, grid, member and escalation."""
    r, cat = models.Request, models.Category
    return _frame(
        conn,
        select(
            r.community_id,
            r.id,
            _community_code,
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
            models.Grid.code.label("grid_code"),
            r.field_id,
            r.member_id,
            models.Member.name.label("member_masked"),
            r.assignment_rule,
            r.source,
            r.address_id,
            r.description,
            models.Department.code.label("escalated_to"),
            r.satisfaction,
            queries.wkb(r.geom),
        )
        .join(models.Community, models.Community.id == r.community_id)
        .join(cat, cat.id == r.category_id)
        .outerjoin(models.Grid, models.Grid.id == r.grid_id)
        .outerjoin(models.Member, models.Member.id == r.member_id)
        .outerjoin(models.Department, models.Department.id == r.escalated_to_id)
        .where(r.community_id.in_(community_ids))
        .order_by(r.id),
    )
