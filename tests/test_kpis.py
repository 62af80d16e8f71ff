"""KPIs on both backends: a hand-made month whose answers are obvious, and the demo
community, which reproduces the article (86 received, 84 resolved, 0.977)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from geogrid.access import Actor, NotAuthenticated
from geogrid.db import models as m
from geogrid.errors import InvalidInput
from geogrid.periods import period
from geogrid.requests.kpis import kpis
from geogrid.requests.visits import log_visit
from geogrid.requests.workflow import ActionInput, Intake, act, receive
from tests.requests_factories import IN_FIELD, World, build_world, cli_app, make_app, new_key

SH = dt.timezone(dt.timedelta(hours=8))
OFFICIAL = Actor(role=m.Role.OFFICIAL, label="official", key_id=1)
JANUARY = period("2024-01-01", "2024-01-31")


def _t(day: int, hour: int = 10, month: int = 1) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=SH)


def _case(conn: Any, received: dt.datetime, steps: list[tuple[str, dt.datetime, dict]]) -> int:
    rid = receive(
        conn,
        Intake(category="sewer_blocked", lon=IN_FIELD[0], lat=IN_FIELD[1], received_at=received),
        actor=OFFICIAL,
    ).request_id
    for version, (action, at, extra) in enumerate(steps, start=1):
        act(conn, request_id=rid, action=action, actor=OFFICIAL,
            params=ActionInput(version=version, **extra), now=at)  # fmt: skip
    return rid


@pytest.fixture
def month(engine: Engine) -> World:
    """Four requests in January 2024 (sewer_blocked: SLA 48 h) and one in February."""
    world = build_world(engine)
    with engine.begin() as conn:
        start = [("register", _t(2), {}), ("dispatch", _t(2), {})]
        _case(conn, _t(2), [*start, ("resolve", _t(2, 20), {"note": "ok"}),
                            ("close", _t(2, 22), {}),
                            ("evaluate", _t(3), {"satisfaction": "satisfied"})])  # fmt: skip
        late = [("register", _t(3), {}), ("dispatch", _t(3), {})]
        _case(conn, _t(3), [*late, ("resolve", _t(4, 16), {"note": "ok"}),
                            ("close", _t(10), {}),
                            ("evaluate", _t(11), {"satisfaction": "unsatisfied"})])  # fmt: skip
        _case(conn, _t(5), [("register", _t(5), {}), ("dispatch", _t(5), {}),
                            ("escalate", _t(5, 12), {"note": "水务"})])  # fmt: skip
        _case(conn, _t(20), [("reject", _t(20, 11), {"note": "不属于社区范围"})])
        _case(conn, _t(2, month=2), [])
        log_visit(conn, actor=OFFICIAL, address_id="T-00000", visited_on="2024-01-15",
                  kind="routine", member_id=world.members["A"])  # fmt: skip
        log_visit(conn, actor=OFFICIAL, address_id="T-00001", visited_on="2024-02-15",
                  kind="care", member_id=world.members["B"])  # fmt: skip
    return world


EXPECTED_TOTAL = {
    "received": 4,
    "registered": 3,
    "dispatched": 3,
    "resolved": 2,
    "closed": 2,
    "rejected": 1,
    "resolution_rate": 0.5,
    "due": 3,
    "closed_on_time": 1,
    "closure_rate": 0.667,
    "on_time_rate": 0.333,
    "median_hours_to_resolve": 20.0,
    "p90_hours_to_resolve": 28.0,
    "escalations": 1,
    "overdue_open": 1,
    "evaluated": 2,
    "satisfied": 1,
    "satisfaction_rate": 0.5,
    "households": 3,
    "households_visited": 1,
    "visit_coverage": 0.333,
}


def test_a_month_by_hand(engine: Engine, month: World) -> None:
    with engine.connect() as conn:
        table = kpis(conn, period=JANUARY, actor=OFFICIAL)
    assert table["total"] == EXPECTED_TOTAL
    assert table["period"] == {"from": "2024-01-01", "to": "2024-01-31",
                               "timezone": "Asia/Shanghai"}  # fmt: skip


def test_groups(engine: Engine, month: World) -> None:
    with engine.connect() as conn:
        grids = kpis(conn, period=JANUARY, group_by="grid", actor=OFFICIAL)["rows"]
        members = kpis(conn, period=JANUARY, group_by="member", actor=OFFICIAL)["rows"]
        months = kpis(conn, period=period("2024-01-01", "2024-02-29"), group_by="month",
                      actor=OFFICIAL)["rows"]  # fmt: skip
        programmes = kpis(conn, period=JANUARY, group_by="programme", actor=OFFICIAL)["rows"]
    by_code = {r.get("code"): r for r in grids}
    g1 = by_code["441302011099001"]
    assert (g1["received"], g1["households"], g1["households_visited"]) == (4, 2, 1)
    assert g1["visit_coverage"] == 0.5
    assert by_code["441302011099002"]["received"] == 0  # households, no requests
    a = next(r for r in members if r["key"] == month.members["A"])
    assert (a["label"], a["received"], a["visit_coverage"]) == ("张*明", 4, 1.0)
    assert [(r["key"], r["received"], r["households_visited"]) for r in months] == [
        ("2024-01", 4, 1),
        ("2024-02", 1, 1),
    ]
    assert [(r["key"], r["received"], r["visit_coverage"]) for r in programmes] == [
        ("convenience", 4, None)
    ]


def test_bad_group_and_restricted_group(engine: Engine, month: World) -> None:
    with engine.connect() as conn:
        with pytest.raises(InvalidInput) as exc:
            kpis(conn, period=JANUARY, group_by="planet")
        assert exc.value.field == "group_by"
        with pytest.raises(NotAuthenticated):
            kpis(conn, period=JANUARY, group_by="member", actor=Actor.anonymous())


@pytest.fixture
def client(db_url: str, month: World) -> Iterator[TestClient]:
    with TestClient(make_app(db_url)) as c:
        yield c


def test_api_json_and_csv(client: TestClient, engine: Engine) -> None:
    r = client.get("/v1/kpis", params={"from": "2024-01-01", "to": "2024-01-31"})
    assert r.status_code == 200
    assert r.json()["total"] == EXPECTED_TOTAL
    r = client.get("/v1/kpis", params={"from": "2024-01-01", "to": "2024-01-31",
                                       "group_by": "category", "format": "csv"})  # fmt: skip
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["key"], x["received"], x["resolution_rate"]) for x in rows] == [
        ("sewer_blocked", "4", "0.5"),
        ("total", "4", "0.5"),
    ]
    assert client.get("/v1/kpis", params={"group_by": "member"}).status_code == 401
    official = new_key(engine, "official")
    r = client.get("/v1/kpis", params={"group_by": "member"}, headers={"X-API-Key": official})
    assert r.status_code == 200
    r = client.get("/v1/kpis", params={"group_by": "planet"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "group_by"


def test_cli_csv_and_json(db_url: str, month: World, tmp_path: Any) -> None:
    runner = CliRunner()
    args = ["kpi", "--from", "2024-01-01", "--to", "2024-01-31", "--database", db_url]
    r = runner.invoke(cli_app(), [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["total"] == EXPECTED_TOTAL
    out = tmp_path / "kpi.csv"
    r = runner.invoke(cli_app(), [*args, "--group-by", "grid", "--format", "csv", "--out",
                                  str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[-1]["key"] == "total" and rows[-1]["received"] == "4"
    r = runner.invoke(cli_app(), [*args, "--group-by", "grid"], env={"COLUMNS": "250"})
    assert r.exit_code == 0 and "50.0%" in r.stdout and "66.7%" in r.stdout
    r = runner.invoke(cli_app(), [*args, "--group-by", "planet"])
    assert r.exit_code == 1 and "group_by" in r.output


# --- the demo community: the article's figures ------------------------------------------------


def test_demo_reproduces_the_article(demo_engine: Engine) -> None:
    with demo_engine.connect() as conn:
        table = kpis(conn, period=period("2017-07-01", "2018-04-18"), group_by="grid",
                     actor=Actor.system())  # fmt: skip
    total = table["total"]
    assert (total["received"], total["resolved"], total["resolution_rate"]) == (86, 84, 0.977)
    assert sum(r["received"] for r in table["rows"]) == 86
    assert sum(r["resolved"] for r in table["rows"]) == 84
    assert total["households"] > 0 and 0 <= total["closure_rate"] <= 1


def test_demo_kpis_through_the_api(demo_engine: Engine) -> None:
    url = demo_engine.url.render_as_string(hide_password=False)
    with TestClient(make_app(url)) as client:
        r = client.get("/v1/kpis", params={"from": "2017-07-01", "to": "2018-04-18",
                                           "group_by": "programme"})  # fmt: skip
    assert r.status_code == 200
    body = r.json()
    assert body["total"]["received"] == 86 and body["total"]["resolution_rate"] == 0.977
    assert {row["key"] for row in body["rows"]} <= {p.value for p in m.Programme}
