"""Personal data rules shared by every output: masked names, scrubbed free text, blurred
places, pseudonymous addresses (docs/api.md, "Personal data"; PIPL art. 6: purpose and the
minimum necessary).

Public and official views show masked names only; one function masks them everywhere
(lookup answers, maps, exports, requests, webhooks). Free text that residents type
(descriptions, notes, comments) is scrubbed of phone numbers, ID numbers and e-mail addresses
for every reader without the personal-data right. What the public sees of a place is the
centre of its H3 cell (:data:`PUBLIC_H3_RESOLUTION`), as on the public maps.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

import h3

#: The H3 resolution public views blur points to (cells of about 25 m edge, 2,150 m²).
PUBLIC_H3_RESOLUTION: Final = 11

# CJK ideographs (URO, extension A, compatibility) and the middle dots of transliterated names.
_CJK_RE: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPLIT_RE: Final = re.compile(r"[\s·•.\-]+")


def mask_name(name: str | None) -> str:
    """A name as public and official views may show it (docs/api.md, "personal data").

    Chinese names keep the first and the last character: 张明 → ``张*``, 张小明 → ``张*明``,
    欧阳小明 → ``欧*明`` (one ``*`` whatever the length, so the length is not given away
    either). Latin-script names keep each word's initial: "John Smith" → ``J*** S***``.

    >>> mask_name("张小明"), mask_name("张明"), mask_name("John Smith")
    ('张*明', '张*', 'J*** S***')
    """
    if not isinstance(name, str):  # None, or a missing value from pandas (NaN)
        return ""
    text = name.strip()
    if not text:
        return ""
    if _CJK_RE.search(text):
        chars = [c for c in text if not c.isspace()]
        if len(chars) <= 1:
            return "*"
        if len(chars) == 2:
            return chars[0] + "*"
        return chars[0] + "*" + chars[-1]
    words = [w for w in _SPLIT_RE.split(text) if w]
    return " ".join(w[0] + "***" for w in words) if words else "*"


# --- free text -------------------------------------------------------------------------------

# Resident ID numbers (GB 11643: 17 digits and a check digit or X; the old 15-digit form),
# found whatever the check digit says: a mistyped number is still somebody's.
_ID_RE: Final = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
# Mobile numbers (1[3-9]x, 11 digits, optionally +86 / spaces / hyphens) and landlines with an
# area code (0xx-xxxxxxxx).
_PHONE_RE: Final = re.compile(
    r"(?<![0-9])(?:(?:\+|00)?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?![0-9])"
    r"|(?<![0-9])0\d{2,3}[\s-]?\d{7,8}(?![0-9])"
)
_EMAIL_RE: Final = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
#: What a scrubbed value is replaced with (the kind stays readable, the value is gone).
SCRUBBED: Final = {"id": "[证件号已隐藏]", "phone": "[电话已隐藏]", "email": "[邮箱已隐藏]"}


def scrub(text: str | None) -> str | None:
    """``text`` without phone numbers, ID numbers and e-mail addresses.

    >>> scrub("张先生 13800138000，身份证 110101199003071234，a.b@example.cn")
    '张先生 [电话已隐藏]，身份证 [证件号已隐藏]，[邮箱已隐藏]'
    """
    if not text:
        return text
    # Fullwidth digits (１３８…) are digits to a reader too.
    text = text.translate(_FULLWIDTH_DIGITS)
    text = _EMAIL_RE.sub(SCRUBBED["email"], text)
    text = _ID_RE.sub(SCRUBBED["id"], text)  # before phones: an ID holds 11-digit runs
    return _PHONE_RE.sub(SCRUBBED["phone"], text)


_FULLWIDTH_DIGITS: Final = str.maketrans("０１２３４５６７８９＋－", "0123456789+-")


# --- places and addresses --------------------------------------------------------------------


def snap(lon: float, lat: float, resolution: int = PUBLIC_H3_RESOLUTION) -> tuple[float, float]:
    """The centre of the H3 cell holding the point: where the public sees it."""
    lat_c, lon_c = h3.cell_to_latlng(h3.latlng_to_cell(lat, lon, resolution))
    return lon_c, lat_c


def pseudonym(value: str | None, key: bytes) -> str | None:
    """A stable stand-in for an identifier (a keyed hash: the same with the same key, not
    reversible without it): ``a-`` and 16 hex digits of HMAC-SHA256."""
    if value is None:
        return None
    return "a-" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
