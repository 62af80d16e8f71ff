"""Settings, one class per concern, read from the environment (``GEOGRID_`` prefix).

Built by the caller (CLI, ``api.create_app``), never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "geogrid.sqlite"


class DatabaseSettings(BaseSettings):
    """Where the data lives."""

    model_config = SettingsConfigDict(env_prefix="GEOGRID_", env_file=".env", extra="ignore")

    #: SQLAlchemy URL. ``sqlite:///var/geogrid.sqlite`` (SpatiaLite, the embedded default) or
    #: ``postgresql+psycopg://user:pass@host:port/db`` (PostGIS).
    database_url: str = Field(default=f"sqlite:///{DEFAULT_SQLITE_PATH}")
    #: Name or path of the SpatiaLite extension module (``mod_spatialite``).
    spatialite_library_path: str = "mod_spatialite"
    #: Echo SQL statements to the log (debugging only).
    database_echo: bool = False


class ServiceSettings(BaseSettings):
    """How the service presents data."""

    model_config = SettingsConfigDict(env_prefix="GEOGRID_", env_file=".env", extra="ignore")

    #: IANA time zone for dates in requests and responses.
    timezone: str = "Asia/Shanghai"
    #: Host and port ``geogrid serve`` binds to.
    host: str = "127.0.0.1"
    port: int = 8000


class Settings(BaseSettings):
    """All settings of one process."""

    model_config = SettingsConfigDict(env_prefix="GEOGRID_", env_file=".env", extra="ignore")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
