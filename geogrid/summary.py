"""Headline figures per community (``GET /v1/summary``, ``geogrid summary``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from geogrid.db import models, queries
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
    conn: Connection, *, period: Period, community_code: str | None = None
) -> dict[str, Any]:
    """The summary of every community (or one), with the period it covers."""
    if community_code is not None:
        ids = [queries.community_row(conn, code=community_code).id]
    else:
        ids = [r.id for r in queries.list_communities(conn)]
    return {
        "period": period.to_dict(),
        "communities": [community_summary(conn, community_id=i, period=period) for i in ids],
    }
