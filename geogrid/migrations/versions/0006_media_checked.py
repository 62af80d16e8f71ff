"""Photos checked and stripped of their location: ``request_media.quarantined``.

Photos stored before this revision were checked only for a declared type starting with
``image/``. Each is now checked as new uploads are (geogrid.requests.media: JPEG, PNG or WebP
whose bytes say so) and stripped of its location metadata (Exif GPS, XMP, IPTC, PNG text
chunks) without re-encoding. One that fails is kept, flagged ``quarantined``, and from then
on served only as an ``application/octet-stream`` attachment, never inline.

Revision ID: 0006
Revises: 0005
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from geogrid.errors import InvalidInput
from geogrid.requests.media import clean_photo, declared_type

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("request_media") as batch_op:
        batch_op.add_column(
            sa.Column("quarantined", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
    media = sa.table(
        "request_media",
        sa.column("id", sa.Integer),
        sa.column("content_type", sa.String),
        sa.column("data", sa.LargeBinary),
        sa.column("size", sa.Integer),
        sa.column("sha256", sa.String),
        sa.column("quarantined", sa.Boolean),
    )
    conn = op.get_bind()
    ids = conn.execute(sa.select(media.c.id).where(media.c.data.is_not(None))).scalars().all()
    for media_id in ids:  # one photo in memory at a time
        row = conn.execute(
            sa.select(media.c.content_type, media.c.data).where(media.c.id == media_id)
        ).one()
        try:
            data = clean_photo(bytes(row.data), row.content_type or "")
        except InvalidInput:
            conn.execute(sa.update(media).where(media.c.id == media_id).values(quarantined=True))
            continue
        conn.execute(
            sa.update(media)
            .where(media.c.id == media_id)
            .values(
                data=data,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content_type=declared_type(row.content_type or ""),
            )
        )


def downgrade() -> None:
    # The stripped metadata is gone for good; only the flag is removed.
    with op.batch_alter_table("request_media") as batch_op:
        batch_op.drop_column("quarantined")
