"""Data-version counters and the triggers that bump them (for in-memory indexes).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from geogrid.db import dialect
from geogrid.db.engine import Backend
from geogrid.db.models import VERSIONED_TABLES

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _backend() -> Backend:
    return Backend.POSTGIS if op.get_bind().dialect.name == "postgresql" else Backend.SPATIALITE


def upgrade() -> None:
    table = op.create_table(
        "data_versions",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_data_versions")),
    )
    op.bulk_insert(table, [{"name": name, "version": 0} for name in VERSIONED_TABLES])
    backend = _backend()
    if backend is Backend.POSTGIS:
        op.execute(dialect.PG_BUMP_FUNCTION)
    for counter, tables in VERSIONED_TABLES.items():
        for t in tables:
            for ddl in dialect.version_trigger_ddl(backend, counter, t):
                op.execute(ddl)


def downgrade() -> None:
    backend = _backend()
    for tables in VERSIONED_TABLES.values():
        for t in tables:
            for ddl in dialect.drop_version_trigger_ddl(backend, t):
                op.execute(ddl)
    if backend is Backend.POSTGIS:
        op.execute("DROP FUNCTION IF EXISTS geogrid_bump_version()")
    op.drop_table("data_versions")
