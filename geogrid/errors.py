"""Domain errors of geogrid.

The library raises these; only ``api/`` maps them to HTTP statuses (one table in
``api/errors.py``) and the CLI prints them. Every message is safe to show to a client:
it says what is wrong and where (``field``, ``location``) and never carries personal data.
"""

from __future__ import annotations

from typing import Any


class GeogridError(Exception):
    """Base of every error geogrid raises on purpose."""

    #: Stable machine-readable code, written into ``docs/api.md``.
    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        location: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.location = location
        self.details = details or {}

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.message}{where}"

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of the API's error envelope."""
        out: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.location:
            out["location"] = self.location
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(GeogridError):
    """A parameter or a record is malformed or out of range."""

    code = "invalid_input"


class TooLarge(InvalidInput):
    """A body or file is larger than the limit for it (the message says the limit)."""

    code = "too_large"


class InvalidGeometry(InvalidInput):
    """A geometry is unclosed, invalid, of the wrong type or outside the community."""

    code = "invalid_geometry"


class CRSError(InvalidInput):
    """A coordinate reference system is unknown, missing or contradicts the file."""

    code = "invalid_crs"


class TooComplex(InvalidInput):
    """Input within the size limit whose work is not: more features or vertices than allowed,
    or more time than the budget (``geogrid.budget``). The message gives the numbers."""

    code = "too_complex"


class ImportRefused(InvalidInput):
    """A file import was refused whole; ``details['problems']`` lists every fault found."""

    code = "import_refused"


class InfeasiblePlan(InvalidInput):
    """A redraw cannot meet its constraints; the message says which and why."""

    code = "infeasible_plan"


class InvalidPlan(InvalidInput):
    """A boundary plan failed validation; ``details['problems']`` lists every problem."""

    code = "invalid_plan"


class NotFound(GeogridError):
    """The thing asked for does not exist."""

    code = "not_found"


class Conflict(GeogridError):
    """The request conflicts with the current state (duplicate, stale version, wrong state)."""

    code = "conflict"


class NotAuthenticated(GeogridError):
    """No key, or a wrong, revoked or expired key or session."""

    code = "unauthorized"


class Forbidden(GeogridError):
    """The key is valid but its role or scope does not allow this."""

    code = "forbidden"


class DatabaseNotReady(GeogridError):
    """The database is missing its schema or a spatial extension."""

    code = "database_not_ready"


class ShuttingDown(GeogridError):
    """The process is stopping (SIGTERM): long work stopped at its next check. Try again."""

    code = "shutting_down"


class DatabaseUnavailable(GeogridError):
    """The database cannot be reached now (the server is down or restarting, or another
    writer held the SQLite file past the busy timeout). Nothing was written; the same call
    can be made again after ``retry_after`` seconds."""

    code = "database_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, field: str | None = None) -> None:
        super().__init__(message, field=field, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ConfigurationError(GeogridError):
    """A setting is missing or wrong (database URL, SpatiaLite library, …)."""

    code = "configuration_error"


class TooManyAttempts(GeogridError):
    """Too many attempts from one client in a while (the sign-in throttle): try again after
    ``retry_after`` seconds."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field, details={"retry_after": retry_after})
        self.retry_after = retry_after
