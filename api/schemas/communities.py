"""`/v1/communities`: the communities and their import."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CommunityOut(BaseModel):
    code: str = Field(examples=["441302011005"])
    name: str = Field(examples=["金源社区"])
    name_en: str | None = None
    subdistrict: str | None = Field(examples=["小金口街道"])
    subdistrict_code: str | None = Field(examples=["441302011"])
    district: str | None = Field(examples=["惠城区"])
    district_code: str | None = Field(examples=["441302"])
    city: str | None = None
    province: str | None = None
    country: str = Field(description="ISO 3166-1 alpha-2", examples=["CN"])
    timezone: str = Field(
        description="IANA zone its times are shown in", examples=["Asia/Shanghai"]
    )
    synthetic: bool = Field(description="generated demo data, not a real community")
    plan_version: int | None = Field(description="the active boundary plan's version")


class CommunityList(BaseModel):
    communities: list[CommunityOut]


class CommunitiesImportOut(BaseModel):
    """What the import did — or, with ``commit=false`` (the default), would do."""

    committed: bool = Field(description="false: a dry run, nothing was written")
    layer: str = Field(examples=["communities"])
    file: str
    format: str
    crs: str | None
    inserted: int
    updated: int
    unchanged: int
    rows_read: int
    warnings: list[str]
