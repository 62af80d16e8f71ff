"""Visits (分类走访): members log visits to households; coverage = households visited in a
period ÷ households (docs/api.md, "Visits").

A household counts as visited when anyone logged a visit to it in the period (inclusive local
dates); it belongs to the grid and responsibility field the active plan's assignment gives it,
so coverage per member is over the households of the member's fields, per branch over the
fields of the branch's members. Households outside every grid count for the community only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import pandas as pd
from sqlalchemy import Connection, func, insert, select

from geogrid.access import Actor, Forbidden
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.errors import InvalidInput, NotFound
from geogrid.periods import Period, today
from geogrid.rates import rate

R = m.Role
VISIT_KINDS: Final = ("routine", "care", "follow_up", "mediation", "other")
COVERAGE_GROUPS: Final = ("community", "grid", "branch", "member")


def _household(conn: Connection, address_id: str) -> Any:
    h = m.Household
    row = conn.execute(select(h.id, h.community_id).where(h.address_id == address_id)).one_or_none()
    if row is None:
        raise InvalidInput(f"no household with address_id {address_id!r}", field="address_id")
    return row


def _holder_of(conn: Connection, household_id: int, community_id: int) -> int | None:
    plan = q.active_plan(conn, community_id=community_id)
    if plan is None:
        return None
    a, f = m.HouseholdAssignment, m.ResponsibilityField
    return conn.execute(
        select(f.member_id)
        .join(a, a.field_id == f.id)
        .where(a.plan_id == plan.id, a.household_id == household_id)
    ).scalar()


def log_visit(
    conn: Connection,
    *,
    actor: Actor,
    address_id: str,
    visited_on: dt.date | str,
    kind: str,
    member_id: int | None = None,
    note: str | None = None,
) -> int:
    """Record a visit; a member logs its own visits to households of its own fields."""
    actor.require(R.MEMBER, R.OFFICIAL, R.ADMIN, what="logging a visit")
    if actor.role is R.MEMBER:
        if member_id not in (None, actor.member_id):
            raise Forbidden("a member logs its own visits only")
        member_id = actor.member_id
    if member_id is None:
        raise InvalidInput("member_id is required", field="member_id")
    if kind not in VISIT_KINDS:
        raise InvalidInput(
            f"kind must be one of {', '.join(VISIT_KINDS)}, got {kind!r}", field="kind"
        )
    if isinstance(visited_on, str):
        try:
            visited_on = dt.date.fromisoformat(visited_on)
        except ValueError:
            raise InvalidInput(
                f"visited_on must be a date like 2018-04-18, got {visited_on!r}",
                field="visited_on",
            ) from None
    if visited_on > today() + dt.timedelta(days=1):
        raise InvalidInput("visited_on is in the future", field="visited_on")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise InvalidInput("note must be text of at most 2000 characters", field="note")
    hh = _household(conn, address_id)
    actor.require_community(hh.community_id, what="a visit in this community")
    member = conn.execute(
        select(m.Member.community_id, m.Member.active).where(m.Member.id == member_id)
    ).one_or_none()
    if member is None or member.community_id != hh.community_id:
        raise InvalidInput(f"no member {member_id} in the household's community", field="member_id")
    if actor.role is R.MEMBER and _holder_of(conn, hh.id, hh.community_id) != member_id:
        raise Forbidden("the household is not in this member's responsibility field")
    return int(
        conn.execute(
            insert(m.Visit)
            .values(
                member_id=member_id,
                household_id=hh.id,
                visited_on=visited_on,
                kind=kind,
                note=note,
            )
            .returning(m.Visit.id)
        ).scalar_one()
    )


def list_visits(
    conn: Connection,
    *,
    actor: Actor,
    member_id: int | None = None,
    period: Period | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Visits, newest first; a member sees its own."""
    actor.require(R.MEMBER, R.OFFICIAL, R.ADMIN, R.PLANNER, what="reading visits")
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", field="limit")
    v, h = m.Visit, m.Household
    stmt = select(
        v.id, v.member_id, h.address_id, v.visited_on, v.kind, v.note, h.community_id
    ).join(h, h.id == v.household_id)
    if actor.role is R.MEMBER:
        member_id = actor.member_id
    if member_id is not None:
        stmt = stmt.where(v.member_id == member_id)
    if actor.community_id is not None:
        stmt = stmt.where(h.community_id == actor.community_id)
    if period is not None:
        stmt = stmt.where(v.visited_on >= period.start, v.visited_on <= period.end)
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = conn.execute(stmt.order_by(v.visited_on.desc(), v.id.desc()).limit(limit).offset(offset))
    items = [
        {
            "id": int(r.id),
            "member_id": r.member_id,
            "address_id": r.address_id,
            "visited_on": r.visited_on.isoformat(),
            "kind": r.kind,
            "note": r.note,
        }
        for r in rows
    ]
    return {"total": int(total), "limit": limit, "offset": offset, "items": items}


def households_frame(conn: Connection, *, community_ids: Sequence[int]) -> pd.DataFrame:
    """``household_id, community_id, grid_id, field_id, member_id, branch_id`` (active plan;
    NaN outside every grid or field)."""
    h, a, f, mb, p = (
        m.Household,
        m.HouseholdAssignment,
        m.ResponsibilityField,
        m.Member,
        m.BoundaryPlan,
    )
    active = (
        select(p.id)
        .where(p.community_id == h.community_id, p.status == m.PlanStatus.ACTIVE.value)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(h.id, h.community_id, a.grid_id, a.field_id, f.member_id, mb.branch_id)
        .select_from(h)
        .outerjoin(a, (a.household_id == h.id) & (a.plan_id == active))
        .outerjoin(f, f.id == a.field_id)
        .outerjoin(mb, mb.id == f.member_id)
        .where(h.community_id.in_(list(community_ids)))
    ).all()
    return pd.DataFrame(
        rows,
        columns=["household_id", "community_id", "grid_id", "field_id", "member_id", "branch_id"],
    )


def visited_households(
    conn: Connection, *, community_ids: Sequence[int], start: dt.date, end: dt.date
) -> set[int]:
    v, h = m.Visit, m.Household
    return {
        int(i)
        for i in conn.execute(
            select(v.household_id)
            .join(h, h.id == v.household_id)
            .where(
                h.community_id.in_(list(community_ids)),
                v.visited_on >= start,
                v.visited_on <= end,
            )
            .distinct()
        ).scalars()
    }


def coverage(
    conn: Connection,
    *,
    period: Period,
    group_by: str = "community",
    community: str | None = None,
    actor: Actor | None = None,
) -> list[dict[str, Any]]:
    """Visit coverage per group: ``{key, households, visited, visit_coverage}``."""
    if group_by not in COVERAGE_GROUPS:
        raise InvalidInput(
            f"group_by must be one of {', '.join(COVERAGE_GROUPS)}", field="group_by"
        )
    cids = community_ids(conn, community=community, actor=actor)
    frame = households_frame(conn, community_ids=cids)
    visited = visited_households(conn, community_ids=cids, start=period.start, end=period.end)
    frame["visited"] = frame["household_id"].isin(visited)
    key = {
        "community": "community_id",
        "grid": "grid_id",
        "branch": "branch_id",
        "member": "member_id",
    }[group_by]
    sub = frame.dropna(subset=[key])
    out = []
    for k, g in sub.groupby(key):
        out.append(
            {
                "key": int(k),
                "households": len(g),
                "visited": int(g["visited"].sum()),
                "visit_coverage": rate(int(g["visited"].sum()), len(g)),
            }
        )
    return out


def community_ids(conn: Connection, *, community: str | None, actor: Actor | None) -> list[int]:
    c = m.Community
    stmt = select(c.id).order_by(c.code)
    if community is not None:
        stmt = stmt.where(c.code == community)
    if actor is not None and actor.community_id is not None:
        stmt = stmt.where(c.id == actor.community_id)
    ids = [int(i) for i in conn.execute(stmt).scalars()]
    if community is not None and not ids:
        raise NotFound(f"no community with code {community!r}", field="community")
    return ids
