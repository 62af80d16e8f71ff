"""The catalogue and the directory: categories, departments, members, responsibility fields,
grid leads and visits (docs/api.md, "Catalogue and directory", "Visits")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import PeriodOut

# --- categories and departments --------------------------------------------------------------


class CategoryOut(BaseModel):
    """A category of the request catalogue; ``active = false`` means retired."""

    code: str = Field(examples=["sewer_blocked"])
    name: str = Field(examples=["下水道堵塞"])
    name_en: str | None = Field(examples=["Blocked sewer or drain"])
    programme: str = Field(description="One of the five programmes (五大工程)", examples=["safety"])
    subclass: str | None
    sla_hours: int = Field(description="Hours from dispatch to the due time", examples=[72])
    department: str | None = Field(description="Default escalation department (code)")
    department_name: str | None
    attributes: list[dict[str, Any]] | None = Field(
        description="Open311 attribute definitions (code, datatype, required, values …)"
    )
    active: bool
    class_: str = Field(
        alias="class", description="component (部件) or event (事件)", examples=["event"]
    )


class DepartmentOut(BaseModel):
    code: str = Field(examples=["civil_affairs"])
    name: str = Field(examples=["民政"])
    name_en: str | None = Field(examples=["Civil affairs"])


# --- members, fields, grid leads -------------------------------------------------------------


class MemberOut(BaseModel):
    """A member with a masked name; ``name`` and ``phone`` only with ``personal=true``."""

    id: int
    community: str = Field(description="Community code", examples=["441302011005"])
    display_name: str = Field(description="The masked name", examples=["张*明"])
    kind: str = Field(examples=["resident"])
    branch: str | None = Field(description="The party branch's name")
    active: bool
    fields: list[int] = Field(description="Ids of the responsibility fields it holds")
    leads_grids: list[str] = Field(description="Codes of the grids it leads")
    name: str | None = Field(default=None, description="personal=true only", examples=["张*明"])
    phone: str | None = Field(
        default=None, description="personal=true only", examples=["138****0000"]
    )


class FieldOut(BaseModel):
    """A responsibility field and who holds it."""

    id: int
    name: str | None
    grid_code: str | None
    member_id: int | None
    member_display_name: str | None = Field(examples=["张*明"])
    vacant: bool = Field(description="No member holds it: its requests go to the grid lead")
    needs_review: bool


class FieldMemberSet(BaseModel):
    field_id: int
    member_id: int | None = Field(description="The new holder; null = vacant")
    requests_rerouted: int = Field(description="Open requests routed again")


class GridLeadSet(BaseModel):
    grid_code: str
    lead_member_id: int | None = Field(description="The new lead; null = none")
    requests_rerouted: int = Field(description="Open requests routed again")


# --- visits ----------------------------------------------------------------------------------


class VisitCreated(BaseModel):
    id: int


class VisitOut(BaseModel):
    id: int
    member_id: int
    address_id: str = Field(description="The household visited")
    visited_on: str = Field(examples=["2018-04-18"])
    kind: str | None = Field(examples=["care"])
    note: str | None


class VisitPage(BaseModel):
    total: int = Field(description="Visits matching (all pages)")
    limit: int
    offset: int
    items: list[VisitOut]


class CoverageRow(BaseModel):
    key: int = Field(description="Id of the community, grid, branch or member")
    households: int
    visited: int = Field(description="Households visited in the period")
    visit_coverage: float | None = Field(
        description="visited ÷ households, 0–1 rounded half-up to 3 decimals", examples=[0.25]
    )


class CoverageTable(BaseModel):
    period: PeriodOut
    group_by: str = Field(examples=["grid"])
    rows: list[CoverageRow]
