#!/usr/bin/env bash
# Install what geogrid needs and build the project's virtualenv (.venv). Idempotent and fast
# when everything is already there: it checks before installing anything.
#
#   bash scripts/setup.sh                  # everything, including what the test suite needs
#   bash scripts/setup.sh --no-test-deps   # only what the demo/service needs
#   bash scripts/setup.sh --check          # print what it would install; change nothing
#
# System packages (Debian/Ubuntu, with apt; as root, or through sudo):
#   always:     python3 (>= 3.11), python3-venv, python3-dev, libsqlite3-mod-spatialite
#   test deps:  postgresql, postgresql-$MAJOR-postgis-3, chromium, fonts-noto-cjk, wrk,
#               libatomic1 (Playwright's driver)
# Elsewhere it says what is missing and stops. The map assets (Leaflet …) come from the npm
# registry over HTTPS, pinned by version and sha512 (geogrid/maps/vendoring.py): no Node.js.
#
# The functions below can be sourced (`. scripts/setup.sh`) without running anything; the
# tests do so with fake apt-cache, dpkg-query and ldconfig programs first on PATH.
set -euo pipefail

# Every check below captures a command's output before matching it. `cmd | grep -q …` is
# wrong under pipefail: grep exits at the first match, cmd dies of SIGPIPE writing the rest,
# and the pipeline fails (141) exactly when the answer was yes.

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

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

is_installed() { # is_installed PKG: is the Debian package installed (not merely known, or removed)?
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
    [[ "$status" == *"install ok installed"* ]]
}

# The PostgreSQL major version of the installed server (highest), from /usr/lib/postgresql/*/bin.
pg_major() {
    local d best=""
    for d in "${PG_LIB:-/usr/lib/postgresql}"/*/bin/initdb; do
        [ -x "$d" ] || continue
        d="${d%/bin/initdb}"
        d="${d##*/}"
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

CHECK=0 # --check: say what would be installed, change nothing
APT_UPDATED=0
WOULD_INSTALL=()
apt_update_once() {
    [ "$APT_UPDATED" -eq 0 ] || return 0
    APT_UPDATED=1
    # --check changes nothing, not even apt's package lists: it reads what is there.
    [ "$CHECK" -eq 0 ] || return 0
    apt_privileges || return 0
    "${SUDO[@]}" apt-get update -q >&2 || say "apt-get update failed; using the package lists as they are"
}

apt_install() { # apt_install PKG...: install the packages (all known to be missing)
    [ "$#" -gt 0 ] || return 0
    if [ "$CHECK" -eq 1 ]; then
        WOULD_INSTALL+=("$@")
        return 0
    fi
    local cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*"
    if ! apt_privileges; then
        die "missing system packages; as root run:
    apt-get update && $cmd"
    fi
    say "installing: $*"
    apt_update_once
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@" >&2 ||
        die "could not install: $* (run as root: apt-get update && $cmd)"
}

apt_candidate() { # apt_candidate PKG: print the version apt would install; fail if none
    local policy line
    apt_update_once
    policy="$(apt-cache policy "$1" 2>/dev/null)" || return 1
    while IFS= read -r line; do
        line="${line#"${line%%[![:space:]]*}"}"
        case "$line" in
            "Candidate: (none)") return 1 ;;
            "Candidate: "*)
                echo "${line#Candidate: }"
                return 0
                ;;
        esac
    done <<<"$policy"
    return 1
}

apt_has_candidate() { # apt_has_candidate PKG: can apt install PKG?
    apt_candidate "$1" >/dev/null
}

# The PostgreSQL major version apt would install with `postgresql` (Debian: "15+248" → 15).
pg_candidate_major() {
    local version
    version="$(apt_candidate postgresql)" || return 1
    version="${version#*:}"
    version="${version%%[+.~-]*}"
    [[ "$version" =~ ^[0-9]+$ ]] && echo "$version"
}

missing_of() { # missing_of PKG...: print the ones that are not installed
    local p
    for p in "$@"; do is_installed "$p" || echo "$p"; done
}

# Where SpatiaLite's loadable module is looked for before ldconfig's cache (globs).
SPATIALITE_GLOBS="${SPATIALITE_GLOBS:-/usr/lib*/mod_spatialite.* /usr/lib*/*/mod_spatialite.* /usr/local/lib*/mod_spatialite.* /opt/homebrew/lib/mod_spatialite.*}"

has_spatialite() { # has_spatialite: is SpatiaLite's loadable module on this system?
    local pattern cache globs
    read -ra globs <<<"$SPATIALITE_GLOBS"
    for pattern in "${globs[@]}"; do
        if compgen -G "$pattern" >/dev/null; then return 0; fi
    done
    cache="$(ldconfig -p 2>/dev/null)" || return 1
    [[ "$cache" == *mod_spatialite* ]]
}

install_debian() {
    local -a want missing
    want=(python3 python3-venv python3-dev libsqlite3-mod-spatialite)
    if [ "$TEST_DEPS" -eq 1 ]; then
        # libatomic1: the Node.js inside Playwright's wheel (its driver) links to it, and a
        # minimal Debian lacks it ("Connection closed while reading from the driver").
        want+=(fonts-noto-cjk wrk libatomic1)
        # A Chromium/Chrome named by GEOGRID_CHROMIUM replaces Debian's chromium.
        if [ -z "${GEOGRID_CHROMIUM:-}" ] || [ ! -x "${GEOGRID_CHROMIUM}" ]; then want+=(chromium); fi
    fi
    mapfile -t missing < <(missing_of "${want[@]}")
    if [ "${#missing[@]}" -gt 0 ]; then
        # Ubuntu ships Chromium only as a snap; say so rather than fail obscurely in apt.
        if [[ " ${missing[*]} " == *" chromium "* ]] && ! apt_has_candidate chromium; then
            local snap=""
            local version
            if version="$(apt_candidate chromium-browser)" && [[ "$version" == *snap* ]]; then
                snap=" (its chromium-browser $version only installs the snap)"
            fi
            die "apt has no 'chromium' package here$snap: Ubuntu ships Chromium only as a snap,
    which cannot run headless as root. Install a Chromium/Chrome binary yourself and point
    GEOGRID_CHROMIUM at it; then re-run."
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
            if [ "$CHECK" -eq 1 ]; then
                major="$(pg_candidate_major || true)"
                [ -n "$major" ] || die "apt has no candidate for 'postgresql' (run apt-get update?)"
                say "would set create_main_cluster = false in $conf (no default cluster)"
                apt_install postgresql "postgresql-$major-postgis-3"
                return 0
            fi
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
    has_spatialite || need+=("SpatiaLite loadable module mod_spatialite (e.g. libspatialite / mod_spatialite)")
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
        if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null || true)" ]; then
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

main() {
    TEST_DEPS=1
    local arg
    for arg in "$@"; do
        case "$arg" in
            --no-test-deps) TEST_DEPS=0 ;;
            --check) CHECK=1 ;;
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

    if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
        install_debian
    else
        check_other
    fi

    # -----------------------------------------------------------------------------------------
    # Python and the virtualenv
    # -----------------------------------------------------------------------------------------

    PYTHON="$(find_python || true)"
    if [ -z "$PYTHON" ] && [ "$CHECK" -eq 1 ]; then
        PYTHON="python3 (once python3-venv is installed)"
    elif [ -z "$PYTHON" ]; then
        local default msg
        default="$(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null || echo none)"
        msg="geogrid needs Python >= 3.11 with the venv module; the default python3 is $default."
        if command -v apt-get >/dev/null 2>&1 && apt_has_candidate python3.11 && apt_has_candidate python3.11-venv; then
            say "$msg Installing python3.11 alongside it."
            apt_install python3.11 python3.11-venv python3.11-dev
            PYTHON="$(find_python || true)"
        fi
        [ -n "$PYTHON" ] || die "$msg Install Python 3.11 or newer (with venv) and re-run."
    fi

    local venv="$ROOT/.venv" venv_todo=""
    if [ -x "$venv/bin/python" ] &&
        ! "$venv/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
        venv_todo="recreate $venv (it is broken or too old)"
        [ "$CHECK" -eq 1 ] || {
            say "$venv is broken or too old; recreating it"
            rm -rf "$venv"
        }
    fi
    if [ ! -x "$venv/bin/python" ]; then
        venv_todo="${venv_todo:-create $venv with $PYTHON}"
        [ "$CHECK" -eq 1 ] || {
            say "creating $venv with $PYTHON ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
            "$PYTHON" -m venv "$venv"
        }
    fi

    # Re-install only when pyproject.toml or requirements.lock changed since the last install.
    local stamp="$venv/.geogrid-install.sha256" want_hash pip_todo=""
    want_hash="$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_hash" ] && "$venv/bin/python" -c 'import geogrid' 2>/dev/null; then
        [ "$CHECK" -eq 1 ] || say "virtualenv up to date ($venv)"
    elif [ "$CHECK" -eq 1 ]; then
        pip_todo="install geogrid and its dependencies (requirements.lock) into $venv"
    else
        say "installing geogrid and its dependencies into $venv"
        rm -f "$stamp"
        "$venv/bin/python" -m pip install -q --upgrade pip >&2
        local constraints=()
        if [ -f requirements.lock ]; then constraints=(-c requirements.lock); fi
        "$venv/bin/python" -m pip install -q "${constraints[@]}" -e '.[dev]' >&2
        echo "$want_hash" >"$stamp"
        say "virtualenv ready ($venv)"
    fi

    # -----------------------------------------------------------------------------------------
    # Map assets of the checkout: Leaflet and its plugins from the npm registry (pinned versions
    # and sha512) into geogrid/maps/vendor, as the wheel's build hook puts them into the wheel.
    # The maps never load them from a CDN. Fast no-op when they are already there.
    # -----------------------------------------------------------------------------------------

    local assets_todo=""
    if [ "$CHECK" -eq 1 ]; then
        if [ -n "$pip_todo$venv_todo" ] || ! "$venv/bin/python" -m geogrid.maps.assets --check >/dev/null 2>&1; then
            assets_todo="fetch the map assets (Leaflet …) from the npm registry into geogrid/maps/vendor"
        fi
        report_check "$venv_todo" "$pip_todo" "$assets_todo"
        return 0
    fi
    "$venv/bin/python" -m geogrid.maps.assets >&2 || die "could not install the map assets (see above)"
}

report_check() { # report_check VENV_TODO PIP_TODO ASSETS_TODO: what --check found, on stdout
    local todo=0 item
    if [ "${#WOULD_INSTALL[@]}" -gt 0 ]; then
        echo "would install (apt): ${WOULD_INSTALL[*]}"
        todo=1
    fi
    for item in "$@"; do
        [ -n "$item" ] || continue
        echo "would $item"
        todo=1
    done
    [ "$todo" -eq 1 ] || echo "nothing to install: everything is in place"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
