"""An answer as the API and the CLI write it: :class:`LookupResult` and its JSON.

:meth:`LookupResult.to_dict` is the body of ``GET /v1/lookup`` (docs/api.md, "Lookup");
:meth:`LookupResult.to_json` writes the same text faster, reusing the place JSON that each
index caches; :func:`result_row` gives the columns ``geogrid lookup --file`` adds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from geogrid.errors import GeogridError
from geogrid.lookup.address import AddressMatch, Candidate
from geogrid.lookup.places import GridInfo, PointLookup, StreetGrid, place_dict

__all__ = [
    "COORD_DECIMALS",
    "LookupResult",
    "compact_json",
    "match_dict",
    "result_row",
    "round_coord",
]

#: Decimals of coordinates in answers (1e-7° ≈ 1 cm).
COORD_DECIMALS: Final = 7


def round_coord(value: float) -> float:
    """A coordinate as answers write it (:data:`COORD_DECIMALS`)."""
    return round(float(value), COORD_DECIMALS)


def compact_json(data: Any) -> str:
    """Compact JSON, UTF-8 text as is (the API's bodies)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class LookupResult:
    """One answer of :meth:`~geogrid.lookup.service.LookupService.lookup`: the place, the
    point, the address match."""

    place: PointLookup
    crs: str
    requested_lon: float
    requested_lat: float
    match: AddressMatch | None = None
    street_grids: tuple[StreetGrid, ...] | None = None
    #: The grid of each of ``match.candidates`` (None outside every grid).
    candidate_grids: tuple[GridInfo | None, ...] = ()

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON, reusing the place's cached JSON.

        Same text as ``json.dumps(to_dict(), ensure_ascii=False, separators=(",", ":"))``
        (floats are written by ``repr`` in both; tested), several times faster.
        """
        place = self.place
        if not place.place_json:
            return compact_json(self.to_dict())
        match = (
            "null"
            if self.match is None
            else compact_json(match_dict(self.match, self.street_grids, self.candidate_grids))
        )
        lon, lat = round_coord(place.lon), round_coord(place.lat)
        requested_lon, requested_lat = (
            round_coord(self.requested_lon),
            round_coord(self.requested_lat),
        )
        return (
            f'{place.place_json},"point":{{"wgs84":{{"lon":{lon!r},"lat":{lat!r}}},'
            f'"requested":{{"crs":{compact_json(self.crs)},"lon":{requested_lon!r},'
            f'"lat":{requested_lat!r}}}}},"match":{match}}}'
        )

    def to_dict(self) -> dict[str, Any]:
        """The body of ``GET /v1/lookup`` (docs/api.md, "Lookup")."""
        out = place_dict(self.place)
        out["point"] = {
            "wgs84": {"lon": round_coord(self.place.lon), "lat": round_coord(self.place.lat)},
            "requested": {
                "crs": self.crs,
                "lon": round_coord(self.requested_lon),
                "lat": round_coord(self.requested_lat),
            },
        }
        out["match"] = (
            None
            if self.match is None
            else match_dict(self.match, self.street_grids, self.candidate_grids)
        )
        return out


def match_dict(
    match: AddressMatch,
    street_grids: tuple[StreetGrid, ...] | None,
    candidate_grids: Sequence[GridInfo | None] = (),
) -> dict[str, Any]:
    """The ``match`` part of an address answer (also in the details of its errors)."""
    grids = list(candidate_grids) + [None] * (len(match.candidates) - len(candidate_grids))
    return {
        "level": match.level,
        "confidence": round(float(match.confidence), 3),
        "normalized": match.normalized,
        "candidates": [
            _candidate_dict(candidate, grid)
            for candidate, grid in zip(match.candidates, grids, strict=True)
        ],
        "street_grids": None
        if street_grids is None
        else [
            {"code": crossed.grid.code, "name": crossed.grid.name, "share": crossed.share}
            for crossed in street_grids
        ],
    }


def _candidate_dict(candidate: Candidate, grid: GridInfo | None) -> dict[str, Any]:
    """A candidate of an ambiguous match: its label is building level at most (never a unit
    or room, ``geogrid.lookup.address``), its point in WGS 84 and the grid covering it."""
    return {
        "level": candidate.level,
        "label": candidate.label,
        "confidence": round(float(candidate.confidence), 3),
        "lon": round_coord(candidate.lon),
        "lat": round_coord(candidate.lat),
        "grid": None if grid is None else {"code": grid.code, "name": grid.name},
    }


def result_row(result: LookupResult | GeogridError) -> dict[str, Any]:
    """The columns ``geogrid lookup --file`` adds to each row (docs/api.md)."""
    if isinstance(result, GeogridError):
        return {
            "grid_code": "",
            "grid_name": "",
            "member_id": "",
            "member_display_name": "",
            "member_rule": "",
            "match_level": "",
            "match_confidence": "",
            "error": f"{result.code}: {result.message}",
        }
    place = result.place
    return {
        "grid_code": place.grid.code,
        "grid_name": place.grid.name or "",
        "member_id": "" if place.member is None else place.member.id,
        "member_display_name": "" if place.member is None else place.member.display_name,
        "member_rule": place.member_rule,
        "match_level": "" if result.match is None else result.match.level,
        "match_confidence": ""
        if result.match is None
        else round(float(result.match.confidence), 3),
        "error": "",
    }
