"""`/v1/summary`: headline figures per community."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import PeriodOut, PlanRef


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
    timezone: str = Field(
        description="IANA zone of the community: its period's dates are local dates there",
        examples=["Asia/Shanghai"],
    )
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
