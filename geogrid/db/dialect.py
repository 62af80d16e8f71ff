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

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import ColumnElement, Connection, any_, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute

from geogrid.db.engine import Backend, backend_of, read_only


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
    # SQLite's planner must not choose the loop order here. Left to itself it put the points
    # outside (using an automatic index on `t.community_id`) and ran the R*Tree subquery once
    # per (point, polygon) pair: 106 s for 20,000 households into 30,000 fields, against
    # 0.13 s this way. `CROSS JOIN` keeps the polygons as the outer loop (SQLite's documented
    # way to fix join order) and `NOT INDEXED` keeps it from indexing the points by anything
    # but their rowid, which is what the R*Tree's pkids are
    # (https://sqlite.org/optoverview.html#crossjoin, https://sqlite.org/lang_indexedby.html).
    return f"""
        SELECT point_id, poly_id FROM (
            SELECT t.id AS point_id, p.id AS poly_id, min({j.poly_key}) AS k
            FROM {j.poly_table} AS p
            CROSS JOIN {j.point_table} AS t NOT INDEXED
            WHERE t.id IN (
                SELECT pkid FROM idx_{j.point_table}_{j.point_geom}
                WHERE xmin <= MbrMaxX(p.{j.poly_geom}) AND xmax >= MbrMinX(p.{j.poly_geom})
                  AND ymin <= MbrMaxY(p.{j.poly_geom}) AND ymax >= MbrMinY(p.{j.poly_geom})
            )
              AND {j.poly_where} AND {j.point_where}
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


_ASSIGNMENT_COLUMNS = "(plan_id, household_id, grid_id, field_id)"


def assign_households_to_grids(conn: Connection, *, plan_id: int, community_id: int) -> int:
    """Rewrite the plan's rows of ``household_assignments`` (grid only); return the count.

    PostGIS, 1M households into 10,000 grids (benchmarks/README.md): finding the pairs and
    applying the edge rule take ~1.2 s with parallel workers; writing them is what costs.
    ``INSERT … SELECT`` into ``household_assignments`` fires three foreign-key triggers per
    row (plan, household, grid: ~3 µs each, ~9 of the ~11 s). When the table is LIST-
    partitioned by ``plan_id`` (migration 0004, benchmarks/README.md) the plan's rows are
    built with ``CREATE TABLE AS`` and attached as its partition instead: the foreign keys are
    then checked by one join each, ~2 s in all.
    """
    backend = backend_of(conn.engine)
    params = {"plan_id": plan_id, "community_id": community_id}
    select = cover_select(backend, _grid_join("households", "t.community_id = :community_id"))
    rows = f"""
        SELECT CAST(:plan_id AS integer) AS plan_id, point_id AS household_id,
               poly_id AS grid_id, CAST(NULL AS integer) AS field_id
        FROM ({select}) AS a
    """
    if backend is Backend.POSTGIS:
        with _pg_bulk_settings(conn, community_id=community_id):
            if _is_partitioned(conn, "household_assignments"):
                return _replace_plan_partition(conn, plan_id=plan_id, rows=rows, params=params)
            conn.execute(text("DELETE FROM household_assignments WHERE plan_id = :plan_id"), params)
            result = conn.execute(
                text(f"INSERT INTO household_assignments {_ASSIGNMENT_COLUMNS} {rows}"), params
            )
            return int(result.rowcount or 0)
    conn.execute(text("DELETE FROM household_assignments WHERE plan_id = :plan_id"), params)
    result = conn.execute(
        text(f"INSERT INTO household_assignments {_ASSIGNMENT_COLUMNS} {rows}"), params
    )
    return int(result.rowcount or 0)


def _pg_field_pairs(
    conn: Connection, select: str, params: Mapping[str, object], *, indexed: bool = False
) -> None:
    """``pg_temp.geogrid_field_pairs``: the rows of the fields' cover ``select`` (point_id,
    poly_id), analysed, with an index on point_id if ``indexed``; dropped at commit at the
    latest. PostGIS only."""
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.geogrid_field_pairs"))
    conn.execute(
        text(f"CREATE TEMPORARY TABLE geogrid_field_pairs ON COMMIT DROP AS {select}"), params
    )
    if indexed:
        conn.execute(
            text("CREATE INDEX ON pg_temp.geogrid_field_pairs (point_id) INCLUDE (poly_id)")
        )
    conn.execute(text("ANALYZE pg_temp.geogrid_field_pairs"))


def assign_households_to_fields(conn: Connection, *, plan_id: int, community_id: int) -> int:
    """Set ``field_id`` on the plan's household assignments; return households in a field.

    Only rows whose field changes are written (a field newly covering, no longer covering or
    replaced). The earlier form first set every row's ``field_id`` to NULL and then set it
    again: two full rewrites of the plan's rows, 17 s for 1M households on PostGIS; this one
    writes each changed row once (~6.7 s on a first run, where ~800,000 rows gain a field and
    ~2.4 s go to the foreign-key check on ``field_id``; ~2.6 s on a re-run that changes
    nothing). SpatiaLite: ~3 s for 1M.
    """
    backend = backend_of(conn.engine)
    select = cover_select(backend, _field_join("households", "t.community_id = :community_id"))
    params = {"plan_id": plan_id, "community_id": community_id}
    # The new field of each of the plan's rows (NULL when no field covers it), then only the
    # rows where it differs. `IS NOT` is SQLite's null-safe "is distinct from".
    if backend is Backend.POSTGIS:
        # The pairs go into a temporary table first: CREATE TABLE AS runs the join on
        # parallel workers, an UPDATE never does (1M households: ~1 s instead of ~2.5 s).
        # Then two UPDATEs instead of one over a self-join: fields gone first (on a first run
        # no row has a field yet, so it only scans), then fields set or changed. Nested loops
        # are ruled out: with statistics that still described the plan's rows as few (just
        # written, not yet analysed) the planner chose one and the UPDATE of 1M rows ran for
        # over 10 minutes instead of seconds.
        with _pg_bulk_settings(conn, community_id=community_id):
            _pg_field_pairs(conn, select, params)
            with _pg_local(conn, {"enable_nestloop": "off"}):
                conn.execute(
                    text(
                        """
                        UPDATE household_assignments AS a SET field_id = NULL
                        WHERE a.plan_id = :plan_id AND a.field_id IS NOT NULL
                          AND NOT EXISTS (
                              SELECT FROM pg_temp.geogrid_field_pairs AS f
                              WHERE f.point_id = a.household_id
                          )
                        """
                    ),
                    params,
                )
                conn.execute(
                    text(
                        """
                        UPDATE household_assignments AS a SET field_id = f.poly_id
                        FROM pg_temp.geogrid_field_pairs AS f
                        WHERE a.plan_id = :plan_id AND a.household_id = f.point_id
                          AND a.field_id IS DISTINCT FROM f.poly_id
                        """
                    ),
                    params,
                )
            conn.execute(text("DROP TABLE pg_temp.geogrid_field_pairs"))
    else:
        # The pairs go into an indexed temporary table first. Joined as a subquery, SQLite
        # scanned the materialised pairs once per row of a plan whose rows were just written
        # and not yet analysed (EXPLAIN QUERY PLAN: `SCAN (subquery-2) LEFT-JOIN`): quadratic,
        # 117 s at 100k households (benchmarks/README.md, planning). With the index each row
        # costs two lookups whatever the statistics say.
        conn.execute(text("DROP TABLE IF EXISTS temp.geogrid_field_pairs"))
        conn.execute(text(f"CREATE TEMP TABLE geogrid_field_pairs AS {select}"), params)
        conn.execute(
            text("CREATE INDEX temp.ix_geogrid_field_pairs ON geogrid_field_pairs (point_id)")
        )
        new_field = (
            "(SELECT f.poly_id FROM temp.geogrid_field_pairs AS f "
            "WHERE f.point_id = household_assignments.household_id)"
        )
        conn.execute(
            text(
                f"UPDATE household_assignments SET field_id = {new_field} "
                f"WHERE plan_id = :plan_id AND field_id IS NOT {new_field}"
            ),
            params,
        )
        conn.execute(text("DROP TABLE temp.geogrid_field_pairs"))
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM household_assignments "
                "WHERE plan_id = :plan_id AND field_id IS NOT NULL"
            ),
            params,
        ).scalar_one()
    )


def assign_households(conn: Connection, *, plan_id: int, community_id: int) -> tuple[int, int]:
    """Grid and field of every household under the plan; return (in grids, in fields).

    The same rows as :func:`assign_households_to_grids` then
    :func:`assign_households_to_fields`. When ``household_assignments`` is partitioned by
    plan (PostGIS, migration 0004) the plan's partition is built once with both columns
    — 1M households: ~3 s, against ~2 s + ~7 s for the two steps, whose second step rewrites
    800,000 rows with a foreign-key check each. Otherwise it is exactly those two calls.
    """
    backend = backend_of(conn.engine)
    if backend is Backend.POSTGIS and _is_partitioned(conn, "household_assignments"):
        params = {"plan_id": plan_id, "community_id": community_id}
        where = "t.community_id = :community_id"
        grids = cover_select(backend, _grid_join("households", where))
        fields = cover_select(backend, _field_join("households", where))
        # The field pairs go into an indexed temporary table first; the partition is then
        # the grid join with a lookup of each household's field. Joining the two cover
        # selects directly (one statement) depended on the planner's guesses: with the
        # fields' select under a nested loop it ran 12–21 s for 20,000 households instead of
        # ~1 s (benchmarks/README.md, assignment). With the index the worst plan left is one
        # index probe per household.
        with _pg_bulk_settings(conn, community_id=community_id):
            _pg_field_pairs(conn, fields, params, indexed=True)
            rows = f"""
                SELECT CAST(:plan_id AS integer) AS plan_id, g.point_id AS household_id,
                       g.poly_id AS grid_id, f.poly_id AS field_id
                FROM ({grids}) AS g
                LEFT JOIN pg_temp.geogrid_field_pairs AS f ON f.point_id = g.point_id
            """
            in_grids = _replace_plan_partition(conn, plan_id=plan_id, rows=rows, params=params)
            conn.execute(text("DROP TABLE pg_temp.geogrid_field_pairs"))
        in_fields = conn.execute(
            text(
                "SELECT count(*) FROM household_assignments "
                "WHERE plan_id = :plan_id AND field_id IS NOT NULL"
            ),
            params,
        ).scalar_one()
        return in_grids, int(in_fields)
    return (
        assign_households_to_grids(conn, plan_id=plan_id, community_id=community_id),
        assign_households_to_fields(conn, plan_id=plan_id, community_id=community_id),
    )


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


# --- PostGIS bulk writing ----------------------------------------------------------------
#
# Figures: 1M households, 10,000 grids, PostgreSQL 15 + PostGIS 3.3 on 2 vCPUs
# (benchmarks/README.md has the run).

#: Settings for the bulk statements, local to the transaction and restored afterwards.
_PG_BULK_SETTINGS = {
    # The DISTINCT ON sort of 1M (household, grid) pairs spills to disk at the default 4 MB.
    "work_mem": "256MB",
    # Primary-key builds and ATTACH PARTITION's foreign-key checks run with this.
    "maintenance_work_mem": "256MB",
    # JIT compiles ~50 ms of code per process (EXPLAIN ANALYZE) for plans whose time goes
    # into PostGIS's C functions, which it cannot speed up.
    "jit": "off",
}

#: Added for a community of many households. The planner guesses ~1 % of the rows an
#: ST_Covers join returns, so it never thinks a parallel plan worth starting; with these zero
#: costs CREATE TABLE AS runs the join on max_parallel_workers_per_gather workers (server
#: setting, 2 by default): 1M households, 1.3 → 0.8 s. INSERT … SELECT and UPDATE never run
#: in parallel in PostgreSQL 15.
_PG_PARALLEL_SETTINGS = {
    "parallel_setup_cost": "0",
    "parallel_tuple_cost": "0",
    "min_parallel_table_scan_size": "0",
}

#: Fewer households than this and the joins run serially. Each parallel gather launches its
#: workers afresh (~29 ms for two here), and with no setup cost the planner may put the
#: gather *inside* a nested loop over the polygons: a district's import assigned 200
#: communities of ~2,500 households with a launch per field, 0.4–0.9 s a community instead
#: of ~1 ms (EXPLAIN ANALYZE; benchmarks/README.md, "Imports"). A serial join of 100,000
#: households takes ~0.13 s, about what two workers save at that size.
_PARALLEL_MIN_HOUSEHOLDS = 100_000


@contextmanager
def _pg_local(conn: Connection, settings: Mapping[str, str]) -> Iterator[None]:
    """Apply ``settings`` for the statements in the block, then restore the previous values.

    ``set_config(…, true)`` is ``SET LOCAL``: gone at the end of the transaction in any case
    (and on an error, which aborts it); restoring them at the end of the block keeps them
    away from the caller's other queries later in the same transaction.
    """
    names = list(settings)
    old = conn.execute(text("SELECT " + ", ".join(f"current_setting('{n}')" for n in names))).one()
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    yield
    for name, value in zip(names, old, strict=True):
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


def _pg_bulk_settings(conn: Connection, *, community_id: int) -> AbstractContextManager[None]:
    """The bulk settings for the community's joins, parallel ones if it is large enough."""
    # Counting stops at the threshold: a bounded index scan, not a count of a city.
    many = conn.execute(
        text("SELECT count(*) FROM (SELECT FROM households WHERE community_id = :c LIMIT :n) AS h"),
        {"c": community_id, "n": _PARALLEL_MIN_HOUSEHOLDS},
    ).scalar_one()
    if many >= _PARALLEL_MIN_HOUSEHOLDS:
        return _pg_local(conn, {**_PG_BULK_SETTINGS, **_PG_PARALLEL_SETTINGS})
    return _pg_local(conn, _PG_BULK_SETTINGS)


def _is_partitioned(conn: Connection, table: str) -> bool:
    """Whether ``table`` is a partitioned table (PostGIS only)."""
    return bool(
        conn.execute(
            text("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
        ).scalar()
    )


def _replace_plan_partition(
    conn: Connection, *, plan_id: int, rows: str, params: Mapping[str, object]
) -> int:
    """Make the result of ``rows`` the partition of ``household_assignments`` for ``plan_id``.

    ``rows`` selects (plan_id, household_id, grid_id, field_id). Why this shape (1M rows):

    * ``CREATE TABLE AS`` can use parallel workers and fires no triggers (~1.2 s with the
      edge rule's DISTINCT ON); the NOT NULL and CHECK constraints are verified in one scan
      (0.05 s), the primary key is built from sorted input (0.2 s).
    * ``ATTACH PARTITION`` then checks each foreign key with one join (0.6 s for the four),
      where ``INSERT`` would run a trigger per row and key (~9 s). The CHECK spares it a
      scan for the partition bound. It locks the parent only in SHARE UPDATE EXCLUSIVE mode:
      readers and writers of other plans go on.
    * Re-running a plan detaches and drops its old partition (instead of deleting 1M rows);
      DETACH takes ACCESS EXCLUSIVE on the parent until the transaction ends.
    """
    pid = int(plan_id)  # goes into DDL, which takes no bind parameters
    part, new = f"household_assignments_p{pid}", f"household_assignments_p{pid}_new"
    conn.execute(text(f"DROP TABLE IF EXISTS {new}"))
    count = conn.execute(text(f"CREATE TABLE {new} AS {rows}"), params).rowcount
    conn.execute(
        text(
            f"ALTER TABLE {new} ALTER COLUMN plan_id SET NOT NULL, "
            "ALTER COLUMN household_id SET NOT NULL, ALTER COLUMN grid_id SET NOT NULL, "
            f"ADD CONSTRAINT {new}_bound CHECK (plan_id = {pid})"
        )
    )
    # The plan's partition is found by its name (partitions are named so since migration
    # 0004), through the catalogues' oid indexes. Searching by bound instead evaluated
    # pg_get_expr on every relation of the database: 48 ms a plan with a city's 2,600
    # relations, 16 s over its 1,000 communities (benchmarks/city_db.py). A partition of
    # this bound under another name would make the ATTACH below fail, not pass silently.
    old = conn.execute(
        text(
            "SELECT c.oid::regclass::text FROM pg_class AS c "
            "JOIN pg_inherits AS i ON i.inhrelid = c.oid "
            "WHERE c.oid = to_regclass(:name) "
            "AND i.inhparent = 'household_assignments'::regclass "
            "AND pg_get_expr(c.relpartbound, c.oid) = :bound"
        ),
        {"bound": f"FOR VALUES IN ({pid})", "name": part},
    ).scalar()
    if old is not None:
        conn.execute(text(f"ALTER TABLE household_assignments DETACH PARTITION {old}"))
        conn.execute(text(f"DROP TABLE {old}"))
    conn.execute(text(f"ALTER TABLE {new} RENAME TO {part}"))
    conn.execute(
        text(f"ALTER TABLE {part} ADD CONSTRAINT {part}_pkey PRIMARY KEY (plan_id, household_id)")
    )
    # Each foreign key is checked by one anti-join of the new rows with the referenced
    # table. The planner hashes households (0.5 s for 1M); the rows come sorted by
    # household_id, so a merge join is cheaper: the four checks 0.65 → 0.38 s.
    with _pg_local(conn, {"enable_hashjoin": "off"}):
        conn.execute(
            text(f"ALTER TABLE household_assignments ATTACH PARTITION {part} FOR VALUES IN ({pid})")
        )
    conn.execute(text(f"ALTER TABLE {part} DROP CONSTRAINT {new}_bound"))
    return int(count or 0)


# --- Bulk loading ------------------------------------------------------------------------

#: Binary COPY framing (https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.4).
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PGCOPY_TRAILER = b"\xff\xff"
#: EWKB of a 2D point with an SRID: little-endian, type 1 | 0x20000000 (has SRID).
_EWKB_POINT_SRID = 0x20000001


def copy_households(
    conn: Connection,
    *,
    community_id: int,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    address_ids: npt.ArrayLike,
    sizes: npt.ArrayLike | None = None,
    registered: npt.ArrayLike | None = None,
    srid: int = 4326,
) -> int:
    """Append households (door points ``x``, ``y`` in ``srid``) in bulk; return the count.

    PostGIS: one binary ``COPY`` whose rows are built with numpy, the point as EWKB (which
    ``geometry``'s binary input reads) — 1M rows in ~1 s of numpy and ~5 s of COPY, of which
    ~2 s is the foreign-key trigger on ``community_id`` and ~1.5 s the unique index on
    ``address_id`` (``GeoDataFrame.to_postgis`` needs 16 s, PERF_NOTES). The spatial index is
    maintained row by row: for a large load into a small table, call
    :func:`drop_spatial_index` first and :func:`create_spatial_index` after (a sorted GiST
    build is several times faster). SpatiaLite: ``executemany`` with ``MakePoint``.

    Ids come from the table's sequence; address ids must be 1–64 characters (the column).
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(xs)
    addr = np.char.encode(np.asarray(address_ids, dtype=np.str_), "utf-8")
    lengths = np.char.str_len(addr)
    if len(ys) != n or len(addr) != n:
        raise ValueError(f"x, y and address_ids differ in length: {n}, {len(ys)}, {len(addr)}")
    if n == 0:
        return 0
    if lengths.min() < 1 or lengths.max() > 64:
        raise ValueError("address ids must be 1 to 64 bytes long")
    size = np.ones(n, np.int64) if sizes is None else np.asarray(sizes, dtype=np.int64)
    reg = np.zeros(n, bool) if registered is None else np.asarray(registered, dtype=bool)
    if backend_of(conn.engine) is Backend.SPATIALITE:
        conn.exec_driver_sql(
            "INSERT INTO households (community_id, address_id, size, registered, geom) "
            f"VALUES (?, ?, ?, ?, MakePoint(?, ?, {int(srid)}))",
            list(
                zip(
                    [int(community_id)] * n,
                    np.char.decode(addr, "utf-8").tolist(),
                    size.tolist(),
                    reg.tolist(),
                    xs.tolist(),
                    ys.tolist(),
                    strict=True,
                )
            ),
        )
        return n
    # Each row: field count, then (length, value) per field, big-endian; the point is EWKB
    # in its own (little) byte order. address_id goes last, as it is the only variable part.
    fixed = np.dtype(
        [
            ("nfields", ">i2"),
            ("l_community", ">i4"), ("community", ">i4"),
            ("l_size", ">i4"), ("size", ">i4"),
            ("l_registered", ">i4"), ("registered", "u1"),
            ("l_geom", ">i4"), ("byte_order", "u1"), ("type", "<u4"), ("srid", "<i4"),
            ("x", "<f8"), ("y", "<f8"),
            ("l_address", ">i4"),
        ]
    )  # fmt: skip
    rows = np.empty(n, fixed)
    rows["nfields"] = 5
    rows["l_community"], rows["community"] = 4, community_id
    rows["l_size"], rows["size"] = 4, size
    rows["l_registered"], rows["registered"] = 1, reg
    rows["l_geom"], rows["byte_order"], rows["type"] = 25, 1, _EWKB_POINT_SRID
    rows["srid"], rows["x"], rows["y"] = srid, xs, ys
    rows["l_address"] = lengths
    if lengths.min() == lengths.max():
        # One width: a single structured array is the whole stream (~0.1 s for 1M).
        whole = np.empty(n, [("fixed", fixed), ("address", f"S{lengths[0]}")])
        whole["fixed"], whole["address"] = rows, addr
        body = whole.tobytes()
    else:
        # Mixed widths: join per row. numpy's bytes strip trailing NULs, but each fixed part
        # ends with the address length (1–64, never 0) and text holds no NUL.
        body = b"".join(np.char.add(rows.view(f"S{fixed.itemsize}"), addr).tolist())
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY households (community_id, size, registered, geom, address_id) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.write(_PGCOPY_HEADER)
        view = memoryview(body)
        for start in range(0, len(body), 1 << 24):
            copy.write(view[start : start + (1 << 24)])
        copy.write(_PGCOPY_TRAILER)
    return n


def load_rows(
    conn: Connection,
    *,
    table: str,
    columns: Mapping[str, Sequence[object]],
    geometry: Collection[str] = (),
    srid: int = 4326,
) -> int:
    """Append rows given column by column (``geometry`` columns hold shapely geometries).

    PostGIS: one text ``COPY``; psycopg's C dumper writes each value as the column's text
    input, geometries as hex EWKB made in one vectorised call per column (``geometry_in``
    reads it). Why: the importer wrote 500,000 households through SQLAlchemy's batched
    ``INSERT … RETURNING`` in ~137 s, most of it psycopg parsing 1,000-row statements of
    ~14,000 placeholders in Python; ``COPY`` of the same rows takes a few seconds and fires
    the statement-level ``data_versions`` trigger once (benchmarks/README.md, "Imports").
    SpatiaLite: one ``executemany`` of ``INSERT`` with ``GeomFromWKB`` (no ``RETURNING``,
    which SQLite runs row by row). Ids come from the table's sequence, as for ``INSERT``.
    """
    names = list(columns)
    if not names:
        return 0
    n = len(columns[names[0]])
    postgis = backend_of(conn.engine) is Backend.POSTGIS
    values: list[Sequence[object]] = []
    for name in names:
        column = columns[name]
        if name in geometry:
            shapes = np.asarray(column, dtype=object)
            column = (
                shapely.to_wkb(shapely.set_srid(shapes, srid), hex=True, include_srid=True)
                if postgis
                else shapely.to_wkb(shapes)
            ).tolist()
        values.append(column)
    if postgis:
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in zip(*values, strict=True):
                copy.write_row(row)
        return n
    marks = ", ".join(f"GeomFromWKB(?, {int(srid)})" if c in geometry else "?" for c in names)
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
        list(zip(*values, strict=True)),
    )
    return n


#: Values per ``IN`` list on SQLite, which caps a statement's parameters (999 before 3.32).
_IN_CHUNK = 900


def in_values(
    conn: Connection, column: ColumnElement[Any] | QueryableAttribute[Any], values: Iterable[object]
) -> list[ColumnElement[bool]]:
    """Conditions that together select the rows whose ``column`` is among ``values`` (run one
    statement per condition). PostGIS: one ``= ANY(array)`` with the values as a single bind
    parameter — psycopg parses an ``IN`` list of 900 placeholders in Python (~8 ms a
    statement: 5.9 s of a 500,000-household import, benchmarks/README.md, "Imports").
    SpatiaLite: ``IN`` lists of 900."""
    items = list(values)
    if not items:
        return []
    if backend_of(conn.engine) is Backend.POSTGIS:
        return [column == any_(bindparam(None, items, type_=ARRAY(column.type)))]
    return [column.in_(items[i : i + _IN_CHUNK]) for i in range(0, len(items), _IN_CHUNK)]


def drop_spatial_index(conn: Connection, table: str, column: str = "geom") -> None:
    """Drop ``idx_<table>_<column>`` before a bulk load (see :func:`copy_households`)."""
    if backend_of(conn.engine) is Backend.POSTGIS:
        conn.execute(text(f"DROP INDEX IF EXISTS idx_{table}_{column}"))
    else:
        conn.execute(text("SELECT DisableSpatialIndex(:t, :c)"), {"t": table, "c": column})
        conn.execute(text(f"DROP TABLE IF EXISTS idx_{table}_{column}"))


def create_spatial_index(conn: Connection, table: str, column: str = "geom") -> None:
    """(Re)build ``idx_<table>_<column>`` and refresh the planner's statistics.

    PostGIS builds a GiST from sorted input when the operator class supports it (PostGIS
    ≥ 3.1 on PostgreSQL ≥ 14): ~1.5 s for 1M points. ANALYZE matters as much: with no
    statistics the planner may not use the index for the assignment's joins.
    """
    if backend_of(conn.engine) is Backend.POSTGIS:
        conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS idx_{table}_{column} ON {table} USING gist ({column})"
            )
        )
    else:
        conn.execute(text("SELECT CreateSpatialIndex(:t, :c)"), {"t": table, "c": column})
    conn.execute(text(f"ANALYZE {table}"))


def version_trigger_ddl(backend: Backend, counter: str, table: str) -> list[str]:
    """DDL of the triggers that bump ``data_versions[counter]`` when ``table`` changes.

    PostgreSQL fires once per statement (cheap for bulk loads); SQLite has only row triggers,
    so it bumps once per row — about a microsecond each, acceptable for imports.
    """
    bump = f"UPDATE data_versions SET version = version + 1 WHERE name = '{counter}'"
    if backend is Backend.POSTGIS:
        return [
            f"CREATE TRIGGER trg_{table}_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION geogrid_bump_version('{counter}')"
        ]
    return [
        f"CREATE TRIGGER trg_{table}_{op.lower()}_version AFTER {op} ON {table} BEGIN {bump}; END"
        for op in ("INSERT", "UPDATE", "DELETE")
    ]


#: PostgreSQL's trigger function (statement level; the counter name is the trigger argument).
PG_BUMP_FUNCTION = """
CREATE OR REPLACE FUNCTION geogrid_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_versions SET version = version + 1 WHERE name = TG_ARGV[0];
    RETURN NULL;
END
$$
"""


def drop_version_trigger_ddl(backend: Backend, table: str) -> list[str]:
    if backend is Backend.POSTGIS:
        return [f"DROP TRIGGER IF EXISTS trg_{table}_version ON {table}"]
    return [
        f"DROP TRIGGER IF EXISTS trg_{table}_{op}_version" for op in ("insert", "update", "delete")
    ]


# --- per-community change counters (migration 0013) ----------------------------------------
#
# The same tables as ``data_versions`` bump ``community_versions`` of the communities whose
# rows changed, in the same statement, so the lookup service rebuilds one community of a
# city (~1,000) instead of all of them. PostgreSQL: statement-level triggers with transition
# tables (one per event: PostgreSQL refuses transition tables on a trigger of several
# events), so a COPY of 500,000 households bumps each community once, not once per row;
# TRUNCATE has no transition table and bumps every community. SQLite has only row triggers:
# one upsert per changed row, as its ``data_versions`` triggers do.

#: How a changed row names its community, per table (``{rows}``: the changed rows); tables
#: not listed hold ``community_id`` themselves.
_COMMUNITY_OF: dict[str, str] = {
    "communities": "SELECT r.id AS community_id FROM {rows} r",
    "grids": "SELECT p.community_id FROM {rows} r JOIN boundary_plans p ON p.id = r.plan_id",
    "branch_grids": "SELECT b.community_id FROM {rows} r JOIN branches b ON b.id = r.branch_id",
    "party_groups": "SELECT b.community_id FROM {rows} r JOIN branches b ON b.id = r.branch_id",
}
#: The same for one row of a SQLite row trigger (``{row}``: NEW or OLD).
_COMMUNITY_OF_ROW: dict[str, str] = {
    "communities": "{row}.id",
    "grids": "(SELECT community_id FROM boundary_plans WHERE id = {row}.plan_id)",
    "branch_grids": "(SELECT community_id FROM branches WHERE id = {row}.branch_id)",
    "party_groups": "(SELECT community_id FROM branches WHERE id = {row}.branch_id)",
}

#: PostgreSQL's function: ``TG_ARGV[0]`` the counter, ``TG_ARGV[1]`` a query of the changed
#: rows' community ids (over the transition tables).
PG_BUMP_COMMUNITY_FUNCTION = """
CREATE OR REPLACE FUNCTION geogrid_bump_community_versions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('UPDATE community_versions SET %1$I = %1$I + 1', TG_ARGV[0]);
    ELSE
        EXECUTE format(
            'INSERT INTO community_versions AS v (community_id, %1$I) '
            'SELECT DISTINCT community_id, 1 FROM (%2$s) AS c WHERE community_id IS NOT NULL '
            'ON CONFLICT (community_id) DO UPDATE SET %1$I = v.%1$I + 1',
            TG_ARGV[0], TG_ARGV[1]);
    END IF;
    RETURN NULL;
END
$$
"""


def community_version_trigger_ddl(backend: Backend, counter: str, table: str) -> list[str]:
    """DDL of the triggers that bump ``community_versions[…][counter]`` when ``table``
    changes (of the communities its changed rows belong to)."""
    if backend is Backend.POSTGIS:
        of = _COMMUNITY_OF.get(table, "SELECT r.community_id FROM {rows} r")
        queries = {
            "INSERT": ("REFERENCING NEW TABLE AS changed", of.format(rows="changed")),
            "UPDATE": (
                "REFERENCING OLD TABLE AS changed_before NEW TABLE AS changed",
                f"{of.format(rows='changed')} UNION {of.format(rows='changed_before')}",
            ),
            "DELETE": ("REFERENCING OLD TABLE AS changed", of.format(rows="changed")),
        }
        ddl = [
            f"CREATE TRIGGER trg_{table}_community_{op.lower()} AFTER {op} ON {table} "
            f"{referencing} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION geogrid_bump_community_versions('{counter}', '{query}')"
            for op, (referencing, query) in queries.items()
        ]
        ddl.append(
            f"CREATE TRIGGER trg_{table}_community_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION geogrid_bump_community_versions('{counter}')"
        )
        return ddl
    of_row = _COMMUNITY_OF_ROW.get(table, "{row}.community_id")

    def bump(row: str, unless: str | None = None) -> str:
        community = of_row.format(row=row)
        other = "" if unless is None else f" AND c IS NOT {of_row.format(row=unless)}"
        return (
            f"INSERT INTO community_versions (community_id, {counter}) "
            f"SELECT c, 1 FROM (SELECT {community} AS c) WHERE c IS NOT NULL{other} "
            f"ON CONFLICT (community_id) DO UPDATE SET {counter} = {counter} + 1"
        )

    bodies = {
        "INSERT": [bump("NEW")],
        "UPDATE": [bump("NEW"), bump("OLD", unless="NEW")],
        "DELETE": [bump("OLD")],
    }
    return [
        f"CREATE TRIGGER trg_{table}_community_{op.lower()} AFTER {op} ON {table} "
        f"BEGIN {'; '.join(body)}; END"
        for op, body in bodies.items()
    ]


def drop_community_version_trigger_ddl(backend: Backend, table: str) -> list[str]:
    ops = ("insert", "update", "delete") + (("truncate",) if backend is Backend.POSTGIS else ())
    return [
        f"DROP TRIGGER IF EXISTS trg_{table}_community_{op}"
        + (f" ON {table}" if backend is Backend.POSTGIS else "")
        for op in ops
    ]


# --- what the triggers keep: the audit log and the request history ------------------------
#
# The audit log (``audit_log``, migration 0011) takes INSERTs only. Its triggers refuse every
# UPDATE, and every DELETE of an entry that the prune has not been permitted to remove: a
# DELETE goes through only for an entry older than the ``before`` of an ``audit_prune`` row
# of ``privacy_permits``, which ``geogrid.audit.prune`` writes and removes again inside its
# own transaction (an uncommitted row: no other transaction ever sees it, on either backend).
# So the application has one way out of the log — the prune of entries older than the kept
# period — and an accidental ``DELETE FROM audit_log`` or ``UPDATE`` (a bug, a hand-typed
# statement) fails.
#
# The request history (``request_events``) refuses UPDATE since migration 0003: a transition
# is never edited. The one exception, since 0011, is an erasure of personal data
# (``geogrid.retention``, ``geogrid.person``) under an ``erase`` permit: it may clear or
# scrub an event's ``note`` and take a person's name out of its ``actor`` label; every other
# column must stay as it was.
#
# What the triggers do not stop is someone who drops them: they guard against the
# application and mistakes, not against the database's owner (that is the roles'
# privileges). One rule on both backends, tested alike (tests/test_audit.py).

AUDIT_APPEND_ONLY_MESSAGE = (
    "audit_log is append-only: entries are never changed, and removed only by the prune of "
    "entries older than the kept period (geogrid audit prune)"
)
EVENTS_APPEND_ONLY_MESSAGE = (
    "request events are never edited (request_events is append-only): only an erasure of "
    "personal data clears a note or a name"
)

#: PostgreSQL: one row-level function for UPDATE and DELETE, and the same at statement level
#: for TRUNCATE (which row triggers do not see).
_PG_AUDIT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION geogrid_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM privacy_permits AS p
                   WHERE p.kind = 'audit_prune' AND OLD.at < p.before) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '{AUDIT_APPEND_ONLY_MESSAGE}: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""

#: The columns of ``request_events`` an erasure must leave as they are (it may change
#: ``note`` and ``actor`` only).
_EVENT_KEPT = ("id", "request_id", "at", "from_status", "to_status", "action", "actor_role",
               "version", "details")  # fmt: skip

# ``details`` is JSON, which has no equality operator on PostgreSQL: compared as text.
_PG_EVENTS_FUNCTION = f"""
CREATE OR REPLACE FUNCTION geogrid_request_events_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM privacy_permits WHERE kind = 'erase')
       AND {
    " AND ".join(f"NEW.{c}::text IS NOT DISTINCT FROM OLD.{c}::text" for c in _EVENT_KEPT)
} THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '{EVENTS_APPEND_ONLY_MESSAGE}';
END
$$
"""
_SQLITE_EVENTS_TRIGGER = (
    "CREATE TRIGGER trg_request_events_immutable BEFORE UPDATE ON request_events "
    "WHEN NOT (EXISTS (SELECT 1 FROM privacy_permits WHERE kind = 'erase') AND "
    + " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _EVENT_KEPT)
    + f") BEGIN SELECT RAISE(ABORT, '{EVENTS_APPEND_ONLY_MESSAGE}'); END"
)


def audit_trigger_ddl(backend: Backend) -> list[str]:
    """DDL of the functions (PostgreSQL) and triggers that keep ``audit_log`` append-only and
    let an erasure (only) clear what ``request_events`` holds of a person."""
    if backend is Backend.POSTGIS:
        return [
            _PG_AUDIT_FUNCTION,
            "CREATE TRIGGER trg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION geogrid_audit_append_only()",
            "CREATE TRIGGER trg_audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION geogrid_audit_append_only()",
            # Same trigger as migration 0003 made; the function now knows the permit.
            _PG_EVENTS_FUNCTION,
        ]
    # SQLite compares the stored texts: UTCDateTime keeps naive UTC in one fixed format
    # (``YYYY-MM-DD HH:MM:SS.ffffff``) in both tables, so text order is time order.
    return [
        "CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{AUDIT_APPEND_ONLY_MESSAGE}: UPDATE refused'); END",
        "CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON audit_log "
        "WHEN NOT EXISTS (SELECT 1 FROM privacy_permits AS p "
        "WHERE p.kind = 'audit_prune' AND OLD.at < p.before) "
        f"BEGIN SELECT RAISE(ABORT, '{AUDIT_APPEND_ONLY_MESSAGE}: DELETE refused'); END",
        "DROP TRIGGER IF EXISTS trg_request_events_immutable",
        _SQLITE_EVENTS_TRIGGER,
    ]


def drop_audit_trigger_ddl(backend: Backend) -> list[str]:
    """Undo :func:`audit_trigger_ddl`, back to migration 0003's events trigger."""
    message = "request events are never edited (request_events is append-only)"
    if backend is Backend.POSTGIS:
        return [
            "DROP TRIGGER IF EXISTS trg_audit_log_append_only ON audit_log",
            "DROP TRIGGER IF EXISTS trg_audit_log_no_truncate ON audit_log",
            "DROP FUNCTION IF EXISTS geogrid_audit_append_only()",
            "CREATE OR REPLACE FUNCTION geogrid_request_events_immutable() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$",
        ]
    return [
        "DROP TRIGGER IF EXISTS trg_audit_log_no_update",
        "DROP TRIGGER IF EXISTS trg_audit_log_no_delete",
        "DROP TRIGGER IF EXISTS trg_request_events_immutable",
        "CREATE TRIGGER trg_request_events_immutable BEFORE UPDATE ON request_events "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
    ]


def lock_community(conn: Connection, *, community_id: int) -> None:
    """Serialise plan changes of one community within the caller's transaction.

    PostgreSQL: a row lock on the community (``SELECT … FOR UPDATE``): a second activation
    waits, then reads the plan the first made active. SQLite (WAL) has one writer at a time:
    a no-op write takes the write lock now (waiting up to ``busy_timeout``); a transaction whose
    snapshot another writer has overtaken cannot write at all (``SQLITE_BUSY_SNAPSHOT``), which
    becomes a :class:`~geogrid.errors.Conflict` asking to run again.
    """
    from sqlalchemy.exc import OperationalError

    from geogrid.errors import Conflict

    if backend_of(conn.engine) is Backend.POSTGIS:
        conn.execute(
            text("SELECT id FROM communities WHERE id = :id FOR UPDATE"), {"id": community_id}
        )
        return
    try:
        conn.execute(text("UPDATE communities SET id = id WHERE id = :id"), {"id": community_id})
    except OperationalError as exc:
        raise Conflict(
            "another change to this community's plans was being written at the same time; "
            "nothing was changed: run the command again",
            field="plan",
        ) from exc


def snapshot(conn: Connection) -> Connection:
    """``conn`` set so that its next transaction reads one consistent snapshot throughout.

    For a build that reads several tables in turn (the lookup reads the change counters, then
    every community's plan, grids, fields, buildings …): a change committed meanwhile must show
    as a newer counter at the next poll, never as a half-read plan. PostgreSQL's default READ
    COMMITTED takes a new snapshot per statement; ``REPEATABLE READ`` keeps the first one for
    the whole transaction (https://www.postgresql.org/docs/current/transaction-iso.html).
    SQLite already reads one snapshot per transaction (the ``BEGIN`` of
    ``geogrid.db.engine``; in WAL mode it is held from the first read to the end,
    https://sqlite.org/isolation.html); ``conn`` is only marked read-only, so that its
    explicit transaction takes no write lock (``engine.read_only``).
    """
    if backend_of(conn.engine) is Backend.POSTGIS:
        return conn.execution_options(isolation_level="REPEATABLE READ")
    return read_only(conn)
