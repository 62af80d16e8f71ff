"""How each backend copies itself: the one place that knows SQLite's backup API from
``pg_dump``/``pg_restore``, and how each counts and checksums a table's rows.

SpatiaLite
----------
A backup is a copy of the database file made with SQLite's online backup API
(https://sqlite.org/backup.html) in **one step**: one read transaction, so the copy is
consistent while the service keeps writing (WAL: readers do not block the writer). Stepwise
copying would show progress, but a write by another connection restarts it from the first
page, and a busy service could keep it from ever finishing. The copy is written beside the
target and renamed over it, so a failed backup never leaves half a file.

A restore never renames a file over the live database: a running server keeps the old file
open (and its ``-wal``/``-shm``), and would go on writing to a file nobody reads. The backup
is staged in a temporary file beside the database, upgraded and prepared there, then copied
into the live database with the backup API in one step — one write transaction, so every
reader sees the old contents or the new, never a mix.

PostGIS
-------
``pg_dump -Fc`` and ``pg_restore`` of the server's major version (or newer), found per
:func:`pg_tools`. The password and the rest of the connection go to the tools in their
environment (``PGPASSWORD`` …), never on a command line that ``ps`` shows; the tools get a
fresh environment, so a stray ``PGDATABASE`` in the operator's shell cannot point them
elsewhere. The dump is taken from an exported snapshot (``pg_export_snapshot``), and the
checksums are read in that same snapshot: they describe exactly what the file holds.

The restore is ``pg_restore`` piped into ``psql --single-transaction``, after statements that
drop every table, sequence, view and function of geogrid's schema (not PostGIS's). Why not
``pg_restore --clean``: it drops only the objects the dump holds, so a table added by a later
migration than the backup's (``login_failures`` for a 0009 backup) would survive with its rows
and the upgrade that follows would fail on it. Why not restore into a new database and swap
names: ``ALTER DATABASE … RENAME`` needs every other session gone (the running service's
pool) and the right to create databases. One ``psql`` transaction replaces everything or,
on any error, nothing.

Checksums
---------
A table's checksum is the sum modulo 2**256 of the SHA-256 of each row's canonical text
(64 hex digits). A sum does not depend on the order of the rows, so it is computed from a
stream in one pass without sorting (a dump's data is in physical order): the same figure from
the live table and from a dump file. Duplicate rows each count. The row text is, on PostGIS,
the row as ``COPY … TO STDOUT`` writes it in text format — the very lines ``pg_dump`` writes —
with the session settings ``pg_dump`` uses (ISO dates, UTC, ``extra_float_digits 3``, hex
bytea and hex EWKB geometries); on SpatiaLite the stored values, tab-separated, ``\\N`` for
NULL, blobs (SpatiaLite geometries too) in hex, floats by ``repr``. A checksum compares a
database with its own backups on the same backend; the two backends give different figures.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from geogrid.db.engine import Backend, _sqlite_module, backend_of
from geogrid.errors import ConfigurationError, GeogridError, InvalidInput

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


# --- what a file is ------------------------------------------------------------------------


class FileKind(StrEnum):
    """The kinds of backup file: one per backend."""

    SPATIALITE = "spatialite"
    PG_DUMP = "pg_dump"


#: Which kind of file each backend backs up to and restores from.
KIND_OF: dict[Backend, FileKind] = {
    Backend.SPATIALITE: FileKind.SPATIALITE,
    Backend.POSTGIS: FileKind.PG_DUMP,
}


def sniff(path: Path) -> FileKind:
    """The kind of backup ``path`` is, by its first bytes; a clear error when it is none."""
    if not path.exists():
        raise InvalidInput(f"no such file: {path}", field="file")
    if path.is_dir():
        raise InvalidInput(
            f"{path} is a folder: geogrid restores a SpatiaLite file or a pg_dump custom-format "
            "file (pg_dump -Fc), not a directory-format dump",
            field="file",
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="file") from None
    if head.startswith(b"SQLite format 3\x00"):
        return FileKind.SPATIALITE
    if head.startswith(b"PGDMP"):
        return FileKind.PG_DUMP
    if b"PostgreSQL database dump" in head:
        raise InvalidInput(
            f"{path} is a plain-SQL dump: geogrid restores custom-format dumps "
            "(`geogrid backup`, or pg_dump -Fc)",
            field="file",
        )
    if head[257:262] == b"ustar":
        raise InvalidInput(
            f"{path} is a tar archive (pg_dump -Ft?): geogrid restores custom-format dumps "
            "(`geogrid backup`, or pg_dump -Fc)",
            field="file",
        )
    raise InvalidInput(
        f"{path} is not a geogrid backup: neither a SpatiaLite database nor a PostgreSQL "
        "custom-format dump",
        field="file",
    )


# --- checksums -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableDigest:
    """A table's row count and content checksum (see the module's docstring)."""

    name: str
    rows: int
    checksum: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "checksum": self.checksum}


class _Sum:
    """Rows and the sum of their SHA-256 digests: an order-independent checksum."""

    def __init__(self) -> None:
        self.rows = 0
        self.total = 0

    def add(self, row: bytes) -> None:
        self.rows += 1
        self.total += int.from_bytes(hashlib.sha256(row).digest(), "big")

    def digest(self, name: str) -> TableDigest:
        return TableDigest(name=name, rows=self.rows, checksum=f"{self.total % (1 << 256):064x}")


def _lines(chunks: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """The lines (without their newline) of a stream of arbitrary chunks."""
    rest = b""
    for chunk in chunks:
        data = rest + bytes(chunk)
        *lines, rest = data.split(b"\n")
        yield from lines
    if rest:
        yield rest


def table_digests(conn: Connection, *, progress: Progress | None = None) -> list[TableDigest]:
    """Row count and checksum of every geogrid table (by name), read in ``conn``'s transaction.

    Run it inside one transaction (``engine.begin()``, or ``dialect.snapshot`` on PostGIS) to
    read one consistent state.
    """
    say = progress or _quiet
    raw = _driver(conn.connection)
    if backend_of(conn.engine) is Backend.SPATIALITE:
        return _sqlite_digests(raw, say)
    return _pg_digests(conn, say)


def table_counts(conn: Connection) -> dict[str, int]:
    """Rows per geogrid table (by name); empty when the database has no tables yet."""
    if backend_of(conn.engine) is Backend.SPATIALITE:
        names = _sqlite_tables(_driver(conn.connection))
    else:
        names = _pg_tables(conn)
    return {
        name: int(conn.execute(text(f"SELECT count(*) FROM {_ident(name)}")).scalar_one())
        for name in names
    }


def _driver(connection: Any) -> Any:
    """The DB-API connection under a SQLAlchemy ``Connection.connection`` or a pooled one."""
    raw = connection.driver_connection
    assert raw is not None
    return raw


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- SpatiaLite ----------------------------------------------------------------------------

#: SpatiaLite's own metadata tables: not geogrid's data (they are copied all the same).
_SPATIALITE_TABLES = re.compile(
    r"(?i)^(spatial_ref_sys(_aux)?|spatialite_history|sql_statements_log|data_licenses"
    r"|(views_|virts_)?geometry_columns(_auth|_field_infos|_statistics|_time)?"
    r"|se_\w+|iso_metadata\w*|rl2map_configurations\w*|vector_coverages\w*"
    r"|raster_coverages\w*|topologies|networks|wms_\w+|stored_procedures|stored_variables)$"
)


def _sqlite_tables(raw: Any) -> list[str]:
    """geogrid's tables: not SQLite's, not SpatiaLite's metadata, not virtual tables (the
    R*Tree spatial indexes) or their shadow tables. ``sqlite_master`` rather than ``PRAGMA
    table_list`` (which marks shadow tables itself) because that needs SQLite 3.37."""
    rows = raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    virtual = [n for n, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL")]
    return sorted(
        name
        for name, _sql in rows
        if not name.startswith("sqlite_")
        and not _SPATIALITE_TABLES.match(name)
        and name not in virtual
        and not any(name.startswith(f"{v}_") for v in virtual)
    )


def _sqlite_value(value: object) -> bytes:
    if value is None:
        return b"\\N"
    if isinstance(value, bytes):
        return b"\\x" + value.hex().encode()
    if isinstance(value, float):
        return repr(value).encode()
    if isinstance(value, int):
        return str(value).encode()
    escaped = str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return escaped.replace("\r", "\\r").encode()


def _sqlite_digests(raw: Any, say: Progress) -> list[TableDigest]:
    names = _sqlite_tables(raw)
    digests = []
    for i, name in enumerate(names, 1):
        say(f"checksums: {name} ({i}/{len(names)})")
        acc = _Sum()
        cursor = raw.execute(f"SELECT * FROM {_ident(name)}")
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                acc.add(b"\t".join(_sqlite_value(v) for v in row))
        digests.append(acc.digest(name))
    return digests


def sqlite_path(engine: Engine) -> Path:
    """The database file of a SpatiaLite engine."""
    database = engine.url.database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory database has no file to back up or restore into")
    return Path(database)


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def sqlite_open_file(path: Path) -> Any:
    """A read-only DB-API connection to a SpatiaLite file (never written, not even its
    journal mode); a clear error when it is not a readable SQLite database."""
    module = _sqlite_module()
    uri = "file:" + quote(str(path.resolve())) + "?mode=ro"
    raw = module.connect(uri, uri=True, check_same_thread=False)
    try:
        raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except module.DatabaseError as exc:
        raw.close()
        raise InvalidInput(
            f"{path} is not a readable SQLite database ({exc})", field="file"
        ) from None
    return raw


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """SQLite's errors on a damaged file as a clear :class:`InvalidInput`."""
    try:
        yield
    except _sqlite_module().DatabaseError as exc:
        raise InvalidInput(f"{path} is damaged ({exc})", field="file") from None


def sqlite_file_check(raw: Any, path: Path) -> None:
    """``PRAGMA quick_check`` (every page and record readable; not the indexes' contents)."""
    with _readable(path):
        problems = [str(r[0]) for r in raw.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise InvalidInput(
            f"{path} is damaged (SQLite quick_check: {'; '.join(problems[:3])})", field="file"
        )


def sqlite_file_revision(raw: Any, path: Path) -> str | None:
    """The schema revision (Alembic) a SpatiaLite file is at."""
    with _readable(path):
        has = raw.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()[0]
        row = raw.execute("SELECT version_num FROM alembic_version").fetchone() if has else None
    if not has:
        raise InvalidInput(
            f"{path} is a SQLite database but not a geogrid one (no alembic_version table)",
            field="file",
        )
    return None if row is None else str(row[0])


def sqlite_file_digests(
    raw: Any, path: Path, *, progress: Progress | None = None
) -> list[TableDigest]:
    """Row counts and checksums of a SpatiaLite file opened by :func:`sqlite_open_file`."""
    with _readable(path):
        raw.execute("BEGIN")
        try:
            return _sqlite_digests(raw, progress or _quiet)
        finally:
            raw.execute("ROLLBACK")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def sqlite_backup(engine: Engine, out: Path) -> None:
    """Copy the live SpatiaLite database to ``out`` (replaced only when the copy is whole)."""
    source = sqlite_path(engine)
    if out.exists() and _same_file(source, out):
        raise InvalidInput(f"{out} is the database itself: write the backup elsewhere", field="out")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        module = engine.dialect.loaded_dbapi
        live = engine.raw_connection()
        try:
            copy = module.connect(str(tmp))
            try:
                # One step (pages=-1): one read transaction, see the module's docstring.
                _driver(live).backup(copy, pages=-1)
                # The copy inherits WAL mode from the live file; a backup is one file.
                copy.execute("PRAGMA journal_mode=DELETE").fetchall()
            finally:
                copy.close()
        finally:
            live.close()
        _fsync(tmp)
        os.replace(tmp, out)
    except BaseException:
        _remove_sqlite_files(tmp)
        raise


def sqlite_restore(engine: Engine, source: Path, *, prepare: Callable[[str], None]) -> None:
    """Replace the live database's contents with the SpatiaLite file ``source``.

    ``source`` is staged in a temporary file beside the database; ``prepare(url)`` then runs
    on the staged copy (migrations, counters); last the staged copy is written into the live
    database with the backup API in one step: one write transaction.
    """
    target = sqlite_path(engine)
    if target.exists() and _same_file(target, source):
        raise InvalidInput(f"{source} is the database itself", field="file")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.restore-", suffix=".sqlite", dir=target.parent
    )
    os.close(fd)
    staged = Path(name)
    module = engine.dialect.loaded_dbapi
    try:
        raw = sqlite_open_file(source)
        try:
            copy = module.connect(str(staged))
            try:
                raw.backup(copy, pages=-1)
            finally:
                copy.close()
        finally:
            raw.close()
        prepare(f"sqlite:///{staged}")
        copy = module.connect(str(staged))
        try:
            live = engine.raw_connection()
            try:
                copy.backup(_driver(live), pages=-1)
            except module.OperationalError as exc:
                raise GeogridError(
                    f"could not write into {target} ({exc}): is another program writing to "
                    "it? Stop writers (geogrid serve, cron jobs) and run again; nothing was "
                    "changed"
                ) from None
            finally:
                live.close()
        finally:
            copy.close()
        engine.dispose()  # pooled connections re-read the schema anyway; start afresh
    finally:
        _remove_sqlite_files(staged)


# --- PostGIS: the client tools -------------------------------------------------------------


@dataclass(frozen=True)
class PgTools:
    """A folder holding the PostgreSQL client tools, and their major version."""

    bindir: Path
    major: int

    def __call__(self, name: str) -> str:
        return str(self.bindir / name)


_TOOL_VERSION = re.compile(rb"\(PostgreSQL\) (\d+)")


def _tool_major(path: Path) -> int | None:
    try:
        done = subprocess.run(
            [str(path), "--version"], capture_output=True, timeout=60, env={"LC_ALL": "C"}
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = _TOOL_VERSION.search(done.stdout)
    return int(found.group(1)) if found else None


def _candidate_dirs(server_major: int, tool: str) -> list[Path]:
    """Debian's per-version folders (the server's own first, then newer ones, nearest first),
    then the folder of ``tool`` on the PATH (on Debian, pg_wrapper's /usr/bin)."""
    versions = []
    for folder in Path("/usr/lib/postgresql").glob("*/bin"):
        with suppress(ValueError):
            versions.append((int(folder.parent.name), folder))
    dirs = [f for v, f in sorted(versions) if v == server_major]
    dirs += [f for v, f in sorted(versions) if v > server_major]
    on_path = shutil.which(tool)
    if on_path:
        dirs.append(Path(on_path).parent)
    dirs += [f for v, f in sorted(versions, reverse=True) if v < server_major]
    return dirs


def pg_tools(conn: Connection, *, tools: Sequence[str], bindir: Path | None = None) -> PgTools:
    """The client tools to use with ``conn``'s server: of its major version, or newer.

    pg_dump refuses to dump a server newer than itself, and pg_restore cannot read a dump
    made by a newer pg_dump (https://www.postgresql.org/docs/current/app-pgdump.html, Notes).
    ``bindir`` (``GEOGRID_PG_BINDIR``) names the folder to use; otherwise Debian's
    ``/usr/lib/postgresql/<major>/bin`` folders and the PATH are searched.
    """
    server_major = int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10_000
    first = tools[0]
    install = (
        f"install the PostgreSQL {server_major} client tools (Debian/Ubuntu: apt-get install "
        f"postgresql-client-{server_major}) or set GEOGRID_PG_BINDIR to the folder holding them"
    )
    older: list[str] = []
    for folder in [bindir] if bindir is not None else _candidate_dirs(server_major, first):
        paths = [folder / t for t in tools]
        if not all(p.is_file() and os.access(p, os.X_OK) for p in paths):
            continue
        major = _tool_major(paths[0])
        if major is None:
            continue
        if major >= server_major:
            return PgTools(bindir=folder, major=major)
        older.append(f"{paths[0]} is version {major}")
    if older:
        raise ConfigurationError(
            f"{'; '.join(older)}, older than the server (PostgreSQL {server_major}): {install}",
            field="GEOGRID_PG_BINDIR",
        )
    where = f" in {bindir}" if bindir is not None else ""
    raise ConfigurationError(
        f"{' and '.join(tools)} not found{where}: {install}", field="GEOGRID_PG_BINDIR"
    )


#: URL query parameters that libpq also reads from the environment.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
}


def pg_environment(engine: Engine) -> dict[str, str]:
    """The whole environment of the client tools: the engine's connection as libpq variables
    (the password in ``PGPASSWORD``), UTC and hex bytea (the checksums' row text), C locale
    (messages in English, as the errors quote them)."""
    url = make_url(engine.url)
    env = {
        "HOME": str(Path.home()),  # ~/.pgpass, ~/.postgresql/ certificates
        "LC_ALL": "C",
        "PGTZ": "UTC",
        "PGOPTIONS": "-c bytea_output=hex",
        "PGCONNECT_TIMEOUT": "30",
    }
    for key, given in url.query.items():
        variable = _LIBPQ_ENV.get(key)
        if variable is not None:
            env[variable] = given if isinstance(given, str) else given[-1]
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[name] = str(value)
    return env


def _tool_error(tool: str, stderr: bytes) -> str:
    """The error lines of a tool's output: never DETAIL/CONTEXT lines, which may quote rows
    (personal data) of the file."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()]
    picked = [ln if ln.startswith(f"{tool}:") else f"{tool}: {ln}" for ln in (errors or lines[-1:])]
    return " | ".join(picked[:3]) if picked else f"{tool} failed"


def _run(tools: PgTools, tool: str, args: Sequence[str], env: Mapping[str, str]) -> bytes:
    done = subprocess.run([tools(tool), *args], capture_output=True, env=dict(env))
    if done.returncode != 0:
        raise GeogridError(_tool_error(tool, done.stderr))
    return done.stdout


# --- PostGIS: the live database ------------------------------------------------------------

#: geogrid's tables with rows of their own (partitions, not the partitioned parent), in the
#: current schema, without PostGIS's (``spatial_ref_sys`` belongs to the extension).
_PG_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname
"""


def _pg_tables(conn: Connection) -> list[str]:
    return [str(n) for n in conn.execute(text(_PG_TABLES)).scalars()]


#: Session settings of the checksums' row text: those pg_dump sets (DateStyle, IntervalStyle,
#: extra_float_digits) and those :func:`pg_environment` gives it (TimeZone, bytea_output).
_PG_COPY_SETTINGS = (
    "SET LOCAL DateStyle = 'ISO'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL bytea_output = 'hex'",
)


def _pg_digests(conn: Connection, say: Progress) -> list[TableDigest]:
    for statement in _PG_COPY_SETTINGS:
        conn.execute(text(statement))
    raw = _driver(conn.connection)
    names = _pg_tables(conn)
    digests = []
    for i, name in enumerate(names, 1):
        say(f"checksums: {name} ({i}/{len(names)})")
        acc = _Sum()
        with raw.cursor() as cur, cur.copy(f"COPY {_ident(name)} TO STDOUT") as copy:
            for line in _lines(copy):
                acc.add(line)
        digests.append(acc.digest(name))
    return digests


def pg_schema(conn: Connection) -> str:
    return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def pg_backup(
    conn: Connection, out: Path, tools: PgTools, *, progress: Progress | None = None
) -> tuple[str | None, list[TableDigest]]:
    """``pg_dump -Fc`` of the database to ``out``, with the schema revision and checksums read
    in the dump's own snapshot. ``conn`` must be fresh, in REPEATABLE READ
    (``dialect.snapshot``), not yet in a transaction."""
    say = progress or _quiet
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with conn.begin():
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            say("pg_dump")
            _run(
                tools,
                "pg_dump",
                ["-Fc", "-w", f"--snapshot={snapshot}", "-f", str(tmp)],
                pg_environment(conn.engine),
            )
            revision = None
            if "alembic_version" in _pg_tables(conn):
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            digests = _pg_digests(conn, say)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return (None if revision is None else str(revision)), digests


# --- PostGIS: a dump file ------------------------------------------------------------------


@dataclass(frozen=True)
class PgToc:
    """What ``pg_restore -l`` says of a custom-format dump."""

    header: dict[str, str]
    #: (schema, table) of every TABLE DATA entry.
    tables: list[tuple[str, str]]
    lines: list[str]


_TOC_HEADER = re.compile(
    r"^;\s+(Archive created at|dbname|Dumped from database version|"
    r"Dumped by pg_dump version)[: ]\s*(.*)$"
)
_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (.+)$")
_TOC_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) ")


def pg_toc(tools: PgTools, path: Path) -> PgToc:
    """The table of contents of a dump; a clear error when pg_restore cannot read it."""
    try:
        listing = _run(tools, "pg_restore", ["-l", str(path)], {"LC_ALL": "C"})
    except GeogridError as exc:
        hint = ""
        if "unsupported version" in str(exc):
            hint = (
                f": the dump was made by a newer pg_dump than pg_restore {tools.major}; "
                "install newer client tools or set GEOGRID_PG_BINDIR"
            )
        raise InvalidInput(f"cannot read {path} ({exc}){hint}", field="file") from None
    lines = listing.decode("utf-8", "replace").splitlines()
    header: dict[str, str] = {}
    tables = []
    for line in lines:
        if m := _TOC_HEADER.match(line):
            header[m.group(1)] = m.group(2).strip()
        elif m := _TOC_DATA.match(line):
            tables.append((m.group(1), m.group(2)))
    if not any(name == "alembic_version" for _schema, name in tables):
        raise InvalidInput(
            f"{path} is a PostgreSQL dump but not of a geogrid database (no alembic_version table)",
            field="file",
        )
    return PgToc(header=header, tables=tables, lines=lines)


_COPY = re.compile(rb'^COPY ("(?:[^"]|"")+"|[^."\s]+)\.("(?:[^"]|"")+"|[^."\s]+)[ (]')


def _unquote(name: bytes) -> str:
    s = name.decode()
    return s[1:-1].replace('""', '"') if s.startswith('"') else s


def _copy_blocks(lines: Iterable[bytes]) -> Iterator[tuple[str, str, bytes | None]]:
    """(schema, table, row) for every row of the COPY blocks of a restore script; row None
    marks the start of a table (so empty tables are seen too)."""
    current: tuple[str, str] | None = None
    for line in lines:
        if current is None:
            if m := _COPY.match(line):
                current = (_unquote(m.group(1)), _unquote(m.group(2)))
                yield (*current, None)
        elif line == b"\\.":
            current = None
        else:
            yield (*current, line)


def _pg_data(tools: PgTools, path: Path, args: Sequence[str]) -> Iterator[bytes]:
    """The lines of ``pg_restore --data-only -f - ARGS FILE``, streamed."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [tools("pg_restore"), "--data-only", "-f", "-", *args, str(path)],
            stdout=subprocess.PIPE,
            stderr=errors,
            env={"LC_ALL": "C"},
        )
        stdout = proc.stdout
        assert stdout is not None
        try:
            yield from _lines(iter(lambda: stdout.read(1 << 20), b""))
        finally:
            stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise InvalidInput(
                f"cannot read {path} ({_tool_error('pg_restore', errors.read())})", field="file"
            )


def pg_file_revision(tools: PgTools, path: Path) -> str | None:
    """The schema revision in a dump (its ``alembic_version`` data; read by seeking to it)."""
    for _schema, _table, row in _copy_blocks(_pg_data(tools, path, ["-t", "alembic_version"])):
        if row is not None:
            return row.decode()
    return None


def pg_file_digests(
    tools: PgTools, path: Path, *, schema: str, progress: Progress | None = None
) -> list[TableDigest]:
    """Row counts and checksums of the tables of ``schema`` in a dump, from one pass over its
    data (also proof that every data block decompresses)."""
    say = progress or _quiet
    sums: dict[str, _Sum] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".list", encoding="utf-8") as listing:
        toc = pg_toc(tools, path)
        listing.write("\n".join(ln for ln in toc.lines if _TOC_DATA.match(ln)) + "\n")
        listing.flush()
        n = sum(1 for s, t in toc.tables if s == schema and t not in _PG_EXTENSION_DATA)
        for table_schema, table, row in _copy_blocks(_pg_data(tools, path, ["-L", listing.name])):
            if table_schema != schema or table in _PG_EXTENSION_DATA:
                continue
            if row is None:
                sums[table] = _Sum()
                say(f"reading {table} ({len(sums)}/{n})")
            else:
                sums[table].add(row)
    return [sums[name].digest(name) for name in sorted(sums)]


#: Data of extension configuration tables that pg_dump writes (PostGIS: rows a user added to
#: ``spatial_ref_sys``). Not geogrid's, and not restored: the extension in the target keeps
#: its own rows, and a second copy of a user row would fail on its key.
_PG_EXTENSION_DATA = frozenset({"spatial_ref_sys"})

#: TOC entries left out of a restore: comments on the extension or the schema (only their
#: owner may set them, often not geogrid's role) and extension data (above).
_SKIP_ENTRY = re.compile(
    r"^\d+; \d+ \d+ (COMMENT - (EXTENSION|SCHEMA) |TABLE DATA \S+ (spatial_ref_sys) )"
)

#: Everything of geogrid in the current schema, as DROP statements; PostGIS's objects (members
#: of the extension) are left alone. Partitions go with their parent; owned sequences with
#: their table (IF EXISTS: listed all the same).
_PG_DROPS = """
WITH ours AS (
  SELECT c.oid, c.relkind, c.relispartition,
         format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
)
SELECT 1, format('DROP VIEW IF EXISTS %s CASCADE', name) FROM ours WHERE relkind = 'v'
UNION ALL
SELECT 2, format('DROP MATERIALIZED VIEW IF EXISTS %s CASCADE', name) FROM ours
  WHERE relkind = 'm'
UNION ALL
SELECT 3, format('DROP FOREIGN TABLE IF EXISTS %s CASCADE', name) FROM ours WHERE relkind = 'f'
UNION ALL
SELECT 4, format('DROP TABLE IF EXISTS %s CASCADE', name) FROM ours
  WHERE relkind IN ('r', 'p') AND NOT relispartition
UNION ALL
SELECT 5, format('DROP SEQUENCE IF EXISTS %s CASCADE', name) FROM ours WHERE relkind = 'S'
UNION ALL
SELECT 6, format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 7, format('DROP TYPE IF EXISTS %s CASCADE', format('%I.%I', n.nspname, t.typname))
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd', 'r', 'm')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                    AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

#: How long the restore waits for the locks that dropping the tables needs (a running
#: service's transactions hold weaker ones) before it gives up and changes nothing.
PG_LOCK_TIMEOUT = "60s"


def pg_restore(
    engine: Engine, path: Path, tools: PgTools, *, progress: Progress | None = None
) -> None:
    """Replace everything of geogrid in ``engine``'s database with the dump ``path``, in one
    transaction (see the module's docstring). The caller must hold no transaction on the
    database: the restore needs to drop the tables."""
    say = progress or _quiet
    with engine.connect() as conn:
        drops = [str(s) for _k, s in conn.execute(text(_PG_DROPS)).all()]
    prelude = "\n".join(
        [
            "SET client_min_messages = warning;",
            f"SET lock_timeout = '{PG_LOCK_TIMEOUT}';",
            *(f"{s};" for s in drops),
            "",
        ]
    )
    toc = pg_toc(tools, path)
    entries = [ln for ln in toc.lines if _TOC_ENTRY.match(ln) and not _SKIP_ENTRY.match(ln)]
    n_tables = sum(1 for ln in entries if _TOC_DATA.match(ln))
    with (
        tempfile.NamedTemporaryFile("w", suffix=".list", encoding="utf-8") as listing,
        tempfile.TemporaryFile() as restore_err,
        tempfile.TemporaryFile() as psql_err,
    ):
        listing.write("\n".join(entries) + "\n")
        listing.flush()
        # --no-owner/--no-privileges: the objects belong to the role restoring them (a dump
        # from another server names roles this one may not have); grants to other roles are
        # not restored.
        reader = subprocess.Popen(
            [
                *(tools("pg_restore"), "--no-owner", "--no-privileges"),
                *("-L", listing.name, "-f", "-", str(path)),
            ],
            stdout=subprocess.PIPE,
            stderr=restore_err,
            env={"LC_ALL": "C"},
        )
        writer = subprocess.Popen(
            [
                *(tools("psql"), "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"),
                *("--single-transaction", "-f", "-"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env=pg_environment(engine),
        )
        assert reader.stdout is not None and writer.stdin is not None
        psql_stopped = not _pump(reader.stdout, writer.stdin, prelude.encode(), say, n_tables)
        if psql_stopped:
            reader.kill()
        reader.stdout.close()
        read_code = reader.wait()
        if read_code != 0 and not psql_stopped:
            # The script was cut short: psql must not reach its end and COMMIT. A client
            # gone mid-transaction is rolled back by the server.
            writer.kill()
        else:
            with suppress(BrokenPipeError):
                writer.stdin.close()
        write_code = writer.wait()
        if psql_stopped or (write_code != 0 and read_code == 0):
            psql_err.seek(0)
            message = _tool_error("psql", psql_err.read())
            if "lock timeout" in message:
                message += (
                    f" — other sessions held the tables for {PG_LOCK_TIMEOUT}: stop writers "
                    "(geogrid serve, cron jobs) and run again"
                )
            raise GeogridError(f"the restore was rolled back, nothing changed ({message})")
        if read_code != 0:
            restore_err.seek(0)
            raise InvalidInput(
                f"cannot read {path} ({_tool_error('pg_restore', restore_err.read())}); the "
                "restore was rolled back, nothing changed",
                field="file",
            )
        if write_code != 0:
            psql_err.seek(0)
            raise GeogridError(
                f"the restore was rolled back, nothing changed "
                f"({_tool_error('psql', psql_err.read())})"
            )


def _pump(source: IO[bytes], sink: IO[bytes], prelude: bytes, say: Progress, n_tables: int) -> bool:
    """Write ``prelude`` then ``source`` into ``sink``, saying which table's data is going.
    False when the sink stopped reading (psql stopped on an error, which it reports)."""
    seen = 0
    say("dropping the current tables")
    try:
        sink.write(prelude)
        while chunk := source.read(1 << 20):
            copies = chunk.count(b"\nCOPY ")
            if copies:
                seen += copies
                say(f"restoring data ({min(seen, n_tables)}/{n_tables} tables)")
            sink.write(chunk)
        sink.flush()
    except BrokenPipeError:
        return False
    say("building indexes and constraints")
    return True
