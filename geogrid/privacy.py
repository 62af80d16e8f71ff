"""Personal data rules shared by every output: masked names.

Public and official views show masked names only (docs/api.md, "personal data"); one
function masks them everywhere (lookup answers, maps, exports, requests, webhooks).
"""

from __future__ import annotations

import re
from typing import Final

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
