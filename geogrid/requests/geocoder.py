"""The geocoder a request intake uses: the app's lookup service resolves a written address.

Kept in the library (not in a route) so the JSON API and Open311 intake share one adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geogrid.requests.workflow import Geocoded, Geocoder

if TYPE_CHECKING:
    from geogrid.lookup import LookupService


def lookup_geocoder(service: LookupService | None) -> Geocoder | None:
    """A :data:`Geocoder` backed by ``service`` (``None`` when no lookup service runs).

    A failed lookup raises the lookup's domain error (``NotFound``), which the intake
    reports as the address it could not place."""
    if service is None:
        return None

    def geocode(address: str, community: str | None) -> Geocoded:
        result = service.lookup(address=address, community=community)
        match = result.match
        return Geocoded(
            float(result.place.lon),
            float(result.place.lat),
            getattr(match, "address_id", None) if match is not None else None,
        )

    return geocode
