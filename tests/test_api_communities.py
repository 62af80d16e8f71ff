"""``/v1/communities``: listed publicly; imported by an admin of no one community, as a dry
run unless ``commit=true``, refused whole with every problem, bodies capped."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import Engine

from geogrid.access import create_key
from tests.requests_factories import make_app

WEST = box(114.40, 23.10, 114.41, 23.11)
KLUUVI = box(24.940, 60.168, 24.952, 60.174)


def collection(*features: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": p, "geometry": mapping(g)} for g, p in features
        ],
    }


BODY = collection(
    (WEST, {"code": "441302011101", "name": "西湖社区"}),
    (
        KLUUVI,
        {"code": "FI-091-KLU", "name": "Kluuvi", "country": "FI", "timezone": "Europe/Helsinki"},
    ),
)


def test_import_dry_run_then_commit_then_list(db_url: str, engine: Engine) -> None:
    with engine.begin() as conn:
        admin = create_key(conn, role="admin", name="onboarding").key
    with TestClient(make_app(db_url)) as client:
        headers = {"X-API-Key": admin}
        dry = client.post("/v1/communities", json=BODY, headers=headers)
        assert dry.status_code == 200, dry.text
        assert dry.json()["committed"] is False and dry.json()["inserted"] == 2
        assert client.get("/v1/communities").json() == {"communities": []}

        done = client.post("/v1/communities?commit=true", json=BODY, headers=headers)
        assert done.status_code == 200 and done.json()["committed"] is True
        listed = client.get("/v1/communities").json()["communities"]
        assert [c["code"] for c in listed] == ["441302011101", "FI-091-KLU"]  # by code
        west = next(c for c in listed if c["code"] == "441302011101")
        assert (west["subdistrict_code"], west["district_code"]) == ("441302011", "441302")
        assert west["plan_version"] is None and west["synthetic"] is False
        only = client.get("/v1/communities?subdistrict=441302011").json()["communities"]
        assert [c["code"] for c in only] == ["441302011101"]

        again = client.post("/v1/communities?commit=true", json=BODY, headers=headers).json()
        assert (again["inserted"], again["unchanged"]) == (0, 2)


def test_refusals(db_url: str, engine: Engine) -> None:
    with engine.begin() as conn:
        admin = create_key(conn, role="admin", name="onboarding").key
    with TestClient(make_app(db_url)) as client:
        headers = {"X-API-Key": admin}
        overlapping = collection(
            (WEST, {"code": "441302011101", "name": "西湖社区"}),
            (box(114.405, 23.10, 114.42, 23.11), {"code": "441302011102", "name": "东湖社区"}),
        )
        refused = client.post("/v1/communities?commit=true", json=overlapping, headers=headers)
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "import_refused"
        problem = error["details"]["problems"][0]
        assert problem["feature"] == 0 and problem["field"] == "geometry"
        assert "441302011101 overlaps community 441302011102" in problem["message"]
        assert client.get("/v1/communities").json() == {"communities": []}

        not_geojson = client.post("/v1/communities", json={"type": "Feature"}, headers=headers)
        assert not_geojson.status_code == 422
        assert not_geojson.json()["error"]["field"] == "body"

        huge = b'{"type": "FeatureCollection", "features": [' + b" " * 20_000_001 + b"]}"
        too_big = client.post(
            "/v1/communities",
            content=huge,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "too_large"
