"""The FastAPI application: ``create_app(settings)`` so tests can build variants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

import geogrid
from api import errors
from api.routes import health, summary
from geogrid.db.engine import make_engine
from geogrid.settings import Settings

INDEX = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>geogrid</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em;max-width:50em}</style>
</head><body><h1>geogrid 网格化服务管理</h1>
<p>Community grid governance service, version {version}.</p>
<ul id="links">
<li><a href="/health">/health</a> — service status</li>
<li><a href="/v1/summary">/v1/summary</a> — headline figures per community</li>
<li><a href="/openapi.json">/openapi.json</a> — the API contract (docs/api.md)</li>
</ul></body></html>"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine is opened in the lifespan and disposed at shutdown."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(settings=settings.database)
        try:
            yield
        finally:
            app.state.engine.dispose()

    app = FastAPI(
        title="geogrid",
        version=geogrid.__version__,
        description="Community grid governance (网格化服务管理): grids, members, requests, maps.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(health.router)
    app.include_router(summary.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return INDEX.replace("{version}", geogrid.__version__)

    return app
