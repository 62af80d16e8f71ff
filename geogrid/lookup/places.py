"""What a lookup answers: the community, plan, grid, field, member, branch and group of a place.

Frozen value types, built once per index (:class:`~geogrid.lookup.index.LookupIndex`) and
shared by every answer; :class:`PointLookup` is one point's answer and :func:`place_dict` its
part of the ``/v1/lookup`` body (docs/api.md, "Lookup"). Members carry **masked** names only
(:func:`geogrid.privacy.mask_name`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ROLE_FIELD_HOLDER",
    "ROLE_GRID_LEAD",
    "ROLE_MEMBER",
    "RULE_FIELD",
    "RULE_GRID_LEAD",
    "BranchInfo",
    "BuildingInfo",
    "CommunityInfo",
    "FieldInfo",
    "GridInfo",
    "GroupInfo",
    "MemberInfo",
    "PlanInfo",
    "PointLookup",
    "StreetGrid",
    "place_dict",
]

#: ``member_rule``: the holder of the responsibility field covering the point.
RULE_FIELD: Final = "field"
#: ``member_rule``: no field (or a vacant one) covers the point: the grid's lead member.
RULE_GRID_LEAD: Final = "grid_lead"
#: ``member.role``: leads a grid of the active plan (网格长).
ROLE_GRID_LEAD: Final = "grid_lead"
#: ``member.role``: holds a responsibility field (责任田).
ROLE_FIELD_HOLDER: Final = "field_holder"
#: ``member.role``: neither.
ROLE_MEMBER: Final = "member"


@dataclass(frozen=True, slots=True)
class CommunityInfo:
    id: int
    code: str
    name: str
    #: Place names above and of the community (province … community), for address prefixes.
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanInfo:
    id: int
    version: int


@dataclass(frozen=True, slots=True)
class GridInfo:
    id: int
    code: str
    name: str | None
    lead_member_id: int | None


@dataclass(frozen=True, slots=True)
class BranchInfo:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class BuildingInfo:
    id: int
    name: str | None
    compound: str | None


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    name: str
    building: BuildingInfo


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member as the public sees them: no name, only a masked one."""

    id: int
    kind: str
    role: str
    display_name: str


@dataclass(frozen=True, slots=True)
class FieldInfo:
    id: int
    name: str | None
    member_id: int | None


@dataclass(frozen=True, slots=True)
class StreetGrid:
    """A grid a street crosses, with the share of the street's length inside it (0–1)."""

    grid: GridInfo
    share: float


@dataclass(frozen=True, slots=True)
class PointLookup:
    """What covers one WGS 84 point: grid, field, member (and rule), branch, building group."""

    community: CommunityInfo
    plan: PlanInfo
    grid: GridInfo
    field: FieldInfo | None
    member: MemberInfo | None
    member_rule: str
    branch: BranchInfo | None
    group: GroupInfo | None
    lon: float
    lat: float
    #: The place part as JSON without its closing brace, shared by every point with the same
    #: grid, field and building (made once per index; see
    #: :meth:`~geogrid.lookup.result.LookupResult.to_json`).
    place_json: str = dataclasses.field(default="", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The place part of the ``/v1/lookup`` body (docs/api.md)."""
        return place_dict(self)


def place_dict(place: PointLookup) -> dict[str, Any]:
    """The place part of the ``/v1/lookup`` body: everything but the point and the match."""
    grid, field, member, branch, group = (
        place.grid,
        place.field,
        place.member,
        place.branch,
        place.group,
    )
    return {
        "community": {"code": place.community.code, "name": place.community.name},
        "grid": {"code": grid.code, "name": grid.name},
        "branch": None if branch is None else {"id": branch.id, "name": branch.name},
        "group": None
        if group is None
        else {
            "id": group.id,
            "name": group.name,
            "building": {
                "id": group.building.id,
                "name": group.building.name,
                "compound": group.building.compound,
            },
        },
        "member": None
        if member is None
        else {
            "id": member.id,
            "kind": member.kind,
            "role": member.role,
            "display_name": member.display_name,
        },
        "member_rule": place.member_rule,
        "field": None if field is None else {"id": field.id, "name": field.name},
        "plan": {"id": place.plan.id, "version": place.plan.version},
    }
