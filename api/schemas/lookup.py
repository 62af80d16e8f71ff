"""Schemas of ``/v1/lookup`` and ``/v1/lookup/batch`` (field names follow docs/api.md, "Lookup").

The routes return the library's dicts directly (``geogrid.lookup.LookupResult.to_dict``);
these models document them in the OpenAPI page and are checked against them in the tests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from geogrid.lookup import MAX_BATCH


class CommunityRef(BaseModel):
    code: str = Field(description="Community code (12 digits in China)", examples=["441302011005"])
    name: str = Field(examples=["金源社区"])


class GridRef(BaseModel):
    code: str = Field(description="Grid code (15 digits in China)", examples=["441302011005003"])
    name: str | None = Field(examples=["长湖网格"])


class BranchRef(BaseModel):
    """The party branch sitting on the grid (the lowest id when several share it)."""

    id: int = Field(examples=[2])
    name: str = Field(examples=["金源社区第二党支部"])


class BuildingRef(BaseModel):
    id: int = Field(examples=[57])
    name: str | None = Field(examples=["3栋"])
    compound: str | None = Field(description="The compound (小区)", examples=["金源花园"])


class GroupRef(BaseModel):
    """The party group sitting on the building the point (or the matched address) is in."""

    id: int = Field(examples=[11])
    name: str = Field(examples=["金源花园3栋党小组"])
    building: BuildingRef


class MemberRef(BaseModel):
    """The responsible member. Never a full name, phone or other personal data."""

    id: int = Field(examples=[42])
    kind: str = Field(
        description="resident, registered_elsewhere, duty_post, new_org or stationed",
        examples=["resident"],
    )
    role: Literal["grid_lead", "field_holder", "member"] = Field(
        description="grid_lead: leads a grid of the active plan (网格长); field_holder: holds "
        "a responsibility field (责任田); member: neither",
        examples=["field_holder"],
    )
    display_name: str = Field(
        description="Masked name: 张*明 (3 characters), 张* (2), first*last (longer), "
        "J*** S*** (Latin script)",
        examples=["张*明"],
    )


class FieldRef(BaseModel):
    """The responsibility field covering the point (also when it is vacant)."""

    id: int = Field(examples=[7])
    name: str | None = Field(examples=["长湖街责任田"])


class LonLat(BaseModel):
    lon: float = Field(examples=[114.4102])
    lat: float = Field(examples=[23.1451])


class RequestedPoint(BaseModel):
    crs: str = Field(
        description="Canonical name of the requested CRS: wgs84, cgcs2000, gcj02, bd09 or "
        "EPSG:NNNN",
        examples=["gcj02"],
    )
    lon: float = Field(
        description="x in the requested CRS (easting if projected)", examples=[114.4156]
    )
    lat: float = Field(
        description="y in the requested CRS (northing if projected)", examples=[23.1424]
    )


class PointOut(BaseModel):
    wgs84: LonLat = Field(description="The point looked up, WGS 84 (= CGCS2000)")
    requested: RequestedPoint = Field(
        description="The same point in the requested CRS: as given for a point lookup, "
        "converted from WGS 84 for an address"
    )


class PlanRefShort(BaseModel):
    id: int = Field(examples=[1])
    version: int = Field(examples=[1])


class StreetGridOut(BaseModel):
    code: str = Field(examples=["441302011005003"])
    name: str | None = Field(examples=["长湖网格"])
    share: float = Field(
        description="Share of the street's length in this grid, 0–1", examples=[0.62]
    )


class CandidateOut(BaseModel):
    level: str | None = Field(examples=["building"])
    confidence: float | None = Field(examples=[0.81])
    normalized: str | None = Field(examples=["金源花园3栋"])


class MatchOut(BaseModel):
    """How an address matched (null for point lookups)."""

    level: Literal["door", "building", "street", "fuzzy"] = Field(
        description="door: a household's door; building: a building (with compound and "
        "aliases); street: a street alone; fuzzy: a near miss (typos)",
        examples=["door"],
    )
    confidence: float = Field(description="0–1", examples=[0.97])
    normalized: str = Field(description="The address as normalised", examples=["长湖街12号"])
    candidates: list[CandidateOut] = Field(
        description="Other places that fit when more than one does (best first)", examples=[[]]
    )
    street_grids: list[StreetGridOut] | None = Field(
        description="For street-level matches: every grid the street crosses, by code",
        examples=[None],
    )


class LookupOut(BaseModel):
    """Which grid and member cover a point or an address (from the active plan)."""

    community: CommunityRef
    grid: GridRef
    branch: BranchRef | None
    group: GroupRef | None
    member: MemberRef | None = Field(
        description="null only when the field is vacant (or absent) and the grid has no lead"
    )
    member_rule: Literal["field", "grid_lead"] = Field(
        description="field: the holder of the responsibility field covering the point; "
        "grid_lead: no field, or a vacant one, covers it: the grid's lead member",
        examples=["field"],
    )
    field: FieldRef | None
    point: PointOut
    plan: PlanRefShort
    match: MatchOut | None = Field(description="Address lookups only")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "community": {"code": "441302011005", "name": "金源社区"},
                    "grid": {"code": "441302011005003", "name": "长湖网格"},
                    "branch": {"id": 2, "name": "金源社区第二党支部"},
                    "group": None,
                    "member": {
                        "id": 42,
                        "kind": "resident",
                        "role": "field_holder",
                        "display_name": "张*明",
                    },
                    "member_rule": "field",
                    "field": {"id": 7, "name": "长湖街责任田"},
                    "point": {
                        "wgs84": {"lon": 114.4102, "lat": 23.1451},
                        "requested": {"crs": "gcj02", "lon": 114.4156, "lat": 23.1424},
                    },
                    "plan": {"id": 1, "version": 1},
                    "match": None,
                }
            ]
        }
    )


class LookupErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(
        examples=[
            "the point (lon 114.430000, lat 23.105000) is outside every grid of 金源社区 "
            "(441302011005); the nearest grid is 441302011005009 at 1,024 m"
        ]
    )
    field: str | None = Field(default=None, examples=[None])
    status: int | None = Field(
        default=None, description="In batch results only: the item's HTTP status", examples=[404]
    )
    details: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None,
        description="404 outside: point, nearest_grid {community, code, name, distance_m}; "
        "404 address: suggestions; 422: swapped_inside {community, grid, lon, lat} when "
        "swapping lon and lat puts the point in a grid; 422 of a malformed request: a list "
        "of {field, message}",
        examples=[
            {
                "point": {"lon": 114.43, "lat": 23.105},
                "nearest_grid": {
                    "community": "441302011005",
                    "code": "441302011005009",
                    "name": "东湖网格",
                    "distance_m": 1024.4,
                },
            }
        ],
    )


class LookupErrorEnvelope(BaseModel):
    error: LookupErrorBody


class LookupBatchItem(BaseModel):
    """One item: an ``address``, or ``lon`` + ``lat`` (with ``crs``)."""

    address: str | None = Field(default=None, examples=["金源花园3栋"])
    lon: float | None = Field(default=None, examples=[114.4102])
    lat: float | None = Field(default=None, examples=[23.1451])
    crs: str | None = Field(
        default="wgs84", description="wgs84 (default), cgcs2000, gcj02, bd09", examples=["wgs84"]
    )
    community: str | None = Field(
        default=None, description="Only this community code", examples=["441302011005"]
    )


class LookupBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are taken as raw JSON values and checked one by one by the library, so that one
    # malformed item (a string for lon, a number for an item) answers an error in its place
    # instead of failing the batch; the schema still documents LookupBatchItem.
    items: Annotated[
        list[Any],
        WithJsonSchema(
            {
                "type": "array",
                "maxItems": MAX_BATCH,
                # Anything is taken in an item's place and answered in its place (a
                # malformed item gets its error there): the contract says so with ``{}``.
                "items": {"anyOf": [LookupBatchItem.model_json_schema(), {}]},
            }
        ),
    ] = Field(
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH:,} items. Each is checked on its own: a bad item "
        "gets an error in its place and never fails the batch.",
        examples=[
            [
                {"address": "长湖街12号"},
                {"lon": 114.4102, "lat": 23.1451},
                {"lon": 114.4156, "lat": 23.1424, "crs": "gcj02"},
            ]
        ],
    )


class LookupBatchOut(BaseModel):
    results: list[LookupOut | LookupErrorEnvelope] = Field(
        description="One per item, in order: the lookup body, or {error: {...}}"
    )
