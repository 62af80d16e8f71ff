"""Assignment of households, responsibility fields and requests to the active plan's grids.

Households are assigned set-based in SQL (``geogrid.db.dialect``); fields (few) by their
representative point in Python with the same edge rule; requests to grid → field → member.
Closed requests keep the grid they had, so KPIs stay comparable over time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection

from geogrid.db import dialect, models, queries
from geogrid.db.queries import assignment
from geogrid.spatial import assign_points

#: How many outside households to name in a report (all are counted).
REPORT_LIMIT = 50


@dataclass
class AssignmentReport:
    """What an assignment run did (or, in a dry run, would do)."""

    community_code: str
    plan_id: int
    plan_version: int
    households: int = 0
    households_in_grids: int = 0
    households_in_fields: int = 0
    households_outside: int = 0
    outside_address_ids: list[str] = field(default_factory=list)
    households_changed_grid: int = 0
    households_changed_field: int = 0
    fields_regridded: int = 0
    requests_assigned: int = 0
    requests_outside: int = 0
    requests_rerouted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assign_community(
    conn: Connection, *, community_id: int, plan_id: int | None = None, all_requests: bool = False
) -> AssignmentReport:
    """Re-run every assignment of a community under ``plan_id`` (default: the active plan).

    Runs in the caller's transaction: roll it back for a dry run. ``all_requests`` also
    re-assigns closed requests (only when a community is first loaded).
    """
    community = queries.community_by_id(conn, community_id=community_id).code
    if plan_id is None:
        plan_id = queries.require_active_plan(conn, community_id=community_id).id
    version = assignment.plan_version(conn, plan_id=plan_id)
    report = AssignmentReport(community_code=community, plan_id=plan_id, plan_version=version)

    before = queries.household_assignments(conn, plan_id=plan_id)
    # Grids and fields in one partition build (PostGIS, partitioned table; otherwise the two
    # steps): 2,500 / 20,000 / 100,000 households 0.56 / 0.65 / 1.07 s against 0.62 / 0.84 /
    # 1.95 s for the two steps, whose second rewrites the plan's rows (benchmarks/README.md).
    report.households_in_grids, report.households_in_fields = dialect.assign_households(
        conn, plan_id=plan_id, community_id=community_id
    )
    report.households = queries.count(
        conn, models.Household, models.Household.community_id == community_id
    )
    report.households_outside = report.households - report.households_in_grids
    if report.households_outside:
        report.outside_address_ids = assignment.outside_households(
            conn, community_id=community_id, plan_id=plan_id, limit=REPORT_LIMIT
        )
    if before:
        # Only a re-run has rows to compare (a plan assigned for the first time has none):
        # reading 1M rows back costs ~2 s.
        after = queries.household_assignments(conn, plan_id=plan_id)
        for hid, (grid_id, field_id) in after.items():
            old = before.get(hid)
            if old is None or old[0] != grid_id:
                report.households_changed_grid += 1
            if old is None or old[1] != field_id:
                report.households_changed_field += 1
        gone = set(before) - set(after)
        report.households_changed_grid += len(gone)
        report.households_changed_field += sum(1 for h in gone if before[h][1] is not None)

    report.fields_regridded = _assign_fields(conn, community_id=community_id, plan_id=plan_id)
    assigned, outside, rerouted = assign_requests(
        conn, community_id=community_id, plan_id=plan_id, all_requests=all_requests
    )
    report.requests_assigned, report.requests_outside, report.requests_rerouted = (
        assigned,
        outside,
        rerouted,
    )
    return report


def _assign_fields(conn: Connection, *, community_id: int, plan_id: int) -> int:
    """Set each field's grid: the grid covering its representative point. Returns changes."""
    fields = queries.fields_frame(conn, community_id=community_id)
    if fields.empty:
        return 0
    grids = queries.grids_frame(conn, plan_id=plan_id)
    idx = assign_points(fields.representative_point(), grids, key=grids["code"].to_numpy())
    new_ids = [int(grids["id"].iloc[i]) if i >= 0 else None for i in idx]
    changes = [
        (int(fid), gid)
        for fid, old, gid in zip(fields["id"], fields["grid_id"], new_ids, strict=True)
        if (None if old is None or (isinstance(old, float) and np.isnan(old)) else int(old)) != gid
    ]
    queries.update_ids(conn, models.ResponsibilityField, "grid_id", changes)
    return len(changes)


def assign_requests(
    conn: Connection,
    *,
    community_id: int,
    plan_id: int,
    all_requests: bool,
    request_ids: Collection[int] | None = None,
) -> tuple[int, int, int]:
    """Grid → field → member for requests; returns (assigned, outside, re-routed).

    ``request_ids`` limits the run to those requests (intake of one request, a field
    changing hands); their status filter still applies unless ``all_requests``.
    """
    if request_ids is not None and not request_ids:
        return 0, 0, 0
    open_only = not all_requests
    grid_of, field_of = assignment.request_cover(
        conn,
        community_id=community_id,
        plan_id=plan_id,
        open_only=open_only,
        request_ids=request_ids,
    )
    plan_grids = assignment.plan_grids(conn, plan_id=plan_id)
    leads = {grid.id: grid.lead_member_id for grid in plan_grids}
    code_of = {grid.id: grid.code for grid in plan_grids}
    holders = assignment.field_holders(conn, community_id=community_id)
    rows = assignment.request_places(
        conn, community_id=community_id, open_only=open_only, request_ids=request_ids
    )
    # Codes of the grids requests had under an earlier plan (re-routing is judged by code).
    earlier = {
        row.grid_id for row in rows if row.grid_id is not None and row.grid_id not in code_of
    }
    if earlier:
        code_of |= assignment.grid_codes(conn, grid_ids=earlier)
    routes: list[assignment.RequestRoute] = []
    outside = rerouted = 0
    for request_id, old_grid, old_member in rows:
        grid_id = grid_of.get(request_id)
        field_id = field_of.get(request_id)
        member_id = holders.get(field_id) if field_id is not None else None
        if grid_id is None:
            rule = "none"
            outside += 1
        elif member_id is not None:
            rule = "field"
        else:
            # A vacancy or no field here: the grid's lead member answers.
            rule, member_id = "grid_lead", leads.get(grid_id)
        # Compared by grid code: under a newly activated plan every grid id is new.
        new_code = code_of.get(grid_id) if grid_id is not None else None
        if old_grid is not None and (code_of.get(old_grid) != new_code or old_member != member_id):
            rerouted += 1
        routes.append(assignment.RequestRoute(request_id, grid_id, field_id, member_id, rule))
    assignment.set_request_routes(conn, routes=routes)
    return len(routes) - outside, outside, rerouted
