"""Alembic environment: one set of migrations for PostGIS and SpatiaLite.

GeoAlchemy2's ``alembic_helpers`` render and run geometry columns and their spatial indexes
on both backends (https://geoalchemy-2.readthedocs.io/en/latest/alembic.html).
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

from geogrid.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through geogrid.db.migrate
    raise RuntimeError("run migrations through `geogrid db init` / geogrid.db.migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=alembic_helpers.include_object,
    process_revision_directives=alembic_helpers.writer,
    render_item=alembic_helpers.render_item,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
