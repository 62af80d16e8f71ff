"""Keyword-only, typed query functions: the ordinary SQL of geogrid, one code path.

A module per concern (``communities``, ``plans``, ``frames``, ``requests``, ``webhooks`` …);
the shared ones are re-exported here, so ``from geogrid.db import queries`` then
``queries.community_row(…)``. Written with PostGIS function names through GeoAlchemy2; the few
statements that differ per backend live in ``geogrid.db.dialect``.
"""

from __future__ import annotations

from geogrid.db.queries.boundary_plans import (
    active_plan,
    clear_branch_reviews,
    clear_field_reviews,
    create_plan,
    delete_plan,
    field_revisions,
    insert_branch_grids,
    insert_plan_event,
    last_plan_event,
    mark_plan_active,
    next_plan_version,
    plan_events,
    plan_row,
    plans,
    require_active_plan,
    review_fields,
    save_field_revisions,
    set_grid_leads,
    set_plan_event_report,
    set_plan_status,
    update_fields,
)
from geogrid.db.queries.communities import (
    community_boundary,
    community_by_id,
    community_row,
    list_communities,
    lookup_communities,
    member_community_id,
)
from geogrid.db.queries.core import (
    WGS84,
    bulk_insert,
    count,
    geom_value,
    insert_returning_ids,
    read_frame,
    update_ids,
    wkb,
)
from geogrid.db.queries.frames import (
    address_households_frame,
    branch_grids_frame,
    buildings_frame,
    fields_frame,
    grids_frame,
    household_assignments,
    members_frame,
    open_requests_frame,
    party_groups_frame,
    plan_branches_frame,
    planning_households_frame,
    streets_frame,
)
from geogrid.db.queries.meta import (
    data_versions,
    instance_secret,
)
from geogrid.db.queries.summary import summary_counts

__all__ = [
    "WGS84",
    "active_plan",
    "address_households_frame",
    "branch_grids_frame",
    "buildings_frame",
    "bulk_insert",
    "clear_branch_reviews",
    "clear_field_reviews",
    "community_boundary",
    "community_by_id",
    "community_row",
    "count",
    "create_plan",
    "data_versions",
    "delete_plan",
    "field_revisions",
    "fields_frame",
    "geom_value",
    "grids_frame",
    "household_assignments",
    "insert_branch_grids",
    "insert_plan_event",
    "insert_returning_ids",
    "instance_secret",
    "last_plan_event",
    "list_communities",
    "lookup_communities",
    "mark_plan_active",
    "member_community_id",
    "members_frame",
    "next_plan_version",
    "open_requests_frame",
    "party_groups_frame",
    "plan_branches_frame",
    "plan_events",
    "plan_row",
    "planning_households_frame",
    "plans",
    "read_frame",
    "require_active_plan",
    "review_fields",
    "save_field_revisions",
    "set_grid_leads",
    "set_plan_event_report",
    "set_plan_status",
    "streets_frame",
    "summary_counts",
    "update_fields",
    "update_ids",
    "wkb",
]
