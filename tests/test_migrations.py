"""The migrations build exactly the schema the models declare, on both backends, and
migration 0008 (buildings as MULTIPOLYGON) keeps the buildings a database already holds."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import Engine, text

from geogrid.db import migrate
from geogrid.db.models import Base


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"include_object": alembic_helpers.include_object, "compare_type": True},
        )
        diffs = compare_metadata(context, Base.metadata)
    # SpatiaLite's own tables (KNN, SpatialIndex, data_licenses …) are not ours to declare.
    ours = [
        d for d in diffs if not (d[0] == "remove_table" and d[1].name not in Base.metadata.tables)
    ]
    assert ours == []


def _insert_building(engine: Engine, wkt: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO buildings (community_id, aliases, geom) "
                "VALUES (1, '[]', ST_GeomFromText(:wkt, 4326))"
            ),
            {"wkt": wkt},
        )


def test_0008_turns_buildings_into_multipolygons_and_back(engine: Engine) -> None:
    migrate.downgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO communities (id, code, name, country, timezone, synthetic, "
                "boundary, created_at) VALUES (1, '990000000001', 'Test', 'CN', "
                "'Asia/Shanghai', false, ST_GeomFromText("
                "'MULTIPOLYGON(((0 0, 9 0, 9 9, 0 9, 0 0)))', 4326), CURRENT_TIMESTAMP)"
            )
        )
    _insert_building(engine, "POLYGON((1 1, 2 1, 2 2, 1 2, 1 1))")
    migrate.upgrade(engine)

    # A two-part building, as OSM courtyards are, now fits; the old one became a MULTIPOLYGON.
    _insert_building(engine, "MULTIPOLYGON(((3 3, 4 3, 4 4, 3 3)), ((5 5, 6 5, 6 6, 5 5)))")
    with engine.connect() as conn:
        kinds = conn.execute(
            text("SELECT ST_GeometryType(geom), ST_NumGeometries(geom) FROM buildings ORDER BY id")
        ).all()
        # The spatial index still finds both (SpatiaLite's R*Tree was rebuilt).
        found = conn.execute(
            text(
                "SELECT count(*) FROM buildings WHERE ST_Intersects(geom, "
                "ST_GeomFromText('POLYGON((0 0, 7 0, 7 7, 0 7, 0 0))', 4326))"
            )
        ).scalar()
    assert [k.replace("ST_", "").upper() for k, _ in kinds] == ["MULTIPOLYGON"] * 2
    assert [n for _, n in kinds] == [1, 2]
    assert found == 2

    migrate.downgrade(engine, "0007")
    with engine.connect() as conn:
        parts = conn.execute(
            text("SELECT ST_GeometryType(geom), ST_Area(geom) FROM buildings ORDER BY id")
        ).all()
    assert [k.replace("ST_", "").upper() for k, _ in parts] == ["POLYGON"] * 2
    assert [round(a, 6) for _, a in parts] == [1.0, 0.5]
    migrate.upgrade(engine)
