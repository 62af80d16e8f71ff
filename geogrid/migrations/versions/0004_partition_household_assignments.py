"""PostGIS: ``household_assignments`` LIST-partitioned by plan (SpatiaLite keeps its table).

Why: a plain table checks its four foreign keys with one trigger per inserted row and key —
about 9 of the 11.6 s it took to store 1M households' grids (benchmarks/README.md). A plan's
rows are now built with ``CREATE TABLE AS`` and attached as its partition, which checks each
key with a single join (1M households: 1.9 s). ``geogrid.db.dialect`` detects the partitioned
table. Partitions are named ``household_assignments_p<plan_id>``.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = """
    plan_id integer NOT NULL,
    household_id integer NOT NULL,
    grid_id integer NOT NULL,
    field_id integer,
    CONSTRAINT pk_household_assignments PRIMARY KEY (plan_id, household_id),
    CONSTRAINT fk_household_assignments_field_id_responsibility_fields
        FOREIGN KEY (field_id) REFERENCES responsibility_fields (id) ON DELETE SET NULL,
    CONSTRAINT fk_household_assignments_grid_id_grids
        FOREIGN KEY (grid_id) REFERENCES grids (id) ON DELETE CASCADE,
    CONSTRAINT fk_household_assignments_household_id_households
        FOREIGN KEY (household_id) REFERENCES households (id) ON DELETE CASCADE,
    CONSTRAINT fk_household_assignments_plan_id_boundary_plans
        FOREIGN KEY (plan_id) REFERENCES boundary_plans (id) ON DELETE CASCADE
"""


def _rebuild(partitioned: bool) -> None:
    op.execute("ALTER TABLE household_assignments RENAME TO household_assignments_old")
    op.execute(
        "ALTER TABLE household_assignments_old "
        "RENAME CONSTRAINT pk_household_assignments TO pk_household_assignments_old"
    )
    suffix = " PARTITION BY LIST (plan_id)" if partitioned else ""
    op.execute(f"CREATE TABLE household_assignments ({_COLUMNS}){suffix}")
    if partitioned:
        plans = op.get_bind().execute(
            sa.text("SELECT DISTINCT plan_id FROM household_assignments_old ORDER BY plan_id")
        )
        for (plan_id,) in plans.all():
            op.execute(
                f"CREATE TABLE household_assignments_p{int(plan_id)} "
                f"PARTITION OF household_assignments FOR VALUES IN ({int(plan_id)})"
            )
    op.execute("INSERT INTO household_assignments SELECT * FROM household_assignments_old")
    op.execute("DROP TABLE household_assignments_old")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(partitioned=False)
