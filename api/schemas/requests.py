"""Schemas of the requests API, KPIs and the directory (names follow docs/api.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import PeriodOut


class PhotoIn(BaseModel):
    data: str = Field(description="The image, base64-encoded")
    content_type: str = Field(default="image/jpeg", examples=["image/jpeg"])
    filename: str | None = None


class ContactIn(BaseModel):
    """The reporter's contact details: personal data, never shown publicly."""

    model_config = ConfigDict(extra="forbid")
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None


class RequestCreate(BaseModel):
    """A new request: a category and one location (lon/lat, address_id or address)."""

    model_config = ConfigDict(extra="forbid")
    category: str = Field(examples=["sewer_blocked"])
    description: str | None = Field(default=None, examples=["长湖街12号门口下水道堵塞"])
    lon: float | str | None = Field(default=None, examples=[114.4025])
    lat: float | str | None = Field(default=None, examples=[23.115])
    crs: str = Field(default="wgs84", description="wgs84, cgcs2000, gcj02, bd09, EPSG:…")
    address_id: str | None = None
    address: str | None = Field(default=None, description="Resolved by the lookup")
    community: str | None = Field(default=None, description="Community code (optional)")
    attributes: dict[str, Any] | None = Field(
        default=None, description="Values of the category's attributes, by code"
    )
    contact: ContactIn | None = None
    media_urls: list[str] = Field(default_factory=list)
    photos: list[PhotoIn] = Field(default_factory=list)


class ActionIn(BaseModel):
    """Parameters of an action; ``version`` is the version of the request you saw."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(examples=[3])
    note: str | None = Field(default=None, description="Reason or feedback (required by some)")
    member_id: int | None = Field(default=None, description="dispatch (optional), reassign")
    department: str | None = Field(default=None, description="escalate: department code")
    satisfaction: str | None = Field(default=None, description="evaluate: satisfied|unsatisfied")
    comment: str | None = Field(default=None, description="evaluate: the reporter's comment")
    reopen: bool = Field(default=False, description="evaluate: reopen when unsatisfied")
    token: str | None = Field(default=None, description="evaluate by a public key: the token")
    photos: list[PhotoIn] = Field(default_factory=list)
    media_urls: list[str] = Field(default_factory=list)


class AssignmentOut(BaseModel):
    grid_code: str | None
    grid_name: str | None
    field_id: int | None
    member_id: int | None
    member_display_name: str | None = Field(examples=["张*明"])
    rule: str | None = Field(examples=["field"], description="field, grid_lead, manual, none")
    member_name: str | None = Field(default=None, description="personal=true only")


class RequestOut(BaseModel):
    """A request (public fields; officials also see notes, actors and the address id)."""

    model_config = ConfigDict(extra="allow")
    id: int
    status: str = Field(examples=["dispatched"])
    open: bool
    version: int
    community: dict[str, Any]
    category: dict[str, Any]
    description: str | None
    location: dict[str, Any]
    assignment: AssignmentOut
    department: dict[str, Any] | None
    agency_responsible: str
    flag: str | None = Field(examples=[None, "outside_grids"])
    received_at: str | None
    dispatched_at: str | None
    due_at: str | None
    resolved_at: str | None
    closed_at: str | None
    updated_at: str | None
    overdue: bool
    media: list[dict[str, Any]]
    history: list[dict[str, Any]] | None = None
    token: str | None = Field(default=None, description="On creation only: the reporter's token")


class ActionOut(BaseModel):
    """An action of the state machine (``GET /v1/requests/actions``)."""

    action: str = Field(examples=["dispatch"])
    from_: list[str] = Field(
        alias="from", description="Statuses it starts from", examples=[["registered"]]
    )
    to: str | None = Field(
        description="The status it leads to; null = the status stays", examples=["dispatched"]
    )
    roles: list[str] = Field(description="Roles that may perform it", examples=[["official"]])
    note_required: bool = Field(description="A note (reason) must be given")
    description: str


class RequestPage(BaseModel):
    total: int
    limit: int
    offset: int
    next: str | None = Field(default=None, description="URL of the next page")
    items: list[RequestOut]


_RATE = "a fraction 0–1 rounded half-up to 3 decimals; null when the divisor is 0"
_HOURS = "hours from received to resolved, 1 decimal; null when none was resolved"
_COVERAGE = "null when the grouping has no households (category, programme)"


class KpiTotals(BaseModel):
    """The KPIs of the requests received in the period (docs/api.md, "KPIs")."""

    received: int = Field(examples=[86])
    registered: int
    dispatched: int
    resolved: int = Field(examples=[84])
    closed: int
    rejected: int
    resolution_rate: float | None = Field(
        description=f"resolved ÷ received, {_RATE}", examples=[0.977]
    )
    due: int = Field(description="Requests whose due time fell in the period (and has passed)")
    closed_on_time: int
    closure_rate: float | None = Field(description=f"closed ÷ due, {_RATE}")
    on_time_rate: float | None = Field(description=f"closed on time ÷ due, {_RATE}")
    median_hours_to_resolve: float | None = Field(description=f"Median {_HOURS}")
    p90_hours_to_resolve: float | None = Field(description=f"90th percentile of {_HOURS}")
    escalations: int
    overdue_open: int = Field(description="Open requests past their due time now")
    evaluated: int
    satisfied: int
    satisfaction_rate: float | None = Field(description=f"satisfied ÷ evaluated, {_RATE}")
    households: int | None = Field(description=_COVERAGE)
    households_visited: int | None = Field(description=_COVERAGE)
    visit_coverage: float | None = Field(
        description=f"households visited ÷ households, {_RATE}; {_COVERAGE}"
    )


class KpiRow(BaseModel):
    """The KPIs of one group (the fields in the order the API has always sent them)."""

    key: int | str | None = Field(
        description="Group key: id, category code, programme or YYYY-MM; null = none"
    )
    label: str | None = Field(description="The group's name (members: masked)")
    received: int = Field(examples=[86])
    resolved: int = Field(examples=[84])
    resolution_rate: float | None = Field(
        description=f"resolved ÷ received, {_RATE}", examples=[0.977]
    )
    code: str | None = Field(default=None, description="group_by community or grid only: its code")
    registered: int
    dispatched: int
    closed: int
    rejected: int
    due: int = Field(description="Requests whose due time fell in the period (and has passed)")
    closed_on_time: int
    closure_rate: float | None = Field(description=f"closed ÷ due, {_RATE}")
    on_time_rate: float | None = Field(description=f"closed on time ÷ due, {_RATE}")
    median_hours_to_resolve: float | None = Field(description=f"Median {_HOURS}")
    p90_hours_to_resolve: float | None = Field(description=f"90th percentile of {_HOURS}")
    escalations: int
    overdue_open: int = Field(description="Open requests past their due time now")
    evaluated: int
    satisfied: int
    satisfaction_rate: float | None = Field(description=f"satisfied ÷ evaluated, {_RATE}")
    households: int | None = Field(description=_COVERAGE)
    households_visited: int | None = Field(description=_COVERAGE)
    visit_coverage: float | None = Field(
        description=f"households visited ÷ households, {_RATE}; {_COVERAGE}"
    )


class KpiTable(BaseModel):
    period: PeriodOut
    group_by: str | None = Field(description="The grouping; null = totals only")
    total: KpiTotals
    rows: list[KpiRow] = Field(description="One per group, empty without group_by")
