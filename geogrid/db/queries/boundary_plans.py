"""Boundary plans and their activation history, as typed rows.

Typed variants of the plan queries of :mod:`geogrid.db.queries` (``plan_row``,
``active_plan``, ``require_active_plan``, ``last_plan_event``, ``field_revisions``): same
statements and errors, but rows mypy can check (:class:`PlanRow` …) instead of ``Any``.

Not ``plans.py``: importing a submodule of that name would replace the package's function
``geogrid.db.queries.plans`` (the list of a community's plans) with the module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, select

from geogrid.db import models as m
from geogrid.errors import NotFound

__all__ = [
    "FieldRevisionRow",
    "PlanEventRow",
    "PlanRow",
    "active_plan",
    "field_revisions",
    "last_plan_event",
    "plan_row",
    "require_active_plan",
]


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
    p = m.BoundaryPlan
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
    row = conn.execute(_plans().where(m.BoundaryPlan.id == plan_id)).first()
    if row is None:
        raise NotFound(f"no boundary plan with id {plan_id}", field="plan")
    return PlanRow(*row)


def active_plan(conn: Connection, *, community_id: int) -> PlanRow | None:
    """The community's active boundary plan, or None."""
    row = conn.execute(
        _plans().where(
            m.BoundaryPlan.community_id == community_id,
            m.BoundaryPlan.status == m.PlanStatus.ACTIVE.value,
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
    e = m.PlanEvent
    row = conn.execute(
        select(e.id, e.action, e.previous_plan_id, e.at, e.report)
        .where(e.community_id == community_id, e.plan_id == plan_id)
        .order_by(e.id.desc())
        .limit(1)
    ).first()
    return None if row is None else PlanEventRow(*row)


def field_revisions(conn: Connection, *, event_id: int) -> Sequence[FieldRevisionRow]:
    """The fields an activation clipped, as they were before it (for rollback)."""
    fr = m.FieldRevision
    rows = conn.execute(
        select(fr.field_id, fr.geom_wkb, fr.needs_review, fr.review_note)
        .where(fr.event_id == event_id)
        .order_by(fr.id)
    ).all()
    return [FieldRevisionRow(*row) for row in rows]
