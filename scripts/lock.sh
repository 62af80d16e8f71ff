#!/usr/bin/env bash
# Regenerate requirements.lock (pins for pip -c) from pyproject.toml, in a fresh throwaway venv,
# with the same Python that scripts/setup.sh uses for .venv. Run after changing dependencies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
WORK="$(mktemp -d /tmp/geogrid-lock.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip
"$WORK/venv/bin/python" -m pip install -q -e "${ROOT}[dev]"
version="$("$WORK/venv/bin/python" -c 'import platform; print(platform.python_version())')"
{
    echo "# Pinned versions of geogrid's dependencies (incl. the [dev] extra), used as pip constraints:"
    echo "#   pip install -c requirements.lock -e '.[dev]'   (scripts/setup.sh does this)"
    echo "# Generated with Python $version on $(uname -m) Linux by scripts/lock.sh"
    echo "# (pip freeze --exclude-editable in a fresh venv; geogrid itself removed)."
    "$WORK/venv/bin/python" -m pip freeze --exclude-editable | grep -viE '^(geogrid|-e )'
} >requirements.lock.new

# The pins must install on the oldest Python the set-up supports: Debian 12's 3.11.2. A pin
# made with a newer 3.11 can need more (soupsieve >= 3.0.2 needs 3.11.5), which only a fresh
# Debian machine would show. pip resolves the pins for that version, downloading nothing.
FLOOR=3.11.2
if ! "$WORK/venv/bin/python" -m pip install -q --dry-run --ignore-installed --only-binary=:all: \
    --python-version "$FLOOR" --target "$WORK/floor" -r requirements.lock.new; then
    echo "lock: these pins do not install on Python $FLOOR (see above); pin an older release" >&2
    echo "lock: of the package named, add it to pyproject.toml if need be, and re-run" >&2
    exit 1
fi
mv requirements.lock.new requirements.lock
echo "lock: wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages; installs on Python $FLOOR)"
