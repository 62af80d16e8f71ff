"""Response and request bodies of the JSON routes, a module per resource (names follow
docs/api.md). Routes import them from their module: ``from api.schemas.requests import …``."""
