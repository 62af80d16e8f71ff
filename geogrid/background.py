"""Background work: a daemon thread that calls a function every few seconds until stopped.

The lookup service polls its change counters this way (``geogrid.lookup.service``), and so
does the API's webhook worker. A :class:`Poller` waits on an :class:`threading.Event`
between rounds, so :meth:`Poller.stop` wakes it at once instead of after a full interval;
the thread is a daemon (it never keeps the process alive) and a round that raises is
logged, not fatal: the next round tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Poller"]

log = logging.getLogger("geogrid.background")


class Poller:
    """Calls ``work()`` every ``interval`` seconds on a daemon thread named ``name``.

    The first call comes one interval after :meth:`start` (do a first round yourself when it
    is needed at once). An exception from ``work`` goes to ``on_error`` (default: a warning
    in the ``geogrid.background`` log) and the thread goes on. :meth:`stop` waits for a
    running round at most ``join_timeout`` seconds; a stopped poller can be started again.
    An ``interval`` of 0 (or less) turns polling off: :meth:`start` does nothing.

    >>> rounds = []
    >>> poller = Poller(lambda: rounds.append(1), interval=0.01, name="example")
    >>> poller.start()
    >>> poller.stop()
    >>> poller.running
    False
    """

    def __init__(
        self,
        work: Callable[[], object],
        *,
        interval: float,
        name: str,
        on_error: Callable[[Exception], None] | None = None,
        join_timeout: float = 10.0,
    ) -> None:
        self.work = work
        self.interval = interval
        self.name = name
        self.on_error = on_error
        self.join_timeout = join_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the thread (nothing when it runs already or ``interval`` ≤ 0)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end and wait for it (at most ``join_timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.work()
            except Exception as exc:  # keep the thread alive; the next round tries again
                if self.on_error is None:
                    log.warning("%s: round failed: %s", self.name, exc)
                else:
                    self.on_error(exc)
