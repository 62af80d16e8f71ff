"""geogrid.lookup.address: normalisation, parsing and the in-memory gazetteer (no database).

Two tiny hand-made gazetteers: a Chinese one modelled on the demo community (two compounds
that both have a 3栋, village houses on 长湖街, a street 三元里 whose name holds a numeral)
and a Finnish one in Latin script (Helsinki, staircase letter + flat number).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd
import pytest

from geogrid.errors import InvalidInput, NotFound
from geogrid.lookup.address import (
    COARSE_FACTOR,
    RANGE_FACTOR,
    SKIPPED_TEXT_FACTOR,
    UNRESOLVED_DETAIL_FACTOR,
    AddressMatch,
    Candidate,
    Gazetteer,
    ParsedAddress,
    normalize_address,
    parse_address,
)

PREFIX = "广东省惠州市惠城区小金口街道金源社区"

HOUSEHOLD_COLUMNS = [
    "id", "address_id", "street_name", "house_number", "compound", "building_name", "unit",
    "room", "building_id", "street_id", "lon", "lat",
]  # fmt: skip
BUILDING_COLUMNS = [
    "id", "name", "compound", "aliases", "street_name", "house_number", "lon", "lat",
]  # fmt: skip
STREET_COLUMNS = ["id", "name", "kind", "lon", "lat"]


def households_frame(rows: list[tuple[object, ...]], prefix: str) -> pd.DataFrame:
    """Household rows without their address_id, which is made from the id (H1001, …)."""
    columns = [c for c in HOUSEHOLD_COLUMNS if c != "address_id"]
    frame = pd.DataFrame(rows, columns=columns)
    frame.insert(1, "address_id", [f"{prefix}{i}" for i in frame["id"]])
    return frame


def cn_frames() -> dict[str, pd.DataFrame]:
    """金源花园 (alias 金源小区, 3栋 and 5栋) and 翠林华庭 (3栋, 1栋 alias 翠林会所) share
    the building name 3栋; 长湖街12号 is a one-household village house, 长湖街14号 holds two
    rented rooms; 惠城路 starts like the district 惠城区."""
    streets = pd.DataFrame(
        [
            (1, "长湖街", "街", 114.400, 23.100),
            (2, "金源路", "路", 114.410, 23.100),
            (3, "金山路", "路", 114.420, 23.100),
            (4, "三元里", "街", 114.430, 23.100),
            (5, "惠城路", "路", 114.440, 23.100),
        ],
        columns=STREET_COLUMNS,
    )
    buildings = pd.DataFrame(
        [
            (101, "3栋", "金源花园", ["金源小区"], "金源路", "88号", 114.4110, 23.1010),
            (102, "5栋", "金源花园", ["金源小区"], "金源路", "88号", 114.4120, 23.1010),
            (103, "3栋", "翠林华庭", [], "金山路", "6号", 114.4210, 23.1010),
            (109, "1栋", "翠林华庭", ["翠林会所"], "金山路", "6号", 114.4220, 23.1010),
            (104, None, None, [], "长湖街", "12号", 114.4010, 23.1010),
            (106, None, None, [], "长湖街", "14号", 114.4020, 23.1010),
            (107, None, None, [], "三元里", "3号", 114.4310, 23.1010),
        ],
        columns=BUILDING_COLUMNS,
    )
    households = households_frame(
        [
            (1001, "金源路", "88号", "金源花园", "3栋", "2单元", "502", 101, 2, 114.4111, 23.1011),
            (1002, "金源路", "88号", "金源花园", "3栋", "2单元", "501", 101, 2, 114.4111, 23.1012),
            (1003, "金源路", "88号", "金源花园", "3栋", "1单元", "502", 101, 2, 114.4112, 23.1011),
            (1004, "金源路", "88号", "金源花园", "5栋", "1单元", "101", 102, 2, 114.4121, 23.1011),
            (1005, "金山路", "6号", "翠林华庭", "3栋", "2单元", "502", 103, 3, 114.4211, 23.1011),
            (1006, "长湖街", "12号", None, None, None, None, 104, 1, 114.4011, 23.1011),
            (1007, "长湖街", "14号", None, None, None, "101", 106, 1, 114.4021, 23.1011),
            (1008, "长湖街", "14号", None, None, None, "102", 106, 1, 114.4021, 23.1012),
            (1009, "三元里", "3号", None, None, None, None, 107, 4, 114.4311, 23.1011),
        ],
        "H",
    )  # fmt: skip
    return {"households": households, "buildings": buildings, "streets": streets}


def cn_gazetteer() -> Gazetteer:
    return Gazetteer.from_frames(**cn_frames(), prefixes=[PREFIX])


def fi_frames() -> dict[str, pd.DataFrame]:
    """Helsinki: Unioninkatu 29 (staircases A and B), Mannerheimintie 5, Mäkelänkatu 2."""
    streets = pd.DataFrame(
        [
            (11, "Unioninkatu", None, 24.950, 60.170),
            (12, "Mannerheimintie", None, 24.930, 60.180),
            (13, "Mäkelänkatu", None, 24.950, 60.200),
        ],
        columns=STREET_COLUMNS,
    )
    buildings = pd.DataFrame(
        [
            (201, None, None, [], "Unioninkatu", "29", 24.9510, 60.1710),
            (202, None, None, [], "Mannerheimintie", "5", 24.9310, 60.1810),
            (203, None, None, ["Kallion kirjasto"], "Mäkelänkatu", "2", 24.9510, 60.2010),
        ],
        columns=BUILDING_COLUMNS,
    )
    households = households_frame(
        [
            (2001, "Unioninkatu", "29", None, None, "B", "12", 201, 11, 24.9511, 60.1711),
            (2002, "Unioninkatu", "29", None, None, "A", "1", 201, 11, 24.9512, 60.1711),
            (2003, "Mannerheimintie", "5", None, None, "A", "3", 202, 12, 24.9311, 60.1811),
        ],
        "F",
    )  # fmt: skip
    return {"households": households, "buildings": buildings, "streets": streets}


def fi_gazetteer() -> Gazetteer:
    return Gazetteer.from_frames(**fi_frames(), prefixes=["Helsinki"])


@pytest.fixture(scope="module")
def cn() -> Gazetteer:
    return cn_gazetteer()


@pytest.fixture(scope="module")
def fi() -> Gazetteer:
    return fi_gazetteer()


# --------------------------------------------------------------------------------------------
# normalize_address
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # full width → half width, spaces and punctuation
        ("长湖街１２号", "长湖街12号"),
        ("长湖街 12 号", "长湖街12号"),
        ("长湖街\u300012号", "长湖街12号"),  # ideographic space
        ("金源花园·3栋，2单元。", "金源花园3栋2单元"),
        ("（金源花园）３栋", "金源花园3栋"),
        # Chinese numerals in number contexts
        ("十二号", "12号"),
        ("长湖街十二号", "长湖街12号"),
        ("三单元", "3单元"),
        ("五〇二室", "502室"),
        ("五零二室", "502室"),
        ("二十三栋", "23栋"),
        ("一百零五号", "105号"),
        ("两百号", "200号"),
        ("三百二十号", "320号"),
        ("幺零二室", "102室"),
        ("壹拾贰号", "12号"),
        ("第三栋", "3栋"),
        ("第3栋", "3栋"),
        ("二单元五〇二", "2单元502"),  # the room after the unit, without 室
        # …but not inside names
        ("三元里", "三元里"),
        ("三元里三号", "三元里3号"),
        ("三元里三单元", "三元里3单元"),
        ("五一路", "五一路"),
        ("上塘一巷", "上塘一巷"),
        ("上塘一巷十号", "上塘一巷10号"),
        ("十里铺", "十里铺"),
        # building, unit, room variants
        ("金源花园三幢二单元502室", "金源花园3栋2单元502室"),
        ("3幢", "3栋"),
        ("3座", "3栋"),
        ("A座", "a栋"),
        ("Ａ座", "a栋"),
        ("3号楼", "3栋"),
        ("3栋楼", "3栋"),
        ("3#楼", "3栋"),
        ("3#", "3栋"),
        ("三#楼", "3栋"),
        ("502房", "502室"),
        ("长湖街12號", "长湖街12号"),  # traditional marker
        # sub-numbers: the numeral after 之/附 of a house number
        ("长湖街12号之一", "长湖街12号之1"),
        ("长湖街16号附一", "长湖街16号附1"),
        ("长湖街12号附近", "长湖街12号附近"),
        # building-unit-room written with dashes
        ("金源花园3-2-502", "金源花园3栋2单元502室"),
        ("3-2-502", "3栋2单元502室"),
        ("金源花园3栋2-502", "金源花园3栋2单元502室"),
        # Latin script: lower case, no diacritics, words kept apart by "-"
        ("Unioninkatu 29", "unioninkatu-29"),
        ("Unioninkatu 29 B 12", "unioninkatu-29-b-12"),
        ("UNIONINKATU  29,B 12.", "unioninkatu-29-b-12"),
        ("ＵＮＩＯＮＩＮＫＡＴＵ　２９", "unioninkatu-29"),
        ("Mäkelänkatu 5", "makelankatu-5"),
        ("Unioninkatu 3-2-502", "unioninkatu-3-2-502"),  # no Chinese dash rule in Latin text
        ("", ""),
        ("，。！", ""),
    ],
)
def test_normalize_address_rules(text: str, expected: str) -> None:
    assert normalize_address(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PREFIX + "长湖街12号", "长湖街12号"),  # complete
        ("惠州市惠城区长湖街12号", "长湖街12号"),  # partial
        ("惠城区长湖街12号", "长湖街12号"),
        ("金源社区长湖街12号", "长湖街12号"),
        ("小金口街道金源社区长湖街12号", "长湖街12号"),
        ("广东惠州长湖街12号", "长湖街12号"),  # abbreviated, without 省/市
        ("惠州惠城长湖街12号", "长湖街12号"),
        ("惠城区惠州市长湖街12号", "长湖街12号"),  # any order
        ("小金口街道办金源居委会长湖街12号", "长湖街12号"),  # 街道办, 居委会
        ("广东省 惠州市 惠城区 金源花园3座", "金源花园3栋"),
        # bare subdistrict and community names are not prefixes: they begin local names
        ("金源花园3栋", "金源花园3栋"),
        ("金源路88号", "金源路88号"),
        ("长湖街12号", "长湖街12号"),
    ],
)
def test_normalize_address_strips_prefixes(text: str, expected: str) -> None:
    assert normalize_address(text, prefixes=[PREFIX]) == expected


def test_normalize_address_latin_prefix_and_trailing_city() -> None:
    prefixes = ["Helsinki", "Helsingfors"]
    assert normalize_address("Helsinki, Unioninkatu 29", prefixes=prefixes) == "unioninkatu-29"
    assert normalize_address("Unioninkatu 29, 00170 Helsinki", prefixes=prefixes) == (
        "unioninkatu-29"
    )
    # a prefix is stripped only as a whole word
    assert normalize_address("Helsinkikatu 1", prefixes=prefixes) == "helsinkikatu-1"


def test_gazetteer_does_not_strip_a_prefix_out_of_a_known_name(cn: Gazetteer) -> None:
    # 惠城 is an abbreviation of 惠城区, but 惠城路 is a street of the community (the
    # standalone normalize_address cannot know that; the gazetteer's normalize does).
    assert cn.normalize("惠城路") == "惠城路"
    m = cn.match("惠城路")
    assert (m.level, m.street_id, m.confidence) == ("street", 5, 1.0)
    assert cn.normalize("惠城区惠城路") == "惠城路"


# --------------------------------------------------------------------------------------------
# parse_address
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("normalized", "expected"),
    [
        ("长湖街12号", ParsedAddress(street="长湖街", house_number="12")),
        (
            "金源花园3栋2单元502室",
            ParsedAddress(compound="金源花园", building="3", unit="2", room="502"),
        ),
        ("金源花园3栋502", ParsedAddress(compound="金源花园", building="3", room="502")),
        (
            "金源路88号金源花园3栋2单元502室",
            ParsedAddress(
                street="金源路",
                house_number="88",
                compound="金源花园",
                building="3",
                unit="2",
                room="502",
            ),
        ),
        (
            "unioninkatu-29-b-12",
            ParsedAddress(street="unioninkatu", house_number="29", unit="b", room="12"),
        ),
        (
            "unioninkatu-29-b12",
            ParsedAddress(street="unioninkatu", house_number="29", unit="b", room="12"),
        ),
        ("3栋2单元502室", ParsedAddress(building="3", unit="2", room="502")),
        ("不知道", ParsedAddress()),
    ],
)
def test_parse_address(normalized: str, expected: ParsedAddress) -> None:
    got = parse_address(
        normalized,
        known_streets=["长湖街", "金源路", "Unioninkatu"],
        known_compounds=["金源花园"],
    )
    assert got == expected


# --------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        PREFIX + "长湖街12号",
        "长湖街12号",
        "长湖街十二号",
        "长湖街１２号",
        "长湖街 12 号",
        "广东惠州长湖街12号",
    ],
)
def test_door_by_street_and_number(cn: Gazetteer, text: str) -> None:
    m = cn.match(text)
    assert (m.level, m.confidence, m.household_id, m.address_id) == ("door", 1.0, 1006, "H1006")
    assert (m.building_id, m.street_id) == (104, 1)
    assert (m.lon, m.lat) == (114.4011, 23.1011)  # the door, not the building
    assert m.normalized == "长湖街12号"
    assert m.candidates == ()


@pytest.mark.parametrize(
    "text",
    [
        "金源花园3栋2单元502",
        "金源花园3栋2单元502室",
        "金源花园三幢二单元502室",
        "金源花园三幢二单元五〇二",
        "金源花园3-2-502",
        "金源小区3栋2单元502室",  # compound alias
        "金源路88号金源花园3栋2单元502室",  # street address and compound
        "惠城区金源花园3号楼2单元502房",
    ],
)
def test_door_by_compound_building_unit_room(cn: Gazetteer, text: str) -> None:
    m = cn.match(text)
    assert (m.level, m.confidence, m.household_id, m.building_id) == ("door", 1.0, 1001, 101)


@pytest.mark.parametrize(
    "text", ["金源花园3栋", "金源花园3#楼", "惠城区金源花园3座", "金源花园三幢", "金源小区3栋"]
)
def test_building_by_compound_and_building(cn: Gazetteer, text: str) -> None:
    m = cn.match(text)
    assert (m.level, m.confidence, m.building_id, m.household_id) == ("building", 1.0, 101, None)
    assert (m.lon, m.lat) == (114.4110, 23.1010)  # the building's representative point
    assert m.street_id == 2


def test_building_by_street_and_number(cn: Gazetteer) -> None:
    # Two households live at 长湖街14号: the number names the building, not a door.
    m = cn.match("长湖街14号")
    assert (m.level, m.confidence, m.building_id, m.household_id) == ("building", 1.0, 106, None)
    door = cn.match("长湖街14号102")
    assert (door.level, door.household_id) == ("door", 1008)


def test_building_by_alias(cn: Gazetteer) -> None:
    m = cn.match("翠林会所")
    assert (m.level, m.confidence, m.building_id) == ("building", 1.0, 109)


@pytest.mark.parametrize("text", ["长湖街", "惠城区长湖街", " 长 湖 街 "])
def test_street_alone_answers_at_street_level(cn: Gazetteer, text: str) -> None:
    m = cn.match(text)
    assert (m.level, m.confidence, m.street_id) == ("street", 1.0, 1)
    assert (m.lon, m.lat) == (114.400, 23.100)  # the street's middle point
    assert (m.household_id, m.building_id, m.address_id) == (None, None, None)


def test_name_with_numeral_is_not_converted(cn: Gazetteer) -> None:
    m = cn.match("三元里三号")
    assert m.normalized == "三元里3号"
    assert (m.level, m.household_id, m.street_id) == ("door", 1009, 4)
    assert cn.match("三元里").street_id == 4


def test_coarser_answers(cn: Gazetteer) -> None:
    # An unknown number on a known street: the street, marked coarse.
    m = cn.match("长湖街99号")
    assert (m.level, m.street_id, m.confidence) == ("street", 1, COARSE_FACTOR)
    # A compound alone, or with an unknown building: its central building, the others listed.
    for text in ("金源花园", "金源花园8栋"):
        m = cn.match(text)
        assert (m.level, m.confidence) == ("building", COARSE_FACTOR)
        assert {c.building_id for c in m.candidates} == {101, 102}
    # A room that is not there: the building, with its confidence lowered.
    m = cn.match("金源花园3栋9单元999")
    assert (m.level, m.building_id, m.confidence) == ("building", 101, UNRESOLVED_DETAIL_FACTOR)


def test_unknown_leading_text_is_skipped_with_lower_confidence(cn: Gazetteer) -> None:
    m = cn.match("某某镇长湖街12号")
    assert (m.level, m.household_id, m.confidence) == ("door", 1006, SKIPPED_TEXT_FACTOR)


# --------------------------------------------------------------------------------------------
# Ambiguity
# --------------------------------------------------------------------------------------------


def test_building_number_in_two_compounds_is_ambiguous(cn: Gazetteer) -> None:
    m = cn.match("3栋")
    assert m.level == "building"
    assert m.confidence == 0.5
    assert m.building_id == 101  # the first by id
    assert [(c.label, c.building_id, c.confidence) for c in m.candidates] == [
        ("金源花园3栋", 101, 0.5),
        ("翠林华庭3栋", 103, 0.5),
    ]


@pytest.mark.parametrize("text", ["3栋2单元502", "3-2-502", "三栋二单元五〇二室"])
def test_door_in_two_compounds_is_ambiguous(cn: Gazetteer, text: str) -> None:
    m = cn.match(text)
    assert (m.level, m.confidence, m.household_id) == ("door", 0.5, 1001)
    assert [c.label for c in m.candidates] == ["金源花园3栋", "翠林华庭3栋"]
    assert all(c.level == "building" for c in m.candidates)


def test_room_without_unit_in_two_units_answers_the_building(cn: Gazetteer) -> None:
    # 502 exists in units 1 and 2 of 金源花园3栋: the building is sure, the door is not.
    m = cn.match("金源花园3栋502")
    assert (m.level, m.building_id, m.household_id) == ("building", 101, None)
    assert m.confidence == UNRESOLVED_DETAIL_FACTOR
    # …and a room that exists once is its door.
    assert cn.match("金源花园3栋501").household_id == 1002


# --------------------------------------------------------------------------------------------
# Typos (fuzzy)
# --------------------------------------------------------------------------------------------


def test_typo_in_street(cn: Gazetteer) -> None:
    m = cn.match("长糊街12号")
    assert (m.level, m.household_id) == ("fuzzy", 1006)
    assert m.confidence == pytest.approx(2 / 3, abs=1e-4)  # rapidfuzz ratio 66.7


def test_typo_in_compound(cn: Gazetteer) -> None:
    m = cn.match("金源花圆3栋")
    assert (m.level, m.building_id, m.confidence) == ("fuzzy", 101, 0.75)
    door = cn.match("金源花圆3栋2单元502")
    assert (door.level, door.household_id) == ("fuzzy", 1001)


def test_street_without_its_kind_is_found_fuzzily(cn: Gazetteer) -> None:
    m = cn.match("长湖12号")
    assert (m.level, m.household_id) == ("fuzzy", 1006)
    assert 0 < m.confidence < 1


def test_equally_close_names_share_the_confidence(cn: Gazetteer) -> None:
    # 金川路 is one character from both 金山路 and 金源路.
    m = cn.match("金川路")
    assert m.level == "fuzzy"
    assert m.confidence == pytest.approx(1 / 3, abs=1e-4)
    assert {c.label for c in m.candidates} == {"金山路", "金源路"}


# --------------------------------------------------------------------------------------------
# Latin script
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Unioninkatu 29",
        "unioninkatu 29",
        "Helsinki, Unioninkatu 29",
        "Unioninkatu 29, 00170 Helsinki",
    ],
)
def test_latin_building(fi: Gazetteer, text: str) -> None:
    m = fi.match(text)
    assert (m.level, m.confidence, m.building_id, m.street_id) == ("building", 1.0, 201, 11)


@pytest.mark.parametrize(
    "text",
    ["unioninkatu 29 B 12", "Unioninkatu 29 b12", "Unioninkatu 29B 12", "Unioninkatu 29 B as. 12"],
)
def test_latin_door(fi: Gazetteer, text: str) -> None:
    m = fi.match(text)
    assert (m.level, m.confidence, m.household_id, m.address_id) == ("door", 1.0, 2001, "F2001")


def test_latin_street_alias_diacritics_and_typo(fi: Gazetteer) -> None:
    m = fi.match("Unioninkatu")
    assert (m.level, m.street_id, m.confidence) == ("street", 11, 1.0)
    assert fi.match("Makelankatu 2").building_id == 203  # typed without diacritics
    assert fi.match("Kallion kirjasto").building_id == 203  # building alias
    typo = fi.match("Unionkatu 29")
    assert (typo.level, typo.building_id) == ("fuzzy", 201)
    assert typo.confidence == 0.9
    labels = {c.label for c in fi.match("Unioninkatu 29 B").candidates}
    assert labels <= {"Unioninkatu 29"}


def test_latin_word_tail_is_not_a_name(fi: Gazetteer) -> None:
    # "…inkatu" ends many Finnish street names; only whole words may be skipped.
    with pytest.raises(NotFound):
        fi.match("Aleksanterinkatu 1")


# --------------------------------------------------------------------------------------------
# Not found, invalid input
# --------------------------------------------------------------------------------------------


def test_not_found_with_suggestions(cn: Gazetteer) -> None:
    with pytest.raises(NotFound) as info:
        cn.match("金源大道1号")
    err = info.value
    assert err.field == "address"
    assert err.details["normalized"] == "金源大道1号"
    suggestions = err.details["suggestions"]
    assert suggestions, "the closest names are suggested"
    assert suggestions[0]["label"] == "金源路"
    assert set(suggestions[0]) == {f.name for f in dataclasses.fields(Candidate)}
    assert all(0 < s["confidence"] < 1 for s in suggestions)
    assert err.to_dict()["code"] == "not_found"


def test_not_found_without_anything_close(cn: Gazetteer) -> None:
    with pytest.raises(NotFound) as info:
        cn.match("Baker Street 221b")
    assert info.value.details["suggestions"] == []


@pytest.mark.parametrize("text", ["", "   ", "，。、", "长" * 201])
def test_invalid_input(cn: Gazetteer, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        cn.match(text)
    assert info.value.field == "address"


def test_longest_accepted_input(cn: Gazetteer) -> None:
    assert cn.match(" " * 194 + "长湖街12号").household_id == 1006  # 200 characters


@pytest.mark.parametrize("limit", [0, 51])
def test_invalid_limit(cn: Gazetteer, limit: int) -> None:
    with pytest.raises(InvalidInput) as info:
        cn.match("长湖街", limit=limit)
    assert info.value.field == "limit"


def test_limit_caps_candidates(cn: Gazetteer) -> None:
    assert len(cn.match("3栋", limit=1).candidates) == 1


# --------------------------------------------------------------------------------------------
# Personal data: candidates and suggestions are building level at most
# --------------------------------------------------------------------------------------------

CN_INPUTS = [
    "3栋2单元502", "3-2-502", "金源花园3栋502", "金源花园", "金源花园8栋2单元502", "长湖街14号",
    "长湖街14号101", "长糊街14号101", "金川路", "金源花圆3栋2单元502", "金源花园3栋9单元999",
    "金源大道1号", "翠林华庭", "3栋", "金源路88号502", "金源路88号",
]  # fmt: skip


def test_no_unit_or_room_in_any_candidate_or_suggestion(cn: Gazetteer, fi: Gazetteer) -> None:
    public = {"金源花园3栋", "金源花园5栋", "翠林华庭3栋", "翠林华庭1栋", "长湖街12号",
              "长湖街14号", "三元里3号", "金源花园", "翠林华庭", "金源小区", "翠林会所",
              "长湖街", "金源路", "金山路", "三元里", "惠城路"}  # fmt: skip
    seen: list[str] = []
    for g, texts in ((cn, CN_INPUTS), (fi, ["Unioninkatu 29 B", "Unionkatu 29 B 12", "Foo 1"])):
        for result in g.match_many(texts):
            if isinstance(result, AddressMatch):
                labels = [c.label for c in result.candidates]
            else:
                labels = [s["label"] for s in result.details.get("suggestions", [])]
            seen += labels
            for label in labels:
                assert "单元" not in label and "室" not in label and "502" not in label
    assert seen, "the inputs produce candidates"
    assert set(seen) - {"Unioninkatu 29", "Mannerheimintie", "Unioninkatu"} <= public


# --------------------------------------------------------------------------------------------
# match_many, construction
# --------------------------------------------------------------------------------------------


def test_match_many_returns_per_item_errors(cn: Gazetteer) -> None:
    out = cn.match_many(["长湖街12号", "", "金源大道1号", "长" * 201, "金源花园3栋"])
    assert [type(r).__name__ for r in out] == [
        "AddressMatch", "InvalidInput", "NotFound", "InvalidInput", "AddressMatch",
    ]  # fmt: skip
    first = out[0]
    assert isinstance(first, AddressMatch) and first.household_id == 1006


def test_len_counts_every_entry(cn: Gazetteer, fi: Gazetteer) -> None:
    assert len(cn) == 9 + 7 + 5
    assert len(fi) == 3 + 3 + 3
    assert len(Gazetteer()) == 0


def test_empty_gazetteer_answers_not_found() -> None:
    with pytest.raises(NotFound):
        Gazetteer().match("长湖街12号")


def test_missing_column_is_refused() -> None:
    empty = pd.DataFrame(columns=STREET_COLUMNS)
    with pytest.raises(InvalidInput) as info:
        Gazetteer.from_frames(
            households=pd.DataFrame(columns=HOUSEHOLD_COLUMNS[:-1]),
            buildings=pd.DataFrame(columns=BUILDING_COLUMNS),
            streets=empty,
        )
    assert info.value.field == "households"
    assert info.value.details == {"missing": ["lat"]}


def test_nan_cells_from_the_database_are_missing_values() -> None:
    # Frames read from SQL carry NaN for NULL (and float building ids).
    households = pd.DataFrame(
        [(1, "X1", "长湖街", "12号", float("nan"), None, None, float("nan"), 7.0, float("nan"),
          114.0, 23.0)],
        columns=HOUSEHOLD_COLUMNS,
    )  # fmt: skip
    buildings = pd.DataFrame(
        [(7, None, None, None, "长湖街", "12号", 114.0, 23.0)], columns=BUILDING_COLUMNS
    )
    streets = pd.DataFrame([(3, "长湖街", "街", 114.0, 23.0)], columns=STREET_COLUMNS)
    g = Gazetteer.from_frames(households=households, buildings=buildings, streets=streets)
    m = g.match("长湖街12号")
    assert (m.level, m.household_id, m.building_id, m.street_id) == ("door", 1, 7, 3)


def test_compound_known_only_from_households() -> None:
    # Households may name a compound that has no building records (yet).
    households = households_frame(
        [
            (1, None, None, "榕湖雅苑", "2栋", "1单元", "101", None, None, 114.0, 23.0),
            (2, None, None, "榕湖雅苑", "2栋", "1单元", "102", None, None, 114.0, 23.0),
        ],
        "R",
    )
    buildings = pd.DataFrame(columns=BUILDING_COLUMNS)
    streets = pd.DataFrame(columns=STREET_COLUMNS)
    g = Gazetteer.from_frames(households=households, buildings=buildings, streets=streets)
    assert g.match("榕湖雅苑二栋一单元102").household_id == 2
    m = g.match("榕湖雅苑2栋")
    assert (m.level, m.building_id, m.household_id) == ("building", None, None)
    assert g.match("榕湖雅园2栋1单元101").level == "fuzzy"
    with pytest.raises(NotFound) as info:
        g.match("榕湖大道")  # close to the compound's name, which has no building to show
    assert info.value.details["suggestions"] == []


def test_fuzzy_ties_are_seen_whatever_the_limit(cn: Gazetteer) -> None:
    m = cn.match("金川路", limit=1)
    assert m.confidence == pytest.approx(1 / 3, abs=1e-4)
    assert len(m.candidates) == 1


# --------------------------------------------------------------------------------------------
# Rosters: every address a household carries is a door
# --------------------------------------------------------------------------------------------


def roster_frames() -> dict[str, pd.DataFrame]:
    """Helsinki as an OpenStreetMap extract gives it: the roster's Kaisaniementie and
    Iso Roobertinkatu are missing from the streets layer (their buildings' street is unknown,
    as ``gazetteer_frames`` writes a street_id absent from the streets frame), while streets
    with close names are present. Iso Roobertinkatu 3-5 is one building over two numbers;
    Fredrikinkatu has 12, 12 A and 14."""
    streets = pd.DataFrame(
        [
            (21, "Kaisaniemenkatu", None, 24.9470, 60.1720),
            (22, "Pieni Roobertinkatu", None, 24.9430, 60.1630),
            (23, "Fredrikinkatu", None, 24.9350, 60.1630),
        ],
        columns=STREET_COLUMNS,
    )
    buildings = pd.DataFrame(
        [
            (301, None, None, [], None, "6", 24.9481, 60.1721),
            (302, None, None, [], None, "3-5", 24.9441, 60.1631),
            (303, None, None, [], None, "8", 24.9451, 60.1621),
            (304, None, None, [], "Fredrikinkatu", "12", 24.9351, 60.1631),
            (305, None, None, [], "Fredrikinkatu", "12 A", 24.9352, 60.1632),
            (306, None, None, [], "Fredrikinkatu", "14", 24.9353, 60.1633),
            (307, None, None, [], "Pieni Roobertinkatu", "3", 24.9431, 60.1631),
        ],
        columns=BUILDING_COLUMNS,
    )
    households = households_frame(
        [
            (3001, "Kaisaniementie", "6", None, None, None, None, 301, None, 24.9482, 60.1722),
            (3002, "Iso Roobertinkatu", "3-5", None, None, None, None, 302, None, 24.9442, 60.1632),
            (3003, "Iso Roobertinkatu", "8", None, None, "B", "21", 303, None, 24.9452, 60.1622),
            (3004, "Iso Roobertinkatu", "8", None, None, "B", "22", 303, None, 24.9452, 60.1623),
            (3005, "Fredrikinkatu", "12", None, None, None, None, 304, 23, 24.9351, 60.1632),
            (3006, "Fredrikinkatu", "12 A", None, None, None, None, 305, 23, 24.9352, 60.1633),
            (3007, "Fredrikinkatu", "14", None, None, None, None, 306, 23, 24.9353, 60.1634),
            (3008, "Pieni Roobertinkatu", "3", None, None, None, None, 307, 22, 24.9431, 60.1632),
        ],
        "R",
    )  # fmt: skip
    return {"households": households, "buildings": buildings, "streets": streets}


def roster_gazetteer() -> Gazetteer:
    return Gazetteer.from_frames(**roster_frames(), prefixes=["Helsinki"])


def numbers_frames() -> dict[str, pd.DataFrame]:
    """长湖街 with the doors 12号, 12A号, 12号之一, 16号附1 and 20-1号 (no 16, no 20), and
    三元里3号 alone."""
    streets = pd.DataFrame(
        [(1, "长湖街", "街", 114.400, 23.100), (4, "三元里", "街", 114.430, 23.100)],
        columns=STREET_COLUMNS,
    )
    buildings = pd.DataFrame(
        [
            (104, None, None, [], "长湖街", "12号", 114.4010, 23.1010),
            (110, None, None, [], "长湖街", "12A号", 114.4011, 23.1010),
            (111, None, None, [], "长湖街", "12号之一", 114.4012, 23.1010),
            (112, None, None, [], "长湖街", "16号附1", 114.4013, 23.1010),
            (113, None, None, [], "长湖街", "20-1号", 114.4014, 23.1010),
            (107, None, None, [], "三元里", "3号", 114.4310, 23.1010),
        ],
        columns=BUILDING_COLUMNS,
    )
    households = households_frame(
        [
            (1006, "长湖街", "12号", None, None, None, None, 104, 1, 114.4010, 23.1011),
            (1010, "长湖街", "12A号", None, None, None, None, 110, 1, 114.4011, 23.1011),
            (1011, "长湖街", "12号之一", None, None, None, None, 111, 1, 114.4012, 23.1011),
            (1012, "长湖街", "16号附1", None, None, None, None, 112, 1, 114.4013, 23.1011),
            (1013, "长湖街", "20-1号", None, None, None, None, 113, 1, 114.4014, 23.1011),
            (1009, "三元里", "3号", None, None, None, None, 107, 4, 114.4311, 23.1011),
        ],
        "H",
    )  # fmt: skip
    return {"households": households, "buildings": buildings, "streets": streets}


def numbers_gazetteer() -> Gazetteer:
    return Gazetteer.from_frames(**numbers_frames(), prefixes=[PREFIX])


@pytest.fixture(scope="module")
def roster() -> Gazetteer:
    return roster_gazetteer()


@pytest.fixture(scope="module")
def numbers() -> Gazetteer:
    return numbers_gazetteer()


@pytest.mark.parametrize(
    ("text", "household"),
    [
        ("Kaisaniementie 6", 3001),
        ("Kaisaniementie 6, Helsinki", 3001),
        ("Iso Roobertinkatu 3-5", 3002),
        ("iso roobertinkatu 3–5", 3002),  # an en dash
        ("Iso Roobertinkatu 8 B 21", 3003),
    ],
)
def test_roster_street_missing_from_the_streets_layer_is_a_door(
    roster: Gazetteer, text: str, household: int
) -> None:
    # The street is known only from the households: their own text is an exact key, never a
    # fuzzy match to the nearby Kaisaniemenkatu or Pieni Roobertinkatu.
    m = roster.match(text)
    assert (m.level, m.confidence, m.household_id) == ("door", 1.0, household)


def _roster_text(row: pd.Series) -> str:
    """A household's address as its roster writes it: street, number, compound, building,
    unit, room, each as given, apart."""
    parts = ("street_name", "house_number", "compound", "building_name", "unit", "room")
    return " ".join(row[p] for p in parts if isinstance(row[p], str) and row[p])


@pytest.mark.parametrize(
    ("frames", "make"),
    [
        (cn_frames, cn_gazetteer),
        (fi_frames, fi_gazetteer),
        (roster_frames, roster_gazetteer),
        (numbers_frames, numbers_gazetteer),
    ],
    ids=["cn", "fi", "roster", "numbers"],
)
def test_every_household_is_found_at_its_door_by_its_own_address(
    frames: Callable[[], dict[str, pd.DataFrame]], make: Callable[[], Gazetteer]
) -> None:
    g = make()
    for _, row in frames()["households"].iterrows():
        text = _roster_text(row)
        m = g.match(text)
        assert (m.level, m.confidence, m.household_id) == ("door", 1.0, row["id"]), text


def test_roster_street_with_an_unknown_number_answers_the_street(roster: Gazetteer) -> None:
    # Known from the roster only, the street has no line: its point is its central known
    # door's building, and no street_id (the service then lists no street grids).
    m = roster.match("Iso Roobertinkatu 10")
    assert (m.level, m.street_id, m.household_id) == ("street", None, None)
    assert m.confidence == pytest.approx(COARSE_FACTOR)
    assert (m.lon, m.lat) in {(24.9441, 60.1631), (24.9451, 60.1621)}
    alone = roster.match("Kaisaniementie")
    assert (alone.level, alone.confidence, alone.lon, alone.lat) == (
        "street", 1.0, 24.9481, 60.1721,
    )  # fmt: skip
    # A close name still corrects a typo to the roster's street.
    assert roster.match("Kaisaniementi 6").household_id == 3001


# --------------------------------------------------------------------------------------------
# House numbers: suffixes, sub-numbers, ranges
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "household"),
    [
        ("长湖街12号", 1006),
        ("长湖街十二号", 1006),
        ("长湖街12A号", 1010),
        ("长湖街12a号", 1010),
        ("长湖街１２Ａ号", 1010),
        ("长湖街12 A号", 1010),
        # 之一, 附1 and a hyphen are three spellings of one sub-number in Chinese.
        ("长湖街12号之一", 1011),
        ("长湖街12之1号", 1011),
        ("长湖街12-1号", 1011),
        ("长湖街12号附1", 1011),
        ("长湖街十二号之一", 1011),
        ("长湖街16号附1", 1012),
        ("长湖街16号附一", 1012),
        ("长湖街16附1号", 1012),
        ("长湖街16-1号", 1012),
        ("长湖街16号之一", 1012),
        ("长湖街20-1号", 1013),
        ("长湖街20号之一", 1013),
    ],
)
def test_chinese_suffix_and_sub_number_find_exactly_that_door(
    numbers: Gazetteer, text: str, household: int
) -> None:
    m = numbers.match(text)
    assert (m.level, m.confidence, m.household_id) == ("door", 1.0, household)


@pytest.mark.parametrize(
    ("text", "building"),
    [
        ("三元里3A号", 107),
        ("三元里3号之一", 107),
        ("三元里3-1号", 107),
        ("三元里3号附2", 107),
        ("长湖街12号之二", 104),
        ("长湖街12B号", 104),
    ],
)
def test_an_unknown_suffix_falls_back_to_its_number_below_door_level(
    numbers: Gazetteer, text: str, building: int
) -> None:
    # 3A or 3之1 is another door than 3: building 3 may be answered, never as the door of 3.
    m = numbers.match(text)
    assert (m.level, m.building_id, m.household_id) == ("building", building, None)
    assert m.confidence == pytest.approx(COARSE_FACTOR)


def test_a_sub_number_does_not_make_its_base_number_known(numbers: Gazetteer) -> None:
    # Only 20-1 exists: 20 is another door, so the street is answered, not 20-1.
    m = numbers.match("长湖街20号")
    assert (m.level, m.household_id, m.building_id, m.street_id) == ("street", None, None, 1)


@pytest.mark.parametrize(
    ("text", "household"),
    [
        ("Fredrikinkatu 12", 3005),
        ("Fredrikinkatu 12 A", 3006),
        ("Fredrikinkatu 12a", 3006),
        ("fredrikinkatu 12A", 3006),
        ("Fredrikinkatu 14", 3007),
        ("Pieni Roobertinkatu 3", 3008),
    ],
)
def test_latin_suffix_finds_exactly_that_door(roster: Gazetteer, text: str, household: int) -> None:
    m = roster.match(text)
    assert (m.level, m.confidence, m.household_id) == ("door", 1.0, household)


def test_latin_unknown_suffix_is_not_the_door_of_its_number(roster: Gazetteer) -> None:
    # Only 14 exists: "14 A" reads as staircase A of 14, which names no household there.
    for text in ("Fredrikinkatu 14 A", "Fredrikinkatu 14a"):
        m = roster.match(text)
        assert (m.level, m.building_id, m.household_id) == ("building", 306, None), text
        assert m.confidence < 1


@pytest.mark.parametrize("text", ["Iso Roobertinkatu 3", "Iso Roobertinkatu 5"])
def test_a_number_inside_a_latin_range_finds_the_range(roster: Gazetteer, text: str) -> None:
    m = roster.match(text)
    assert (m.level, m.household_id, m.building_id) == ("door", 3002, 302)
    assert m.confidence == pytest.approx(RANGE_FACTOR)


def test_a_range_covers_the_numbers_of_its_side_only(roster: Gazetteer) -> None:
    # 3-5 is the odd side: 4 is across the street.
    m = roster.match("Iso Roobertinkatu 4")
    assert (m.level, m.household_id, m.building_id) == ("street", None, None)


def test_an_unknown_latin_range_answers_the_numbers_it_covers(roster: Gazetteer) -> None:
    m = roster.match("Fredrikinkatu 12-14")
    assert (m.level, m.household_id) == ("building", None)
    assert m.building_id in (304, 306) and m.confidence < 1
    assert {c.building_id for c in m.candidates} == {304, 306}


@pytest.mark.parametrize(
    ("normalized", "street", "expected"),
    [
        ("长湖街12号之1", "长湖街", "12之1"),
        ("长湖街12附1号", "长湖街", "12之1"),
        ("长湖街12-1号", "长湖街", "12之1"),  # Chinese: a hyphen is a sub-number
        ("长湖街12a号", "长湖街", "12a"),
        ("iso-roobertinkatu-3-5", "Iso Roobertinkatu", "3-5"),  # Latin: a range
        ("fredrikinkatu-12-a", "Fredrikinkatu", "12"),  # with no number known: staircase A
    ],
)
def test_parse_house_number_by_script(normalized: str, street: str, expected: str) -> None:
    assert parse_address(normalized, known_streets=[street]).house_number == expected
