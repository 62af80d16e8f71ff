"""Settings, one class per concern, read from the environment (``GEOGRID_`` prefix) and ``.env``.

One :class:`Settings` is built by the caller — ``api.create_app`` and the CLI, once each — and
passed down; no library function reads the environment. A library function given no settings
uses the built-in defaults (:meth:`Section.defaults`), never the environment. ``.env.example``
documents every variable with its unit and default.
"""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Any, Self, cast

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "geogrid.sqlite"


class Section(BaseSettings):
    """One concern's settings."""

    model_config = SettingsConfigDict(
        env_prefix="GEOGRID_", env_file=".env", extra="ignore", populate_by_name=True
    )

    @classmethod
    def defaults(cls) -> Self:
        """The built-in defaults, without reading the environment or ``.env``: what a library
        function uses when its caller gave no settings."""
        sections: dict[str, Any] = {
            name: field.annotation.defaults()
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, Section)
        }
        return cast(Self, cls.model_construct(None, **sections))


class DatabaseSettings(Section):
    """Where the data lives."""

    #: SQLAlchemy URL. ``sqlite:///var/geogrid.sqlite`` (SpatiaLite, the embedded default) or
    #: ``postgresql+psycopg://user:pass@host:port/db`` (PostGIS).
    database_url: str = Field(default=f"sqlite:///{DEFAULT_SQLITE_PATH}")
    #: Name or path of the SpatiaLite extension module (``mod_spatialite``). GeoAlchemy2's own
    #: ``SPATIALITE_LIBRARY_PATH`` is honoured too, and wins, as it always has.
    spatialite_library_path: str = Field(
        default="mod_spatialite",
        validation_alias=AliasChoices(
            "SPATIALITE_LIBRARY_PATH", "GEOGRID_SPATIALITE_LIBRARY_PATH", "spatialite_library_path"
        ),
    )
    #: Echo SQL statements to the log (debugging only).
    database_echo: bool = False
    #: Folder of the PostgreSQL client tools (pg_dump, pg_restore, psql) for ``geogrid backup``
    #: and ``restore`` on PostGIS; default: Debian's ``/usr/lib/postgresql/<server major>/bin``,
    #: newer versions, then the PATH.
    pg_bindir: Path | None = None
    #: Seconds a write waits for the database — SQLite: for another writer's lock;
    #: PostgreSQL: to connect — before it is refused as unavailable (HTTP 503, Retry-After).
    database_busy_timeout_seconds: float = Field(default=5.0, gt=0)


class ServiceSettings(Section):
    """How the service presents data."""

    #: IANA time zone for dates in requests and responses.
    timezone: str = "Asia/Shanghai"
    #: Host and port ``geogrid serve`` binds to.
    host: str = "127.0.0.1"
    port: int = 8000
    #: After SIGTERM (or Ctrl-C), how long ``geogrid serve`` waits for running requests
    #: before it cancels them and exits, in seconds (uvicorn's ``timeout_graceful_shutdown``).
    #: Plan work stops at once anyway (503 ``shutting_down``): this bounds the rest.
    shutdown_grace_seconds: int = Field(default=5, ge=0)
    #: Processes ``geogrid serve`` runs (``--workers``). Each answers lookups from its own
    #: service; the point indexes are built once and shared (``lookup_shared_dir``).
    workers: int = Field(default=1, ge=1)
    #: Folder where the lookup's point indexes are written once and memory-mapped by every
    #: process of the server (geogrid.lookup.store). Unset: a single process keeps them in
    #: memory; ``geogrid serve --workers N`` (N > 1) makes a temporary folder and removes it.
    lookup_shared_dir: Path | None = None


class RequestsSettings(Section):
    """Limits of intake, browser sessions, webhooks and Open311 (docs/api.md)."""

    #: Longest request description, in characters (Open311 practice: 4,000).
    max_description: int = 4000
    #: Largest photo, in bytes.
    max_photo_bytes: int = 5_000_000
    #: A point farther than this from every community (metres) is refused as outside the
    #: service area; nearer ones are accepted at the community level and flagged.
    outside_tolerance_m: float = 2000.0
    #: Lifetime of a browser session, in hours.
    session_hours: int = 12
    #: Send the session cookie over HTTPS only (set true behind TLS).
    session_cookie_secure: bool = False
    #: Seconds to wait for a webhook receiver.
    webhook_timeout_seconds: float = 5.0
    #: Attempts before a delivery is given up (logged as failed).
    webhook_max_attempts: int = 6
    #: Wait before the first retry, in seconds; doubled after each failure (30 s … 16 min).
    webhook_backoff_seconds: float = 30.0
    #: Allow webhooks over plain http and to private, loopback and link-local addresses
    #: (tests, closed networks). Off: https to public addresses only (docs/api.md, Webhooks).
    webhook_allow_private: bool = False
    #: How often the server's worker delivers retries and looks for overdue requests
    #: (seconds); 0 turns the worker off (then run `geogrid webhooks deliver` from cron).
    webhook_poll_seconds: float = 5.0
    #: Open311 ``start_date``/``end_date`` default window, in days (the spec: 90).
    open311_default_days: int = 90
    #: The public intake page (``/report``): requests one client address may file in an hour
    #: and in a day (issue 15: 5 and 20); the next one is refused with 429 and ``Retry-After``.
    intake_max_per_hour: int = Field(default=5, ge=1)
    intake_max_per_day: int = Field(default=20, ge=1)


class PlanSettings(Section):
    """Limits of the plan API (``/v1/plans``): what one request may upload and cost.

    Sized for a district plan of 2,000 grids drawn in detail: plans drawn by ``geogrid plan
    propose`` weigh ~40 bytes a vertex and 6 KB (the demo, 150 vertices) to 16 KB (Helsinki's
    Kluuvi, 400 vertices) a grid, so 2,000 grids make 12–32 MB and under a million vertices.
    The CLI does not apply them: files on the planner's own disk are trusted (docs/api.md).
    """

    #: Largest plan body (a GeoJSON FeatureCollection), in bytes: larger is 413 ``too_large``,
    #: refused before it is read whole.
    plan_max_bytes: int = Field(default=32_000_000, ge=1)
    #: Most grids (features) in an uploaded plan: more is 422 ``too_complex``.
    plan_max_features: int = Field(default=5000, ge=1)
    #: Most vertices of all grids of an uploaded plan together: more is 422 ``too_complex``.
    plan_max_vertices: int = Field(default=2_000_000, ge=1)
    #: Time budget of one plan request's validation, metrics or diff, in seconds: the work
    #: stops at its next check past it, 422 ``too_complex``. 0 means no limit.
    plan_max_seconds: float = Field(default=60.0, ge=0)


class MapSettings(Section):
    """The maps: base map, offline assets, the browser that renders PNGs."""

    #: Base map when none is asked for: ``none`` works on an intranet and sends nothing out.
    map_tiles: str = "none"
    #: Tianditu (天地图) key (``tk``), from https://console.tianditu.gov.cn/.
    tianditu_key: str | None = None
    #: ``tiles=custom``: an XYZ URL template ``…/{z}/{x}/{y}.png``, its CRS and attribution.
    map_tile_url: str | None = None
    map_tile_crs: str = "wgs84"
    map_tile_attribution: str = ""
    #: Folder of the installed Leaflet files (default: ``geogrid/maps/vendor``).
    map_assets_dir: Path | None = None
    #: Chromium/Chrome for ``geogrid map … --png`` (default: the first on the PATH).
    chromium: str | None = None


class HttpSettings(Section):
    """What the HTTP service accepts: sizes, hosts, proxies, sign-in attempts, CRSs
    (docs/api.md, "Limits"; docs/security.md)."""

    #: Largest request body, in bytes (413 beyond). Above the largest legitimate body: 10 MB of
    #: photos is about 14 MB of base64. Routes hold tighter caps of their own.
    max_body_bytes: int = 16_000_000
    #: Largest ``POST /v1/lookup/batch`` body, in bytes (10,000 items fit in about 1 MB).
    lookup_batch_max_bytes: int = 2_000_000
    #: Host names the service answers to (the ``Host`` header; 400 otherwise): links in
    #: bodies are built from it. ``["*"]`` accepts any (only behind a proxy that checks).
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"])
    #: Addresses (or networks, CIDR) of reverse proxies whose ``X-Forwarded-For`` is believed
    #: for the client's address (the login throttle, the audit log). Empty: none.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Wrong keys per client address per minute at ``/login`` before 429.
    login_max_failures: int = 10
    #: EPSG codes HTTP callers may name besides wgs84, cgcs2000, gcj02 and bd09: WGS 84,
    #: CGCS2000, Web Mercator, the CGCS2000 Gauss-Krüger zones and the UTM zones. Never an
    #: arbitrary PROJ or WKT string (parsing one costs ~65 ms; issue 14). Files are not limited.
    crs_epsg: str = "4326,4490,3857,4491-4554,32601-32660,32701-32760"
    #: Distinct ``crs`` values one batch may use.
    crs_max_per_batch: int = 8

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from None
        return value


#: The audit log is kept at least this long (days): six months, as the data rules ask
#: (DESIGN.md, "Data rules") after the Cybersecurity Law of the PRC, art. 21(3): network
#: logs are kept "不少于六个月" (no less than six months).
AUDIT_MIN_KEEP_DAYS = 183


class PrivacySettings(Section):
    """How long the audit log and reporters' personal data are kept (docs/api.md, "The
    operator's duties")."""

    #: Days the audit log keeps an entry; `geogrid audit prune` removes older ones only.
    audit_keep_days: int = AUDIT_MIN_KEEP_DAYS
    #: Allow `audit_keep_days` below 183 (a test or demo installation; never in service).
    audit_allow_short_keep: bool = False
    #: How long after it is closed a request keeps its reporter's contact and photos:
    #: `geogrid retention` without `--older-than` (``2y``, ``18m``, ``90d``).
    retention_period: str = "2y"

    @model_validator(mode="after")
    def _keep_long_enough(self) -> Self:
        if self.audit_keep_days < 1:
            raise ValueError("GEOGRID_AUDIT_KEEP_DAYS must be at least 1")
        if self.audit_keep_days < AUDIT_MIN_KEEP_DAYS and not self.audit_allow_short_keep:
            raise ValueError(
                f"GEOGRID_AUDIT_KEEP_DAYS={self.audit_keep_days} is below "
                f"{AUDIT_MIN_KEEP_DAYS} days (six months, the least the audit log is kept): "
                "set GEOGRID_AUDIT_ALLOW_SHORT_KEEP=true to allow it"
            )
        return self


class Settings(Section):
    """All settings of one process."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    requests: RequestsSettings = Field(default_factory=RequestsSettings)
    plans: PlanSettings = Field(default_factory=PlanSettings)
    maps: MapSettings = Field(default_factory=MapSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
