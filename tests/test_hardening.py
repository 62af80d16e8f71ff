"""Issue 14's findings, each reproduced and now answered as it should be, on both backends:
out-of-range ids and dates, Open311 ids and XML, maps of empty selections and leaderless
grids, strict admin bodies, the non-Bearer ``Authorization``, the error envelope of a bug."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from geogrid.cli import app as cli_app
from geogrid.db import models as m
from geogrid.settings import HttpSettings
from tests.requests_factories import World, file_request, make_app, new_key

BIG = "9223372036854775808"  # 2^63, the reproductions

#: (path, status): every one of these answered 500 (issue 14, finding 7).
OUT_OF_BOUNDS = [
    (f"/v1/requests/{BIG}", 422),
    (f"/v1/media/{BIG}", 422),
    (f"/v1/requests?member_id={BIG}", 422),
    (f"/v1/requests?offset={BIG}", 422),
    (f"/open311/v2/requests/{BIG}.json", 400),
    ("/open311/v2/requests.json?service_request_id=99999999999999999999", 400),
    ("/open311/v2/requests/%C2%B2.json", 400),
    ("/open311/v2/requests.json?service_request_id=%C2%B2", 400),
    ("/v1/summary?from=0001-01-01", 422),
    ("/v1/summary?to=9999-12-31", 422),
    ("/v1/kpis?to=9999-12-31", 422),
    ("/v1/requests?to=9999-12-31", 422),
    ("/maps/coverage?to=9999-12-31", 422),
    ("/open311/v2/requests.json?end_date=0001-01-05T00:00:00Z", 400),
    ("/open311/v2/requests.json?start_date=9999-12-31T00:00:00Z", 400),
    # ``?to=0`` was taken for 1970-01-01 (schemathesis): a number is not a date.
    ("/v1/summary?to=0", 422),
    ("/v1/requests/0", 422),
    ("/v1/requests/2147483648", 422),  # ids are PostgreSQL integers: 2^31 − 1 at most
    ("/v1/visits?offset=-1", 422),
]


@pytest.mark.parametrize(("path", "status"), OUT_OF_BOUNDS)
def test_out_of_range_ids_and_dates_answer_4xx(client: TestClient, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    body = r.json()
    if path.startswith("/open311"):
        assert body[0]["code"] == 400 and body[0]["description"]
    else:
        assert body["error"]["code"] == "invalid_input"
        assert body["error"]["field"]  # names the parameter


def test_the_largest_id_and_offset_are_taken(client: TestClient) -> None:
    top = str(2**31 - 1)
    assert client.get(f"/v1/requests/{top}").status_code == 404
    r = client.get(f"/v1/requests?offset={2**63 - 1}")
    assert r.status_code == 200 and r.json()["items"] == []
    assert client.get("/v1/summary?from=1900-01-01&to=2100-12-31").status_code == 200


def test_hotspots_of_an_empty_selection_is_a_map(client: TestClient) -> None:
    r = client.get("/maps/hotspots?category=sewer_blocked&from=2000-01-01&to=2000-01-01")
    assert r.status_code == 200 and r.text.startswith("<!DOCTYPE html>")


def test_cli_hotspots_of_an_empty_selection_writes_the_map(
    db_url: str, world: World, tmp_path: Path
) -> None:
    out = tmp_path / "hs.html"
    r = CliRunner().invoke(
        cli_app,
        ["map", "hotspots", "--category", "sewer_blocked", "--from", "2000-01-01",
         "--to", "2000-01-01", "--out", str(out), "--database", db_url],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_coverage_of_grids_without_a_lead(client: TestClient, engine: Engine, world: World) -> None:
    official = new_key(engine, "official")
    key = new_key(engine, "public")
    assert file_request(client, key).status_code == 201  # an open request on the grid
    r = client.put(
        "/v1/grids/441302011099001/lead", json={"member_id": None}, headers={"X-API-Key": official}
    )
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        leads = conn.execute(select(m.Grid.lead_member_id)).scalars().all()
    assert None in leads
    for audience in ("public", "official"):
        r = client.get(f"/maps/coverage?audience={audience}", headers={"X-API-Key": official})
        assert r.status_code == 200, r.text


def test_open311_xml_survives_control_characters(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "public")
    r = file_request(client, key, description="井盖\x0b松动\x00，\x1f请处理\t谢谢")
    assert r.status_code == 201, r.text
    xml = client.get("/open311/v2/requests.xml")
    assert xml.status_code == 200
    descriptions = [e.text for e in ET.fromstring(xml.content).iter("description")]
    assert "井盖松动，请处理\t谢谢" in descriptions


def _admin(client: TestClient, engine: Engine) -> dict[str, str]:
    return {"X-API-Key": new_key(engine, "admin")}


@pytest.mark.parametrize(
    "body",
    [
        {"role": "official", "personal_data": "false"},
        {"role": "official", "personal_data": 0},
        {"role": "official", "member_id": "1"},
        {"role": "official", "surprise": True},
        {"role": 3},
    ],
)
def test_admin_key_bodies_are_strict(client: TestClient, engine: Engine, body: Any) -> None:
    headers = _admin(client, engine)
    with engine.connect() as conn:
        before = conn.execute(select(m.ApiKey.id)).scalars().all()
    r = client.post("/v1/admin/keys", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
    with engine.connect() as conn:
        assert conn.execute(select(m.ApiKey.id)).scalars().all() == before


def test_a_key_created_with_false_cannot_read_personal_data(
    client: TestClient, engine: Engine
) -> None:
    r = client.post(
        "/v1/admin/keys",
        json={"role": "official", "personal_data": False},
        headers=_admin(client, engine),
    )
    assert r.status_code == 201
    with engine.connect() as conn:
        flag = conn.execute(select(m.ApiKey.personal_data).where(m.ApiKey.id == r.json()["id"]))
        assert flag.scalar_one() is False


def test_webhook_switch_is_strict(client: TestClient, engine: Engine) -> None:
    headers = _admin(client, engine)
    made = client.post(
        "/v1/admin/webhooks", json={"url": "https://hooks.example.org/x"}, headers=headers
    )
    if made.status_code == 422:  # a setting refuses targets it cannot resolve: store directly
        from geogrid.requests import webhooks

        with engine.begin() as conn:
            wid, _ = webhooks.create_webhook(
                conn, url="https://hooks.example.org/x", events=webhooks.EVENTS
            )
    else:
        assert made.status_code == 201, made.text
        wid = made.json()["id"]
    for body in ({"active": "false"}, {"active": 0}, {}, {"active": False, "url": "x"}):
        r = client.patch(f"/v1/admin/webhooks/{wid}", json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
    with engine.connect() as conn:
        assert conn.execute(select(m.Webhook.active)).scalar_one() is True
    r = client.patch(f"/v1/admin/webhooks/{wid}", json={"active": False}, headers=headers)
    assert r.status_code == 200 and r.json() == {"id": wid, "active": False}
    r = client.patch(
        "/v1/admin/webhooks/10000000000000000000", json={"active": False}, headers=headers
    )
    assert r.status_code == 422


@pytest.mark.parametrize("header", ["Basic Zm9vOmJhcg==", "Token abc", "Bearer", "gg_abc"])
def test_authorization_other_than_bearer_is_refused(client: TestClient, header: str) -> None:
    r = client.get("/v1/me", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json()["error"]["field"] == "Authorization"


def test_a_bug_answers_the_error_envelope(db_url: str, world: World) -> None:
    app = make_app(db_url)

    def boom() -> None:
        raise RuntimeError("secret detail: /srv/geogrid/db.sqlite")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "an internal error; it has been logged",
            "field": None,
        }
    }
    assert "secret" not in r.text
    json.dumps(r.json())


# --- CRS: bounded parsing for HTTP callers (finding 1) ----------------------------------------


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pyproj CRS parse from now on, with geogrid's CRS caches emptied first."""
    import pyproj

    from geogrid import crs as gcrs

    for cached in (gcrs._epsg_crs, gcrs._normalize_cached, gcrs._transformer):
        cached.cache_clear()
    gcrs._PREPARED.clear()
    seen: list[str] = []
    real_epsg, real_input = pyproj.CRS.from_epsg, pyproj.CRS.from_user_input

    def from_epsg(code: Any) -> Any:
        seen.append(f"EPSG:{code}")
        return real_epsg(code)

    def from_user_input(value: Any, **kw: Any) -> Any:
        seen.append(str(value))
        return real_input(value, **kw)

    monkeypatch.setattr(pyproj.CRS, "from_epsg", staticmethod(from_epsg))
    monkeypatch.setattr(pyproj.CRS, "from_user_input", staticmethod(from_user_input))
    return seen


def _tmerc(i: int) -> str:
    return f"+proj=tmerc +lon_0={100 + i / 1000:.3f} +ellps=GRS80 +units=m"


def test_a_batch_of_distinct_proj_strings_is_refused_unparsed(
    client: TestClient, parses: list[str]
) -> None:
    items = [{"lon": 500000, "lat": 2560000, "crs": _tmerc(i)} for i in range(1000)]
    r = client.post("/v1/lookup/batch", json={"items": items})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "items" and "at most 8" in r.json()["error"]["message"]
    assert parses == []


def test_proj_strings_and_unlisted_codes_are_item_errors_unparsed(
    client: TestClient, parses: list[str]
) -> None:
    names = [_tmerc(i) for i in range(5)] + ["EPSG:2000", 'GEOGCS["x"]', "EPSG:999999"]
    r = client.post(
        "/v1/lookup/batch", json={"items": [{"lon": 1, "lat": 2, "crs": n} for n in names]}
    )
    assert r.status_code == 200
    errors = [x["error"] for x in r.json()["results"]]
    assert [e["code"] for e in errors] == ["invalid_crs"] * len(names)
    assert {e["field"] for e in errors} == {"crs"}
    assert parses == []


def test_allowed_codes_are_parsed_once_per_process(client: TestClient, parses: list[str]) -> None:
    codes = [4547, 32650, 3857, 4548]
    spellings = ["EPSG:{}", "epsg:{}", "{}", "EPSG::{}"]
    items = [
        {"lon": 500000, "lat": 2560000, "crs": spellings[i % 4].format(code)}
        for i, code in enumerate(codes)
    ]
    r = client.post("/v1/lookup/batch", json={"items": items})
    assert r.status_code == 200
    # Each code: its own parse, and those of its transformer to WGS 84 (pyproj: 4 or so).
    first = len(parses)
    assert {f"EPSG:{c}" for c in codes} <= set(parses) and first <= 6 * len(codes)
    for _ in range(2):
        assert client.post("/v1/lookup/batch", json={"items": items}).status_code == 200
    # The single lookup: each spelling of a parsed code costs nothing more.
    for spelling in spellings:
        r = client.get(f"/v1/lookup?lon=500000&lat=2560000&crs={spelling.format(4547)}")
        assert r.status_code in (200, 404), r.text
    assert len(parses) == first


@pytest.mark.parametrize("name", [_tmerc(1), "EPSG:2000", "+init=epsg:4547", "x" * 5000])
def test_single_lookup_refuses_unlisted_crs_unparsed(
    client: TestClient, parses: list[str], name: str
) -> None:
    r = client.get("/v1/lookup", params={"lon": "1", "lat": "2", "crs": name})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_crs" and r.json()["error"]["field"] == "crs"
    assert parses == []


def test_single_lookup_prepares_a_new_code_off_the_loop(
    client: TestClient, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from geogrid import crs as gcrs

    threads: list[str] = []
    real = gcrs.prepare

    def prepare(name: str) -> str:
        threads.append(threading.current_thread().name)
        return real(name)

    monkeypatch.setattr(gcrs, "prepare", prepare)
    for _ in range(3):
        r = client.get("/v1/lookup?lon=500000&lat=2560000&crs=EPSG:4547")
        assert r.status_code in (200, 404)
    assert len(threads) == 1  # the first request only
    assert threads[0] != threading.main_thread().name
    assert "EPSG:4547" in parses and len(parses) <= 6  # the code, then its transformer


def test_request_intake_holds_the_crs_list(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "public")
    r = file_request(client, key, crs=_tmerc(3))
    assert r.status_code == 422 and r.json()["error"]["field"] == "crs"


def test_the_epsg_list_is_a_setting(db_url: str, world: World) -> None:
    from api import create_app
    from geogrid.settings import DatabaseSettings, RequestsSettings, Settings

    app = create_app(
        Settings(
            database=DatabaseSettings(database_url=db_url),
            requests=RequestsSettings(webhook_poll_seconds=0),
            http=HttpSettings(crs_epsg="32650", allowed_hosts=["testserver"]),
        )
    )
    with TestClient(app) as c:
        assert c.get("/v1/lookup?lon=1&lat=2&crs=EPSG:4547").status_code == 422
        assert c.get("/v1/lookup?lon=500000&lat=2560000&crs=EPSG:32650").status_code in (200, 404)
        assert c.get("/v1/lookup?lon=114.4&lat=23.1&crs=gcj02").status_code in (200, 404)


def test_epsg_list_spec() -> None:
    from geogrid import crs as gcrs
    from geogrid.errors import InvalidInput

    assert gcrs.parse_epsg_list("4326, 4491-4493,") == {4326, 4491, 4492, 4493}
    default = gcrs.parse_epsg_list(HttpSettings.model_fields["crs_epsg"].default)
    assert len(default) == 3 + 64 + 60 + 60
    for bad in ("43x6", "10-5", "1-"):
        with pytest.raises(InvalidInput):
            gcrs.parse_epsg_list(bad)
