"""Engines for the two backends: PostGIS (server) and SpatiaLite (embedded default).

SpatiaLite is a loadable SQLite extension. Python builds whose ``sqlite3`` lacks
``enable_load_extension`` (pyenv's default build, for one) cannot load it, so we prefer the
standard module where it can load extensions and fall back to ``pysqlite3`` (PyPI
``pysqlite3-binary``), which can. Where neither can, :class:`ConfigurationError` says what to
install.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import weakref
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

# pyproj before any SpatiaLite connection, always: Debian's mod_spatialite links the system's
# PROJ and pyproj's wheel bundles its own; when the extension loads first, the process
# aborts at exit (segfault or "double free or corruption"), when pyproj is first it does not
# (seen in the abuse benchmark; tests/test_engine_exit.py).
import pyproj  # noqa: F401
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import OperationalError

from geogrid.errors import ConfigurationError, DatabaseNotReady, DatabaseUnavailable
from geogrid.settings import DatabaseSettings

log = logging.getLogger("geogrid.db")

#: Execution option of a connection whose transactions only read (SQLite: a plain deferred
#: ``BEGIN``, which takes no write lock); see :func:`read_only`.
READ_ONLY = "geogrid_read_only"
#: Seconds a client is asked to wait before trying again (``Retry-After``).
RETRY_AFTER_SECONDS = 5


class Backend(StrEnum):
    """The two supported databases."""

    POSTGIS = "postgis"
    SPATIALITE = "spatialite"


def backend_of(engine_or_url: Engine | str) -> Backend:
    """Which backend an engine or URL talks to."""
    url = make_url(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url.url
    if url.get_backend_name() == "postgresql":
        return Backend.POSTGIS
    if url.get_backend_name() == "sqlite":
        return Backend.SPATIALITE
    raise ConfigurationError(
        f"unsupported database {url.get_backend_name()!r}: use sqlite:///FILE (SpatiaLite) "
        "or postgresql+psycopg://… (PostGIS)",
        field="GEOGRID_DATABASE_URL",
    )


def _sqlite_module() -> ModuleType:
    """A DB-API sqlite module that can load extensions."""
    probe = sqlite3.connect(":memory:")
    try:
        if hasattr(probe, "enable_load_extension"):
            return sqlite3
    finally:
        probe.close()
    try:
        import pysqlite3.dbapi2 as pysqlite3
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ConfigurationError(
            "this Python's sqlite3 cannot load extensions and pysqlite3 is not installed: "
            "`pip install pysqlite3-binary` (Linux x86-64) or use a Python built with "
            "--enable-loadable-sqlite-extensions"
        ) from exc
    module: ModuleType = pysqlite3
    return module


def _load_spatialite(library: str, busy_timeout_ms: int) -> Any:
    """A ``connect`` listener that loads SpatiaLite and tunes the connection."""

    def listener(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.enable_load_extension(True)
        try:
            dbapi_conn.load_extension(library)
        except Exception as exc:
            raise ConfigurationError(
                f"cannot load the SpatiaLite extension {library!r} ({exc}); on Debian/Ubuntu "
                "install it with `apt-get install libsqlite3-mod-spatialite`",
                field="GEOGRID_SPATIALITE_LIBRARY_PATH",
            ) from exc
        dbapi_conn.enable_load_extension(False)
        cur = dbapi_conn.cursor()
        # WAL lets the API read while the CLI writes (another process); foreign keys are off
        # by default in SQLite.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # How long a writer waits for another writer's lock before SQLITE_BUSY
        # (GEOGRID_DATABASE_BUSY_TIMEOUT_SECONDS); then DatabaseUnavailable, 503.
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return listener


#: Connections whose next ``begin`` is SQLAlchemy's autobegin (a statement on a connection
#: with no transaction), marked by :func:`_note_autobegin`.
_autobegun: weakref.WeakSet[Connection] = weakref.WeakSet()


def _note_autobegin(conn: Connection, *_args: Any) -> None:
    # ``before_execute`` runs before the autobegin of a statement on a connection with no
    # transaction: ``engine.connect()`` + ``execute`` (a read, by this code base's habit),
    # as against ``engine.begin()`` / ``conn.begin()`` (a unit of work that may write).
    if not conn.in_transaction():
        _autobegun.add(conn)


def _sqlite_begin(conn: Connection) -> None:
    # pysqlite's own transaction handling does not wrap DDL and SELECTs; take control so that
    # one import or activation is one transaction (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for pysqlite).
    #
    # An explicit transaction (``engine.begin()``, ``conn.begin()``) starts IMMEDIATE: it takes
    # the write lock now, waiting up to the busy timeout for another writer. A deferred one
    # that reads first and writes later cannot wait: SQLite refuses the read→write upgrade at
    # once with SQLITE_BUSY, whatever the busy timeout, since waiting while holding a read
    # snapshot could deadlock (https://sqlite.org/lang_transaction.html, "DEFERRED,
    # IMMEDIATE and EXCLUSIVE"; measured here: 0.0 s with a 2 s timeout). Reads — autobegun
    # connections and those marked :func:`read_only` — keep the plain ``BEGIN``: in WAL mode
    # they never wait for a writer.
    autobegun = conn in _autobegun
    _autobegun.discard(conn)
    reading = autobegun or bool(conn.get_execution_options().get(READ_ONLY))
    conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def read_only(conn: Connection) -> Connection:
    """``conn`` marked as reading only: its explicit transactions take no write lock on
    SQLite (``BEGIN`` rather than ``BEGIN IMMEDIATE``). No effect on PostgreSQL."""
    return conn.execution_options(**{READ_ONLY: True})


#: PostgreSQL SQLSTATEs meaning "the server cannot serve now" (Appendix A of the manual):
#: class 08 connection exceptions, admin/crash shutdown, starting up, too many connections.
_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
#: SQLite primary result codes: SQLITE_BUSY, SQLITE_LOCKED (https://sqlite.org/rescode.html).
_SQLITE_BUSY = (5, 6)
#: SQLITE_BUSY_SNAPSHOT: a deferred transaction overtaken by another writer; waiting cannot
#: help, the transaction must start again (``dialect.lock_community`` makes it a Conflict).
_SQLITE_BUSY_SNAPSHOT = 517


def _unavailable(ctx: ExceptionContext) -> BaseException | None:
    """The one place where a database that cannot be reached becomes
    :class:`DatabaseUnavailable` (a ``handle_error`` listener on every engine).

    What counts: a connection lost or refused (SQLAlchemy's disconnect detection, a failed
    connect, the SQLSTATEs above) and a SQLite file still locked by another writer after the
    busy timeout. Not a failed pre-ping (the pool replaces the connection itself), not a wrong
    password or database name (configuration: stays an error of its own), not an SQL error.
    """
    if ctx.is_pre_ping:
        return None
    orig = ctx.original_exception
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if ctx.dialect.name == "sqlite":
        if sqlite_code is None:
            busy = "database is locked" in str(orig) or "database table is locked" in str(orig)
        else:
            busy = (sqlite_code & 0xFF) in _SQLITE_BUSY and sqlite_code != _SQLITE_BUSY_SNAPSHOT
        if not busy:
            return None
        log.warning("database busy: %s", orig)
        return DatabaseUnavailable(
            "the database is busy with another writer; nothing was changed: try again "
            "in a few seconds",
            retry_after=RETRY_AFTER_SECONDS,
        )
    sqlstate = str(getattr(orig, "sqlstate", None) or "")
    lost = ctx.is_disconnect or sqlstate.startswith(_PG_UNAVAILABLE)
    refused = (
        ctx.connection is None
        and isinstance(ctx.sqlalchemy_exception, OperationalError)
        and not sqlstate.startswith(("28", "3D"))  # authentication, no such database
    )
    if not (lost or refused):
        return None
    log.warning(
        "database unavailable: %s", str(orig).strip().splitlines()[0] if str(orig) else orig
    )
    return DatabaseUnavailable(
        "the database cannot be reached; try again in a few seconds",
        retry_after=RETRY_AFTER_SECONDS,
    )


def make_engine(
    url: str | None = None, *, settings: DatabaseSettings | None = None, **kwargs: Any
) -> Engine:
    """Create an engine for ``url`` (or the settings' URL) with spatial support loaded.

    SpatiaLite files are created on first use, with their parent folder; the spatial metadata
    is initialised by the migrations (``geogrid db init``).
    """
    settings = settings or DatabaseSettings.defaults()
    url = url or settings.database_url
    backend = backend_of(url)
    wait = settings.database_busy_timeout_seconds
    connect_args: dict[str, Any] = kwargs.pop("connect_args", {})
    if backend is Backend.POSTGIS:
        # pool_pre_ping: a connection the server dropped (a restart) is replaced at checkout
        # instead of failing the request that drew it. connect_timeout: a server that does not
        # answer fails the request after this long (libpq counts whole seconds, at least 2).
        engine = create_engine(
            url,
            echo=settings.database_echo,
            pool_pre_ping=True,
            plugins=["geoalchemy2"],
            connect_args={"connect_timeout": max(2, math.ceil(wait)), **connect_args},
            **kwargs,
        )
        event.listen(engine, "handle_error", _unavailable)
        return engine
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    library = settings.spatialite_library_path
    engine = create_engine(
        url,
        module=_sqlite_module(),
        echo=settings.database_echo,
        connect_args={
            "check_same_thread": False,
            "isolation_level": None,
            "timeout": wait,
            **connect_args,
        },
        **kwargs,
    )
    event.listen(engine, "connect", _load_spatialite(library, int(wait * 1000)))
    event.listen(engine, "before_execute", _note_autobegin)
    event.listen(engine, "begin", _sqlite_begin)
    event.listen(engine, "handle_error", _unavailable)
    return engine


def require_schema(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReady` when the schema has not been created."""
    from sqlalchemy import inspect

    if not inspect(engine).has_table("communities"):
        raise DatabaseNotReady(
            f"the database at {engine.url.render_as_string(hide_password=True)} has no geogrid "
            "schema: run `geogrid db init`"
        )
