"""The native requests API over both backends: create, list, read with history, actions,
409 with the current state, personal data only with the right (and logged), photos."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from geogrid.db import models as m
from tests.requests_factories import (
    JUST_OUTSIDE,
    World,
    file_request,
    new_key,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_create_needs_a_key(client: TestClient) -> None:
    r = client.post("/v1/requests", json={"category": "sewer_blocked", "lon": 1, "lat": 1})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = client.post(
        "/v1/requests",
        json={"category": "sewer_blocked", "lon": 1, "lat": 1},
        headers=_h("gg_deadbeef_nope"),
    )
    assert r.status_code == 401


def test_create_read_act_and_history(client: TestClient, engine: Engine, world: World) -> None:
    app_key = new_key(engine, "public", name="hotline app")
    official = new_key(engine, "official")
    member = new_key(engine, "member", member_id=world.members["A"])
    r = file_request(
        client,
        app_key,
        description="下水道堵了",
        contact={"first_name": "明", "last_name": "张", "phone": "13900000000"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    rid, token = body["id"], body["token"]
    assert body["status"] == "received" and body["version"] == 1 and token
    assert body["assignment"]["rule"] == "field"
    assert body["assignment"]["member_display_name"] == "张*明"
    assert "contact" not in body and "13900000000" not in r.text

    v = 1
    for action, key, extra in [
        ("register", official, {}),
        ("dispatch", official, {}),
        ("start", member, {}),
        (
            "resolve",
            member,
            {
                "note": "已疏通",
                "photos": [{"data": base64.b64encode(PNG).decode(), "content_type": "image/png"}],
            },
        ),
        ("close", official, {}),
    ]:
        r = client.post(
            f"/v1/requests/{rid}/{action}", json={"version": v, **extra}, headers=_h(key)
        )
        assert r.status_code == 200, r.text
        v = r.json()["version"]
    assert r.json()["status"] == "closed"
    r = client.post(
        f"/v1/requests/{rid}/evaluate",
        json={"version": v, "satisfaction": "satisfied", "token": token},
        headers=_h(app_key),
    )
    assert r.status_code == 200, r.text

    public = client.get(f"/v1/requests/{rid}").json()
    assert [h["action"] for h in public["history"]] == [
        "receive", "register", "dispatch", "start", "resolve", "close", "evaluate",
    ]  # fmt: skip
    assert all(h["actor"] is None for h in public["history"])  # roles only, no names
    assert public["history"][4]["note"] == "已疏通"  # feedback is for the reporter
    assert "address_id" not in public["location"]
    media = public["media"]
    assert len(media) == 1 and media[0]["url"].endswith(f"/v1/media/{media[0]['id']}")
    photo = client.get(media[0]["url"])
    assert photo.status_code == 200 and photo.content == PNG
    assert photo.headers["content-type"] == "image/png"

    scoped = client.get(f"/v1/requests/{rid}", headers=_h(official)).json()
    assert scoped["history"][1]["actor"].startswith("key ")
    assert scoped["due_at"] is not None and scoped["due_at"].endswith("+08:00")


def test_stale_version_409_with_current_state(client: TestClient, engine: Engine) -> None:
    official = new_key(engine, "official")
    rid = file_request(client, official).json()["id"]
    assert (
        client.post(
            f"/v1/requests/{rid}/register", json={"version": 1}, headers=_h(official)
        ).status_code
        == 200
    )
    r = client.post(
        f"/v1/requests/{rid}/reject", json={"version": 1, "note": "重复"}, headers=_h(official)
    )
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "conflict" and err["field"] == "version"
    assert err["details"]["current"]["status"] == "registered"
    assert err["details"]["current"]["version"] == 2
    assert len(err["details"]["current"]["history"]) == 2


def test_illegal_transition_409_and_nothing_changes(client: TestClient, engine: Engine) -> None:
    official = new_key(engine, "official")
    rid = file_request(client, official).json()["id"]
    r = client.post(f"/v1/requests/{rid}/close", json={"version": 1}, headers=_h(official))
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "action"
    assert r.json()["error"]["details"]["current"]["version"] == 1
    r = client.post(f"/v1/requests/{rid}/fly", json={"version": 1}, headers=_h(official))
    assert r.status_code == 404 and r.json()["error"]["field"] == "action"


def test_roles_are_enforced(client: TestClient, engine: Engine, world: World) -> None:
    public = new_key(engine, "public")
    other_member = new_key(engine, "member", member_id=world.members["B"])
    rid = file_request(client, public).json()["id"]
    r = client.post(f"/v1/requests/{rid}/register", json={"version": 1}, headers=_h(public))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post(f"/v1/requests/{rid}/register", json={"version": 1})
    assert r.status_code == 401
    official = new_key(engine, "official")
    client.post(f"/v1/requests/{rid}/register", json={"version": 1}, headers=_h(official))
    client.post(f"/v1/requests/{rid}/dispatch", json={"version": 2}, headers=_h(official))
    r = client.post(f"/v1/requests/{rid}/start", json={"version": 3}, headers=_h(other_member))
    assert r.status_code == 403  # assigned to A, not B


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"category": "nope"}, 422, "category"),
        ({"lon": None, "lat": None}, 422, "location"),
        ({"description": "x" * 4001}, 422, "description"),
        ({"lat": 123.0}, 422, "lat"),
        ({"attributes": {"colour": "red"}}, 422, "attributes.colour"),
        ({"photos": [{"data": "not base64!"}]}, 422, "photos[0].data"),
        ({"unknown": 1}, 422, "unknown"),
    ],
)
def test_bad_input_names_the_field(
    client: TestClient, engine: Engine, body: dict[str, Any], status: int, field: str
) -> None:
    key = new_key(engine, "public")
    r = file_request(client, key, **body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.Request)).scalar_one() == 0


def test_outside_every_grid_is_flagged(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "public")
    r = file_request(client, key, lon=JUST_OUTSIDE[0], lat=JUST_OUTSIDE[1])
    assert r.status_code == 201
    body = r.json()
    assert body["flag"] == "outside_grids" and body["assignment"]["rule"] == "none"
    assert body["agency_responsible"] == "测试社区"
    flagged = client.get("/v1/requests", params={"flag": "outside_grids"}).json()
    assert [i["id"] for i in flagged["items"]] == [body["id"]]


def test_list_filters_and_pagination(client: TestClient, engine: Engine, world: World) -> None:
    key = new_key(engine, "official")
    ids = [file_request(client, key).json()["id"] for _ in range(5)]
    file_request(client, key, category="street_light")
    page = client.get("/v1/requests", params={"category": "sewer_blocked", "limit": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert page["items"][0]["id"] == ids[-1]  # newest first
    nxt = client.get(page["next"]).json()
    assert [i["id"] for i in nxt["items"]] == [ids[2], ids[1]]
    assert client.get("/v1/requests", params={"status": "open"}).json()["total"] == 6
    r = client.get("/v1/requests", params={"status": "lost"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "status"
    mine = new_key(engine, "member", member_id=world.members["A"])
    assert client.get("/v1/requests", headers=_h(mine)).json()["total"] == 6
    other = new_key(engine, "member", member_id=world.members["C"])
    assert client.get("/v1/requests", headers=_h(other)).json()["total"] == 0
    r = client.get("/v1/requests", params={"from": "2017-13-01"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "from"


def test_personal_data_needs_the_right_and_is_logged(
    client: TestClient, engine: Engine, world: World
) -> None:
    app_key = new_key(engine, "public")
    rid = file_request(
        client, app_key, contact={"last_name": "张", "first_name": "三", "phone": "13911112222"}
    ).json()["id"]
    plain = new_key(engine, "official")
    r = client.get(f"/v1/requests/{rid}", params={"personal": "true"}, headers=_h(plain))
    assert r.status_code == 403 and r.json()["error"]["field"] == "personal"
    r = client.get(f"/v1/requests/{rid}", params={"personal": "true"}, headers=_h(app_key))
    assert r.status_code == 403
    entitled = new_key(engine, "official", personal_data=True, name="书记")
    r = client.get(f"/v1/requests/{rid}", params={"personal": "true"}, headers=_h(entitled))
    assert r.status_code == 200
    body = r.json()
    assert body["contact"]["phone"] == "13911112222"
    assert body["assignment"]["member_name"] == "张小明"
    admin = new_key(engine, "admin")
    log = client.get("/v1/admin/personal-data-reads", headers=_h(admin)).json()
    assert {(e["subject"], e["subject_id"]) for e in log} == {
        ("request", rid),  # its unscrubbed description and notes
        ("request_contact", rid),
        ("member", world.members["A"]),
    }
    assert all("书记" in e["actor"] for e in log)
    assert "13911112222" not in str(log)


def test_actions_table_is_published(client: TestClient) -> None:
    table = {a["action"]: a for a in client.get("/v1/requests/actions").json()}
    assert table["dispatch"] == {
        "action": "dispatch",
        "from": ["registered"],
        "to": "dispatched",
        "roles": ["admin", "official"],
        "note_required": False,
        "description": table["dispatch"]["description"],
    }


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/v1/requests",
        "/v1/requests/{request_id}/{action}",
        "/v1/kpis",
        "/open311/v2/requests.{fmt}",
        "/login",
    ):
        assert p in paths
