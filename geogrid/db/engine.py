"""Engines for the two backends: PostGIS (server) and SpatiaLite (embedded default).

SpatiaLite is a loadable SQLite extension. Python builds whose ``sqlite3`` lacks
``enable_load_extension`` (pyenv's default build, for one) cannot load it, so we prefer the
standard module where it can load extensions and fall back to ``pysqlite3`` (PyPI
``pysqlite3-binary``), which can. Where neither can, :class:`ConfigurationError` says what to
install.
"""

from __future__ import annotations

import sqlite3
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from geogrid.errors import ConfigurationError, DatabaseNotReady
from geogrid.settings import DatabaseSettings


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


def _load_spatialite(library: str) -> Any:
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
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return listener


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's own transaction handling does not wrap DDL and SELECTs; take control so that
    # one import or activation is one transaction (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for pysqlite).
    conn.exec_driver_sql("BEGIN")


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
    if backend is Backend.POSTGIS:
        return create_engine(
            url, echo=settings.database_echo, pool_pre_ping=True, plugins=["geoalchemy2"], **kwargs
        )
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    library = settings.spatialite_library_path
    engine = create_engine(
        url,
        module=_sqlite_module(),
        echo=settings.database_echo,
        connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
        **kwargs,
    )
    event.listen(engine, "connect", _load_spatialite(library))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def require_schema(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReady` when the schema has not been created."""
    from sqlalchemy import inspect

    if not inspect(engine).has_table("communities"):
        raise DatabaseNotReady(
            f"the database at {engine.url.render_as_string(hide_password=True)} has no geogrid "
            "schema: run `geogrid db init`"
        )
