#!/usr/bin/env bash
# Run a command in a truly clean Debian 12 (bookworm) root: the proof that the README's two
# set-up commands work on a fresh machine, which CI (where every package is already installed)
# cannot give.
#
#   bash scripts/clean-root.sh [OPTIONS] -- COMMAND...
#   bash scripts/clean-root.sh -- bash scripts/test.sh
#   bash scripts/clean-root.sh --demo          # scripts/demo.sh until /v1/summary answers
#
# As root. The base root is made once with `debootstrap --variant=minbase bookworm` plus
# python3 (nothing else) and kept as a tarball; every run unpacks a new copy of it, so nothing
# from an earlier run is left. A clone of this repository's HEAD (made outside the root: the
# root has no git) is copied to /root/geogrid and COMMAND runs there with a clean environment
# (CI=true), /proc, /sys, /dev/pts and /dev/shm mounted (Chromium and PostgreSQL need them).
# The root is unmounted and deleted afterwards unless --keep.
#
# Options:
#   --cache DIR       where the base tarball is kept (default /var/tmp/geogrid-clean-root)
#   --ca FILE         a CA certificate the network needs (a TLS-inspecting proxy); installed in
#                     the root with ca-certificates and named in SSL_CERT_FILE, PIP_CERT and
#                     NODE_EXTRA_CA_CERTS. Repeatable.
#   --apt-cache DIR   share downloaded .deb files between runs (a faster second run)
#   --mirror URL      Debian mirror (default http://deb.debian.org/debian)
#   --keep            keep the root (its path is printed)
#   --demo            COMMAND is scripts/demo.sh, stopped once /v1/summary answers
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

say() { echo "clean-root: $*" >&2; }
die() {
    echo "clean-root: ERROR: $*" >&2
    exit 1
}

CACHE=/var/tmp/geogrid-clean-root
MIRROR=http://deb.debian.org/debian
APT_CACHE=""
KEEP=0
DEMO=0
CAS=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --cache) CACHE="$2"; shift 2 ;;
        --ca) CAS+=("$(realpath "$2")"); shift 2 ;;
        --apt-cache) APT_CACHE="$(realpath -m "$2")"; shift 2 ;;
        --mirror) MIRROR="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --demo) DEMO=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        *) usage >&2; exit 2 ;;
    esac
done
[ "$DEMO" -eq 1 ] || [ "$#" -gt 0 ] || {
    usage >&2
    exit 2
}
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mounts need it)"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="$CACHE/bookworm-minbase-python3.tar"
mkdir -p "$CACHE"

if [ ! -f "$BASE" ]; then
    command -v debootstrap >/dev/null 2>&1 || {
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
    }
    build="$(mktemp -d "$CACHE/build.XXXXXX")"
    say "debootstrap bookworm into $build"
    debootstrap --variant=minbase bookworm "$build" "$MIRROR" >&2
    # What a Debian 12 machine's apt sources are: the release, its updates and security.
    cat >"$build/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    cp /etc/resolv.conf "$build/etc/resolv.conf"
    chroot "$build" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends python3 && apt-get clean && rm -rf /var/lib/apt/lists/*' >&2
    tar -C "$build" -cf "$BASE.part" .
    mv "$BASE.part" "$BASE"
    rm -rf "$build"
fi

ROOTFS="$(mktemp -d "$CACHE/root.XXXXXX")"
MOUNTS=()
cleanup() {
    local rc=$? m i
    trap - EXIT INT TERM
    # Stop anything the command left running inside the root, then unmount, newest first.
    for pid in $(ls /proc | grep -E '^[0-9]+$' || true); do
        if [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOTFS" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        m="${MOUNTS[$i]}"
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
    done
    if [ "$KEEP" -eq 1 ]; then
        say "kept $ROOTFS"
    else
        rm -rf --one-file-system "$ROOTFS"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "unpacking a fresh root into $ROOTFS"
tar -C "$ROOTFS" -xf "$BASE"
chmod 755 "$ROOTFS" # mktemp made it 0700: as /, it must let other users (postgres) through
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"

mount_in() { # mount_in TARGET MOUNT-ARGS...
    local target="$ROOTFS$1"
    shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTS+=("$target")
}
mount_in /proc -t proc proc
mount_in /sys -t sysfs sysfs
mount_in /dev/pts -t devpts -o newinstance,ptmxmode=0666 devpts
mount_in /dev/shm -t tmpfs -o mode=1777 tmpfs
if [ -n "$APT_CACHE" ]; then
    mkdir -p "$APT_CACHE/partial"
    mount_in /var/cache/apt/archives --bind "$APT_CACHE"
fi

ENVS=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 CI=true TERM=dumb)
if [ "${#CAS[@]}" -gt 0 ]; then
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    for ca in "${CAS[@]}"; do cp "$ca" "$ROOTFS/usr/local/share/ca-certificates/$(basename "${ca%.*}").crt"; done
    chroot "$ROOTFS" /usr/bin/env -i "${ENVS[@]}" DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates && update-ca-certificates' >&2
    bundle=/etc/ssl/certs/ca-certificates.crt
    ENVS+=("SSL_CERT_FILE=$bundle" "PIP_CERT=$bundle" "NODE_EXTRA_CA_CERTS=$bundle" "REQUESTS_CA_BUNDLE=$bundle")
fi

clone="$(mktemp -d /tmp/geogrid-clone.XXXXXX)"
git clone -q "$REPO" "$clone/geogrid"
cp -a "$clone/geogrid" "$ROOTFS/root/geogrid"
rm -rf "$clone"
say "copied a clone of $(git -C "$REPO" rev-parse --short HEAD) to /root/geogrid"

if [ "$DEMO" -eq 1 ]; then
    # The main job serves until stopped: time it from the clean root to a served summary.
    set -- bash -c '
        bash scripts/demo.sh >/tmp/demo.log 2>&1 &
        start=$(date +%s)
        until python3 -c "import json, urllib.request as u; d = json.load(u.urlopen(\"http://127.0.0.1:8000/v1/summary?from=2017-07-01&to=2018-04-18\", timeout=5)); print(json.dumps(d[\"communities\"][0][\"requests\"]))" 2>/dev/null; do
            if ! kill -0 $! 2>/dev/null; then tail -n 40 /tmp/demo.log; echo "demo.sh exited" >&2; exit 1; fi
            [ $(($(date +%s) - start)) -lt 1800 ] || { tail -n 40 /tmp/demo.log; exit 1; }
            sleep 2
        done
        echo "demo: serving after $(($(date +%s) - start)) s"
        python3 -c "import urllib.request as u; print(len(u.urlopen(\"http://127.0.0.1:8000/maps/coverage\").read()), \"bytes of /maps/coverage\")"
        kill $!'
fi

say "running in the clean root: $*"
start=$(date +%s)
set +e
chroot "$ROOTFS" /usr/bin/env -i "${ENVS[@]}" /bin/bash -c 'cd /root/geogrid && exec "$@"' bash "$@" </dev/null
rc=$?
set -e
say "exit $rc after $(($(date +%s) - start)) s"
exit "$rc"
