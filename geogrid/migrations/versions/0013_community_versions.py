"""Per-community change counters (issue 16: a city in one lookup service).

``community_versions`` holds a ``spatial`` and a ``gazetteer`` counter per community, bumped
by triggers on the same tables, in the same statements, as ``data_versions``
(``geogrid.db.dialect.community_version_trigger_ddl``). The lookup service then rebuilds the
communities whose counter moved instead of all ~1,000 of a city. Every community present
gets a row at 0.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from geogrid.db import dialect
from geogrid.db.engine import Backend
from geogrid.db.models import VERSIONED_TABLES

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _backend() -> Backend:
    return Backend.POSTGIS if op.get_bind().dialect.name == "postgresql" else Backend.SPATIALITE


def upgrade() -> None:
    op.create_table(
        "community_versions",
        sa.Column("community_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("spatial", sa.Integer(), server_default="0", nullable=False),
        sa.Column("gazetteer", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_community_versions")),
    )
    op.execute("INSERT INTO community_versions (community_id) SELECT id FROM communities")
    backend = _backend()
    if backend is Backend.POSTGIS:
        op.execute(dialect.PG_BUMP_COMMUNITY_FUNCTION)
    for counter, tables in VERSIONED_TABLES.items():
        for t in tables:
            for ddl in dialect.community_version_trigger_ddl(backend, counter, t):
                op.execute(ddl)


def downgrade() -> None:
    backend = _backend()
    for tables in VERSIONED_TABLES.values():
        for t in tables:
            for ddl in dialect.drop_community_version_trigger_ddl(backend, t):
                op.execute(ddl)
    if backend is Backend.POSTGIS:
        op.execute("DROP FUNCTION IF EXISTS geogrid_bump_community_versions()")
    op.drop_table("community_versions")
