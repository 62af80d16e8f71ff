"""An index on ``community_id`` for households and requests (issue 13, many communities).

With one community per database every query read the whole table anyway; with 200 side by
side (a district) each per-community statement — the import's stored rows, the assignment's
size test, summaries, request lists — scanned all of them. A B-tree on the foreign key makes
them proportional to the community.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_households_community_id", "households", ["community_id"])
    op.create_index("ix_requests_community_id", "requests", ["community_id"])


def downgrade() -> None:
    op.drop_index("ix_requests_community_id", table_name="requests")
    op.drop_index("ix_households_community_id", table_name="households")
