#!/usr/bin/env bash
# The API against its own contract: schemathesis (pinned in requirements.lock) runs every
# operation of /openapi.json, once without a key and once with an admin key, against a served
# throwaway copy of the demo community (SpatiaLite), with `--checks all`. It must find no
# server error, no undocumented status code and no answer off its schema.
#
#   bash scripts/contract.sh            # as scripts/test.sh runs it
#   CONTRACT_EXAMPLES=50 bash scripts/contract.sh
#
# Settings: scripts/schemathesis.toml (what differs from plain --checks all, and why).
# Reports (JUnit) go to artifacts/contract/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VIRTUAL_ENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
EXAMPLES="${CONTRACT_EXAMPLES:-20}"
ARTIFACTS="$ROOT/artifacts/contract"
mkdir -p "$ARTIFACTS"

WORK="$(mktemp -d /tmp/geogrid-contract.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export GEOGRID_DATABASE_URL="sqlite:///$WORK/demo.sqlite"
# The demo as `geogrid demo` makes it; no webhook worker (its targets are fictional); the
# sign-in throttle out of the way of thousands of generated sign-ins from one address.
export GEOGRID_WEBHOOK_POLL_SECONDS=0 GEOGRID_LOGIN_MAX_FAILURES=1000000
export GEOGRID_ALLOWED_HOSTS='["127.0.0.1"]'
geogrid db init >/dev/null
geogrid demo >/dev/null
ADMIN_KEY="$(geogrid keys create --role admin --name contract --json | python -c 'import json,sys; print(json.load(sys.stdin)["key"])')"

PORT="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
geogrid serve --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null

run() { # run NAME [schemathesis options...]
    local name="$1"
    shift
    echo "contract: $name ($EXAMPLES examples per operation)"
    schemathesis --config-file scripts/schemathesis.toml run \
        "http://127.0.0.1:$PORT/openapi.json" \
        --checks all --max-examples "$EXAMPLES" --no-color \
        --report junit --report-junit-path "$ARTIFACTS/$name.xml" "$@"
}

status=0
run anonymous || status=1
run admin -H "X-API-Key: $ADMIN_KEY" || status=1
if grep -q "Traceback" "$WORK/server.log"; then
    echo "contract: the server logged a traceback:" >&2
    grep -m 3 -B2 -A20 "Traceback" "$WORK/server.log" >&2 || true
    status=1
fi
exit "$status"
