"""Queries of the assignment of households and requests to grids, fields and members.

The routing rule (grid → field → member; a vacancy goes to the grid's lead) is in
``geogrid.assign``; the set-based household statements are backend-specific and live in
``geogrid.db.dialect``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, select, update

from geogrid.db import dialect, models


class PlanGrid(NamedTuple):
    """A grid of a plan with its code and lead member."""

    id: int
    lead_member_id: int | None
    code: str


class RequestPlace(NamedTuple):
    """Where a request is routed now: its grid and member."""

    id: int
    grid_id: int | None
    member_id: int | None


class RequestCover(NamedTuple):
    """``{request_id: grid_id}`` and ``{request_id: field_id}`` of the requests' points."""

    grid_of: dict[int, int]
    field_of: dict[int, int]


class RequestRoute(NamedTuple):
    """A request's new grid, field and member, and the rule that chose the member."""

    request_id: int
    grid_id: int | None
    field_id: int | None
    member_id: int | None
    rule: str


def plan_version(conn: Connection, *, plan_id: int) -> int:
    """The version number of plan ``plan_id``."""
    return conn.execute(
        select(models.BoundaryPlan.version).where(models.BoundaryPlan.id == plan_id)
    ).scalar_one()


def outside_households(
    conn: Connection, *, community_id: int, plan_id: int, limit: int
) -> list[str]:
    """Address ids of the first ``limit`` households no grid of the plan covers."""
    household, assigned = models.Household, models.HouseholdAssignment
    covered = select(assigned.household_id).where(assigned.plan_id == plan_id)
    rows = conn.execute(
        select(household.address_id)
        .where(household.community_id == community_id, household.id.not_in(covered))
        .order_by(household.address_id)
        .limit(limit)
    ).scalars()
    return list(rows)


def request_cover(
    conn: Connection,
    *,
    community_id: int,
    plan_id: int,
    open_only: bool,
    request_ids: Collection[int] | None,
) -> RequestCover:
    """The grid of the plan and the field covering each request's point (edge rule of
    ``dialect.cover_pairs``), for the community's (open) requests, or the given ones."""
    where = "t.community_id = :community_id"
    if open_only:
        where += " AND t.status IN (" + ", ".join(f"'{s}'" for s in models.OPEN_STATUSES) + ")"
    if request_ids is not None:
        # Integers only (int() below), so the list is safe to inline.
        where += " AND t.id IN (" + ", ".join(str(int(i)) for i in request_ids) + ")"
    params = {"plan_id": plan_id, "community_id": community_id}
    return RequestCover(
        grid_of=dialect.cover_pairs(
            conn, target="grids", point_table="requests", point_where=where, params=params
        ),
        field_of=dialect.cover_pairs(
            conn, target="fields", point_table="requests", point_where=where, params=params
        ),
    )


def plan_grids(conn: Connection, *, plan_id: int) -> list[PlanGrid]:
    """The grids of a plan with their codes and leads."""
    grid = models.Grid
    return [
        PlanGrid._make(row)
        for row in conn.execute(
            select(grid.id, grid.lead_member_id, grid.code).where(grid.plan_id == plan_id)
        ).all()
    ]


def grid_codes(conn: Connection, *, grid_ids: Collection[int]) -> dict[int, str]:
    """``{grid_id: code}`` of the given grids (of any plan)."""
    return {
        row.id: row.code
        for row in conn.execute(
            select(models.Grid.id, models.Grid.code).where(models.Grid.id.in_(grid_ids))
        )
    }


def field_holders(conn: Connection, *, community_id: int) -> dict[int, int | None]:
    """``{field_id: member_id}`` of the community's fields (None: vacant)."""
    field = models.ResponsibilityField
    return {
        row.id: row.member_id
        for row in conn.execute(
            select(field.id, field.member_id).where(field.community_id == community_id)
        )
    }


def request_places(
    conn: Connection,
    *,
    community_id: int,
    open_only: bool,
    request_ids: Collection[int] | None,
) -> list[RequestPlace]:
    """The community's (open) requests, or the given ones, with their grid and member."""
    request = models.Request
    stmt = select(request.id, request.grid_id, request.member_id).where(
        request.community_id == community_id
    )
    if open_only:
        stmt = stmt.where(request.status.in_(models.OPEN_STATUSES))
    if request_ids is not None:
        stmt = stmt.where(request.id.in_([int(i) for i in request_ids]))
    return [RequestPlace._make(row) for row in conn.execute(stmt).all()]


def reroutable_request_ids(conn: Connection, *, community_id: int) -> list[int]:
    """The community's open requests except those an official assigned by hand."""
    request = models.Request
    return [
        int(i)
        for i in conn.execute(
            select(request.id).where(
                request.community_id == community_id,
                request.status.in_(models.OPEN_STATUSES),
                (request.assignment_rule != "manual") | request.assignment_rule.is_(None),
            )
        ).scalars()
    ]


def set_request_routes(conn: Connection, *, routes: Sequence[RequestRoute]) -> None:
    """Write each request's grid, field, member and assignment rule (one executemany)."""
    if not routes:
        return
    requests = models.table(models.Request)
    conn.execute(
        update(requests)
        .where(requests.c.id == bindparam("rid"))
        .values(
            grid_id=bindparam("grid_id"),
            field_id=bindparam("field_id"),
            member_id=bindparam("member_id"),
            assignment_rule=bindparam("rule"),
        ),
        [
            {
                "rid": route.request_id,
                "grid_id": route.grid_id,
                "field_id": route.field_id,
                "member_id": route.member_id,
                "rule": route.rule,
            }
            for route in routes
        ],
    )
