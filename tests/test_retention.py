"""Retention on both backends: the reporters' contacts and photos of requests finished
longer ago than the period are erased, the requests stay, and the KPIs do not move."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from geogrid import audit
from geogrid.access import Actor
from geogrid.db import models as m
from geogrid.periods import ago, period
from geogrid.requests.kpis import kpis
from geogrid.requests.media import Photo
from geogrid.requests.workflow import ActionInput, Contact, Intake, act, receive
from tests.requests_factories import IN_FIELD, IN_GRID_NO_FIELD, World, cli_app

runner = CliRunner()
OFFICIAL = Actor(role=m.Role.OFFICIAL, label="key test (official)", key_id=1)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
NOW = m.utcnow()


def _days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def _case(
    conn: Any,
    received: dt.datetime,
    steps: list[tuple[str, dict[str, Any]]],
    *,
    point: tuple[float, float] = IN_FIELD,
    phone: str | None = None,
    photo: bool = False,
) -> int:
    """A request received at ``received`` and moved on an hour a step."""
    rid = receive(
        conn,
        Intake(
            category="sewer_blocked",
            lon=point[0],
            lat=point[1],
            received_at=received,
            description="门口井盖丢失，回电 13800000052",
            address_id="T-00000" if point == IN_FIELD else "T-00001",
            contact=Contact(first_name="测", phone=phone),
            photos=[Photo(PNG, "image/png")] if photo else (),
            media_urls=["https://photos.example.org/1.jpg"] if photo else (),
        ),
        actor=OFFICIAL,
    ).request_id
    for version, (action, extra) in enumerate(steps, start=1):
        act(conn, request_id=rid, action=action, actor=OFFICIAL,
            params=ActionInput(version=version, **extra),
            now=received + dt.timedelta(hours=version))  # fmt: skip
    return rid


CLOSED = [
    ("register", {}),
    ("dispatch", {}),
    ("resolve", {"note": "已更换井盖，联系人 13800000054"}),
    ("close", {}),
    ("evaluate", {"satisfaction": "satisfied", "comment": "谢谢！我的电话 13800000055"}),
]


@pytest.fixture
def cases(engine: Engine, world: World) -> dict[str, int]:
    with engine.begin() as conn:
        return {
            "old_closed": _case(conn, _days_ago(3 * 365), CLOSED, phone="13800000051", photo=True),
            "old_rejected": _case(
                conn,
                _days_ago(3 * 365 + 5),
                [("reject", {"note": "重复，已电话 13800000053"})],
                phone="13800000056",
            ),
            "old_open": _case(
                conn,
                _days_ago(3 * 365 + 9),
                CLOSED[:2],
                phone="13800000057",
                point=IN_GRID_NO_FIELD,
            ),
            "recent_closed": _case(conn, _days_ago(200), CLOSED, phone="13800000058", photo=True),
        }


def _kpis(engine: Engine) -> list[dict[str, Any]]:
    p = period(_days_ago(4 * 365).date(), NOW.date())
    with engine.connect() as conn:
        return [
            kpis(conn, period=p, group_by=g, actor=OFFICIAL, now=NOW)
            for g in (None, "grid", "member", "category", "month")
        ]


def _left(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        contacts = set(conn.execute(select(m.RequestContact.request_id)).scalars())
        media = set(conn.execute(select(m.RequestMedia.request_id)).scalars())
        requests = {
            r.id: r
            for r in conn.execute(
                select(
                    m.Request.id,
                    m.Request.token,
                    m.Request.description,
                    m.Request.satisfaction,
                    m.Request.satisfaction_comment,
                    m.Request.address_id,
                    m.Request.status,
                )
            )
        }
        notes = {
            (e.request_id, e.action): e.note
            for e in conn.execute(
                select(m.RequestEvent.request_id, m.RequestEvent.action, m.RequestEvent.note)
            )
        }
    return {"contacts": contacts, "media": media, "requests": requests, "notes": notes}


def _retention(db_url: str, *args: str) -> Any:
    return runner.invoke(
        cli_app(), ["retention", *args, "--json", "--database", db_url], env={"COLUMNS": "200"}
    )


def test_retention_erases_old_finished_requests_only(
    db_url: str, engine: Engine, cases: dict[str, int]
) -> None:
    kpis_before, left_before = _kpis(engine), _left(engine)
    dry = _retention(db_url, "--older-than", "2y")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["committed"] is False and report["finished_requests"] == 2
    assert report["communities"] == {"441302011099": report["total"]}
    assert report["total"] == {
        "requests": 2,
        "contacts": 2,
        "photos": 1,
        "linked_photos": 1,
        "notes": 3,  # resolve's and reject's scrubbed, evaluate's (the comment) gone
    }
    assert _left(engine) == left_before  # a dry run writes nothing
    with engine.connect() as conn:
        assert audit.entries(conn, where=audit.AuditFilter(action="retention")) == []

    done = _retention(db_url, "--older-than", "2y", "--commit")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["total"] == report["total"]
    left = _left(engine)
    old = {cases["old_closed"], cases["old_rejected"]}
    kept = {cases["old_open"], cases["recent_closed"]}
    assert left["contacts"] == kept
    assert left["media"] == {cases["recent_closed"]}
    for rid in old:
        r = left["requests"][rid]
        assert (r.token, r.satisfaction_comment, r.address_id) == (None, None, None)
        assert "13800000052" not in r.description and "井盖丢失" in r.description
    closed = left["requests"][cases["old_closed"]]
    assert (closed.status, closed.satisfaction) == ("closed", "satisfied")
    assert left["notes"][(cases["old_closed"], "evaluate")] is None
    assert left["notes"][(cases["old_closed"], "resolve")] == "已更换井盖，联系人 [电话已隐藏]"
    assert left["notes"][(cases["old_rejected"], "reject")] == "重复，已电话 [电话已隐藏]"
    for rid in kept:  # untouched
        assert left["requests"][rid] == left_before["requests"][rid]
        assert left["notes"][(rid, "dispatch")] == left_before["notes"][(rid, "dispatch")]
    assert left["notes"][(cases["recent_closed"], "evaluate")] == "谢谢！我的电话 13800000055"
    assert _kpis(engine) == kpis_before

    with engine.connect() as conn:
        [entry] = audit.entries(conn, where=audit.AuditFilter(action="retention"))
        assert conn.execute(select(func.count()).select_from(m.Request)).scalar() == 4
    assert entry["details"]["total"] == report["total"] and entry["via"] == "geogrid retention"
    assert "13800000051" not in json.dumps(entry)
    again = json.loads(_retention(db_url, "--older-than", "2y", "--commit").stdout)
    assert again["total"]["requests"] == 0 and again["finished_requests"] == 2


def test_a_shorter_period_reaches_the_recent_ones_and_bad_periods_are_refused(
    db_url: str, engine: Engine, cases: dict[str, int]
) -> None:
    done = _retention(db_url, "--older-than", "90d", "--commit")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["total"]["requests"] == 3
    assert _left(engine)["contacts"] == {cases["old_open"]}  # open requests keep theirs
    for bad in ("2w", "y", "0d", "-1y", "２y"):
        r = _retention(db_url, "--older-than", bad)
        assert r.exit_code == 1 and "older_than" in r.stderr, (bad, r.output)


def test_periods_count_on_the_calendar() -> None:
    now = dt.datetime(2026, 3, 31, 4, tzinfo=dt.UTC)  # noon in Shanghai
    assert ago("1m", now=now) == dt.datetime(2026, 2, 28, 4, tzinfo=dt.UTC)
    assert ago("18m", now=now) == dt.datetime(2024, 9, 30, 4, tzinfo=dt.UTC)
    assert ago("2y", now=now) == dt.datetime(2024, 3, 31, 4, tzinfo=dt.UTC)
    assert ago("90d", now=now) == now - dt.timedelta(days=90)
