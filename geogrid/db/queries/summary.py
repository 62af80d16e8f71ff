"""The counts behind ``/v1/summary`` (and ``geogrid summary``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, select

from geogrid.db import models
from geogrid.db.queries.boundary_plans import active_plan
from geogrid.db.queries.core import count


def summary_counts(
    conn: Connection, *, community_id: int, received_from: dt.datetime, received_to: dt.datetime
) -> dict[str, Any]:
    """Counts for ``/v1/summary`` of one community; requests by received time in [from, to)."""
    plan = active_plan(conn, community_id=community_id)
    grids = count(conn, models.Grid, models.Grid.plan_id == plan.id) if plan else 0
    kinds = dict(
        conn.execute(
            select(models.Member.kind, func.count())
            .where(models.Member.community_id == community_id, models.Member.active.is_(True))
            .group_by(models.Member.kind)
        ).all()
    )
    r = models.Request
    in_period = (
        r.community_id == community_id,
        r.received_at >= received_from,
        r.received_at < received_to,
    )
    received = count(conn, r, *in_period)
    resolved = count(conn, r, *in_period, r.status.in_(models.RESOLVED_STATUSES))
    return {
        "plan": plan,
        "grids": grids,
        "branches": count(conn, models.Branch, models.Branch.community_id == community_id),
        "branches_on_grids": int(
            conn.execute(
                select(func.count(func.distinct(models.BranchGrid.branch_id)))
                .join(models.Grid, models.Grid.id == models.BranchGrid.grid_id)
                .where(models.Grid.plan_id == (plan.id if plan else -1))
            ).scalar_one()
        ),
        "members_by_kind": {k.value: int(kinds.get(k.value, 0)) for k in models.MemberKind},
        "households": count(conn, models.Household, models.Household.community_id == community_id),
        "residents": int(
            conn.execute(
                select(func.coalesce(func.sum(models.Household.size), 0)).where(
                    models.Household.community_id == community_id
                )
            ).scalar_one()
        ),
        "responsibility_fields": count(
            conn,
            models.ResponsibilityField,
            models.ResponsibilityField.community_id == community_id,
        ),
        "received": received,
        "resolved": resolved,
    }
