"""Address matching for the Lookup API: a pure, in-memory gazetteer (no database).

The caller loads households, buildings and streets from the database as plain frames,
builds a :class:`Gazetteer` once (and again when the ``gazetteer`` data version changes, see
``geogrid.db.models.DataVersion``) and asks it :meth:`Gazetteer.match`. The answer is a
point and the ids of the place; which grids and members cover it is the caller's part.

How an address is matched
-------------------------
1. :func:`normalize_address` brings the text to one canonical form (full/half width, Chinese
   numerals in number contexts, 栋/单元/室 variants, separators, administrative prefix).
2. The longest known name (street, compound, compound alias, building alias) is looked up
   at the start of the text in a dictionary of normalised keys; what follows is parsed into
   house number, building, unit and room, also against dictionaries of known keys.
3. Only when that fails, the leading name part (the text before the first number) is matched
   with rapidfuzz against the name parts of the known names (about a hundred for a community
   of 12,000 households; never the households), and step 2 is repeated on the corrected
   text. Such an answer has ``level == "fuzzy"``.

Every street a household or building names is a known name, also when the streets layer
lacks it (an OpenStreetMap extract need not hold every street of a roster): a household's own
address is always an exact key, found at its door. Such a street has no line; a street-level
answer on it is the central one of its buildings and doors, with no ``street_id``.

House numbers are keys too: 12, 12a (12A号, 12 A), 12之1 (a Chinese sub-number: 12号之一,
12号附1, 12-1号) and 3-5 (a Latin range) are different doors. A hyphen is a sub-number in a
Chinese address and a range in a Latin one, by the script of the address
(:func:`_chinese_numbering`). An unknown number falls back, never as a door of another
number: 12a or 12之1 to the building of 12 (:data:`COARSE_FACTOR`), a range to the numbers it
covers (:data:`COARSE_FACTOR`, shared); only a plain number inside a known range (3 or 5 in
3-5, same side of the street) answers the range's door (:data:`RANGE_FACTOR`). In a Latin
address an unknown 29b is read as 29, staircase B (Unioninkatu 29 B 12), as it may well be.

Confidence is 1.0 for an exact match on normalised keys. Each compromise multiplies it by a
factor: text skipped or ignored (:data:`SKIPPED_TEXT_FACTOR`), a unit/room that names no
household (:data:`UNRESOLVED_DETAIL_FACTOR`), an answer coarser than the input asked for
(:data:`COARSE_FACTOR`), the rapidfuzz score ÷ 100 for a fuzzy name, and ÷ *n* when *n*
different places fit equally well (the chance the first is the one meant, if all are
equally likely).

Personal data
-------------
Unit and room make a full household address, which is personal (DESIGN.md, "Data rules").
:class:`Candidate` labels and ``NotFound`` suggestions are therefore building level at most
(compound + building, or street + house number); only the caller's own input, normalised, is
echoed back. Nothing typed by a caller is cached beyond the call.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Final, Literal

import pandas as pd
from rapidfuzz import fuzz, process

from geogrid.errors import GeogridError, InvalidInput, NotFound

__all__ = [
    "COARSE_FACTOR",
    "FUZZY_CUTOFF",
    "MAX_ADDRESS_LENGTH",
    "RANGE_FACTOR",
    "SKIPPED_TEXT_FACTOR",
    "SUGGESTION_CUTOFF",
    "UNRESOLVED_DETAIL_FACTOR",
    "AddressMatch",
    "Candidate",
    "Gazetteer",
    "ParsedAddress",
    "canonical_address",
    "normalize_address",
    "parse_address",
]

Level = Literal["door", "building", "street", "fuzzy"]

#: Longest address accepted (characters, before normalisation).
MAX_ADDRESS_LENGTH: Final = 200
#: rapidfuzz ``fuzz.ratio`` (0–100) a name must reach to be used. 60 lets one wrong character
#: through in a three-character street name (长糊街 ~ 长湖街 scores 66.7) but not two (33.3).
FUZZY_CUTOFF: Final = 60.0
#: Lower bar for the suggestions of a ``NotFound``: they are offered, not used.
SUGGESTION_CUTOFF: Final = 40.0
#: Unknown text before the first known name, or after the parsed parts, was ignored.
SKIPPED_TEXT_FACTOR: Final = 0.9
#: A unit or room was given, but no household there: the building is answered instead.
UNRESOLVED_DETAIL_FACTOR: Final = 0.9
#: The answer is coarser than asked: a street for street + unknown number, a compound's
#: central building for a compound alone or with an unknown building.
COARSE_FACTOR: Final = 0.8
#: A house number was found inside a Latin range (Iso Roobertinkatu 3 in the building 3-5):
#: the door of the range, not one carrying that very number.
RANGE_FACTOR: Final = 0.95

_LEVEL_RANK: Final = {"door": 3, "building": 2, "street": 1}
#: How many fuzzily matched names are read again exactly.
_FUZZY_TRIES: Final = 5

# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

# Chinese numerals, including the financial forms (壹贰叁) and 幺 (one, as read out in
# room numbers: 幺零二 = 102).
_CN_DIGITS: Final = {
    "零": 0, "〇": 0, "一": 1, "壹": 1, "幺": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3,
    "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8,
    "九": 9, "玖": 9,
}  # fmt: skip
_CN_UNITS: Final = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_NUM: Final = "[" + "".join(_CN_DIGITS) + "".join(_CN_UNITS) + "]+"
# Words after which a number is a house, building, unit, room, floor or phase number. A
# numeral run is converted only before (or, for the room, after) one of these: 三元里,
# 五一路, 上塘一巷 and 十里铺 keep their numerals because 元/路/巷/里 are not markers.
_MARKERS: Final = "号|栋|幢|座|单元|室|楼|层|房|户|期|#"
_CN_BEFORE_MARKER: Final = re.compile(rf"第?({_CN_NUM})(?={_MARKERS})")
# A room number written after the unit or building with no 室: 二单元五〇二.
_CN_ROOM_AFTER: Final = re.compile(rf"(?:(?<=单元)|(?<=[栋幢座楼]))({_CN_NUM})(?=$|[室号房])")
# A sub-number after a house number: 12号之一, 16号附一 (之/附 are not markers: the numeral
# follows them).
_CN_SUB_NUMBER: Final = re.compile(rf"(?<=[0-9号][之附])({_CN_NUM})")
_ORDINAL_DI: Final = re.compile(r"第(?=\d+(?:号|栋|幢|座|单元|室))")
# 3号楼, 3栋楼, 3幢, 3座, 3# all mean building 3 (栋).
_HASH: Final = re.compile(rf"(?<=[0-9a-z{''.join(_CN_DIGITS)}{''.join(_CN_UNITS)}])#楼?")
_BUILDING_VARIANTS: Final = re.compile(r"(?<=[0-9a-z])(?:号楼|栋楼|幢|座)")
_ROOM_VARIANT: Final = re.compile(r"(?<=\d)房(?!间)")
# 3-2-502 = building 3, unit 2, room 502 (the usual short form in Chinese compounds); only
# at the start or after a Chinese character, so Latin "Unioninkatu 3-2-502" is left alone.
_DASH3: Final = re.compile(
    r"(?:^|(?<=[\u3400-\u9fff]))(\d+[a-z]?)-(\d+)-(\d+[a-z]?)室?(?![0-9a-z-])"
)
_DASH2: Final = re.compile(r"(?<=栋)(\d+)-(\d+[a-z]?)室?(?![0-9a-z-])")
_SEPARATORS: Final = re.compile(r"[\W_]+")
# Traditional forms of the address markers only (names are not converted).
_TRADITIONAL: Final = str.maketrans({"號": "号", "棟": "栋", "樓": "楼", "單": "单", "層": "层"})

# Administrative units of a prefix; longer suffixes first where they share a start.
_ADMIN_UNIT: Final = re.compile(
    r".+?(?:特别行政区|自治区|自治州|自治县|街道办事处|街道办|街道|社区居委会|居委会|村委会|社区"
    r"|省|市|区|县|旗|盟|镇|乡)"
)
_SUBDISTRICT_FORMS: Final = ("街道办事处", "街道办", "街道")
_COMMUNITY_FORMS: Final = ("社区居委会", "社区", "居委会")
_POSTCODE_TAIL: Final = re.compile(r"-?\d{5,6}$")


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _is_latin_alnum(ch: str) -> bool:
    """A letter or digit of a non-CJK script: words of these are kept apart by a ``-``."""
    return ch.isalnum() and ch < "\u2e80"


def _cn_to_digits(run: str) -> str | None:
    """Chinese numerals → decimal digits; None if the run is not a well-formed number.

    Without 十/百/千 the run is read digit by digit (五〇二 → 502, as room numbers are
    spoken); with them, positionally (二十三 → 23, 一百零五 → 105, colloquial 三百二 → 320).
    """
    if not any(c in _CN_UNITS for c in run):
        return "".join(str(_CN_DIGITS[c]) for c in run)
    total, current, last_unit, zero = 0, None, 10**9, False
    for c in run:
        if c in _CN_UNITS:
            unit = _CN_UNITS[c]
            if unit >= last_unit or (current == 0):
                return None
            total += (1 if current is None else current) * unit
            last_unit, current, zero = unit, None, False
        elif _CN_DIGITS[c] == 0:
            if current is not None:
                return None
            zero, current = True, 0
        else:
            if current not in (None, 0):
                return None
            current = _CN_DIGITS[c]
    if current:
        # 三百二 is 320, but 三百零二 is 302: a lone digit after 百/千 counts in tens/hundreds.
        total += current * (last_unit // 10 if last_unit >= 100 and not zero else 1)
    return str(total)


def _cn_repl(m: re.Match[str]) -> str:
    digits = _cn_to_digits(m.group(1))
    return m.group(0) if digits is None else digits


def _separator(m: re.Match[str]) -> str:
    # Spaces and punctuation go, except between two Latin words or numbers, where they become
    # one "-" so "Unioninkatu 29 B 12" does not run together into an ambiguous "29b12".
    s, i, j = m.string, m.start(), m.end()
    if i > 0 and j < len(s) and _is_latin_alnum(s[i - 1]) and _is_latin_alnum(s[j]):
        return "-"
    return ""


def _fold_latin(s: str) -> str:
    """Drop diacritics of Latin letters (Mäkelänkatu → makelankatu); CJK is untouched."""
    if all(c < "\u00c0" or c >= "\u2e80" for c in s):
        return s
    out = "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", out)


def canonical_address(text: str) -> str:
    """Every normalisation step except the prefix: the form of all keys of the gazetteer."""
    return _canonical(text)


def _canonical(text: str) -> str:
    """Every normalisation step except the prefix: the form of all keys of the gazetteer."""
    s = unicodedata.normalize("NFKC", text)  # full-width → half-width, ideographic space → " "
    s = _fold_latin(s).translate(_TRADITIONAL).lower()
    s = _HASH.sub("栋", s)  # before the separators, which would drop the "#"
    s = _SEPARATORS.sub(_separator, s).strip("-")
    if not s.isascii():
        s = _CN_BEFORE_MARKER.sub(_cn_repl, s)
        s = _CN_ROOM_AFTER.sub(_cn_repl, s)
        s = _CN_SUB_NUMBER.sub(_cn_repl, s)
        s = _ORDINAL_DI.sub("", s)
        s = _BUILDING_VARIANTS.sub("栋", s)
        s = _ROOM_VARIANT.sub("室", s)
        s = _DASH2.sub(r"\1单元\2室", s)
    return _DASH3.sub(r"\1栋\2单元\3室", s)


@dataclass(frozen=True)
class _Admin:
    """The spellings of the administrative prefixes, indexed by first and last character."""

    variants: tuple[str, ...]
    by_first: dict[str, tuple[str, ...]]
    by_last: dict[str, tuple[str, ...]]


@lru_cache(maxsize=64)
def _admin(prefixes: tuple[str, ...]) -> _Admin:
    variants = _admin_variants(prefixes)
    by_first: dict[str, list[str]] = defaultdict(list)
    by_last: dict[str, list[str]] = defaultdict(list)
    for v in variants:  # longest first, so the longest spelling is tried first
        by_first[v[0]].append(v)
        by_last[v[-1]].append(v)
    return _Admin(
        variants,
        {k: tuple(v) for k, v in by_first.items()},
        {k: tuple(v) for k, v in by_last.items()},
    )


def _admin_variants(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """Every normalised spelling of the prefixes' administrative units, longest first.

    Province, city, district and county may be written without their suffix (广东惠州,
    惠城). Subdistrict and community must keep theirs (街道/街道办/街道办事处,
    社区/居委会): their bare names usually begin the community's own street and compound
    names (金源社区 → 金源路, 金源花园).
    """
    out: set[str] = set()
    for prefix in prefixes:
        whole = _canonical(prefix)
        if not whole:
            continue
        out.add(whole)
        units = _ADMIN_UNIT.findall(whole)
        rest = whole[sum(len(u) for u in units) :]
        for unit in [*units, rest] if rest else units:
            out.add(unit)
            for forms in (_SUBDISTRICT_FORMS, _COMMUNITY_FORMS):
                stem = next((unit[: -len(f)] for f in forms if unit.endswith(f)), None)
                if stem is not None:
                    out.update(stem + f for f in forms)
                    break
            else:
                if unit[-1] in "省市区县" and len(unit) >= 3:
                    out.add(unit[:-1])
    return tuple(sorted(out, key=lambda v: (-len(v), v)))


def _boundary(s: str, i: int) -> bool:
    """Whether position ``i`` of ``s`` is between words (not inside a Latin word or number)."""
    if i <= 0 or i >= len(s):
        return True
    a, b = s[i - 1], s[i]
    return not (
        (a.isdigit() and b.isdigit()) or (_is_latin_alnum(a) and a.isalpha() and b.isalpha())
    )


def _strip_admin(s: str, admin: _Admin, protect: Callable[[str, int], bool] | None = None) -> str:
    """Strip a leading (and a trailing) run of administrative prefixes from ``s``.

    ``protect(s, n)`` vetoes stripping the first ``n`` characters (a known name is longer).
    A trailing run ("Unioninkatu 29, 00170 Helsinki") takes a postcode before it along.
    """
    if not admin.variants:
        return s
    stripped = True
    while stripped and s:
        stripped = False
        for v in admin.by_first.get(s[0], ()):
            n = len(v)
            if s.startswith(v) and _boundary(s, n) and not (protect and protect(s, n)):
                s, stripped = s[n:].lstrip("-"), True
                break
    tail = False
    stripped = True
    while stripped and s:
        stripped = False
        for v in admin.by_last.get(s[-1], ()):
            n = len(v)
            # Only Latin addresses end with their city ("…, Helsinki"): after a "-" only.
            if len(s) > n and s.endswith(v) and s[-n - 1] == "-":
                s, stripped, tail = s[:-n].rstrip("-"), True, True
                break
    if tail:  # a postcode before the city goes with it
        s = _POSTCODE_TAIL.sub("", s)
    return s


def normalize_address(text: str, *, prefixes: Sequence[str] = ()) -> str:
    """Normalise an address to the canonical form the gazetteer's keys use.

    Parameters
    ----------
    text
        An address as typed: Chinese or Latin script, any width, any spacing.
    prefixes
        Administrative prefixes of the community, e.g. ``["广东省惠州市惠城区小金口街道金源社区"]``
        (split into its units) or ``["Helsinki"]``. Any leading run of them, whole or partial
        and in any order, is removed (and a trailing run, as Latin addresses end with the
        city).

    Returns
    -------
    str
        NFKC (full width → half width), Latin letters lower-cased without diacritics, Chinese
        numerals before 号/栋/幢/座/单元/室/楼/层/房/户/期 (and a room number after 单元 or
        栋, a sub-number after 号之/号附) turned into digits, 幢/座/号楼/栋楼/``#`` → 栋,
        房 → 室, ``3-2-502`` → ``3栋2单元502室``, spaces and punctuation removed (between two
        Latin words or numbers kept as one ``-``), prefixes removed.

    Examples
    --------
    >>> normalize_address("金源花园三幢二单元五〇二室")
    '金源花园3栋2单元502室'
    >>> normalize_address("广东惠州惠城区长湖街 １２ 号", prefixes=["广东省惠州市惠城区"])
    '长湖街12号'
    >>> normalize_address("Unioninkatu 29 B 12")
    'unioninkatu-29-b-12'
    """
    return _strip_admin(_canonical(text), _admin(tuple(prefixes)))


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedAddress:
    """The parts of a normalised address, each as a normalised key.

    Keys drop their marker: house number ``12`` (not 12号), building ``3`` (not 3栋), unit
    ``2`` (not 2单元), room ``502`` (not 502室). Latin staircase letters are units. A house
    number keeps its suffix (``12a``), Chinese sub-number (``12之1`` for 12号之一, 12号附1
    and 12-1号) or Latin range (``3-5``).
    """

    street: str | None = None
    house_number: str | None = None
    compound: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None


@dataclass(frozen=True, slots=True)
class _NameRef:
    """What a known name key stands for."""

    kind: Literal["street", "compound", "alias"]
    key: str  # canonical street or compound key; the alias itself for a building alias
    buildings: tuple[int, ...] = ()  # building positions of a building alias


@dataclass(frozen=True, slots=True)
class _Parse:
    parsed: ParsedAddress
    kind: Literal["street", "compound", "alias", "none"]
    factor: float
    alias_buildings: tuple[int, ...] = ()


class _Lexicon:
    """Known keys: names, and the house numbers and building keys under each name.

    Lookups go from the longest possible key down, so "碧水湾花园" wins over its alias
    "碧水湾", and a key must end on a word boundary ("13栋" never matches building "1").
    """

    def __init__(self) -> None:
        self.names: dict[str, list[_NameRef]] = defaultdict(list)
        self.numbers: dict[str, set[str]] = defaultdict(set)  # street key → house numbers
        self.buildings: dict[str, set[str]] = defaultdict(set)  # compound key → building keys
        self._first: set[str] = set()
        self._maxlen = 0
        self._number_maxlen: dict[str, int] = {}
        self._building_maxlen: dict[str, int] = {}

    def freeze(self) -> None:
        """End loading: plain dicts (a read never inserts, so concurrent reads are safe) and
        the longest key of each set (lookups start there)."""
        self.names = dict(self.names)
        self.numbers = dict(self.numbers)
        self.buildings = dict(self.buildings)
        self._number_maxlen = {k: max(map(len, v)) for k, v in self.numbers.items() if v}
        self._building_maxlen = {k: max(map(len, v)) for k, v in self.buildings.items() if v}

    def known_numbers(self, street: str) -> tuple[Collection[str], int]:
        return self.numbers.get(street, ()), self._number_maxlen.get(street, 0)

    def known_buildings(self, compound: str) -> tuple[Collection[str], int]:
        return self.buildings.get(compound, ()), self._building_maxlen.get(compound, 0)

    def add_name(self, key: str, ref: _NameRef) -> None:
        if len(key) < 2 or ref in self.names[key]:
            return  # one-character names would match inside anything
        self.names[key].append(ref)
        self._first.add(key[0])
        self._maxlen = max(self._maxlen, len(key))

    def name_at(self, s: str, i: int = 0) -> tuple[str, int] | None:
        """The longest known name starting at ``s[i]`` and its end, or None."""
        if i >= len(s) or s[i] not in self._first or not _boundary(s, i):
            return None
        for end in range(min(len(s), i + self._maxlen), i + 1, -1):
            key = s[i:end]
            if key in self.names and _boundary(s, end):
                return key, end
        return None

    def find_name(self, s: str) -> tuple[int, str, int] | None:
        """The first position holding a known name: (start, key, end), or None."""
        for i in range(len(s)):
            hit = self.name_at(s, i)
            if hit is not None:
                return i, hit[0], hit[1]
        return None


def _longest_known(s: str, known: tuple[Collection[str], int]) -> str | None:
    keys, maxlen = known
    for end in range(min(len(s), maxlen), 0, -1):
        if s[:end] in keys and _boundary(s, end) and not s.startswith("单元", end):
            return s[:end]
    return None


_NO_KEYS: Final[tuple[Collection[str], int]] = ((), 0)
_GENERIC_NUMBER: Final = re.compile(r"(\d+-\d+)号|(\d+[a-z]?)(?![0-9a-z])号?|(\d+)号?")
_GENERIC_BUILDING: Final = re.compile(r"(\d+[a-z]?|[a-z]\d*)(栋|号(?!\d)|$)")
_TAIL_CN: Final = re.compile(
    r"(?:(?P<unit>[0-9a-z]+)单元)?(?:\d+[楼层])?(?:(?P<room>[0-9a-z]+(?:-\d+)?)(?:室|号)?)?"
)
_TAIL_LATIN: Final = re.compile(
    r"(?:(?P<unit>[a-z])(?![a-z])-?)?(?:(?:as|asunto|bst|lgh|apt|flat)-?)?(?P<room>\d+[a-z]?)?"
)


# House numbers with a suffix or sub-number (canonical text; keys in the comments):
# Chinese 12a号 → 12a, 12号之1 / 12之1号 / 12号附1 / 12附1号 / 12-1号 → 12之1;
# Latin 12a / 12 A → 12a, 3-5 → 3-5 (a range).
_CN_HOUSE_NUMBER: Final = re.compile(
    r"(\d+)(?:-?([a-z])(?=号|$)|号?[之附](\d+)|-(\d+)(?=号|$))?号?"
)
_LATIN_HOUSE_NUMBER: Final = re.compile(r"(\d+)(?:-?([a-z])(?![a-z])|-(\d+)(?![0-9a-z]))?")
_SUFFIXED_KEY: Final = re.compile(r"(\d+)(?:[a-z]|之\d+)")
_RANGE_KEY: Final = re.compile(r"(\d+)-(\d+)")


def _chinese_numbering(address: str) -> bool:
    """Whether the house numbers of ``address`` follow the Chinese rule.

    A hyphen between two numbers is a sub-number in a Chinese address (12-1号 is 12号之一 and
    12号附1: a door split off number 12, not 12 itself) but a range in a Latin one
    (Iso Roobertinkatu 3-5: one building over the numbers 3 to 5). The script decides: an
    address holding any CJK character is Chinese.
    """
    return any(_is_cjk(c) for c in address)


def _house_number(s: str, chinese: bool) -> tuple[str, int, bool] | None:
    """The house number at the start of canonical ``s``: (key, end, marked), or None.

    ``marked`` says the number carries a letter suffix (12a), a sub-number (12之1) or is a
    range (3-5): another door than its plain number. A Latin "a-b" with a ≥ b is no range
    and yields the plain a (the rest is read as unit and room, as before).
    """
    if chinese:
        m = _CN_HOUSE_NUMBER.match(s)
        if m is None:
            return None
        base, letter, sub, dash_sub = m.groups()
        if letter:
            return base + letter, m.end(), True
        if sub or dash_sub:
            return f"{base}之{sub or dash_sub}", m.end(), True
        return base, m.end(), False
    m = _LATIN_HOUSE_NUMBER.match(s)
    if m is None:
        return None
    base, letter, high = m.groups()
    if letter:
        return base + letter, m.end(), True
    if high and int(base) < int(high):
        return f"{base}-{high}", m.end(), True
    return base, m.end(1), False


def _number_key(text: str | None, chinese: bool) -> str | None:
    """The key of a record's house number (canonical text): 12A号 → 12a, 12号之一 → 12之1
    (Chinese), 12 A → 12a, 3–5 → 3-5 (Latin); other forms as they are, without 号."""
    if not text:
        return None
    found = _house_number(text, chinese)
    if found is not None and found[1] == len(text):
        return found[0]
    return text[:-1] if len(text) > 1 and text.endswith("号") else text


def _range(key: str) -> tuple[int, int] | None:
    """The numbers of a range key (3-5 → (3, 5)); None if ``key`` is no range."""
    m = _RANGE_KEY.fullmatch(key)
    if m is None or int(m.group(1)) >= int(m.group(2)):
        return None
    return int(m.group(1)), int(m.group(2))


def _covers(span: tuple[int, int], n: int) -> bool:
    """Whether a range covers number ``n``: within it, and on its side of the street when
    both ends are (3-5 is the odd side: 3 and 5, not 4, which is across the street)."""
    lo, hi = span
    return lo <= n <= hi and (lo % 2 != hi % 2 or n % 2 == lo % 2)


def _take_number(
    rest: str, known: tuple[Collection[str], int], chinese: bool
) -> tuple[str | None, str]:
    """A house number at the start of ``rest`` (known ones first), and what follows.

    A marked number (suffix, sub-number, range; see :func:`_house_number`) is taken whole
    even when unknown, so that 12号之一 is never read as the door 12: the gazetteer answers it
    below door level (:meth:`Gazetteer._near_numbers`). A Latin letter is the exception: it
    may be a staircase (Unioninkatu 29 B 12), so unknown 29b reads as 29 + staircase B.
    """
    found = _house_number(rest, chinese)
    if found is not None and found[2]:
        marked, end, _ = found
        if marked in known[0] or chinese or "-" in marked:
            return marked, rest[end:]
    key = _longest_known(rest, known)
    if key is not None:
        after = rest[len(key) :]
        return key, after[1:] if after.startswith("号") else after
    m = _GENERIC_NUMBER.match(rest)
    if m is None:
        return None, rest
    return next(g for g in m.groups() if g), rest[m.end() :]


def _take_building(
    rest: str, known: tuple[Collection[str], int], *, need_marker: bool = False
) -> tuple[str | None, str]:
    """A building key at the start of ``rest`` (known ones first), and what follows."""
    key = _longest_known(rest, known)
    if key is not None:
        after = rest[len(key) :]
        return key, after[1:] if after[:1] in ("栋", "号") else after
    m = _GENERIC_BUILDING.match(rest)
    if m is None or (need_marker and m.group(2) != "栋"):
        return None, rest
    return m.group(1), rest[m.end() :]


def _take_tail(rest: str) -> tuple[str | None, str | None, bool]:
    """Unit and room from what is left; False if text remained that is neither."""
    rest = rest.strip("-")
    if not rest:
        return None, None, True
    pattern = _TAIL_CN if any(_is_cjk(c) for c in rest) else _TAIL_LATIN
    m = pattern.fullmatch(rest)
    if m is None:
        return None, None, False
    return m.group("unit"), m.group("room"), True


def _parse_after(
    ref: _NameRef, rest: str, lex: _Lexicon, factor: float, chinese: bool
) -> list[_Parse]:
    """Parse what follows a known name into the other parts of the address (each reading);
    ``chinese``: the house-number rule of the address (:func:`_chinese_numbering`)."""
    rest = rest.lstrip("-")
    street = number = compound = building = None
    if ref.kind == "street":
        street = ref.key
        number, rest = _take_number(rest, lex.known_numbers(street), chinese)
        if number is not None:
            # A compound or building name may follow the street address:
            # 金源路88号金源花园3栋2单元502室. Its readings keep the street address too.
            hit = lex.name_at(rest)
            inner = [r for r in lex.names[hit[0]] if r.kind != "street"] if hit else []
            if hit is not None and inner:
                return [
                    replace(p, parsed=replace(p.parsed, street=street, house_number=number))
                    for r in inner
                    for p in _parse_after(r, rest[hit[1] :], lex, factor, chinese)
                ]
            building, rest = _take_building(rest, _NO_KEYS, need_marker=True)
    elif ref.kind == "compound":
        compound = ref.key
        building, rest = _take_building(rest, lex.known_buildings(compound))
    unit, room, clean = _take_tail(rest)
    parsed = ParsedAddress(street, number, compound, building, unit, room)
    kind: Literal["street", "compound", "alias"] = ref.kind
    return [_Parse(parsed, kind, factor * (1.0 if clean else SKIPPED_TEXT_FACTOR), ref.buildings)]


_NAME_END: Final = re.compile(r"-?\d|[a-z]栋")


def _split_name(s: str) -> tuple[str, str]:
    """The leading name part (before the first number or lettered building) and the rest."""
    m = _NAME_END.search(s)
    if m is None:
        return s, ""
    return s[: m.start()].rstrip("-"), s[m.start() :]


def _parse(s: str, lex: _Lexicon) -> list[_Parse]:
    """Every reading of ``s`` from the first known name in it (one per meaning of the name)."""
    found = lex.find_name(s)
    if found is None:
        # No name: a building written alone (3栋2单元502) may still be unique or ambiguous.
        building, rest = _take_building(s, _NO_KEYS, need_marker=True)
        if building is None:
            return []
        unit, room, clean = _take_tail(rest)
        factor = 1.0 if clean else SKIPPED_TEXT_FACTOR
        return [_Parse(ParsedAddress(None, None, None, building, unit, room), "none", factor)]
    start, key, end = found
    factor = 1.0 if start == 0 else SKIPPED_TEXT_FACTOR
    chinese = _chinese_numbering(s)
    return [p for ref in lex.names[key] for p in _parse_after(ref, s[end:], lex, factor, chinese)]


def parse_address(
    normalized: str,
    *,
    known_streets: Collection[str] = (),
    known_compounds: Collection[str] = (),
) -> ParsedAddress:
    """Split a normalised address into street, house number, compound, building, unit, room.

    Parameters
    ----------
    normalized
        Output of :func:`normalize_address`.
    known_streets, known_compounds
        Names (any form; they are normalised here) to look for at the start of the address,
        or after skipping unknown leading text. House numbers and buildings are recognised
        by their form (``12号``, ``3栋``, Latin ``29``), since no list of them is given.

    Returns
    -------
    ParsedAddress
        Parts as normalised keys; all None when nothing is recognised.

    Examples
    --------
    >>> parse_address("金源花园3栋2单元502室", known_compounds=["金源花园"])
    ParsedAddress(street=None, house_number=None, compound='金源花园', building='3', unit='2', room='502')
    """  # noqa: E501
    lex = _Lexicon()
    for name in known_streets:
        key = _canonical(name)
        lex.add_name(key, _NameRef("street", key))
    for name in known_compounds:
        key = _canonical(name)
        lex.add_name(key, _NameRef("compound", key))
    lex.freeze()
    parses = _parse(normalized, lex)
    return parses[0].parsed if parses else ParsedAddress()


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A place that fits the address; public: its label is building level at most."""

    level: Level
    label: str
    confidence: float
    lon: float
    lat: float
    building_id: int | None
    street_id: int | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, as in the ``suggestions`` of a ``NotFound``."""
        return asdict(self)


@dataclass(frozen=True)
class AddressMatch:
    """The answer to one address.

    ``lon``/``lat`` is the point used: the household's door, the building's representative
    point, or for a street its point nearest the middle (the caller uses ``street_id`` to list
    the grids a street crosses). ``candidates`` lists the places that fit when more than one
    does, best first; it is empty for an unambiguous answer.
    """

    level: Level
    confidence: float
    normalized: str
    lon: float
    lat: float
    address_id: str | None
    household_id: int | None
    building_id: int | None
    street_id: int | None
    candidates: tuple[Candidate, ...] = ()


# --------------------------------------------------------------------------------------------
# Gazetteer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Street:
    id: int | None  # None: a street named only by households or buildings, not in the layer
    name: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class _Building:
    id: int
    label: str
    lon: float
    lat: float
    street_id: int | None
    bld: str | None  # building key
    place: str  # what a reader calls one place: its compound, else its street address


@dataclass(frozen=True, slots=True)
class _Household:
    id: int
    address_id: str
    building: int | None  # position in the buildings list
    building_id: int | None
    street_id: int | None
    lon: float
    lat: float
    unit: str | None
    room: str | None
    bld: str | None
    label: str  # building level: never unit or room
    spot: str  # its building, or its own label when it has no building record
    cand_lon: float  # the point a candidate shows: the building's, not the door's
    cand_lat: float


@dataclass(frozen=True, slots=True)
class _Hit:
    """A resolved reading, before it becomes an :class:`AddressMatch`."""

    level: Literal["door", "building", "street"]
    confidence: float
    label: str
    lon: float
    lat: float
    household: int | None
    building_id: int | None
    street_id: int | None
    candidates: tuple[Candidate, ...] = ()

    @property
    def place(self) -> tuple[str, str]:
        return (self.level if self.level == "street" else "building", self.label)

    def as_candidate(self) -> Candidate:
        level: Level = "street" if self.level == "street" else "building"
        return Candidate(
            level, self.label, self.confidence, self.lon, self.lat, self.building_id, self.street_id
        )


_HOUSEHOLD_COLUMNS: Final = (
    "id", "address_id", "street_name", "house_number", "compound", "building_name", "unit",
    "room", "building_id", "street_id", "lon", "lat",
)  # fmt: skip
_BUILDING_COLUMNS: Final = (
    "id", "name", "compound", "aliases", "street_name", "house_number", "lon", "lat",
)  # fmt: skip
_STREET_COLUMNS: Final = ("id", "name", "kind", "lon", "lat")


def _text(value: Any) -> str | None:
    """A cell as stripped text; None for None, NaN, pd.NA or blank."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    if value is None or pd.isna(value):
        return None
    return int(value)


def _aliases(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if value is None or not isinstance(value, Iterable):
        return []
    return [t for v in value if (t := _text(v))]


def _join(*parts: str | None) -> str:
    """Parts of a label: Latin words apart ("Unioninkatu 29"), Chinese together (3栋)."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and _is_latin_alnum(out[-1]) and _is_latin_alnum(part[0]):
            out += " "
        out += part
    return out


def _rows(frame: pd.DataFrame, columns: Sequence[str], name: str) -> Iterable[tuple[Any, ...]]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the {name} frame lacks columns {missing}", field=name, details={"missing": missing}
        )
    return zip(*(frame[c].tolist() for c in columns), strict=True)


def _medoid(points: Sequence[tuple[float, float]]) -> int:
    """Position of the point nearest the mean of ``points`` (a compound's central building)."""
    lon0 = sum(p[0] for p in points) / len(points)
    lat0 = sum(p[1] for p in points) / len(points)
    k = math.cos(math.radians(lat0))
    return min(
        range(len(points)),
        key=lambda i: ((points[i][0] - lon0) * k) ** 2 + (points[i][1] - lat0) ** 2,
    )


class Gazetteer:
    """In-memory address index of one or more communities; see the module docstring.

    Build it with :meth:`from_frames`. It is immutable, so one instance can serve concurrent
    requests; rebuild it when the ``gazetteer`` data version changes.
    """

    def __init__(self) -> None:
        # Filled by from_frames; a bare Gazetteer() is an empty one.
        self._prefixes: tuple[str, ...] = ()
        self._admin = _admin(())
        self._lex = _Lexicon()
        self._streets: list[_Street] = []
        self._buildings: list[_Building] = []
        self._households: list[_Household] = []
        # Indexes of positions in the lists above, by normalised key. from_frames fills them
        # as defaultdicts and hands them over as plain dicts.
        self._street_by_key: dict[str, list[int]] = defaultdict(list)
        self._b_by_cb: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._b_by_sn: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._b_by_compound: dict[str, list[int]] = defaultdict(list)
        self._b_by_bld: dict[str, list[int]] = defaultdict(list)
        self._h_by_building: dict[int, list[int]] = defaultdict(list)
        self._h_by_cb: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._h_by_sn: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._h_by_bld: dict[str, list[int]] = defaultdict(list)
        self._compound_label: dict[str, str] = {}
        self._alias_label: dict[str, str] = {}
        self._choices: list[str] = []
        self._choice_names: dict[str, list[str]] = {}

    def name_keys(self) -> Collection[str]:
        """The canonical keys of every name this gazetteer knows (streets, compounds,
        aliases): an address matches exactly only when it holds one of them."""
        return self._lex.names.keys()

    # ---- building ---------------------------------------------------------------------------

    @classmethod
    def from_frames(
        cls,
        *,
        households: pd.DataFrame,
        buildings: pd.DataFrame,
        streets: pd.DataFrame,
        prefixes: Sequence[str] = (),
    ) -> Gazetteer:
        """Build the gazetteer from plain frames, one row per record.

        Parameters
        ----------
        households
            ``id, address_id, street_name, house_number, compound, building_name, unit, room,
            building_id, street_id, lon, lat`` (door point).
        buildings
            ``id, name, compound, aliases, street_name, house_number, lon, lat``
            (representative point). An alias names its buildings (one: that building;
            several: their place, and if they are of one compound, the compound). An alias
            that is another name plus the building's own name (金源小区3栋 on 金源花园's 3栋)
            also makes that other name (金源小区) a name of the compound.
        streets
            ``id, name, kind, lon, lat`` (a point on the street near its middle).
        prefixes
            The community's administrative prefixes (see :func:`normalize_address`).

        Raises
        ------
        InvalidInput
            A frame lacks a column.
        """
        g = cls()
        g._prefixes = tuple(prefixes)
        g._admin = _admin(g._prefixes)
        memo: dict[str, str] = {}

        def key(text: str | None, *strip: str) -> str | None:
            # Many cells repeat (2单元, 3栋, compound names): normalise each text once.
            if text is None:
                return None
            k = memo.get(text)
            if k is None:
                k = memo[text] = _canonical(text)
            for suffix in strip:
                if len(k) > len(suffix) and k.endswith(suffix):
                    return k[: -len(suffix)]
            return k or None

        number_memo: dict[tuple[str, bool], str | None] = {}

        def number_key(number: str | None, *context: str | None) -> str | None:
            # The script of the record's address decides what a hyphen means.
            if number is None:
                return None
            chinese = _chinese_numbering("".join(t for t in (*context, number) if t))
            k = number_memo.get((number, chinese), "")
            if k == "":
                k = number_memo[(number, chinese)] = _number_key(key(number), chinese)
            return k

        lex = g._lex
        street_id_by_key: dict[str, int] = {}
        for sid, name, _kind, lon, lat in _rows(streets, _STREET_COLUMNS, "streets"):
            name = _text(name)
            skey = key(name)
            if name is None or skey is None:
                continue
            g._street_by_key[skey].append(len(g._streets))
            street_id_by_key.setdefault(skey, int(sid))
            g._streets.append(_Street(int(sid), name, float(lon), float(lat)))
            lex.add_name(skey, _NameRef("street", skey))

        alias_buildings: dict[str, list[int]] = defaultdict(list)
        compound_aliases: dict[str, set[str]] = defaultdict(set)
        building_pos: dict[int, int] = {}
        # Streets the records name that the streets layer lacks (an OpenStreetMap extract
        # need not hold every street of a roster): key → their name as first written and
        # the points of their buildings and doors. Their names are read like the layer's, so
        # a household's own address is always an exact key.
        named_only: dict[str, tuple[str, list[tuple[float, float]]]] = {}

        def street_name_key(name: str | None, point: tuple[float, float]) -> str | None:
            skey = key(name)
            if name is None or skey is None or skey in g._street_by_key:
                return skey
            named_only.setdefault(skey, (name, []))[1].append(point)
            lex.add_name(skey, _NameRef("street", skey))
            return skey

        cols = _rows(buildings, _BUILDING_COLUMNS, "buildings")
        for bid, name, compound, aliases, street_name, number, lon, lat in cols:
            name, compound, street_name, number = map(_text, (name, compound, street_name, number))
            ckey, bkey = key(compound), key(name, "栋", "号")
            skey = street_name_key(street_name, (float(lon), float(lat)))
            nkey = number_key(number, street_name, compound)
            if compound and name:
                label = _join(compound, name)
            elif street_name and number:
                label = _join(street_name, number)
            else:
                label = name or compound or street_name or f"#{int(bid)}"
            place = ckey or (f"{skey}|{nkey}" if skey and nkey else f"#{int(bid)}")
            pos = len(g._buildings)
            building_pos[int(bid)] = pos
            street_id = street_id_by_key.get(skey) if skey else None
            g._buildings.append(
                _Building(int(bid), label, float(lon), float(lat), street_id, bkey, place)
            )
            if ckey:
                g._compound_label.setdefault(ckey, compound or ckey)
                g._b_by_compound[ckey].append(pos)
                lex.add_name(ckey, _NameRef("compound", ckey))
                if bkey:
                    g._b_by_cb[(ckey, bkey)].append(pos)
                    lex.buildings[ckey].add(bkey)
            if bkey:
                g._b_by_bld[bkey].append(pos)
            if skey and nkey:
                g._b_by_sn[(skey, nkey)].append(pos)
                lex.numbers[skey].add(nkey)
            for alias in _aliases(aliases):
                akey = key(alias)
                if akey:
                    alias_buildings[akey].append(pos)
                    g._alias_label.setdefault(akey, alias)
                    # "金源小区1栋" on building 1栋 of 金源花园: 金源小区 is the compound's
                    # other name (the demo data and many registers write aliases this way).
                    full = key(name)
                    if ckey and full and akey.endswith(full) and len(akey) - len(full) >= 2:
                        compound_aliases[akey[: -len(full)]].add(ckey)

        for akey, positions in alias_buildings.items():
            # An alias names its buildings (one: that building; several: their place). On
            # several buildings of a compound it is also the compound's other name, so
            # "金源小区3栋" reads like "金源花园3栋".
            lex.add_name(akey, _NameRef("alias", akey, tuple(sorted(set(positions)))))
            if len(positions) > 1:
                for place in sorted({g._buildings[p].place for p in positions}):
                    if place in g._b_by_compound:
                        lex.add_name(akey, _NameRef("compound", place))
        for akey, ckeys in compound_aliases.items():
            for ckey in sorted(ckeys):
                lex.add_name(akey, _NameRef("compound", ckey))

        cols = _rows(households, _HOUSEHOLD_COLUMNS, "households")
        for row in cols:
            hid, address_id, street_name, number, compound, bname, unit, room = row[:8]
            building_id, street_id, lon, lat = row[8:]
            street_name, number, compound, bname = map(
                _text, (street_name, number, compound, bname)
            )
            ckey, bkey = key(compound), key(bname, "栋", "号")
            skey, nkey = key(street_name), number_key(number, street_name, compound)
            ukey, rkey = key(_text(unit), "单元"), key(_text(room), "室", "房", "号")
            building_id = _int(building_id)
            bpos = building_pos.get(building_id) if building_id is not None else None
            b = g._buildings[bpos] if bpos is not None else None
            sid = _int(street_id)
            if sid is None and skey:
                sid = street_id_by_key.get(skey)
            if sid is None and b is not None:
                sid = b.street_id
            if b is not None:
                label, spot, clon, clat = b.label, f"b{bpos}", b.lon, b.lat
                bkey = bkey or b.bld
            else:
                if compound and bname:
                    label = _join(compound, bname)
                elif street_name and number:
                    label = _join(street_name, number)
                else:
                    label = compound or street_name or "-"
                spot, clon, clat = f"@{label}", float(lon), float(lat)
            street_name_key(street_name, (clon, clat))
            pos = len(g._households)
            g._households.append(
                _Household(
                    int(hid),
                    str(address_id),
                    bpos,
                    building_id,
                    sid,
                    float(lon),
                    float(lat),
                    ukey,
                    rkey,
                    bkey,
                    label,
                    spot,
                    clon,
                    clat,
                )
            )
            if bpos is not None:
                g._h_by_building[bpos].append(pos)
            if ckey and bkey:
                g._h_by_cb[(ckey, bkey)].append(pos)
                lex.buildings[ckey].add(bkey)
                g._compound_label.setdefault(ckey, compound or ckey)
                lex.add_name(ckey, _NameRef("compound", ckey))
            if bkey:
                g._h_by_bld[bkey].append(pos)
            if skey and nkey:
                g._h_by_sn[(skey, nkey)].append(pos)
                lex.numbers[skey].add(nkey)

        for skey, (name, points) in named_only.items():
            # No line to take the middle of: the central one of its buildings and doors.
            lon, lat = points[_medoid(points)]
            g._street_by_key[skey].append(len(g._streets))
            g._streets.append(_Street(None, name, lon, lat))

        lex.freeze()
        # Plain dicts from here on: a lookup of a missing key must not insert into an index
        # that concurrent requests read.
        for attr in (
            "_street_by_key", "_b_by_cb", "_b_by_sn", "_b_by_compound", "_b_by_bld",
            "_h_by_building", "_h_by_cb", "_h_by_sn", "_h_by_bld",
        ):  # fmt: skip
            setattr(g, attr, dict(getattr(g, attr)))
        # The fuzzy fallback compares the name part of an address (before its first number)
        # with the name parts of the known names: a hundred or so, never the households.
        # Building aliases such as 上塘村12号 share one name part, 上塘村.
        choice_names: dict[str, list[str]] = defaultdict(list)
        for name_key in sorted(lex.names):
            part = _split_name(name_key)[0]
            if len(part) >= 2:
                choice_names[part].append(name_key)
        g._choice_names = dict(choice_names)
        g._choices = sorted(choice_names)
        return g

    def __len__(self) -> int:
        """Number of entries: households + buildings + streets."""
        return len(self._households) + len(self._buildings) + len(self._streets)

    def __repr__(self) -> str:
        return (
            f"<Gazetteer {len(self._households)} households, {len(self._buildings)} buildings, "
            f"{len(self._streets)} streets>"
        )

    # ---- matching ---------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """:func:`normalize_address` with this gazetteer's prefixes.

        A prefix is not stripped where a known name is longer (惠城 is not stripped from a
        street 惠城路).
        """
        return _strip_admin(_canonical(text), self._admin, self._protect)

    def _protect(self, s: str, n: int) -> bool:
        hit = self._lex.name_at(s)
        return hit is not None and hit[1] > n

    def match(self, text: str, *, limit: int = 5) -> AddressMatch:
        """Match one address.

        Parameters
        ----------
        text
            The address, 1–200 characters.
        limit
            Most candidates (and suggestions) returned, 1–50.

        Raises
        ------
        InvalidInput
            ``text`` is not a string, empty, or longer than 200 characters (``field="address"``).
        NotFound
            Nothing matches; ``details["suggestions"]`` holds up to ``limit`` near names as
            :class:`Candidate` dicts and ``details["normalized"]`` the normalised input.
        """
        if not isinstance(limit, int) or not 1 <= limit <= 50:
            raise InvalidInput("limit must be an integer from 1 to 50", field="limit")
        if not isinstance(text, str):
            raise InvalidInput("address must be text", field="address")
        if len(text) > MAX_ADDRESS_LENGTH:
            raise InvalidInput(
                f"address is longer than {MAX_ADDRESS_LENGTH} characters", field="address"
            )
        canonical = _canonical(text)
        if not canonical:
            raise InvalidInput("address is empty", field="address")
        s = _strip_admin(canonical, self._admin, self._protect)

        hits = [h for p in _parse(s, self._lex) if (h := self._resolve(p, limit)) is not None]
        if hits:
            best = max(hits, key=lambda h: (h.confidence, _LEVEL_RANK[h.level]))
            return self._answer(best, s, fuzzy=False)

        fuzzy = self._fuzzy(s, limit)
        if fuzzy:
            best = fuzzy[0]
            # Near-equal readings (金川路 is as close to 金山路 as to 金源路): share the confidence.
            top = best.confidence - 1e-9
            share = len({h.place for h in fuzzy if h.confidence >= top})
            seen: set[tuple[str, str]] = set()
            cands: list[Candidate] = []
            for c in [*best.candidates, *(self._candidate(h) for h in fuzzy)]:
                if (c.level, c.label) not in seen:
                    seen.add((c.level, c.label))
                    conf = c.confidence / share if c.confidence >= top else c.confidence
                    cands.append(_replace_cand(c, conf))
            best = _replace_hit(
                best,
                confidence=best.confidence / share,
                candidates=tuple(cands[:limit]) if len(cands) > 1 else (),
            )
            return self._answer(best, s, fuzzy=True)

        raise NotFound(
            "no address in the gazetteer matches",
            field="address",
            details={
                "suggestions": [c.to_dict() for c in self._suggest(s, limit)],
                "normalized": s,
            },
        )

    def match_many(
        self, texts: Sequence[str], *, limit: int = 5
    ) -> list[AddressMatch | GeogridError]:
        """Match each address; a failed item yields its error in place, never raises."""
        out: list[AddressMatch | GeogridError] = []
        for text in texts:
            try:
                out.append(self.match(text, limit=limit))
            except GeogridError as exc:
                out.append(exc)
        return out

    # ---- internals --------------------------------------------------------------------------

    def _answer(self, hit: _Hit, normalized: str, *, fuzzy: bool) -> AddressMatch:
        h = self._households[hit.household] if hit.household is not None else None
        return AddressMatch(
            level="fuzzy" if fuzzy else hit.level,
            confidence=round(hit.confidence, 4),
            normalized=normalized,
            lon=hit.lon,
            lat=hit.lat,
            address_id=h.address_id if h else None,
            household_id=h.id if h else None,
            building_id=hit.building_id,
            street_id=hit.street_id,
            candidates=tuple(_replace_cand(c, round(c.confidence, 4)) for c in hit.candidates),
        )

    def _fuzzy(self, s: str, limit: int) -> list[_Hit]:
        """Readings with a fuzzily matched name, best first (empty if none reaches the cutoff)."""
        name, rest = _split_name(s)
        if len(name) < 2 or not self._choices:
            return []
        # Try a few names whatever the caller's limit, so that ties are seen.
        tries = max(limit, _FUZZY_TRIES)
        matches = process.extract(
            name, self._choices, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=tries
        )
        skip = 1.0
        if not matches:
            # Unknown text before the name (an unlisted prefix): try the name's suffixes.
            best: list[tuple[str, float, int]] = []
            # Skip whole words only: a Latin name's tail ("…inkatu") is not a name.
            starts = [i for i in range(1, len(name) - 1) if _is_cjk(name[i]) or name[i - 1] == "-"]
            for i in starts:
                found = process.extract(
                    name[i:],
                    self._choices,
                    scorer=fuzz.ratio,
                    score_cutoff=FUZZY_CUTOFF,
                    limit=tries,
                )
                if found and (not best or found[0][1] > best[0][1]):
                    best = found
            matches, skip = best, SKIPPED_TEXT_FACTOR
        hits: list[_Hit] = []
        for choice, score, _ in matches:
            # Correct the name and read the address again exactly.
            for parse in _parse(choice + rest, self._lex):
                factor = parse.factor * skip * score / 100.0
                hit = self._resolve(replace(parse, factor=factor), limit)
                if hit is not None:
                    hits.append(hit)
        hits.sort(key=lambda h: (-h.confidence, -_LEVEL_RANK[h.level]))
        return hits

    def _suggest(self, s: str, limit: int) -> list[Candidate]:
        name, _ = _split_name(s)
        if not name or not self._choices:
            return []
        out: list[Candidate] = []
        seen: set[tuple[str, str]] = set()
        found = process.extract(
            name, self._choices, scorer=fuzz.ratio, score_cutoff=SUGGESTION_CUTOFF, limit=limit
        )
        for choice, score, _ in found:
            if choice not in self._lex.names:
                # Only a name part (上塘村 of the aliases 上塘村1号 …): its central building.
                positions = sorted(
                    {
                        b
                        for k in self._choice_names[choice]
                        for r in self._lex.names[k]
                        for b in (r.buildings or self._b_by_compound.get(r.key, ()))
                    }
                )
                if positions:
                    b = self._buildings[positions[self._medoid(positions)]]
                    c = Candidate("building", choice, score / 100, b.lon, b.lat, b.id, b.street_id)
                    if (c.level, c.label) not in seen:
                        seen.add((c.level, c.label))
                        out.append(_replace_cand(c, round(score / 100, 4)))
                continue
            for ref in self._lex.names[choice]:
                if ref.kind == "street":
                    cands = [
                        self._street_hit(i, score / 100).as_candidate()
                        for i in self._street_by_key[ref.key]
                    ]
                elif ref.kind == "compound":
                    found_c = self._compound_candidate(ref.key, score / 100)
                    cands = [found_c] if found_c is not None else []
                elif len(ref.buildings) == 1:
                    cands = [self._building_hit(ref.buildings[0], score / 100).as_candidate()]
                else:  # an alias of several buildings: their central one, under the alias
                    b = self._buildings[ref.buildings[self._medoid(ref.buildings)]]
                    label = self._alias_label.get(ref.key, ref.key)
                    cands = [
                        Candidate("building", label, score / 100, b.lon, b.lat, b.id, b.street_id)
                    ]
                for c in cands:
                    if (c.level, c.label) not in seen:
                        seen.add((c.level, c.label))
                        out.append(_replace_cand(c, round(score / 100, 4)))
        return out[:limit]

    def _candidate(self, hit: _Hit) -> Candidate:
        """A hit as a public candidate: a door is shown as its building (label and point)."""
        if hit.household is not None:
            return self._household_hit(hit.household, hit.confidence, door=False).as_candidate()
        return hit.as_candidate()

    def _street_hit(self, i: int, confidence: float, cands: Sequence[Candidate] = ()) -> _Hit:
        st = self._streets[i]
        return _Hit("street", confidence, st.name, st.lon, st.lat, None, None, st.id, tuple(cands))

    def _building_hit(self, i: int, confidence: float, cands: Sequence[Candidate] = ()) -> _Hit:
        b = self._buildings[i]
        return _Hit(
            "building", confidence, b.label, b.lon, b.lat, None, b.id, b.street_id, tuple(cands)
        )

    def _household_hit(
        self, i: int, confidence: float, cands: Sequence[Candidate] = (), *, door: bool = True
    ) -> _Hit:
        """The household's door (``door``), or its building-level place without its id."""
        h = self._households[i]
        if door:
            return _Hit(
                "door",
                confidence,
                h.label,
                h.lon,
                h.lat,
                i,
                h.building_id,
                h.street_id,
                tuple(cands),
            )
        if h.building is not None:
            return self._building_hit(h.building, confidence, cands)
        return _Hit(
            "building",
            confidence,
            h.label,
            h.cand_lon,
            h.cand_lat,
            None,
            None,
            h.street_id,
            tuple(cands),
        )

    def _compound_candidate(self, ckey: str, confidence: float) -> Candidate | None:
        """The compound as a candidate at its central building; None if it has no buildings."""
        positions = self._b_by_compound.get(ckey)
        if not positions:
            return None
        b = self._buildings[positions[self._medoid(positions)]]
        return Candidate(
            "building",
            self._compound_label.get(ckey, ckey),
            confidence,
            b.lon,
            b.lat,
            b.id,
            b.street_id,
        )

    def _medoid(self, positions: Sequence[int]) -> int:
        return _medoid([(self._buildings[p].lon, self._buildings[p].lat) for p in positions])

    def _doors(self, households: Collection[int], unit: str | None, room: str | None) -> list[int]:
        """Households the unit and room designate, by id.

        A missing unit is a wildcard when a room is given. With neither, a household is meant
        only if it is the one household of its building (a village house): "金源花园3栋"
        names the building even if a shop in it has no unit or room.
        """
        if unit is None and room is None:
            per_spot: dict[str, list[int]] = defaultdict(list)
            for i in households:
                per_spot[self._households[i].spot].append(i)
            out = [
                only[0]
                for only in per_spot.values()
                if len(only) == 1
                and self._households[only[0]].unit is None
                and self._households[only[0]].room is None
            ]
        elif room is None:
            out = [
                i
                for i in households
                if self._households[i].room is None and self._households[i].unit == unit
            ]
        else:
            out = [
                i
                for i in households
                if self._households[i].room == room
                and (unit is None or self._households[i].unit == unit)
            ]
        return sorted(out, key=lambda i: self._households[i].id)

    def _resolve(self, p: _Parse, limit: int) -> _Hit | None:
        """The best place for one reading, or None if nothing fits."""
        pa, factor = p.parsed, p.factor
        bs: list[int] = []
        hs: set[int] = set()
        door_ok = True
        if p.kind == "alias":
            bs = list(p.alias_buildings)
        else:
            if pa.compound is not None and pa.building is not None:
                bs = list(self._b_by_cb.get((pa.compound, pa.building), ()))
                hs.update(self._h_by_cb.get((pa.compound, pa.building), ()))
            if not bs and not hs and pa.street is not None and pa.house_number is not None:
                bs, hs = self._by_number(pa, (pa.house_number,))
                if not bs and not hs:
                    # Not a known number: another number may stand in for it (a range that
                    # covers it, the number of an unknown suffix), never as a different door.
                    numbers, near, door_ok = self._near_numbers(pa.street, pa.house_number)
                    bs, hs = self._by_number(pa, numbers)
                    if bs or hs:
                        factor *= near
            if p.kind == "none" and pa.building is not None:
                bs = list(self._b_by_bld.get(pa.building, ()))
                hs.update(self._h_by_bld.get(pa.building, ()))
        for b in bs:
            hs.update(self._h_by_building.get(b, ()))
        bs.sort(key=lambda b: self._buildings[b].id)
        detail = pa.unit is not None or pa.room is not None

        doors = self._doors(hs, pa.unit, pa.room) if door_ok else []
        if doors:
            if len(doors) == 1:
                return self._household_hit(doors[0], factor)
            spots: dict[str, int] = {}
            for i in doors:
                spots.setdefault(self._households[i].spot, i)
            if len(spots) == 1:
                # Room given without its unit, and several units have it: the building is sure.
                return self._household_hit(doors[0], factor * UNRESOLVED_DETAIL_FACTOR, door=False)
            # Doors in several buildings (compound omitted: 3栋2单元502): first by id, listed.
            return self._spread(list(spots.values()), factor, limit, door=True)

        if detail:
            factor *= UNRESOLVED_DETAIL_FACTOR
        if bs:
            return self._buildings_hit(bs, factor, limit)
        if hs:
            # Households with no building record (village houses): answer their building level.
            spots = {}
            for i in sorted(hs, key=lambda i: self._households[i].id):
                spots.setdefault(self._households[i].spot, i)
            return self._spread(list(spots.values()), factor, limit, door=False)
        compound_bs = self._b_by_compound.get(pa.compound) if pa.compound is not None else None
        if compound_bs:
            # A compound of several buildings gets COARSE_FACTOR in _buildings_hit; a compound
            # of one building only when the input named another building.
            one_wrong = len(compound_bs) == 1 and pa.building is not None
            return self._buildings_hit(
                compound_bs, factor * (COARSE_FACTOR if one_wrong else 1.0), limit
            )
        if pa.street is not None and self._street_by_key.get(pa.street):
            streets = self._street_by_key[pa.street]
            asked = pa.house_number is not None or pa.building is not None or detail
            conf = factor * (COARSE_FACTOR if asked else 1.0) / len(streets)
            cands = [self._street_hit(i, conf).as_candidate() for i in streets]
            return self._street_hit(streets[0], conf, cands[:limit] if len(cands) > 1 else ())
        return None

    def _by_number(self, pa: ParsedAddress, numbers: Iterable[str]) -> tuple[list[int], set[int]]:
        """Buildings and households at these numbers of ``pa.street`` (and its building, if
        it names one without a compound)."""
        bs: list[int] = []
        hs: set[int] = set()
        for number in numbers:
            bs.extend(self._b_by_sn.get((pa.street or "", number), ()))
            hs.update(self._h_by_sn.get((pa.street or "", number), ()))
        if pa.building is not None and pa.compound is None:
            bs = [b for b in bs if self._buildings[b].bld == pa.building]
            hs = {h for h in hs if self._households[h].bld == pa.building}
        return bs, hs

    def _near_numbers(self, street: str, number: str) -> tuple[tuple[str, ...], float, bool]:
        """Known numbers of ``street`` that stand in for the unknown ``number``: (their keys,
        the factor of the answer, whether it may be a door).

        - 12a or 12之1 (suffix, sub-number) → 12, below door level: 12 is another door.
        - A plain 3 → the Latin ranges that cover it (3-5, :func:`_covers`), doors allowed:
          the door of 3-5 is the door of 3.
        - A Latin range 12-14 → the plain numbers it covers, below door level.
        """
        known = self._lex.numbers.get(street, ())
        suffixed = _SUFFIXED_KEY.fullmatch(number)
        if suffixed is not None:
            base = suffixed.group(1)
            return ((base,) if base in known else ()), COARSE_FACTOR, False
        if number.isascii() and number.isdigit():
            n = int(number)
            spans = sorted(k for k in known if (span := _range(k)) and _covers(span, n))
            return tuple(spans), RANGE_FACTOR, True
        span = _range(number)
        if span is not None:
            covered = sorted(
                k for k in known if k.isascii() and k.isdigit() and _covers(span, int(k))
            )
            return tuple(covered), COARSE_FACTOR, False
        return (), 1.0, False

    def _spread(self, households: list[int], factor: float, limit: int, *, door: bool) -> _Hit:
        """The first of households in different buildings; the confidence shared among them."""
        if len(households) == 1:
            return self._household_hit(households[0], factor, door=door)
        conf = factor / len(households)
        cands = [
            self._household_hit(i, conf, door=False).as_candidate() for i in households[:limit]
        ]
        return self._household_hit(households[0], conf, cands, door=door)

    def _buildings_hit(self, bs: Sequence[int], factor: float, limit: int) -> _Hit:
        """One building, the centre of one place (a compound), or the first of several places."""
        if len(bs) == 1:
            return self._building_hit(bs[0], factor)
        places: dict[str, list[int]] = defaultdict(list)
        for b in sorted(bs, key=lambda b: self._buildings[b].id):
            places[self._buildings[b].place].append(b)
        if len(places) == 1:
            # Several buildings of one place: answer its central building, list the others.
            conf = factor * COARSE_FACTOR
            centre = bs[self._medoid(bs)]
            order = [
                centre,
                *(b for b in sorted(bs, key=lambda b: self._buildings[b].id) if b != centre),
            ]
        else:
            conf = factor / len(places)
            order = [b for group in places.values() for b in group]
        cands = [self._building_hit(b, conf).as_candidate() for b in order[:limit]]
        return self._building_hit(order[0], conf, cands)


def _replace_hit(hit: _Hit, *, confidence: float, candidates: tuple[Candidate, ...]) -> _Hit:
    return _Hit(
        hit.level,
        confidence,
        hit.label,
        hit.lon,
        hit.lat,
        hit.household,
        hit.building_id,
        hit.street_id,
        candidates,
    )


def _replace_cand(c: Candidate, confidence: float) -> Candidate:
    return Candidate(c.level, c.label, confidence, c.lon, c.lat, c.building_id, c.street_id)
