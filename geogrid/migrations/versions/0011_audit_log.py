"""The audit log (issue 14): every read of personal data and every write, append-only.

``audit_log`` takes over from ``personal_data_reads``: its entries are copied in (action
``read``; their role and client were never recorded) and the old table is dropped. Triggers
keep the log append-only on both backends (``geogrid.db.dialect.audit_trigger_ddl``): no
UPDATE, and a DELETE only for entries older than the ``before`` of an ``audit_prune`` row of
``privacy_permits``, which ``geogrid.audit.prune`` writes and removes inside its own
transaction. The trigger of ``request_events`` (0003: no UPDATE) lets an erasure, under an
``erase`` permit, clear a note or a name and nothing else.

Downgrade puts the reads back into ``personal_data_reads`` (those with a numeric subject id,
which all of them had) and 0003's events trigger; the entries of writes are dropped with the
table.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from geogrid.db import dialect
from geogrid.db.engine import Backend
from geogrid.db.models import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _backend() -> Backend:
    return Backend.POSTGIS if op.get_bind().dialect.name == "postgresql" else Backend.SPATIALITE


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("client", sa.String(length=200), nullable=True),
        sa.Column("via", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject", "audit_log", ["subject", "subject_id"])
    op.create_table(
        "privacy_permits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("before", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_permits")),
    )
    # The reads logged so far, in their order (ids are the log's order).
    op.execute(
        "INSERT INTO audit_log (at, api_key_id, actor, role, client, via, action, subject, "
        "subject_id, fields, details) "
        "SELECT at, api_key_id, COALESCE(actor, 'unknown'), NULL, NULL, via, 'read', subject, "
        "CAST(subject_id AS VARCHAR(64)), fields, NULL FROM personal_data_reads ORDER BY id"
    )
    op.drop_index("ix_personal_data_reads_at", table_name="personal_data_reads")
    op.drop_table("personal_data_reads")
    for ddl in dialect.audit_trigger_ddl(_backend()):
        op.execute(ddl)


def downgrade() -> None:
    backend = _backend()
    for ddl in dialect.drop_audit_trigger_ddl(backend):
        op.execute(ddl)
    op.create_table(
        "personal_data_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("via", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_personal_data_reads_api_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_data_reads")),
    )
    op.create_index("ix_personal_data_reads_at", "personal_data_reads", ["at"])
    numeric = (
        "subject_id ~ '^[0-9]+$'"
        if backend is Backend.POSTGIS
        else "subject_id <> '' AND subject_id NOT GLOB '*[^0-9]*'"
    )
    # A key deleted since (keys are revoked, not deleted, but a foreign key must hold).
    op.execute(
        "INSERT INTO personal_data_reads (at, api_key_id, actor, subject, subject_id, fields, "
        "via) SELECT at, CASE WHEN api_key_id IN (SELECT id FROM api_keys) THEN api_key_id END, "
        f"actor, subject, CAST(subject_id AS INTEGER), fields, via FROM audit_log "
        f"WHERE action = 'read' AND {numeric} ORDER BY id"
    )
    op.drop_table("privacy_permits")
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
