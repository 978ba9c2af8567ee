#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the unmodified QEMU that is in service, 10.0.x (Debian stable's),
# next to the series, for the migration compatibility checks and the
# benchmarks: build/base/qemu gets qemu-system-x86_64 and the base's
# contrib/ivshmem-server.  It is 10.0 whichever base the series is built
# on ($BASE), and built once for both.  Same configuration and device set as ours, plus
# --enable-tools (the base builds its ivshmem server only with the tools).
#
# The tree is laid out like ours (build/base/src, build/base/qemu), and
# ccache is told not to hash the directory, so the files the two builds
# share come from the cache.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${UNMODIFIED_BUILD:-$top/build/base}
src=$dir/src
obj=$dir/qemu
# Let ccache share objects between clones in different directories.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$top}
export CCACHE_NOHASHDIR=1

"$top/scripts/install-deps.sh"
# QEMU_SRC names the series' base, not this one.
base=$(QEMU_SRC= BASE=10.0 "$top/scripts/fetch-base.sh")
mkdir -p "$dir"
exec 9> "$dir/.lock"
flock 9

# The tree is made again when the base's version or our device set changed.
mak=$top/configs/devices/x86_64-softmmu/ivshmem-series.mak
stamp="$(cat "$base/.ivshmem-base-version" 2>/dev/null || cat "$base/VERSION") $(sha256sum < "$mak")"
if [ "$(cat "$src/.complete" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$src" "$obj"
    cp -al "$base" "$src"
    rm -rf "$src/.pc"
    cp "$mak" "$src/configs/devices/x86_64-softmmu/"
    echo "$stamp" > "$src/.complete"
fi

# The base is not ours to hold to -Werror.
IVSHMEM_TARGETS=x86_64 \
    "$top/scripts/configure-qemu.sh" "$src" "$obj" --enable-tools --disable-werror

ninja -C "$obj" qemu-system-x86_64 contrib/ivshmem-server/ivshmem-server
