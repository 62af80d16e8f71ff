"""Backup and restore of the whole database: :mod:`.service` (the library, both backends,
over ``geogrid.db.backup``) and :mod:`.cli` (``geogrid backup``, ``geogrid restore``)."""
