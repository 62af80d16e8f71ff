"""Queries of the directory's people: members, their branches, responsibility fields and
grid leads.

Rights, validation and re-routing are in ``geogrid.directory``; here only the statements.
A member's ``name`` and ``phone`` are personal: callers mask them or log the read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select, update

from geogrid.db import models


class MemberRow(NamedTuple):
    """A member with its community's code and its branch's name (``name``, ``phone``:
    personal)."""

    id: int
    community_code: str
    community_id: int
    name: str
    phone: str | None
    kind: str
    branch: str | None
    active: bool


class MemberState(NamedTuple):
    """Where a member belongs and whether it is active."""

    community_id: int
    active: bool


class FieldHolder(NamedTuple):
    """A responsibility field and the member holding it."""

    field_id: int
    member_id: int | None


class GridLead(NamedTuple):
    """A grid of an active plan and its lead member."""

    grid_code: str
    member_id: int | None


class FieldListing(NamedTuple):
    """A responsibility field with its holder's name (personal) and its grid's code."""

    id: int
    name: str | None
    member_id: int | None
    member_name: str | None
    grid_code: str | None
    needs_review: bool


class ActiveGrid(NamedTuple):
    """A grid of an active plan and the plan's community."""

    id: int
    community_id: int


# --- members ---------------------------------------------------------------------------------


def members(
    conn: Connection,
    *,
    community_code: str | None = None,
    community_ids: Iterable[int] | None = None,
    ids: Sequence[int] = (),
) -> list[MemberRow]:
    """Members by id, of the community given by code and/or of ``community_ids`` (a scoped
    key's), limited to ``ids`` if any."""
    member, community = models.Member, models.Community
    stmt = (
        select(
            member.id,
            community.code.label("community_code"),
            member.community_id,
            member.name,
            member.phone,
            member.kind,
            models.Branch.name.label("branch"),
            member.active,
        )
        .join(community, community.id == member.community_id)
        .outerjoin(models.Branch, models.Branch.id == member.branch_id)
        .order_by(member.id)
    )
    if community_code is not None:
        stmt = stmt.where(community.code == community_code)
    if community_ids is not None:
        stmt = stmt.where(member.community_id.in_(sorted(community_ids)))
    if ids:
        stmt = stmt.where(member.id.in_([int(i) for i in ids]))
    return [MemberRow._make(row) for row in conn.execute(stmt).all()]


def member_state(conn: Connection, *, member_id: int) -> MemberState | None:
    """The member's community and active flag; None when there is no such member."""
    row = conn.execute(
        select(models.Member.community_id, models.Member.active).where(
            models.Member.id == member_id
        )
    ).one_or_none()
    return None if row is None else MemberState._make(row)


def branch_id(conn: Connection, *, community_id: int, name: str) -> int | None:
    """The id of the community's branch called ``name``, or None."""
    return conn.execute(
        select(models.Branch.id).where(
            models.Branch.community_id == community_id, models.Branch.name == name
        )
    ).scalar()


def insert_member(conn: Connection, *, community_id: int, values: Mapping[str, Any]) -> int:
    """Add a member of ``community_id`` with column ``values``; return its id."""
    return int(
        conn.execute(
            insert(models.Member)
            .values(community_id=community_id, **values)
            .returning(models.Member.id)
        ).scalar_one()
    )


def update_member(conn: Connection, *, member_id: int, values: Mapping[str, Any]) -> None:
    """Set column ``values`` of member ``member_id``."""
    conn.execute(update(models.Member).where(models.Member.id == member_id).values(**values))


# --- fields and grid leads -------------------------------------------------------------------


def fields_held(conn: Connection, *, member_ids: Sequence[int]) -> list[FieldHolder]:
    """The fields the given members hold, by field id."""
    field = models.ResponsibilityField
    return [
        FieldHolder._make(row)
        for row in conn.execute(
            select(field.id, field.member_id)
            .where(field.member_id.in_(member_ids))
            .order_by(field.id)
        )
    ]


def grids_led(conn: Connection, *, member_ids: Sequence[int]) -> list[GridLead]:
    """The grids of active plans the given members lead, by grid code."""
    grid, plan = models.Grid, models.BoundaryPlan
    return [
        GridLead._make(row)
        for row in conn.execute(
            select(grid.code, grid.lead_member_id)
            .join(plan, plan.id == grid.plan_id)
            .where(
                grid.lead_member_id.in_(member_ids), plan.status == models.PlanStatus.ACTIVE.value
            )
            .order_by(grid.code)
        )
    ]


def fields(conn: Connection, *, community_id: int | None) -> list[FieldListing]:
    """The responsibility fields by id (of one community, or of all when None)."""
    field, grid, member = models.ResponsibilityField, models.Grid, models.Member
    stmt = (
        select(
            field.id,
            field.name,
            field.member_id,
            member.name.label("member_name"),
            grid.code.label("grid_code"),
            field.needs_review,
        )
        .outerjoin(member, member.id == field.member_id)
        .outerjoin(grid, grid.id == field.grid_id)
        .order_by(field.id)
    )
    if community_id is not None:
        stmt = stmt.where(field.community_id == community_id)
    return [FieldListing._make(row) for row in conn.execute(stmt)]


def field_community_id(conn: Connection, *, field_id: int) -> int | None:
    """The community of field ``field_id`` (None when there is no such field)."""
    field = models.ResponsibilityField
    return conn.execute(select(field.community_id).where(field.id == field_id)).scalar_one_or_none()


def set_field_member(conn: Connection, *, field_id: int, member_id: int | None) -> None:
    """Give field ``field_id`` to ``member_id`` (None: vacant)."""
    field = models.ResponsibilityField
    conn.execute(update(field).where(field.id == field_id).values(member_id=member_id))


def vacate_fields(conn: Connection, *, member_id: int) -> None:
    """Make every field member ``member_id`` holds vacant."""
    field = models.ResponsibilityField
    conn.execute(update(field).where(field.member_id == member_id).values(member_id=None))


def active_grid(conn: Connection, *, grid_code: str, community_id: int | None) -> ActiveGrid | None:
    """The grid ``grid_code`` of an active plan (of ``community_id`` when given), or None."""
    grid, plan = models.Grid, models.BoundaryPlan
    stmt = (
        select(grid.id, plan.community_id)
        .join(plan, plan.id == grid.plan_id)
        .where(grid.code == grid_code, plan.status == models.PlanStatus.ACTIVE.value)
    )
    if community_id is not None:
        stmt = stmt.where(plan.community_id == community_id)
    row = conn.execute(stmt).one_or_none()
    return None if row is None else ActiveGrid._make(row)


def set_grid_lead(conn: Connection, *, grid_id: int, member_id: int | None) -> None:
    """Make ``member_id`` the lead of grid ``grid_id`` (None: no lead)."""
    conn.execute(
        update(models.Grid).where(models.Grid.id == grid_id).values(lead_member_id=member_id)
    )
