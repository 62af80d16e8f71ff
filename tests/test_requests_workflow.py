"""The case workflow on both backends: intake and assignment, transitions, history, SLA,
optimistic locking, and bad input that leaves nothing half-written."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update

from geogrid.access import Actor, Forbidden
from geogrid.db import models as m
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.requests.workflow import ActionInput, Intake, act, receive, sla_due
from tests.requests_factories import (
    FAR_AWAY,
    IN_FIELD,
    IN_GRID_NO_FIELD,
    IN_VACANT_FIELD,
    JUST_OUTSIDE,
    World,
    build_world,
    set_attributes,
)

OFFICIAL = Actor(role=m.Role.OFFICIAL, label="key test (official)", key_id=1)


def _file(engine: Engine, point: tuple[float, float], **kw: Any) -> Any:
    with engine.begin() as conn:
        return receive(
            conn,
            Intake(category=kw.pop("category", "sewer_blocked"), lon=point[0], lat=point[1], **kw),
            actor=kw.pop("actor", OFFICIAL),
        )


def _act(engine: Engine, rid: int, action: str, version: int, actor: Actor = OFFICIAL, **kw: Any):
    with engine.begin() as conn:
        return act(
            conn,
            request_id=rid,
            action=action,
            actor=actor,
            params=ActionInput(version=version, **kw),
        )


def _row(engine: Engine, rid: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(m.table(m.Request)).where(m.Request.id == rid)).one()


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.mark.parametrize(
    ("point", "rule", "member", "grid"),
    [
        (IN_FIELD, "field", "A", "441302011099001"),
        (IN_GRID_NO_FIELD, "grid_lead", "B", "441302011099001"),
        (IN_VACANT_FIELD, "grid_lead", "C", "441302011099002"),
    ],
)
def test_intake_assigns_grid_field_member(
    engine: Engine, world: World, point: Any, rule: str, member: str, grid: str
) -> None:
    out = _file(engine, point, description="下水道堵了")
    r = _row(engine, out.request_id)
    assert (r.status, r.version, r.assignment_rule) == ("received", 1, rule)
    assert r.member_id == world.members[member]
    assert r.grid_id == world.grids[grid]
    assert r.flag is None and r.token == out.token


def test_outside_every_grid_is_accepted_and_flagged(engine: Engine, world: World) -> None:
    out = _file(engine, JUST_OUTSIDE)
    r = _row(engine, out.request_id)
    assert (r.community_id, r.grid_id, r.member_id) == (world.community_id, None, None)
    assert r.assignment_rule == "none" and r.flag == "outside_grids" == out.flag


def test_full_lifecycle_records_every_transition(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    member = Actor(
        role=m.Role.MEMBER, label="key m (member)", key_id=2, member_id=world.members["A"]
    )
    v = _act(engine, rid, "register", 1).version
    v = _act(engine, rid, "dispatch", v).version
    v = _act(engine, rid, "start", v, actor=member).version
    v = _act(engine, rid, "resolve", v, actor=member, note="疏通完毕").version
    v = _act(engine, rid, "close", v).version
    public = Actor(role=m.Role.PUBLIC, label="key p (public)", key_id=3)
    r = _row(engine, rid)
    out = _act(engine, rid, "evaluate", v, actor=public, satisfaction="satisfied", token=r.token)
    assert (out.status, out.version) == ("closed", 7)
    r = _row(engine, rid)
    assert r.satisfaction == "satisfied" and r.closed_at is not None
    with engine.connect() as conn:
        events = conn.execute(
            select(m.table(m.RequestEvent))
            .where(m.RequestEvent.request_id == rid)
            .order_by(m.RequestEvent.id)
        ).all()
    assert [(e.action, e.from_status, e.to_status, e.version) for e in events] == [
        ("receive", None, "received", 1),
        ("register", "received", "registered", 2),
        ("dispatch", "registered", "dispatched", 3),
        ("start", "dispatched", "in_progress", 4),
        ("resolve", "in_progress", "resolved", 5),
        ("close", "resolved", "closed", 6),
        ("evaluate", "closed", "closed", 7),
    ]
    assert events[4].note == "疏通完毕" and events[4].actor_role == "member"
    assert all(e.at is not None and e.actor for e in events)


def test_events_are_never_edited(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    with pytest.raises(Exception, match="never edited"), engine.begin() as conn:
        conn.execute(
            update(m.RequestEvent).where(m.RequestEvent.request_id == rid).values(note="x")
        )


def test_sla_due_is_wall_clock_from_dispatch(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id  # sewer_blocked: 48 h
    _act(engine, rid, "register", 1)
    _act(engine, rid, "dispatch", 2)
    r = _row(engine, rid)
    assert r.due_at - r.dispatched_at == dt.timedelta(hours=48)
    # Wall-clock hours: across a daylight-saving change the elapsed time differs.
    start = dt.datetime(2024, 3, 9, 12, tzinfo=dt.UTC)  # 07:00 New York, EST
    due = sla_due(start, 24, "America/New_York")
    assert due - start == dt.timedelta(hours=23)


def test_escalate_to_default_department_and_send_back(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    _act(engine, rid, "register", 1)
    _act(engine, rid, "dispatch", 2)
    out = _act(engine, rid, "escalate", 3, note="需要水务处理")
    assert out.status == "escalated"
    with engine.connect() as conn:
        water = conn.execute(
            select(m.Department.id).where(m.Department.code == "water")
        ).scalar_one()
    assert _row(engine, rid).escalated_to_id == water
    dept = Actor(role=m.Role.DEPARTMENT, label="key d (department)", key_id=4, department_id=water)
    other = Actor(role=m.Role.DEPARTMENT, label="key e", key_id=5, department_id=water + 1)
    with pytest.raises(Forbidden):
        _act(engine, rid, "send_back", 4, actor=other, note="no")
    out = _act(engine, rid, "send_back", 4, actor=dept, note="属社区范围")
    assert out.status == "dispatched" and _row(engine, rid).escalated_to_id is None


def test_illegal_transition_is_a_conflict_and_changes_nothing(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    with pytest.raises(Conflict) as exc:
        _act(engine, rid, "close", 1)
    assert exc.value.field == "action"
    assert exc.value.details["current"]["status"] == "received"
    assert exc.value.details["current"]["version"] == 1
    r = _row(engine, rid)
    assert (r.status, r.version) == ("received", 1)
    assert _count(engine, m.RequestEvent) == 1


def test_stale_version_is_a_conflict_with_the_current_state(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    _act(engine, rid, "register", 1)
    with pytest.raises(Conflict) as exc:
        _act(engine, rid, "reject", 1, note="重复")
    assert exc.value.field == "version"
    assert exc.value.details["current"] == {
        "id": rid,
        "status": "registered",
        "version": 2,
        "updated_at": exc.value.details["current"]["updated_at"],
    }
    assert _row(engine, rid).status == "registered"


def test_two_writers_one_wins_the_other_gets_409(engine: Engine, world: World) -> None:
    """Two real connections act on the same version at once: exactly one wins."""
    rid = _file(engine, IN_FIELD).request_id
    barrier = threading.Barrier(2)
    results: list[str] = []

    def worker(action: str, note: str | None) -> None:
        barrier.wait()
        try:
            _act(engine, rid, action, 1, note=note)
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [
        threading.Thread(target=worker, args=("register", None)),
        threading.Thread(target=worker, args=("reject", "重复")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "ok"]
    r = _row(engine, rid)
    assert r.version == 2 and r.status in ("registered", "rejected")
    assert _count(engine, m.RequestEvent) == 2


def test_note_required_and_roles(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    with pytest.raises(InvalidInput) as exc:
        _act(engine, rid, "reject", 1)
    assert exc.value.field == "note"
    member = Actor(role=m.Role.MEMBER, label="m", key_id=9, member_id=world.members["B"])
    with pytest.raises(Forbidden):
        _act(engine, rid, "register", 1, actor=member)
    with pytest.raises(NotFound):
        _act(engine, rid, "teleport", 1)
    with pytest.raises(InvalidInput) as exc:
        _act(engine, rid, "register", None)  # type: ignore[arg-type]
    assert exc.value.field == "version"
    assert _row(engine, rid).version == 1


def test_unsatisfied_evaluation_reopens(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    for i, action in enumerate(["register", "dispatch"]):
        _act(engine, rid, action, i + 1)
    _act(engine, rid, "resolve", 3, note="done")
    out = _act(
        engine, rid, "evaluate", 4, satisfaction="unsatisfied", comment="还是堵", reopen=True
    )
    assert (out.status, out.version) == ("dispatched", 6)
    r = _row(engine, rid)
    assert r.resolved_at is None and r.satisfaction is None


def test_reassign_needs_a_reason_and_a_member(engine: Engine, world: World) -> None:
    rid = _file(engine, IN_FIELD).request_id
    with pytest.raises(InvalidInput) as exc:
        _act(engine, rid, "reassign", 1, note="A is away")
    assert exc.value.field == "member_id"
    _act(engine, rid, "reassign", 1, note="A is away", member_id=world.members["C"])
    r = _row(engine, rid)
    assert (r.member_id, r.assignment_rule, r.status) == (world.members["C"], "manual", "received")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"category": "no_such_thing"}, "category"),
        ({"description": "堵" * 4001}, "description"),
        ({"attributes": {"colour": "red"}}, "attributes.colour"),
        ({"attributes": {"floors": "many", "severity": "low"}}, "attributes.floors"),
        ({"attributes": {"severity": "extreme"}}, "attributes.severity"),
        ({"attributes": {}}, "attributes.severity"),
        ({"crs": "EPSG:999999"}, "crs"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    engine: Engine, world: World, kwargs: dict[str, Any], field: str
) -> None:
    set_attributes(
        engine,
        "sewer_blocked",
        [
            {
                "code": "severity",
                "datatype": "singlevaluelist",
                "required": True,
                "values": [{"key": "low", "name": "低"}, {"key": "high", "name": "高"}],
            },
            {"code": "floors", "datatype": "number", "required": False},
        ],
    )
    kwargs.setdefault("attributes", {"severity": "low"})
    with pytest.raises(InvalidInput) as exc:
        _file(engine, IN_FIELD, **kwargs)
    assert exc.value.field == field
    assert _count(engine, m.Request) == 0 and _count(engine, m.RequestEvent) == 0


def test_missing_and_far_locations(engine: Engine, world: World) -> None:
    with pytest.raises(InvalidInput) as exc, engine.begin() as conn:
        receive(conn, Intake(category="sewer_blocked"), actor=OFFICIAL)
    assert exc.value.field == "location"
    with pytest.raises(InvalidInput) as exc:
        _file(engine, FAR_AWAY)
    assert exc.value.field == "location" and "outside the service area" in exc.value.message
    with pytest.raises(InvalidInput) as exc, engine.begin() as conn:
        receive(conn, Intake(category="sewer_blocked", lon=IN_FIELD[0]), actor=OFFICIAL)
    assert exc.value.field == "lat"
    with pytest.raises(InvalidInput) as exc, engine.begin() as conn:
        receive(conn, Intake(category="sewer_blocked", address_id="NOPE"), actor=OFFICIAL)
    assert exc.value.field == "address_id"
    assert _count(engine, m.Request) == 0


def test_address_id_locates_the_household(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        out = receive(conn, Intake(category="sewer_blocked", address_id="T-00002"), actor=OFFICIAL)
    r = _row(engine, out.request_id)
    assert r.address_id == "T-00002" and r.member_id == world.members["C"]


def test_gcj02_input_is_converted(engine: Engine, world: World) -> None:
    from geogrid import crs as gcrs

    x, y = gcrs.from_wgs84(IN_FIELD[0], IN_FIELD[1], "gcj02")
    out = _file(engine, (x, y), crs="gcj02")
    assert _row(engine, out.request_id).assignment_rule == "field"
    with engine.connect() as conn:
        lon = conn.execute(text(f"SELECT ST_X(geom) FROM requests WHERE id = {out.request_id}"))
        assert abs(lon.scalar_one() - IN_FIELD[0]) < 1e-6
