"""Access on both backends: keys stored hashed and shown once, roles, revocation, the login
page and session cookie (reads only), and the admin key API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from geogrid.access import NotAuthenticated, authenticate, create_key
from geogrid.db import models as m
from geogrid.errors import InvalidInput, NotFound
from tests.requests_factories import IN_FIELD, World, cli_app, new_key, sign_in, sign_out

runner = CliRunner()


def test_cli_creates_a_key_once_and_stores_only_its_hash(
    db_url: str, engine: Engine, world: World
) -> None:
    r = runner.invoke(
        cli_app(),
        ["keys", "create", "--role", "official", "--community", "441302011099", "--name", "书记",
         "--database", db_url],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    key = r.stdout.strip()
    assert key.startswith("gg_") and "only time it is shown" in r.stderr
    with engine.connect() as conn:
        row = conn.execute(select(m.table(m.ApiKey))).one()
        assert key not in str(tuple(row)) and row.key_hash != key and len(row.key_hash) == 64
        actor = authenticate(conn, key)
    assert actor.role is m.Role.OFFICIAL and actor.community_id == world.community_id
    listed = runner.invoke(cli_app(), ["keys", "list", "--json", "--database", db_url])
    assert listed.exit_code == 0 and key not in listed.stdout
    assert row.prefix in listed.stdout
    revoked = runner.invoke(cli_app(), ["keys", "revoke", row.prefix, "--database", db_url])
    assert revoked.exit_code == 0, revoked.output
    with engine.connect() as conn, pytest.raises(NotAuthenticated, match="revoked"):
        authenticate(conn, key)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--role", "wizard"], "unknown role"),
        (["--role", "member"], "--member"),
        (["--role", "department"], "--department"),
        (["--role", "public", "--personal-data"], "personal_data"),
        (["--role", "official", "--community", "000"], "no community"),
    ],
)
def test_cli_refuses_bad_keys(db_url: str, world: World, args: list[str], words: str) -> None:
    r = runner.invoke(cli_app(), ["keys", "create", *args, "--database", db_url])
    assert r.exit_code == 1 and words in r.output


def test_key_scopes(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        with pytest.raises(NotFound):
            create_key(conn, role="member", member_id=999)
        with pytest.raises(InvalidInput):
            create_key(conn, role="official", member_id=world.members["A"])
        dept = create_key(conn, role="department", department_code="water")
        assert authenticate(conn, dept.key).department_id is not None
        with pytest.raises(NotAuthenticated):
            authenticate(conn, dept.key[:-1] + ("x" if dept.key[-1] != "x" else "y"))
        with pytest.raises(NotAuthenticated):
            authenticate(conn, "not a key")


def test_bearer_and_header(client: TestClient, engine: Engine) -> None:
    key = new_key(engine, "planner")
    assert client.get("/v1/me", headers={"X-API-Key": key}).json()["role"] == "planner"
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert me["role"] == "planner" and me["authenticated"]
    anon = client.get("/v1/me").json()
    assert anon == {**anon, "authenticated": False, "role": "public"}
    assert client.get("/v1/me", headers={"X-API-Key": "gg_1234abcd_x"}).status_code == 401


def test_login_session_cookie_reads_only(client: TestClient, engine: Engine) -> None:
    page = client.get("/login", params={"next": "/v1/me"})
    assert page.status_code == 200 and 'name="api_key"' in page.text
    official = new_key(engine, "official", name="街道办")
    r = sign_in(client, official, next="/v1/me")
    assert r.status_code == 303 and r.headers["location"] == "/v1/me"
    cookie = r.headers["set-cookie"]
    assert (
        "geogrid_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    )
    me = client.get("/v1/me").json()  # the client keeps the cookie
    assert me["role"] == "official" and me["via_session"] is True
    # A session authorizes reads; a write needs the key itself.
    w = client.post("/v1/requests", json={"category": "sewer_blocked", "lon": IN_FIELD[0],
                                          "lat": IN_FIELD[1]})  # fmt: skip
    assert w.status_code == 401
    assert sign_out(client).status_code == 303
    assert client.get("/v1/me").json()["authenticated"] is False


def test_login_refusals(client: TestClient, engine: Engine) -> None:
    public = new_key(engine, "public")
    r = sign_in(client, public)
    assert (
        r.status_code == 403
        and "official" in r.text
        and "geogrid_session" not in r.headers.get("set-cookie", "")
    )
    r = sign_in(client, "gg_00000000_nope")
    assert r.status_code == 401
    admin = new_key(engine, "admin")
    r = sign_in(client, admin, next="//evil.example/")
    assert r.headers["location"] == "/dashboard"  # no open redirect: the role's home


def test_revoking_a_key_ends_its_sessions(client: TestClient, engine: Engine) -> None:
    admin = new_key(engine, "admin")
    planner = new_key(engine, "planner")
    sign_in(client, planner)
    assert client.get("/v1/me").json()["role"] == "planner"
    prefix = planner.split("_")[1]
    client.cookies.clear()
    r = client.delete(f"/v1/admin/keys/{prefix}", headers={"X-API-Key": admin})
    assert r.status_code == 200
    with engine.connect() as conn:
        s = conn.execute(select(m.ApiSession.revoked_at)).scalar_one()
    assert s is not None


def test_admin_key_api(client: TestClient, engine: Engine) -> None:
    admin = new_key(engine, "admin")
    official = new_key(engine, "official")
    r = client.post("/v1/admin/keys", json={"role": "public", "name": "app"},
                    headers={"X-API-Key": official})  # fmt: skip
    assert r.status_code == 403
    r = client.post("/v1/admin/keys", json={"role": "public", "name": "app"},
                    headers={"X-API-Key": admin})  # fmt: skip
    assert r.status_code == 201 and r.json()["key"].startswith("gg_")
    keys = client.get("/v1/admin/keys", headers={"X-API-Key": admin}).json()
    assert {k["role"] for k in keys} == {"admin", "official", "public"}
    assert all("key_hash" not in k for k in keys)
    r = client.post("/v1/admin/keys", json={"role": "nope"}, headers={"X-API-Key": admin})
    assert r.status_code == 422 and r.json()["error"]["field"] == "role"
