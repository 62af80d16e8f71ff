"""A hand-drawn community for lookups: four square grids (tests/factories.py) plus members,
responsibility fields (one vacant), branches, a building with its party group and streets.

Layout (x = 114.40 + [0, 0.02], y = 23.10 + [0, 0.02]; D = 0.01):

    +---------+---------+      grid 001 (NW) lead 张小明        grid 002 (NE) lead 李华
    |   001   |   002   |        building 1号楼 + 1号楼党小组     field F3 = whole grid: John Smith
    |  [bldg] |   F3    |
    +---------+---------+      grid 003 (SW) lead 王芳           grid 004 (SE) no lead
    | F1 | F4 | F2 |    |        F1 (x < +D/2): 欧阳娜娜          F2 (x < 1.5D): vacant
    |    |----|    |    |        F4 (D/2..D, y < D/2): 张小明
    +---------+---------+      street 长湖街 along y = +0.005 from x +0.001 to +0.019

Branch 第一党支部 sits on 001 and 003, 第二党支部 on 002; none on 004.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, box
from sqlalchemy import Connection, update

from geogrid.db import models as m
from geogrid.db import queries as q
from tests.factories import X0, Y0, D, make_community

#: Full names (personal data): none of them may appear in a public response.
MEMBER_NAMES = {
    "lead_001": "张小明",
    "lead_002": "李华",
    "field_f1": "欧阳娜娜",
    "field_f3": "John Smith",
    "lead_003": "王芳",
}
MASKED = {
    "lead_001": "张*明",
    "lead_002": "李*",
    "field_f1": "欧*娜",
    "field_f3": "J*** S***",
    "lead_003": "王*",
}
CODE = "441302011099"
G1, G2, G3, G4 = (f"{CODE}00{i}" for i in range(1, 5))


#: Households (door points). The doors of 1号楼 lie 5 m south of its wall, outside the
#: footprint, in grid 001; 长湖街5号 is a village house in F1, 18号 in grid 004 (no lead).
HOUSEHOLDS = [
    {"address_id": "T-H-001", "house_number": "12", "building_name": "1号楼", "unit": "1",
     "room": "101", "xy": (X0 + 0.0025, Y0 + 0.01195)},
    {"address_id": "T-H-002", "house_number": "12", "building_name": "1号楼", "unit": "1",
     "room": "102", "xy": (X0 + 0.0026, Y0 + 0.01195)},
    {"address_id": "T-H-003", "house_number": "5", "xy": (X0 + 0.003, Y0 + 0.0052)},
    {"address_id": "T-H-004", "house_number": "18", "xy": (X0 + 0.016, Y0 + 0.0052)},
]  # fmt: skip


@dataclass
class LookupCommunity:
    community_id: int
    plan_id: int
    grids: dict[str, int]
    members: dict[str, int]
    fields: dict[str, int]
    branches: dict[str, int]
    buildings: dict[str, int]
    groups: dict[str, int]
    streets: dict[str, int]
    households: dict[str, int]


def make_lookup_community(
    conn: Connection, *, code: str = CODE, address_prefix: str = ""
) -> LookupCommunity:
    """The community of four squares (``code``); ``address_prefix`` before each household's
    ``address_id`` (unique in the database) for a second copy."""
    cid, plan_id, grids = make_community(conn, code=code)
    g = {k[-3:]: v for k, v in grids.items()}
    member_ids = q.insert_returning_ids(
        conn,
        m.Member,
        [
            {
                "community_id": cid,
                "name": name,
                "kind": "stationed" if key == "field_f3" else "resident",
                "phone": "13800000000",
            }
            for key, name in MEMBER_NAMES.items()
        ],
    )
    members = dict(zip(MEMBER_NAMES, member_ids, strict=True))
    for grid, key in (("001", "lead_001"), ("002", "lead_002"), ("003", "lead_003")):
        conn.execute(update(m.Grid).where(m.Grid.id == g[grid]).values(lead_member_id=members[key]))
    field_rows = [
        ("F1", "field_f1", box(X0, Y0, X0 + D / 2, Y0 + D)),
        ("F2", None, box(X0 + D, Y0, X0 + 1.5 * D, Y0 + D)),
        ("F3", "field_f3", box(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D)),
        ("F4", "lead_001", box(X0 + D / 2, Y0, X0 + D, Y0 + D / 2)),
    ]
    field_ids = q.insert_returning_ids(
        conn,
        m.ResponsibilityField,
        [
            {
                "community_id": cid,
                "name": name,
                "member_id": members[key] if key else None,
                "geom": q.geom_value(MultiPolygon([geom])),
            }
            for name, key, geom in field_rows
        ],
    )
    fields = dict(zip([r[0] for r in field_rows], field_ids, strict=True))
    b1, b2 = q.insert_returning_ids(
        conn, m.Branch, [{"community_id": cid, "name": n} for n in ("第一党支部", "第二党支部")]
    )
    q.bulk_insert(
        conn,
        m.BranchGrid,
        [
            {"branch_id": b1, "grid_id": g["001"]},
            {"branch_id": b1, "grid_id": g["003"]},
            {"branch_id": b2, "grid_id": g["002"]},
        ],
    )
    (street,) = q.insert_returning_ids(
        conn,
        m.Street,
        [
            {
                "community_id": cid,
                "name": "长湖街",
                "kind": "街",
                "geom": q.geom_value(
                    MultiLineString(
                        [LineString([(X0 + 0.001, Y0 + 0.005), (X0 + 0.019, Y0 + 0.005)])]
                    )
                ),
            }
        ],
    )
    bld1, bld2 = q.insert_returning_ids(
        conn,
        m.Building,
        [
            {
                "community_id": cid,
                "name": "1号楼",
                "compound": "金源花园",
                "aliases": ["一栋"],
                "house_number": "12",
                "street_id": street,
                "geom": q.geom_value(
                    MultiPolygon([box(X0 + 0.002, Y0 + 0.012, X0 + 0.003, Y0 + 0.013)])
                ),
            },
            {
                "community_id": cid,
                "name": "2号楼",
                "compound": "金源花园",
                "aliases": [],
                "house_number": None,
                "street_id": None,
                "geom": q.geom_value(
                    MultiPolygon([box(X0 + 0.012, Y0 + 0.012, X0 + 0.013, Y0 + 0.013)])
                ),
            },
        ],
    )
    (grp,) = q.insert_returning_ids(
        conn, m.Group, [{"branch_id": b1, "name": "1号楼党小组", "building_id": bld1}]
    )
    conn.execute(
        update(m.Community)
        .where(m.Community.id == cid)
        .values(province="广东省", city="惠州市", district="惠城区", subdistrict="小金口街道")
    )
    households = q.insert_returning_ids(
        conn,
        m.Household,
        [
            {
                "community_id": cid,
                "address_id": address_prefix + h["address_id"],
                "street_name": "长湖街",
                "street_id": street,
                "house_number": h["house_number"],
                "compound": "金源花园" if h.get("building_name") else None,
                "building_name": h.get("building_name"),
                "building_id": bld1 if h.get("building_name") else None,
                "unit": h.get("unit"),
                "room": h.get("room"),
                "size": 2,
                "geom": q.geom_value(Point(*h["xy"])),
            }
            for h in HOUSEHOLDS
        ],
    )
    return LookupCommunity(
        community_id=cid,
        plan_id=plan_id,
        grids=grids,
        members=members,
        fields=fields,
        branches={"第一党支部": b1, "第二党支部": b2},
        buildings={"1号楼": bld1, "2号楼": bld2},
        groups={"1号楼党小组": grp},
        streets={"长湖街": street},
        households=dict(
            zip([address_prefix + h["address_id"] for h in HOUSEHOLDS], households, strict=True)
        ),
    )


#: Points and what must answer them: (lon, lat) → (grid code, member key or None, rule).
EXPECTED = {
    "F1 in 003": ((X0 + 0.002, Y0 + 0.005), G3, "field_f1", "field"),
    "003 outside fields": ((X0 + 0.007, Y0 + 0.007), G3, "lead_003", "grid_lead"),
    "F2 vacant in 004, no lead": ((X0 + 0.012, Y0 + 0.005), G4, None, "grid_lead"),
    "F3 in 002": ((X0 + 0.015, Y0 + 0.015), G2, "field_f3", "field"),
    "001 no field": ((X0 + 0.005, Y0 + 0.015), G1, "lead_001", "grid_lead"),
    # Fields are the community's, not the grid's (as in the SQL assignment): on an edge the
    # point goes to the lowest grid code and, separately, to the lowest field id covering it.
    "edge 001|002, on F3": ((X0 + D, Y0 + 0.015), G1, "field_f3", "field"),
    "edge 001|003, on F1": ((X0 + 0.005, Y0 + D), G1, "field_f1", "field"),
    "edge 002|004, on F2 (vacant) and F3": ((X0 + 0.015, Y0 + D), G2, "lead_002", "grid_lead"),
    "corner of all four": ((X0 + D, Y0 + D), G1, "lead_001", "grid_lead"),
    "edge F1|F4": ((X0 + D / 2, Y0 + 0.002), G3, "field_f1", "field"),
    "edge 003|004 on F2|F4 (F2 vacant, lower id)": (
        (X0 + D, Y0 + 0.002),
        G3,
        "lead_003",
        "grid_lead",
    ),
    "outer corner": ((X0, Y0), G3, "field_f1", "field"),
}


#: A second, Latin-script community (Helsinki), for swapped coordinates and several communities.
HKI_CODE, HKI_X0, HKI_Y0 = "FI-HKI-001", 24.94, 60.16
HKI_LEAD = "Matti Meikäläinen"


def make_helsinki(conn: Connection) -> tuple[int, int]:
    """One square grid at 24.94–24.96 °E, 60.16–60.17 °N with a lead member; ids (community,
    grid). Swapped, its coordinates are valid (lon 60.16, lat 24.94) but fall in no grid."""
    (cid,) = q.insert_returning_ids(
        conn,
        m.Community,
        [
            {
                "code": HKI_CODE,
                "name": "Kluuvi",
                "country": "FI",
                "timezone": "Europe/Helsinki",
                "boundary": q.geom_value(
                    MultiPolygon([box(HKI_X0, HKI_Y0, HKI_X0 + 0.02, HKI_Y0 + 0.01)])
                ),
                "created_at": m.utcnow(),
            }
        ],
    )
    (lead,) = q.insert_returning_ids(
        conn, m.Member, [{"community_id": cid, "name": HKI_LEAD, "kind": "stationed"}]
    )
    plan_id = q.create_plan(conn, community_id=cid, name="Kluuvi plan")
    (gid,) = q.insert_returning_ids(
        conn,
        m.Grid,
        [
            {
                "plan_id": plan_id,
                "code": "KLUUVI-1",
                "name": "Kluuvi 1",
                "lead_member_id": lead,
                "geom": q.geom_value(
                    MultiPolygon([box(HKI_X0, HKI_Y0, HKI_X0 + 0.02, HKI_Y0 + 0.01)])
                ),
            }
        ],
    )
    q.mark_plan_active(conn, community_id=cid, plan_id=plan_id)
    (street,) = q.insert_returning_ids(
        conn,
        m.Street,
        [
            {
                "community_id": cid,
                "name": "Unioninkatu",
                "kind": None,
                "geom": q.geom_value(
                    MultiLineString(
                        [
                            LineString(
                                [(HKI_X0 + 0.01, HKI_Y0 + 0.001), (HKI_X0 + 0.01, HKI_Y0 + 0.009)]
                            )
                        ]
                    )
                ),
            }
        ],
    )
    add_address = {
        "community_id": cid,
        "address_id": "FI-HKI-29",
        "street_name": "Unioninkatu",
        "street_id": street,
        "house_number": "29",
        "compound": None,
        "building_name": None,
        "building_id": None,
        "unit": None,
        "room": None,
        "size": 1,
        "geom": q.geom_value(Point(HKI_X0 + 0.0101, HKI_Y0 + 0.005)),
    }
    q.insert_returning_ids(conn, m.Household, [add_address])
    return cid, gid
