#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build QEMU with the series laid over the base:
#
#   install deps -> fetch base (cached) -> overlay -> configure (once) -> ninja
#
# Environment:
#   BASE=10.2|10.0     the QEMU base (scripts/base-versions; default 10.2)
#   QEMU_SRC=/path     use this QEMU tree (of $BASE) as the base instead of
#                      fetching Debian's source package
#   IVSHMEM_TARGETS    system emulators to build (default x86_64 aarch64 ppc64)
#   IVSHMEM_CACHE=dir  where the fetched base is cached (~/.cache/ivshmem-series)
#   BUILD=dir          build directory (default: build/ in the clone for
#                      10.2, build/10.0/ for the backport)

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
src=$build/src
obj=$build/qemu

# Let ccache share objects between clones in different directories.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$top}
export CCACHE_NOHASHDIR=1

"$top/scripts/install-deps.sh"
base=$("$top/scripts/fetch-base.sh")
echo "build: base $(cat "$base/.ivshmem-base-version" 2>/dev/null || cat "$base/VERSION") at $base"

mkdir -p "$build"
# One build at a time per build directory: the overlay rewrites build/src.
exec 9> "$build/.lock"
flock 9
echo "$base" > "$build/base-path"
"$top/scripts/overlay.sh" "$base" "$src"

"$top/scripts/configure-qemu.sh" "$src" "$obj"

# Regenerate the build graph first: a changed meson.build may add tests.
ninja -C "$obj" build.ninja > /dev/null
targets="$(awk '{ print $1 }' "$obj/.ivshmem-targets" |
           sed 's/-softmmu//g; s/,/ /g; s/[^ ]*/qemu-system-&/g')
         contrib/ivshmem-server/ivshmem-server
         contrib/ivshmem-client/ivshmem-client"
# Test executables of the series (and only those: the rest of QEMU's
# test suite is not ours to build).
targets="$targets $(cd "$obj" && ninja -t targets all |
    awk -F': ' '$2 == "c_LINKER" && $1 ~ /^tests\/[a-z]+\/(test-)?ivshmem/ { print $1 }')"
# shellcheck disable=SC2086
# -k 0: one broken target does not hold back the others.
ninja -k 0 -C "$obj" $targets
