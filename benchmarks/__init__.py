"""Benchmarks of geogrid's hot paths (run as modules: ``python -m benchmarks.assignment``)."""
