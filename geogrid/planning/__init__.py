"""Boundary planning: validate, measure, diff, propose and activate boundary plans.

The algorithms (:mod:`.validate`, :mod:`.metrics`, :mod:`.diff`, :mod:`.propose`) take
GeoDataFrames in WGS 84 and work in a local metric projection (:func:`.common.local_crs`), so
they run without a database and from notebooks; :mod:`.store` reads and writes plans and
activates them in one transaction.
"""
