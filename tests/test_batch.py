"""geogrid.batch: households file → GeoParquet dataset, with the SQL assignment's edge rule.

The fine bucket grid (:class:`FineCells`) is checked against the slower reference,
:func:`geogrid.spatial.assign_points`, on random tilings with overlapping discs, at every
vertex and along every edge; the batch run end to end (GeoParquet in its encodings,
GeoPackage, x/y columns, CRSs, rejects, resuming) on small files; the Dask engine on a
LocalCluster of two in-process workers against the in-process engine, row for row; and the
demo community's export against the database's own assignment, on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.cli import app as cli_app
from geogrid import crs as gcrs
from geogrid.batch import AssignIndex, Households, IndexSpec, assign_files, read_layer
from geogrid.errors import CRSError, InvalidInput
from geogrid.lookup.fine import FineCells
from geogrid.spatial import assign_points
from tests.factories import X0, Y0

runner = CliRunner()

W, H = 0.03, 0.02  # degrees: the test territory is W × H from (X0, Y0)


def _tiling(seed: int, n: int = 40, discs: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi tiles of a box plus overlapping discs, and a random rank (the edge rule's key)."""
    rng = np.random.default_rng(seed)
    frame = shapely.box(X0, Y0, X0 + W, Y0 + H)
    seeds = shapely.multipoints(np.c_[X0 + rng.random(n) * W, Y0 + rng.random(n) * H])
    tiles = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame
    )
    extra = shapely.buffer(
        shapely.points(X0 + rng.random(discs) * W, Y0 + rng.random(discs) * H), 0.002
    )
    polys = np.concatenate([tiles, extra]) if discs else tiles
    return polys, rng.permutation(len(polys))


def _probe_points(polys: np.ndarray, seed: int, n: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Random points (some outside), every vertex, and points along every edge."""
    rng = np.random.default_rng(seed + 100)
    boundary = shapely.boundary(polys)
    along = shapely.line_interpolate_point(
        np.repeat(boundary, 20), np.tile(np.linspace(0, 1, 20), len(boundary)), normalized=True
    )
    vertices = shapely.get_coordinates(polys)
    x = np.concatenate(
        [X0 - 0.005 + rng.random(n) * (W + 0.01), vertices[:, 0], shapely.get_x(along)]
    )
    y = np.concatenate(
        [Y0 - 0.005 + rng.random(n) * (H + 0.01), vertices[:, 1], shapely.get_y(along)]
    )
    return x, y


@pytest.mark.parametrize(("seed", "per_polygon"), [(1, 400), (2, 50), (3, 2000)])
def test_fine_cells_equal_the_strtree_rule(seed: int, per_polygon: int) -> None:
    """FineCells answers as assign_points (STRtree + lowest rank), bulk and single, at
    several resolutions, overlapping discs included."""
    polys, rank = _tiling(seed)
    ranked = polys[np.argsort(rank)]
    x, y = _probe_points(ranked, seed)
    cells = FineCells(ranked, cells_per_polygon=per_polygon)
    want = assign_points(shapely.points(x, y), gpd.GeoSeries(ranked))
    assert cells.find_many(x, y).tolist() == want.tolist()
    some = slice(None, None, 7)
    assert [cells.find(float(a), float(b)) for a, b in zip(x[some], y[some], strict=True)] == (
        want[some].tolist()
    )
    assert (want >= 0).sum() > 1000 and (want < 0).sum() > 1000
    assert cells.nx * cells.ny > 32 * 32


def test_fine_cells_edge_cases() -> None:
    """Empty layers, non-finite points, a polygon with a hole, a multipolygon; pickling
    (how Dask ships it) keeps the answers."""
    import pickle

    empty = FineCells(np.array([], dtype=object))
    assert empty.find_many(np.array([0.0]), np.array([0.0])).tolist() == [-1]
    ring = shapely.box(X0, Y0, X0 + 0.01, Y0 + 0.01).difference(
        shapely.box(X0 + 0.004, Y0 + 0.004, X0 + 0.006, Y0 + 0.006)
    )
    multi = shapely.MultiPolygon(
        [
            shapely.box(X0 + 0.004, Y0 + 0.004, X0 + 0.006, Y0 + 0.006),
            shapely.box(X0 + 0.02, Y0, X0 + 0.03, Y0 + 0.01),
        ]
    )
    polys = np.array([ring, multi], dtype=object)
    cells = pickle.loads(pickle.dumps(FineCells(polys)))
    x = np.array([X0 + 0.005, X0 + 0.004, X0 + 0.001, X0 + 0.025, X0 + 0.015, np.nan, np.inf])
    y = np.array([Y0 + 0.005, Y0 + 0.005, Y0 + 0.001, Y0 + 0.005, Y0 + 0.005, Y0, Y0])
    assert cells.find_many(x, y).tolist() == [1, 0, 0, 1, -1, -1, -1]
    assert (
        cells.find_many(x, y).tolist()
        == assign_points(shapely.points(x, y), gpd.GeoSeries(polys)).tolist()
    )


# --- files -------------------------------------------------------------------------------------


def _grids_file(
    tmp: Path, seed: int = 4, suffix: str = ".geojson"
) -> tuple[Path, np.ndarray, np.ndarray]:
    """A tiling written with codes in shuffled order; returns the file, polygons and codes."""
    polys, rank = _tiling(seed, discs=0)
    codes = np.array([f"441302011{r:06d}" for r in rank])
    path = tmp / f"grids{suffix}"
    frame = gpd.GeoDataFrame({"code": codes, "name": codes}, geometry=polys, crs=4326)
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_file(path)
    return path, polys, codes


def _expected(x: np.ndarray, y: np.ndarray, polys: np.ndarray, codes: np.ndarray) -> list[Any]:
    pos = assign_points(shapely.points(x, y), gpd.GeoSeries(polys), key=codes)
    return [codes[p] if p >= 0 else None for p in pos]


POINT = pa.struct([pa.field("x", pa.float64(), False), pa.field("y", pa.float64(), False)])


def _geoparquet_points(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    *,
    encoding: str = "struct",
    crs: dict[str, Any] | str | None = "default",
    nulls: tuple[int, ...] = (),
    row_group: int = 1000,
) -> None:
    """A GeoParquet 1.1 file of points (``household_id`` 1…n) in a geoarrow encoding."""
    n = len(x)
    mask = np.zeros(n, dtype=bool)
    mask[list(nulls)] = True
    if encoding == "struct":
        geom = pa.StructArray.from_arrays(
            [pa.array(x), pa.array(y)], fields=list(POINT), mask=pa.array(mask)
        )
    else:
        flat = pa.array(np.c_[x, y].ravel())
        geom = pa.FixedSizeListArray.from_arrays(flat, 2, mask=pa.array(mask))
    meta: dict[str, Any] = {"encoding": "point", "geometry_types": ["Point"]}
    if crs != "default":
        meta["crs"] = crs
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": meta}}
    table = pa.table({"household_id": np.arange(1, n + 1), "geometry": geom})
    table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    pq.write_table(table, path, row_group_size=row_group)


def _read_out(out: Path) -> gpd.GeoDataFrame:
    frame = gpd.read_parquet(out)
    key = next(c for c in ("household_id", "id", "row") if c in frame.columns)
    return frame.sort_values(key).reset_index(drop=True)


def _run(src: Households, grids: Path, out: Path, **kw: Any) -> Any:
    index = AssignIndex(read_layer(grids, name="grid"))
    return assign_files(src, index, out, **kw)


def test_geoarrow_points_equal_assign_points_row_for_row(tmp_path: Path) -> None:
    """Struct and interleaved geoarrow points: every row's grid is what assign_points with
    the lowest code gives (vertices and edges included); the dataset reads back whole with
    geopandas, the points in WGS 84."""
    grids, polys, codes = _grids_file(tmp_path)
    x, y = _probe_points(polys, 4, n=3000)
    want = _expected(x, y, polys, codes)
    for encoding in ("struct", "interleaved"):
        path = tmp_path / f"hh-{encoding}.parquet"
        _geoparquet_points(path, x, y, encoding=encoding)
        out = tmp_path / f"out-{encoding}"
        threads = 2 if encoding == "struct" else 1  # partitions in threads: same answers
        result = _run(Households.open(path), grids, out, partition_rows=1000, threads=threads)
        got = _read_out(out)
        assert got["household_id"].tolist() == list(range(1, len(x) + 1))
        assert [None if isinstance(v, float) else v for v in got["grid"].astype(object)] == want
        assert np.allclose(got.geometry.x, x) and np.allclose(got.geometry.y, y)
        assert got.crs.to_epsg() == 4326
        assert result.rows == result.written == len(x) and result.rejected == 0
        assert result.grid_assigned == sum(w is not None for w in want)
        assert result.partitions == len(list(out.glob("part-*.parquet"))) > 1


def test_bad_rows_go_to_the_rejects_file_with_row_numbers(tmp_path: Path) -> None:
    grids, _polys, _codes = _grids_file(tmp_path)
    x = np.full(8, X0 + 0.01)
    y = np.full(8, Y0 + 0.01)
    x[2], y[3], x[5] = np.nan, np.inf, 400.0
    path = tmp_path / "hh.parquet"
    _geoparquet_points(path, x, y, nulls=[6], row_group=3)
    rejects = tmp_path / "rejects" / "bad.csv"
    result = _run(Households.open(path), grids, tmp_path / "out", rejects=rejects, partition_rows=3)
    assert (result.rows, result.written, result.rejected) == (8, 4, 4)
    got = gpd.read_parquet(tmp_path / "out")
    assert sorted(got["household_id"]) == [1, 2, 5, 8]
    import csv

    with rejects.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["household_id"], r["reason"]) for r in rows] == [
        ("3", "3", "coordinates not finite"),
        ("4", "4", "coordinates not finite"),
        ("6", "6", "out of range (longitude −180…180, latitude −90…90)"),
        ("7", "7", "no geometry"),
    ]


def test_wkb_geometries_of_the_wrong_type_are_rejected(tmp_path: Path) -> None:
    grids, polys, codes = _grids_file(tmp_path, suffix=".parquet")
    geoms = [
        shapely.Point(X0 + 0.01, Y0 + 0.01),
        shapely.LineString([(X0, Y0), (X0 + 0.01, Y0 + 0.01)]),
        None,
        shapely.Point(),
        shapely.Point(X0 + 0.02, Y0 + 0.015),
    ]
    path = tmp_path / "hh.parquet"
    gpd.GeoDataFrame({"id": [10, 11, 12, 13, 14]}, geometry=geoms, crs=4326).to_parquet(path)
    src = Households.open(path)
    assert (src.geometry, src.id_column) == ("wkb", "id")
    result = _run(src, grids, tmp_path / "out")
    assert result.written == 2
    got = _read_out(tmp_path / "out")
    assert got["id"].tolist() == [10, 14]
    want = _expected(
        np.array([X0 + 0.01, X0 + 0.02]), np.array([Y0 + 0.01, Y0 + 0.015]), polys, codes
    )
    assert got["grid"].astype(str).tolist() == want
    rejects = (tmp_path / "out" / "_rejects.csv").read_text(encoding="utf-8")
    assert '2,11,"not a point: LineString"' in rejects
    assert '3,12,"no geometry"' in rejects and '4,13,"empty point"' in rejects


def test_geopackage_and_xy_columns_with_crs_conversion(tmp_path: Path) -> None:
    """A GeoPackage in a projected CRS (declared), and x/y columns in GCJ-02 (--crs): both
    are converted to WGS 84 before assignment, as the importer converts."""
    grids, polys, codes = _grids_file(tmp_path, suffix=".gpkg")
    x, y = _probe_points(polys, 5, n=500)
    x, y = x[:600], y[:600]  # random points and some vertices
    want = _expected(x, y, polys, codes)

    utm = gpd.GeoDataFrame({"id": np.arange(len(x))}, geometry=shapely.points(x, y), crs=4326)
    gpkg = tmp_path / "hh.gpkg"
    utm.to_crs(32650).to_file(gpkg, layer="households")
    src = Households.open(gpkg, layer="households")
    assert src.crs == "EPSG:32650"
    _run(src, grids, tmp_path / "out-gpkg")
    got = _read_out(tmp_path / "out-gpkg")
    inside = [w is not None for w in want]
    # A projected round trip moves points by nanometres: compare away from the edges.
    assert np.allclose(got.geometry.x, x, atol=1e-9)
    far = shapely.distance(shapely.points(x, y), shapely.union_all(shapely.boundary(polys))) > 1e-7
    got_codes = [None if isinstance(v, float) else v for v in got["grid"].astype(object)]
    assert [g for g, f in zip(got_codes, far, strict=True) if f] == [
        w for w, f in zip(want, far, strict=True) if f
    ]
    assert sum(inside) > 100

    gx, gy = gcrs.from_wgs84(x, y, "gcj02")
    xy = tmp_path / "hh-xy.parquet"
    pq.write_table(pa.table({"lon": gx, "lat": gy}), xy)
    with pytest.raises(InvalidInput, match="--crs"):
        Households.open(xy)
    src = Households.open(xy, crs="gcj02")
    assert (src.geometry, src.columns, src.id_column) == ("xy", ("lon", "lat"), None)
    _run(src, grids, tmp_path / "out-xy")
    got = _read_out(tmp_path / "out-xy")
    assert got["row"].tolist() == list(range(1, len(x) + 1))
    assert np.allclose(got.geometry.x, x, atol=1e-7)
    got_codes = [None if isinstance(v, float) else v for v in got["grid"].astype(object)]
    assert [g for g, f in zip(got_codes, far, strict=True) if f] == [
        w for w, f in zip(want, far, strict=True) if f
    ]


def test_a_declared_crs_that_contradicts_crs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hh.parquet"
    _geoparquet_points(path, np.array([X0]), np.array([Y0]))  # no "crs": OGC:CRS84
    assert Households.open(path).crs == "wgs84"
    assert Households.open(path, crs="gcj02").crs == "gcj02"  # GCJ-02 cannot be declared
    with pytest.raises(CRSError, match="CRS conflict"):
        Households.open(path, crs="EPSG:32650")
    _geoparquet_points(path, np.array([X0]), np.array([Y0]), crs=None)  # unknown CRS
    with pytest.raises(CRSError, match="declares no CRS"):
        Households.open(path)


def test_an_interrupted_run_resumes_and_another_run_is_refused(tmp_path: Path) -> None:
    grids, polys, _codes = _grids_file(tmp_path)
    x, y = _probe_points(polys, 6, n=2000)
    path = tmp_path / "hh.parquet"
    _geoparquet_points(path, x, y, row_group=500)
    out = tmp_path / "out"
    first = _run(Households.open(path), grids, out, partition_rows=500)
    whole = _read_out(out)
    # As if stopped before the last two parts were renamed: a temporary file is left behind.
    parts = sorted(out.glob("part-*.parquet"))
    for p in parts[-2:]:
        p.rename(p.with_name(f".{p.name}.tmp-1"))
    again = _run(Households.open(path), grids, out, partition_rows=500)
    assert (again.partitions, again.skipped) == (first.partitions, first.partitions - 2)
    assert again.to_dict() | {"skipped": 0, "seconds": {}} == first.to_dict() | {"seconds": {}}
    assert _read_out(out).equals(whole)
    with pytest.raises(InvalidInput, match="another run"):
        _run(Households.open(path), grids, out, partition_rows=700)


def test_cli_batch_assign(tmp_path: Path) -> None:
    grids, polys, _codes = _grids_file(tmp_path)
    x, y = _probe_points(polys, 7, n=500)
    path = tmp_path / "hh.parquet"
    _geoparquet_points(path, x, y)
    fields = tmp_path / "fields.geojson"
    fpolys = shapely.buffer(shapely.points(X0 + np.array([0.005, 0.02]), Y0 + 0.01), 0.004)
    gpd.GeoDataFrame({"name": ["f1", "f2"]}, geometry=fpolys, crs=4326).to_file(fields)
    out = tmp_path / "out"
    args = ["batch", "assign", "--households", str(path), "--grids", str(grids)]
    args += ["--fields", str(fields), "--out", str(out), "--json"]
    r = runner.invoke(cli_app, args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["rows"] == len(x) and data["rejected"] == 0
    got = _read_out(out)
    fx = assign_points(shapely.points(x, y), gpd.GeoSeries(fpolys))
    assert [None if isinstance(v, float) else v for v in got["field"].astype(object)] == [
        ["f1", "f2"][f] if f >= 0 else None for f in fx
    ]
    assert data["field_assigned"] == int((fx >= 0).sum()) > 0
    r = runner.invoke(cli_app, [*args[:-1], "--engine", "dask"])
    assert r.exit_code == 1 and "--scheduler" in r.stderr


# --- Dask ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Any:
    """A LocalCluster of two in-process workers (threads: starts in about a second)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_dask_engine_equals_the_in_process_engine(tmp_path: Path, dask_client: Any) -> None:
    grids, polys, _codes = _grids_file(tmp_path)
    x, y = _probe_points(polys, 8, n=3000)
    x[5] = np.nan
    path = tmp_path / "hh.parquet"
    _geoparquet_points(path, x, y, row_group=700)
    local = _run(Households.open(path), grids, tmp_path / "local", partition_rows=700)
    remote = _run(
        Households.open(path), grids, tmp_path / "dask", partition_rows=700, scheduler=dask_client
    )
    assert remote.partitions == local.partitions > 2
    assert {
        k: v for k, v in remote.to_dict().items() if k not in ("out", "rejects", "seconds")
    } == {k: v for k, v in local.to_dict().items() if k not in ("out", "rejects", "seconds")}
    assert "send_index" in remote.seconds
    assert _read_out(tmp_path / "dask").equals(_read_out(tmp_path / "local"))
    assert (tmp_path / "dask" / "_rejects.csv").read_text() == (
        tmp_path / "local" / "_rejects.csv"
    ).read_text()
    # Each worker building the index from the files (IndexSpec): the same answers.
    spec = IndexSpec.for_files(grids)
    built = assign_files(
        Households.open(path), spec, tmp_path / "spec", partition_rows=700, scheduler=dask_client
    )
    assert "send_index" not in built.seconds and built.grid_assigned == local.grid_assigned
    assert _read_out(tmp_path / "spec").equals(_read_out(tmp_path / "local"))
    # Resuming on the cluster: only the missing part is computed again.
    (tmp_path / "dask" / "part-00001.parquet").unlink()
    again = _run(
        Households.open(path), grids, tmp_path / "dask", partition_rows=700, scheduler=dask_client
    )
    assert again.skipped == again.partitions - 1
    assert _read_out(tmp_path / "dask").equals(_read_out(tmp_path / "local"))


def test_cli_dask_engine(tmp_path: Path, dask_client: Any) -> None:
    grids, polys, codes = _grids_file(tmp_path)
    x, y = _probe_points(polys, 9, n=300)
    path = tmp_path / "hh.parquet"
    _geoparquet_points(path, x, y)
    address = dask_client.scheduler.address
    r = runner.invoke(
        cli_app,
        ["batch", "assign", "--households", str(path), "--grids", str(grids), "--out",
         str(tmp_path / "out"), "--engine", "dask", "--scheduler", address, "--index-on",
         "workers", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    got = _read_out(tmp_path / "out")
    assert [None if isinstance(v, float) else v for v in got["grid"].astype(object)] == _expected(
        x, y, polys, codes
    )


# --- the database's own answers (both backends) ------------------------------------------------


def test_demo_export_assigned_as_in_sql(demo_engine: Engine, tmp_path: Path) -> None:
    """The demo's GeoPackage export (grids, fields, households with the SQL's grid_code and
    field_id) assigned from the file gives the database's answer for every household."""
    from geogrid.io.export import export_geopackage

    gpkg = tmp_path / "demo.gpkg"
    with demo_engine.connect() as conn:
        export_geopackage(conn, out=gpkg)
    src = Households.open(gpkg, layer="households")
    index = AssignIndex(
        read_layer(gpkg, name="grid", layer="grids"),
        read_layer(gpkg, name="field", layer="responsibility_fields"),
    )
    result = assign_files(src, index, tmp_path / "out")
    got = _read_out(tmp_path / "out")
    sql = gpd.read_file(gpkg, layer="households")
    assert result.rows == len(sql) > 10000 and result.rejected == 0
    as_str = lambda s: [None if v is None or v != v else str(v) for v in s]  # noqa: E731
    assert as_str(got["grid"].astype(object)) == as_str(sql["grid_code"].astype(object))
    assert as_str(got["field"].astype(object)) == as_str(
        [None if v != v or v is None else int(v) for v in sql["field_id"]]
    )


def test_cli_lookup_file_accepts_geoparquet(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """``geogrid lookup --file`` reads GeoParquet points (here GCJ-02 x/y columns and a
    declared-WGS 84 geoarrow file) as it reads a CSV of lon/lat."""
    import csv

    from tests.lookup_factories import G3, make_lookup_community

    with engine.begin() as conn:
        make_lookup_community(conn)
    x = np.array([X0 + 0.002, X0 + 0.03, np.nan])
    y = np.array([Y0 + 0.005, Y0 + 0.005, Y0])
    geo = tmp_path / "points.parquet"
    _geoparquet_points(geo, x, y)
    gx, gy = gcrs.from_wgs84(x[:1], y[:1], "gcj02")
    xy = tmp_path / "gcj.parquet"
    pq.write_table(pa.table({"name": ["a"], "lon": gx, "lat": gy}), xy)
    for src, crs, n in ((geo, "wgs84", 3), (xy, "gcj02", 1)):
        dst = tmp_path / f"{src.stem}.csv"
        r = runner.invoke(
            cli_app,
            ["lookup", "--file", str(src), "--crs", crs, "--out", str(dst), "--json",
             "--database", db_url],
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["rows"] == n
        with dst.open(encoding="utf-8-sig", newline="") as fh:
            got = list(csv.DictReader(fh))
        assert got[0]["grid_code"] == G3
    assert got[0]["name"] == "a"


def test_cli_missing_inputs_and_a_finished_run(tmp_path: Path) -> None:
    """A missing file is an error naming it; running a finished run again says every part
    was already written, with the same totals."""
    grids, polys, _codes = _grids_file(tmp_path)
    x, y = _probe_points(polys, 10, n=200)
    path = tmp_path / "hh.parquet"
    _geoparquet_points(path, x, y)
    out = tmp_path / "out"
    base = ["batch", "assign", "--households", str(path), "--out", str(out), "--json"]
    r = runner.invoke(cli_app, [*base, "--grids", str(tmp_path / "nope.geojson")])
    assert r.exit_code == 1 and "no such file" in r.stderr and "grids" in r.stderr
    r = runner.invoke(cli_app, [*base, "--grids", str(grids)])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    r = runner.invoke(cli_app, [*base, "--grids", str(grids)])
    again = json.loads(r.stdout)
    assert again["skipped"] == again["partitions"] == first["partitions"]
    assert again["grid_assigned"] == first["grid_assigned"]
