"""Queries of visits (分类走访) and of the households their coverage counts.

``geogrid.requests.visits`` checks rights and inputs and computes coverage;
``geogrid.requests.kpis`` adds coverage to its table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pandas as pd
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.sql.selectable import ScalarSelect

from geogrid.db import models


class HouseholdRef(NamedTuple):
    id: int
    community_id: int


def household(conn: Connection, *, address_id: str) -> HouseholdRef | None:
    """A household's id and community by its address id, or None."""
    home = models.Household
    row = conn.execute(
        select(home.id, home.community_id).where(home.address_id == address_id)
    ).one_or_none()
    return None if row is None else HouseholdRef(**row._asdict())


def field_holder(conn: Connection, *, plan_id: int, household_id: int) -> int | None:
    """The member holding the responsibility field of a household under a plan (or None)."""
    assignment, field = models.HouseholdAssignment, models.ResponsibilityField
    member_id = conn.execute(
        select(field.member_id)
        .join(assignment, assignment.field_id == field.id)
        .where(assignment.plan_id == plan_id, assignment.household_id == household_id)
    ).scalar()
    return None if member_id is None else int(member_id)


def insert_visit(
    conn: Connection,
    *,
    member_id: int,
    household_id: int,
    visited_on: dt.date,
    kind: str,
    note: str | None,
) -> int:
    """Record a visit; its id."""
    return int(
        conn.execute(
            insert(models.Visit)
            .values(
                member_id=member_id,
                household_id=household_id,
                visited_on=visited_on,
                kind=kind,
                note=note,
            )
            .returning(models.Visit.id)
        ).scalar_one()
    )


class VisitRow(NamedTuple):
    id: int
    member_id: int
    address_id: str
    visited_on: dt.date
    kind: str | None
    note: str | None
    community_id: int


class VisitPage(NamedTuple):
    #: How many visits match (all pages).
    total: int
    rows: list[VisitRow]


def visit_page(
    conn: Connection,
    *,
    member_id: int | None,
    community_ids: Iterable[int] | None,
    start: dt.date | None,
    end: dt.date | None,
    limit: int,
    offset: int,
) -> VisitPage:
    """Visits (of a member, in a community, between inclusive dates), newest first."""
    visit, home = models.Visit, models.Household
    stmt = select(
        visit.id,
        visit.member_id,
        home.address_id,
        visit.visited_on,
        visit.kind,
        visit.note,
        home.community_id,
    ).join(home, home.id == visit.household_id)
    if member_id is not None:
        stmt = stmt.where(visit.member_id == member_id)
    if community_ids is not None:
        stmt = stmt.where(home.community_id.in_(sorted(community_ids)))
    if start is not None:
        stmt = stmt.where(visit.visited_on >= start)
    if end is not None:
        stmt = stmt.where(visit.visited_on <= end)
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = conn.execute(
        stmt.order_by(visit.visited_on.desc(), visit.id.desc()).limit(limit).offset(offset)
    ).all()
    return VisitPage(int(total), [VisitRow(**r._asdict()) for r in rows])


def _active_plan_of_household() -> ScalarSelect[int]:
    """The id of the active plan of the household's community (a correlated subquery)."""
    plan, home = models.BoundaryPlan, models.Household
    return (
        select(plan.id)
        .where(
            plan.community_id == home.community_id, plan.status == models.PlanStatus.ACTIVE.value
        )
        .scalar_subquery()
    )


def households_frame(conn: Connection, *, community_ids: Sequence[int]) -> pd.DataFrame:
    """``household_id, community_id, grid_id, field_id, member_id, branch_id`` (active plan;
    NaN outside every grid or field)."""
    home, assignment, field = (
        models.Household,
        models.HouseholdAssignment,
        models.ResponsibilityField,
    )
    member = models.Member
    active = _active_plan_of_household()
    rows = conn.execute(
        select(
            home.id,
            home.community_id,
            assignment.grid_id,
            assignment.field_id,
            field.member_id,
            member.branch_id,
        )
        .select_from(home)
        .outerjoin(
            assignment, (assignment.household_id == home.id) & (assignment.plan_id == active)
        )
        .outerjoin(field, field.id == assignment.field_id)
        .outerjoin(member, member.id == field.member_id)
        .where(home.community_id.in_(list(community_ids)))
    ).all()
    return pd.DataFrame(
        rows,
        columns=["household_id", "community_id", "grid_id", "field_id", "member_id", "branch_id"],
    )


def visited_households(
    conn: Connection, *, community_ids: Sequence[int], start: dt.date, end: dt.date
) -> set[int]:
    """Households of these communities visited between ``start`` and ``end`` (inclusive)."""
    visit, home = models.Visit, models.Household
    return {
        int(i)
        for i in conn.execute(
            select(visit.household_id)
            .join(home, home.id == visit.household_id)
            .where(
                home.community_id.in_(list(community_ids)),
                visit.visited_on >= start,
                visit.visited_on <= end,
            )
            .distinct()
        ).scalars()
    }


class OwnHousehold(NamedTuple):
    address_id: str
    street_name: str | None
    house_number: str | None
    compound: str | None
    building_name: str | None
    unit: str | None
    room: str | None


def member_households(conn: Connection, *, member_id: int, limit: int) -> list[OwnHousehold]:
    """Households in the responsibility fields ``member_id`` holds under its community's active
    plan, by address (at most ``limit``)."""
    home, assignment, field = (
        models.Household,
        models.HouseholdAssignment,
        models.ResponsibilityField,
    )
    active = _active_plan_of_household()
    rows = conn.execute(
        select(
            home.address_id,
            home.street_name,
            home.house_number,
            home.compound,
            home.building_name,
            home.unit,
            home.room,
        )
        .join(assignment, (assignment.household_id == home.id) & (assignment.plan_id == active))
        .join(field, field.id == assignment.field_id)
        .where(field.member_id == member_id)
        .order_by(home.street_name, home.house_number, home.building_name, home.unit, home.room)
        .limit(limit)
    ).all()
    return [OwnHousehold._make(r) for r in rows]


def community_ids(conn: Connection, *, within: Iterable[int] | None) -> list[int]:
    """Every community's id by code, or only those ``within`` (a scoped key's)."""
    community = models.Community
    stmt = select(community.id).order_by(community.code)
    if within is not None:
        stmt = stmt.where(community.id.in_(sorted(within)))
    return [int(i) for i in conn.execute(stmt).scalars()]
