"""The one module that knows PostGIS from SpatiaLite.

Everything else in geogrid writes PostGIS function names through GeoAlchemy2. Here live the
few set-based statements that are hot enough to deserve a faster form per backend: assigning
points (households, requests) to the polygons that cover them (grids, responsibility fields).
``tests/test_assignment.py`` proves both backends give identical rows.

The edge rule
-------------
A point exactly on an edge shared by two polygons is covered by both (``ST_Covers`` is true on
the boundary). It goes to exactly one: the polygon with the **lowest sort key** — the grid
code for grids (then id), the id for responsibility fields. The same rule is applied by
``geogrid.spatial.assign_points`` in Python, so SQL and the in-memory lookup agree.

Why the shapes differ
---------------------
* PostGIS: the join is driven from the polygons (``CROSS JOIN LATERAL``) so each polygon is
  prepared once and probes the points' GiST index, ~4× faster than letting the planner probe
  the polygons' index once per point (measured, ../shared/PERF_NOTES.md). ``DISTINCT ON``
  keeps the lowest key per point.
* SpatiaLite: no GiST; a polygon probes the points' R*Tree (``idx_<table>_geom``) directly by
  its bounding box — 12× faster than SpatiaLite's ``SpatialIndex`` virtual table and orders of
  magnitude faster than no index. SQLite's documented "bare column" rule for a single
  ``min()`` aggregate keeps the lowest key per point
  (https://sqlite.org/lang_select.html#bareagg).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, text

from geogrid.db.engine import Backend, backend_of


@dataclass(frozen=True)
class CoverJoin:
    """Points of ``point_table`` matched to the polygons of ``poly_table`` covering them."""

    point_table: str
    poly_table: str
    #: SQL condition on the polygons (alias ``p``), e.g. ``p.plan_id = :plan_id``.
    poly_where: str = "1 = 1"
    #: SQL condition on the points (alias ``t``).
    point_where: str = "1 = 1"
    #: Sort key of the polygons: the lowest wins on shared edges.
    poly_key: str = "p.id"
    point_geom: str = "geom"
    poly_geom: str = "geom"


def cover_select(backend: Backend, join: CoverJoin) -> str:
    """``SELECT point_id, poly_id`` with one row per covered point, edge rule applied."""
    j = join
    if backend is Backend.POSTGIS:
        # `&&` is implied by ST_Covers but spelling it keeps the index condition visible.
        return f"""
            SELECT DISTINCT ON (t.id) t.id AS point_id, p.id AS poly_id
            FROM {j.poly_table} AS p
            CROSS JOIN LATERAL (
                SELECT t.id FROM {j.point_table} AS t
                WHERE t.{j.point_geom} && p.{j.poly_geom}
                  AND ST_Covers(p.{j.poly_geom}, t.{j.point_geom})
                  AND {j.point_where}
            ) AS t
            WHERE {j.poly_where}
            ORDER BY t.id, {j.poly_key}, p.id
        """
    return f"""
        SELECT point_id, poly_id FROM (
            SELECT t.id AS point_id, p.id AS poly_id, min({j.poly_key}) AS k
            FROM {j.poly_table} AS p
            JOIN {j.point_table} AS t ON t.id IN (
                SELECT pkid FROM idx_{j.point_table}_{j.point_geom}
                WHERE xmin <= MbrMaxX(p.{j.poly_geom}) AND xmax >= MbrMinX(p.{j.poly_geom})
                  AND ymin <= MbrMaxY(p.{j.poly_geom}) AND ymax >= MbrMinY(p.{j.poly_geom})
            )
            WHERE {j.poly_where} AND {j.point_where}
              AND ST_Covers(p.{j.poly_geom}, t.{j.point_geom})
            GROUP BY t.id
        )
    """


def _grid_join(point_table: str, point_where: str = "1 = 1") -> CoverJoin:
    return CoverJoin(
        point_table=point_table,
        poly_table="grids",
        poly_where="p.plan_id = :plan_id",
        point_where=point_where,
        poly_key="p.code",
    )


def _field_join(point_table: str, point_where: str = "1 = 1") -> CoverJoin:
    # Fields are not per plan: a field is a member's area, re-clipped when a plan changes.
    return CoverJoin(
        point_table=point_table,
        poly_table="responsibility_fields",
        poly_where="p.community_id = :community_id",
        point_where=point_where,
        poly_key="p.id",
    )


def assign_households_to_grids(conn: Connection, *, plan_id: int, community_id: int) -> int:
    """Rewrite the plan's rows of ``household_assignments`` (grid only); return the count."""
    backend = backend_of(conn.engine)
    params = {"plan_id": plan_id, "community_id": community_id}
    conn.execute(text("DELETE FROM household_assignments WHERE plan_id = :plan_id"), params)
    select = cover_select(backend, _grid_join("households", "t.community_id = :community_id"))
    result = conn.execute(
        text(
            f"INSERT INTO household_assignments (plan_id, household_id, grid_id) "
            f"SELECT :plan_id, point_id, poly_id FROM ({select}) AS a"
        ),
        params,
    )
    return int(result.rowcount or 0)


def assign_households_to_fields(conn: Connection, *, plan_id: int, community_id: int) -> int:
    """Set ``field_id`` on the plan's household assignments; return households in a field."""
    backend = backend_of(conn.engine)
    select = cover_select(backend, _field_join("households", "t.community_id = :community_id"))
    params = {"plan_id": plan_id, "community_id": community_id}
    conn.execute(
        text("UPDATE household_assignments SET field_id = NULL WHERE plan_id = :plan_id"), params
    )
    if backend is Backend.POSTGIS:
        stmt = f"""
            UPDATE household_assignments AS a SET field_id = f.poly_id
            FROM ({select}) AS f
            WHERE a.plan_id = :plan_id AND a.household_id = f.point_id
        """
    else:
        stmt = f"""
            UPDATE household_assignments SET field_id = f.poly_id
            FROM ({select}) AS f
            WHERE household_assignments.plan_id = :plan_id
              AND household_assignments.household_id = f.point_id
        """
    result = conn.execute(text(stmt), params)
    return int(result.rowcount or 0)


def cover_pairs(
    conn: Connection,
    *,
    target: str,
    point_table: str,
    point_where: str,
    params: Mapping[str, object],
) -> dict[int, int]:
    """``{point_id: polygon_id}`` for points of ``point_table`` under ``target``.

    ``target`` is ``"grids"`` (of ``:plan_id``) or ``"fields"`` (of ``:community_id``). Meant for
    small point sets (requests); households use the set-based functions above.
    """
    backend = backend_of(conn.engine)
    join = (_grid_join if target == "grids" else _field_join)(point_table, point_where)
    rows = conn.execute(text(cover_select(backend, join)), params).all()
    return {int(r[0]): int(r[1]) for r in rows}
