"""Stand-in households, one per building: for trying geogrid on a map that has buildings and
addresses but no people (an OpenStreetMap extract).

Each household's door is a point inside its building (``point_on_surface``), its address the
building's street and house number, its ``address_id`` made from the community code and the
building id. Nothing personal: no names, phones or rooms. ``docs/onboarding.md`` uses it.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

COLUMNS = (
    *("address_id", "community", "address", "street_name", "house_number", "building_name"),
    *("lon", "lat"),
)


def households_from_buildings(
    buildings: gpd.GeoDataFrame, streets: pd.DataFrame, *, community_code: str
) -> pd.DataFrame:
    """One household per building of ``buildings`` (``id, name, street_id, street_name,
    house_number`` and geometries, WGS 84), its street's name taken from ``streets`` (``id,
    name``) or, unlinked, from the building; the columns
    of :data:`COLUMNS`, ready for ``geogrid import households``."""
    if not len(buildings):
        return pd.DataFrame(columns=list(COLUMNS))
    doors = shapely.point_on_surface(buildings.geometry.values)
    names = dict(zip(streets["id"], streets["name"], strict=True))
    # The linked street's name, else the address's street as written (OSM addr:street).
    street_names = [
        names.get(s) if pd.notna(s) else (t if isinstance(t, str) else None)
        for s, t in zip(buildings["street_id"], buildings["street_name"], strict=True)
    ]
    numbers = buildings["house_number"].tolist()
    return pd.DataFrame(
        {
            "address_id": [f"{community_code}-B{int(i)}" for i in buildings["id"]],
            "community": community_code,
            # The address as a resident would write it (what `geogrid lookup --file` reads).
            "address": [_address(s, n) for s, n in zip(street_names, numbers, strict=True)],
            "street_name": street_names,
            "house_number": numbers,
            "building_name": buildings["name"].tolist(),
            # 7 decimals: about 1 cm, what the lookup answers with.
            "lon": shapely.get_x(doors).round(7),
            "lat": shapely.get_y(doors).round(7),
        },
        columns=list(COLUMNS),
    )


def _address(street: str | None, number: Any) -> str | None:
    """``Unioninkatu 29``; ``长湖街12号`` for a Chinese street name; None without both."""
    if not isinstance(street, str) or not isinstance(number, str) or not number:
        return None
    if any("\u4e00" <= ch <= "\u9fff" for ch in street):
        return f"{street}{number}" if number.endswith("号") else f"{street}{number}号"
    return f"{street} {number}"
