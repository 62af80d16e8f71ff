"""``/v1/plans`` and ``/maps/plan`` over both backends: roles, load (valid and not), diff,
metrics, activation with the two-planner conflict, rollback, export."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import Engine

from geogrid.db import queries as q
from tests.factories import X0, Y0, D, square_grids
from tests.requests_factories import World, new_key

C = "441302011099"


def _collection(grids: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": c}, "geometry": mapping(g)} for c, g in grids
        ],
    }


def _shifted(shift: float) -> list[tuple[str, Any]]:
    return [
        (f"{C}001", box(X0, Y0 + D, shift, Y0 + 2 * D)),
        (f"{C}002", box(shift, Y0 + D, X0 + 2 * D, Y0 + 2 * D)),
        *square_grids()[2:],
    ]


@pytest.fixture
def keys(engine: Engine, world: World) -> dict[str, dict[str, str]]:
    return {
        role: {"X-API-Key": new_key(engine, role)} for role in ("planner", "official", "public")
    }


def test_reads_need_a_planner_or_official_and_writes_a_planner(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert client.get("/v1/plans").status_code == 401
    assert client.get("/v1/plans", headers=keys["public"]).status_code == 403
    listed = client.get("/v1/plans", headers=keys["official"])
    assert listed.status_code == 200
    assert [p["status"] for p in listed.json()["plans"]] == ["active"]
    body = _collection(_shifted(X0 + D + 0.002))
    refused = client.post("/v1/plans", json=body, headers=keys["official"])
    assert refused.status_code == 403 and "planner" in refused.json()["error"]["message"]
    assert client.post("/v1/plans/rollback", headers=keys["official"]).status_code == 403


def test_validate_body_reports_problems_with_codes_and_places(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    good = client.post(
        "/v1/plans/validate", json=_collection(square_grids()), headers=keys["planner"]
    )
    assert good.status_code == 200 and good.json()["valid"] is True
    gap = client.post(
        "/v1/plans/validate", json=_collection(square_grids()[:3]), headers=keys["planner"]
    )
    data = gap.json()
    assert gap.status_code == 200 and data["valid"] is False
    problem = next(p for p in data["problems"] if p["check"] == "gap")
    assert X0 + D < problem["lon"] < X0 + 2 * D and Y0 < problem["lat"] < Y0 + D
    assert problem["size"] == pytest.approx(102_400 * 110_700 * D * D, rel=0.03)
    not_geojson = client.post("/v1/plans/validate", json={"a": 1}, headers=keys["planner"])
    assert not_geojson.status_code == 422 and not_geojson.json()["error"]["field"] == "body"


def test_load_diff_activate_conflict_rollback_export_and_map(
    client: TestClient, keys: dict[str, dict[str, str]], engine: Engine, world: World
) -> None:
    planner = keys["planner"]
    bad = client.post("/v1/plans", json=_collection(square_grids()[:3]), headers=planner)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_plan"
    assert any(p["check"] == "gap" for p in bad.json()["error"]["details"]["problems"])

    first = client.post(
        "/v1/plans?name=east", json=_collection(_shifted(X0 + D + 0.002)), headers=planner
    )
    second = client.post(
        "/v1/plans?name=west", json=_collection(_shifted(X0 + D - 0.002)), headers=planner
    )
    assert first.status_code == 201 and second.status_code == 201
    a, b = first.json()["plan_id"], second.json()["plan_id"]
    assert first.json()["base_plan_id"] == second.json()["base_plan_id"] == world.plan_id

    diff = client.get(f"/v1/plans/{a}/diff", headers=keys["official"]).json()
    assert [g["code"] for g in diff["grids_reshaped"]] == [f"{C}001", f"{C}002"]
    assert diff["counts"]["fields_cut"] == 1  # F2 covered all of 002
    metrics = client.get(
        f"/v1/plans/{a}/metrics?households_per_grid=1:2", headers=keys["official"]
    ).json()
    assert metrics["target"] == [1, 2] and len(metrics["grids"]) == 4
    assert sum(g["households"] for g in metrics["grids"]) == 3

    page = client.get(f"/maps/plan?draft={a}", headers=keys["official"])
    assert page.status_code == 200 and "leaflet" in page.text.lower()

    done = client.post(f"/v1/plans/{a}/activate", headers=planner)
    assert done.status_code == 200, done.text
    assert done.json()["plan_id"] == a and done.json()["previous_plan_id"] == world.plan_id
    late = client.post(f"/v1/plans/{b}/activate", headers=planner)
    assert late.status_code == 409
    assert "another planner" in late.json()["error"]["message"]
    with engine.connect() as conn:
        assert q.active_plan(conn, community_id=world.community_id).id == a

    todo = client.get("/v1/plans/review", headers=keys["official"]).json()
    assert len(todo["fields"]) == 1 and todo["plan"]["id"] == a
    assert client.get("/v1/plans/review", headers=keys["public"]).status_code == 403
    bad = client.post("/v1/plans/review", json={"fields": "all"}, headers=planner)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "fields"
    done = client.post("/v1/plans/review", json={"all": True}, headers=keys["official"]).json()
    assert done["cleared"]["fields"] == 1 and done["fields"] == []

    exported = client.get("/v1/plans/active/geojson", headers=keys["official"])
    assert exported.headers["content-type"].startswith("application/geo+json")
    doc = exported.json()
    assert sorted(f["properties"]["code"] for f in doc["features"]) == [
        f"{C}00{i}" for i in range(1, 5)
    ]
    json.dumps(doc)

    assert client.delete(f"/v1/plans/{a}", headers=planner).status_code == 409  # active
    assert client.delete(f"/v1/plans/{b}", headers=keys["official"]).status_code == 403
    assert client.delete(f"/v1/plans/{b}", headers=planner).json() == {"deleted": b, "version": 3}
    assert client.get(f"/v1/plans/{b}/diff", headers=planner).status_code == 404
    back = client.post("/v1/plans/rollback", headers=planner)
    assert back.status_code == 200 and back.json()["plan_id"] == world.plan_id
    assert back.json()["fields_restored"] == 1
    # A path is never read through the API.
    assert client.get("/v1/plans/etc%2Fpasswd/diff", headers=planner).status_code in (404, 422)


def test_running_lookup_follows_an_activation(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The server's in-memory lookup index answers from the new plan within seconds."""
    import time

    point = {"lon": X0 + 1.5 * D, "lat": Y0 + 1.5 * D}  # in 002 now, in 001 under the draft

    def grid() -> str:
        return client.get("/v1/lookup", params=point).json()["grid"]["code"]

    assert grid() == f"{C}002"
    loaded = client.post(
        "/v1/plans", json=_collection(_shifted(X0 + 1.6 * D)), headers=keys["planner"]
    )
    assert grid() == f"{C}002"  # a draft changes no answer
    done = client.post(f"/v1/plans/{loaded.json()['plan_id']}/activate", headers=keys["planner"])
    assert done.status_code == 200
    start = time.monotonic()
    while grid() != f"{C}001":
        assert time.monotonic() - start < 5, "the lookup did not follow the activation in 5 s"
        time.sleep(0.2)


def test_propose_through_the_api_names_an_infeasible_range(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    r = client.post("/v1/plans/propose?households_per_grid=5:6", headers=keys["planner"])
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "infeasible_plan" and "5" in error["message"]
    assert client.post("/v1/plans/propose", headers=keys["official"]).status_code == 403
