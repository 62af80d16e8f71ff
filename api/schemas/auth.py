"""`/v1/me`: who the caller is."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MeOut(BaseModel):
    authenticated: bool = Field(description="false for a caller without a key or session")
    role: str = Field(examples=["official"])
    label: str = Field(description="the key's label, or `anonymous`", examples=["街道办 张*"])
    community_id: int | None = Field(description="the key's community; null: every community")
    member_id: int | None = Field(description="a member key's member")
    department_id: int | None = Field(description="a department key's department")
    personal_data: bool = Field(description="may read residents' personal data")
    via_session: bool = Field(description="authorized by the browser session cookie")
