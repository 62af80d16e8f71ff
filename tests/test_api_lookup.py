"""``GET /v1/lookup`` and ``POST /v1/lookup/batch`` over both backends, through the app."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import Engine

from api import create_app
from api.schemas.lookup import LookupBatchOut, LookupErrorEnvelope, LookupOut
from geogrid import crs as gcrs
from geogrid.lookup import MAX_BATCH
from geogrid.settings import DatabaseSettings, Settings
from tests.factories import X0, Y0, D
from tests.lookup_factories import (
    EXPECTED,
    G1,
    G3,
    G4,
    MASKED,
    MEMBER_NAMES,
    LookupCommunity,
    make_lookup_community,
)

ROOT = Path(__file__).resolve().parent.parent
BODY_KEYS = {
    "community",
    "grid",
    "branch",
    "group",
    "member",
    "member_rule",
    "field",
    "point",
    "plan",
    "match",
}


@pytest.fixture
def community(engine: Engine) -> LookupCommunity:
    with engine.begin() as conn:
        return make_lookup_community(conn)


@pytest.fixture
def client(db_url: str, community: LookupCommunity) -> Iterator[TestClient]:
    app = create_app(Settings(database=DatabaseSettings(database_url=db_url)))
    with TestClient(app) as c:
        yield c


def _no_personal_data(text: str) -> None:
    for name in MEMBER_NAMES.values():
        assert name not in text
    assert "13800000000" not in text


def test_point_lookup_body(client: TestClient, community: LookupCommunity) -> None:
    (x, y), code, member, rule = EXPECTED["F3 in 002"]
    r = client.get("/v1/lookup", params={"lon": x, "lat": y})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == BODY_KEYS
    LookupOut.model_validate(body)
    assert body["community"] == {"code": "441302011099", "name": "测试社区"}
    assert body["grid"] == {"code": code, "name": "002"}
    assert body["branch"] == {"id": community.branches["第二党支部"], "name": "第二党支部"}
    assert body["member"] == {
        "id": community.members[member],
        "kind": "stationed",
        "role": "field_holder",
        "display_name": MASKED[member],
    }
    assert body["member_rule"] == rule
    assert body["field"] == {"id": community.fields["F3"], "name": "F3"}
    assert body["plan"] == {"id": community.plan_id, "version": 1}
    assert body["point"] == {
        "wgs84": {"lon": round(x, 7), "lat": round(y, 7)},
        "requested": {"crs": "wgs84", "lon": round(x, 7), "lat": round(y, 7)},
    }
    assert body["match"] is None and body["group"] is None


def test_group_of_the_building(client: TestClient, community: LookupCommunity) -> None:
    body = client.get("/v1/lookup", params={"lon": X0 + 0.0025, "lat": Y0 + 0.0125}).json()
    assert body["group"] == {
        "id": community.groups["1号楼党小组"],
        "name": "1号楼党小组",
        "building": {"id": community.buildings["1号楼"], "name": "1号楼", "compound": "金源花园"},
    }


@pytest.mark.parametrize("case", list(EXPECTED))
def test_every_case_and_no_full_names(client: TestClient, case: str) -> None:
    (x, y), code, member, rule = EXPECTED[case]
    r = client.get("/v1/lookup", params={"lon": x, "lat": y})
    assert r.status_code == 200
    body = r.json()
    assert body["grid"]["code"] == code and body["member_rule"] == rule
    assert (body["member"]["display_name"] if body["member"] else None) == (
        MASKED[member] if member else None
    )
    _no_personal_data(r.text)


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_gcj02_and_bd09(client: TestClient, crs: str) -> None:
    lon, lat = X0 + 0.002, Y0 + 0.005
    x, y = gcrs.from_wgs84(lon, lat, crs)
    body = client.get("/v1/lookup", params={"lon": x, "lat": y, "crs": crs}).json()
    assert body["grid"]["code"] == G3
    assert body["point"]["wgs84"]["lon"] == pytest.approx(lon, abs=1e-7)
    assert body["point"]["wgs84"]["lat"] == pytest.approx(lat, abs=1e-7)
    assert body["point"]["requested"] == {"crs": crs, "lon": round(x, 7), "lat": round(y, 7)}


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"lon": "abc", "lat": "23.1"}, "lon", "must be a number"),
        ({"lon": "114.4", "lat": "x"}, "lat", "must be a number"),
        ({"lon": "", "lat": "23.1"}, "lon", "missing"),
        ({"lon": "nan", "lat": "23.1"}, "lon", "finite"),
        ({"lon": "114.4", "lat": "NaN"}, "lat", "finite"),
        ({"lon": "inf", "lat": "23.1"}, "lon", "finite"),
        ({"lon": "181", "lat": "23.1"}, "lon", "between -180 and 180"),
        ({"lon": "114.4", "lat": "95"}, "lat", "between -90 and 90"),
        ({"lon": "114.4"}, "lat", "missing"),
        ({"lat": "23.1"}, "lon", "missing"),
        ({}, "address", "address, or lon and lat"),
        ({"address": "长湖街5号", "lon": "114.4", "lat": "23.1"}, "address", "not both"),
    ],
)
def test_422_names_the_parameter(
    client: TestClient, params: dict[str, str], field: str, says: str
) -> None:
    r = client.get("/v1/lookup", params=params)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input"
    assert err["field"] == field
    assert says in err["message"]


def test_422_swapped_lon_and_lat(client: TestClient) -> None:
    r = client.get("/v1/lookup", params={"lon": Y0 + 0.005, "lat": X0 + 0.002})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "lat"
    assert "swapped" in err["message"]
    assert err["details"]["swapped_inside"]["grid"] == G3
    LookupErrorEnvelope.model_validate(r.json())


def test_422_unknown_crs(client: TestClient) -> None:
    r = client.get("/v1/lookup", params={"lon": X0, "lat": Y0, "crs": "EPSG:99999"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_crs"
    assert r.json()["error"]["field"] == "crs"


def test_404_outside_with_the_nearest_grid(client: TestClient) -> None:
    r = client.get("/v1/lookup", params={"lon": X0 + 0.03, "lat": Y0 + 0.005})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found"
    nearest = err["details"]["nearest_grid"]
    assert nearest["code"] == G4 and 1000 < nearest["distance_m"] < 1050
    LookupErrorEnvelope.model_validate(r.json())


def test_404_unknown_community(client: TestClient) -> None:
    r = client.get("/v1/lookup", params={"lon": X0, "lat": Y0, "community": "000000000000"})
    assert r.status_code == 404
    assert r.json()["error"]["field"] == "community"


def test_address_lookup(client: TestClient, community: LookupCommunity) -> None:
    r = client.get("/v1/lookup", params={"address": "金源花园1号楼", "crs": "gcj02"})
    assert r.status_code == 200, r.text
    body = r.json()
    LookupOut.model_validate(body)
    assert body["grid"]["code"] == G1
    assert body["group"]["name"] == "1号楼党小组"
    assert body["match"]["level"] == "building" and body["match"]["confidence"] == 1.0
    assert body["match"]["normalized"] == "金源花园1栋"
    assert body["point"]["requested"]["crs"] == "gcj02"
    street = client.get("/v1/lookup", params={"address": "长湖街"}).json()
    assert [g["code"] for g in street["match"]["street_grids"]] == [G3, G4]
    ambiguous = client.get("/v1/lookup", params={"address": "金源花园"})
    assert len(ambiguous.json()["match"]["candidates"]) == 2
    assert "101" not in ambiguous.text and "102" not in ambiguous.text
    _no_personal_data(ambiguous.text)


def test_address_404_with_suggestions(client: TestClient) -> None:
    r = client.get("/v1/lookup", params={"address": "金源小区9栋"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["field"] == "address"
    assert err["details"]["suggestions"][0]["label"] == "金源花园"


def test_batch_order_and_per_item_errors(client: TestClient) -> None:
    (x, y), code, *_ = EXPECTED["F1 in 003"]
    items: list[Any] = [
        {"lon": x, "lat": y},
        {"address": "长湖街"},
        {"lon": "abc", "lat": y},
        {"lon": X0 + 0.03, "lat": Y0 + 0.005},
        "not an object",
        {"address": "金源小区9栋"},
        {"lon": x, "lat": y, "crs": "nope"},
        {"lon": y, "lat": x},
    ]
    r = client.post("/v1/lookup/batch", json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    LookupBatchOut.model_validate(body)
    results = body["results"]
    assert len(results) == len(items)
    assert results[0]["grid"]["code"] == code
    assert results[1]["match"]["level"] == "street"
    assert results[2]["error"] | {"message": None} == {
        "code": "invalid_input",
        "message": None,
        "field": "lon",
        "status": 422,
    }
    assert results[3]["error"]["status"] == 404
    assert results[3]["error"]["details"]["nearest_grid"]["code"] == G4
    assert results[4]["error"]["field"] == "items"
    assert results[5]["error"]["details"]["suggestions"]
    assert results[6]["error"]["code"] == "invalid_crs"
    assert "swapped_inside" in results[7]["error"]["details"]
    _no_personal_data(r.text)


def test_batch_limit(client: TestClient) -> None:
    ok = client.post(
        "/v1/lookup/batch", json={"items": [{"lon": X0 + D, "lat": Y0 + D}] * MAX_BATCH}
    )
    assert ok.status_code == 200
    assert len(ok.json()["results"]) == MAX_BATCH
    assert {r["grid"]["code"] for r in ok.json()["results"]} == {G1}
    r = client.post("/v1/lookup/batch", json={"items": [{"address": "x"}] * (MAX_BATCH + 1)})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "items"
    assert r.json()["error"]["code"] == "invalid_input"
    missing = client.post("/v1/lookup/batch", json={})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "items"


def test_openapi_documents_parameters_and_responses(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    get = spec["paths"]["/v1/lookup"]["get"]
    params = {p["name"]: p for p in get["parameters"]}
    assert set(params) == {"address", "lon", "lat", "crs", "community"}
    for p in params.values():
        assert p.get("description"), p["name"]
        assert p.get("examples") or p["schema"].get("examples"), p["name"]
    assert {"200", "404", "422"} <= set(get["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["LookupOut"].get("examples")
    for name in ("MemberRef", "MatchOut", "PointOut", "LookupErrorBody"):
        assert name in schemas
    post = spec["paths"]["/v1/lookup/batch"]["post"]
    assert {"200", "422"} <= set(post["responses"])
    items = schemas["LookupBatchIn"]["properties"]["items"]
    assert items["maxItems"] == MAX_BATCH
    documented = items["items"]["anyOf"][0]  # the item; anything else is answered in place
    assert {"address", "lon", "lat", "crs", "community"} <= set(documented["properties"])


def test_a_cli_change_in_another_process_is_answered_within_5_s(
    client: TestClient, db_url: str, community: LookupCommunity, tmp_path: Path
) -> None:
    """The app runs; `geogrid import fields` in a subprocess makes field F1 vacant."""
    (x, y), *_ = EXPECTED["F1 in 003"]
    before = client.get("/v1/lookup", params={"lon": x, "lat": y}).json()
    assert before["member_rule"] == "field"
    fields = tmp_path / "fields.csv"
    with fields.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "member_id", "wkt"])
        w.writerow(
            [
                "F1",
                "",
                box(X0, Y0, X0 + D / 2, Y0 + D).wkt,
            ]
        )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.cli import app; app()",
            "import",
            "fields",
            str(fields),
            "--crs",
            "wgs84",
            "--commit",
            "--json",
            "--database",
            db_url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["updated"] == 1
    start = time.monotonic()
    while True:
        body = client.get("/v1/lookup", params={"lon": x, "lat": y}).json()
        if body["member_rule"] == "grid_lead":
            break
        assert time.monotonic() - start < 5, "the change was not answered within 5 s"
        time.sleep(0.05)
    assert body["field"]["name"] == "F1"
    assert body["member"]["display_name"] == MASKED["lead_003"]
