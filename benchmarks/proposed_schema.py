"""The schema change the PostGIS assignment needs to meet its target: a proposal, not applied.

``household_assignments`` LIST-partitioned by ``plan_id`` on PostgreSQL (SpatiaLite keeps the
plain table). ``geogrid.db.dialect`` detects a partitioned table and then builds a plan's rows
with ``CREATE TABLE AS`` and attaches them as the plan's partition, so the four foreign keys
are checked by one join each instead of one trigger per row and key (figures in
``benchmarks/README.md``). The benchmark applies :func:`partition_household_assignments` to
its own fresh database to measure the proposal; the real change would be a migration with
the same DDL plus moving existing rows, and in ``models.HouseholdAssignment``::

    __table_args__ = {"postgresql_partition_by": "LIST (plan_id)"}
"""

from __future__ import annotations

from sqlalchemy import Connection, text

#: The DDL, written to match what migration 0001 creates (names from the naming convention).
PARTITIONED_DDL = """
CREATE TABLE household_assignments (
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
) PARTITION BY LIST (plan_id)
"""


def partition_household_assignments(conn: Connection) -> None:
    """Replace the (empty) plain table by the partitioned one. PostGIS only."""
    n = conn.execute(text("SELECT count(*) FROM household_assignments")).scalar_one()
    if n:
        raise RuntimeError("household_assignments is not empty: a migration must move its rows")
    conn.execute(text("DROP TABLE household_assignments"))
    conn.execute(text(PARTITIONED_DDL))
