"""Time budgets for long work: a deadline and a stop signal, checked between steps.

Work running in a server thread cannot be stopped from outside: Python cannot kill a thread,
and uvicorn waits for a running request before it stops (a 54 MB plan kept a server busy for
12 minutes, SIGTERM or not). So long library work — validating, measuring and diffing a plan
(``geogrid.planning``) — takes a :class:`Budget` and calls :meth:`Budget.check` between its
steps and inside its loops. A check raises

* :class:`~geogrid.errors.TooComplex` (HTTP 422) when the budget's seconds are spent: the
  input was within the size limits but costs more time than a request may take;
* :class:`~geogrid.errors.ShuttingDown` (HTTP 503) when ``stop`` is set: the process is
  stopping (``geogrid serve`` sets it on SIGTERM), so the request ends now instead of keeping
  the server alive.

One vectorised GEOS call between two checks is not interrupted: the work bounds each call by
chunking (``CHUNK``) and the size limits bound the rest (``geogrid.planning.limits``).

>>> budget = Budget(None)
>>> budget.check("anything")  # no deadline, no stop: never raises
>>> ticks = iter([0.0, 2.0])
>>> budget = Budget(1.0, what="the work", clock=lambda: next(ticks))
>>> budget.check("step 2")
Traceback (most recent call last):
...
geogrid.errors.TooComplex: the work took longer than its budget of 1 s; stopped at step 2
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from geogrid.errors import ShuttingDown, TooComplex

__all__ = ["CHUNK", "Budget"]

#: Items (grid pairs, grids) one vectorised call handles between two checks: ~10 ms to ~1 s
#: of GEOS work each, whatever the plan's size.
CHUNK: Final = 2000


class Budget:
    """A deadline ``seconds`` from now (``None``: none) and a ``stop`` event (``None``: none).

    ``what`` names the work in the messages ("validating the plan"); ``limit_name`` (e.g. the
    setting ``GEOGRID_PLAN_MAX_SECONDS``) is added to the message when given, ``field`` to the
    errors. ``clock`` is injectable for tests (default :func:`time.monotonic`).
    """

    def __init__(
        self,
        seconds: float | None,
        *,
        what: str = "the work",
        stop: threading.Event | None = None,
        limit_name: str | None = None,
        field: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if seconds is not None and not seconds >= 0:
            raise ValueError(f"seconds must be ≥ 0 or None, got {seconds!r}")
        self.seconds = seconds
        self.what = what
        self.stop = stop
        self.limit_name = limit_name
        self.field = field
        self.clock = clock
        self.started = clock()
        self.deadline = None if seconds is None else self.started + seconds

    def check(self, step: str | None = None) -> None:
        """Raise when the process is stopping or the time is up; otherwise return at once."""
        at = f" at {step}" if step else ""
        if self.stop is not None and self.stop.is_set():
            raise ShuttingDown(
                f"the server is shutting down: {self.what} was stopped{at}; try again shortly",
                field=self.field,
            )
        if self.deadline is not None and self.clock() > self.deadline:
            setting = f" ({self.limit_name})" if self.limit_name else ""
            at = f"; stopped{at}" if step else ""
            raise TooComplex(
                f"{self.what} took longer than its budget of {self.seconds:g} s{setting}{at}",
                field=self.field,
                details={"limit_seconds": self.seconds, "step": step},
            )
