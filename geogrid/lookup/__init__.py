"""Which grid and member cover this point or address? In-memory lookups of the active plan.

The lookup answers from memory, never by a database query per request. Read it in this
order:

* ``service`` — :class:`LookupService`: every community's index and gazetteer, rebuilt off
  the request path when the data-version counters move; single lookups and batches.
* ``index`` — :class:`LookupIndex`: one community's active plan, the edge and member rules,
  bulk answers (:class:`PointLookups`); ``cells`` — the bucket grid it finds polygons with.
* ``places`` — the frozen values an answer holds (:class:`PointLookup`, :class:`CommunityInfo`
  …); ``result`` — :class:`LookupResult` and the JSON of the API and the CLI.
* ``points`` — incoming coordinates: checked, converted from their CRS to WGS 84.
* ``frames`` — the frames an index and a gazetteer are built from, read from the database.
* ``address`` — the address gazetteer: normalisation, parsing, fuzzy matching (no database).
"""

from geogrid.lookup.index import LookupIndex, PointLookups
from geogrid.lookup.places import RULE_FIELD, RULE_GRID_LEAD, CommunityInfo, PlanInfo, PointLookup
from geogrid.lookup.result import LookupResult, result_row
from geogrid.lookup.service import MAX_BATCH, LookupService
from geogrid.privacy import mask_name

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
    "mask_name",
    "result_row",
]
