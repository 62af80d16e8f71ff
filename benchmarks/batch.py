"""Batch assignment without the database: ``geogrid batch assign`` beside its baselines.

::

    python -m benchmarks.batch                       # 5M in process, then 50M on LocalClusters
    python -m benchmarks.batch --data DIR --large 50000000 --baseline-large 10000000 --duckdb-large

Data: ``benchmarks/city.py``'s city (20,000 grids; households in building order, geoarrow
points). ``DIR/grids.parquet`` is made by ``python -m benchmarks.city write --out DIR`` and
``DIR/households-<N>.parquet`` by ``write --households-only --households N`` (or cut from a
bigger file of the same seed as a prefix of whole row groups): both are made when missing.

1. **In process, 5M households, file to file**: ``geogrid.batch`` (open the file, read the
   grids and build the index, assign every partition, write the dataset and the rejects),
   against ``geopandas.read_parquet`` + ``sjoin(predicate="within")`` + ``to_parquet`` of
   the same files (the baseline of the issue). Medians of ``--repeats``. Checked row for row:
   every point sjoin places (one grid, inside it) must get that grid, and the points sjoin
   leaves (edges, vertices) get :func:`geogrid.spatial.assign_points`'s lowest code.
2. **On a Dask LocalCluster** (processes, 1 and 2 workers, one thread each): the Dask engine
   on ``--large`` households; DuckDB's spatial join (``SPATIAL_JOIN`` of
   ``ST_Intersects``; all cores) and ``dask_geopandas`` (``read_parquet`` + ``sjoin`` +
   ``to_parquet`` on the same cluster) on ``--baseline-large`` households, with the Dask
   engine on those too for the ratio. The serial part of the Dask run (open, grids + index,
   sending the index, merging rejects) and the per-partition cost are recorded for
   ``docs/scale.md``.

Writes ``benchmarks/results/batch-<date>.json`` (``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import machine, process_peak, python_versions

ROOT = Path(__file__).resolve().parent.parent


def _say(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --- data -------------------------------------------------------------------------------------


def households_file(data: Path, n: int) -> Path:
    """``DIR/households-<N>.parquet``: a prefix of a bigger file of the city, else written."""
    import pyarrow.parquet as pq

    path = data / f"households-{_label(n)}.parquet"
    if path.exists():
        return path
    for bigger in sorted(data.glob("households-*.parquet"), key=lambda p: p.stat().st_size):
        pf = pq.ParquetFile(bigger)
        if pf.metadata.num_rows <= n:
            continue
        sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
        if n not in np.cumsum(sizes):
            continue
        _say(f"cutting {path.name} from {bigger.name}")
        with pq.ParquetWriter(path, pf.schema_arrow) as w:
            for g in range(int(np.searchsorted(np.cumsum(sizes), n)) + 1):
                w.write_table(pf.read_row_group(g))
        return path
    _say(f"writing {path.name} with benchmarks.city")
    subprocess.run(
        [sys.executable, "-m", "benchmarks.city", "write", "--out", str(data),
         "--households-only", "--households", str(n), "--name", path.name],
        check=True, cwd=ROOT,
    )  # fmt: skip
    return path


def grids_file(data: Path) -> Path:
    path = data / "grids.parquet"
    if not path.exists():
        _say("writing the city (grids.parquet …) with benchmarks.city")
        subprocess.run(
            [sys.executable, "-m", "benchmarks.city", "write", "--out", str(data)],
            check=True,
            cwd=ROOT,
        )
    return path


def _label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else str(n)


# --- the runs -----------------------------------------------------------------------------------


def run_geogrid(
    households: Path, grids: Path, out: Path, *, scheduler: Any = None, on_workers: bool = False
) -> dict[str, Any]:
    """``geogrid batch assign`` as the CLI runs it, timed by phase (``on_workers``: each
    Dask worker builds the index, ``--index-on workers``)."""
    from geogrid.batch import AssignIndex, Households, IndexSpec, assign_files, read_layer

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    src = Households.open(households)
    seconds["open"] = time.perf_counter() - t0
    t = time.perf_counter()
    index: Any = (
        IndexSpec.for_files(grids) if on_workers else AssignIndex(read_layer(grids, name="grid"))
    )
    seconds["index"] = time.perf_counter() - t
    result = assign_files(src, index, out, scheduler=scheduler, seconds=seconds)
    total = time.perf_counter() - t0
    part_seconds = [c.seconds for c in result.parts]
    cells = None if on_workers else index.grids.cells
    return {
        "seconds": total,
        "phases": result.seconds,
        "partitions": result.partitions,
        "partition_seconds_median": statistics.median(part_seconds),
        "partition_rows": result.rows // max(result.partitions, 1),
        "rows": result.rows,
        "grid_assigned": result.grid_assigned,
        "mixed_cell_share": None if cells is None else float((cells.answer < -1).mean()),
        "cells": None if cells is None else [cells.nx, cells.ny],
    }


def run_geopandas(households: Path, grids: Path, out: Path) -> dict[str, Any]:
    """The issue's baseline: read_parquet + sjoin(within) + to_parquet."""
    import geopandas

    t0 = time.perf_counter()
    hh = geopandas.read_parquet(households, columns=["household_id", "geometry"])
    g = geopandas.read_parquet(grids, columns=["code", "geometry"])
    t1 = time.perf_counter()
    joined = geopandas.sjoin(hh, g, predicate="within", how="left")
    t2 = time.perf_counter()
    joined.drop(columns="index_right").to_parquet(out)
    t3 = time.perf_counter()
    return {
        "seconds": t3 - t0,
        "phases": {"read": t1 - t0, "sjoin": t2 - t1, "write": t3 - t2},
        "rows": len(joined),
    }


def check_rows(households: Path, grids: Path, ours: Path, sjoin_out: Path) -> dict[str, Any]:
    """Row for row: sjoin's grid where it has one; assign_points's edge rule elsewhere."""
    import geopandas
    import pyarrow.parquet as pq

    from geogrid.spatial import assign_points

    mine = pq.read_table(ours, columns=["household_id", "grid"]).to_pandas()
    mine = mine.sort_values("household_id")
    ref = pq.read_table(sjoin_out, columns=["household_id", "code"]).to_pandas()
    ref = ref.drop_duplicates("household_id").sort_values("household_id")
    got = mine["grid"].astype(object).to_numpy()
    want = ref["code"].astype(object).to_numpy()
    placed = np.array([isinstance(v, str) for v in want])
    agree = int((got[placed] == want[placed]).sum())
    # Points sjoin's "within" leaves: on an edge or vertex, or outside every grid.
    hh = geopandas.read_parquet(households, columns=["household_id", "geometry"])
    hh = hh.sort_values("household_id")
    rest = hh.geometry.to_numpy()[~placed]
    g = geopandas.read_parquet(grids, columns=["code", "geometry"])
    pos = assign_points(rest, g, key=g["code"].to_numpy())
    edge = np.array([g["code"].iloc[p] if p >= 0 else None for p in pos], dtype=object)
    edge_agree = int(sum(a == b for a, b in zip(got[~placed], edge, strict=True)))
    return {
        "rows": len(got),
        "inside_one_grid": int(placed.sum()),
        "inside_agree": agree,
        "edge_or_outside": int((~placed).sum()),
        "edge_agree": edge_agree,
        "equal": agree == int(placed.sum()) and edge_agree == int((~placed).sum()),
    }


def _spatial_extension() -> str:
    import duckdb_extension_spatial

    base = os.path.dirname(duckdb_extension_spatial.__file__)
    return glob.glob(f"{base}/extensions/*/spatial.duckdb_extension")[0]


def run_duckdb(households: Path, grids: Path, out: Path) -> dict[str, Any]:
    """DuckDB's spatial join, file to file (the extension loaded from its PyPI package)."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"LOAD '{_spatial_extension()}'")
    con.execute(
        f"""COPY (
            SELECT h.household_id, g.code AS grid, h.geometry
            FROM read_parquet('{households}') h
            LEFT JOIN read_parquet('{grids}') g
              ON ST_Intersects(g.geometry, ST_Point(h.geometry.x, h.geometry.y))
        ) TO '{out}' (FORMAT parquet)"""
    )
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
    con.close()
    return {
        "seconds": time.perf_counter() - t0,
        "rows": int(n[0]) if n else 0,
        "threads": os.cpu_count(),
        "duckdb": duckdb.__version__,
    }


def run_dask_geopandas(households: Path, grids: Path, out: Path, client: Any) -> dict[str, Any]:
    """dask_geopandas read_parquet + sjoin(within) + to_parquet on the cluster."""
    import dask_geopandas
    import geopandas

    t0 = time.perf_counter()
    # One partition per row group (read as one file it would be a single partition).
    hh = dask_geopandas.read_parquet(
        households, columns=["household_id", "geometry"], split_row_groups=True
    )
    g = geopandas.read_parquet(grids, columns=["code", "geometry"])
    joined = dask_geopandas.sjoin(hh, g, predicate="within")  # only "inner" is supported
    joined.to_parquet(out)
    return {"seconds": time.perf_counter() - t0, "partitions": hh.npartitions}


def _median(runs: list[dict[str, Any]]) -> float:
    return statistics.median(r["seconds"] for r in runs)


def _repeat(n: int, fn: Callable[[Path], dict[str, Any]], tmp: Path, name: str) -> list[Any]:
    runs = []
    for i in range(n):
        out = tmp / f"{name}-{i}"
        with process_peak() as mem:
            r = fn(out)
        r["peak_mb"] = mem["peak_mb"]
        r["load"] = _load()
        runs.append(r)
        _say(f"{name}: {r['seconds']:.2f} s")
        if i < n - 1:
            _rm(out)
    return runs


def _rm(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# --- main ---------------------------------------------------------------------------------------


def small(data: Path, n: int, repeats: int, tmp: Path) -> dict[str, Any]:
    hh, grids = households_file(data, n), grids_file(data)
    ours = _repeat(repeats, lambda out: run_geogrid(hh, grids, out), tmp, "geogrid")
    base = _repeat(repeats, lambda out: run_geopandas(hh, grids, out), tmp, "geopandas")
    _say("checking the rows")
    check = check_rows(hh, grids, tmp / f"geogrid-{repeats - 1}", tmp / f"geopandas-{repeats - 1}")
    for name in (f"geogrid-{repeats - 1}", f"geopandas-{repeats - 1}"):
        _rm(tmp / name)
    return {
        "households": n,
        "file": hh.name,
        "geogrid": ours,
        "geopandas": base,
        "geogrid_median_s": _median(ours),
        "geopandas_median_s": _median(base),
        "ratio_geogrid_to_geopandas": _median(ours) / _median(base),
        "check": check,
    }


def large(
    data: Path,
    n: int,
    n_base: int,
    workers: list[int],
    tmp: Path,
    baselines: bool,
    duckdb_large: bool = False,
    index_on_workers: bool = False,
) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    hh, grids = households_file(data, n), grids_file(data)
    hb = households_file(data, n_base)
    out: dict[str, Any] = {"households": n, "baseline_households": n_base, "runs": []}
    if duckdb_large and n_base != n:
        _say(f"duckdb on {n:,}")
        r = run_duckdb(hh, grids, tmp / "duck.parquet")
        r.update(load=_load(), households=n)
        _rm(tmp / "duck.parquet")
        out["duckdb_large"] = r
        _say(f"duckdb: {r['seconds']:.1f} s")
    if baselines:
        _say(f"duckdb on {n_base:,}")
        r = run_duckdb(hb, grids, tmp / "duck.parquet")
        r["load"] = _load()
        _rm(tmp / "duck.parquet")
        out["duckdb"] = r
        _say(f"duckdb: {r['seconds']:.1f} s")
    for w in workers:
        with (
            LocalCluster(
                n_workers=w,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                memory_limit="6GB",
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: __import__("geogrid.batch"))  # imports are not the run's
            for size, path in ((n, hh), (n_base, hb)) if n != n_base else ((n, hh),):
                t_out = tmp / f"dask-{w}-{size}"
                r = run_geogrid(path, grids, t_out, scheduler=client)
                r.update(workers=w, households=size, engine="geogrid dask", load=_load())
                _rm(t_out)
                out["runs"].append(r)
                _say(f"geogrid dask, {w} worker(s), {size:,}: {r['seconds']:.1f} s")
            if index_on_workers:
                # Each worker builds the index (first run), then keeps it (second run).
                for label in ("built on each worker", "kept by each worker"):
                    t_out = tmp / f"spec-{w}"
                    r = run_geogrid(hb, grids, t_out, scheduler=client, on_workers=True)
                    r.update(workers=w, households=n_base, load=_load())
                    r["engine"] = f"geogrid dask, index {label}"
                    _rm(t_out)
                    out["runs"].append(r)
                    _say(f"{r['engine']}, {w} worker(s), {n_base:,}: {r['seconds']:.1f} s")
            if baselines:
                t_out = tmp / f"dgpd-{w}"
                r = run_dask_geopandas(hb, grids, t_out, client)
                r.update(workers=w, households=n_base, engine="dask_geopandas", load=_load())
                _rm(t_out)
                out["runs"].append(r)
                _say(f"dask_geopandas, {w} worker(s), {n_base:,}: {r['seconds']:.1f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__)
    p.add_argument("--data", type=Path, default=ROOT / "var" / "bench-city")
    p.add_argument("--small", type=int, default=5_000_000)
    p.add_argument("--large", type=int, default=50_000_000)
    p.add_argument("--baseline-large", type=int, default=None, help="default: --large")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-small", action="store_true")
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--no-baselines", action="store_true", help="large: the Dask engine only")
    p.add_argument(
        "--duckdb-large", action="store_true", help="DuckDB at --large too (~400 s for 50M)"
    )
    p.add_argument(
        "--index-on-workers",
        action="store_true",
        help="also the Dask engine with --index-on workers (at --baseline-large, twice)",
    )
    p.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: /tmp)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    date = dt.date.today().isoformat()
    out_path = args.out or ROOT / "benchmarks" / "results" / f"batch-{date}.json"
    report: dict[str, Any] = {
        "benchmark": "batch",
        "date": date,
        "command": " ".join(["python -m benchmarks.batch", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "versions": _versions(),
        "load_before": _load(),
    }
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="bench-batch-") as tmp:
        if not args.skip_small:
            report["in_process"] = small(args.data, args.small, args.repeats, Path(tmp))
            _save(report, out_path)
        if not args.skip_large:
            workers = [int(w) for w in args.workers.split(",")]
            report["dask"] = large(
                args.data,
                args.large,
                args.baseline_large or args.large,
                workers,
                Path(tmp),
                not args.no_baselines,
                args.duckdb_large,
                args.index_on_workers,
            )
    report["load_after"] = _load()
    _save(report, out_path)
    print(markdown(report))
    return 0


def _versions() -> dict[str, str]:
    import dask
    import distributed
    import pyarrow

    v = python_versions() | {
        "pyarrow": pyarrow.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
    }
    try:
        import dask_geopandas
        import duckdb

        v |= {"dask_geopandas": dask_geopandas.__version__, "duckdb": duckdb.__version__}
    except ImportError:  # pragma: no cover
        pass
    return v


def _save(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    _say(f"wrote {path}")


def markdown(report: dict[str, Any]) -> str:
    lines = []
    ip = report.get("in_process")
    if ip:
        g, b = ip["geogrid"], ip["geopandas"]
        lines += [
            f"**In process, {ip['households']:,} households, file to file** (medians of {len(g)})",
            "",
            "| tool | median s | × geopandas | phases (last run) |",
            "|---|---:|---:|---|",
            f"| geogrid batch assign | {ip['geogrid_median_s']:.2f} | "
            f"{ip['ratio_geogrid_to_geopandas']:.2f} | "
            + ", ".join(f"{k} {v:.2f}" for k, v in g[-1]["phases"].items())
            + f", open {g[-1]['phases'].get('open', 0):.2f} |",
            f"| geopandas read + sjoin + write | {ip['geopandas_median_s']:.2f} | 1.00 | "
            + ", ".join(f"{k} {v:.2f}" for k, v in b[-1]["phases"].items())
            + " |",
            "",
            f"row check: {ip['check']}",
            "",
        ]
    dk = report.get("dask")
    if dk:
        lines += [
            "| engine | workers | households | s | households/s |",
            "|---|---:|---:|---:|---:|",
        ]
        if "duckdb_large" in dk:
            d = dk["duckdb_large"]
            lines.append(
                f"| DuckDB spatial join ({d['threads']} threads) | – | {d['households']:,} | "
                f"{d['seconds']:.1f} | {d['households'] / d['seconds']:,.0f} |"
            )
        if "duckdb" in dk:
            d = dk["duckdb"]
            lines.append(
                f"| DuckDB spatial join ({d['threads']} threads) | – | "
                f"{dk['baseline_households']:,} | {d['seconds']:.1f} | "
                f"{dk['baseline_households'] / d['seconds']:,.0f} |"
            )
        for r in dk["runs"]:
            lines.append(
                f"| {r['engine']} | {r['workers']} | {r['households']:,} | {r['seconds']:.1f} | "
                f"{r['households'] / r['seconds']:,.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
