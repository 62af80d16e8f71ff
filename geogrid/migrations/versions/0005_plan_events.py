"""Plan history: ``plan_events`` (each activation and rollback with its report) and
``field_revisions`` (fields as they were before an activation clipped them, for rollback).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import geogrid.db.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = geogrid.db.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "plan_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("previous_plan_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("at", UTC(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "action IN ('activate', 'rollback')", name=op.f("ck_plan_events_action_valid")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_plan_events_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["boundary_plans.id"],
            name=op.f("fk_plan_events_plan_id_boundary_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["previous_plan_id"],
            ["boundary_plans.id"],
            name=op.f("fk_plan_events_previous_plan_id_boundary_plans"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_events")),
    )
    op.create_table(
        "field_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False),
        sa.Column("geom_wkb", sa.LargeBinary(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["plan_events.id"],
            name=op.f("fk_field_revisions_event_id_plan_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["responsibility_fields.id"],
            name=op.f("fk_field_revisions_field_id_responsibility_fields"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_revisions")),
    )
    op.create_index(
        op.f("ix_field_revisions_event_id"), "field_revisions", ["event_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_field_revisions_event_id"), table_name="field_revisions")
    op.drop_table("field_revisions")
    op.drop_table("plan_events")
