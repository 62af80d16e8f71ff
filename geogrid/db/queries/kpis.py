"""Queries of the KPI table (``geogrid.requests.kpis``): the period's requests, group names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, exists, func, select

from geogrid.db import models


class KpiRequest(NamedTuple):
    """A request as the KPIs count it, with its group keys and their names."""

    id: int
    community_id: int
    community_code: str
    community_name: str
    timezone: str
    grid_id: int | None
    grid_code: str | None
    grid_name: str | None
    member_id: int | None
    member_name: str | None
    branch_id: int | None
    branch_name: str | None
    category_code: str
    category_name: str
    programme: str
    status: str
    received_at: dt.datetime
    registered_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    due_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    satisfaction: str | None
    #: Escalated at least once (an event says so), or escalated now (1/0 on SQLite).
    escalated: bool | int


def kpi_requests(
    conn: Connection,
    *,
    community_ids: Sequence[int],
    received_from: dt.datetime,
    received_before: dt.datetime,
) -> list[KpiRequest]:
    """The communities' requests received in ``[received_from, received_before)``."""
    request, category, grid = models.Request, models.Category, models.Grid
    member, branch, community, event = (
        models.Member,
        models.Branch,
        models.Community,
        models.RequestEvent,
    )
    escalated = exists(
        select(event.id).where(
            event.request_id == request.id,
            event.to_status == models.RequestStatus.ESCALATED.value,
        )
    )
    rows = conn.execute(
        select(
            request.id,
            request.community_id,
            community.code.label("community_code"),
            community.name.label("community_name"),
            community.timezone,
            request.grid_id,
            grid.code.label("grid_code"),
            grid.name.label("grid_name"),
            request.member_id,
            member.name.label("member_name"),
            member.branch_id,
            branch.name.label("branch_name"),
            category.code.label("category_code"),
            category.name.label("category_name"),
            request.programme,
            request.status,
            request.received_at,
            request.registered_at,
            request.dispatched_at,
            request.due_at,
            request.resolved_at,
            request.closed_at,
            request.satisfaction,
            (escalated | request.escalated_to_id.is_not(None)).label("escalated"),
        )
        .join(category, category.id == request.category_id)
        .join(community, community.id == request.community_id)
        .outerjoin(grid, grid.id == request.grid_id)
        .outerjoin(member, member.id == request.member_id)
        .outerjoin(branch, branch.id == member.branch_id)
        .where(
            request.community_id.in_(list(community_ids)),
            request.received_at >= received_from,
            request.received_at < received_before,
        )
    ).all()
    return [KpiRequest(**r._asdict()) for r in rows]


def first_received(conn: Connection, *, community_ids: Sequence[int]) -> dt.datetime | None:
    """When the communities' first request was received (None: no request yet), for a
    period of "all history" that starts with the data instead of in 1970."""
    request = models.Request
    return conn.execute(
        select(func.min(request.received_at)).where(request.community_id.in_(list(community_ids)))
    ).scalar_one_or_none()


def visits_in(
    conn: Connection, *, community_ids: Sequence[int], start: dt.date, end: dt.date
) -> list[tuple[int, dt.date]]:
    """(household, day) of every visit to the communities' households between ``start`` and
    ``end`` (inclusive), for the coverage of each month of a period in one read."""
    visit, home = models.Visit, models.Household
    rows = conn.execute(
        select(visit.household_id, visit.visited_on)
        .join(home, home.id == visit.household_id)
        .where(
            home.community_id.in_(list(community_ids)),
            visit.visited_on >= start,
            visit.visited_on <= end,
        )
        .distinct()
    ).all()
    return [(int(h), d) for h, d in rows]


class GroupName(NamedTuple):
    """The name of a KPI group key; ``code`` for communities and grids (else None)."""

    key: int | str
    code: str | None
    name: str | None


def group_names(conn: Connection, *, group_by: str, keys: Sequence[int | str]) -> list[GroupName]:
    """The names of group keys: community, grid, branch and member ids, category codes."""
    if group_by == "community":
        community = models.Community
        return [
            GroupName(int(r.id), str(r.code), str(r.name))
            for r in conn.execute(
                select(community.id, community.code, community.name).where(community.id.in_(keys))
            )
        ]
    if group_by == "grid":
        grid = models.Grid
        return [
            GroupName(int(r.id), str(r.code), r.name)
            for r in conn.execute(select(grid.id, grid.code, grid.name).where(grid.id.in_(keys)))
        ]
    if group_by == "branch":
        branch = models.Branch
        return [
            GroupName(int(r.id), None, str(r.name))
            for r in conn.execute(select(branch.id, branch.name).where(branch.id.in_(keys)))
        ]
    if group_by == "member":
        member = models.Member
        return [
            GroupName(int(r.id), None, str(r.name))
            for r in conn.execute(select(member.id, member.name).where(member.id.in_(keys)))
        ]
    if group_by == "category":
        category = models.Category
        return [
            GroupName(str(r.code), None, str(r.name))
            for r in conn.execute(
                select(category.code, category.name).where(category.code.in_(keys))
            )
        ]
    raise ValueError(f"no names for KPI groups by {group_by!r}")
