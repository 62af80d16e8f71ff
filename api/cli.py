"""The console script ``geogrid``: the library's CLI plus ``serve``, which needs the app.

Kept here so the direction of imports stays ``api → geogrid``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from geogrid.cli import app
from geogrid.clikit import DatabaseOpt, errors, open_engine, settings_for


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Start the HTTP API (uvicorn, one worker)."""
    import uvicorn

    from api.main import create_app

    with errors():
        settings = settings_for(database)
        open_engine(database).dispose()  # fail early and clearly when the schema is missing
        uvicorn.run(
            create_app(settings),
            host=host or settings.service.host,
            port=port or settings.service.port,
            log_level="info",
            server_header=False,  # no "server: uvicorn": nothing to fingerprint (issue 14)
        )


__all__ = ["app"]
