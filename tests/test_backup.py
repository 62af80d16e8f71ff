"""``geogrid backup`` and ``geogrid restore`` on both backends: a round trip gives back every
table's rows and checksum; a dry run changes nothing; wrong files, newer schemas and missing
or old client tools are refused clearly, with nothing changed; an older backup is upgraded."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point
from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli import app
from geogrid.backup.service import backup_database, restore_database
from geogrid.db import dialect, migrate
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.db.backup import FileKind, pg_tools, sniff, table_digests
from geogrid.errors import ConfigurationError, InvalidInput
from geogrid.lookup import LookupService
from tests.requests_factories import World

runner = CliRunner()
NOW = dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)


def digests(engine: Engine) -> dict[str, tuple[int, str]]:
    """Every table's (rows, checksum), read in one snapshot."""
    with dialect.snapshot(engine.connect()) as conn, conn.begin():
        return {d.name: (d.rows, d.checksum) for d in table_digests(conn)}


#: The change counters, which a restore moves on purpose (a running server must rebuild).
COUNTERS = ("data_versions", "community_versions")


def without(state: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in names}


def versions(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return q.data_versions(conn)


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def fill_empty_tables(conn: Connection) -> None:
    """A row or two in each table the demo leaves empty: keys, sessions, contacts, photos,
    webhooks and their deliveries, audit and throttle logs, plan history, data sources.
    Every value is made up (example.org, no real-looking names or numbers)."""
    community = conn.execute(select(m.Community.id)).scalars().first()
    plan = conn.execute(select(m.BoundaryPlan.id)).scalars().first()
    field = conn.execute(select(m.ResponsibilityField.id)).scalars().first()
    request = conn.execute(select(m.Request.id).order_by(m.Request.id)).scalars().first()
    key = q.insert_returning_ids(
        conn,
        m.ApiKey,
        [
            {"prefix": "testpfx1", "key_hash": "0" * 64, "name": "test key", "role": "official"}
            | {"community_id": community, "personal_data": True, "created_at": NOW}
        ],
    )[0]
    conn.execute(
        insert(m.ApiSession).values(
            token_hash="1" * 64, api_key_id=key, created_at=NOW, expires_at=NOW
        )
    )
    conn.execute(
        insert(m.RequestContact).values(
            request_id=request, first_name="Test", email="reporter@example.org", device_id="d-1"
        )
    )
    conn.execute(
        insert(m.RequestMedia).values(
            request_id=request,
            content_type="image/png",
            filename="photo.png",
            size=4,
            data=b"\x89PNG\x00\t\n\\",  # bytes that text encodings must escape
            created_at=NOW,
        )
    )
    hook = q.insert_returning_ids(
        conn,
        m.Webhook,
        [{"url": "https://hooks.example.org/in", "secret": "s" * 32, "events": ["created"]}],
    )[0]
    delivery = q.insert_returning_ids(
        conn,
        m.WebhookDelivery,
        [
            {"webhook_id": hook, "event": "created", "request_id": request, "payload": "{}"}
            | {"status": "failed", "attempts": 1, "created_at": NOW}
        ],
    )[0]
    conn.execute(
        insert(m.WebhookAttempt).values(
            delivery_id=delivery, at=NOW, status_code=500, error="tab\there", duration_ms=12
        )
    )
    conn.execute(
        insert(m.AuditEntry).values(
            at=NOW,
            api_key_id=key,
            actor="key testpfx1 (official)",
            action="read",
            subject="household",
            subject_id="1",
            fields=["phone"],
        )
    )
    conn.execute(insert(m.LoginFailure).values(client="192.0.2.1", at=NOW))
    conn.execute(insert(m.IntakeAttempt).values(client="192.0.2.2", at=NOW))
    member = conn.execute(select(m.Member.id).order_by(m.Member.id)).scalars().first()
    conn.execute(
        insert(m.SignInLink).values(
            token_hash="2" * 64,
            member_id=member,
            api_key_id=key,
            created_by="test key",
            created_at=NOW,
            expires_at=NOW,
        )
    )
    event = q.insert_returning_ids(
        conn,
        m.PlanEvent,
        [{"community_id": community, "plan_id": plan, "action": "activate", "at": NOW}],
    )[0]
    conn.execute(
        insert(m.FieldRevision).values(
            event_id=event, field_id=field, geom_wkb=Point(114.4, 23.1).wkb, review_note="a\nb"
        )
    )
    conn.execute(
        insert(m.DataSource).values(
            community_id=community, kind="file", name="grids.geojson", layers=["grids"]
        )
    )
    q.instance_secret(conn, "pseudonyms")


def change_everything(conn: Connection) -> None:
    """Deletes, updates and inserts across tables (what a restore must undo)."""
    conn.execute(delete(m.Visit).where(m.Visit.id % 2 == 0))
    conn.execute(update(m.Grid).values(name="renamed"))
    conn.execute(delete(m.Webhook))
    conn.execute(update(m.Household).where(m.Household.id < 50).values(size=99))
    conn.execute(insert(m.LoginFailure).values(client="198.51.100.7", at=NOW))


@pytest.fixture
def demo_backup(demo_engine: Engine, tmp_path: Path) -> tuple[Path, dict[str, tuple[int, str]]]:
    """A backup of the shared demo database (read-only on it) and the digests it reports."""
    report = backup_database(demo_engine, out=tmp_path / "demo.backup")
    return Path(report.file), {t.name: (t.rows, t.checksum) for t in report.tables}


def test_round_trip_gives_back_every_table(
    engine: Engine, db_url: str, demo_backup: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    demo_file, demo = demo_backup
    assert sniff(demo_file) in (FileKind.SPATIALITE, FileKind.PG_DUMP)
    # The demo into a fresh database: the file's figures are the database's.
    restore_database(engine, path=demo_file, commit=True)
    assert without(digests(engine), *COUNTERS) == without(demo, *COUNTERS)

    with engine.begin() as conn:
        fill_empty_tables(conn)
    before = digests(engine)
    # Except the permits of the operator's duties, which live only inside a transaction.
    filled = {name: rows for name, (rows, _) in before.items() if name != "privacy_permits"}
    assert all(rows > 0 for rows in filled.values()), "every table holds rows"
    assert "requests" in before and "request_media" in before and "webhooks" in before

    backup = tmp_path / "nested" / "geogrid.backup"
    made = cli("backup", "--database", db_url, "--out", str(backup), "--json")
    assert made.exit_code == 0, made.output
    report = json.loads(made.stdout)
    assert {t["name"]: (t["rows"], t["checksum"]) for t in report["tables"]} == before
    assert report["revision"] == migrate.head_revision()
    assert report["bytes"] == backup.stat().st_size
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # personal data: its owner only

    with engine.begin() as conn:
        change_everything(conn)
    changed = digests(engine)
    assert changed != before
    lookup = LookupService(engine, poll_interval=0, addresses=False)
    lookup.refresh(force=True)
    seen = versions(engine)

    # The dry run reads the file (the same figures as the backup), and changes nothing.
    dry = cli("restore", str(backup), "--database", db_url, "--json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["commit"] is False
    assert plan["revision"] == plan["head"] == plan["database_revision"]
    assert plan["source"]["kind"] in ("spatialite", "pg_dump")
    assert {t["name"]: (t["rows"], t["checksum"]) for t in plan["tables"]} == before
    assert {t["name"]: t["rows_before"] for t in plan["tables"]} == {
        name: rows for name, (rows, _) in changed.items()
    }
    assert "dry run" in dry.stderr
    assert digests(engine) == changed

    done = cli("restore", str(backup), "--database", db_url, "--commit", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["commit"] is True and result["upgraded_to"] is None
    assert {t["name"]: t["rows"] for t in result["tables"]} == {
        name: rows for name, (rows, _) in before.items()
    }
    after = digests(engine)
    assert without(after, *COUNTERS, "audit_log") == without(before, *COUNTERS, "audit_log")
    # The restored audit log is the backup's, and then says it was restored.
    assert after["audit_log"][0] == before["audit_log"][0] + 1
    with engine.connect() as conn:
        last = conn.execute(
            select(m.AuditEntry.action, m.AuditEntry.via).order_by(m.AuditEntry.id.desc())
        ).first()
    assert tuple(last) == ("restore", "geogrid restore")
    # The counters moved past every value a running server may hold: it rebuilds.
    now = versions(engine)
    assert result["data_versions"] == now
    assert all(now[name] > seen[name] for name in seen)
    assert lookup.refresh() is True
    assert set(lookup._state.rebuilt) == {c.code for c in lookup.communities}  # every one


def test_restore_shows_tables_and_backup_prints_checksums(
    engine: Engine, db_url: str, world: World, tmp_path: Path
) -> None:
    backup = tmp_path / "b"
    made = cli("backup", "--database", db_url, "--out", str(backup))
    assert made.exit_code == 0, made.output
    grids = digests(engine)["grids"]
    assert "grids" in made.stdout and grids[1][:16] in made.stdout
    assert "schema revision" in made.stdout
    dry = cli("restore", str(backup), "--database", db_url)
    assert dry.exit_code == 0, dry.output
    assert "would restore" in dry.stdout and grids[1][:16] in dry.stdout
    assert "stop the writers" in dry.stderr and "dry run" in dry.stderr
    helped = cli("restore", "--help")
    assert "running" in helped.stdout and "--commit" in helped.stdout


def test_a_backup_is_consistent_while_another_connection_writes(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    before = digests(engine)
    with engine.connect() as writer:
        writer.begin()
        writer.execute(insert(m.LoginFailure).values(client="192.0.2.9", at=NOW))
        report = backup_database(engine, out=tmp_path / "b")  # not blocked, not included
        writer.rollback()
    assert {t.name: (t.rows, t.checksum) for t in report.tables} == before


def _fake_pg_dump(tmp_path: Path) -> Path:
    path = tmp_path / "pgdump.bin"
    path.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00not really a dump" * 40)
    return path


def _sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    return path


def _wrong_file(kind: str, backend: str, tmp_path: Path) -> tuple[Path, str]:
    """A file ``restore`` must refuse, and what its error says."""
    if kind == "missing":
        return tmp_path / "missing.backup", "no such file"
    if kind == "folder":
        return tmp_path, "is a folder"
    if kind == "text":
        (tmp_path / "notes.txt").write_text("hello\n")
        return tmp_path / "notes.txt", "not a geogrid backup"
    if kind == "plain-sql":
        (tmp_path / "x.sql").write_text("--\n-- PostgreSQL database dump\n")
        return tmp_path / "x.sql", "plain-SQL dump"
    if kind == "other-backend":
        path = _fake_pg_dump(tmp_path) if backend == "spatialite" else _sqlite_file(tmp_path)
        return path, "restores into the same kind of database"
    # The right kind for this backend, but not a geogrid database (or not a dump at all).
    if backend == "spatialite":
        return _sqlite_file(tmp_path), "not a geogrid one"
    return _fake_pg_dump(tmp_path), "cannot read"


@pytest.mark.parametrize(
    "kind", ["missing", "folder", "text", "plain-sql", "other-backend", "not-geogrid"]
)
def test_a_wrong_file_is_refused_and_nothing_changes(
    engine: Engine, db_url: str, backend: str, world: World, tmp_path: Path, kind: str
) -> None:
    path, message = _wrong_file(kind, backend, tmp_path)
    before = digests(engine)
    for commit in ([], ["--commit"]):
        r = cli("restore", str(path), "--database", db_url, *commit)
        assert r.exit_code == 1, r.output
        assert message in r.stderr
        assert "Traceback" not in r.output
    assert digests(engine) == before


def test_a_backup_from_a_newer_schema_is_refused(
    engine: Engine, db_url: str, world: World, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    backup = backup_database(engine, out=tmp_path / "future")
    assert backup.revision == "9999"
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE alembic_version SET version_num = :v"), {"v": migrate.head_revision()}
        )
    before = digests(engine)
    for commit in ([], ["--commit"]):
        r = cli("restore", backup.file, "--database", db_url, *commit)
        assert r.exit_code == 1, r.output
        assert "9999, newer than this geogrid" in r.stderr
    assert digests(engine) == before
    with pytest.raises(InvalidInput, match="upgrade geogrid first"):
        restore_database(engine, path=Path(backup.file), commit=True)


def test_an_older_backup_is_upgraded(engine: Engine, world: World, tmp_path: Path) -> None:
    head = migrate.head_revision()
    before = digests(engine)
    migrate.downgrade(engine, "0009")  # 0010 adds login_failures
    old = backup_database(engine, out=tmp_path / "old")
    assert old.revision == "0009"
    assert "login_failures" not in {t.name for t in old.tables}
    migrate.upgrade(engine)
    with engine.begin() as conn:
        change_everything(conn)  # login_failures gets a row: it must go

    report = restore_database(engine, path=Path(old.file), commit=True)
    assert (report.revision, report.database_revision, report.upgraded_to) == ("0009", head, head)
    assert migrate.current_revision(engine) == head
    assert without(digests(engine), *COUNTERS) == without(before, *COUNTERS)


@pytest.mark.parametrize("backend", ["postgis"])  # SpatiaLite needs no client tools
def test_pg_client_tools_missing_or_older_than_the_server(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with engine.connect() as conn, pytest.raises(ConfigurationError, match="pg_dump not found"):
        pg_tools(conn, tools=("pg_dump",), bindir=empty)
    old = tmp_path / "old"
    old.mkdir()
    for tool in ("pg_dump", "pg_restore", "psql"):
        script = old / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) 9.6.24'\n")
        script.chmod(0o755)
    r = cli(
        "backup",
        "--database",
        db_url,
        "--out",
        str(tmp_path / "b"),
        env={"GEOGRID_PG_BINDIR": str(old)},
    )
    assert r.exit_code == 1
    assert "version 9, older than the server" in r.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("backend", ["postgis"])
def test_pg_password_goes_in_the_environment_not_the_command_line(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    # A pg_dump that records what it was given, then fails.
    (tools / "pg_dump").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi\n'
        f'echo "$@" > {tmp_path}/args\n'
        f"env > {tmp_path}/env\n"
        "echo 'pg_dump: error: recorded' >&2; exit 1\n"
    )
    (tools / "pg_dump").chmod(0o755)
    url = make_url(db_url).set(password="not-a-real-secret").render_as_string(False)
    r = cli(
        "backup",
        "--database",
        url,
        "--out",
        str(tmp_path / "b"),
        env={"GEOGRID_PG_BINDIR": str(tools)},
    )
    assert r.exit_code == 1
    assert "pg_dump: error: recorded" in r.stderr
    assert "not-a-real-secret" not in (tmp_path / "args").read_text()
    assert "PGPASSWORD=not-a-real-secret" in (tmp_path / "env").read_text()
    assert not (tmp_path / "b").exists()


def test_sniff_names_other_pg_dump_formats(tmp_path: Path) -> None:
    tar = tmp_path / "dump.tar"
    tar.write_bytes(b"\x00" * 257 + b"ustar" + b"\x00" * 250)
    with pytest.raises(InvalidInput, match="tar archive"):
        sniff(tar)
    assert sniff(_fake_pg_dump(tmp_path)) is FileKind.PG_DUMP
    assert sniff(_sqlite_file(tmp_path)) is FileKind.SPATIALITE


def _damage(path: Path, backend: str) -> None:
    """Cut a dump short (its table of contents, at the start, stays readable), or overwrite
    pages in the middle of a SpatiaLite file."""
    data = path.read_bytes()
    if backend == "postgis":
        path.write_bytes(data[: len(data) * 2 // 3])
        return
    middle = len(data) // 4096 // 2 * 4096
    path.write_bytes(data[:middle] + b"\xff" * 3 * 4096 + data[middle + 3 * 4096 :])


def test_a_damaged_backup_is_refused_and_nothing_changes(
    engine: Engine, db_url: str, backend: str, world: World, tmp_path: Path
) -> None:
    backup = Path(backup_database(engine, out=tmp_path / "b").file)
    _damage(backup, backend)
    with engine.begin() as conn:
        change_everything(conn)
    before = digests(engine)
    for commit in ([], ["--commit"]):
        r = cli("restore", str(backup), "--database", db_url, *commit)
        assert r.exit_code == 1, r.output
        assert ("cannot read" if backend == "postgis" else "is damaged") in r.stderr
    assert digests(engine) == before


@pytest.mark.parametrize("backend", ["postgis"])  # SQLite waits for its busy timeout instead
def test_pg_restore_gives_up_on_held_locks_and_changes_nothing(
    engine: Engine, db_url: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("geogrid.db.backup.PG_LOCK_TIMEOUT", "1s")
    backup = Path(backup_database(engine, out=tmp_path / "b").file)
    with engine.begin() as conn:
        change_everything(conn)
    before = digests(engine)
    with engine.connect() as reader:
        reader.begin()
        reader.execute(select(m.Grid.id)).all()  # a long read holds its lock on grids
        r = cli("restore", str(backup), "--database", db_url, "--commit")
        reader.rollback()
    assert r.exit_code == 1, r.output
    assert "rolled back, nothing changed" in r.stderr and "stop writers" in r.stderr
    assert digests(engine) == before
