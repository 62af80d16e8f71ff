"""A person's export and erasure on both backends: a member (anonymised, its row kept), a
household (its personal row gone, its point kept), a reporter (contacts and photos gone, the
requests kept); every export and erasure in the audit log, without the values."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner

from geogrid import audit
from geogrid.access import Actor, authenticate, create_key
from geogrid.db import models as m
from geogrid.errors import InvalidInput, NotFound
from geogrid.person import ERASED_NAME, erase_reporter, export_reporter
from geogrid.requests.media import Photo
from geogrid.requests.visits import log_visit
from geogrid.requests.workflow import ActionInput, Contact, Intake, act, receive
from tests.requests_factories import IN_FIELD, IN_GRID_NO_FIELD, World, cli_app

runner = CliRunner()
OFFICIAL = Actor(role=m.Role.OFFICIAL, label="key test (official)", key_id=1)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _run(db_url: str, *args: str) -> Any:
    return runner.invoke(cli_app(), [*args, "--database", db_url], env={"COLUMNS": "200"})


def _entries(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return audit.entries(conn, where=audit.AuditFilter(**where), limit=1000)


def test_a_member_is_exported_then_anonymised(
    db_url: str, engine: Engine, world: World, tmp_path: Any
) -> None:
    b = world.members["B"]  # leads grid 001; the grid lead of requests there
    with engine.begin() as conn:
        key = create_key(conn, role="member", member_id=b, name="李四的手机")
        member = authenticate(conn, key.key)
        rid = receive(
            conn,
            Intake(category="sewer_blocked", lon=IN_GRID_NO_FIELD[0], lat=IN_GRID_NO_FIELD[1]),
            actor=OFFICIAL,
        ).request_id
        for version, (action, who) in enumerate(
            [("register", OFFICIAL), ("dispatch", OFFICIAL), ("start", member)], start=1
        ):
            act(conn, request_id=rid, action=action, actor=who,
                params=ActionInput(version=version))  # fmt: skip
    out = tmp_path / "member.json"
    r = _run(db_url, "person", "export", "--member", str(b), "--out", str(out))
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["member"]["name"] == "李四" and data["member"]["active"] is True
    assert [g["code"] for g in data["grids_led"]] == ["441302011099001"]
    assert [k["prefix"] for k in data["keys"]] == [key.prefix]
    assert [x["id"] for x in data["requests_assigned"]] == [rid]
    [exported] = _entries(engine, action="export")
    assert (exported["subject"], exported["subject_id"]) == ("member", str(b))
    assert "李四" not in json.dumps(exported)

    dry = _run(db_url, "person", "erase", "--member", str(b))
    assert dry.exit_code == 0 and "would erase" in dry.stdout, dry.output
    with engine.connect() as conn:
        assert conn.execute(select(m.Member.name).where(m.Member.id == b)).scalar() == "李四"
    done = _run(db_url, "person", "erase", "--member", str(b), "--commit", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["grids_unled"], report["keys_revoked"], report["events_relabelled"]) == (1, 1, 1)
    with engine.connect() as conn:
        row = conn.execute(select(m.table(m.Member)).where(m.Member.id == b)).one()
        assert (row.name, row.phone, row.position, row.active) == (ERASED_NAME, None, None, False)
        lead = conn.execute(select(m.Grid.lead_member_id).where(m.Grid.code == "441302011099001"))
        assert lead.scalar() is None
        k = conn.execute(select(m.ApiKey.name, m.ApiKey.revoked_at).where(m.ApiKey.id == key.id))
        name, revoked = k.one()
        assert name is None and revoked is not None
        actors = conn.execute(select(m.RequestEvent.actor).where(m.RequestEvent.request_id == rid))
        assert f"key {key.prefix} (member)" in set(actors.scalars())
        assert "李四" not in str(conn.execute(select(m.table(m.RequestEvent))).all())
    [erased] = _entries(engine, action="erase")
    assert erased["details"]["grids_unled"] == 1 and "李四" not in json.dumps(erased)


def test_a_household_is_exported_then_erased_keeping_its_point(
    db_url: str, engine: Engine, world: World
) -> None:
    home = world.households[0]  # T-00000, in member A's field
    with engine.begin() as conn:
        conn.execute(
            insert(m.HouseholdPersonal).values(
                household_id=home, head_name="测试户主", phone="13800000061", care_flags=["elderly"]
            )
        )
        conn.execute(
            m.table(m.Household).update().where(m.Household.id == home).values(unit="2", room="301")
        )
        log_visit(conn, actor=OFFICIAL, address_id="T-00000", visited_on="2024-01-15",
                  kind="care", member_id=world.members["A"], note="户主腿伤，需送药")  # fmt: skip
    r = _run(db_url, "person", "export", "--address-id", "T-00000")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["household"]["head_name"] == "测试户主" and data["household"]["room"] == "301"
    assert data["visits"][0]["note"] == "户主腿伤，需送药"
    done = _run(db_url, "person", "erase", "--address-id", "T-00000", "--commit", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["personal_rows"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(m.HouseholdPersonal.household_id)).first() is None
        row = conn.execute(select(m.table(m.Household)).where(m.Household.id == home)).one()
        assert (row.unit, row.room, row.address_id) == (None, None, "T-00000")
        assert row.geom is not None  # the point still counts for coverage
        assert conn.execute(select(m.Visit.note)).scalar() is None
    again = json.loads(_run(db_url, "person", "export", "--address-id", "T-00000").stdout)
    assert again["household"]["head_name"] is None
    # Who exported it is part of what the next export tells.
    assert [e["action"] for e in again["reads_of_this_data"]] == ["export"]
    entries = _entries(engine, subject="household", subject_id=str(home))
    assert [e["action"] for e in entries] == ["export", "erase", "export"]
    assert "测试户主" not in json.dumps(entries) and "13800000061" not in json.dumps(entries)


def _file(engine: Engine, phone: str, *, photo: bool = False) -> tuple[int, str]:
    with engine.begin() as conn:
        out = receive(
            conn,
            Intake(
                category="sewer_blocked",
                lon=IN_FIELD[0],
                lat=IN_FIELD[1],
                description="污水外溢",
                contact=Contact(first_name="测", email="reporter@example.org", phone=phone),
                photos=[Photo(PNG, "image/png", "a.png")] if photo else (),
            ),
            actor=OFFICIAL,
        )
    assert out.token is not None
    return out.request_id, out.token


def test_a_reporter_by_phone_or_token(db_url: str, engine: Engine, world: World) -> None:
    first, _ = _file(engine, "138 0000 0071", photo=True)
    second, token = _file(engine, "+86 13800000071")
    other, _ = _file(engine, "13800000072")
    with engine.begin() as conn:
        data = export_reporter(conn, actor=OFFICIAL, phone="13800000071")
    assert [r["id"] for r in data["requests"]] == [first, second]
    one = data["requests"][0]
    assert one["contact"]["email"] == "reporter@example.org"
    assert base64.b64decode(one["photos"][0]["data_base64"]).startswith(b"\x89PNG")
    assert [e["action"] for e in one["events"]] == ["receive"]

    r = _run(db_url, "person", "erase", "--request-token", token, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["request_ids"] == [second], r.output
    done = _run(db_url, "person", "erase", "--phone", "13800000071", "--commit", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["request_ids"], report["contacts"], report["photos"]) == ([first, second], 2, 1)
    with engine.connect() as conn:
        assert set(conn.execute(select(m.RequestContact.request_id)).scalars()) == {other}
        assert conn.execute(select(m.RequestMedia.id)).first() is None
        tokens = dict(conn.execute(select(m.Request.id, m.Request.token)).all())
    assert tokens[first] is None and tokens[second] is None and tokens[other] is not None
    [entry] = _entries(engine, action="erase")
    assert entry["subject"] == "reporter" and entry["details"]["request_ids"] == [first, second]
    assert "13800000071" not in json.dumps(_entries(engine))
    with engine.begin() as conn, pytest.raises(NotFound):
        erase_reporter(conn, actor=OFFICIAL, phone="13800000071")  # nothing left to find


def test_a_person_is_named_once(db_url: str, engine: Engine, world: World) -> None:
    r = _run(db_url, "person", "export", "--member", "1", "--phone", "13800000071")
    assert r.exit_code == 1 and "name one person" in r.stderr
    r = _run(db_url, "person", "erase", "--member", "999")
    assert r.exit_code == 1 and "no member" in r.stderr
    with engine.begin() as conn, pytest.raises(InvalidInput):
        export_reporter(conn, actor=OFFICIAL, phone="call me")
