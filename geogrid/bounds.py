"""The bounds every outside value is held to: ids, dates, datetimes (docs/api.md, "Bounds").

A database id is a signed 64-bit integer: ``9223372036854775808`` overflowed the driver and
answered 500 (issue 14). Dates outside 1900–2100 overflowed the period arithmetic at either
end (``0001-01-01`` minus a day, ``9999-12-31`` plus one); no community's data lies there.
"""

from __future__ import annotations

import datetime as dt
import re

from geogrid.errors import InvalidInput

#: Ids are 1 … 2^31 − 1: the id columns are PostgreSQL ``integer`` (SQLite's would take
#: 2^63 − 1, but one bound serves both backends), so a larger one cannot exist.
MIN_ID = 1
MAX_ID = 2**31 - 1
#: Row offsets (paging) may be any non-negative 64-bit integer: ``OFFSET`` is ``bigint``.
MAX_OFFSET = 2**63 - 1
#: Dates and datetimes are 1900-01-01 … 2100-12-31.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)
#: What an API date looks like: ``YYYY-MM-DD`` with a year in range. A JSON-Schema pattern
#: too, so contract tests generate only dates the service can take.
DATE_PATTERN = r"^(19[0-9]{2}|20[0-9]{2}|2100)-[0-9]{2}-[0-9]{2}$"
_DATE = re.compile(DATE_PATTERN)
#: ASCII digits only: ``str.isdigit`` is also true of "²" and "١", which ``int()`` refuses.
_DIGITS = re.compile(r"[0-9]+")
#: What text may not hold: the C0 controls but tab, line feed and carriage return, lone
#: surrogates, U+FFFE and U+FFFF. XML 1.0 cannot carry them (https://www.w3.org/TR/xml/#charsets;
#: one ``\x0b`` made Open311's whole ``requests.xml`` unparseable) and PostgreSQL refuses NUL.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: str) -> str:
    """``value`` without the characters no text field can hold (they carry no meaning)."""
    return _NOT_TEXT.sub("", value)


def check_id(value: int, *, field: str) -> int:
    """``value`` if it is a possible id, else :class:`InvalidInput` naming ``field``."""
    if not MIN_ID <= value <= MAX_ID:
        raise InvalidInput(f"{field} must be between {MIN_ID} and {MAX_ID}", field=field)
    return value


def parse_id(text: str, *, field: str) -> int:
    """An id written in ASCII digits, within bounds."""
    if not _DIGITS.fullmatch(text):
        raise InvalidInput(f"{field} must be a number, got {text!r}", field=field)
    return check_id(int(text), field=field)


def check_date(value: dt.date, *, field: str) -> dt.date:
    """``value`` if it lies within 1900–2100 (a datetime: its date)."""
    day = value.date() if isinstance(value, dt.datetime) else value
    if not MIN_DATE <= day <= MAX_DATE:
        raise InvalidInput(
            f"{field} must lie between {MIN_DATE} and {MAX_DATE}, got {value.isoformat()}",
            field=field,
        )
    return value


def parse_date(text: str, *, field: str) -> dt.date:
    """A ``YYYY-MM-DD`` date within bounds; a number (``0``) is not a date."""
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise InvalidInput(
            f"{field} must be a date YYYY-MM-DD (1900–2100), got {text!r}", field=field
        )
    try:
        return check_date(dt.date.fromisoformat(text), field=field)
    except ValueError:
        raise InvalidInput(f"{field} is not a calendar date: {text!r}", field=field) from None
