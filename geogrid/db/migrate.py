"""Create and upgrade the schema with Alembic, on either backend."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from geogrid.db.engine import Backend, backend_of

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration shipped with this version of geogrid; read once per process (the
    scripts ship with the package, and reading them cost ``/health`` 14 ms a call)."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations (head or older): a database
    at any other revision was made by a newer geogrid."""
    script = ScriptDirectory.from_config(_config())
    return any(r.revision == revision for r in script.walk_revisions())


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None when it has no schema)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision``, preparing the spatial extension first."""
    with engine.begin() as conn:
        if backend_of(engine) is Backend.POSTGIS:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        else:
            # Spatial metadata tables; WGS 84 only keeps the file small (the other EPSG
            # definitions are not needed: everything is stored in EPSG:4326).
            has_meta = conn.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'spatial_ref_sys'")
            ).scalar()
            if not has_meta:
                conn.execute(text("SELECT InitSpatialMetaData(0, 'WGS84')"))
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (what a migration removed stays removed)."""
    with engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new migration against ``engine`` (developers only)."""
    with engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
