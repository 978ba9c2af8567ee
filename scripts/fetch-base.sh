#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch the QEMU base named by $BASE (default 10.2, see scripts/base-versions):
# the Debian source package of exactly the pinned version, with Debian's
# patches applied (the upstream tarball's firmware blobs are stripped there,
# and Debian's patches make it configure without pycotap).
#
# The unpacked tree is cached outside the clone, in $IVSHMEM_CACHE
# (default ~/.cache/ivshmem-series), so a second build does not fetch
# again.  Prints the path of the pristine base tree on stdout.
#
# QEMU_SRC=/path/to/qemu skips all of this and uses that tree instead; its
# VERSION must belong to $BASE.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
base=${BASE:-10.2}

die() {
    echo "fetch-base: $*" >&2
    exit 1
}

line=$(awk -v b="$base" '$1 == b { print $2, $3 }' "$top/scripts/base-versions")
[ -n "$line" ] ||
    die "BASE=$base is not a base of the series; scripts/base-versions knows: $(awk '!/^#/ { print $1 }' "$top/scripts/base-versions" | xargs)"
read -r version suite <<< "$line"
upstream=${version#1:}
upstream=${upstream%%+*}

if [ -n "${QEMU_SRC:-}" ]; then
    if ! [ -f "$QEMU_SRC/VERSION" ] || ! [ -f "$QEMU_SRC/hw/misc/meson.build" ]; then
        die "QEMU_SRC=$QEMU_SRC is not a QEMU source tree"
    fi
    case "$(cat "$QEMU_SRC/VERSION")" in
    "$base".*) ;;
    *) die "QEMU_SRC is QEMU $(cat "$QEMU_SRC/VERSION"), not $base.x; set BASE to match" ;;
    esac
    (cd "$QEMU_SRC" && pwd)
    exit 0
fi

cache=${IVSHMEM_CACHE:-$HOME/.cache/ivshmem-series}
mkdir -p "$cache"
tree=$cache/qemu-$upstream
if [ -f "$tree/.ivshmem-base-complete" ]; then
    echo "$tree"
    exit 0
fi

# Read the whole list first: grep -q stopping early would make apt-cache
# fail with SIGPIPE, which pipefail reports.
known=$(apt-cache showsrc qemu 2>/dev/null | sed -n 's/^Version: //p' || true)
if ! grep -qxF "$version" <<< "$known"; then
    die "apt knows no source package qemu=$version (QEMU $upstream, Debian $suite);" \
        "run scripts/install-deps.sh (it adds the $suite deb-src entry), then apt-get update; or set QEMU_SRC"
fi

work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get source --download-only "qemu=$version" >&2); then
    die "could not download qemu=$version from Debian $suite (the archive lists it but does not serve it?)"
fi
(cd "$work" && dpkg-source -x ./*.dsc unpacked >&2) ||
    die "dpkg-source could not unpack qemu=$version"
[ "$(cat "$work/unpacked/VERSION")" = "$upstream" ] ||
    die "qemu=$version unpacked as QEMU $(cat "$work/unpacked/VERSION"), not $upstream"
rm -rf "$tree"
mv "$work/unpacked" "$tree"
echo "$version" > "$tree/.ivshmem-base-version"
touch "$tree/.ivshmem-base-complete"
echo "$tree"
