"""The web workbench's frame over HTTP, on both backends: sessions for every role, browsers
sent to sign in while API clients keep their JSON refusals, pages in the viewer's language."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.requests_factories import World, new_key, sign_in

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.parametrize(
    ("role", "kw", "home"),
    [
        ("member", {"member": True}, "/my"),
        ("department", {"department_code": "water"}, "/requests"),
        ("official", {}, "/dashboard"),
        ("planner", {}, "/"),
        ("admin", {}, "/dashboard"),
    ],
)
def test_every_role_but_public_signs_in(
    client: TestClient, engine: Engine, world: World, role: str, kw: dict[str, object], home: str
) -> None:
    if kw.pop("member", False):
        kw["member_id"] = world.members["A"]
    key = new_key(engine, role, **kw)
    r = sign_in(client, key)
    assert r.status_code == 303 and r.headers["location"] == home
    assert "geogrid_session" in r.headers["set-cookie"]
    page = client.get("/", headers=HTML)
    assert f'data-role="{role}"' in page.text and 'action="/logout"' in page.text
    # The session reads /v1 …
    assert client.get("/v1/me").json()["role"] == role
    # … but never writes it: a /v1 write without a key is anonymous, whatever the cookie.
    r = client.post("/v1/requests", json={"category": "sewer_blocked", "lon": 0, "lat": 0})
    assert r.status_code == 401


def test_public_keys_do_not_sign_in(client: TestClient, engine: Engine, world: World) -> None:
    r = sign_in(client, new_key(engine, "public"))
    assert r.status_code == 403 and "geogrid_session" not in r.headers.get("set-cookie", "")
    assert "public" in r.text and 'id="api_key"' in r.text  # the form again, saying why


def test_browsers_sign_in_api_clients_get_json(client: TestClient, world: World) -> None:
    url = "/maps/coverage?audience=official"
    r = client.get(url, headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/maps/coverage%3Faudience%3Dofficial"
    # The sign-in page carries the page to come back to.
    login = client.get(r.headers["location"], headers=HTML)
    assert 'name="next" value="/maps/coverage?audience=official"' in login.text
    for headers in ({}, {"accept": "application/json"}, {**HTML, "x-api-key": "gg_bad_key"}):
        r = client.get(url, headers=headers, follow_redirects=False)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", headers
    # /v1 stays JSON even for a browser.
    r = client.get("/v1/requests/999999", headers=HTML)
    assert r.status_code in (401, 404) and r.headers["content-type"] == "application/json"


def test_refusals_are_pages_for_browsers(client: TestClient, engine: Engine, world: World) -> None:
    r = client.get("/no/such/page", headers=HTML)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>找不到页面</h1>" in r.text
    r = client.get("/no/such/page?lang=en", headers=HTML)
    assert "<h1>Not found</h1>" in r.text and 'lang="en"' in r.text
    assert client.get("/no/such/page").headers["content-type"] == "application/json"
    # A signed-in member asking for an official map: a 403 page in its language, not JSON.
    sign_in(client, new_key(engine, "member", member_id=world.members["A"]))
    r = client.get("/maps/coverage?audience=official&lang=en", headers=HTML)
    assert r.status_code == 403 and "<h1>Not allowed</h1>" in r.text


def test_language(client: TestClient, world: World) -> None:
    assert "<h1>网格化服务管理</h1>" in client.get("/").text  # Chinese by default
    r = client.get("/lang/en?next=/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "geogrid_lang=en" in r.headers["set-cookie"]
    assert "<h1>Sign in</h1>" in client.get("/login").text
    assert (
        client.get("/lang/en?next=//evil.example/", follow_redirects=False).headers["location"]
        == "/"
    )
    assert client.get("/lang/fr").status_code == 422
    # An unknown ?lang= is ignored, never an error: the page renders in the remembered one.
    assert "<h1>Sign in</h1>" in client.get("/login?lang=fr").text


def test_static_files(client: TestClient, world: World) -> None:
    r = client.get("/static/web.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert client.get("/static/../api/main.py").status_code == 404


def test_map_pages_show_who_and_follow_the_language(
    client: TestClient, engine: Engine, world: World
) -> None:
    """The maps are pages too: who is signed in and sign in/out in a corner (not inside the
    dashboard's frames), in the viewer's language unless ``lang`` says otherwise."""
    url = "/maps/coverage?community=441302011099"
    page = client.get(url, headers=HTML).text
    assert 'class="geogrid-who"' in page and 'class="sign-in"' in page
    assert "/login?next=%2Fmaps%2Fcoverage%3Fcommunity%3D441302011099" in page and "登录" in page
    key = new_key(engine, "official", name="网格办")
    sign_in(client, key)
    page = client.get(url, headers=HTML).text
    assert 'data-role="official"' in page and "网格办" in page and 'href="/logout"' in page
    assert 'class="geogrid-who"' not in client.get(f"{url}&embed=1", headers=HTML).text
    client.get("/lang/en")
    page = client.get(url, headers=HTML).text
    assert "Signed in as" in page and "Grid coverage map" in page  # the cookie's language
    assert "网格覆盖图" in client.get(f"{url}&lang=zh", headers=HTML).text  # unless asked
