"""Importing a whole district, layer by layer: geogrid's importer vs a plain geopandas write.

    python -m benchmarks.imports [--scale 1.0] [--backends postgis,spatialite]
        [--profile-scale 0.05] [--no-profile] [--out benchmarks/results/imports-YYYY-MM-DD.json]

The district of ``benchmarks.district`` (200 communities, 2,000 grids, 50,000 buildings,
500,000 households at scale 1) is written as files — a GeoPackage (communities, streets,
buildings, grids, fields; pyogrio) and a CSV (households with ``lon``/``lat``) — and imported
into a fresh database per backend, migrated with ``geogrid.db.migrate.upgrade``, with the
product's code: ``geogrid.io.importer.import_layer(conn, layer=…, path=…)``, one transaction
per layer (commit included), in the order communities → streets → buildings → grids → fields →
households. Only the communities layer names no community; every other file spans them all and
is spread over them (each row to the community it lies in, ``_import_spread``). Grids make each
community's first plan, which is activated and assigned; fields and households are assigned
as they arrive (inside their layer's time).

The baseline, in the same run and for each layer: ``geopandas.read_file`` (pyogrio; the CSV by
``pandas.read_csv`` + ``points_from_xy``, which is what read_file would need options for) and
``GeoDataFrame.to_postgis`` (GeoAlchemy2, a plain table with its GiST index) on PostGIS, or
``GeoDataFrame.to_file`` into a GeoPackage (pyogrio) for SpatiaLite — reading and writing the
same rows, without any checks, links or assignment.

Targets (issue 13): each layer's import ≤ 60 s on PostGIS on this machine, peak memory ≤ 2 GB.
A layer that misses the time target is profiled (cProfile) at ``--profile-scale`` and its top
functions are put in the JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine, event, text
from sqlalchemy.pool import NullPool

from benchmarks import measure
from benchmarks.assignment import (
    Database,
    create_postgis,
    create_spatialite,
    db_versions,
    postgres_url,
)
from benchmarks.district import District, make_district, scaled

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("communities", "streets", "buildings", "grids", "fields", "households")
TARGET_SECONDS = 60.0
TARGET_MB = 2048.0
WGS84 = "EPSG:4326"


# --- files ----------------------------------------------------------------------------------


def write_files(district: District, folder: Path) -> dict[str, Path]:
    """Write the district as import files: one GeoPackage (a layer each) and a CSV of
    households with ``lon``/``lat``; returns each layer's path."""
    from geogrid.io.readers import gdal_without_spatialite

    folder.mkdir(parents=True, exist_ok=True)
    gpkg = folder / "district.gpkg"
    gpkg.unlink(missing_ok=True)
    paths: dict[str, Path] = {}
    with gdal_without_spatialite():
        for layer, frame in district.layers().items():
            if layer == "households":
                continue
            # Mixed Polygon/MultiPolygon layers are promoted to MultiPolygon (pyogrio's default).
            frame.to_file(gpkg, layer=layer, driver="GPKG", engine="pyogrio")
            paths[layer] = gpkg
    hh = district.households
    table = pd.DataFrame(hh.drop(columns="geometry"))
    table.insert(1, "lon", hh.geometry.x.round(7))
    table.insert(2, "lat", hh.geometry.y.round(7))
    csv = folder / "households.csv"
    table.to_csv(csv, index=False, encoding="utf-8")
    paths["households"] = csv
    return paths


def read_plain(layer: str, path: Path) -> gpd.GeoDataFrame:
    """The baseline's read: ``read_file`` (pyogrio), or ``read_csv`` + points for the CSV."""
    from geogrid.io.readers import gdal_without_spatialite

    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        points = gpd.points_from_xy(frame.pop("lon").astype(float), frame.pop("lat").astype(float))
        return gpd.GeoDataFrame(frame, geometry=points, crs=WGS84)
    with gdal_without_spatialite():
        return gpd.read_file(path, layer=layer, engine="pyogrio")


# --- measuring ------------------------------------------------------------------------------


def _vm_hwm_mb() -> float | None:
    kb = measure._status_kb("self", "VmHWM")
    return kb / 1024 if kb is not None else None


@contextmanager
def _measured(engine: Engine | None, backend: str) -> Iterator[tuple[dict[str, Any], Any]]:
    """Wall time, this process's peak RSS (increase and absolute) and, on PostGIS, the peak
    private memory of the server backend that ran the step (``measure.ServerMemory``)."""
    out: dict[str, Any] = {}
    conn = None
    server = None
    if engine is not None:
        conn = engine.connect()
        if backend == "postgis":
            pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            conn.commit()
            server = measure.ServerMemory(pid)
        else:
            conn.commit()
    try:
        with measure.process_peak() as mem:
            if server is not None:
                server.__enter__()
            t0 = time.perf_counter()
            try:
                yield out, conn
            finally:
                out["seconds"] = time.perf_counter() - t0
                if server is not None:
                    server.__exit__(None, None, None)
        out["peak_mb"] = mem["peak_mb"]
        out["process_peak_abs_mb"] = _vm_hwm_mb()
        out["server_peak_mb"] = server.peak_mb if server is not None else None
    finally:
        if conn is not None:
            conn.close()


def product_import(engine: Engine, backend: str, layer: str, path: Path) -> dict[str, Any]:
    """``import_layer`` of one layer in one transaction (commit included), measured."""
    from geogrid.io.importer import import_layer

    with _measured(engine, backend) as (out, conn), conn.begin():
        report = import_layer(
            conn, layer=layer, path=path, crs=WGS84 if path.suffix == ".csv" else None
        )
    rows = report.rows_read
    out.update(
        rows=rows,
        rows_per_s=rows / out["seconds"] if out["seconds"] else None,
        inserted=report.inserted,
        updated=report.updated,
        communities=len(report.communities),
        warnings=len(report.warnings),
        warnings_sample=report.warnings[:3],
    )
    return out


def baseline_import(
    engine: Engine, backend: str, layer: str, path: Path, folder: Path
) -> dict[str, Any]:
    """``read_file`` + ``to_postgis`` (PostGIS) or + ``to_file`` GeoPackage (SpatiaLite)."""
    from geogrid.io.readers import gdal_without_spatialite

    if backend == "postgis":
        with _measured(None, backend) as (out, _):
            frame = read_plain(layer, path)
            frame.to_postgis(f"baseline_{layer}", engine, if_exists="replace", index=False)
        what = "read_file + to_postgis"
    else:
        target = folder / f"baseline_{layer}.gpkg"
        target.unlink(missing_ok=True)
        with _measured(None, backend) as (out, _), gdal_without_spatialite():
            frame = read_plain(layer, path)
            frame.to_file(target, layer=layer, driver="GPKG", engine="pyogrio")
        what = "read_file + to_file (GeoPackage)"
    out.update(rows=len(frame), rows_per_s=len(frame) / out["seconds"], what=what)
    del frame
    return out


def profile_layers(
    backend: str,
    server: str | None,
    layers: list[str],
    scale: float,
    seed: int,
    folder: Path,
    top: int = 15,
) -> dict[str, Any]:
    """cProfile of ``layers`` imported at ``scale`` (the layers before them imported unprofiled
    first): the top functions by own time and by cumulative time."""
    from geogrid.db import migrate
    from geogrid.db.engine import make_engine
    from geogrid.io.importer import import_layer

    district = make_district(**scaled(scale), seed=seed)
    paths = write_files(district, folder / f"profile-{backend}")
    db = create_postgis(server, "head") if backend == "postgis" and server else create_spatialite()
    engine = make_engine(db.url, poolclass=NullPool)
    out: dict[str, Any] = {"scale": scale, "backend": backend, "layers": {}}
    statements: dict[str, list[float]] = {}

    # Statement times (the client's wait included) of the profiled layers: cProfile shows the
    # server's share only as psycopg's `wait`.
    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = " ".join(statement.split())[:120]
        entry = statements.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())

    try:
        migrate.upgrade(engine)
        last = max(ORDER.index(layer) for layer in layers)
        for layer in ORDER[: last + 1]:
            crs = WGS84 if paths[layer].suffix == ".csv" else None
            prof = cProfile.Profile() if layer in layers else None
            statements.clear()
            if prof is not None:
                event.listen(engine, "before_cursor_execute", before)
                event.listen(engine, "after_cursor_execute", after)
            t0 = time.perf_counter()
            with engine.begin() as conn:
                if prof is not None:
                    prof.enable()
                import_layer(conn, layer=layer, path=paths[layer], crs=crs)
                if prof is not None:
                    prof.disable()
            seconds = time.perf_counter() - t0
            if prof is None:
                continue
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            top_sql = sorted(statements.items(), key=lambda kv: -kv[1][1])[:top]
            out["layers"][layer] = {
                "seconds_under_cprofile": seconds,
                "rows": len(district.layers()[layer]),
                "in_statements_s": round(sum(t for _, t in statements.values()), 3),
                "statements": [
                    {"sql": sql, "calls": int(n), "seconds": round(t, 3)} for sql, (n, t) in top_sql
                ],
                "by_own_time": _top(prof, "tottime", top),
                "by_cumulative": _top(prof, "cumulative", 3 * top),
            }
    finally:
        engine.dispose()
        db.drop()
    return out


def profile_text(profile: dict[str, Any], n: int = 8) -> str:
    """The head of each profiled layer's lists, as text."""
    lines = []
    for layer, p in profile["layers"].items():
        lines.append(
            f"{profile['backend']} {layer} at scale {profile['scale']}: {p['rows']:,} rows, "
            f"{p['seconds_under_cprofile']:.2f} s under cProfile, {p['in_statements_s']:.2f} s "
            "in statements"
        )
        for title, key, rows in (
            (
                "cumulative (SQLAlchemy's and psycopg's frames left out)",
                "cumulative_s",
                [
                    r
                    for r in p["by_cumulative"]
                    if not r["function"].startswith(("sqlalchemy/", "psycopg/"))
                ],
            ),
            ("own time", "own_s", p["by_own_time"]),
        ):
            lines.append(f"  by {title}:")
            lines += [f"    {r[key]:8.3f} s {r['calls']:>8}x  {r['function']}" for r in rows[:n]]
        lines.append("  statements:")
        lines += [
            f"    {r['seconds']:8.3f} s {r['calls']:>8}x  {r['sql'][:90]}"
            for r in p["statements"][:n]
        ]
    return "\n".join(lines)


def _top(prof: cProfile.Profile, key: str, n: int) -> list[dict[str, Any]]:
    stats = pstats.Stats(prof, stream=io.StringIO())
    stats.sort_stats(key)
    rows = []
    for func in stats.fcn_list[:n]:  # type: ignore[attr-defined]
        _cc, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
        filename, line, name = func
        where = filename.split("/site-packages/")[-1].split(str(ROOT) + "/")[-1]
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls": nc,
                "own_s": round(tt, 3),
                "cumulative_s": round(ct, 3),
            }
        )
    return rows


# --- one backend ----------------------------------------------------------------------------


def run_backend(
    db: Database, paths: dict[str, Path], folder: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    from geogrid.db import migrate
    from geogrid.db.engine import make_engine

    engine = make_engine(db.url, poolclass=NullPool)
    result: dict[str, Any] = {"backend": db.backend, "layers": {}}
    try:
        t0 = time.perf_counter()
        migrate.upgrade(engine)
        result["migrate_seconds"] = time.perf_counter() - t0
        result["versions"] = db_versions(engine, db.backend)
        for layer in ORDER:
            gc.collect()
            product = product_import(engine, db.backend, layer, paths[layer])
            gc.collect()
            baseline = baseline_import(engine, db.backend, layer, paths[layer], folder)
            ratio = product["seconds"] / baseline["seconds"] if baseline["seconds"] else None
            peak_abs = product["process_peak_abs_mb"] or 0.0
            line = {
                "product": product,
                "baseline": baseline,
                "ratio": ratio,
                "target_seconds_met": product["seconds"] <= TARGET_SECONDS,
                "target_memory_met": peak_abs + (product["server_peak_mb"] or 0.0) <= TARGET_MB,
            }
            result["layers"][layer] = line
            progress(
                f"{db.backend:10} {layer:11} {product['rows']:>8,} rows "
                f"{product['seconds']:8.2f} s ({product['rows_per_s']:>9,.0f}/s)  "
                f"baseline {baseline['seconds']:7.2f} s  × {ratio:5.1f}  "
                f"peak +{product['peak_mb'] or 0:.0f} MB (abs {peak_abs:.0f})"
                + (
                    f" server {product['server_peak_mb']:.0f} MB"
                    if product["server_peak_mb"]
                    else ""
                )
            )
    finally:
        engine.dispose()
        db.drop()
    return result


# --- report ---------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| backend | layer | rows | product s | rows/s | baseline s | × baseline "
        "| peak MB (+process / abs / server) | ≤ 60 s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for res in report["results"]:
        for layer, line in res["layers"].items():
            p, b = line["product"], line["baseline"]
            server = f" / {p['server_peak_mb']:.0f}" if p["server_peak_mb"] is not None else ""
            lines.append(
                f"| {res['backend']} | {layer} | {p['rows']:,} | {p['seconds']:.2f} "
                f"| {p['rows_per_s']:,.0f} | {b['seconds']:.2f} | {line['ratio']:.1f} "
                f"| {p['peak_mb'] or 0:.0f} / {p['process_peak_abs_mb'] or 0:.0f}{server} "
                f"| {'yes' if line['target_seconds_met'] else '**no**'} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.imports", description=__doc__)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the full district")
    p.add_argument("--backends", default="postgis,spatialite")
    p.add_argument("--seed", type=int, default=20261205)
    p.add_argument("--postgres-url", default=None)
    p.add_argument(
        "--profile-scale",
        type=float,
        default=0.1,
        help="scale of the profile run of layers that miss the time target",
    )
    p.add_argument("--profile", default="", help="layers to profile anyway (comma-separated)")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--keep-files", type=Path, default=None, help="write the files here")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--show", type=Path, default=None, help="print a results file as Markdown")
    args = p.parse_args(argv)
    if args.show:
        print(markdown(json.loads(args.show.read_text())))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    out = args.out or ROOT / "benchmarks" / "results" / f"imports-{dt.date.today()}.json"
    folder = Path(tempfile.mkdtemp(prefix="bench_imports_"))
    files = args.keep_files or folder / "files"
    stop = None
    server = None
    report: dict[str, Any] = {
        "benchmark": "imports",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": measure.machine(),
        "load_before": _loadavg(),
        "versions": _versions(),
        "config": {"scale": args.scale, "seed": args.seed, "backends": backends},
        "targets": {"seconds_per_layer_postgis": TARGET_SECONDS, "peak_mb": TARGET_MB},
        "results": [],
    }

    def progress(msg: str) -> None:
        print(msg, flush=True)

    try:
        if "postgis" in backends:
            server, stop = postgres_url(args.postgres_url)
        sizes = scaled(args.scale)
        t0 = time.perf_counter()
        district = make_district(**sizes, seed=args.seed)
        gen = time.perf_counter() - t0
        counts = {k: len(v) for k, v in district.layers().items()}
        t0 = time.perf_counter()
        paths = write_files(district, files)
        report["config"].update(
            sizes=sizes,
            rows=counts,
            generate_seconds=gen,
            write_files_seconds=time.perf_counter() - t0,
            files={k: f"{v.name} ({v.stat().st_size / 1e6:.1f} MB)" for k, v in paths.items()},
        )
        progress(f"district {counts} generated in {gen:.1f} s, files written")
        del district
        gc.collect()
        for backend in backends:
            db = create_postgis(server, "head") if backend == "postgis" else create_spatialite()
            report["results"].append(run_backend(db, paths, folder, progress))
        report["load_after"] = _loadavg()
        if not args.no_profile:
            for res in report["results"]:
                slow = [
                    layer
                    for layer, line in res["layers"].items()
                    if not line["target_seconds_met"] or layer in args.profile.split(",")
                ]
                if slow:
                    progress(
                        f"profiling {res['backend']} {', '.join(slow)} at {args.profile_scale}"
                    )
                    res["profile"] = profile_layers(
                        res["backend"], server, slow, args.profile_scale, args.seed, folder
                    )
                    print(profile_text(res["profile"]), flush=True)
    finally:
        if stop is not None:
            stop()
        shutil.rmtree(folder, ignore_errors=True)
    report["targets_met"] = {
        res["backend"]: {
            "seconds": all(line["target_seconds_met"] for line in res["layers"].values()),
            "memory": all(line["target_memory_met"] for line in res["layers"].values()),
        }
        for res in report["results"]
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(markdown(report))
    print(f"written {out}")
    return 0


def _loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:  # pragma: no cover
        return None


def _versions() -> dict[str, str]:
    import pyogrio

    out = measure.python_versions()
    out["pyogrio"] = pyogrio.__version__
    out["gdal (pyogrio)"] = pyogrio.__gdal_version_string__
    out["pandas"] = pd.__version__
    return out


if __name__ == "__main__":
    sys.exit(main())
