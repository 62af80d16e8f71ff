"""Data shipped with geogrid: the default catalogue of departments and categories."""
