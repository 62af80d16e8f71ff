#!/usr/bin/env bash
# THE test command: the whole suite, as CI runs it.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh tests/test_x.py -k name   # extra arguments go to pytest
#
# Installs what is missing (scripts/setup.sh), starts a throwaway PostgreSQL + PostGIS cluster
# (scripts/pg.sh; stopped and deleted on exit, also on failure or Ctrl-C), then runs
#   ruff check . ; ruff format --check . ; mypy ; mypy --strict geogrid/db ; lint-imports ;
#   the wheel ; the contract (schemathesis) ; pytest
# with GEOGRID_REQUIRE_ALL=1, so nothing may skip: a skipped test, or no test at all, is a
# failure. Every stage runs even if an earlier one failed; the last line is the summary.
# The wheel stage builds geogrid's wheel from a copy of the tree and installs it into a fresh
# virtualenv outside the checkout; tests/test_wheel.py serves the demo from it.
# pytest runs with COLUMNS=60 and a --basetemp longer than 150 characters, so no test may
# depend on the terminal's width or on a short temporary path (CI makes this one run only).
# Artifacts (junit.xml, screenshots) go to artifacts/ in the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

WORK="$(mktemp -d /tmp/geogrid-test.XXXXXX)"
# Its own directory (not inside WORK, which is private to us): the server runs as postgres.
PG_DIR="$(mktemp -d /tmp/geogrid-pg.XXXXXX)"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    bash scripts/pg.sh stop "$PG_DIR" || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg_env="$(bash scripts/pg.sh start "$PG_DIR")"
eval "$pg_env"
export GEOGRID_TEST_POSTGRES_URL GEOGRID_TEST_PG_ADMIN_URL GEOGRID_PG_DIR

export GEOGRID_REQUIRE_ALL=1
export GEOGRID_CHROMIUM="${GEOGRID_CHROMIUM:-/usr/bin/chromium}"
export VIRTUAL_ENV="$ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
ARTIFACTS="$ROOT/artifacts"
mkdir -p "$ARTIFACTS"

echo "test: GEOGRID_TEST_POSTGRES_URL=$GEOGRID_TEST_POSTGRES_URL"
echo "test: GEOGRID_CHROMIUM=$GEOGRID_CHROMIUM GEOGRID_REQUIRE_ALL=$GEOGRID_REQUIRE_ALL"

# Narrow and deep: what a user's terminal or a CI runner's checkout may well be.
export COLUMNS=60
BASETEMP="$WORK/$(printf 'a-long-directory-name-so-no-test-relies-on-short-paths-%s/' 1 2 3)basetemp"
[ "${#BASETEMP}" -gt 150 ] || {
    echo "test: the --basetemp path is only ${#BASETEMP} characters" >&2
    exit 1
}
mkdir -p "$(dirname "$BASETEMP")" # pytest makes the last level only

FAILED=()
stage() { # stage NAME CMD...: run one stage, remember a failure, go on
    local name="$1"
    shift
    echo
    echo "==> $name: $*"
    if "$@"; then
        echo "==> $name: ok"
    else
        local rc=$?
        echo "==> $name: FAILED (exit $rc)"
        FAILED+=("$name")
    fi
}

stage ruff ruff check .
stage ruff-format ruff format --check .
stage mypy mypy
# geogrid/db (engine, dialect, models, queries) is held to --strict: typed rows, no Any leaks.
stage mypy-strict-db mypy --strict --follow-imports=silent geogrid/db
# The layers, no import cycles in geogrid, independent route modules ([tool.importlinter]).
stage import-contracts lint-imports --no-logo --no-cache

# The wheel as a user installs it: built from a copy of the tree (no stale build/ of the
# checkout), with its build hook fetching the map assets, into a fresh virtualenv.
wheel() {
    local src="$WORK/wheel-src" venv="$WORK/wheel-venv" base
    mkdir -p "$src" "$WORK/dist"
    tar --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./artifacts \
        --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=./geogrid/maps/vendor \
        --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
        -cf - . | tar -C "$src" -xf -
    python -m pip wheel -q --no-deps -w "$WORK/dist" "$src" || return 1
    base="$(python -c 'import sys; print(sys._base_executable)')"
    "$base" -m venv "$venv" || return 1
    "$venv/bin/python" -m pip install -q -c requirements.lock "$WORK"/dist/geogrid-*.whl || return 1
    export GEOGRID_TEST_WHEEL GEOGRID_TEST_WHEEL_VENV="$venv"
    GEOGRID_TEST_WHEEL="$(ls "$WORK"/dist/geogrid-*.whl)"
    echo "test: $GEOGRID_TEST_WHEEL installed into $venv"
}
# Only when the run may include tests/test_wheel.py (a whole run, or one that names it).
if [ "$#" -eq 0 ] || [[ " $* " == *test_wheel* ]]; then stage wheel wheel; fi

# The API against its contract (schemathesis, every operation, with and without an admin key;
# scripts/contract.sh). Only in a whole run: it does not depend on pytest's arguments.
CONTRACT=""
if [ "$#" -eq 0 ]; then
    stage contract bash scripts/contract.sh
    CONTRACT=", contract (schemathesis)"
fi

JUNIT="$WORK/junit.xml"
stage pytest python -m pytest --basetemp="$BASETEMP" --junitxml="$JUNIT" -o junit_family=xunit2 "$@"

# A skip is a failure, and so is a run without tests.
PYTEST_SUMMARY="no junit report"
if [ -f "$JUNIT" ]; then
    cp "$JUNIT" "$ARTIFACTS/junit.xml"
    if PYTEST_SUMMARY="$(python - "$JUNIT" <<'EOF'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
counts = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
skipped = []
for case in root.iter("testcase"):
    counts["tests"] += 1
    name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
    if case.find("failure") is not None:
        counts["failed"] += 1
    elif case.find("error") is not None:
        counts["errors"] += 1
    elif (skip := case.find("skipped")) is not None:
        if skip.get("type") == "pytest.xfail":
            counts["xfailed"] += 1
        else:
            counts["skipped"] += 1
            detail = " ".join(filter(None, [skip.get("message"), (skip.text or "").strip()]))
            skipped.append(f"{name}: {detail}")
    else:
        counts["passed"] += 1
for line in skipped:
    print(f"test: SKIPPED (not allowed): {line}", file=sys.stderr)
summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v or k in ("tests", "skipped"))
print(summary)
if counts["tests"] == 0:
    print("test: no tests ran", file=sys.stderr)
    sys.exit(1)
sys.exit(1 if skipped else 0)
EOF
)"; then
        :
    else
        FAILED+=("no-skips-check")
    fi
else
    FAILED+=("pytest-no-report")
fi

echo
if [ "${#FAILED[@]}" -eq 0 ]; then
    echo "test.sh: PASSED (ruff, ruff-format, mypy, mypy --strict on geogrid/db, import contracts$CONTRACT, pytest: $PYTEST_SUMMARY)"
else
    echo "test.sh: FAILED: ${FAILED[*]} (pytest: $PYTEST_SUMMARY)"
    exit 1
fi
