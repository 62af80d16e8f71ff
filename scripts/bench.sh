#!/usr/bin/env bash
# The benchmarks, one command:
#
#   bash scripts/bench.sh              # assignment, lookup, maps, planning, imports and abuse
#   bash scripts/bench.sh assignment   # or lookup, maps, planning, imports, abuse; extra arguments go to that one
#   bash scripts/bench.sh city_db      # not in `all`: loads a 2M-household city first (~30 min)
#   bash scripts/bench.sh batch        # not in `all`: writes the city's 5M and 50M households
#   bash scripts/bench.sh lookup_city  # not in `all`: loads the city unless GEOGRID_BENCH_CITY_URL
#
# Installs what is missing (scripts/setup.sh), starts a throwaway PostgreSQL + PostGIS cluster
# (stopped and deleted on exit) unless GEOGRID_BENCH_POSTGRES_URL is set or only `abuse` runs
# (SpatiaLite), and writes JSON results under benchmarks/results/. See benchmarks/README.md for
# what is measured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh

which="${1:-all}"
[ $# -gt 0 ] && shift

if [ -z "${GEOGRID_BENCH_POSTGRES_URL:-}" ] && [ "$which" != abuse ]; then
    PG_DIR="$(mktemp -d /tmp/geogrid-pg.XXXXXX)"
    trap 'bash scripts/pg.sh stop "$PG_DIR" || true' EXIT
    eval "$(bash scripts/pg.sh start "$PG_DIR")"
    export GEOGRID_BENCH_POSTGRES_URL="$GEOGRID_TEST_POSTGRES_URL"
fi
export PATH="$ROOT/.venv/bin:$PATH"

case "$which" in
    all)
        python -m benchmarks.assignment
        python -m benchmarks.lookup
        python -m benchmarks.maps
        python -m benchmarks.planning
        python -m benchmarks.imports
        python -m benchmarks.abuse
        ;;
    assignment | lookup | maps | planning | imports | abuse | city_db | batch)
        python -m "benchmarks.$which" "$@"
        ;;
    lookup_city)
        # A database holding the city (~30 min to load), unless GEOGRID_BENCH_CITY_URL names one.
        if [ -z "${GEOGRID_BENCH_CITY_URL:-}" ]; then
            python -m benchmarks.city load --url "$GEOGRID_BENCH_POSTGRES_URL"
            GEOGRID_BENCH_CITY_URL="$GEOGRID_BENCH_POSTGRES_URL"
        fi
        python -m benchmarks.lookup_city --url "$GEOGRID_BENCH_CITY_URL" "$@"
        ;;
    *)
        echo "usage: bash scripts/bench.sh [all|assignment|lookup|maps|planning|imports|abuse|city_db|batch|lookup_city] [ARGS…]" >&2
        exit 2
        ;;
esac
