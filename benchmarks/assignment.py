"""Bulk assignment of households to grids and responsibility fields: geogrid vs plain Python.

    python -m benchmarks.assignment [--sizes 100000,1000000] [--repeats 3] [--repeats-large 3]
        [--backends postgis,spatialite] [--schemas 0001,partitioned] [--orders building]
        [--out benchmarks/results/assignment-YYYY-MM-DD.json]

For each size, in one run and on the same synthetic city (``benchmarks.synth``):

* the reference: ``geopandas.sjoin(points, grids, predicate="within")``;
* ``shapely.STRtree(grids).query(points, predicate="intersects")`` with the edge rule's pick of
  the lowest code — that is ``geogrid.spatial.assign_points``, whose result is also the answer
  the databases must reproduce row for row;
* PostGIS and SpatiaLite through the product's code: a fresh database migrated with
  ``geogrid.db.migrate.upgrade``, households loaded with ``dialect.copy_households``, the
  spatial index built with ``dialect.create_spatial_index``, then
  ``dialect.assign_households_to_grids`` and ``dialect.assign_households_to_fields`` as the
  application calls them (one transaction each, commit included), results in
  ``household_assignments``. PostGIS runs twice: on the schema of migration 0001 and on the
  current one (migration 0004: the table partitioned by plan).

Each step is repeated (medians reported) from the same starting state: a plan with no rows
yet (first assignment) and, as extra lines, re-running both on a plan that has them.

PostGIS comes from ``--postgres-url``, else ``GEOGRID_BENCH_POSTGRES_URL``, else
``GEOGRID_TEST_POSTGRES_URL``, else a throwaway cluster started (and stopped at the end) with
``scripts/pg.sh``; the benchmark creates its own ``bench_*`` databases there and drops them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from benchmarks import measure
from benchmarks.measure import Sample
from benchmarks.synth import X0, X1, Y0, Y1, City, make_city

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 3.0
COMMUNITY_CODE = "441302011001"


# --- results --------------------------------------------------------------------------------


@dataclass
class Line:
    """One reported line: a step of one tool at one size, over its repeats."""

    size: int
    tool: str
    step: str
    samples: list[Sample]
    memory: str
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    order: str = ""

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def peak_mb(self) -> float | None:
        peaks = [s.peak_mb for s in self.samples if s.peak_mb is not None]
        return max(peaks) if peaks else None

    def to_dict(self, sjoin: float | None) -> dict[str, Any]:
        return {
            "size": self.size,
            "order": self.order,
            "tool": self.tool,
            "step": self.step,
            "repeats": len(self.samples),
            "seconds": [round(s.seconds, 4) for s in self.samples],
            "median_s": round(self.median, 4),
            "points_per_s": round(self.size / self.median) if self.median else None,
            "ratio_vs_sjoin": round(self.median / sjoin, 2) if sjoin else None,
            "peak_mb": None if self.peak_mb is None else round(self.peak_mb, 1),
            "memory": self.memory,
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


PY_MEMORY = "peak RSS increase of the Python process"
PG_MEMORY = "peak private memory (RssAnon) of the PostgreSQL backend + parallel workers"
SL_MEMORY = "peak RSS increase of the Python process (SpatiaLite runs in it)"


# --- Python baselines -----------------------------------------------------------------------


def python_baselines(
    city: City, n: int, repeats: int
) -> tuple[list[Line], np.ndarray, Callable[[], float]]:
    """sjoin and STRtree lines, the reference grid position per household, and a probe that
    times one more sjoin (run next to each database repeat: see :func:`run_database`)."""
    import geopandas as gpd

    from geogrid.spatial import assign_points

    x, y = city.households(n)
    points = gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=4326)
    grids = gpd.GeoDataFrame({"code": city.grid_codes}, geometry=city.grids, crs=4326)
    sj: list[Sample] = []
    st: list[Sample] = []
    ref = np.empty(0, np.int64)
    matched = 0
    for _ in range(repeats):
        s, joined = measure.time_python(
            lambda: gpd.sjoin(points, grids, predicate="within", how="inner")
        )
        matched = len(joined)
        del joined
        sj.append(s)
        s, ref = measure.time_python(
            lambda: assign_points(points.geometry.values, grids, key=city.grid_codes)
        )
        st.append(s)
    on_edge = n - matched

    def probe() -> float:
        t0 = time.perf_counter()
        gpd.sjoin(points, grids, predicate="within", how="inner")
        return time.perf_counter() - t0

    return (
        [
            Line(
                n,
                "geopandas.sjoin",
                "assign to grids",
                sj,
                PY_MEMORY,
                f'predicate="within"; {on_edge} points on grid edges/vertices match no grid '
                "(within excludes the boundary); GeoDataFrames built beforehand",
            ),
            Line(
                n,
                "shapely.STRtree",
                "assign to grids",
                st,
                PY_MEMORY,
                'query(points, predicate="intersects") + lowest code per point '
                "(geogrid.spatial.assign_points), tree build included",
            ),
        ],
        ref,
        probe,
    )


# --- databases ------------------------------------------------------------------------------


@dataclass
class Database:
    backend: str  # "postgis" | "spatialite"
    schema: str  # "0001" | "partitioned"
    url: str
    drop: Callable[[], None]

    @property
    def label(self) -> str:
        if self.backend == "spatialite":
            return "SpatiaLite"
        return "PostGIS" + (" (partitioned, 0004)" if self.schema == "partitioned" else "")


def postgres_url(arg: str | None) -> tuple[str, Callable[[], None] | None]:
    """The server to use and, when this run started one, how to stop it."""
    url = (
        arg
        or os.environ.get("GEOGRID_BENCH_POSTGRES_URL")
        or os.environ.get("GEOGRID_TEST_POSTGRES_URL")
    )
    if url:
        return url, None
    script = ROOT / "scripts" / "pg.sh"
    if script.exists():
        # `pg.sh start` prints `export NAME=VALUE` lines (a throwaway cluster in a new dir).
        out = subprocess.run(
            ["bash", str(script), "start"], check=True, capture_output=True, text=True
        ).stdout
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in out.splitlines()
            if line.startswith("export ") and "=" in line
        )
        if "GEOGRID_TEST_POSTGRES_URL" not in env:
            raise SystemExit(f"scripts/pg.sh start printed no GEOGRID_TEST_POSTGRES_URL:\n{out}")
        folder = env.get("GEOGRID_PG_DIR", "")

        def stop() -> None:
            subprocess.run(["bash", str(script), "stop", folder], check=False)

        print(f"started a throwaway PostGIS cluster in {folder} (scripts/pg.sh)", flush=True)
        return env["GEOGRID_TEST_POSTGRES_URL"], stop
    raise SystemExit(
        "no PostGIS server: set GEOGRID_BENCH_POSTGRES_URL (or GEOGRID_TEST_POSTGRES_URL), "
        "pass --postgres-url, or run with --backends spatialite"
    )


def create_postgis(server_url: str, schema: str) -> Database:
    from geogrid.db.engine import make_engine

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(
        make_url(server_url).set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return Database("postgis", schema, url, drop)


def create_spatialite() -> Database:
    folder = tempfile.mkdtemp(prefix="bench_spatialite_")
    return Database(
        "spatialite",
        "0001",
        f"sqlite:///{folder}/bench.sqlite",
        lambda: shutil.rmtree(folder, ignore_errors=True),
    )


@dataclass
class Ids:
    community_id: int
    plan_id: int
    grid_ids: np.ndarray  # aligned with city.grids
    field_ids: np.ndarray  # aligned with city.fields


def prepare(engine: Engine, db: Database, city: City) -> Ids:
    """Schema, community, active plan, grids, fields.

    ``0001``: the plain ``household_assignments`` of migrations 0001–0003; ``partitioned``: the
    head, where migration 0004 partitions it by plan (PostgreSQL only).
    """
    from geogrid.db import migrate, models, queries

    migrate.upgrade(engine, "0003" if db.schema == "0001" else "head")
    with engine.begin() as conn:
        cid = queries.insert_returning_ids(
            conn,
            models.Community,
            [
                {
                    "code": COMMUNITY_CODE,
                    "name": "基准城 (synthetic)",
                    "synthetic": True,
                    "boundary": queries.geom_value(
                        shapely.MultiPolygon([shapely.box(X0, Y0, X1, Y1)])
                    ),
                    "created_at": models.utcnow(),
                }
            ],
        )[0]
        plan_id = queries.create_plan(conn, community_id=cid, name="benchmark plan")
        grid_ids = queries.insert_returning_ids(
            conn,
            models.Grid,
            [
                {
                    "plan_id": plan_id,
                    "code": c,
                    "geom": queries.geom_value(shapely.MultiPolygon([g])),
                }
                for c, g in zip(city.grid_codes, city.grids, strict=True)
            ],
        )
        queries.mark_plan_active(conn, community_id=cid, plan_id=plan_id)
        field_ids = queries.insert_returning_ids(
            conn,
            models.ResponsibilityField,
            [
                {
                    "community_id": cid,
                    "needs_review": False,
                    "geom": queries.geom_value(shapely.MultiPolygon([f])),
                }
                for f in city.fields
            ],
        )
    return Ids(cid, plan_id, np.asarray(grid_ids), np.asarray(field_ids))


def db_versions(engine: Engine, backend: str) -> dict[str, str]:
    with engine.connect() as conn:
        if backend == "postgis":
            return {
                "postgresql": conn.execute(text("SHOW server_version")).scalar_one(),
                "postgis": conn.execute(text("SELECT postgis_full_version()")).scalar_one(),
            }
        return {
            "sqlite": conn.execute(text("SELECT sqlite_version()")).scalar_one(),
            "spatialite": conn.execute(text("SELECT spatialite_version()")).scalar_one(),
            "geos (spatialite)": conn.execute(text("SELECT geos_version()")).scalar_one(),
        }


def timed(engine: Engine, backend: str, fn: Callable[[Connection], Any]) -> tuple[Sample, Any]:
    """Run ``fn`` in one transaction (commit included) and measure it."""
    with engine.connect() as conn:
        if backend == "postgis":
            pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            conn.commit()
            with measure.ServerMemory(pid) as mem:
                t0 = time.perf_counter()
                with conn.begin():
                    result = fn(conn)
                seconds = time.perf_counter() - t0
            return Sample(seconds, mem.peak_mb), result
        conn.commit()
        with measure.process_peak() as pmem:
            t0 = time.perf_counter()
            with conn.begin():
                result = fn(conn)
            seconds = time.perf_counter() - t0
        return Sample(seconds, pmem["peak_mb"]), result


def reset_assignments(engine: Engine, db: Database, plan_id: int) -> None:
    """Back to a plan with no assignment rows (not timed)."""
    with engine.begin() as conn:
        if db.backend == "spatialite":
            conn.execute(text("DELETE FROM household_assignments"))
        elif db.schema == "partitioned":
            conn.execute(text(f"DROP TABLE IF EXISTS household_assignments_p{int(plan_id)}"))
        else:
            conn.execute(text("TRUNCATE household_assignments"))


def check(
    engine: Engine, ids: Ids, first_id: int, n: int, ref_grid: np.ndarray, ref_field: np.ndarray
) -> dict[str, int]:
    """Compare the stored rows with the Python answer (edge rule included), row for row."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT household_id, grid_id, field_id FROM household_assignments "
                "WHERE plan_id = :p"
            ),
            {"p": ids.plan_id},
        ).all()
    got = np.array([(h, g, -1 if f is None else f) for h, g, f in rows], dtype=np.int64)
    want_grid = np.full(n, -1, np.int64)
    want_field = np.full(n, -1, np.int64)
    want_grid[ref_grid >= 0] = ids.grid_ids[ref_grid[ref_grid >= 0]]
    want_field[ref_field >= 0] = ids.field_ids[ref_field[ref_field >= 0]]
    have_grid = np.full(n, -1, np.int64)
    have_field = np.full(n, -1, np.int64)
    if len(got):
        pos = got[:, 0] - first_id
        have_grid[pos], have_field[pos] = got[:, 1], got[:, 2]
    # A household outside every grid has no row, hence no field either.
    want_field[want_grid < 0] = -1
    return {
        "rows": len(got),
        "grid_mismatches": int((have_grid != want_grid).sum()),
        "field_mismatches": int((have_field != want_field).sum()),
    }


def run_database(
    db: Database,
    city: City,
    n: int,
    repeats: int,
    ref_grid: np.ndarray,
    ref_field: np.ndarray,
    sjoin_probe: Callable[[], float],
) -> tuple[list[Line], dict[str, Any]]:
    from geogrid.db import dialect
    from geogrid.db.engine import make_engine

    # No pool: each timed step gets a fresh server process, so its memory starts from zero.
    engine = make_engine(db.url, poolclass=NullPool)
    memory = PG_MEMORY if db.backend == "postgis" else SL_MEMORY
    info: dict[str, Any] = {}
    try:
        ids = prepare(engine, db, city)
        info["versions"] = db_versions_safe(engine, db)
        x, y = city.households(n)
        address_ids = np.char.add("H", np.char.zfill(np.arange(n).astype(str), 7))

        def load(conn: Connection) -> int:
            dialect.drop_spatial_index(conn, "households")
            return dialect.copy_households(
                conn, community_id=ids.community_id, x=x, y=y, address_ids=address_ids
            )

        load_s, _ = timed(engine, db.backend, load)
        index_s, _ = timed(
            engine, db.backend, lambda c: dialect.create_spatial_index(c, "households")
        )
        lines = [
            Line(n, db.label, "load households", [load_s], memory, _load_note(db)),
            Line(n, db.label, "index (spatial + ANALYZE)", [index_s], memory, _index_note(db)),
        ]
        if db.backend == "postgis":
            # The steady state of "already loaded" households: visibility map and hint bits
            # set (autovacuum's job after a load), so the first assignment does not pay it.
            t0 = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM households"))
            lines.append(
                Line(n, db.label, "vacuum households", [Sample(time.perf_counter() - t0)], "-")
            )
        with engine.connect() as conn:
            first_id = int(conn.execute(text("SELECT min(id) FROM households")).scalar_one())
        args = {"plan_id": ids.plan_id, "community_id": ids.community_id}
        grids_first: list[Sample] = []
        fields_first: list[Sample] = []
        fields_again: list[Sample] = []
        grids_again: list[Sample] = []
        combined: list[Sample] = []
        paired_sjoin: list[float] = []
        checks: dict[str, int] = {}
        combined_checks: dict[str, int] = {}
        one_build = db.schema == "partitioned"
        for i in range(repeats):
            reset_assignments(engine, db, ids.plan_id)
            # An sjoin right before each grid assignment: the machine's load drifts over a
            # run (other work on a shared VM), so each repeat gets its own denominator.
            paired_sjoin.append(sjoin_probe())
            s, count = timed(
                engine, db.backend, lambda c: dialect.assign_households_to_grids(c, **args)
            )
            grids_first.append(s)
            s, in_fields = timed(
                engine, db.backend, lambda c: dialect.assign_households_to_fields(c, **args)
            )
            fields_first.append(s)
            if i == 0:
                checks = check(engine, ids, first_id, n, ref_grid, ref_field)
                checks.update(returned_in_grids=count, returned_in_fields=in_fields)
            s, _ = timed(
                engine, db.backend, lambda c: dialect.assign_households_to_fields(c, **args)
            )
            fields_again.append(s)
            s, _ = timed(
                engine, db.backend, lambda c: dialect.assign_households_to_grids(c, **args)
            )
            grids_again.append(s)
            if one_build:
                reset_assignments(engine, db, ids.plan_id)
                s, _ = timed(engine, db.backend, lambda c: dialect.assign_households(c, **args))
                combined.append(s)
                if i == 0:
                    combined_checks = check(engine, ids, first_id, n, ref_grid, ref_field)
        verdict = _verdict(checks)
        lines += [
            Line(n, db.label, "assign to grids", grids_first, memory,
                 f"first run of the plan, edge rule, into household_assignments; {verdict}",
                 checks | _paired(grids_first, paired_sjoin)),
            Line(n, db.label, "assign to fields", fields_first, memory,
                 f"{len(city.fields):,} fields, right after the grids (all rows change)"),
            Line(n, db.label, "assign to fields, re-run", fields_again, memory,
                 "nothing changes"),
            Line(n, db.label, "assign to grids, re-run", grids_again, memory,
                 "replaces the plan's rows"),
        ]  # fmt: skip
        if one_build:
            lines.append(
                Line(n, db.label, "assign grids+fields at once", combined, memory,
                     "dialect.assign_households: one partition build with both columns; "
                     + _verdict(combined_checks), combined_checks)
            )  # fmt: skip
        return lines, info
    finally:
        engine.dispose()
        db.drop()


def _paired(samples: list[Sample], sjoin: list[float]) -> dict[str, Any]:
    """Each repeat over the sjoin timed just before it; the median of those ratios."""
    ratios = [s.seconds / j for s, j in zip(samples, sjoin, strict=True)]
    return {
        "paired_sjoin_s": [round(j, 4) for j in sjoin],
        "paired_ratio_vs_sjoin": round(statistics.median(ratios), 2),
    }


def _verdict(checks: dict[str, int]) -> str:
    ok = checks.get("grid_mismatches") == 0 and checks.get("field_mismatches") == 0
    return "rows identical to assign_points" if ok else f"MISMATCH {checks}"


def db_versions_safe(engine: Engine, db: Database) -> dict[str, str]:
    try:
        return db_versions(engine, db.backend)
    except Exception as exc:  # pragma: no cover - informative only
        return {"error": str(exc)}


def _load_note(db: Database) -> str:
    if db.backend == "postgis":
        return (
            "dialect.copy_households: binary COPY built in numpy, into the real table "
            "(PK, unique address_id, FK community_id), GiST dropped first"
        )
    return "dialect.copy_households: executemany INSERT … MakePoint, R*Tree disabled first"


def _index_note(db: Database) -> str:
    if db.backend == "postgis":
        return "dialect.create_spatial_index: CREATE INDEX … USING gist + ANALYZE"
    return "dialect.create_spatial_index: CreateSpatialIndex (R*Tree) + ANALYZE"


# --- report ---------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'size':>9} {'order':<8}  {'tool':<34} {'step':<28} {'median s':>9} {'points/s':>11} "
    head += f"{'× sjoin':>8} {'peak MB':>8} {'n':>2}"
    out = [head, "-" * len(head)]
    for r in results:
        ratio = "" if r["ratio_vs_sjoin"] is None else f"{r['ratio_vs_sjoin']:.2f}"
        peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        out.append(
            f"{r['size']:>9,} {r['order']:<8}  {r['tool']:<34} {r['step']:<28} "
            f"{r['median_s']:>9.3f} {r['points_per_s']:>11,} {ratio:>8} {peak:>8} "
            f"{r['repeats']:>2}"
        )
    return "\n".join(out)


def markdown(report: dict[str, Any]) -> str:
    """The results of a saved report as a Markdown table (for benchmarks/README.md)."""
    out = [
        "| size | order | tool | step | median s | points/s | × sjoin | peak MB | n |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        ratio = "" if r["ratio_vs_sjoin"] is None else f"{r['ratio_vs_sjoin']:.2f}"
        peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        out.append(
            f"| {r['size']:,} | {r['order']} | {r['tool']} | {r['step']} | {r['median_s']:.3f} "
            f"| {r['points_per_s']:,} | {ratio} | {peak} | {r['repeats']} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.assignment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--repeats", type=int, default=3, help="repeats below 1M households")
    p.add_argument("--repeats-large", type=int, default=3, help="repeats from 1M households")
    p.add_argument("--backends", default="postgis,spatialite")
    p.add_argument(
        "--schemas",
        default="0001,partitioned",
        help="PostGIS schemas: 0001 (plain table, migrations up to 0003), partitioned (head)",
    )
    p.add_argument("--spatialite-max", type=int, default=1_000_000,
                   help="largest size run on SpatiaLite")  # fmt: skip
    p.add_argument(
        "--orders",
        default="building",
        help="household orders to run, of building, random, hilbert: the order of "
        "the rows in the table and in the arrays (see benchmarks.synth)",
    )
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--postgres-url")
    p.add_argument("--out", type=Path)
    p.add_argument("--show", type=Path, help="print a saved report (and as Markdown); run nothing")
    args = p.parse_args(argv)
    if args.show:
        saved = json.loads(args.show.read_text())
        print(table(saved["results"]), "", markdown(saved), sep="\n")
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    orders = [o.strip() for o in args.orders.split(",") if o.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    schemas = [s.strip() for s in args.schemas.split(",") if s.strip()]
    today = dt.date.today().isoformat()
    out = args.out or ROOT / "benchmarks" / "results" / f"assignment-{today}.json"
    stop_server = None
    server = None
    if "postgis" in backends:
        server, stop_server = postgres_url(args.postgres_url)

    from geogrid.spatial import assign_points

    lines: list[Line] = []
    versions: dict[str, Any] = measure.python_versions()
    checks: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    city = None
    try:
        for order in orders:
            t0 = time.perf_counter()
            city = make_city(households=max(sizes), seed=args.seed, order=order)
            print(f"synthetic city ({order} order): {max(sizes):,} households, "
                  f"{len(city.grids):,} grids, {len(city.fields):,} fields "
                  f"in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
            for n in sizes:
                repeats = args.repeats_large if n >= 1_000_000 else args.repeats
                py_lines, ref_grid, sjoin_probe = python_baselines(city, n, repeats)
                x, y = city.households(n)
                ref_field = assign_points(shapely.points(x, y), city.fields)
                # Created one at a time, just before use: run_database drops each at its end.
                targets: list[Callable[[], Database]] = []
                if "postgis" in backends:
                    assert server is not None
                    targets += [functools.partial(create_postgis, server, s) for s in schemas]
                if "spatialite" in backends and n <= args.spatialite_max:
                    targets.append(create_spatialite)
                size_lines = list(py_lines)
                _progress(py_lines)
                for create in targets:
                    db = create()
                    db_lines, info = run_database(
                        db, city, n, repeats, ref_grid, ref_field, sjoin_probe
                    )
                    versions.update(info["versions"])
                    size_lines += db_lines
                    _progress(db_lines)
                for ln in size_lines:
                    ln.order = order
                lines += size_lines
                checks += [
                    ln.extra | {"size": n, "order": order, "tool": ln.tool}
                    for ln in size_lines
                    if ln.extra
                ]
    finally:
        if stop_server:
            stop_server()
    assert city is not None

    results = []
    for order in orders:
        for n in sizes:
            mine = [ln for ln in lines if ln.size == n and ln.order == order]
            sjoin = next(ln.median for ln in mine if ln.tool == "geopandas.sjoin")
            results += [ln.to_dict(sjoin) for ln in mine]
    target = [
        {
            "size": r["size"],
            "order": r["order"],
            "tool": r["tool"],
            "ratio_vs_sjoin": r["ratio_vs_sjoin"],
            "paired_ratio_vs_sjoin": r["extra"]["paired_ratio_vs_sjoin"],
            "met": r["ratio_vs_sjoin"] <= TARGET_RATIO,
            "met_paired": r["extra"]["paired_ratio_vs_sjoin"] <= TARGET_RATIO,
        }
        for r in results
        if r["tool"].startswith("PostGIS") and r["step"] == "assign to grids"
    ]
    report = {
        "benchmark": "assignment",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.assignment " + " ".join(argv or sys.argv[1:]),
        "machine": measure.machine()
        | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": versions,
        "config": {
            "sizes": sizes,
            "repeats": args.repeats,
            "repeats_large": args.repeats_large,
            "orders": orders,
            "seed": args.seed,
            "grids": len(city.grids),
            "fields": len(city.fields),
            "share_of_households_on_grid_vertices": city.hh_on_vertices / max(sizes),
            "box_deg": [X0, Y0, X1, Y1],
        },
        "target": {"rule": f"PostGIS assign to grids ≤ {TARGET_RATIO}× sjoin", "lines": target},
        "checks": checks,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(results))
    print()
    for t in target:
        verdict = "met" if t["met"] else "MISSED"
        paired = "met" if t["met_paired"] else "MISSED"
        print(
            f"target {t['size']:,} ({t['order']} order) {t['tool']}: "
            f"{t['ratio_vs_sjoin']:.2f}× the sjoin line — {verdict}; "
            f"{t['paired_ratio_vs_sjoin']:.2f}× an sjoin timed next to each repeat — {paired}"
        )
    print(f"\nwritten {out}")
    return 0


def _progress(lines: list[Line]) -> None:
    for ln in lines:
        print(f"  {ln.size:>9,} {ln.tool:<34} {ln.step:<28} {ln.median:8.3f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
