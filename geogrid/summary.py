"""Headline figures per community (``GET /v1/summary``, ``geogrid summary``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from geogrid.db import models, queries
from geogrid.errors import NotFound
from geogrid.periods import Period
from geogrid.rates import rate


def community_summary(conn: Connection, *, community_id: int, period: Period) -> dict[str, Any]:
    """Counts of grids, branches, members, households and requests of one community.

    Requests are selected by received date within ``period``; resolution rate = resolved ÷
    received (``geogrid.rates``).
    """
    row = queries.community_by_id(conn, community_id=community_id)
    c = queries.summary_counts(
        conn, community_id=community_id, received_from=period.lower, received_to=period.upper
    )
    by_kind = c["members_by_kind"]
    total = sum(by_kind.values())
    plan = c["plan"]
    return {
        "code": row.code,
        "name": row.name,
        "name_en": row.name_en,
        "timezone": row.timezone,
        "synthetic": bool(row.synthetic),
        "plan": None
        if plan is None
        else {"id": plan.id, "version": plan.version, "name": plan.name},
        "grids": c["grids"],
        "branches": c["branches"],
        "branches_on_grids": c["branches_on_grids"],
        "members": {
            "total": total,
            "by_kind": by_kind,
            "membership_elsewhere": total - by_kind[models.MemberKind.RESIDENT.value],
        },
        "households": c["households"],
        "residents": c["residents"],
        "responsibility_fields": c["responsibility_fields"],
        "requests": {
            "received": c["received"],
            "resolved": c["resolved"],
            "resolution_rate": rate(c["resolved"], c["received"]),
        },
    }


def summary(
    conn: Connection,
    *,
    period: Period,
    community_code: str | None = None,
    subdistrict_code: str | None = None,
    district_code: str | None = None,
) -> dict[str, Any]:
    """The summary of every community — or of one, a subdistrict's or a district's (codes) —
    with the period it covers, taken in each community's own time zone."""
    if community_code is not None:
        ids = [queries.community_row(conn, code=community_code).id]
    elif subdistrict_code is not None or district_code is not None:
        ids = queries.community_ids_in(
            conn, subdistrict_code=subdistrict_code, district_code=district_code
        )
        if not ids:
            field = "subdistrict" if subdistrict_code is not None else "district"
            code = subdistrict_code if subdistrict_code is not None else district_code
            raise NotFound(f"no community in {field} {code!r}", field=field)
    else:
        ids = [r.id for r in queries.list_communities(conn)]
    zones = queries.community_zones(conn, community_ids=ids)
    return {
        "period": period.to_dict(zones.values()),
        "communities": [
            community_summary(conn, community_id=i, period=period.in_zone(zones[i])) for i in ids
        ],
    }
