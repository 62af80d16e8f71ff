"""Public response schemas (names follow docs/api.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["from must be a date like 2017-07-01, got '2017-13-01'"])
    field: str | None = Field(default=None, examples=["from"])


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class PeriodOut(BaseModel):
    from_: str = Field(alias="from", examples=["2017-07-01"])
    to: str = Field(examples=["2018-04-18"])
    timezone: str = Field(examples=["Asia/Shanghai"])


class PlanRef(BaseModel):
    id: int
    version: int
    name: str


class MembersOut(BaseModel):
    total: int = Field(examples=[696])
    by_kind: dict[str, int] = Field(
        examples=[
            {
                "resident": 138,
                "registered_elsewhere": 90,
                "duty_post": 368,
                "new_org": 60,
                "stationed": 40,
            }
        ]
    )
    membership_elsewhere: int = Field(examples=[558])


class RequestsOut(BaseModel):
    received: int = Field(examples=[86])
    resolved: int = Field(examples=[84])
    resolution_rate: float | None = Field(
        description="resolved ÷ received, a fraction 0–1 rounded half-up to 3 decimals; "
        "null when nothing was received",
        examples=[0.977],
    )


class CommunitySummary(BaseModel):
    code: str = Field(examples=["441302011005"])
    name: str = Field(examples=["金源社区"])
    name_en: str | None = None
    synthetic: bool
    plan: PlanRef | None
    grids: int = Field(examples=[9])
    branches: int = Field(examples=[6])
    branches_on_grids: int = Field(examples=[4])
    members: MembersOut
    households: int
    residents: int
    responsibility_fields: int
    requests: RequestsOut


class SummaryOut(BaseModel):
    period: PeriodOut
    communities: list[CommunitySummary]
