"""Many communities side by side: subdistrict and district views, keys scoped to a
subdistrict or a district, and each community's own time zone.

Fictional communities: two in subdistrict 441302011 (Huizhou), one in 441302012, and one in
Helsinki (Europe/Helsinki, seven hours behind Shanghai in winter).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import Engine

from geogrid.access import authenticate, create_key
from geogrid.catalogue import ensure_default_catalogue
from geogrid.errors import InvalidInput, NotFound
from geogrid.io.importer import import_layer
from geogrid.periods import period
from geogrid.summary import summary
from tests.requests_factories import make_app

COMMUNITIES = [
    (box(114.40, 23.10, 114.41, 23.11), {"code": "441302011101", "name": "西湖社区"}),
    (box(114.41, 23.10, 114.42, 23.11), {"code": "441302011102", "name": "东湖社区"}),
    (box(114.43, 23.10, 114.44, 23.11), {"code": "441302012101", "name": "南湖社区"}),
    (
        box(24.940, 60.168, 24.952, 60.174),
        {"code": "FI-091-KLU", "name": "Kluuvi", "country": "FI", "timezone": "Europe/Helsinki"},
    ),
]


def _geojson(path: Path, features: list[tuple[Any, dict[str, Any]]]) -> Path:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": p, "geometry": mapping(g)} for g, p in features
        ],
    }
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def areas(engine: Engine, tmp_path: Path) -> Engine:
    with engine.begin() as conn:
        import_layer(conn, layer="communities", path=_geojson(tmp_path / "c.geojson", COMMUNITIES))
        ensure_default_catalogue(conn)
    return engine


def test_subdistrict_key_reaches_its_communities_and_later_ones(
    areas: Engine, tmp_path: Path
) -> None:
    with areas.begin() as conn:
        key = create_key(conn, role="official", subdistrict_code="441302011").key
        with pytest.raises(NotFound):
            create_key(conn, role="official", subdistrict_code="441302099")
        with pytest.raises(InvalidInput):
            create_key(
                conn, role="official", community_code="441302011101", subdistrict_code="441302011"
            )
    with areas.begin() as conn:
        before = authenticate(conn, key)
    # A community imported later into the subdistrict joins the key's scope.
    late = [(box(114.42, 23.10, 114.43, 23.11), {"code": "441302011103", "name": "北湖社区"})]
    with areas.begin() as conn:
        import_layer(conn, layer="communities", path=_geojson(tmp_path / "d.geojson", late))
        after = authenticate(conn, key)
    assert before.community_ids is not None and after.community_ids is not None
    assert len(before.community_ids) == 2 and len(after.community_ids) == 3
    assert before.community_ids < after.community_ids
    assert after.scoped and after.subdistrict_code == "441302011"


def test_views_by_subdistrict_and_district(areas: Engine, db_url: str) -> None:
    with areas.begin() as conn:
        sub_key = create_key(conn, role="official", subdistrict_code="441302011").key
    with TestClient(make_app(db_url)) as client:

        def codes(path: str, key: str | None = None) -> list[str]:
            r = client.get(path, headers={"X-API-Key": key} if key else {})
            assert r.status_code == 200, r.text
            body = r.json()
            rows = body["communities"] if "communities" in body else body["rows"]
            return [c["code"] for c in rows]

        assert codes("/v1/summary?subdistrict=441302011") == ["441302011101", "441302011102"]
        assert codes("/v1/summary?district=441302") == [
            "441302011101",
            "441302011102",
            "441302012101",
        ]
        missing = client.get("/v1/summary?subdistrict=441302099")
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "subdistrict"
        kpis = "/v1/kpis?group_by=community&from=2024-01-01"
        mine = client.get(f"{kpis}&subdistrict=441302011", headers={"X-API-Key": sub_key})
        assert mine.status_code == 200 and mine.json()["period"]["timezone"] == "Asia/Shanghai"
        other = client.get(f"{kpis}&subdistrict=441302012", headers={"X-API-Key": sub_key})
        assert other.status_code == 403
        outside = client.get(f"{kpis}&community=441302012101", headers={"X-API-Key": sub_key})
        assert outside.status_code == 404


def test_each_community_counts_its_own_days(areas: Engine, tmp_path: Path) -> None:
    """23:30 on 1 January in Helsinki is 05:30 on 2 January in Shanghai: a Helsinki request
    then belongs to Helsinki's 1 January, a Shanghai one at that instant to 2 January."""
    csv = tmp_path / "r.csv"
    csv.write_text(
        "category,received_at,lon,lat\nsewer_blocked,2024-01-01 23:30,24.945,60.170\n",
        encoding="utf-8",
    )
    csv_cn = tmp_path / "r_cn.csv"
    csv_cn.write_text(
        "category,received_at,lon,lat\nsewer_blocked,2024-01-02T05:30+08:00,114.405,23.105\n",
        encoding="utf-8",
    )
    with areas.begin() as conn:
        import_layer(conn, layer="requests", path=csv, community_code="FI-091-KLU", crs="wgs84")
        import_layer(
            conn, layer="requests", path=csv_cn, community_code="441302011101", crs="wgs84"
        )
    with areas.connect() as conn:
        first = summary(conn, period=period("2024-01-01", "2024-01-01"))
        second = summary(conn, period=period("2024-01-02", "2024-01-02"))
        helsinki = summary(
            conn, period=period("2024-01-01", "2024-01-01"), community_code="FI-091-KLU"
        )

    def received(data: dict[str, Any]) -> dict[str, int]:
        return {
            c["code"]: c["requests"]["received"]
            for c in data["communities"]
            if c["requests"]["received"]
        }

    assert received(first) == {"FI-091-KLU": 1}
    assert received(second) == {"441302011101": 1}
    assert first["period"]["timezone"] is None  # several zones: each community's own
    assert helsinki["period"]["timezone"] == "Europe/Helsinki"
    zones = {c["code"]: c["timezone"] for c in first["communities"]}
    assert zones["FI-091-KLU"] == "Europe/Helsinki" and zones["441302011101"] == "Asia/Shanghai"


def test_area_codes_for_the_maps(areas: Engine) -> None:
    from geogrid.areas import area_codes

    with areas.connect() as conn:
        assert area_codes(conn, subdistrict="441302011") == "441302011101,441302011102"
        assert area_codes(conn, district="441302") == "441302011101,441302011102,441302012101"
        assert area_codes(conn, community="441302012101") == "441302012101"
        assert area_codes(conn) is None
        with pytest.raises(NotFound):
            area_codes(conn, district="441399")
        # Several areas meet: a community within its district stays; one outside is NotFound.
        assert area_codes(conn, community="441302012101", district="441302") == "441302012101"
        assert (
            area_codes(conn, subdistrict="441302011", district="441302")
            == "441302011101,441302011102"
        )
        with pytest.raises(NotFound):
            area_codes(conn, community="441302012101", subdistrict="441302011")
