"""Periods of dates in a community's time zone.

Periods select requests by received date; ``from`` and ``to`` are inclusive local dates, so
2018-04-18 includes everything received that day *in the community's own zone*: a period over
communities in several zones is taken in each one's (:meth:`Period.in_zone`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geogrid.errors import ConfigurationError, InvalidInput

DEFAULT_TZ = "Asia/Shanghai"
#: The earliest date a period may start on when none is given.
EPOCH = dt.date(1970, 1, 1)


def zone(name: str = DEFAULT_TZ) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {name!r}", field="timezone") from exc


@dataclass(frozen=True)
class Period:
    """Inclusive local dates ``start``…``end`` and their half-open UTC-aware bounds."""

    start: dt.date
    end: dt.date
    tz: str = DEFAULT_TZ
    #: No end was asked for: the period runs to today, wherever it is taken.
    open_end: bool = False

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidInput(
                f"the period ends ({self.end}) before it starts ({self.start})", field="to"
            )

    @property
    def lower(self) -> dt.datetime:
        """First instant of the period (aware)."""
        return dt.datetime.combine(self.start, dt.time(), zone(self.tz))

    @property
    def upper(self) -> dt.datetime:
        """First instant after the period (aware)."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), zone(self.tz))

    def in_zone(self, tz: str) -> Period:
        """The same local dates in zone ``tz`` (an open end is today there)."""
        if tz == self.tz:
            return self
        end = max(today(tz), self.start) if self.open_end else self.end
        return Period(self.start, end, tz, self.open_end)

    def to_dict(self, zones: Iterable[str] | None = None) -> dict[str, str | None]:
        """``from``, ``to`` and ``timezone``: the zone of ``zones`` (the communities the
        figures cover) when they share one, None when they differ."""
        shared = set(zones) if zones is not None else {self.tz}
        tz = shared.pop() if len(shared) == 1 else (self.tz if not shared else None)
        return {
            "from": self.start.isoformat(),
            "to": self.in_zone(tz or self.tz).end.isoformat(),
            "timezone": tz,
        }


def today(tz: str = DEFAULT_TZ) -> dt.date:
    return dt.datetime.now(zone(tz)).date()


def parse_date(value: str | dt.date | None, *, field: str) -> dt.date | None:
    """An ISO 8601 date (``2017-07-01``); None stays None."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"{field} must be a date like 2017-07-01, got {value!r}", field=field
        ) from exc


def period(
    start: str | dt.date | None, end: str | dt.date | None, *, tz: str = DEFAULT_TZ
) -> Period:
    """A period from optional bounds: no start = all history, no end = today."""
    s = parse_date(start, field="from") or EPOCH
    e = parse_date(end, field="to")
    return Period(s, e or max(today(tz), s), tz, open_end=e is None)


def iso(value: dt.datetime | None, tz: str = DEFAULT_TZ) -> str | None:
    """ISO 8601 with the zone's offset (``2018-04-18T09:30:00+08:00``)."""
    return None if value is None else value.astimezone(zone(tz)).isoformat()


_SPAN_UNITS = {"y": "years", "m": "months", "d": "days"}


def ago(
    span: str, *, now: dt.datetime, tz: str = DEFAULT_TZ, field: str = "older_than"
) -> dt.datetime:
    """The instant ``span`` before ``now``: ``2y``, ``18m`` or ``90d``, counted on the
    calendar of zone ``tz`` (a month back from 31 March is the last day of February).

    >>> now = dt.datetime(2026, 3, 31, 4, tzinfo=dt.UTC)
    >>> ago("1m", now=now).isoformat()
    '2026-02-28T04:00:00+00:00'
    >>> ago("2y", now=now).isoformat()
    '2024-03-31T04:00:00+00:00'
    """
    text = span.strip().lower() if isinstance(span, str) else ""
    number, unit = text[:-1], text[-1:]
    if (
        unit not in _SPAN_UNITS
        or not number.isascii()
        or not number.isdigit()
        or not 0 < int(number) <= 100_000
    ):
        raise InvalidInput(
            f"{field} must be a number and a unit: 2y (years), 18m (months) or 90d (days); "
            f"got {span!r}",
            field=field,
        )
    n = int(number)
    local = now.astimezone(zone(tz))
    if unit == "d":
        return (local - dt.timedelta(days=n)).astimezone(now.tzinfo)
    months = local.year * 12 + local.month - 1 - (n * 12 if unit == "y" else n)
    year, month = divmod(months, 12)
    if year < 1:
        raise InvalidInput(f"{field} {span!r} reaches before the year 1", field=field)
    month += 1
    # The same day of the month, or the month's last day when it has fewer.
    first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
    day = min(local.day, (first_of_next - dt.timedelta(days=1)).day)
    return local.replace(year=year, month=month, day=day).astimezone(now.tzinfo)
