"""The frames a lookup index and an address gazetteer are built from, read from the database.

Every read is one of the shared queries (``geogrid.db.queries``, "lookup"); here they are
only gathered per community (:func:`read_frames`) and reshaped for the gazetteer
(:func:`gazetteer_frames`). :func:`int_or_none` and :func:`str_or_none` read the frames'
cells, where pandas writes a missing value as NaN (:func:`geogrid.values.plain`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import shapely
from geopandas import GeoDataFrame
from sqlalchemy import Connection

from geogrid.db import queries
from geogrid.lookup.places import CommunityInfo, PlanInfo
from geogrid.values import plain

__all__ = ["Frames", "gazetteer_frames", "int_or_none", "read_frames", "str_or_none"]


def int_or_none(value: Any) -> int | None:
    value = plain(value)
    return None if value is None else int(value)


def str_or_none(value: Any) -> str | None:
    value = plain(value)
    return None if value is None else str(value)


@dataclass
class Frames:
    """One community's frames (WGS 84); without an active plan, ``plan`` and its frames are None."""

    plan: PlanInfo | None
    grids: GeoDataFrame | None = None
    fields: GeoDataFrame | None = None
    members: pd.DataFrame | None = None
    branch_grids: pd.DataFrame | None = None
    buildings: GeoDataFrame | None = None
    groups: pd.DataFrame | None = None
    streets: GeoDataFrame | None = None


def read_frames(conn: Connection, community: CommunityInfo, *, plan_only: bool = False) -> Frames:
    """The frames of ``community``'s active plan, its buildings and streets (one snapshot:
    the caller's transaction)."""
    plan = queries.active_plan(conn, community_id=community.id)
    frames = Frames(plan=None if plan is None else PlanInfo(int(plan.id), int(plan.version)))
    if plan is not None:
        frames.grids = queries.grids_frame(conn, plan_id=plan.id)
        frames.fields = queries.fields_frame(conn, community_id=community.id)
        frames.members = queries.members_frame(conn, community_id=community.id)
        frames.branch_grids = queries.branch_grids_frame(conn, plan_id=plan.id)
        frames.groups = queries.party_groups_frame(conn, community_id=community.id)
    if not plan_only:
        frames.buildings = queries.buildings_frame(conn, community_id=community.id)
        frames.streets = queries.streets_frame(conn, community_id=community.id)
    return frames


def gazetteer_frames(
    conn: Connection, community: CommunityInfo, frames: Frames
) -> dict[str, pd.DataFrame]:
    """The frames ``geogrid.lookup.address.Gazetteer.from_frames`` takes (points as lon/lat)."""
    households = queries.address_households_frame(conn, community_id=community.id)
    streets = frames.streets if frames.streets is not None else GeoDataFrame()
    buildings = frames.buildings if frames.buildings is not None else GeoDataFrame()
    street_names = (
        dict(zip(streets["id"].astype(int), streets["name"], strict=True)) if len(streets) else {}
    )
    if len(streets):
        middle = shapely.line_interpolate_point(streets.geometry.to_numpy(), 0.5, normalized=True)
        street_rows = pd.DataFrame(
            {
                "id": streets["id"].astype(int),
                "name": streets["name"],
                "kind": streets["kind"],
                "lon": shapely.get_x(middle),
                "lat": shapely.get_y(middle),
            }
        )
    else:
        street_rows = pd.DataFrame({column: [] for column in ("id", "name", "kind", "lon", "lat")})
    if len(buildings):
        inside = shapely.point_on_surface(buildings.geometry.to_numpy())
        building_rows = pd.DataFrame(
            {
                "id": buildings["id"].astype(int),
                "name": buildings["name"],
                "compound": buildings["compound"],
                "aliases": [
                    list(names) if isinstance(names, list | tuple) else []
                    for names in buildings["aliases"]
                ],
                # The linked street's name, else the address's street as written.
                "street_name": [
                    street_names.get(
                        int_or_none(street_id) or -1, text if isinstance(text, str) else None
                    )
                    for street_id, text in zip(
                        buildings["street_id"], buildings["street_name"], strict=True
                    )
                ],
                "house_number": buildings["house_number"],
                "lon": shapely.get_x(inside),
                "lat": shapely.get_y(inside),
            }
        )
    else:
        building_rows = pd.DataFrame(
            {
                column: []
                for column in (
                    *("id", "name", "compound", "aliases"),
                    *("street_name", "house_number", "lon", "lat"),
                )
            }
        )
    return {"households": households, "buildings": building_rows, "streets": street_rows}
