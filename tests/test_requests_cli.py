"""The requests commands on both backends: members, fields and leads (dry runs unless
--commit), webhooks (add, deliver, log), requests show and act."""

from __future__ import annotations

import json

import pytest
from click.testing import Result
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from geogrid.access import Actor
from geogrid.db import models as m
from geogrid.requests.workflow import Intake, receive
from tests.requests_factories import IN_FIELD, Receiver, World, build_world, cli_app

runner = CliRunner()


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


def _run(db_url: str, *args: str) -> Result:
    # The webhook receiver of these tests is local (http, 127.0.0.1).
    env = {"COLUMNS": "200", "GEOGRID_WEBHOOK_ALLOW_PRIVATE": "true"}
    r = runner.invoke(cli_app(), [*args, "--database", db_url], env=env)
    return r


def test_members_fields_and_leads(db_url: str, engine: Engine, world: World) -> None:
    r = _run(db_url, "members", "list", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert {x["display_name"] for x in rows} == {"张*明", "李*", "王*"}
    assert "张小明" not in r.stdout
    field = str(world.fields["F1"])
    dry = _run(db_url, "members", "field", field, "--vacant")
    assert dry.exit_code == 0 and "dry run" in dry.stderr
    with engine.connect() as conn:
        holder = select(m.ResponsibilityField.member_id).where(
            m.ResponsibilityField.id == world.fields["F1"]
        )
        assert conn.execute(holder).scalar_one() == world.members["A"]
    assert _run(db_url, "members", "field", field, "--vacant", "--commit").exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(holder).scalar_one() is None
    both = _run(db_url, "members", "field", field)
    assert both.exit_code == 1 and "--member" in both.output
    lead = _run(db_url, "members", "lead", "441302011099003", "--member",
                str(world.members["C"]), "--commit")  # fmt: skip
    assert lead.exit_code == 0, lead.output
    added = _run(db_url, "members", "add", "--name", "赵六", "--kind", "resident", "--commit")
    assert added.exit_code == 0 and "added" in added.stdout
    personal = _run(db_url, "members", "list", "--personal", "--json")
    assert "赵六" in personal.stdout
    with engine.connect() as conn:
        read = select(m.AuditEntry.id).where(m.AuditEntry.action == "read")
        assert conn.execute(read).first() is not None


def test_webhooks_and_requests_commands(db_url: str, engine: Engine, world: World) -> None:
    receiver = Receiver()
    try:
        r = _run(db_url, "webhooks", "add", receiver.url, "--event", "request.dispatched")
        assert r.exit_code == 0 and "secret" in r.stdout
        with engine.begin() as conn:
            rid = receive(
                conn,
                Intake(category="sewer_blocked", lon=IN_FIELD[0], lat=IN_FIELD[1]),
                actor=Actor.system(),
            ).request_id
        shown = _run(db_url, "requests", "show", str(rid))
        assert json.loads(shown.stdout)["version"] == 1
        stale = _run(db_url, "requests", "act", str(rid), "register", "--version", "7")
        assert stale.exit_code == 1 and "version" in stale.output
        assert _run(db_url, "requests", "act", str(rid), "register", "--version", "1",
                    "--as", "王主任").exit_code == 0  # fmt: skip
        done = _run(db_url, "requests", "act", str(rid), "dispatch", "--version", "2")
        assert done.exit_code == 0 and "dispatched" in done.stdout
        assert len(receiver.calls) == 1
        log = json.loads(_run(db_url, "webhooks", "log", "--json").stdout)
        assert log[0]["status"] == "delivered" and log[0]["attempt_log"][0]["status_code"] == 200
        deliver = json.loads(_run(db_url, "webhooks", "deliver", "--json").stdout)
        assert deliver == {"attempted": 0, "delivered": 0, "retrying": 0, "failed": 0,
                           "overdue_found": 0}  # fmt: skip
        with engine.connect() as conn:
            actor = conn.execute(
                select(m.RequestEvent.actor).where(m.RequestEvent.action == "register")
            ).scalar_one()
        assert actor == "cli 王主任"
    finally:
        receiver.close()
