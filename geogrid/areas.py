"""Areas above one community: a subdistrict (街道) or a district (区/县), by code.

Officials work over several communities; the maps take their codes comma-separated, and
this turns ``subdistrict=`` or ``district=`` into that list (``communities.subdistrict_code``
and ``district_code``; for Chinese communities the head of the community code).
"""

from __future__ import annotations

from sqlalchemy import Connection

from geogrid.db import queries
from geogrid.errors import NotFound


def area_codes(
    conn: Connection,
    *,
    community: str | None = None,
    subdistrict: str | None = None,
    district: str | None = None,
) -> str | None:
    """The community codes (comma-separated) of the area asked for: ``community`` as given
    (one or more codes), a subdistrict's or a district's communities, or those that meet every
    one of them when several are given (``community`` within ``subdistrict`` within
    ``district``); None when none was asked for (every community). :class:`NotFound` for an
    area without communities, or areas that do not meet."""
    if not subdistrict and not district:
        return community or None
    ids = queries.community_ids_in(
        conn, subdistrict_code=subdistrict or None, district_code=district or None
    )
    field, code = ("subdistrict", subdistrict) if subdistrict else ("district", district)
    if not ids:
        raise NotFound(f"no community in {field} {code!r}", field=field)
    codes = queries.community_codes(conn, community_ids=ids)
    if community:
        asked = [c.strip() for c in community.split(",") if c.strip()]
        outside = [c for c in asked if c not in codes]
        if outside:
            raise NotFound(
                f"community {outside[0]!r} is not in {field} {code!r}", field="community"
            )
        codes = asked
    return ",".join(codes)
