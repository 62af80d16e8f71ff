"""Shared response parts: the error envelope, periods, plan references."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["from must be a date like 2017-07-01, got '2017-13-01'"])
    field: str | None = Field(default=None, examples=["from"])
    details: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None,
        description="More about the error when there is more: for a malformed request (422) "
        "a list of {field, message}, one per problem",
    )


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class PeriodOut(BaseModel):
    from_: str = Field(alias="from", examples=["2017-07-01"])
    to: str = Field(examples=["2018-04-18"])
    timezone: str | None = Field(
        description="The zone of the communities covered; null when they are in several "
        "(each community's dates are then local dates in its own zone)",
        examples=["Asia/Shanghai"],
    )


class PlanRef(BaseModel):
    id: int
    version: int
    name: str
