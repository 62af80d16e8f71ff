#!/usr/bin/env bash
# Install what geogrid needs and build the project's virtualenv (.venv). Idempotent and fast
# when everything is already there: it checks before installing anything.
#
#   bash scripts/setup.sh                  # everything, including what the test suite needs
#   bash scripts/setup.sh --no-test-deps   # only what the demo/service needs
#
# System packages (Debian/Ubuntu, with apt; as root, or through sudo):
#   always:     python3 (>= 3.11), python3-venv, python3-dev, libsqlite3-mod-spatialite
#   test deps:  postgresql, postgresql-$MAJOR-postgis-3, chromium, fonts-noto-cjk, wrk
# Elsewhere it says what is missing and stops.
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

TEST_DEPS=1
for arg in "$@"; do
    case "$arg" in
        --no-test-deps) TEST_DEPS=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "setup.sh: unknown argument: $arg" >&2
            usage >&2
            exit 2
            ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { echo "setup: $*" >&2; }
die() {
    echo "setup: ERROR: $*" >&2
    exit 1
}

PY_CANDIDATES=(python3.13 python3.12 python3.11 python3)

# Print the path of the first Python >= 3.11 that actually runs (pyenv shims of versions that
# are not selected exist but fail) and can make a virtualenv (Debian: ensurepip comes with
# python3-venv).
find_python() {
    local cand
    for cand in "${PY_CANDIDATES[@]}"; do
        command -v "$cand" >/dev/null 2>&1 || continue
        if "$cand" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
            >/dev/null 2>&1; then
            "$cand" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# System packages
# ---------------------------------------------------------------------------------------------

is_installed() { # is_installed PKG: is the Debian package installed?
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# The PostgreSQL major version of the installed server (highest), from /usr/lib/postgresql/*/bin.
pg_major() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$d" ] || continue
        d="${d#/usr/lib/postgresql/}"
        d="${d%%/*}"
        if [ -z "$best" ] || [ "$d" -gt "$best" ]; then best="$d"; fi
    done
    [ -n "$best" ] && echo "$best"
}

SUDO=()
apt_privileges() {
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        if [ -t 0 ]; then SUDO=(sudo); else SUDO=(sudo -n); fi
    else
        return 1
    fi
}

APT_UPDATED=0
apt_install() { # apt_install PKG...: install the packages (all known to be missing)
    [ "$#" -gt 0 ] || return 0
    local cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*"
    if ! apt_privileges; then
        die "missing system packages; as root run:
    apt-get update && $cmd"
    fi
    say "installing: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${SUDO[@]}" apt-get update -q >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@" >&2 ||
        die "could not install: $* (run as root: apt-get update && $cmd)"
}

apt_has_candidate() { # apt_has_candidate PKG: can apt install PKG (after apt-get update)?
    if [ "$APT_UPDATED" -eq 0 ] && apt_privileges; then
        "${SUDO[@]}" apt-get update -q >&2 || true
        APT_UPDATED=1
    fi
    apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
}

missing_of() { # missing_of PKG...: print the ones that are not installed
    local p
    for p in "$@"; do is_installed "$p" || echo "$p"; done
}

install_debian() {
    local -a want missing
    want=(python3 python3-venv python3-dev libsqlite3-mod-spatialite)
    if [ "$TEST_DEPS" -eq 1 ]; then
        want+=(fonts-noto-cjk wrk)
        # A Chromium/Chrome named by GEOGRID_CHROMIUM replaces Debian's chromium.
        if [ -z "${GEOGRID_CHROMIUM:-}" ] || [ ! -x "${GEOGRID_CHROMIUM}" ]; then want+=(chromium); fi
    fi
    mapfile -t missing < <(missing_of "${want[@]}")
    # npm fetches the maps' Leaflet files (below). Checked by command, not by package: a
    # NodeSource nodejs brings its own npm and conflicts with Debian's npm package.
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    if [ "${#missing[@]}" -gt 0 ]; then
        # Ubuntu ships Chromium only as a snap; say so rather than fail obscurely in apt.
        if printf '%s\n' "${missing[@]}" | grep -qx chromium && ! apt_has_candidate chromium; then
            die "apt has no 'chromium' package here (Ubuntu ships it as a snap). Install a
    Chromium/Chrome binary yourself and point GEOGRID_CHROMIUM at it; then re-run."
        fi
        apt_install "${missing[@]}"
    fi

    if [ "$TEST_DEPS" -eq 1 ]; then
        local major
        major="$(pg_major || true)"
        if [ -z "$major" ]; then
            # Install the server without Debian's default "main" cluster (and its service on
            # port 5432): the tests start their own throwaway cluster. As the official
            # postgres Docker image does, switch that off in postgresql-common first.
            is_installed postgresql-common || apt_install postgresql-common
            local conf=/etc/postgresql-common/createcluster.conf
            if [ -f "$conf" ] && ! grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=[[:space:]]*false' "$conf"; then
                apt_privileges || true
                "${SUDO[@]}" sed -ri 's/^#?[[:space:]]*(create_main_cluster)[[:space:]]*=.*$/\1 = false/' "$conf" ||
                    say "could not edit $conf; Debian will create its default cluster"
            fi
            apt_install postgresql
            major="$(pg_major || true)"
            [ -n "$major" ] || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
        fi
        mapfile -t missing < <(missing_of "postgresql-$major-postgis-3")
        if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
    fi
}

# Not Debian/Ubuntu: check by function, not by package name, and say what is missing.
check_other() {
    local -a need=()
    find_python >/dev/null || need+=("Python >= 3.11 with the venv module (and its headers)")
    command -v npm >/dev/null 2>&1 || need+=("npm (Node.js), to fetch the maps' Leaflet files")
    local pattern found=0
    for pattern in '/usr/lib*/mod_spatialite.*' '/usr/lib*/*/mod_spatialite.*' \
        '/usr/local/lib*/mod_spatialite.*' '/opt/homebrew/lib/mod_spatialite.*'; do
        if compgen -G "$pattern" >/dev/null; then found=1; fi
    done
    if [ "$found" -eq 0 ] && ! { ldconfig -p 2>/dev/null | grep -q mod_spatialite; }; then
        need+=("SpatiaLite loadable module mod_spatialite (e.g. libspatialite / mod_spatialite)")
    fi
    if [ "$TEST_DEPS" -eq 1 ]; then
        local bindir=""
        if command -v pg_config >/dev/null 2>&1; then bindir="$(pg_config --bindir)"; fi
        if [ -z "$(pg_major || true)" ] && [ ! -x "$bindir/initdb" ] && ! command -v initdb >/dev/null 2>&1; then
            need+=("PostgreSQL server (initdb, pg_ctl, psql)")
        elif command -v pg_config >/dev/null 2>&1 &&
            [ ! -f "$(pg_config --sharedir)/extension/postgis.control" ]; then
            need+=("PostGIS 3 for that PostgreSQL")
        fi
        command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
            [ -x "${GEOGRID_CHROMIUM:-/nonexistent}" ] ||
            need+=("Chromium (or set GEOGRID_CHROMIUM to a Chromium/Chrome binary)")
        if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null | head -n1)" ]; then
            need+=("a CJK font (Noto Sans CJK)")
        fi
        command -v wrk >/dev/null 2>&1 || need+=("wrk (HTTP benchmarking tool)")
    fi
    if [ "${#need[@]}" -gt 0 ]; then
        echo "setup: this is not a Debian/Ubuntu system (no apt-get/dpkg); install these yourself:" >&2
        printf 'setup:   - %s\n' "${need[@]}" >&2
        exit 1
    fi
}

if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    install_debian
else
    check_other
fi

# ---------------------------------------------------------------------------------------------
# Python and the virtualenv
# ---------------------------------------------------------------------------------------------

PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then
    default="$(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null || echo none)"
    msg="geogrid needs Python >= 3.11 with the venv module; the default python3 is $default."
    if command -v apt-get >/dev/null 2>&1 && apt_has_candidate python3.11 && apt_has_candidate python3.11-venv; then
        say "$msg Installing python3.11 alongside it."
        apt_install python3.11 python3.11-venv python3.11-dev
        PYTHON="$(find_python || true)"
    fi
    [ -n "$PYTHON" ] || die "$msg Install Python 3.11 or newer (with venv) and re-run."
fi

VENV="$ROOT/.venv"
if [ -x "$VENV/bin/python" ] &&
    ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    say "$VENV is broken or too old; recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $PYTHON ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
    "$PYTHON" -m venv "$VENV"
fi

# Re-install only when pyproject.toml or requirements.lock changed since the last install.
STAMP="$VENV/.geogrid-install.sha256"
want_hash="$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_hash" ] && "$VENV/bin/python" -c 'import geogrid' 2>/dev/null; then
    say "virtualenv up to date ($VENV)"
else
    say "installing geogrid and its dependencies into $VENV"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    constraints=()
    if [ -f requirements.lock ]; then constraints=(-c requirements.lock); fi
    "$VENV/bin/python" -m pip install -q "${constraints[@]}" -e '.[dev]' >&2
    echo "$want_hash" >"$STAMP"
    say "virtualenv ready ($VENV)"
fi

# ---------------------------------------------------------------------------------------------
# Map assets: Leaflet and Leaflet.markercluster from the npm registry (pinned versions and
# sha512), Leaflet.heat from folium, into geogrid/maps/vendor (or GEOGRID_MAP_ASSETS_DIR).
# The maps never load them from a CDN. Fast no-op when they are already there.
# ---------------------------------------------------------------------------------------------

"$VENV/bin/python" -m geogrid.maps.assets >&2 || die "could not install the map assets (see above)"
