#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch the QEMU 10.0.x base: Debian trixie's qemu source package with
# Debian's patches applied (the upstream tarball's firmware blobs are
# stripped there, and Debian's patches make it configure without pycotap).
#
# The unpacked tree is cached outside the clone, in $IVSHMEM_CACHE
# (default ~/.cache/ivshmem-series), so a second build does not fetch
# again.  Prints the path of the pristine base tree on stdout.
#
# QEMU_SRC=/path/to/qemu skips all of this and uses that tree instead.

set -euo pipefail

if [ -n "${QEMU_SRC:-}" ]; then
    if ! [ -f "$QEMU_SRC/VERSION" ] || ! [ -f "$QEMU_SRC/hw/misc/meson.build" ]; then
        echo "fetch-base: QEMU_SRC=$QEMU_SRC is not a QEMU source tree" >&2
        exit 1
    fi
    case "$(cat "$QEMU_SRC/VERSION")" in
    10.0.*) ;;
    *) echo "fetch-base: warning: QEMU_SRC is $(cat "$QEMU_SRC/VERSION"), the series targets 10.0.x" >&2 ;;
    esac
    (cd "$QEMU_SRC" && pwd)
    exit 0
fi

cache=${IVSHMEM_CACHE:-$HOME/.cache/ivshmem-series}
mkdir -p "$cache"

version=$(apt-cache showsrc qemu 2>/dev/null |
          awk '/^Version: 1:10\.0\./ { print $2 }' | sort -V | tail -n 1)
if [ -z "$version" ]; then
    # No package lists (offline, or install-deps.sh not run): use the
    # newest tree already in the cache, if any.
    tree=$(ls -d "$cache"/qemu-10.0.* 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$tree" ] && [ -f "$tree/.ivshmem-base-complete" ]; then
        echo "$tree"
        exit 0
    fi
    echo "fetch-base: no QEMU 10.0.x source package known to apt;" >&2
    echo "fetch-base: run scripts/install-deps.sh (adds trixie deb-src), or set QEMU_SRC" >&2
    exit 1
fi

upstream=${version#1:}
upstream=${upstream%%+*}
tree=$cache/qemu-$upstream
if [ -f "$tree/.ivshmem-base-complete" ]; then
    echo "$tree"
    exit 0
fi

work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(
    cd "$work"
    apt-get source --download-only "qemu=$version" >&2
    dpkg-source -x ./*.dsc unpacked >&2
)
rm -rf "$tree"
mv "$work/unpacked" "$tree"
echo "$version" > "$tree/.ivshmem-base-version"
touch "$tree/.ivshmem-base-complete"
echo "$tree"
