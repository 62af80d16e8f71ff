"""Database access: engine creation, ORM models, migrations and all SQL of geogrid."""
