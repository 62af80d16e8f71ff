"""Visits (分类走访): members log visits to households; coverage = households visited in a
period ÷ households (docs/api.md, "Visits").

A household counts as visited when anyone logged a visit to it in the period (inclusive local
dates); it belongs to the grid and responsibility field the active plan's assignment gives it,
so coverage per member is over the households of the member's fields, per branch over the
fields of the branch's members. Households outside every grid count for the community only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor
from geogrid.db import models, queries
from geogrid.db.queries import requests as request_queries
from geogrid.db.queries import visits as visit_queries
from geogrid.errors import Forbidden, InvalidInput, NotFound
from geogrid.periods import Period, today
from geogrid.rates import rate

R = models.Role
VISIT_KINDS: Final = ("routine", "care", "follow_up", "mediation", "other")
COVERAGE_GROUPS: Final = ("community", "grid", "branch", "member")


def _household(conn: Connection, address_id: str) -> visit_queries.HouseholdRef:
    row = visit_queries.household(conn, address_id=address_id)
    if row is None:
        raise InvalidInput(f"no household with address_id {address_id!r}", field="address_id")
    return row


def _holder_of(conn: Connection, household_id: int, community_id: int) -> int | None:
    plan = queries.active_plan(conn, community_id=community_id)
    if plan is None:
        return None
    return visit_queries.field_holder(conn, plan_id=plan.id, household_id=household_id)


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
    home = _household(conn, address_id)
    actor.require_community(home.community_id, what="a visit in this community")
    member = request_queries.member_standing(conn, member_id=member_id)
    if member is None or member.community_id != home.community_id:
        raise InvalidInput(f"no member {member_id} in the household's community", field="member_id")
    if actor.role is R.MEMBER and _holder_of(conn, home.id, home.community_id) != member_id:
        raise Forbidden("the household is not in this member's responsibility field")
    visit_id = visit_queries.insert_visit(
        conn,
        member_id=member_id,
        household_id=home.id,
        visited_on=visited_on,
        kind=kind,
        note=note,
    )
    audit.record(
        conn,
        actor=actor,
        action="create",
        subject="visit",
        subject_id=visit_id,
        fields=["note"] if note else (),
        details={"member_id": member_id, "household_id": home.id, "kind": kind},
    )
    return visit_id


def own_households(conn: Connection, *, actor: Actor, limit: int = 2000) -> list[dict[str, str]]:
    """The households a member may log visits to: those of its own responsibility fields
    under the active plan (``address_id`` and a label of building, unit and room — the
    member's own households, not public)."""
    actor.require(R.MEMBER, what="a member's households")
    if actor.member_id is None:
        return []
    out = []
    for r in visit_queries.member_households(conn, member_id=actor.member_id, limit=limit):
        parts = [
            r.street_name and f"{r.street_name}{r.house_number or ''}",
            r.compound,
            r.building_name,
            r.unit,
            r.room,
        ]
        label = " ".join(p for p in parts if p) or r.address_id
        out.append({"address_id": r.address_id, "label": label})
    return out


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
    if actor.role is R.MEMBER:
        member_id = actor.member_id
    total, rows = visit_queries.visit_page(
        conn,
        member_id=member_id,
        community_ids=actor.community_ids,
        start=None if period is None else period.start,
        end=None if period is None else period.end,
        limit=limit,
        offset=offset,
    )
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
    frame = visit_queries.households_frame(conn, community_ids=cids)
    visited = visit_queries.visited_households(
        conn, community_ids=cids, start=period.start, end=period.end
    )
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


def community_ids(
    conn: Connection,
    *,
    community: str | None,
    actor: Actor | None,
    subdistrict: str | None = None,
    district: str | None = None,
) -> list[int]:
    """The ids of the communities asked for — ``community``'s, a ``subdistrict``'s or a
    ``district``'s (codes), else all — within the key's scope."""
    scope = None if actor is None else actor.community_ids
    if community is not None:
        row = queries.community_row(conn, code=community)
        if scope is not None and row.id not in scope:
            # A scoped key is told another community's code is unknown, as for a wrong code.
            raise NotFound(f"no community with code {community!r}", field="community")
        return [int(row.id)]
    if subdistrict is not None or district is not None:
        ids = queries.community_ids_in(conn, subdistrict_code=subdistrict, district_code=district)
        field, code = (
            ("subdistrict", subdistrict) if subdistrict is not None else ("district", district)
        )
        if not ids:
            raise NotFound(f"no community in {field} {code!r}", field=field)
        if scope is not None and not set(ids) <= scope:
            raise Forbidden(
                f"this key is not limited to {field} {code!r} or within it: "
                "ask for its own communities",
                field=field,
            )
        return ids
    return visit_queries.community_ids(conn, within=scope)
