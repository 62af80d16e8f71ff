"""The HTTP API over both backends: health, summary, the error envelope."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api import create_app
from geogrid.db import migrate
from geogrid.db.engine import make_engine
from geogrid.settings import DatabaseSettings, Settings
from tests.factories import add_households, make_community


def _client(url: str) -> TestClient:
    return TestClient(create_app(Settings(database=DatabaseSettings(database_url=url))))


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with _client(db_url) as c:
        yield c


def test_health_names_backend_and_schema(client: TestClient, backend: str) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["backend"] == backend
    assert body["schema_revision"] == migrate.head_revision()


def test_health_degraded_when_schema_is_behind(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    engine.dispose()
    with _client(db_url) as c:
        r = c.get("/health")
    assert r.status_code == 503
    assert "geogrid db init" in r.json()["message"]


def test_summary_counts_a_small_community(client: TestClient, db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        cid, _, _ = make_community(conn)
        add_households(conn, cid, [(114.405, 23.105), (114.415, 23.115)])
    engine.dispose()
    r = client.get("/v1/summary", params={"from": "2017-07-01", "to": "2018-04-18"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"from": "2017-07-01", "to": "2018-04-18", "timezone": "Asia/Shanghai"}
    (c,) = body["communities"]
    assert c["code"] == "441302011099"
    assert c["grids"] == 4
    assert c["households"] == 2
    assert c["requests"] == {"received": 0, "resolved": 0, "resolution_rate": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "2017-13-01"}, "from"), ({"to": "yesterday"}, "to")],
)
def test_summary_bad_dates_name_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    r = client.get("/v1/summary", params=params)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input"
    assert err["field"] == field


def test_summary_period_backwards_is_refused(client: TestClient) -> None:
    r = client.get("/v1/summary", params={"from": "2018-04-18", "to": "2017-07-01"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "to"


def test_unknown_community_is_404_in_the_envelope(client: TestClient) -> None:
    r = client.get("/v1/summary", params={"community": "999999999999"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["field"] == "community"


def test_unknown_path_uses_the_envelope(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
