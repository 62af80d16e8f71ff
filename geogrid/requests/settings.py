"""Settings of the requests workflow (``GEOGRID_`` prefix), built by the caller."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class RequestsSettings(BaseSettings):
    """Limits of intake, browser sessions, webhooks and Open311 (docs/api.md)."""

    model_config = SettingsConfigDict(env_prefix="GEOGRID_", env_file=".env", extra="ignore")

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
    #: How often the server's worker delivers retries and looks for overdue requests
    #: (seconds); 0 turns the worker off (then run `geogrid webhooks deliver` from cron).
    webhook_poll_seconds: float = 5.0
    #: Open311 ``start_date``/``end_date`` default window, in days (the spec: 90).
    open311_default_days: int = 90
