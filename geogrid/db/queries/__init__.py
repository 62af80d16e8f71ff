"""Keyword-only, typed query functions: the ordinary SQL of geogrid, one code path.

A module per concern (``communities``, ``plans``, ``frames``, ``requests``, ``webhooks`` …);
the shared ones are re-exported here, so ``from geogrid.db import queries as q`` then
``q.community_row(…)``. Written with PostGIS function names through GeoAlchemy2; the few
statements that differ per backend live in ``geogrid.db.dialect``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, delete, func, insert, select, update

from geogrid.db import models as m
from geogrid.db.queries.communities import (
    community_boundary,
    community_by_id,
    community_row,
    list_communities,
    lookup_communities,
    member_community_id,
)
from geogrid.db.queries.core import (
    WGS84,
    _update_from_values,
    bulk_insert,
    count,
    geom_value,
    insert_returning_ids,
    read_frame,
    update_ids,
    wkb,
)
from geogrid.db.queries.frames import (
    address_households_frame,
    branch_grids_frame,
    buildings_frame,
    fields_frame,
    grids_frame,
    household_assignments,
    members_frame,
    open_requests_frame,
    party_groups_frame,
    plan_branches_frame,
    planning_households_frame,
    streets_frame,
)
from geogrid.db.queries.meta import (
    data_versions,
    instance_secret,
)
from geogrid.errors import NotFound

__all__ = [
    "WGS84",
    "active_plan",
    "address_households_frame",
    "branch_grids_frame",
    "buildings_frame",
    "bulk_insert",
    "clear_branch_reviews",
    "clear_field_reviews",
    "community_boundary",
    "community_by_id",
    "community_row",
    "count",
    "create_plan",
    "data_versions",
    "delete_plan",
    "field_revisions",
    "fields_frame",
    "geom_value",
    "grids_frame",
    "household_assignments",
    "insert_branch_grids",
    "insert_plan_event",
    "insert_returning_ids",
    "instance_secret",
    "last_plan_event",
    "list_communities",
    "lookup_communities",
    "mark_plan_active",
    "member_community_id",
    "members_frame",
    "next_plan_version",
    "open_requests_frame",
    "party_groups_frame",
    "plan_branches_frame",
    "plan_events",
    "plan_row",
    "planning_households_frame",
    "plans",
    "read_frame",
    "require_active_plan",
    "review_fields",
    "save_field_revisions",
    "set_grid_leads",
    "set_plan_event_report",
    "set_plan_status",
    "streets_frame",
    "summary_counts",
    "update_fields",
    "update_ids",
    "wkb",
]


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
