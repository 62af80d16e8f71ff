#!/usr/bin/env bash
# THE main job: the demo community served by the API on http://127.0.0.1:8000, over the
# embedded SpatiaLite default (var/geogrid.sqlite).
#
#   bash scripts/demo.sh            # extra arguments go to `geogrid serve`
#
# Installs what is missing (scripts/setup.sh --no-test-deps), creates/migrates the database,
# loads the demo community if the database is empty, makes the demo's sign-in keys once
# (var/demo-keys.txt, readable by you only), then serves in the foreground (Ctrl-C stops).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh --no-test-deps

mkdir -p var
.venv/bin/geogrid db init
.venv/bin/geogrid demo --if-empty
# Keys to sign in to the web workbench with (http://127.0.0.1:8000/login): an official's (the
# dashboard, requests, members' sign-in links) and a planner's. Made once; revoke them with
# `geogrid keys revoke PREFIX` (`geogrid keys list`).
if [ ! -s var/demo-keys.txt ]; then
    umask 077 # the file too (the redirect below is opened by this shell)
    (
        official="$(.venv/bin/geogrid keys create --role official --name 'demo official' 2>/dev/null)"
        planner="$(.venv/bin/geogrid keys create --role planner --name 'demo planner' 2>/dev/null)"
        printf '# Sign-in keys of the demo (scripts/demo.sh): http://127.0.0.1:8000/login\n'
        printf 'official %s\nplanner %s\n' "$official" "$planner"
    ) > var/demo-keys.txt.tmp && mv var/demo-keys.txt.tmp var/demo-keys.txt
    umask 022
fi
echo "demo: open http://127.0.0.1:8000/ — sign in with a key from var/demo-keys.txt"
exec .venv/bin/geogrid serve --host 127.0.0.1 --port 8000 "$@"
