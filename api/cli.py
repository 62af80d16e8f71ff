"""The console script ``geogrid``: the library's CLI plus ``serve``, which needs the app.

Kept here so the direction of imports stays ``api → geogrid``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from types import FrameType
from typing import Annotated, Any

import typer

from geogrid.cli import app
from geogrid.clikit import DatabaseOpt, errors, open_engine, settings_for
from geogrid.settings import Settings

log = logging.getLogger("geogrid.serve")


def _run(api: Any, **config: Any) -> None:
    """Serve ``api`` with uvicorn until a stop signal, telling the app the moment it comes.

    On SIGTERM or Ctrl-C uvicorn stops accepting connections and waits for the running
    requests, by default for ever: a plan validation of 2 minutes kept a stopped server up
    for those 2 minutes. Here ``app.state.stopping`` is set first, so plan work ends its
    request at its next budget check (503 ``shutting_down``, ``geogrid.budget``); what cannot
    check is cut off after ``timeout_graceful_shutdown`` seconds, and uvicorn then re-raises
    the signal: SIGTERM's default action ends the process even while a worker thread still
    runs a request that was cut off. Ctrl-C's ends in ``KeyboardInterrupt`` instead, and the
    interpreter would then wait for such a thread (it joins non-daemon threads at exit, and
    AnyIO's workers are): it is left behind with :func:`os._exit`.
    """
    import uvicorn  # ~90 ms: only for serve

    stopping = api.state.stopping

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            stopping.set()
            super().handle_exit(sig, frame)

    with contextlib.suppress(KeyboardInterrupt):
        Server(uvicorn.Config(api, **config)).run()
    main = threading.main_thread()
    busy = [t.name for t in threading.enumerate() if not t.daemon and t is not main]
    if busy:
        log.info("exiting without waiting for %d thread(s): %s", len(busy), ", ".join(busy))
        logging.shutdown()
        os._exit(0)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes to run (default 1, GEOGRID_WORKERS); they share the lookup's "
            "point indexes through memory-mapped files.",
        ),
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Start the HTTP API (uvicorn). On SIGTERM it stops within
    GEOGRID_SHUTDOWN_GRACE_SECONDS (default 5) even with requests running."""
    from api.main import create_app

    with errors():
        settings = settings_for(database)
        open_engine(database).dispose()  # fail early and clearly when the schema is missing
        n = workers or settings.service.workers
        config: dict[str, Any] = {
            "host": host or settings.service.host,
            "port": port or settings.service.port,
            "log_level": "info",
            "server_header": False,  # no "server: uvicorn": nothing to fingerprint (issue 14)
            "timeout_graceful_shutdown": settings.service.shutdown_grace_seconds,
        }
        if n == 1:
            _run(create_app(settings), **config)
            return
        _run_workers(n, settings, config)


def _run_workers(n: int, settings: Settings, config: dict[str, Any]) -> None:
    """``n`` uvicorn processes on one socket (uvicorn's supervisor), sharing the lookup's
    point indexes through a folder of memory-mapped files (``geogrid.lookup.store``).

    Each process builds its app from the environment (``api.main:create_app``), so the
    settings this command resolved — ``--database``, the shared folder — are passed down as
    ``GEOGRID_*`` variables. A temporary folder is removed when the server stops.
    """
    import shutil
    import tempfile

    import uvicorn

    made: str | None = None
    shared = settings.service.lookup_shared_dir
    if shared is None:
        made = tempfile.mkdtemp(prefix="geogrid-lookup-")
    os.environ["GEOGRID_LOOKUP_SHARED_DIR"] = str(made or shared)
    os.environ["GEOGRID_DATABASE_URL"] = settings.database.database_url
    try:
        uvicorn.run("api.main:create_app", factory=True, workers=n, **config)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


__all__ = ["app"]
