"""``geogrid import``: formats, encodings, CRSs, refusals with every problem, upserts.

Fixture files are written into ``tmp_path`` by each test; the community is the 2×2 km square
of ``tests.factories`` (code 441302011099, lon 114.40–114.42, lat 23.10–23.12).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import openpyxl
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, box, mapping
from sqlalchemy import Connection, Engine, select

from geogrid.crs import wgs84_to_gcj02
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.errors import ImportRefused
from geogrid.io.importer import import_layer
from geogrid.io.readers import detect_encoding, gdal_without_spatialite
from tests.factories import X0, Y0, D, make_community, square_grids

CODE = "441302011099"
TABLES = {
    "plans": m.BoundaryPlan,
    "grids": m.Grid,
    "households": m.Household,
    "streets": m.Street,
    "buildings": m.Building,
    "members": m.Member,
    "fields": m.ResponsibilityField,
    "requests": m.Request,
}


# --- helpers ---------------------------------------------------------------------------------


def bare_community(conn: Connection) -> int:
    """The test community without any plan."""
    return q.insert_returning_ids(
        conn,
        m.Community,
        [
            {
                "code": CODE,
                "name": "测试社区",
                "boundary": q.geom_value(MultiPolygon([box(X0, Y0, X0 + 2 * D, Y0 + 2 * D)])),
                "created_at": m.utcnow(),
            }
        ],
    )[0]


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: q.count(conn, model) for name, model in TABLES.items()}


def feature(geometry: Any, **props: Any) -> dict[str, Any]:
    geom = geometry if isinstance(geometry, dict) or geometry is None else mapping(geometry)
    return {"type": "Feature", "properties": props, "geometry": geom}


def write_geojson(path: Path, features: list[dict[str, Any]], crs: str | None = None) -> Path:
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def grid_features() -> list[dict[str, Any]]:
    return [feature(g, code=c, name=f"第{c[-1]}网格") for c, g in square_grids()]


def refuse(engine: Engine, **kwargs: Any) -> list[dict[str, Any]]:
    """Import expecting a refusal; return its problems (the transaction is rolled back)."""
    with engine.connect() as conn, conn.begin(), pytest.raises(ImportRefused) as info:
        import_layer(conn, **kwargs)
    err = info.value
    assert err.code == "import_refused"
    problems: list[dict[str, Any]] = err.details["problems"]
    assert err.details["count"] == len(problems)
    for p in problems:  # every problem is named in the message
        assert p["message"] in err.message
    return problems


def find(problems: list[dict[str, Any]], key: str, at: int | None, field: str) -> str:
    """The message of the problem at ``key`` = ``at`` on ``field`` (fails if absent)."""
    found = [p["message"] for p in problems if p.get(key) == at and p["field"] == field]
    assert found, f"no problem at {key} {at} on {field}: {problems}"
    return found[0]


def stored_points(engine: Engine) -> dict[str, Point]:
    with engine.connect() as conn:
        rows = conn.execute(select(m.Household.address_id, q.wkb(m.Household.geom))).all()
    return {a: shapely.from_wkb(bytes(g)) for a, g in rows}


# --- grids and plans ------------------------------------------------------------------------


def test_grids_first_import_activates_second_stays_draft(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        cid = bare_community(conn)
        q.insert_returning_ids(
            conn,
            m.Household,
            [
                {
                    "community_id": cid,
                    "address_id": "H1",
                    "geom": q.geom_value(Point(X0 + 0.005, Y0 + 0.015)),
                },
                {
                    "community_id": cid,
                    "address_id": "H2",
                    "geom": q.geom_value(Point(X0 + 0.015, Y0 + 0.005)),
                },
            ],
        )
    path = write_geojson(tmp_path / "grids.geojson", grid_features())
    with engine.begin() as conn:
        first = import_layer(conn, layer="grids", path=path)
    assert first.activated and first.plan_status == "active" and first.plan_version == 1
    assert first.inserted == 4 and first.rows_read == 4
    assert first.assignment is not None and first.assignment["households_in_grids"] == 2
    assert first.crs == "wgs84" and first.warnings == []
    json.dumps(first.to_dict())  # JSON-able

    # A second plan from a GeoPackage: a draft, the first stays active.
    frame = gpd.GeoDataFrame(
        {"code": [c for c, _ in square_grids()]},
        geometry=[g for _, g in square_grids()],
        crs="EPSG:4490",
    )
    gpkg = tmp_path / "redraw.gpkg"
    with gdal_without_spatialite():  # SpatiaLite is loaded in this process: see readers.py
        frame.to_file(gpkg, layer="grids", driver="GPKG", engine="pyogrio")
    with engine.begin() as conn:
        second = import_layer(conn, layer="grids", path=gpkg, plan_name="redraw")
        active = q.active_plan(conn, community_id=cid)
        name = conn.execute(
            select(m.BoundaryPlan.name).where(m.BoundaryPlan.id == second.plan_id)
        ).scalar_one()
    assert not second.activated and second.plan_status == "draft" and second.plan_version == 2
    assert second.crs == "cgcs2000" and name == "redraw"
    assert active is not None and active.id == first.plan_id
    assert counts(engine)["grids"] == 8


def test_dry_run_rolls_back_everything(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        bare_community(conn)
    before = counts(engine)
    path = write_geojson(tmp_path / "grids.geojson", grid_features())
    with engine.connect() as conn:
        trans = conn.begin()
        report = import_layer(conn, layer="grids", path=path)
        trans.rollback()
    assert report.activated and report.inserted == 4  # what would happen
    assert counts(engine) == before


def test_tiling_warnings(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        bare_community(conn)
    grids = square_grids()
    grids[1] = (grids[1][0], box(X0 + D * 0.9, Y0 + D, X0 + 2 * D, Y0 + 2 * D))  # overlaps 001
    grids[3] = (grids[3][0], box(X0 + D, Y0, X0 + 1.5 * D, Y0 + D))  # leaves a gap
    path = write_geojson(tmp_path / "grids.geojson", [feature(g, code=c) for c, g in grids])
    with engine.begin() as conn:
        report = import_layer(conn, layer="grids", path=path)
    text = "\n".join(report.warnings)
    assert "441302011099001 and 441302011099002 overlap" in text
    assert "uncovered" in text


def test_bad_grids_refused_with_every_problem(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        bare_community(conn)
    before = counts(engine)
    _, (_, ne), (_, sw), (_, se) = square_grids()
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[X0, Y0], [X0 + D, Y0 + D], [X0 + D, Y0], [X0, Y0 + D], [X0, Y0]]],
    }
    unclosed = {
        "type": "Polygon",
        "coordinates": [[[X0, Y0], [X0 + D, Y0], [X0 + D, Y0 + D], [X0, Y0 + D]]],
    }
    features = [
        feature(ne, code=CODE + "001"),
        feature(bowtie, code=CODE + "002"),
        feature(unclosed, code=CODE + "003"),
        feature(LineString([(X0, Y0), (X0 + D, Y0 + D)]), code=CODE + "004"),
        feature(se, code=CODE + "001"),  # duplicate code
        feature(shapely.affinity.translate(sw, xoff=0.1), code=CODE + "005"),  # outside
        feature(box(200, Y0, 200.001, Y0 + 0.001), code=CODE + "006"),  # lon out of range
        feature(sw, code="123"),  # not 15 digits with the community prefix
        feature(sw, name="no code"),
        feature(sw, code=CODE + "009", lead_member=999),  # unknown member
    ]
    problems = refuse(engine, layer="grids", path=write_geojson(tmp_path / "g.geojson", features))
    assert "Self-intersection" in find(problems, "feature", 1, "geometry")
    assert "[114.405 23.105]" in find(problems, "feature", 1, "geometry")  # the location
    assert "not closed" in find(problems, "feature", 2, "geometry")
    assert "wrong geometry type LineString" in find(problems, "feature", 3, "geometry")
    assert "duplicate grid code" in find(problems, "feature", 4, "code")
    assert "also at feature 0" in find(problems, "feature", 4, "code")
    assert "outside the boundary" in find(problems, "feature", 5, "geometry")
    assert "between -180 and 180" in find(problems, "feature", 6, "geometry")
    assert "15 digits" in find(problems, "feature", 7, "code")
    assert "required" in find(problems, "feature", 8, "code")
    assert "unknown member id 999" in find(problems, "feature", 9, "lead_member")
    assert all(p["file"] == "g.geojson" for p in problems)
    assert len(problems) == 9
    assert counts(engine) == before


def test_small_overhang_within_tolerance(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        bare_community(conn)
    half_metre = 0.5 / 102_000  # degrees of longitude at 23°N
    grids = square_grids()
    grids[0] = (grids[0][0], box(X0 - half_metre, Y0 + D, X0 + D, Y0 + 2 * D))
    path = write_geojson(tmp_path / "g.geojson", [feature(g, code=c) for c, g in grids])
    with engine.begin() as conn:
        assert import_layer(conn, layer="grids", path=path).inserted == 4
    grids[0] = (grids[0][0], box(X0 - 5 * half_metre, Y0 + D, X0 + D, Y0 + 2 * D))
    path = write_geojson(tmp_path / "g2.geojson", [feature(g, code=c) for c, g in grids])
    problems = refuse(engine, layer="grids", path=path)
    assert re.search(r"by [23] m \(tolerance 1 m\)", find(problems, "feature", 0, "geometry"))


def test_gpkg_problems_name_feature_ids(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        bare_community(conn)
    bowtie = shapely.Polygon([(X0, Y0), (X0 + D, Y0 + D), (X0 + D, Y0), (X0, Y0 + D)])
    frame = gpd.GeoDataFrame(
        {"code": [CODE + "001", CODE + "002"]}, geometry=[square_grids()[0][1], bowtie], crs=4326
    )
    gpkg = tmp_path / "grids.gpkg"
    with gdal_without_spatialite():
        frame.to_file(gpkg, layer="plan", driver="GPKG", engine="pyogrio")
        frame.to_file(gpkg, layer="other", driver="GPKG", engine="pyogrio")
    problems = refuse(engine, layer="grids", path=gpkg)
    assert "none is named 'grids'" in find(problems, "feature", None, "layer")
    with gdal_without_spatialite():
        frame.to_file(gpkg, layer="grids", driver="GPKG", engine="pyogrio")
    problems = refuse(engine, layer="grids", path=gpkg)
    # GeoPackage features are named by their FID (1-based, as QGIS shows it).
    assert "Self-intersection" in find(problems, "feature", 2, "geometry")


# --- CRS --------------------------------------------------------------------------------------


def test_csv_without_crs_refused(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    path = tmp_path / "h.csv"
    path.write_text("address_id,lon,lat\nH1,114.405,23.105\n", encoding="utf-8")
    problems = refuse(engine, layer="households", path=path)
    assert problems == [
        {"file": "h.csv", "line": None, "field": "crs", "message": problems[0]["message"]}
    ]
    assert "declares no CRS" in problems[0]["message"] and "gcj02" in problems[0]["message"]


def test_crs_conflict_refused(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    frame = gpd.GeoDataFrame(
        {"address_id": ["H1"]}, geometry=[Point(X0 + 0.005, Y0 + 0.005)], crs="EPSG:4326"
    )
    gpkg = tmp_path / "h.gpkg"
    with gdal_without_spatialite():
        frame.to_file(gpkg, layer="households", driver="GPKG", engine="pyogrio")
    problems = refuse(engine, layer="households", path=gpkg, crs="EPSG:3857")
    assert "CRS conflict" in find(problems, "feature", None, "crs")

    path = write_geojson(
        tmp_path / "h.geojson",
        [feature(Point(12_735_000, 2_645_000), address_id="H1")],
        crs="urn:ogc:def:crs:EPSG::3857",
    )
    problems = refuse(engine, layer="households", path=path, crs="wgs84")
    assert "CRS conflict" in find(problems, "feature", None, "crs")
    # Declared and no --crs: read in the declared CRS (Web Mercator), converted.
    x, y = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(X0 + 0.005, Y0 + 0.005)
    path = write_geojson(
        tmp_path / "ok.geojson", [feature(Point(x, y), address_id="H1")], crs="EPSG:3857"
    )
    with engine.begin() as conn:
        report = import_layer(conn, layer="households", path=path)
    assert report.crs == "EPSG:3857"
    assert stored_points(engine)["H1"].distance(Point(X0 + 0.005, Y0 + 0.005)) < 1e-9


def test_gcj02_csv_is_converted(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    true = Point(X0 + 0.5 * D, Y0 + 0.5 * D)
    lon, lat = wgs84_to_gcj02(true.x, true.y)
    path = tmp_path / "amap.csv"
    path.write_text(f"address_id,lng,lat\nH1,{lon!r},{lat!r}\n", encoding="utf-8")
    with engine.begin() as conn:
        report = import_layer(conn, layer="households", path=path, crs="GCJ-02")
    assert report.crs == "gcj02" and report.inserted == 1
    stored = stored_points(engine)["H1"]
    assert stored.distance(true) < 1e-7
    moved = pyproj.Geod(ellps="WGS84").inv(lon, lat, stored.x, stored.y)[2]
    assert 300 < moved < 700  # the GCJ-02 offset, ~500 m


# --- encodings and formats ------------------------------------------------------------------


def test_gbk_csv_detected_or_given(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    text = (
        "name,kind,branch,home_unit\n"
        "张三明,resident,第一党支部,\n"
        "李四,duty_post,第一党支部,惠州市供电局\n"
    )
    path = tmp_path / "members.csv"
    path.write_bytes(text.encode("gbk"))
    assert detect_encoding(path.read_bytes()) == "gb18030"
    with engine.begin() as conn:
        report = import_layer(conn, layer="members", path=path)
        names = set(conn.execute(select(m.Member.name)).scalars())
        units = set(conn.execute(select(m.ResidentUnit.name)).scalars())
        branches = set(conn.execute(select(m.Branch.name)).scalars())
    assert report.encoding == "gb18030" and report.inserted == 2
    assert report.created == {"resident_units": 1, "branches": 1}
    assert names == {"张三明", "李四"} and units == {"惠州市供电局"} and branches == {"第一党支部"}
    # Given explicitly; the same rows again are recognised (name + phone) and left unchanged.
    with engine.begin() as conn:
        again = import_layer(conn, layer="members", path=path, encoding="gbk")
    assert (again.encoding, again.inserted, again.unchanged) == ("gbk", 0, 2)


def test_household_csv_problems_name_lines(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    before = counts(engine)
    x, y = X0 + 0.005, Y0 + 0.005
    path = tmp_path / "households.csv"
    path.write_text(
        "address_id,street_name,size,lon,lat\n"  # line 1
        f"H1,长湖街,3,{x},{y}\n"  # 2
        "\n"  # 3: blank
        f'H2,"金源\n路",2,{x},{y}\n'  # 4–5: a quoted field over two lines
        f"H1,长湖街,1,{x},{y}\n"  # 6: duplicate address_id
        f"H3,x,abc,{x},{y}\n"  # 7: bad size
        f"H4,x,1,abc,{y}\n"  # 8: bad lon
        f"H5,x,1,114.5,{y}\n"  # 9: outside the community
        f",x,1,{x},{y}\n"  # 10: missing address_id
        f"H6,x,1,{x},95\n",  # 11: lat out of range
        encoding="utf-8",
    )
    problems = refuse(engine, layer="households", path=path, crs="wgs84")
    assert "duplicate address_id 'H1' (also at line 2)" in find(problems, "line", 6, "address_id")
    assert "whole number" in find(problems, "line", 7, "size")
    assert "must be a number" in find(problems, "line", 8, "lon")
    assert "outside the boundary" in find(problems, "line", 9, "geometry")
    assert "required" in find(problems, "line", 10, "address_id")
    assert "between -90 and 90" in find(problems, "line", 11, "lat")
    assert len(problems) == 6
    assert counts(engine) == before


def test_missing_required_column(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    path = tmp_path / "h.csv"
    path.write_text("id,lon,lat\nH1,114.405,23.105\n", encoding="utf-8")
    problems = refuse(engine, layer="households", path=path, crs="wgs84")
    assert "missing required column 'address_id'" in find(problems, "line", 1, "address_id")


def test_xlsx_households(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(
        [
            "address_id",
            "street_name",
            "unit",
            "room",
            "size",
            "registered",
            "经度",
            "纬度",
            "head_name",
        ]
    )
    sheet.append(
        [441302011099000001, "长湖街", "1", "101", 3, "是", X0 + 0.005, Y0 + 0.005, "王五"]
    )
    sheet.append([None] * 9)  # an empty row 3
    sheet.append(["H2", "金源路", None, None, 2.5, "否", X0 + 0.015, Y0 + 0.005, None])
    path = tmp_path / "households.xlsx"
    book.save(path)
    problems = refuse(engine, layer="households", path=path, crs="cgcs2000")
    assert "only 15 digits" in find(problems, "line", 2, "address_id")
    assert "whole number" in find(problems, "line", 4, "size")
    sheet.cell(row=2, column=1, value="441302011099000001")  # as text, as the message says
    sheet.cell(row=4, column=5, value=2)
    book.save(path)
    with engine.begin() as conn:
        report = import_layer(conn, layer="households", path=path, crs="cgcs2000")
        rows = conn.execute(
            select(m.Household.address_id, m.Household.registered, m.Household.size).order_by(
                m.Household.address_id
            )
        ).all()
        head = conn.execute(select(m.HouseholdPersonal.head_name)).scalars().all()
    assert report.inserted == 2 and report.format == "xlsx"
    assert [tuple(r) for r in rows] == [("441302011099000001", True, 3), ("H2", False, 2)]
    assert head == ["王五"]  # H2 has no personal data in the file
    assert report.assignment is not None  # the community has an active plan


def test_shapefile_gbk_projected_streets(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    lines = [
        LineString([(X0 + 0.001, Y0 + 0.01), (X0 + 0.019, Y0 + 0.01)]),
        LineString([(X0 + 0.01, Y0 + 0.001), (X0 + 0.01, Y0 + 0.019)]),
    ]
    frame = gpd.GeoDataFrame(
        {"name": ["长湖街", "金源路"], "kind": ["街", "路"]}, geometry=lines, crs=4326
    )
    shp = tmp_path / "streets.shp"
    frame.to_crs(32650).to_file(shp, engine="pyogrio", encoding="GBK")
    shp.with_suffix(".cpg").unlink()  # as many Chinese shapefiles come: GBK, no .cpg
    with engine.begin() as conn:
        report = import_layer(conn, layer="streets", path=shp)
        rows = conn.execute(
            select(m.Street.name, m.Street.kind, q.wkb(m.Street.geom)).order_by(m.Street.id)
        ).all()
    assert report.crs == "EPSG:32650" and report.encoding == "gb18030"
    assert [(r.name, r.kind) for r in rows] == [("长湖街", "街"), ("金源路", "路")]
    got = shapely.from_wkb(bytes(rows[0].geometry))
    assert got.geom_type == "MultiLineString"
    assert got.hausdorff_distance(lines[0]) < 1e-7

    # Re-import: keyed by name, so nothing changes.
    with engine.begin() as conn:
        again = import_layer(conn, layer="streets", path=shp)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)


def test_households_upsert_by_address_id(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    x, y = X0 + 0.005, Y0 + 0.005
    path = tmp_path / "h.csv"
    path.write_text(
        f"address_id,size,head_name,care_flags,lon,lat\nA,1,甲,elderly;disabled,{x},{y}\n"
        f"B,2,,,{x},{y}\nC,3,,,{x},{y}\n",
        encoding="utf-8",
    )
    with engine.begin() as conn:
        first = import_layer(conn, layer="households", path=path, crs="wgs84")
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    path.write_text(
        f"address_id,size,lon,lat\nA,1,{x},{y}\nB,5,{x},{y}\nD,1,{X0 + 0.015},{y}\n",
        encoding="utf-8",
    )
    with engine.begin() as conn:
        second = import_layer(conn, layer="households", path=path, crs="wgs84")
        sizes = dict(conn.execute(select(m.Household.address_id, m.Household.size)).all())
        flags = conn.execute(select(m.HouseholdPersonal.care_flags)).scalars().all()
    assert (second.inserted, second.updated, second.unchanged) == (1, 1, 1)
    assert sizes == {"A": 1, "B": 5, "C": 3, "D": 1}
    assert ["elderly", "disabled"] in flags
    assert second.assignment is not None and second.assignment["households_in_grids"] == 4


def test_households_bulk_load_keeps_every_value(engine: Engine, tmp_path: Path) -> None:
    """Households are bulk-loaded (COPY on PostGIS): text with the characters COPY escapes,
    empty cells, booleans and exact coordinates arrive as the file has them."""
    with engine.begin() as conn:
        make_community(conn)
    x, y = X0 + 0.0051234567891, Y0 + 0.0059876543219
    awkward = ["tab\there", "back\\slash", "line\nbreak", "\\N", "12号之一", None]
    frame = gpd.GeoDataFrame(
        {
            "address_id": [f"K{i}" for i in range(len(awkward))],
            "room": awkward,
            "registered": [True, False, True, False, True, False],
            "size": [1, 2, 3, 4, 5, 6],
        },
        geometry=[Point(x + i * 1e-4, y) for i in range(len(awkward))],
        crs="EPSG:4326",
    )
    path = tmp_path / "h.gpkg"
    with gdal_without_spatialite():
        frame.to_file(path, layer="households", driver="GPKG", engine="pyogrio")
    with engine.begin() as conn:
        report = import_layer(conn, layer="households", path=path)
        rows = conn.execute(
            select(
                m.Household.address_id,
                m.Household.room,
                m.Household.registered,
                m.Household.size,
                m.Household.street_id,
                q.wkb(m.Household.geom),
            ).order_by(m.Household.address_id)
        ).all()
    assert report.inserted == 6
    assert [r.room for r in rows] == awkward
    assert [r.registered for r in rows] == [True, False, True, False, True, False]
    assert [r.size for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {r.street_id for r in rows} == {None}
    points = [shapely.from_wkb(bytes(r.geometry)) for r in rows]
    assert [(p.x, p.y) for p in points] == [(x + i * 1e-4, y) for i in range(len(awkward))]


# --- buildings, members, fields, requests ---------------------------------------------------


def test_buildings_aliases_and_multi_part_footprints(engine: Engine, tmp_path: Path) -> None:
    """Courtyard buildings and OSM multipolygon relations have several parts: kept whole."""
    with engine.begin() as conn:
        make_community(conn)
    b1 = box(X0 + 0.001, Y0 + 0.001, X0 + 0.002, Y0 + 0.002)
    two = MultiPolygon([box(X0 + 0.003, Y0 + 0.003, X0 + 0.004, Y0 + 0.004), b1.buffer(-0.0004)])
    features = [
        feature(b1, name="1栋", compound="金源花园", aliases="一栋; A栋|东楼", floors=18),
        feature(two, name="2栋", compound="金源花园"),
        feature(Point(X0 + 0.001, Y0 + 0.001), name="3栋", compound="金源花园"),
    ]
    problems = refuse(
        engine, layer="buildings", path=write_geojson(tmp_path / "b.geojson", features)
    )
    assert "Point" in find(problems, "feature", 2, "geometry")
    path = write_geojson(tmp_path / "b.geojson", features[:2])
    with engine.begin() as conn:
        report = import_layer(conn, layer="buildings", path=path)
        rows = conn.execute(
            select(m.Building.aliases, m.Building.floors, q.wkb(m.Building.geom)).order_by(
                m.Building.name
            )
        ).all()
    assert report.inserted == 2
    assert rows[0].aliases == ["一栋", "A栋", "东楼"] and rows[0].floors == 18
    shapes = [shapely.from_wkb(bytes(r.geometry)) for r in rows]
    assert [g.geom_type for g in shapes] == ["MultiPolygon", "MultiPolygon"]
    assert [len(g.geoms) for g in shapes] == [1, 2]
    assert shapes[1].equals(two)


def test_members_refused_kind_unknown_id_and_grid(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    path = tmp_path / "m.csv"
    path.write_text(
        "id,name,kind,lead_grid\n"
        ",张三,volunteer,\n"
        "42,李四,resident,\n"
        f",王五,resident,{CODE}009\n"
        f",赵六,stationed,{CODE}001\n"
        f",钱七,stationed,{CODE}001\n",
        encoding="utf-8",
    )
    problems = refuse(engine, layer="members", path=path)
    assert "unknown member kind 'volunteer'" in find(problems, "line", 2, "kind")
    assert "unknown member id 42" in find(problems, "line", 3, "id")
    assert "unknown grid '441302011099009' in the active plan v1" in find(
        problems, "line", 4, "lead_grid"
    )
    assert "duplicate lead of grid" in find(problems, "line", 6, "lead_grid")
    assert len(problems) == 4


def test_members_lead_grids(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        _, plan_id, grid_ids = make_community(conn)
    path = tmp_path / "m.csv"
    path.write_text(
        f"name,kind,lead_grid\n赵六,stationed,{CODE}001\n钱七,resident,{CODE}004\n",
        encoding="utf-8",
    )
    with engine.begin() as conn:
        report = import_layer(conn, layer="members", path=path)
        leads = dict(
            conn.execute(
                select(m.Grid.code, m.Member.name)
                .join(m.Member, m.Member.id == m.Grid.lead_member_id)
                .where(m.Grid.plan_id == plan_id)
            ).all()
        )
    assert report.created["grid_leads"] == 2 and len(grid_ids) == 4
    assert leads == {CODE + "001": "赵六", CODE + "004": "钱七"}


def test_fields_and_requests_are_assigned(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        cid, _, grid_ids = make_community(conn)
        (member_id,) = q.insert_returning_ids(
            conn, m.Member, [{"community_id": cid, "name": "王小明", "kind": "resident"}]
        )
        q.insert_returning_ids(
            conn,
            m.Category,
            [
                {
                    "code": "street_lamp",
                    "name": "路灯",
                    "programme": "convenience",
                    "category_class": "component",
                    "sla_hours": 48,
                }
            ],
        )
    field = box(X0, Y0 + D, X0 + D, Y0 + 2 * D)  # the whole of grid 001
    bad = [
        feature(field, name="长湖街责任田", member="赵六"),
        feature(field, name="x", member_id=7),
    ]
    problems = refuse(engine, layer="fields", path=write_geojson(tmp_path / "f.geojson", bad))
    assert "unknown member '赵六'" in find(problems, "feature", 0, "member")
    assert "unknown member id 7" in find(problems, "feature", 1, "member_id")
    path = write_geojson(
        tmp_path / "f.geojson", [feature(field, name="长湖街责任田", member="王小明")]
    )
    with engine.begin() as conn:
        report = import_layer(conn, layer="fields", path=path)
        held = conn.execute(select(m.ResponsibilityField.member_id)).scalar_one()
    assert report.inserted == 1 and held == member_id
    assert report.assignment is not None and report.assignment["fields_regridded"] == 1

    path = tmp_path / "requests.csv"
    path.write_text(
        "category,received_at,status,description,lon,lat\n"
        f"street_lamp,2026-07-01 09:30,received,路灯不亮,{X0 + 0.005},{Y0 + 0.015}\n"
        f"street_lamp,2026-07-02T10:00+08:00,closed,修好了,{X0 + 0.015},{Y0 + 0.005}\n"
        f"pothole,2026-07-02,received,,{X0 + 0.015},{Y0 + 0.005}\n"
        f"street_lamp,yesterday,open,,{X0 + 0.015},{Y0 + 0.005}\n",
        encoding="utf-8",
    )
    problems = refuse(engine, layer="requests", path=path, crs="wgs84")
    assert "unknown category 'pothole'" in find(problems, "line", 4, "category")
    assert "ISO 8601" in find(problems, "line", 5, "received_at")
    assert "unknown status 'open'" in find(problems, "line", 5, "status")
    path.write_text(
        "\n".join(path.read_text(encoding="utf-8").splitlines()[:3]) + "\n", encoding="utf-8"
    )
    with engine.begin() as conn:
        report = import_layer(conn, layer="requests", path=path, crs="wgs84")
        rows = conn.execute(
            select(m.Request.received_at, m.Request.grid_id, m.Request.member_id).order_by(
                m.Request.id
            )
        ).all()
        events = q.count(conn, m.RequestEvent)
    assert report.inserted == 2 and events == 2
    # Naive times are in the community's zone (Asia/Shanghai, UTC+8).
    assert rows[0].received_at == dt.datetime(2026, 7, 1, 1, 30, tzinfo=dt.UTC)
    assert rows[0].grid_id == grid_ids[CODE + "001"] and rows[0].member_id == member_id
    assert rows[1].grid_id == grid_ids[CODE + "004"]  # closed too: the first requests
    with engine.begin() as conn:
        again = import_layer(conn, layer="requests", path=path, crs="wgs84")
    assert (again.inserted, again.unchanged) == (0, 2)


def test_unknown_layer_and_format(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    path = tmp_path / "x.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    problems = refuse(engine, layer="households", path=path)
    assert "save it as .xlsx" in problems[0]["message"]
    with engine.connect() as conn, pytest.raises(Exception, match="unknown layer"):
        import_layer(conn, layer="parcels", path=path)


def test_problems_are_capped_and_header_checked(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        make_community(conn)
    path = tmp_path / "h.csv"
    path.write_text(
        "address_id,size,lon,lat\n" + "".join(f"H{i},-1,114.405,23.105\n" for i in range(150)),
        encoding="utf-8",
    )
    with engine.connect() as conn, pytest.raises(ImportRefused) as info:
        import_layer(conn, layer="households", path=path, crs="wgs84")
    details = info.value.details
    assert details["count"] == 150 and details["truncated"] is True
    assert len(details["problems"]) == 100
    assert "and 50 more" in info.value.message
    path.write_text("address_id,lng,x,lat\nH1,114.405,114.405,23.105\n", encoding="utf-8")
    problems = refuse(engine, layer="households", path=path, crs="wgs84")
    assert "repeats the column 'lon'" in find(problems, "line", 1, "lon")
