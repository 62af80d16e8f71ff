"""Onboarding real communities (issue 13): subdistrict and district codes on communities and
on API keys (their scope), ``data_sources`` (where a layer came from, under which licence),
OpenStreetMap identities and the address's street name on buildings (a street an address
names need not be in the streets layer), and buildings as MULTIPOLYGON (OSM courtyard
buildings and multipolygon relations are ordinary; a POLYGON column refused them).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import geogrid.db.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _drop_columns(table: str, *columns: str) -> None:
    """Drop columns without rebuilding the table: a batch rebuild would lose SpatiaLite's
    geometry registration and triggers; SQLite ≥ 3.35 drops an unindexed column in place."""
    for column in columns:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")


def _building_geometry(kind: str, convert: str) -> None:
    """Change ``buildings.geom`` to ``kind`` (MULTIPOLYGON up, POLYGON down), each value
    through the SQL expression ``convert`` (``{}`` stands for the old value).

    PostGIS: ``ALTER COLUMN … TYPE … USING`` rewrites the column and keeps its GiST index.
    SpatiaLite keeps the type in ``geometry_columns`` and checks it with triggers: discard
    the registration, convert the values, register again (its documented route,
    https://www.gaia-gis.it/gaia-sins/spatialite-sql-latest.html), then rebuild its R*Tree.
    """
    if op.get_bind().dialect.name == "sqlite":
        op.execute("SELECT DisableSpatialIndex('buildings', 'geom')")
        op.execute("SELECT DiscardGeometryColumn('buildings', 'geom')")
        op.execute(f"UPDATE buildings SET geom = {convert.format('geom')}")
        op.execute(f"SELECT RecoverGeometryColumn('buildings', 'geom', 4326, '{kind}', 'XY')")
        op.execute("DROP TABLE IF EXISTS idx_buildings_geom")
        op.execute("SELECT CreateSpatialIndex('buildings', 'geom')")
    else:
        op.execute(
            f"ALTER TABLE buildings ALTER COLUMN geom TYPE geometry({kind}, 4326) "
            f"USING {convert.format('geom')}"
        )


def upgrade() -> None:
    op.create_table(
        "data_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("licence", sa.String(length=64), nullable=True),
        sa.Column("attribution", sa.String(length=300), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("layers", sa.JSON(), nullable=False),
        sa.Column("data_timestamp", geogrid.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("imported_at", geogrid.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_data_sources_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sources")),
    )
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subdistrict_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("district_code", sa.String(length=32), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_communities_subdistrict_code"), ["subdistrict_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_communities_district_code"), ["district_code"], unique=False
        )
    # Chinese communities already stored: the code's head gives both (GB/T 2260 + 3 digits).
    op.execute(
        "UPDATE communities SET subdistrict_code = substr(code, 1, 9), "
        "district_code = substr(code, 1, 6) WHERE country = 'CN' AND length(code) = 12"
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subdistrict_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("district_code", sa.String(length=32), nullable=True))
    with op.batch_alter_table("buildings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("street_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("osm_type", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("osm_id", sa.BigInteger(), nullable=True))
        # Re-running an OSM import matches on (community, type, id); NULLs never collide.
        batch_op.create_index(
            "uq_buildings_osm", ["community_id", "osm_type", "osm_id"], unique=True
        )
    op.execute(
        "UPDATE buildings SET street_name = "
        "(SELECT name FROM streets WHERE streets.id = buildings.street_id) "
        "WHERE street_id IS NOT NULL"
    )
    _building_geometry("MULTIPOLYGON", "ST_Multi({})")


def downgrade() -> None:
    # Back to POLYGON: a multi-part building keeps its first part (all 0007 can hold).
    _building_geometry("POLYGON", "ST_GeometryN({}, 1)")
    op.drop_index("uq_buildings_osm", table_name="buildings")
    op.drop_index(op.f("ix_communities_district_code"), table_name="communities")
    op.drop_index(op.f("ix_communities_subdistrict_code"), table_name="communities")
    _drop_columns("buildings", "street_name", "osm_type", "osm_id")
    _drop_columns("api_keys", "subdistrict_code", "district_code")
    _drop_columns("communities", "subdistrict_code", "district_code")
    op.drop_table("data_sources")
