"""``/v1/plans``: boundary plans, their validation, metrics, diff, activation and review.

Field order follows the bodies the library builds (``geogrid.planning``): a response model
renders its fields in declaration order. Numbers that are an int or a float depending on the
data are ``int | float`` so neither is coerced into the other.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

#: The request body of the routes that take a plan (``openapi_extra``): they read it
#: themselves, no further than ``GEOGRID_PLAN_MAX_BYTES``, instead of through a model that
#: would hold the whole body first.
PLAN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "GeoJSON FeatureCollection of grids (code, name, "
                    "lead_member), WGS 84; at most GEOGRID_PLAN_MAX_BYTES bytes, "
                    "GEOGRID_PLAN_MAX_FEATURES grids and GEOGRID_PLAN_MAX_VERTICES vertices",
                },
                "example": {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"code": "441302011005001", "name": "第1网格"},
                            "geometry": {
                                "type": "Polygon",
                                "coordinates": [
                                    [
                                        [114.39, 23.15],
                                        [114.40, 23.15],
                                        [114.40, 23.16],
                                        [114.39, 23.15],
                                    ]
                                ],
                            },
                        }
                    ],
                },
            }
        },
    }
}

# --- list ------------------------------------------------------------------------------------


class PlanListItem(BaseModel):
    """A plan as listed (``PlanListing``)."""

    id: int
    version: int
    name: str
    status: str = Field(examples=["draft"], description="draft, active or retired")
    base_plan_id: int | None = Field(
        description="The plan that was active when this draft was made"
    )
    source: str | None = Field(description="Where the plan came from (file, generator)")
    created_at: str = Field(description="ISO 8601, in the community's time zone")
    activated_at: str | None = Field(description="ISO 8601, in the community's time zone")
    retired_at: str | None = Field(description="ISO 8601, in the community's time zone")
    grids: int = Field(description="Number of grids in the plan")


class PlanEventItem(BaseModel):
    """An activation or rollback (``PlanEventListing``)."""

    id: int
    plan_id: int = Field(description="The plan made active")
    previous_plan_id: int | None = Field(description="The plan it replaced")
    action: str = Field(examples=["activate"], description="activate or rollback")
    actor: str | None = Field(description="Who did it (the key's label)")
    at: str = Field(description="ISO 8601, in the community's time zone")


class PlanList(BaseModel):
    community: str = Field(examples=["441302011005"])
    timezone: str = Field(description="The community's zone: the times are local there")
    plans: list[PlanListItem] = Field(description="Newest version first")
    events: list[PlanEventItem] = Field(description="Newest first")


# --- validation ------------------------------------------------------------------------------


class PlanProblemOut(BaseModel):
    """One problem of a plan, located so a planner can find it on a map."""

    check: str = Field(examples=["gap"], description="Which check failed (gap, overlap, …)")
    severity: str = Field(examples=["error"], description="error or warning")
    message: str
    codes: list[str] = Field(description="Codes of the grids involved")
    feature: int | None = Field(description="0-based feature index of the first grid involved")
    lon: float | None = Field(description="A point inside the problem, WGS 84")
    lat: float | None
    size: float | None = Field(description="Size of the problem (m² for areas)")
    unit: str | None


class ValidationOut(BaseModel):
    """``POST /v1/plans/validate``: always 200, ``valid`` says whether the plan passes."""

    valid: bool
    grids: int
    tolerance_m2: float = Field(description="Areas up to this size were ignored")
    errors: int = Field(description="Problems that make the plan invalid")
    warnings: int = Field(description="Problems that do not")
    problems: list[PlanProblemOut] = Field(description="Errors first, then warnings")
    renumbering: dict[str, str] = Field(
        description="Code → the code the numbering rule would give it (only codes that differ)"
    )


class StoredValidationOut(BaseModel):
    """``GET /v1/plans/{plan}/validation``: the report of a stored plan."""

    plan: str = Field(examples=["plan v2 (id 2, draft)"], description="The plan validated")
    valid: bool
    grids: int
    tolerance_m2: float = Field(description="Areas up to this size were ignored")
    errors: int = Field(description="Problems that make the plan invalid")
    warnings: int = Field(description="Problems that do not")
    problems: list[PlanProblemOut] = Field(description="Errors first, then warnings")
    renumbering: dict[str, str] = Field(
        description="Code → the code the numbering rule would give it (only codes that differ)"
    )


class LoadedPlan(BaseModel):
    """``POST /v1/plans``: the new draft."""

    plan_id: int
    version: int
    status: str = Field(examples=["draft"])
    base_plan_id: int | None = Field(description="The active plan the draft is based on")
    grids: int
    warnings: list[PlanProblemOut] = Field(description="Problems that do not block loading")


# --- metrics ---------------------------------------------------------------------------------


class PlanFigures(BaseModel):
    """Plan-wide figures; null where undefined (no grids, no members …)."""

    grids: int
    households: int = Field(description="Households inside the grids")
    residents: int | float
    members: int = Field(description="Distinct members holding fields or leading grids")
    households_outside: int = Field(description="Households inside no grid")
    mean_households: float | None
    median_households: float | None
    min_households: int | None
    max_households: int | None
    std_households: float | None = Field(description="Population standard deviation")
    cv_households: float | None = Field(description="Coefficient of variation")
    in_target: int = Field(description="Grids within the households-per-grid target")
    in_target_share: float | None
    max_abs_deviation: float | None
    households_per_member: float | None
    fields: int
    open_requests: int
    mean_polsby_popper: float | None
    min_polsby_popper: float | None
    mean_reock: float | None
    min_reock: float | None
    area_km2: float


class GridFigures(BaseModel):
    """One grid's figures."""

    code: str
    name: str | None
    households: int
    residents: int | float
    members: int
    households_per_member: float | None
    fields: int
    open_requests: int
    area_km2: float | None
    polsby_popper: float | None = Field(description="4πA/P²: 1 for a disc")
    reock: float | None = Field(description="Area / minimum bounding circle: 1 for a disc")
    deviation: float | None = Field(description="Households relative to the plan's mean, −1…")
    target_gap: int = Field(description="Households short (negative) or over the target")
    in_target: bool


class PlanMetricsOut(BaseModel):
    """Metrics of a plan (the proposal's ``current`` and ``proposed``)."""

    target: list[int] = Field(examples=[[300, 500]], description="Households per grid, [lo, hi]")
    plan: PlanFigures
    grids: list[GridFigures] = Field(description="Worst first")


class StoredPlanMetrics(BaseModel):
    """``GET /v1/plans/{plan}/metrics``: balance and compactness of a stored plan."""

    plan: PlanFigures
    target: list[int] = Field(examples=[[300, 500]], description="Households per grid, [lo, hi]")
    grids: list[GridFigures] = Field(description="Worst first")


# --- diff ------------------------------------------------------------------------------------


class DiffCounts(BaseModel):
    """Complete counts (the lists may be capped by ``limit``)."""

    grids_added: int
    grids_removed: int
    grids_reshaped: int
    grids_unchanged: int
    households: int
    households_moved: int = Field(description="Households whose grid code changes")
    households_rehomed: int = Field(
        description="Households whose new grid descends from another current grid than theirs"
    )
    fields_cut: int
    households_cut_from_fields: int
    fields_moved: int
    members_changed: int
    branches_changed: int
    requests_rerouted: int
    grids_without_lead: int
    grids_with_acting_lead: int


class GridOnlyIn(BaseModel):
    """A grid whose code only one of the plans has."""

    code: str
    name: str | None
    area_m2: float
    households: int


class GridReshaped(BaseModel):
    code: str
    area_before_m2: float
    area_after_m2: float
    changed_m2: float = Field(description="Area of the symmetric difference")
    households_before: int
    households_after: int


class HouseholdMoved(BaseModel):
    household: str | int | None = Field(description="Address id (or household id)")
    from_code: str | None = Field(description="null: in no grid")
    to_code: str | None


class FieldCutOut(BaseModel):
    """A responsibility field that the new boundaries cut."""

    field_id: int
    name: str | None
    member_id: int | None
    grid_code: str | None = Field(description="The new grid keeping the largest part")
    area_m2: float
    cut_area_m2: float
    cut_share: float
    pieces: dict[str, float] = Field(description="New grid code → m² of the field in it")
    households_cut: int
    cut_households: list[str | int | None] = Field(
        description="Address ids (or household ids) of the cut-off households"
    )


class FieldClipped(FieldCutOut):
    """A field an activation clipped, with the note it now carries."""

    review_note: str


class FieldMoved(BaseModel):
    field_id: int
    name: str | None
    member_id: int | None
    from_code: str | None
    to_code: str | None


class MemberChanged(BaseModel):
    member_id: int
    from_codes: list[str]
    to_codes: list[str]


class BranchChanged(BaseModel):
    branch_id: int
    branch_name: str | None
    from_codes: list[str]
    to_codes: list[str]


class RequestRerouted(BaseModel):
    request_id: int
    from_code: str | None
    to_code: str | None


class PlanDiffOut(BaseModel):
    """``GET /v1/plans/{plan}/diff``: what a draft changes against another plan."""

    draft: str = Field(examples=["plan v2 (id 2, draft)"])
    against: str = Field(examples=["plan v1 (id 1, active)"])
    counts: DiffCounts
    grids_added: list[GridOnlyIn]
    grids_removed: list[GridOnlyIn]
    grids_reshaped: list[GridReshaped]
    households_moved: list[HouseholdMoved]
    fields_cut: list[FieldCutOut]
    fields_moved: list[FieldMoved]
    members_changed: list[MemberChanged]
    branches_changed: list[BranchChanged]
    requests_rerouted: list[RequestRerouted]
    parents: dict[str, str | None] = Field(
        description="Draft grid code → the current grid it overlaps most (null: none)"
    )
    leads: dict[str, int | None] = Field(
        description="Draft grid code → lead member id after activation"
    )
    acting_leads: dict[str, int] = Field(
        description="Draft grid code → the parent's lead acting for it"
    )
    branches: dict[str, list[int]] = Field(
        description="Draft grid code → branch ids after activation"
    )


# --- activation ------------------------------------------------------------------------------


class BranchMapped(BaseModel):
    branch_id: int
    code: str = Field(description="Grid code")


class AssignmentRun(BaseModel):
    """The re-assignment of households, fields and requests under the new plan."""

    community_code: str
    plan_id: int
    plan_version: int
    households: int
    households_in_grids: int
    households_in_fields: int
    households_outside: int
    outside_address_ids: list[str]
    households_changed_grid: int
    households_changed_field: int
    fields_regridded: int
    requests_assigned: int
    requests_outside: int
    requests_rerouted: int


class ActivationOut(BaseModel):
    """What an activation or a rollback did."""

    action: str = Field(examples=["activate"], description="activate or rollback")
    community_code: str
    plan_id: int = Field(description="The plan now active")
    plan_version: int
    previous_plan_id: int | None
    previous_plan_version: int | None
    activated_at: str = Field(examples=["2026-11-01T04:00:00+00:00"])
    event_id: int
    counts: DiffCounts
    fields_clipped: list[FieldClipped]
    fields_restored: int = Field(description="Rollback: fields given their shape back")
    branches_mapped: list[BranchMapped]
    leads_assigned: dict[str, int] = Field(description="Grid code → lead member id set")
    acting_leads: dict[str, int] = Field(
        description="Grid code → the parent grid's lead acting for it (to confirm or replace)"
    )
    grids_without_lead: list[str]
    assignment: AssignmentRun
    warnings: list[str]


# --- review ----------------------------------------------------------------------------------


class PlanVersionRef(BaseModel):
    id: int
    version: int


class ReviewFieldOut(BaseModel):
    """A field flagged for review (``ReviewField``)."""

    id: int
    name: str | None
    member_id: int | None
    grid_code: str | None
    review_note: str | None = Field(description="Names the cut-off households")


class ReviewBranch(BaseModel):
    """A branch–grid mapping made by the activation, not yet confirmed."""

    branch_id: int
    branch_name: str | None
    code: str = Field(description="Grid code")


class ReviewOut(BaseModel):
    """``GET /v1/plans/review``: what the last activation left to review."""

    plan: PlanVersionRef = Field(description="The active plan")
    fields: list[ReviewFieldOut]
    branches: list[ReviewBranch]
    acting_leads: dict[str, int] = Field(description="Grid code → acting lead member id")


class ReviewCounts(BaseModel):
    fields: int
    branches: int


class ReviewClearedOut(BaseModel):
    """``POST /v1/plans/review``: what was cleared, then what is left."""

    cleared: ReviewCounts
    plan: PlanVersionRef = Field(description="The active plan")
    fields: list[ReviewFieldOut]
    branches: list[ReviewBranch]
    acting_leads: dict[str, int] = Field(description="Grid code → acting lead member id")


class DeletedPlan(BaseModel):
    deleted: int = Field(description="The draft's id")
    version: int


# --- GeoJSON and proposals ---------------------------------------------------------------------


class PlanFeature(BaseModel):
    """A grid: ``properties`` has ``code``, ``name`` and ``lead_member`` (or ``households``)."""

    type: str = Field(examples=["Feature"])
    properties: dict[str, Any]
    geometry: dict[str, Any] | None = Field(description="GeoJSON geometry, WGS 84")


class PlanFeatureCollection(BaseModel):
    """A plan file: a GeoJSON FeatureCollection (RFC 7946, WGS 84) of grids."""

    type: str = Field(examples=["FeatureCollection"])
    name: str
    geogrid: dict[str, Any] = Field(
        description="Provenance (a foreign member): community code, source, method, seed …"
    )
    features: list[PlanFeature]


class ProposalSummary(BaseModel):
    target: list[int] | None = Field(description="Households per grid used, [lo, hi]")
    k: int = Field(description="Number of grids drawn")
    seed: int
    method: str
    households: int
    kept_households: int = Field(description="Households whose new grid derives from theirs")
    kept_share: float
    report: dict[str, Any] = Field(description="The algorithm's figures, timings and warnings")


class ProposeOut(BaseModel):
    """``POST /v1/plans/propose``: nothing stored; POST ``plan`` to ``/v1/plans`` to load it."""

    proposal: ProposalSummary
    current: PlanMetricsOut | None = Field(description="The active plan's metrics, same target")
    proposed: PlanMetricsOut
    plan: PlanFeatureCollection
