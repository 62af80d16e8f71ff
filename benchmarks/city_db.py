"""The database at city scale: ``geogrid assign``, ``geogrid backup`` and ``geogrid restore``
on PostGIS holding the city of ``benchmarks.city`` (2M households, 20,000 grids).

    python -m benchmarks.city_db [--households 2000000] [--database URL] [--postgres-url URL]
        [--repeats 3] [--assign-repeats 1] [--no-backup]
        [--out benchmarks/results/city_db-YYYY-MM-DD.json]

Set-up (timed, reported apart): a fresh database on the PostGIS server (``--postgres-url``,
else ``GEOGRID_BENCH_POSTGRES_URL``, ``GEOGRID_TEST_POSTGRES_URL``, or a throwaway cluster by
``scripts/pg.sh``, as ``benchmarks.assignment``), loaded with ``benchmarks.city.load_city``
(the product's importer, district by district). ``--database URL`` uses a database already
loaded that way instead (it is left in place; restore replaces it with its own backup).

Assignment, in the same run and on the same data:

* **``geogrid assign --commit``** (the CLI, a subprocess: every community with an active plan
  in one transaction) — what an operator runs after a bulk change; 1 run.
* **the same library calls in process** (``assign_community`` for each community and its
  audit entry, one transaction, committed), with every statement timed (client wait
  included), grouped by kind: this is where the time goes; ``--assign-repeats`` runs.
* **in process, no database**: ``geogrid.lookup.cells.Cells(grids ordered by code)
  .find_many(x, y)`` — the lookup's point index, whose candidate order is the edge rule
  (lowest code wins) — over the households read from the database (index build included);
  and ``geopandas.sjoin(points, grids, predicate="within")``, the plain baseline (both frames
  built beforehand). Checked: ``Cells`` answers exactly the grid the database stores for
  every household.
* When assignment takes more than :data:`EXPLAIN_RATIO` × the in-process path, the largest
  community is assigned once more (rolled back) with ``auto_explain`` sending every plan of
  a statement over 20 ms to the client (``EXPLAIN ANALYZE`` of the real statements, nested
  ones included), kept in the JSON.

Every community is assigned in one transaction, which keeps ~43 locks per community until the
commit: the server's lock table (``max_locks_per_transaction`` × connections; 64 × 100 by
default) must hold them, or the transaction fails after minutes with "out of shared memory".
The benchmark measures the locks per community first (``lock_budget``) and, when the city
does not fit, skips the assignment lines and says which setting to raise (a throwaway
cluster needs ``ALTER SYSTEM SET max_locks_per_transaction = 256`` and a restart for 1,000
communities).

Backup and restore of that database (each once; sizes of the files):

* ``geogrid backup --out FILE`` (``pg_dump -Fc`` with a snapshot, plus checksums of every
  table) against ``pg_dump -Fc`` of the same database;
* ``geogrid restore FILE --commit`` (checks, then ``pg_restore | psql --single-transaction``
  over the live database, then counts) against ``pg_restore -d`` of the same dump into an
  empty database (``createdb`` included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from benchmarks import measure
from benchmarks.assignment import create_postgis, db_versions, postgres_url
from benchmarks.city import FULL_HOUSEHOLDS, SEED, load_city

ROOT = Path(__file__).resolve().parent.parent
#: Above this ratio of PostGIS to the in-process path, the run says where the time goes.
EXPLAIN_RATIO = 2.5
GEOGRID = Path(sys.executable).with_name("geogrid")


def _loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection string (for pg_dump and psql)."""
    u = make_url(url)
    return (
        f"postgresql://{u.username or ''}{':' + u.password if u.password else ''}@"
        f"{u.host or 'localhost'}:{u.port or 5432}/{u.database}"
    )


def _run(cmd: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done


def _pg_tool(name: str) -> str:
    """The client tool of the server's major version (as ``geogrid backup`` finds it)."""
    from geogrid.db import backup

    bindir = os.environ.get("GEOGRID_PG_BINDIR")
    if bindir:
        return str(Path(bindir) / name)
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    del backup
    return str(found[-1]) if found else name


# --- counts and data ----------------------------------------------------------------------


def counts(engine: Engine) -> dict[str, int]:
    tables = ("communities", "grids", "households", "buildings", "streets", "responsibility_fields")
    with engine.connect() as conn:
        out = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in tables}
        out["active_plans"] = int(
            conn.execute(
                text("SELECT count(*) FROM boundary_plans WHERE status = 'active'")
            ).scalar_one()
        )
        out["active_grids"] = int(
            conn.execute(
                text(
                    "SELECT count(*) FROM grids g JOIN boundary_plans p ON p.id = g.plan_id "
                    "WHERE p.status = 'active'"
                )
            ).scalar_one()
        )
        out["database_bytes"] = int(
            conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        )
    return out


def read_data(engine: Engine) -> dict[str, Any]:
    """Households (id, x, y) by id and the active plans' grids (id, code, polygon) by code."""
    with engine.connect() as conn:
        hh = np.array(
            conn.execute(
                text("SELECT id, ST_X(geom), ST_Y(geom) FROM households ORDER BY id")
            ).all(),
            dtype=np.float64,
        )
        grids = conn.execute(
            text(
                "SELECT g.id, g.code, ST_AsBinary(g.geom) FROM grids g "
                "JOIN boundary_plans p ON p.id = g.plan_id WHERE p.status = 'active' "
                "ORDER BY g.code"
            )
        ).all()
    return {
        "household_id": hh[:, 0].astype(np.int64),
        "x": np.ascontiguousarray(hh[:, 1]),
        "y": np.ascontiguousarray(hh[:, 2]),
        "grid_id": np.array([g[0] for g in grids], dtype=np.int64),
        "grid_code": np.array([g[1] for g in grids], dtype=object),
        "grid_geom": shapely.from_wkb([bytes(g[2]) for g in grids]),
    }


def stored_grid(engine: Engine, household_ids: np.ndarray) -> np.ndarray:
    """The grid id each household has under its community's active plan (−1: none)."""
    with engine.connect() as conn:
        rows = np.array(
            conn.execute(
                text(
                    "SELECT a.household_id, a.grid_id FROM household_assignments a "
                    "JOIN boundary_plans p ON p.id = a.plan_id WHERE p.status = 'active'"
                )
            ).all(),
            dtype=np.int64,
        ).reshape(-1, 2)
    out = np.full(len(household_ids), -1, np.int64)
    pos = np.searchsorted(household_ids, rows[:, 0])
    out[pos] = rows[:, 1]
    return out


# --- in process ---------------------------------------------------------------------------


def in_process(data: dict[str, Any], repeats: int) -> tuple[dict[str, Any], np.ndarray]:
    """``Cells.find_many`` (index build included) and ``sjoin`` over the same data."""
    import geopandas as gpd

    from geogrid.lookup.cells import Cells

    x, y = data["x"], data["y"]
    cells_s, build_s, sjoin_s = [], [], []
    found = np.empty(0, np.int64)
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        index = Cells(data["grid_geom"])
        t1 = time.perf_counter()
        found = index.find_many(x, y)
        cells_s.append(time.perf_counter() - t0)
        build_s.append(t1 - t0)
        del index
    points = gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=4326)
    grids = gpd.GeoDataFrame({"code": data["grid_code"]}, geometry=data["grid_geom"], crs=4326)
    matched = 0
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        joined = gpd.sjoin(points, grids, predicate="within", how="inner")
        sjoin_s.append(time.perf_counter() - t0)
        matched = len(joined)
        del joined
    out = {
        "cells_find_many": {
            "seconds": [round(s, 3) for s in cells_s],
            "median_s": round(statistics.median(cells_s), 3),
            "build_seconds": [round(s, 3) for s in build_s],
            "note": "Cells(grids ordered by code) + find_many(x, y): build included",
        },
        "sjoin": {
            "seconds": [round(s, 3) for s in sjoin_s],
            "median_s": round(statistics.median(sjoin_s), 3),
            "matched": matched,
            "note": 'sjoin(points, grids, predicate="within"); frames built beforehand',
        },
        "households": len(x),
        "grids": len(data["grid_code"]),
    }
    return out, found


# --- PostGIS assignment --------------------------------------------------------------------

#: Statement kinds for "where the time goes" (first match wins).
_KINDS: tuple[tuple[str, str], ...] = (
    ("explain/auto_explain settings", r"^(LOAD|SET auto_explain)"),
    (
        "build the plan's partition (join households × grids, fields)",
        r"CREATE (TEMP|TEMPORARY |UNLOGGED )?TABLE",
    ),
    ("attach / detach / drop the partition", r"ALTER TABLE|DROP TABLE"),
    ("indexes and ANALYZE", r"^(CREATE (UNIQUE )?INDEX|ANALYZE)"),
    ("read assignments (before/after, for the changes)", r"FROM household_assignments"),
    ("fields: read, re-grid, update", r"responsibility_fields"),
    ("requests", r"\brequests\b"),
    ("audit log", r"audit"),
    ("counts", r"count\("),
    ("settings", r"^(SET|RESET|SHOW)|set_config"),
)


def _kind(sql: str) -> str:
    s = " ".join(sql.split())
    for name, pattern in _KINDS:
        if re.search(pattern, s, re.I):
            return name
    return "other"


def library_assign(engine: Engine, *, explain_community: int | None = None) -> dict[str, Any]:
    """What ``geogrid assign --commit`` does, in process, every statement timed.

    With ``explain_community``, assign only that community, with ``auto_explain`` plans sent
    to the client as notices, and roll back."""
    from geogrid import audit
    from geogrid.assign import assign_community
    from geogrid.clikit import cli_actor
    from geogrid.db import queries

    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    top: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seconds = time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        k = stats[_kind(statement)]
        k[0] += 1
        k[1] += seconds
        t = top[" ".join(statement.split())[:160]]
        t[0] += 1
        t[1] += seconds

    notices: list[str] = []
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    t0 = time.perf_counter()
    try:
        with engine.connect() as conn:
            if explain_community is not None:
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
                for stmt in (
                    "LOAD 'auto_explain'",
                    "SET auto_explain.log_min_duration = 20",
                    "SET auto_explain.log_analyze = on",
                    "SET auto_explain.log_buffers = on",
                    "SET auto_explain.log_nested_statements = on",
                    "SET auto_explain.log_level = 'notice'",
                ):
                    conn.exec_driver_sql(stmt)
                conn.commit()
            trans = conn.begin()
            if explain_community is not None:
                ids = [explain_community]
            else:
                ids = [
                    r.id
                    for r in queries.list_communities(conn)
                    if queries.active_plan(conn, community_id=r.id) is not None
                ]
            reports = []
            per_community = []
            for i in ids:
                c0 = time.perf_counter()
                report = assign_community(conn, community_id=i)
                audit.record(
                    conn,
                    actor=cli_actor(),
                    action="assign",
                    subject="community",
                    subject_id=report.community_code,
                    details=report.to_dict(),
                )
                per_community.append((time.perf_counter() - c0, report.households))
                reports.append(report)
            if explain_community is not None:
                trans.rollback()
            else:
                trans.commit()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    seconds = time.perf_counter() - t0
    in_statements = sum(v[1] for v in stats.values())
    pc = np.array(per_community)
    return {
        "seconds": round(seconds, 3),
        "communities": len(reports),
        "households": int(sum(r.households for r in reports)),
        "households_in_grids": int(sum(r.households_in_grids for r in reports)),
        "households_changed_grid": int(sum(r.households_changed_grid for r in reports)),
        "statements": int(sum(v[0] for v in stats.values())),
        "in_statements_s": round(in_statements, 3),
        "python_s": round(seconds - in_statements, 3),
        "by_kind": {
            k: {"statements": int(n), "seconds": round(s, 3)}
            for k, (n, s) in sorted(stats.items(), key=lambda kv: -kv[1][1])
        },
        "top_statements": [
            {"sql": sql, "calls": int(n), "seconds": round(s, 3)}
            for sql, (n, s) in sorted(top.items(), key=lambda kv: -kv[1][1])[:12]
        ],
        "per_community_s": {
            "median": round(float(np.median(pc[:, 0])), 4),
            "max": round(float(pc[:, 0].max()), 4),
            "households_median": int(np.median(pc[:, 1])),
        },
        **({"explain": notices} if explain_community is not None else {}),
    }


def lock_budget(engine: Engine, sample: int = 20) -> dict[str, Any]:
    """Locks one transaction holds per community assigned, against the server's lock table.

    ``geogrid assign`` assigns every community in one transaction; each community's
    re-assignment replaces its plan's partition of ``household_assignments`` (and makes
    temporary tables), and every relation touched stays locked until the commit. The shared
    lock table holds ``max_locks_per_transaction × (max_connections +
    max_prepared_transactions)`` entries (PostgreSQL docs, "Lock Management"); past it the
    transaction fails with "out of shared memory". ``sample`` communities are assigned and
    rolled back.
    """
    from geogrid.assign import assign_community
    from geogrid.db import queries

    with engine.connect() as conn:
        settings = {
            name: int(conn.execute(text(f"SHOW {name}")).scalar_one())
            for name in (
                "max_locks_per_transaction",
                "max_connections",
                "max_prepared_transactions",
            )
        }
        conn.commit()
        with conn.begin() as trans:
            mine = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
            base = int(conn.execute(text(mine)).scalar_one())
            ids = [
                r.id
                for r in queries.list_communities(conn)
                if queries.active_plan(conn, community_id=r.id) is not None
            ][:sample]
            held = []
            for i in ids:
                assign_community(conn, community_id=i)
                held.append(int(conn.execute(text(mine)).scalar_one()))
            trans.rollback()
    # The slope: the first community also locks the shared tables (households, grids …).
    per = (held[-1] - held[0]) / max(1, len(held) - 1)
    slots = settings["max_locks_per_transaction"] * (
        settings["max_connections"] + settings["max_prepared_transactions"]
    )
    return {
        **settings,
        "locks_before": base,
        "locks_after_each_community": held,
        "lock_table_slots": slots,
        "locks_per_community": round(per, 1),
        "communities_per_transaction_at_most": int(slots / per) if per else None,
        "communities_per_transaction_at_most_default_64": int(
            64 * (settings["max_connections"] + settings["max_prepared_transactions"]) / per
        )
        if per
        else None,
    }


def largest_community(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT community_id FROM households GROUP BY community_id "
                    "ORDER BY count(*) DESC LIMIT 1"
                )
            ).scalar_one()
        )


def cli_startup() -> float:
    """Wall time of ``geogrid --help``: the CLI's start-up (imports), in every CLI line."""
    seconds, _ = _run([str(GEOGRID), "--help"])
    return round(seconds, 2)


def cli_assign(url: str) -> dict[str, Any]:
    """``geogrid assign --commit --json`` as a subprocess (Python start-up included)."""
    seconds, done = _run([str(GEOGRID), "assign", "--commit", "--json", "--database", url])
    data = json.loads(done.stdout)
    reports = data.get("communities", [data])
    return {
        "seconds": round(seconds, 3),
        "communities": len(reports),
        "households_in_grids": sum(r["households_in_grids"] for r in reports),
    }


# --- backup and restore ---------------------------------------------------------------------


def backup_restore(url: str, server: str, folder: Path) -> dict[str, Any]:
    """geogrid backup / restore against pg_dump -Fc / pg_restore of the same database."""
    out: dict[str, Any] = {}
    ours = folder / "city.geogrid.dump"
    seconds, done = _run([str(GEOGRID), "backup", "--out", str(ours), "--json", "--database", url])
    out["geogrid_backup"] = {"seconds": round(seconds, 2), "bytes": ours.stat().st_size}
    plain = folder / "city.pg_dump"
    seconds, _ = _run([_pg_tool("pg_dump"), "-Fc", "-w", "-f", str(plain), _libpq(url)])
    out["pg_dump"] = {"seconds": round(seconds, 2), "bytes": plain.stat().st_size}
    seconds, done = _run(
        [str(GEOGRID), "restore", str(ours), "--commit", "--json", "--database", url]
    )
    restored = json.loads(done.stdout)
    out["geogrid_restore"] = {
        "seconds": round(seconds, 2),
        "tables": len(restored.get("tables", {})),
    }
    # Baseline: pg_restore of the plain dump into an empty database (createdb included).
    name = f"bench_restore_{os.getpid()}"
    admin = make_url(server).set(database="postgres").render_as_string(hide_password=False)
    target = make_url(server).set(database=name).render_as_string(hide_password=False)
    from geogrid.db.engine import make_engine

    eng = make_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        t0 = time.perf_counter()
        with eng.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        _run([_pg_tool("pg_restore"), "-w", "--no-owner", "-d", _libpq(target), str(plain)])
        out["pg_restore"] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "note": "into an empty database (CREATE DATABASE included), one job, "
            "not one transaction",
        }
    finally:
        with eng.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()
    out["backup_ratio"] = round(out["geogrid_backup"]["seconds"] / out["pg_dump"]["seconds"], 2)
    out["restore_ratio"] = round(
        out["geogrid_restore"]["seconds"] / out["pg_restore"]["seconds"], 2
    )
    out["size_ratio"] = round(out["geogrid_backup"]["bytes"] / out["pg_dump"]["bytes"], 3)
    return out


# --- run ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.city_db",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--households", type=int, default=FULL_HOUSEHOLDS)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--database", default=None, help="a database already loaded by city load")
    p.add_argument("--postgres-url", default=None)
    p.add_argument("--repeats", type=int, default=3, help="runs of the in-process lines")
    p.add_argument("--assign-repeats", type=int, default=1, help="runs of the library assignment")
    p.add_argument("--no-backup", action="store_true")
    p.add_argument("--no-cli", action="store_true", help="leave out the CLI assign line")
    p.add_argument(
        "--index-fields-community",
        action="store_true",
        help="experiment: index responsibility_fields (community_id) first (not in the schema)",
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    out_path = args.out or ROOT / "benchmarks" / "results" / f"city_db-{dt.date.today()}.json"

    def say(msg: str) -> None:
        print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)

    from geogrid.db.engine import make_engine

    report: dict[str, Any] = {
        "benchmark": "city_db",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": measure.machine(),
        "load_before": _loadavg(),
        "versions": measure.python_versions(),
        "config": {
            "households": args.households,
            "seed": args.seed,
            "repeats": args.repeats,
            "assign_repeats": args.assign_repeats,
            "database_given": bool(args.database),
            "index_fields_community": args.index_fields_community,
        },
    }
    stop = None
    db = None
    folder = Path(tempfile.mkdtemp(prefix="bench_city_db_"))
    try:
        if args.database:
            url, server = args.database, args.database
        else:
            server, stop = postgres_url(args.postgres_url)
            db = create_postgis(server, "head")
            url = db.url
            say(f"loading the city ({args.households:,} households) with the importer")
            loaded = load_city(url, args.households, seed=args.seed, progress=say)
            report["load"] = loaded
        engine = make_engine(url, poolclass=NullPool)
        report["versions"].update(db_versions(engine, "postgis"))
        report["counts"] = counts(engine)
        say(f"database: {report['counts']}")

        data = read_data(engine)
        say("in process: Cells.find_many and sjoin")
        report["in_process"], found = in_process(data, args.repeats)
        say(json.dumps(report["in_process"]))

        if args.index_fields_community:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "CREATE INDEX IF NOT EXISTS bench_fields_community "
                        "ON responsibility_fields (community_id)"
                    )
                )
                conn.execute(text("ANALYZE responsibility_fields"))
        report["locks"] = lock_budget(engine)
        say(f"locks: {report['locks']}")
        report["cli_startup_s"] = cli_startup()
        say(f"geogrid --help: {report['cli_startup_s']} s")
        fits = report["locks"]["communities_per_transaction_at_most"]
        if fits is not None and fits < report["counts"]["active_plans"]:
            # One transaction would run out of lock slots after minutes ("out of shared
            # memory"): say so now instead.
            need = int(
                report["locks"]["locks_per_community"]
                * report["counts"]["active_plans"]
                * 1.2
                / (
                    report["locks"]["max_connections"]
                    + report["locks"]["max_prepared_transactions"]
                )
            )
            report["assign_skipped"] = (
                f"{report['counts']['active_plans']} communities need about "
                f"{report['locks']['locks_per_community']} locks each in one transaction; this "
                f"server's lock table has room for {fits}: set max_locks_per_transaction to {need} "
                "or more and restart the server"
            )
            say(report["assign_skipped"])
            args.no_cli, args.assign_repeats = True, 0
        if not args.no_cli:
            say("geogrid assign --commit (CLI)")
            report["cli_assign"] = cli_assign(url)
            say(json.dumps(report["cli_assign"]))
        runs = []
        for r in range(args.assign_repeats):
            say(f"library assign, run {r + 1}")
            runs.append(library_assign(engine))
            say(
                f"  {runs[-1]['seconds']} s, {runs[-1]['statements']} statements "
                f"({runs[-1]['in_statements_s']} s in them)"
            )
        report["library_assign"] = runs
        lib = statistics.median(r["seconds"] for r in runs) if runs else float("nan")
        cells = report["in_process"]["cells_find_many"]["median_s"]
        sjoin = report["in_process"]["sjoin"]["median_s"]
        report["ratios"] = (
            {"library_vs_cells": round(lib / cells, 1), "library_vs_sjoin": round(lib / sjoin, 1)}
            if runs
            else {}
        )
        if "cli_assign" in report:
            report["ratios"]["cli_vs_cells"] = round(report["cli_assign"]["seconds"] / cells, 1)
            report["ratios"]["cli_vs_sjoin"] = round(report["cli_assign"]["seconds"] / sjoin, 1)
        stored = stored_grid(engine, data["household_id"])
        want = np.where(found >= 0, data["grid_id"][np.maximum(found, 0)], -1)
        report["check"] = {
            "households": len(want),
            "mismatches_cells_vs_database": int((stored != want).sum()),
            "outside_every_grid": int((want < 0).sum()),
        }
        say(f"check: {report['check']}; ratios {report['ratios']}")
        if runs and lib / cells > EXPLAIN_RATIO:
            cid = largest_community(engine)
            say(f"auto_explain of the largest community (id {cid}), rolled back")
            report["explain_largest_community"] = library_assign(engine, explain_community=cid)
        engine.dispose()
        del data, found, stored, want
        gc.collect()
        if not args.no_backup:
            say("backup and restore")
            report["backup_restore"] = backup_restore(url, server, folder)
            say(json.dumps(report["backup_restore"]))
        report["load_after"] = _loadavg()
    finally:
        if db is not None:
            db.drop()
        if stop is not None:
            stop()
        shutil.rmtree(folder, ignore_errors=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    say(f"written {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
