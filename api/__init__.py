"""The geogrid HTTP API (FastAPI). Imports ``geogrid``; never imported by it."""

from api.main import create_app

__all__ = ["create_app"]
