"""Boundary planning: validate, measure, diff, propose, activate and roll back boundary plans.

The algorithms (:mod:`.validate`, :mod:`.metrics`, :mod:`.diff`, :mod:`.propose`) take
GeoDataFrames in WGS 84 and measure in a local metric projection (:func:`.common.local_crs`),
so they run without a database and from notebooks. :mod:`.store` loads drafts and keeps the
review queue, :mod:`.activation` activates and rolls back, in the caller's transaction;
:mod:`.service` holds the jobs shared by the CLI (:mod:`.cli`) and the API (propose, plan
map); :mod:`.files` writes plan files with their provenance.
"""
