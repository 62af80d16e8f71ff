"""One file for many communities: without --community each row goes to the community it lies
in (or names); a community column that disagrees, or a row in none, is refused with its line.

Fictional communities: 西湖 and 东湖 share an edge at lon 114.41; Kluuvi is in Helsinki.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import Engine, func, select

from geogrid.db import models
from geogrid.errors import ImportRefused
from geogrid.io.importer import import_layer

WEST, EAST = "441302011101", "441302011102"


@pytest.fixture
def three(engine: Engine, tmp_path: Path) -> Engine:
    rows = [
        (box(114.40, 23.10, 114.41, 23.11), {"code": WEST, "name": "西湖社区"}),
        (box(114.41, 23.10, 114.42, 23.11), {"code": EAST, "name": "东湖社区"}),
        (
            box(24.940, 60.168, 24.952, 60.174),
            {"code": "FI-091-KLU", "name": "Kluuvi", "country": "FI"},
        ),
    ]
    doc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": p, "geometry": mapping(g)} for g, p in rows],
    }
    path = tmp_path / "c.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with engine.begin() as conn:
        import_layer(conn, layer="communities", path=path)
    return engine


def households_by_community(engine: Engine) -> dict[str, int]:
    h, c = models.Household, models.Community
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.code, func.count()).join(h, h.community_id == c.id).group_by(c.code)
        ).all()
    return dict(rows)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def refused(engine: Engine, **kw: object) -> list[dict[str, object]]:
    with engine.connect() as conn, conn.begin(), pytest.raises(ImportRefused) as info:
        import_layer(conn, **kw)  # type: ignore[arg-type]
    return list(info.value.details["problems"])


def test_rows_go_to_the_community_they_lie_in(three: Engine, tmp_path: Path) -> None:
    csv = write(
        tmp_path / "h.csv",
        "address_id,lon,lat,street_name,house_number\n"
        "W-1,114.405,23.105,长湖街,1\n"
        "W-2,114.406,23.105,长湖街,3\n"
        "E-1,114.415,23.105,东湖路,2\n"
        "K-1,24.945,60.170,Kaisaniementie,6\n"
        # On the shared edge: the lowest code takes it, as grids do.
        "EDGE,114.41,23.105,长湖街,5\n",
    )
    with three.begin() as conn:
        report = import_layer(conn, layer="households", path=csv, crs="wgs84")
    assert report.community_code is None and report.inserted == 5
    assert {k: v["inserted"] for k, v in report.communities.items()} == {
        WEST: 3,
        EAST: 1,
        "FI-091-KLU": 1,
    }
    assert households_by_community(three) == {WEST: 3, EAST: 1, "FI-091-KLU": 1}


def test_disagreeing_column_outside_and_duplicates_are_refused(
    three: Engine, tmp_path: Path
) -> None:
    csv = write(
        tmp_path / "h.csv",
        "address_id,community,lon,lat\n"
        f"W-1,{WEST},114.405,23.105\n"
        f"W-2,{EAST},114.406,23.105\n"  # line 3: lies in WEST, names EAST
        "X-1,,115.0,23.105\n"  # line 4: in no community
        f"W-1,{EAST},114.415,23.105\n"  # line 5: address id of line 2 again
        "Z-1,441302011199,114.415,23.105\n",  # line 6: unknown community
    )
    problems = refused(three, layer="households", path=csv, crs="wgs84")
    by_line = {p["line"]: p["message"] for p in problems}
    assert f"lies in community {WEST}, but names community {EAST}" in str(by_line[3])
    assert by_line[4] == "outside every community"
    assert "duplicate address_id 'W-1' (also at line 2)" in str(by_line[5])
    assert "unknown community '441302011199'" in str(by_line[6])
    assert households_by_community(three) == {}


def test_a_community_column_places_rows_without_coordinates(three: Engine, tmp_path: Path) -> None:
    members = write(
        tmp_path / "m.csv",
        f"name,kind,community\n党员甲,resident,{WEST}\n党员乙,resident,{EAST}\n党员丙,resident,\n",
    )
    problems = refused(three, layer="members", path=members)
    assert problems == [
        {
            "file": "m.csv",
            "line": 4,
            "field": "community",
            "message": "no community: give coordinates, a community column or --community",
        }
    ]
    members = write(tmp_path / "m.csv", members.read_text("utf-8").rsplit("党员丙", 1)[0])
    with three.begin() as conn:
        report = import_layer(conn, layer="members", path=members)
    assert {k: v["inserted"] for k, v in report.communities.items()} == {WEST: 1, EAST: 1}


def test_with_community_a_disagreeing_column_is_refused(three: Engine, tmp_path: Path) -> None:
    csv = write(
        tmp_path / "h.csv",
        f"address_id,community,lon,lat\nW-1,{WEST},114.405,23.105\nW-2,{EAST},114.406,23.105\n",
    )
    problems = refused(three, layer="households", path=csv, crs="wgs84", community_code=WEST)
    assert [(p["line"], p["field"]) for p in problems] == [(3, "community")]
    assert f"names community {EAST}, but the file goes into {WEST}" in str(problems[0]["message"])
