"""The audit log on both backends: writes through HTTP and the command line leave one entry
each (who, what, from where, never a personal value); a refused or rolled-back write leaves
none; the triggers refuse UPDATE and DELETE; the prune keeps the kept period; migration 0011
goes down and up with its entries."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from geogrid import audit, periods
from geogrid.access import Actor, local_operator
from geogrid.db import migrate
from geogrid.db import models as m
from geogrid.db.queries import audit as audit_queries
from geogrid.directory import save_member
from geogrid.settings import PrivacySettings
from tests.requests_factories import World, cli_app, file_request, new_key

runner = CliRunner()
A = "441302011099"


def _entries(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return audit.entries(conn, where=audit.AuditFilter(**where), limit=1000)


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_an_http_write_names_key_client_and_route_never_the_values(
    engine: Engine, client: TestClient, world: World
) -> None:
    official = new_key(engine, "official", community_code=A, name="社区办公室")
    r = file_request(
        client,
        official,
        description="井盖丢失",
        contact={"first_name": "测", "phone": "13800000042"},
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = client.post(f"/v1/requests/{rid}/register", json={"version": 1}, headers=_h(official))
    assert r.status_code == 200, r.text

    filed, registered = (_entries(engine, subject="request", action=a)[0]
                         for a in ("receive", "register"))  # fmt: skip
    with engine.connect() as conn:
        key_id = conn.execute(select(m.ApiKey.id).where(m.ApiKey.name == "社区办公室")).scalar()
    assert filed["api_key_id"] == registered["api_key_id"] == key_id
    assert filed["role"] == "official" and "社区办公室" in filed["actor"]
    assert filed["client"] == "testclient"  # TestClient's address
    assert filed["via"] == "POST /v1/requests"
    assert registered["via"] == "POST /v1/requests/{request_id}/{action}"
    assert filed["subject_id"] == registered["subject_id"] == str(rid)
    assert {"description", "first_name", "phone"} <= set(filed["fields"])
    assert registered["details"]["from"] == "received"
    assert registered["details"]["to"] == "registered"
    # Names of fields only: the values are nowhere in the log.
    everything = json.dumps(_entries(engine), ensure_ascii=False)
    assert "13800000042" not in everything and "井盖丢失" not in everything


def test_refused_and_rolled_back_writes_leave_no_entry(
    engine: Engine, client: TestClient, world: World
) -> None:
    official = new_key(engine, "official", community_code=A)
    rid = file_request(client, official).json()["id"]
    before = len(_entries(engine))
    # A stale version: refused before anything is written.
    r = client.post(f"/v1/requests/{rid}/register", json={"version": 7}, headers=_h(official))
    assert r.status_code == 409
    # Not allowed from "received": the row was claimed (a write), then the change refused
    # and the transaction rolled back, the claim and the entry with it.
    r = client.post(f"/v1/requests/{rid}/dispatch", json={"version": 1}, headers=_h(official))
    assert r.status_code == 409 and r.json()["error"]["field"] == "action"
    assert client.get(f"/v1/requests/{rid}", headers=_h(official)).json()["version"] == 1
    # A member key may not register: refused before anything is written.
    member = new_key(engine, "member", member_id=world.members["A"])
    after_key = len(_entries(engine))
    r = client.post(f"/v1/requests/{rid}/register", json={"version": 1}, headers=_h(member))
    assert r.status_code == 403
    assert len(_entries(engine)) == after_key == before + 1  # the member key's own creation
    # A write in a transaction that then fails: its entry goes with it.
    with pytest.raises(RuntimeError), engine.begin() as conn:
        save_member(conn, member_id=None, values={"name": "赵六", "kind": "resident"}, community=A)
        assert audit.entries(conn, where=audit.AuditFilter(subject="member"))  # written …
        raise RuntimeError("the caller fails after the write")
    assert _entries(engine, subject="member") == []  # … and rolled back with the change


def _run(db_url: str, *args: str) -> Any:
    return runner.invoke(cli_app(), [*args, "--database", db_url], env={"COLUMNS": "200"})


def test_a_command_is_audited_as_the_operator_and_a_dry_run_is_not(
    db_url: str, engine: Engine, world: World
) -> None:
    dry = _run(db_url, "members", "add", "--name", "赵六", "--kind", "resident")
    assert dry.exit_code == 0, dry.output
    assert _entries(engine, subject="member") == []
    done = _run(db_url, "members", "add", "--name", "赵六", "--kind", "resident",
                "--phone", "13800000043", "--commit")  # fmt: skip
    assert done.exit_code == 0, done.output
    [entry] = _entries(engine, subject="member")
    assert entry["action"] == "create" and entry["actor"] == "cli"
    assert entry["api_key_id"] is None and entry["role"] == "admin"
    assert entry["client"] == local_operator()  # <login>@<host>
    assert entry["via"] == "geogrid members add"
    assert set(entry["fields"]) == {"name", "kind", "phone", "active"}
    assert "13800000043" not in json.dumps(entry)
    # Listed by the command, filtered by subject and id.
    listed = _run(db_url, "audit", "--subject", f"member:{entry['subject_id']}", "--json")
    assert listed.exit_code == 0, listed.output
    assert [e["id"] for e in json.loads(listed.stdout)] == [entry["id"]]
    table = _run(db_url, "audit", "--since", "1d", "--actor", "cli")
    assert table.exit_code == 0 and "geogrid members add" in table.stdout


def test_the_admin_route_filters_and_pages(
    engine: Engine, client: TestClient, world: World
) -> None:
    admin = new_key(engine, "admin", personal_data=True)
    official = new_key(engine, "official", community_code=A)
    for _ in range(3):
        file_request(client, official)
    r = client.get("/v1/members", params={"personal": "true"}, headers=_h(admin))
    assert r.status_code == 200
    r = client.get("/v1/admin/audit", params={"action": "receive", "limit": 2}, headers=_h(admin))
    assert r.status_code == 200, r.text
    first = r.json()
    assert [e["action"] for e in first["items"]] == ["receive", "receive"]
    assert first["next_before_id"] == first["items"][-1]["id"]
    r = client.get(
        "/v1/admin/audit",
        params={"action": "receive", "limit": 2, "before_id": first["next_before_id"]},
        headers=_h(admin),
    )
    rest = r.json()
    assert len(rest["items"]) == 1 and rest["next_before_id"] is None
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    reads = client.get("/v1/admin/audit", params={"action": "read"}, headers=_h(admin)).json()
    assert {e["subject"] for e in reads["items"]} == {"member"}
    assert len(reads["items"]) == len(world.members)
    # The former read log answers as before, from the audit log.
    old = client.get("/v1/admin/personal-data-reads", headers=_h(admin)).json()
    assert sorted(e["subject_id"] for e in old) == sorted(world.members.values())
    today = periods.today().isoformat()
    dated = client.get("/v1/admin/audit", params={"from": "2000-01-01", "to": "2000-01-02"},
                       headers=_h(admin)).json()  # fmt: skip
    assert dated["items"] == []
    assert client.get("/v1/admin/audit", params={"from": today}, headers=_h(admin)).json()["items"]
    assert (
        client.get("/v1/admin/audit", params={"limit": 1001}, headers=_h(admin)).status_code == 422
    )
    assert client.get("/v1/admin/audit", headers=_h(official)).status_code == 403


# --- append-only ---------------------------------------------------------------------------


def _put(engine: Engine, *ages_days: int) -> list[int]:
    """Entries written ``ages_days`` ago; their ids."""
    now = m.utcnow()
    who = Actor.system("test")
    with engine.begin() as conn:
        for age in ages_days:
            audit_queries.insert_entries(
                conn,
                rows=[
                    {
                        "at": now - dt.timedelta(days=age),
                        "api_key_id": None,
                        "actor": who.label,
                        "role": "admin",
                        "client": who.client,
                        "via": "test",
                        "action": "create",
                        "subject": "test",
                        "subject_id": str(age),
                        "fields": [],
                        "details": None,
                    }
                ],
            )
        return list(conn.execute(select(m.AuditEntry.id).order_by(m.AuditEntry.id)).scalars())


def test_the_triggers_refuse_update_and_delete(engine: Engine) -> None:
    [young, old] = _put(engine, 1, 400)
    statements = [
        update(m.AuditEntry).where(m.AuditEntry.id == young).values(actor="someone else"),
        update(m.AuditEntry).values(fields=[]),
        delete(m.AuditEntry).where(m.AuditEntry.id == young),
        delete(m.AuditEntry).where(m.AuditEntry.id == old),  # old, but no prune's permit
        delete(m.AuditEntry),
    ]
    if engine.dialect.name == "postgresql":
        statements.append(text("TRUNCATE audit_log"))
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    with engine.connect() as conn:
        assert conn.execute(
            select(m.AuditEntry.actor).order_by(m.AuditEntry.id)
        ).scalars().all() == [
            "test",
            "test",
        ]


def test_prune_removes_only_what_is_past_the_kept_period(engine: Engine) -> None:
    _put(engine, 400, 200, 100, 1)
    who = Actor.system("test")
    with engine.begin() as conn:
        report = audit.prune(conn, actor=who)  # the default: 183 days
    assert report["keep_days"] == 183 and report["removed"] == 2
    with engine.connect() as conn:
        kept = conn.execute(select(m.AuditEntry.subject_id).where(m.AuditEntry.subject == "test"))
        assert sorted(kept.scalars()) == ["1", "100"]
        assert conn.execute(select(m.PrivacyPermit.id)).first() is None  # the permit is gone
    [prune] = _entries(engine, action="prune")
    assert prune["details"]["removed"] == 2
    # The permit lived only inside the prune: a DELETE afterwards is refused again.
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(delete(m.AuditEntry))
    # Below six months only when explicitly allowed.
    with pytest.raises(ValidationError, match="183"):
        PrivacySettings(audit_keep_days=90)
    short = PrivacySettings(audit_keep_days=90, audit_allow_short_keep=True)
    with engine.begin() as conn:
        assert audit.prune(conn, actor=who, settings=short)["removed"] == 1


def test_prune_command_is_a_dry_run_unless_committed(db_url: str, engine: Engine) -> None:
    _put(engine, 400, 1)
    dry = _run(db_url, "audit", "prune")
    assert dry.exit_code == 0 and "would remove 1 entries" in dry.stdout, dry.output
    assert len(_entries(engine, subject="test")) == 2
    done = _run(db_url, "audit", "prune", "--commit", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["removed"] == 1
    refused = runner.invoke(
        cli_app(),
        ["audit", "prune", "--database", db_url],
        env={"GEOGRID_AUDIT_KEEP_DAYS": "30"},
    )
    assert refused.exit_code == 1 and "GEOGRID_AUDIT_ALLOW_SHORT_KEEP" in refused.stderr


def test_0011_goes_down_and_up_with_the_reads(engine: Engine) -> None:
    with engine.begin() as conn:
        audit.record_reads(
            conn, actor=Actor.system("reader"), subject="member", subject_ids=[5, 6],
            fields=["name", "phone"], via="GET /v1/members",
        )  # fmt: skip
        audit.record(conn, actor=Actor.system(), action="create", subject="category",
                     subject_id="stray_dogs")  # fmt: skip
    migrate.downgrade(engine, "0010")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT actor, subject, subject_id, via FROM personal_data_reads ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("reader", "member", 5, "GET /v1/members"),
        ("reader", "member", 6, "GET /v1/members"),
    ]
    migrate.upgrade(engine)
    back = _entries(engine)
    assert [(e["action"], e["subject"], e["subject_id"], e["fields"]) for e in back] == [
        ("read", "member", "6", ["name", "phone"]),
        ("read", "member", "5", ["name", "phone"]),
    ]
    assert back[0]["role"] is None  # the old log never recorded it
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(delete(m.AuditEntry))


def test_writes_of_the_library_without_an_actor_are_the_local_operators(
    engine: Engine, world: World
) -> None:
    from geogrid.access import create_key

    with engine.begin() as conn:
        new = create_key(conn, role="official", community_code=A, name="值班")
    [entry] = _entries(engine, subject="key")
    assert entry["subject_id"] == str(new.id) and entry["details"]["prefix"] == new.prefix
    assert entry["client"] == local_operator() and entry["fields"] == ["name"]
    assert new.key not in json.dumps(entry) and "值班" not in json.dumps(entry)


def test_request_events_change_only_under_an_erasure_and_only_notes_and_names(
    engine: Engine, client: TestClient, world: World
) -> None:
    from geogrid.db.queries.audit import permit

    official = new_key(engine, "official", community_code=A)
    rid = file_request(client, official).json()["id"]
    event = m.table(m.RequestEvent)
    mine = event.c.request_id == rid
    with pytest.raises(DBAPIError, match="never edited"), engine.begin() as conn:
        conn.execute(update(event).where(mine).values(note="changed"))
    # An erasure, but a status is not a note.
    with (
        pytest.raises(DBAPIError, match="never edited"),
        engine.begin() as conn,
        permit(conn, "erase"),
    ):
        conn.execute(update(event).where(mine).values(to_status="closed", note=None))
    with engine.begin() as conn, permit(conn, "erase"):
        conn.execute(
            update(event).where(mine).values(note="[电话已隐藏]", actor="key x (official)")
        )
    with engine.connect() as conn:
        row = conn.execute(select(event).where(mine)).one()
    assert (row.note, row.actor, row.to_status) == ("[电话已隐藏]", "key x (official)", "received")
    with pytest.raises(DBAPIError, match="never edited"), engine.begin() as conn:
        conn.execute(update(event).where(mine).values(note=None))  # the permit is gone
