"""An index on ``responsibility_fields.community_id`` (issue 16: a city in one database).

Assignment, the lookup's frames and the maps read a community's fields by community; without
an index each of those reads scans every field of the database. On the city of
``benchmarks/city.py`` (1,000 communities, 60,000 fields) ``geogrid assign`` took 363 s
without it and 163 s with it (``benchmarks/results/city_db-2026-12-06-fields-index.json``).

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_responsibility_fields_community_id", "responsibility_fields", ["community_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_responsibility_fields_community_id", table_name="responsibility_fields")
