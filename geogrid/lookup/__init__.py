"""Point and address lookups from memory (see :mod:`geogrid.lookup.service`)."""

from geogrid.lookup.service import (
    MAX_BATCH,
    RULE_FIELD,
    RULE_GRID_LEAD,
    CommunityInfo,
    LookupIndex,
    LookupResult,
    LookupService,
    PlanInfo,
    PointLookup,
    PointLookups,
    _Cells,
    mask_name,
    result_row,
)

__all__ = [
    "MAX_BATCH",
    "RULE_FIELD",
    "RULE_GRID_LEAD",
    "CommunityInfo",
    "LookupIndex",
    "LookupResult",
    "LookupService",
    "PlanInfo",
    "PointLookup",
    "PointLookups",
    "_Cells",
    "mask_name",
    "result_row",
]
