"""Parameter types of the HTTP API held to the bounds of ``geogrid.bounds``: ids within
1 … 2^63 − 1, dates ``YYYY-MM-DD`` within 1900–2100 (docs/api.md, "Bounds").

A value out of bounds is refused by validation (422 ``invalid_input`` naming the parameter)
before a handler runs, and the OpenAPI document states the bounds, so contract tests
(schemathesis) generate only what the service means to take.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from geogrid import bounds
from geogrid.errors import InvalidInput


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return bounds.check_date(value, field="date")
    try:
        return bounds.parse_date(value, field="date")
    except InvalidInput as exc:
        # A custom error, not ValueError: its message is shown as is ("Value error, …").
        raise PydanticCustomError("date", exc.message.removeprefix("date ")) from None


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: A database id.
Id = Annotated[int, Interval(ge=bounds.MIN_ID, le=bounds.MAX_ID)]
#: An id in a strict JSON body: a number with no fraction (JSON Schema's "integer" takes
#: ``12.0``), never a string.
WholeId = Annotated[Id, BeforeValidator(_whole)]
#: A row offset for paging.
Offset = Annotated[int, Interval(ge=0, le=bounds.MAX_OFFSET)]
#: A calendar date, ``YYYY-MM-DD``, 1900–2100; never a number (``?to=0`` is not 1970-01-01).
Day = Annotated[
    dt.date,
    BeforeValidator(_day),
    WithJsonSchema({"type": "string", "format": "date", "pattern": bounds.DATE_PATTERN}),
]
