"""``geogrid import communities``: a database starts empty; communities come from a file.

Two fictional communities side by side: one Chinese (12-digit code, CGCS2000 = WGS 84), one
Finnish (``Europe/Helsinki``, a non-Chinese code whose grid codes take it as a prefix).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, select

from geogrid.db import models, queries
from geogrid.errors import InvalidInput
from geogrid.io.importer import import_layer
from tests.test_import import feature, find, refuse, write_geojson

# Two 1 km-ish squares that share an edge (lon 114.40–114.42, lat 23.10–23.11).
WEST = box(114.40, 23.10, 114.41, 23.11)
EAST = box(114.41, 23.10, 114.42, 23.11)
# Helsinki's Kluuvi, roughly: far from both.
KLUUVI = box(24.940, 60.168, 24.952, 60.174)


def communities(**overrides: dict[str, Any]) -> list[dict[str, Any]]:
    rows = {
        "west": {"geometry": WEST, "code": "441302011101", "name": "西湖社区", "name_en": "Xihu"},
        "east": {"geometry": EAST, "code": "441302011102", "name": "东湖社区"},
        "kluuvi": {
            "geometry": KLUUVI,
            "code": "FI-091-KLU",
            "name": "Kluuvi",
            "country": "fi",
            "timezone": "Europe/Helsinki",
            "district": "Helsinki",
        },
    }
    for key, change in overrides.items():
        rows[key] = {**rows[key], **change}
    return [feature(r.pop("geometry"), **r) for r in rows.values()]


def stored(engine: Engine) -> dict[str, dict[str, Any]]:
    c = models.Community
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                c.code,
                c.name,
                c.name_en,
                c.country,
                c.timezone,
                c.subdistrict_code,
                c.district_code,
                c.district,
                queries.wkb(c.boundary),
            )
        ).all()
    return {r.code: {**r._asdict(), "geometry": shapely.from_wkb(bytes(r.geometry))} for r in rows}


def test_communities_are_created_then_updated_by_code(engine: Engine, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "c.geojson", communities())
    with engine.begin() as conn:
        report = import_layer(
            conn, layer="communities", path=path, default_timezone="Asia/Shanghai"
        )
    assert (report.inserted, report.updated, report.community_code) == (3, 0, None)
    rows = stored(engine)
    west, kluuvi = rows["441302011101"], rows["FI-091-KLU"]
    # Chinese codes give their subdistrict and county heads; the default zone is the setting.
    assert (west["subdistrict_code"], west["district_code"]) == ("441302011", "441302")
    assert (west["country"], west["timezone"], west["name_en"]) == ("CN", "Asia/Shanghai", "Xihu")
    assert (kluuvi["country"], kluuvi["timezone"]) == ("FI", "Europe/Helsinki")
    assert kluuvi["subdistrict_code"] is None and kluuvi["district"] == "Helsinki"
    assert kluuvi["geometry"].geom_type == "MultiPolygon"
    assert kluuvi["geometry"].equals(MultiPolygon([KLUUVI]))

    # Re-import: matched on code; only what changed is written.
    path = write_geojson(tmp_path / "c.geojson", communities(east={"name": "东湖新社区"}))
    with engine.begin() as conn:
        report = import_layer(conn, layer="communities", path=path)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    assert stored(engine)["441302011102"]["name"] == "东湖新社区"


def test_overlapping_communities_are_refused_naming_both(engine: Engine, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "c.geojson", communities())
    with engine.begin() as conn:
        import_layer(conn, layer="communities", path=path)
    # A new community reaching 100 m into the stored west one, and one overlapping
    # another row of its own file.
    intruder = box(114.399, 23.10, 114.401, 23.11)
    twin = box(24.950, 60.168, 24.960, 60.174)
    path = write_geojson(
        tmp_path / "d.geojson",
        [
            feature(intruder, code="441302011103", name="新社区"),
            feature(twin, code="FI-091-KRU", name="Kruununhaka", country="FI"),
            feature(KLUUVI, code="FI-091-KLU", name="Kluuvi", country="FI"),
        ],
    )
    problems = refuse(engine, layer="communities", path=path)
    message = find(problems, "feature", 0, "geometry")
    assert "441302011103 overlaps community 441302011101 (stored)" in message
    area = float(message.split(" by ")[1].split(" m²")[0].replace(",", ""))
    assert 100_000 < area < 120_000  # 0.001° × 0.01° ≈ 102 m × 1 023 m at 23.1° N
    assert "FI-091-KRU overlaps community FI-091-KLU" in find(problems, "feature", 1, "geometry")
    assert len(stored(engine)) == 3  # nothing written


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"code": "4413020111", "country": "CN"}, "code", "12 digits"),
        ({"subdistrict_code": "441302012"}, "subdistrict_code", "expected '441302011'"),
        ({"timezone": "Asia/Beijing"}, "timezone", "unknown time zone"),
        ({"code": "KLU-2", "country": None}, "country", "country is required"),
        ({"country": "China"}, "country", "two letters"),
    ],
)
def test_bad_rows_are_refused_with_the_field(
    engine: Engine, tmp_path: Path, change: dict[str, Any], field: str, words: str
) -> None:
    features = communities(west={k: v for k, v in change.items() if v is not None})
    if change.get("country", "") is None:
        features[0]["properties"].pop("country", None)
    problems = refuse(
        engine, layer="communities", path=write_geojson(tmp_path / "c.geojson", features)
    )
    assert words in find(problems, "feature", 0, field)
    assert stored(engine) == {}


def test_duplicate_codes_and_community_option(engine: Engine, tmp_path: Path) -> None:
    features = communities(east={"code": "441302011101"})
    path = write_geojson(tmp_path / "c.geojson", features)
    problems = refuse(engine, layer="communities", path=path)
    assert "duplicate community code" in find(problems, "feature", 1, "code")
    with engine.connect() as conn, pytest.raises(InvalidInput) as info:
        import_layer(conn, layer="communities", path=path, community_code="441302011101")
    assert info.value.field == "community"


def test_csv_in_gb18030_with_wkt(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "社区.csv"
    path.write_bytes(
        f'code,name,timezone,wkt\n441302011101,西湖社区,,"{WEST.wkt}"\n'.encode("gb18030")
    )
    with engine.begin() as conn:
        report = import_layer(conn, layer="communities", path=path, crs="cgcs2000")
    assert report.inserted == 1 and report.encoding == "gb18030"
    assert stored(engine)["441302011101"]["name"] == "西湖社区"


def test_a_new_boundary_must_keep_the_active_grids(engine: Engine, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "c.geojson", communities())
    with engine.begin() as conn:
        import_layer(conn, layer="communities", path=path)
    # Kluuvi's grids: codes outside China carry the community's code and a hyphen.
    halves = [box(24.940, 60.168, 24.946, 60.174), box(24.946, 60.168, 24.952, 60.174)]
    bad = write_geojson(
        tmp_path / "g.geojson", [feature(h, code=f"{i + 1:03d}") for i, h in enumerate(halves)]
    )
    problems = refuse(engine, layer="grids", path=bad, community_code="FI-091-KLU")
    assert "FI-091-KLU-" in find(problems, "feature", 0, "code")
    good = write_geojson(
        tmp_path / "g.geojson",
        [feature(h, code=f"FI-091-KLU-{i + 1:03d}") for i, h in enumerate(halves)],
    )
    with engine.begin() as conn:
        report = import_layer(conn, layer="grids", path=good, community_code="FI-091-KLU")
    assert report.activated

    shrunk = communities(kluuvi={"geometry": box(24.940, 60.168, 24.949, 60.174)})
    problems = refuse(
        engine, layer="communities", path=write_geojson(tmp_path / "c.geojson", shrunk)
    )
    message = find(problems, "feature", 2, "geometry")
    assert "grid FI-091-KLU-002 of its active plan v1 outside" in message
    assert "FI-091-KLU-001" not in message
