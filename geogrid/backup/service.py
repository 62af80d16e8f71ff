"""Back up the whole database to one file, and restore it: the same on both backends.

How each backend copies itself lives in ``geogrid.db.backup``; here are the rules around it:
a restore checks its file first (the right kind for this backend, readable, a schema revision
this geogrid knows — never a newer one), is a dry run unless ``commit``, replaces the
contents in one go, upgrades an older backup to this version's schema and moves the
data-version counters so that running servers rebuild their lookup indexes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from geogrid.db import backup as store
from geogrid.db import dialect, migrate, queries
from geogrid.db.backup import FileKind, Progress, TableDigest
from geogrid.db.engine import Backend, backend_of, make_engine
from geogrid.errors import InvalidInput
from geogrid.settings import DatabaseSettings

__all__ = ["BackupReport", "RestoreReport", "backup_database", "restore_database"]


def _quiet(_message: str) -> None:
    return None


@dataclass
class BackupReport:
    """What ``geogrid backup`` wrote (``docs/api.md``, "Backup and restore")."""

    backend: str
    file: str
    bytes: int
    revision: str | None
    seconds: float
    tables: list[TableDigest]

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "file": self.file,
            "bytes": self.bytes,
            "revision": self.revision,
            "seconds": round(self.seconds, 3),
            "tables": [t.to_dict() for t in self.tables],
        }


def backup_database(
    engine: Engine,
    *,
    out: Path,
    settings: DatabaseSettings | None = None,
    progress: Progress | None = None,
) -> BackupReport:
    """Write a consistent copy of the whole database to ``out`` while the service runs.

    SpatiaLite: a SpatiaLite file (SQLite's online backup API); PostGIS: a ``pg_dump -Fc``
    file. The counts and checksums describe the file's contents exactly (read from the copy,
    or in the dump's own snapshot). ``out`` is replaced only once the new copy is whole.
    """
    settings = settings or DatabaseSettings.defaults()
    say = progress or _quiet
    started = time.perf_counter()
    backend = backend_of(engine)
    if backend is Backend.SPATIALITE:
        say("copying the database")
        store.sqlite_backup(engine, out)
        raw = store.sqlite_open_file(out)
        try:
            revision = store.sqlite_file_revision(raw, out)
            tables = store.sqlite_file_digests(raw, out, progress=say)
        finally:
            raw.close()
    else:
        with engine.connect() as conn:
            tools = store.pg_tools(conn, tools=("pg_dump",), bindir=settings.pg_bindir)
        with dialect.snapshot(engine.connect()) as conn:
            revision, tables = store.pg_backup(conn, out, tools, progress=say)
    return BackupReport(
        backend=backend.value,
        file=str(out),
        bytes=out.stat().st_size,
        revision=revision,
        seconds=time.perf_counter() - started,
        tables=tables,
    )


@dataclass
class RestoreReport:
    """What ``geogrid restore`` found in its file and did (``docs/api.md``)."""

    backend: str
    file: str
    commit: bool
    source: dict[str, Any]
    #: The backup's schema revision, this geogrid's newest, and the database's before.
    revision: str
    head: str | None
    database_revision: str | None
    #: One per table of the backup or the database: ``name``; ``rows`` in the backup (dry
    #: run: read from the file; commit: counted in the database once restored); ``checksum``
    #: of the backup's rows (dry runs; None after a commit); ``rows_before`` in the database
    #: before the restore (None: the table is not there).
    tables: list[dict[str, Any]]
    upgraded_to: str | None = None
    data_versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "file": self.file,
            "commit": self.commit,
            "source": self.source,
            "revision": self.revision,
            "head": self.head,
            "database_revision": self.database_revision,
            "upgraded_to": self.upgraded_to,
            "tables": self.tables,
            "data_versions": self.data_versions,
            "seconds": round(self.seconds, 3),
        }


def _check_revision(revision: str | None, path: Path) -> str:
    """The backup's revision, if this geogrid can restore it: equal to its head or older."""
    if revision is None:
        raise InvalidInput(
            f"{path} holds no schema revision (its alembic_version table is empty)",
            field="file",
        )
    if not migrate.known_revision(revision):
        raise InvalidInput(
            f"{path} is at schema revision {revision}, newer than this geogrid "
            f"(its newest is {migrate.head_revision()}) or unknown to it: restore it with the "
            "geogrid version that made it, or upgrade geogrid first; nothing was changed",
            field="file",
        )
    return revision


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def restore_database(
    engine: Engine,
    *,
    path: Path,
    commit: bool = False,
    settings: DatabaseSettings | None = None,
    progress: Progress | None = None,
) -> RestoreReport:
    """Check ``path`` and report what restoring it would do; with ``commit`` replace the
    database's contents with it in one go, upgrade it to this version's schema, and move the
    data-version counters past every value they had (running servers rebuild their indexes).

    A dry run reads the whole file (counts and checksums of every table: proof that it is
    readable); a commit checks its kind and revision, then restores, and reports the counts
    the database then holds.
    """
    settings = settings or DatabaseSettings.defaults()
    say = progress or _quiet
    started = time.perf_counter()
    backend = backend_of(engine)
    kind = store.sniff(path)
    if kind is not store.KIND_OF[backend]:
        names = {FileKind.SPATIALITE: "a SpatiaLite backup", FileKind.PG_DUMP: "a PostGIS dump"}
        raise InvalidInput(
            f"{path} is {names[kind]}, but this database is {backend.value}: a backup restores "
            "into the same kind of database it was made from; nothing was changed",
            field="file",
        )
    stat = path.stat()
    source: dict[str, Any] = {"kind": kind.value, "bytes": stat.st_size}
    digests: list[TableDigest] | None = None
    tools = None
    say("reading the backup")
    if kind is FileKind.SPATIALITE:
        raw = store.sqlite_open_file(path)
        try:
            revision = _check_revision(store.sqlite_file_revision(raw, path), path)
            source["modified_at"] = _when(stat.st_mtime)
            # Also before a commit: the backup API copies a damaged file without a word.
            store.sqlite_file_check(raw, path)
            if not commit:
                digests = store.sqlite_file_digests(raw, path, progress=say)
        finally:
            raw.close()
    else:
        with engine.connect() as conn:
            tools = store.pg_tools(conn, tools=("pg_restore", "psql"), bindir=settings.pg_bindir)
            schema = store.pg_schema(conn)
        toc = store.pg_toc(tools, path)
        source.update(
            created_at=toc.header.get("Archive created at"),
            database=toc.header.get("dbname"),
            server_version=toc.header.get("Dumped from database version"),
            pg_dump_version=toc.header.get("Dumped by pg_dump version"),
        )
        revision = _check_revision(store.pg_file_revision(tools, path), path)
        if not commit:
            digests = store.pg_file_digests(tools, path, schema=schema, progress=say)

    with engine.connect() as conn:
        before = store.table_counts(conn)
        past = queries.data_versions(conn) if "data_versions" in before else {}
    database_revision = migrate.current_revision(engine) if "alembic_version" in before else None
    report = RestoreReport(
        backend=backend.value,
        file=str(path),
        commit=commit,
        source=source,
        revision=revision,
        head=migrate.head_revision(),
        database_revision=database_revision,
        tables=[],
    )
    if not commit:
        assert digests is not None
        in_file = {d.name: d for d in digests}
        report.tables = [
            {
                "name": name,
                "rows": in_file[name].rows if name in in_file else None,
                "checksum": in_file[name].checksum if name in in_file else None,
                "rows_before": before.get(name),
            }
            for name in sorted(in_file.keys() | before.keys())
        ]
        report.seconds = time.perf_counter() - started
        return report

    upgrade = revision != report.head
    if kind is FileKind.SPATIALITE:

        def prepare(url: str) -> None:
            staged = make_engine(url, settings=settings)
            try:
                if upgrade:
                    say("upgrading the schema")
                    migrate.upgrade(staged)
                with staged.begin() as conn:
                    report.data_versions = queries.advance_data_versions(conn, past=past)
            finally:
                staged.dispose()

        say("restoring")
        store.sqlite_restore(engine, path, prepare=prepare)
    else:
        assert tools is not None
        store.pg_restore(engine, path, tools, progress=say)
        engine.dispose()  # pooled connections may hold plans of the dropped tables
        # Its own transaction after the restore's: a server polling in between sees the
        # backup's counters for a moment, and rebuilds (again) once they move here.
        if upgrade:
            say("upgrading the schema")
            migrate.upgrade(engine)
        with engine.begin() as conn:
            report.data_versions = queries.advance_data_versions(conn, past=past)
    report.upgraded_to = report.head if upgrade else None
    with engine.connect() as conn:
        after = store.table_counts(conn)
    report.tables = [
        {"name": name, "rows": after.get(name), "checksum": None, "rows_before": before.get(name)}
        for name in sorted(after.keys() | before.keys())
    ]
    report.seconds = time.perf_counter() - started
    return report
