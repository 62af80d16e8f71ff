"""Secrets out of the logs (issue 14, finding 6): a filter on the server's loggers.

An API key in a URL (``?api_key=…``, which Open311 clients send) was written whole into the
access log. Whatever a route accepts, no log line may carry a secret: the filter rewrites
``api_key``, ``key``, ``token``, ``secret``, ``password`` and ``csrf_token`` query values,
and any geogrid key (``gg_<prefix>_<secret>``, whose prefix names it in lists and stays),
in every log record the process makes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

_PARAMS = re.compile(
    r"(?P<name>(?:^|[?&;\s])(?:api_key|apikey|key|token|secret|password|csrf_token)=)[^&;\s\"']*",
    re.IGNORECASE,
)
_KEYS = re.compile(r"\b(gg_[0-9a-f]{8})_[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """``text`` with secret query values and key secrets replaced by ``[redacted]``."""
    return _KEYS.sub(r"\1_[redacted]", _PARAMS.sub(r"\g<name>[redacted]", text))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value
    # An object (httpx logs its URL object): its text, if that text held a secret.
    text = str(value)
    cleaned = redact(text)
    return cleaned if cleaned != text else value


def _redacting(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.msg = _clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return record

    make.redacting = True  # type: ignore[attr-defined]
    return make


def install() -> None:
    """Redact every log record of the process as it is made (once, however many apps are
    built). A record factory, not a logger filter: filters do not reach child loggers'
    records, nor the records of libraries (uvicorn's access log, httpx's)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacting", False):
        logging.setLogRecordFactory(_redacting(current))
