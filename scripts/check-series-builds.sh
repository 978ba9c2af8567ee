#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Check that every commit of the series builds on its own (a maintainer
# bisecting through it must not hit a broken tree): build the emulator
# and the ivshmem tools and tests at each commit that `make series` made
# in build/series-work, incrementally, in build/series-obj.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
work=$build/series-work
obj=$build/series-obj
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$top}
export CCACHE_NOHASHDIR=1

[ -d "$work/.git" ] || { echo "check-series-builds: run make series first" >&2; exit 1; }
# Our device sets are not part of the series; git leaves untracked files be.
for mak in "$top"/configs/devices/*/ivshmem-series.mak; do
    cp "$mak" "$work/configs/devices/$(basename "$(dirname "$mak")")/"
done

head=$(git -C "$work" rev-parse HEAD)
trap 'git -C "$work" checkout -q "$head"' EXIT
failed=0
for rev in $(git -C "$work" rev-list --reverse base..HEAD); do
    subject=$(git -C "$work" log -1 --format=%s "$rev")
    git -C "$work" checkout -q "$rev"
    "$top/scripts/configure-qemu.sh" "$work" "$obj"
    # Regenerate first: the build graph may still be that of another commit.
    ninja -C "$obj" build.ninja > "$obj.log" 2>&1 || true
    # Whatever ivshmem programs this commit has, plus the emulators.
    targets="$(ninja -C "$obj" -t targets all |
        awk -F': ' '$2 == "c_LINKER" && $1 ~ /ivshmem|^qemu-system-/ { print $1 }')"
    # shellcheck disable=SC2086
    if ninja -C "$obj" $targets > "$obj.log" 2>&1; then
        echo "ok - $subject"
    else
        failed=1
        echo "not ok - $subject"
        grep -E 'error|FAILED' "$obj.log" | head -n 10 | sed 's/^/# /'
    fi
done
exit $failed
