"""``geogrid export``: one GeoPackage with every layer, personal data only when asked."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import Engine

from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.io.export import LAYERS, PERSONAL_COLUMNS, export_geopackage, mask_name
from geogrid.io.importer import import_layer
from geogrid.io.readers import gdal_without_spatialite
from tests.factories import X0, Y0, D, make_community

#: Interior points, three per grid (none on an edge, so containment is unambiguous).
POINTS = [(X0 + fx * D, Y0 + fy * D) for fx in (0.2, 0.5, 0.8, 1.2, 1.5, 1.8) for fy in (0.3, 1.7)]


def read(path: Path, layer: str) -> gpd.GeoDataFrame:
    # SpatiaLite is loaded in this process (the SpatiaLite backend): see readers.py.
    with gdal_without_spatialite():
        return gpd.read_file(path, layer=layer, engine="pyogrio")


@pytest.fixture
def community(engine: Engine, tmp_path: Path) -> Engine:
    """The square community with households, members, a field and requests, all imported."""
    with engine.begin() as conn:
        make_community(conn)
        q.insert_returning_ids(
            conn,
            m.Category,
            [
                {
                    "code": "street_lamp",
                    "name": "路灯",
                    "programme": "convenience",
                    "category_class": "component",
                }
            ],
        )
    members = tmp_path / "members.csv"
    members.write_text(
        "name,kind,phone,lon,lat\n张三明,resident,13800000000,114.405,23.115\n", encoding="utf-8"
    )
    households = tmp_path / "households.csv"
    households.write_text(
        "address_id,street_name,unit,room,head_name,phone,care_flags,lon,lat\n"
        + "".join(
            f"H{i:02d},长湖街,1,{100 + i},户主{i},1390000{i:04d},elderly;low_income,{x},{y}\n"
            for i, (x, y) in enumerate(POINTS)
        ),
        encoding="utf-8",
    )
    fields = tmp_path / "fields.csv"
    fields.write_text(
        f'name,member,wkt\n长湖街责任田,张三明,"{box(X0, Y0 + D, X0 + D, Y0 + 2 * D).wkt}"\n',
        encoding="utf-8",
    )
    requests = tmp_path / "requests.csv"
    requests.write_text(
        "category,received_at,status,lon,lat\n"
        "street_lamp,2026-07-01 09:30,received,114.405,23.115\n",
        encoding="utf-8",
    )
    with engine.begin() as conn:
        for layer, path in (
            ("members", members),
            ("households", households),
            ("fields", fields),
            ("requests", requests),
        ):
            import_layer(conn, layer=layer, path=path, crs="wgs84")
    return engine


def test_every_layer_and_grid_codes_round_trip(community: Engine, tmp_path: Path) -> None:
    out = tmp_path / "out" / "jinyuan.gpkg"
    with community.connect() as conn:
        counts = export_geopackage(conn, out=out)
    assert counts == {
        "communities": 1,
        "grids": 4,
        "responsibility_fields": 1,
        "streets": 0,
        "buildings": 0,
        "households": len(POINTS),
        "members": 1,
        "requests": 1,
        "data_sources": 0,
    }
    with gdal_without_spatialite():
        layers = dict(pyogrio.list_layers(out))
        info = pyogrio.read_info(out, layer="households")
    assert layers == LAYERS  # names and geometry types, empty layers included
    assert info["crs"] == "EPSG:4326"

    grids = read(out, "grids")
    households = read(out, "households")
    assert set(grids["code"]) == {f"441302011099{n:03d}" for n in range(1, 5)}
    assert (grids["plan_version"] == 1).all() and (grids["households"] == 3).all()
    joined = gpd.sjoin(households, grids[["code", "geometry"]], predicate="within")
    assert len(joined) == len(POINTS)
    assert (joined["grid_code"] == joined["code"]).all()

    # The field covers grid 001: its three households carry the field and its member.
    fields = read(out, "responsibility_fields")
    members = read(out, "members")
    assert fields.loc[0, "grid_code"] == "441302011099001" and fields.loc[0, "households"] == 3
    in_field = households[households["grid_code"] == "441302011099001"]
    assert (in_field["field_id"] == fields.loc[0, "id"]).all()
    assert (in_field["member_id"] == members.loc[0, "id"]).all()
    assert fields.loc[0, "member_masked"] == "张*明"

    requests = read(out, "requests")
    assert requests.loc[0, "received_at"] == "2026-07-01T09:30:00+08:00"
    assert requests.loc[0, "grid_code"] == "441302011099001"
    assert requests.loc[0, "member_id"] == members.loc[0, "id"]
    assert requests.loc[0, "member_masked"] == "张*明"
    assert read(out, "communities").loc[0, "code"] == "441302011099"


def test_personal_data_only_when_asked(community: Engine, tmp_path: Path) -> None:
    public, private = tmp_path / "public.gpkg", tmp_path / "private.gpkg"
    with community.connect() as conn:
        export_geopackage(conn, out=public, community_code="441302011099")
        export_geopackage(conn, out=private, include_personal=True)
    for layer, columns in PERSONAL_COLUMNS.items():
        assert not set(columns) & set(read(public, layer).columns), layer
        assert set(columns) <= set(read(private, layer).columns), layer
    members = read(public, "members")
    assert members.loc[0, "name_masked"] == "张*明"
    assert "张三明" not in members.astype(str).to_numpy().ravel().tolist()
    households = read(private, "households").set_index("address_id")
    assert households.loc["H01", "head_name"] == "户主1"
    assert households.loc["H01", "room"] == "101"
    assert households.loc["H01", "care_flags"] == "elderly;low_income"
    assert read(private, "members").loc[0, "name"] == "张三明"


def test_export_replaces_file_and_filters_community(community: Engine, tmp_path: Path) -> None:
    out = tmp_path / "x.gpkg"
    out.write_bytes(b"not a geopackage")
    with community.begin() as conn:
        q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": "441302011098",
                    "name": "别的社区",
                    "boundary": q.geom_value(MultiPolygon([box(X0 + 1, Y0, X0 + 1 + D, Y0 + D)])),
                    "created_at": m.utcnow(),
                }
            ],
        )
    with community.connect() as conn:
        both = export_geopackage(conn, out=out)
        one = export_geopackage(conn, out=out, community_code="441302011099")
    assert both["communities"] == 2 and one["communities"] == 1
    assert one["households"] == len(POINTS)
    assert len(read(out, "communities")) == 1


def test_mask_name() -> None:
    assert mask_name("张三明") == "张*明"
    assert mask_name("李四") == "李*"
    assert mask_name("欧阳小明") == "欧*明"  # one * whatever the length
    assert mask_name("王") == "*"
    assert mask_name(" ") == "" and mask_name(None) == ""


def test_points_fixture_is_interior() -> None:
    # Guard for the round-trip test: no point lies on a grid edge.
    for x, y in POINTS:
        assert Point(x, y).distance(box(X0, Y0, X0 + 2 * D, Y0 + 2 * D).boundary) > 0.001
        assert abs(x - (X0 + D)) > 0.001 and abs(y - (Y0 + D)) > 0.001
