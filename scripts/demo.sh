#!/usr/bin/env bash
# THE main job: the demo community served by the API on http://127.0.0.1:8000, over the
# embedded SpatiaLite default (var/geogrid.sqlite).
#
#   bash scripts/demo.sh            # extra arguments go to `geogrid serve`
#
# Installs what is missing (scripts/setup.sh --no-test-deps), creates/migrates the database,
# loads the demo community if the database is empty, then serves in the foreground (Ctrl-C stops).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh --no-test-deps

mkdir -p var
.venv/bin/geogrid db init
.venv/bin/geogrid demo --if-empty
exec .venv/bin/geogrid serve --host 127.0.0.1 --port 8000 "$@"
