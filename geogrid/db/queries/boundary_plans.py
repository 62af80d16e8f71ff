"""Boundary plans, their activation history and the review queue, as typed rows.

Not ``plans.py``: importing a submodule of that name would replace the package's function
``geogrid.db.queries.plans`` (the list of a community's plans) with the module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Select, delete, func, insert, select, update

from geogrid.db import models
from geogrid.db.queries.core import _update_from_values, bulk_insert, update_ids, wkb
from geogrid.errors import NotFound


class PlanRow(NamedTuple):
    """A boundary plan (``boundary_plans``)."""

    id: int
    community_id: int
    version: int
    name: str
    status: str
    source: str | None
    description: str | None
    #: The plan that was active when this draft was made (activation refuses a stale base).
    base_plan_id: int | None
    created_at: dt.datetime
    activated_at: dt.datetime | None
    retired_at: dt.datetime | None


class PlanEventRow(NamedTuple):
    """An activation or rollback (``plan_events``) with its report."""

    id: int
    action: str
    previous_plan_id: int | None
    at: dt.datetime
    report: dict[str, Any]


class FieldRevisionRow(NamedTuple):
    """A field as it was before an activation clipped it (``field_revisions``)."""

    field_id: int
    geom_wkb: bytes
    needs_review: bool
    review_note: str | None


def _plans() -> Select[*tuple[Any, ...]]:
    p = models.BoundaryPlan
    return select(
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
    )


def plan_row(conn: Connection, *, plan_id: int) -> PlanRow:
    """A boundary plan's row; :class:`NotFound` when there is none."""
    row = conn.execute(_plans().where(models.BoundaryPlan.id == plan_id)).first()
    if row is None:
        raise NotFound(f"no boundary plan with id {plan_id}", field="plan")
    return PlanRow(*row)


def active_plan(conn: Connection, *, community_id: int) -> PlanRow | None:
    """The community's active boundary plan, or None."""
    row = conn.execute(
        _plans().where(
            models.BoundaryPlan.community_id == community_id,
            models.BoundaryPlan.status == models.PlanStatus.ACTIVE.value,
        )
    ).one_or_none()
    return None if row is None else PlanRow(*row)


def require_active_plan(conn: Connection, *, community_id: int) -> PlanRow:
    """The community's active boundary plan; :class:`NotFound` when it has none."""
    plan = active_plan(conn, community_id=community_id)
    if plan is None:
        raise NotFound("the community has no active boundary plan: import grids with --commit")
    return plan


def last_plan_event(conn: Connection, *, community_id: int, plan_id: int) -> PlanEventRow | None:
    """The latest activation or rollback that made ``plan_id`` active."""
    e = models.PlanEvent
    row = conn.execute(
        select(e.id, e.action, e.previous_plan_id, e.at, e.report)
        .where(e.community_id == community_id, e.plan_id == plan_id)
        .order_by(e.id.desc())
        .limit(1)
    ).first()
    return None if row is None else PlanEventRow(*row)


def field_revisions(conn: Connection, *, event_id: int) -> Sequence[FieldRevisionRow]:
    """The fields an activation clipped, as they were before it (for rollback)."""
    fr = models.FieldRevision
    rows = conn.execute(
        select(fr.field_id, fr.geom_wkb, fr.needs_review, fr.review_note)
        .where(fr.event_id == event_id)
        .order_by(fr.id)
    ).all()
    return [FieldRevisionRow(*row) for row in rows]


def next_plan_version(conn: Connection, *, community_id: int) -> int:
    current = conn.execute(
        select(func.max(models.BoundaryPlan.version)).where(
            models.BoundaryPlan.community_id == community_id
        )
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
            insert(models.BoundaryPlan)
            .values(
                community_id=community_id,
                version=next_plan_version(conn, community_id=community_id),
                name=name,
                status=models.PlanStatus.DRAFT.value,
                source=source,
                description=description,
                base_plan_id=base.id if base else None,
                created_at=models.utcnow(),
            )
            .returning(models.BoundaryPlan.id)
        ).scalar_one()
    )


def mark_plan_active(conn: Connection, *, community_id: int, plan_id: int) -> None:
    """Retire the active plan (if any) and make ``plan_id`` active, in the caller's transaction."""
    now = models.utcnow()
    conn.execute(
        update(models.BoundaryPlan)
        .where(
            models.BoundaryPlan.community_id == community_id,
            models.BoundaryPlan.status == models.PlanStatus.ACTIVE.value,
        )
        .values(status=models.PlanStatus.RETIRED.value, retired_at=now)
    )
    conn.execute(
        update(models.BoundaryPlan)
        .where(models.BoundaryPlan.id == plan_id)
        .values(status=models.PlanStatus.ACTIVE.value, activated_at=now)
    )


class PlanListing(NamedTuple):
    """A plan as ``/v1/plans`` and ``geogrid plan list`` show it (field order = JSON order)."""

    id: int
    version: int
    name: str
    status: str
    base_plan_id: int | None
    source: str | None
    created_at: dt.datetime
    activated_at: dt.datetime | None
    retired_at: dt.datetime | None
    grids: int


class PlanEventListing(NamedTuple):
    """An activation or rollback as listed with the plans (field order = JSON order)."""

    id: int
    plan_id: int
    previous_plan_id: int | None
    action: str
    actor: str | None
    at: dt.datetime


class ReviewField(NamedTuple):
    """A field flagged for review after an activation (field order = JSON order)."""

    id: int
    name: str | None
    member_id: int | None
    grid_code: str | None
    review_note: str | None


def plans(conn: Connection, *, community_id: int) -> list[PlanListing]:
    """The community's plans, newest first, with their grid counts."""
    p, g = models.BoundaryPlan, models.Grid
    grids = select(func.count()).where(g.plan_id == p.id).scalar_subquery()
    rows = conn.execute(
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
    return [PlanListing(*row) for row in rows]


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
            insert(models.PlanEvent)
            .values(
                community_id=community_id,
                plan_id=plan_id,
                previous_plan_id=previous_plan_id,
                action=action,
                actor=actor,
                at=models.utcnow(),
                report={},
            )
            .returning(models.PlanEvent.id)
        ).scalar_one()
    )


def set_plan_event_report(conn: Connection, *, event_id: int, report: dict[str, Any]) -> None:
    conn.execute(
        update(models.PlanEvent).where(models.PlanEvent.id == event_id).values(report=report)
    )


def plan_events(conn: Connection, *, community_id: int) -> list[PlanEventListing]:
    """The community's activations and rollbacks, newest first."""
    e = models.PlanEvent
    rows = conn.execute(
        select(e.id, e.plan_id, e.previous_plan_id, e.action, e.actor, e.at)
        .where(e.community_id == community_id)
        .order_by(e.id.desc())
    ).all()
    return [PlanEventListing(*row) for row in rows]


def save_field_revisions(conn: Connection, *, event_id: int, field_ids: Sequence[int]) -> int:
    """Keep the fields' current geometry and review flags under ``event_id`` (for rollback)."""
    if not field_ids:
        return 0
    f = models.ResponsibilityField
    rows = conn.execute(
        select(f.id, wkb(f.geom, "wkb"), f.needs_review, f.review_note).where(
            f.id.in_([int(i) for i in field_ids])
        )
    ).all()
    return bulk_insert(
        conn,
        models.FieldRevision,
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
        models.ResponsibilityField,
        [(int(i), shapely.to_wkb(g), bool(r), note) for i, g, r, note in rows],
        slots=("CAST({} AS INTEGER)", "{}", "CAST({} AS BOOLEAN)", "CAST({} AS TEXT)"),
        assign=f"geom = ST_GeomFromWKB(v.column2, {models.SRID}), needs_review = v.column3, "
        "review_note = v.column4",
        chunk=chunk,
    )


def set_grid_leads(conn: Connection, *, leads: dict[int, int]) -> None:
    """``{grid_id: member_id}``."""
    update_ids(conn, models.Grid, "lead_member_id", list(leads.items()))


def insert_branch_grids(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """``{branch_id, grid_id, needs_review}`` rows."""
    return bulk_insert(conn, models.BranchGrid, rows)


def set_plan_status(
    conn: Connection,
    *,
    plan_id: int,
    status: str,
    activated_at: dt.datetime | None = None,
    retired_at: dt.datetime | None = None,
) -> None:
    conn.execute(
        update(models.BoundaryPlan)
        .where(models.BoundaryPlan.id == plan_id)
        .values(status=status, activated_at=activated_at, retired_at=retired_at)
    )


def delete_plan(conn: Connection, *, plan_id: int) -> None:
    """Delete a plan and its grids (drafts only: ``planning.store.delete_draft`` checks)."""
    conn.execute(delete(models.Grid).where(models.Grid.plan_id == plan_id))
    conn.execute(delete(models.BoundaryPlan).where(models.BoundaryPlan.id == plan_id))


def review_fields(conn: Connection, *, community_id: int) -> list[ReviewField]:
    """The community's fields flagged ``needs_review``: id, name, member_id, grid code, note."""
    f, g = models.ResponsibilityField, models.Grid
    rows = conn.execute(
        select(f.id, f.name, f.member_id, g.code.label("grid_code"), f.review_note)
        .outerjoin(g, g.id == f.grid_id)
        .where(f.community_id == community_id, f.needs_review.is_(True))
        .order_by(f.id)
    ).all()
    return [ReviewField(*row) for row in rows]


def clear_field_reviews(
    conn: Connection, *, community_id: int, field_ids: Sequence[int] | None
) -> int:
    """Clear ``needs_review`` (and the note) of the given fields, or of all when None."""
    f = models.ResponsibilityField
    stmt = update(f).where(f.community_id == community_id, f.needs_review.is_(True))
    if field_ids is not None:
        stmt = stmt.where(f.id.in_([int(i) for i in field_ids]))
    return int(conn.execute(stmt.values(needs_review=False, review_note=None)).rowcount or 0)


def clear_branch_reviews(
    conn: Connection, *, plan_id: int, branch_ids: Sequence[int] | None
) -> int:
    """Clear ``needs_review`` of a plan's branch–grid mappings (given branches, or all)."""
    bg, g = models.BranchGrid, models.Grid
    stmt = update(bg).where(
        bg.grid_id.in_(select(g.id).where(g.plan_id == plan_id)), bg.needs_review.is_(True)
    )
    if branch_ids is not None:
        stmt = stmt.where(bg.branch_id.in_([int(i) for i in branch_ids]))
    return int(conn.execute(stmt.values(needs_review=False)).rowcount or 0)
