"""Tiny hand-drawn communities whose right answers are obvious."""

from __future__ import annotations

from typing import Any

from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import Connection

from geogrid.db import models as m
from geogrid.db import queries as q

#: A 2×2 km community near Huizhou split into four 1×1 grids (in degrees, for simplicity of
#: the shared edges: x = 114.40 + [0, 0.02], y = 23.10 + [0, 0.02]).
X0, Y0, D = 114.40, 23.10, 0.01


def square_grids() -> list[tuple[str, Any]]:
    """Codes numbered west→east, north→south: 001 NW, 002 NE, 003 SW, 004 SE."""
    return [
        ("441302011099001", box(X0, Y0 + D, X0 + D, Y0 + 2 * D)),
        ("441302011099002", box(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D)),
        ("441302011099003", box(X0, Y0, X0 + D, Y0 + D)),
        ("441302011099004", box(X0 + D, Y0, X0 + 2 * D, Y0 + D)),
    ]


def make_community(
    conn: Connection, *, code: str = "441302011099"
) -> tuple[int, int, dict[str, int]]:
    """Insert the community with an active plan of four square grids; return ids."""
    cid = q.insert_returning_ids(
        conn,
        m.Community,
        [
            {
                "code": code,
                "name": "测试社区",
                "boundary": q.geom_value(MultiPolygon([box(X0, Y0, X0 + 2 * D, Y0 + 2 * D)])),
                "created_at": m.utcnow(),
            }
        ],
    )[0]
    plan_id = q.create_plan(conn, community_id=cid, name="test plan")
    grids = square_grids()
    ids = q.insert_returning_ids(
        conn,
        m.Grid,
        [
            {"plan_id": plan_id, "code": c, "name": c[-3:], "geom": q.geom_value(MultiPolygon([g]))}
            for c, g in grids
        ],
    )
    q.mark_plan_active(conn, community_id=cid, plan_id=plan_id)
    return cid, plan_id, dict(zip([c for c, _ in grids], ids, strict=True))


def add_households(
    conn: Connection, community_id: int, points: list[tuple[float, float]]
) -> list[int]:
    return q.insert_returning_ids(
        conn,
        m.Household,
        [
            {
                "community_id": community_id,
                "address_id": f"T-{i:05d}",
                "size": 1,
                "geom": q.geom_value(Point(x, y)),
            }
            for i, (x, y) in enumerate(points)
        ],
    )
