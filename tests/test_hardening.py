"""Issue 14's findings, each reproduced and now answered as it should be, on both backends:
out-of-range ids and dates, Open311 ids and XML, maps of empty selections and leaderless
grids, strict admin bodies, the non-Bearer ``Authorization``, the error envelope of a bug."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from geogrid.cli import app as cli_app
from geogrid.db import models as m
from geogrid.settings import HttpSettings
from tests.requests_factories import (
    World,
    csrf_token,
    file_request,
    make_app,
    new_key,
    sign_in,
    sign_out,
)

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
    if made.status_code == 422:  # a name that does not resolve here: resolve it in the test
        from geogrid.requests import webhooks

        with engine.begin() as conn:
            wid, _ = webhooks.create_webhook(
                conn,
                url="https://hooks.example.org/x",
                events=webhooks.EVENTS,
                resolve=lambda _host, _port: ["93.184.216.34"],
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
    # The message offers what an HTTP caller may use, not "any code known to PROJ".
    assert "GEOGRID_CRS_EPSG" in r.json()["error"]["message"]
    assert "PROJ" not in r.json()["error"]["message"]
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


# --- sign-in throttle, CSRF, headers, Host, body cap (findings 3, 6, 9) -------------------------


def _throttled_app(db_url: str, **http: Any) -> Any:
    app = make_app(db_url, http=http)
    app.state.clock = lambda: NOW[0]  # the throttle's clock, set by the test
    return app


NOW = [dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)]


def test_login_is_throttled_per_client_address(db_url: str, engine: Engine, world: World) -> None:
    official = new_key(engine, "official")
    NOW[0] = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    with TestClient(_throttled_app(db_url)) as c:
        for _ in range(10):
            assert sign_in(c, "gg_00000000_wrong").status_code == 401
        r = sign_in(c, official)  # even the right key: the address is held for a while
        assert r.status_code == 429
        assert r.headers["retry-after"] == "60" and "geogrid_session" not in str(r.headers)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(m.LoginFailure)).scalar() == 10
        NOW[0] += dt.timedelta(seconds=45)
        assert sign_in(c, official).headers["retry-after"] == "15"
        NOW[0] += dt.timedelta(seconds=16)  # the first failures have left the window
        assert sign_in(c, official).status_code == 303


def test_login_throttle_believes_forwarded_for_only_from_trusted_proxies(
    db_url: str, engine: Engine, world: World
) -> None:
    NOW[0] = dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)
    spoof = {"X-Forwarded-For": "203.0.113.7"}
    with TestClient(_throttled_app(db_url, login_max_failures=3)) as c:
        # Not a trusted proxy: a made-up X-Forwarded-For does not buy fresh attempts.
        for i in range(4):
            c.headers.update({"X-Forwarded-For": f"203.0.113.{i}"})
            status = sign_in(c, "gg_00000000_wrong").status_code
        assert status == 429
    proxy = ("10.0.0.2", 40000)
    with TestClient(
        _throttled_app(db_url, login_max_failures=3, trusted_proxies=["10.0.0.0/8"]),
        client=proxy,
    ) as c:
        c.headers.update(spoof)
        # Behind a trusted proxy the client is the forwarded address: its own count.
        assert sign_in(c, "gg_00000000_wrong").status_code == 401
    with engine.connect() as conn:
        clients = set(conn.execute(select(m.LoginFailure.client)).scalars())
    assert "203.0.113.7" in clients


def test_trusted_proxies_must_be_addresses() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not an IP address or network"):
        HttpSettings(trusted_proxies=["proxy.internal"])
    assert HttpSettings(trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies


def test_forms_need_their_csrf_token(client: TestClient, engine: Engine) -> None:
    official = new_key(engine, "official")
    r = client.post("/login", data={"api_key": official}, follow_redirects=False)
    assert r.status_code == 403 and "security token" in r.text
    assert sign_in(client, official).status_code == 303
    assert client.get("/v1/me").json()["via_session"] is True
    # Another site's form (no token, or its own Origin) cannot sign the user out.
    assert client.post("/logout", follow_redirects=False).status_code == 403
    token = csrf_token(client, "/logout")
    r = client.post(
        "/logout",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert client.get("/v1/me").json()["via_session"] is True
    assert sign_out(client).status_code == 303
    assert client.get("/v1/me").json()["authenticated"] is False


@pytest.mark.parametrize("path", ["/", "/login", "/maps/coverage", "/docs", "/v1/summary"])
def test_security_headers(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert "server" not in r.headers
    if r.headers["content-type"].startswith("text/html"):
        csp = r.headers["content-security-policy"]
        nonce = csp.split("'nonce-")[1].split("'")[0]
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        scripts = re.findall(r"<script\b[^>]*>", r.text)
        assert all(f'nonce="{nonce}"' in tag for tag in scripts)
        assert client.get(path).headers["content-security-policy"] != csp  # fresh per page


def test_a_photo_keeps_its_own_policy(client: TestClient, engine: Engine) -> None:
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
        "hKmMIQAAAABJRU5ErkJggg=="
    )
    key = new_key(engine, "public")
    filed = file_request(client, key, photos=[{"data": png, "content_type": "image/png"}])
    media = filed.json()["media"][0]["id"]
    r = client.get(f"/v1/media/{media}")
    assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_host_is_checked(db_url: str, world: World) -> None:
    with TestClient(make_app(db_url, http={"allowed_hosts": ["grid.example.gov.cn"]})) as c:
        assert c.get("/health").status_code == 400
        r = c.get("/v1/summary", headers={"Host": "grid.example.gov.cn"})
        assert r.status_code == 200


def _send_chunked(app: Any, path: str, content_type: str, chunks: int) -> tuple[int, int]:
    """POST ``chunks`` × 100 kB to ``app`` straight through ASGI, without a Content-Length;
    the status, and how many chunks the app asked for."""
    import asyncio
    import threading

    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"x" * 100_000, "more_body": asked < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"),
                                     (b"content-type", content_type.encode())],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    # A thread of its own: an earlier test in the same worker may leave an event loop
    # running in this one, and asyncio.run refuses to nest.
    worker = threading.Thread(target=asyncio.run, args=(app(scope, receive, send),))
    worker.start()
    worker.join()
    return sent[0]["status"], asked


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/requests", "application/json"),
        ("/open311/v2/requests.json", "application/x-www-form-urlencoded"),
        ("/v1/admin/keys", "application/json"),
    ],
)
def test_bodies_over_the_cap_are_refused_unread(
    db_url: str, world: World, path: str, content_type: str
) -> None:
    app = make_app(db_url, http={"max_body_bytes": 1_000_000})
    status, asked = _send_chunked(app, path, content_type, chunks=2000)  # 200 MB offered
    assert status == 413
    assert asked <= 11  # stopped at the cap, not read to the end


def test_declared_and_per_route_caps(db_url: str, world: World) -> None:
    with TestClient(make_app(db_url, http={"max_body_bytes": 1_000_000})) as c:
        r = c.post(
            "/v1/requests",
            content=b"{}",
            headers={"Content-Type": "application/json", "Content-Length": "5000000"},
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    with TestClient(make_app(db_url, http={"lookup_batch_max_bytes": 100_000})) as c:
        big = {"items": [{"address": "长湖街" * 20}] * 2000}
        r = c.post("/v1/lookup/batch", json=big)
        assert r.status_code == 413 and r.json()["error"]["field"] == "body"
        assert c.post("/v1/lookup/batch", json={"items": big["items"][:10]}).status_code == 200


def test_open311_takes_api_key_from_the_form_only(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "public")
    form = {"service_code": "sewer_blocked", "lat": "23.115", "long": "114.4025"}
    r = client.post(f"/open311/v2/requests.json?api_key={key}", data=form)
    assert r.status_code == 400 and "form body" in r.json()[0]["description"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.Request)).scalar() == 0


def test_no_key_reaches_a_log_line(
    db_url: str, engine: Engine, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    from tests.requests_factories import live_server

    key = new_key(engine, "public")
    secret = key.split("_", 2)[2]
    form = {"service_code": "sewer_blocked", "lat": "23.115", "long": "114.4025"}
    access = logging.getLogger("uvicorn.access")  # uvicorn's loggers do not propagate
    with caplog.at_level(logging.INFO), live_server(make_app(db_url)) as url:
        access.setLevel(logging.INFO)
        access.addHandler(caplog.handler)
        httpx.post(f"{url}/open311/v2/requests.json?api_key={key}", data=form)
        httpx.get(f"{url}/v1/lookup?lon=1&lat=2&key={key}&token=abc&x=1")
        logging.getLogger("geogrid.api").warning("a key %s in a message", key)
        access.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records]
    assert any("/open311/v2/requests.json?api_key=[redacted]" in line for line in lines), lines
    assert any("key=[redacted]&token=[redacted]&x=1" in line for line in lines), lines
    assert any(f"{key.rsplit('_', 1)[0][:11]}_[redacted]" in line for line in lines), lines
    assert not any(secret in line for line in lines)
