"""Areas above one community: a subdistrict (街道) or a district (区/县), by code.

Officials work over several communities; the maps take their codes comma-separated, and
this turns ``subdistrict=`` or ``district=`` into that list (``communities.subdistrict_code``
and ``district_code``; for Chinese communities the head of the community code).
"""

from __future__ import annotations

from sqlalchemy import Connection

from geogrid.db import queries
from geogrid.errors import InvalidInput, NotFound


def area_codes(
    conn: Connection,
    *,
    community: str | None = None,
    subdistrict: str | None = None,
    district: str | None = None,
) -> str | None:
    """The community codes (comma-separated) of the one area asked for: ``community`` as given
    (one or more codes), or a subdistrict's or a district's communities; None when none was
    asked for (every community). :class:`NotFound` for an area without communities."""
    asked = {
        name: value
        for name, value in (
            ("community", community),
            ("subdistrict", subdistrict),
            ("district", district),
        )
        if value
    }
    if len(asked) > 1:
        raise InvalidInput(
            f"name one area: {', '.join(asked)} were given together", field=next(iter(asked))
        )
    if subdistrict is None and district is None:
        return community
    ids = queries.community_ids_in(conn, subdistrict_code=subdistrict, district_code=district)
    field, code = ("subdistrict", subdistrict) if subdistrict else ("district", district)
    if not ids:
        raise NotFound(f"no community in {field} {code!r}", field=field)
    return ",".join(queries.community_codes(conn, community_ids=ids))
