"""The catalogue and the directory on both backends: categories, departments, members,
fields, grid leads (open requests re-routed; a vacancy falls back to the grid lead), visits."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from geogrid.db import models as m
from tests.requests_factories import (
    IN_FIELD,
    IN_GRID_NO_FIELD,
    World,
    cli_app,
    new_key,
)

runner = CliRunner()


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _file(client: TestClient, key: str, point: tuple[float, float]) -> dict[str, Any]:
    r = client.post(
        "/v1/requests",
        json={"category": "sewer_blocked", "lon": point[0], "lat": point[1]},
        headers=_h(key),
    )
    assert r.status_code == 201, r.text
    return r.json()


def _member_of(engine: Engine, rid: int) -> tuple[int | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(m.Request.member_id, m.Request.assignment_rule).where(m.Request.id == rid)
        ).one()
    return row.member_id, row.assignment_rule


def test_catalogue_editing(client: TestClient, engine: Engine) -> None:
    official = new_key(engine, "official")
    body = {"code": "stray_dogs", "name": "流浪犬", "programme": "safety", "class": "event",
            "sla_hours": 48, "department": "urban_management",
            "attributes": [{"code": "count", "datatype": "number", "required": True}]}  # fmt: skip
    assert client.post("/v1/categories", json=body).status_code == 401
    r = client.post("/v1/categories", json=body, headers=_h(official))
    assert r.status_code == 201, r.text
    assert r.json()["department"] == "urban_management"
    assert r.json()["attributes"][0]["description"] == "count"
    assert client.post("/v1/categories", json=body, headers=_h(official)).status_code == 409
    r = client.patch("/v1/categories/stray_dogs", json={"sla_hours": 0}, headers=_h(official))
    assert r.status_code == 422 and r.json()["error"]["field"] == "sla_hours"
    r = client.patch(
        "/v1/categories/stray_dogs",
        json={"attributes": [{"code": "kind", "datatype": "singlevaluelist"}]},
        headers=_h(official),
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "attributes[0].values"
    r = client.patch("/v1/categories/stray_dogs", json={"active": False}, headers=_h(official))
    assert r.status_code == 200
    codes = {c["code"] for c in client.get("/v1/categories").json()}
    assert "stray_dogs" not in codes and "sewer_blocked" in codes
    services = client.get("/open311/v2/services.json").json()
    assert "stray_dogs" not in {s["service_code"] for s in services}
    r = client.put("/v1/departments/sanitation", json={"name": "环卫所"}, headers=_h(official))
    assert r.status_code == 200
    assert {"code": "sanitation", "name": "环卫所", "name_en": None} in client.get(
        "/v1/departments"
    ).json()


def test_catalogue_cli_is_a_dry_run_without_commit(
    db_url: str, engine: Engine, world: World
) -> None:
    args = ["catalogue", "set", "sewer_blocked", "--sla-hours", "12", "--database", db_url]
    dry = runner.invoke(cli_app(), args)
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.stderr
    with engine.connect() as conn:
        hours = select(m.Category.sla_hours).where(m.Category.code == "sewer_blocked")
        assert conn.execute(hours).scalar_one() == 48
    done = runner.invoke(cli_app(), [*args, "--commit"])
    assert done.exit_code == 0, done.output
    with engine.connect() as conn:
        assert conn.execute(hours).scalar_one() == 12
    bad = runner.invoke(cli_app(), ["catalogue", "set", "sewer_blocked", "--programme", "fun",
                                    "--database", db_url])  # fmt: skip
    assert bad.exit_code == 1 and "programme" in bad.output


def test_vacancy_falls_back_to_the_grid_lead_and_back(
    client: TestClient, engine: Engine, world: World
) -> None:
    official = new_key(engine, "official")
    rid = _file(client, official, IN_FIELD)["id"]
    assert _member_of(engine, rid) == (world.members["A"], "field")
    r = client.put(f"/v1/fields/{world.fields['F1']}/member", json={"member_id": None},
                   headers=_h(official))  # fmt: skip
    assert r.status_code == 200 and r.json()["requests_rerouted"] == 1
    assert _member_of(engine, rid) == (world.members["B"], "grid_lead")
    r = client.put(f"/v1/fields/{world.fields['F1']}/member",
                   json={"member_id": world.members["C"]}, headers=_h(official))  # fmt: skip
    assert _member_of(engine, rid) == (world.members["C"], "field")
    r = client.put(f"/v1/fields/{world.fields['F1']}/member", json={"member_id": 999},
                   headers=_h(official))  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["field"] == "member_id"


def test_grid_lead_change_reroutes_but_keeps_manual_assignments(
    client: TestClient, engine: Engine, world: World
) -> None:
    official = new_key(engine, "official")
    auto = _file(client, official, IN_GRID_NO_FIELD)["id"]
    manual = _file(client, official, IN_GRID_NO_FIELD)["id"]
    r = client.post(f"/v1/requests/{manual}/reassign",
                    json={"version": 1, "member_id": world.members["A"], "note": "熟悉情况"},
                    headers=_h(official))  # fmt: skip
    assert r.status_code == 200
    r = client.put("/v1/grids/441302011099001/lead", json={"member_id": world.members["C"]},
                   headers=_h(official))  # fmt: skip
    assert r.status_code == 200, r.text
    assert _member_of(engine, auto) == (world.members["C"], "grid_lead")
    assert _member_of(engine, manual) == (world.members["A"], "manual")
    r = client.put("/v1/grids/999/lead", json={"member_id": None}, headers=_h(official))
    assert r.status_code == 404


def test_members_masked_personal_logged_and_deactivation(
    client: TestClient, engine: Engine, world: World
) -> None:
    official = new_key(engine, "official")
    entitled = new_key(engine, "official", personal_data=True)
    assert client.get("/v1/members").status_code == 401
    listed = client.get("/v1/members", headers=_h(official)).json()
    assert {x["display_name"] for x in listed} == {"张*明", "李*", "王*"}
    assert "张小明" not in str(listed)
    r = client.get("/v1/members", params={"personal": "true"}, headers=_h(official))
    assert r.status_code == 403
    full = client.get("/v1/members", params={"personal": "true"}, headers=_h(entitled)).json()
    assert {x["name"] for x in full} == {"张小明", "李四", "王五"}
    with engine.connect() as conn:
        logged = conn.execute(
            select(m.AuditEntry.subject_id).where(m.AuditEntry.action == "read")
        ).scalars()
        assert sorted(map(int, logged)) == sorted(world.members.values())
    r = client.post("/v1/members", json={"name": "赵六", "kind": "stationed"},
                    headers=_h(official))  # fmt: skip
    assert r.status_code == 201 and r.json()["display_name"] == "赵*"
    r = client.post("/v1/members", json={"name": "钱七", "kind": "alien"}, headers=_h(official))
    assert r.status_code == 422 and r.json()["error"]["field"] == "kind"
    rid = _file(client, official, IN_FIELD)["id"]
    r = client.patch(f"/v1/members/{world.members['A']}", json={"active": False},
                     headers=_h(official))  # fmt: skip
    assert r.status_code == 200 and r.json()["fields"] == []
    assert _member_of(engine, rid) == (world.members["B"], "grid_lead")


def test_visits_and_coverage(client: TestClient, engine: Engine, world: World) -> None:
    member_a = new_key(engine, "member", member_id=world.members["A"])
    official = new_key(engine, "official")
    r = client.post("/v1/visits", json={"address_id": "T-00000", "visited_on": "2024-01-15",
                                        "kind": "care", "note": "节前慰问"},
                    headers=_h(member_a))  # fmt: skip
    assert r.status_code == 201, r.text
    r = client.post("/v1/visits", json={"address_id": "T-00002", "visited_on": "2024-01-15",
                                        "kind": "care"}, headers=_h(member_a))  # fmt: skip
    assert r.status_code == 403  # not in A's field
    r = client.post("/v1/visits", json={"address_id": "T-00000", "visited_on": "2024-13-01",
                                        "kind": "care"}, headers=_h(member_a))  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["field"] == "visited_on"
    r = client.post("/v1/visits", json={"address_id": "T-00000", "kind": "party"},
                    headers=_h(member_a))  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["field"] == "kind"
    mine = client.get("/v1/visits", headers=_h(member_a)).json()
    assert mine["total"] == 1 and mine["items"][0]["kind"] == "care"
    cov = client.get("/v1/visits/coverage", params={"from": "2024-01-01", "to": "2024-01-31",
                                                    "group_by": "grid"}).json()  # fmt: skip
    by_grid = {row["key"]: row for row in cov["rows"]}
    g1 = by_grid[world.grids["441302011099001"]]
    assert (g1["households"], g1["visited"], g1["visit_coverage"]) == (2, 1, 0.5)
    r = client.get("/v1/visits/coverage", params={"group_by": "member"})
    assert r.status_code == 401
    r = client.get("/v1/visits/coverage", params={"group_by": "member"}, headers=_h(official))
    assert r.status_code == 200
