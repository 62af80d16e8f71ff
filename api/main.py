"""The FastAPI application: ``create_app(settings)`` so tests can build variants."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_network
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

import geogrid
from api import auth, errors, logs
from api.middleware import BodyLimit, HostCheck, SecurityHeaders
from api.routes import (
    admin,
    communities,
    directory,
    health,
    kpis,
    lookup,
    maps,
    open311,
    plans,
    requests,
    summary,
)
from api.web import dashboard as web_dashboard
from api.web import errors as web_errors
from api.web import home as web_home
from api.web import intake as web_intake
from api.web import login as web_login
from api.web import member as web_member
from api.web import render as web_render
from api.web import requests_pages as web_requests
from geogrid import crs as gcrs
from geogrid import hotspots
from geogrid.db.engine import make_engine
from geogrid.db.models import utcnow
from geogrid.lookup import LookupService
from geogrid.requests.webhooks import WebhookWorker
from geogrid.settings import Settings


def _tile_origins(settings: Settings) -> list[str]:
    """A custom tile server's origin, for the pages' ``img-src`` (https ones are allowed)."""
    url = settings.maps.map_tile_url
    if not url:
        return []
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. ``settings`` (else the environment, read here once) is kept on
    ``app.state.settings`` and handed to every route through ``api.deps``. The lifespan opens
    the engine, starts the lookup's poller and the webhook worker, and stops them at shutdown."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(settings=settings.database)
        # The lookup indexes: built now, then kept current by a poller thread (1 s); their
        # objects are frozen out of the garbage collector (p99 latency, geogrid.lookup).
        app.state.lookup = LookupService(
            app.state.engine, freeze_gc=True, shared_dir=settings.service.lookup_shared_dir
        )
        app.state.lookup.start()
        # Retries webhook deliveries and notices overdue requests (geogrid.requests.webhooks).
        worker = WebhookWorker(app.state.engine, settings.requests)
        worker.start()
        # esda/libpysal take ~2 s to import: pay it off the request path.
        threading.Thread(target=hotspots.warm_up, name="hotspots-warm-up", daemon=True).start()
        try:
            yield
        finally:
            worker.stop()
            app.state.lookup.stop()
            app.state.engine.dispose()

    # FastAPIOffline serves Swagger UI and ReDoc from the package, not from a CDN: the docs
    # pages must work on an intranet too.
    app = FastAPIOffline(
        title="geogrid",
        version=geogrid.__version__,
        description="Community grid governance (网格化服务管理): grids, members, requests, maps.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    logs.install()  # no secret in a log line (api.logs)
    # Outermost last: the headers on every answer, then the Host check, then the body cap.
    app.add_middleware(
        BodyLimit,
        limit=settings.http.max_body_bytes,
        routes={
            "/v1/lookup/batch": settings.http.lookup_batch_max_bytes,
            # A district's plan of 2,000 detailed grids can pass the global cap (docs/api.md,
            # "Boundary planning", "Limits"); the routes read no further than this either.
            "/v1/plans/validate": settings.plans.plan_max_bytes,
            "/v1/plans": settings.plans.plan_max_bytes,
        },
    )
    app.add_middleware(HostCheck, allowed=settings.http.allowed_hosts)
    app.add_middleware(SecurityHeaders, image_sources=_tile_origins(settings))
    app.state.crs_epsg = gcrs.parse_epsg_list(settings.http.crs_epsg)
    app.state.trusted_proxies = [ip_network(p, strict=False) for p in settings.http.trusted_proxies]
    # The time as the sign-in throttle sees it: tests set their own.
    app.state.clock = utcnow
    # Set when the server is told to stop (``geogrid serve``, api/cli.py): long plan work
    # checks it and ends its request (503) instead of holding the shutdown (geogrid.budget).
    app.state.stopping = threading.Event()
    errors.install(app)
    web_errors.install(app)  # browsers' page requests: pages and the sign-in redirect
    lookup.install(app)  # first: the hot route (api/routes/lookup.py)
    app.include_router(health.router)
    app.include_router(summary.router)
    app.include_router(communities.router)
    app.include_router(maps.router)
    app.include_router(auth.router)  # /v1/me
    app.include_router(requests.router)
    app.include_router(kpis.router)
    app.include_router(directory.router)
    app.include_router(admin.router)
    app.include_router(open311.router)
    app.include_router(plans.router)
    app.include_router(web_login.router)
    app.include_router(web_home.router)
    app.include_router(web_dashboard.router)
    app.include_router(web_requests.router)
    app.include_router(web_member.router)
    app.include_router(web_intake.router)
    app.mount("/static", StaticFiles(directory=web_render.STATIC), name="static")

    return app
