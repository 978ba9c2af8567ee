#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lay the series over a pristine QEMU base:
#
#   overlay.sh BASE_TREE SRC_TREE
#
# 1. hard-link copy the base into a staging tree (cheap, base untouched),
# 2. delete the base's own ivshmem implementation, server, client, qtest
#    and docs (listed in scripts/base-ivshmem-files),
# 3. copy the series' own files in at their QEMU paths (for a stable
#    backport base, as scripts/ours.sh adapts them to its API),
# 4. apply our small diffs to QEMU-owned files (patches/*.patch, in order),
# 5. sync the staging tree into SRC_TREE by content, so files that did not
#    change keep their mtime and ninja rebuilds only what really changed.

set -euo pipefail

base=$1
src=$2
top=$(cd "$(dirname "$0")/.." && pwd)
stage=$src.stage

die() {
    echo "overlay: $*" >&2
    exit 1
}

[ -f "$base/VERSION" ] || die "$base is not a QEMU tree"
ours=$("$top/scripts/ours.sh" "$src.ours")

# One overlay at a time per tree: the staging tree is shared.
mkdir -p "$(dirname "$src")"
exec 8> "$src.lock"
flock 8

rm -rf "$stage"
cp -al "$base" "$stage"
rm -rf "$stage/.pc"

# 2. The base's ivshmem files go, whole.
while read -r path; do
    case "$path" in ''|'#'*) continue ;; esac
    [ -e "$base/$path" ] || die "base has no $path (scripts/base-ivshmem-files is stale)"
    rm -rf "${stage:?}/$path"
done < "$top/scripts/base-ivshmem-files"

# 3. Our files.  Remove before copying: the staging tree is hard-linked to
# the cached base, and writing through a link would corrupt the cache.
(
    cd "$ours"
    for d in hw include contrib tests docs; do
        if [ -d "$d" ]; then find "$d" -type f ! -name "*~" ! -name ".*"; fi
    done
) | while read -r path; do
    mkdir -p "$(dirname "$stage/$path")"
    rm -f "$stage/$path"
    cp "$ours/$path" "$stage/$path"
done

# Our minimal device sets (not part of the series) for configure.
for mak in "$ours"/configs/devices/*/ivshmem-series.mak; do
    t=$(basename "$(dirname "$mak")")
    cp "$mak" "$stage/configs/devices/$t/"
done

# 4. Our diffs to files QEMU owns.
for p in "$ours"/patches/*.patch; do
    [ -e "$p" ] || continue
    files=$(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p")
    for f in $files; do
        # Break the hard link to the cache before patch touches the file.
        if [ -f "$stage/$f" ]; then
            cp "$stage/$f" "$stage/$f.unlink" && mv "$stage/$f.unlink" "$stage/$f"
        fi
    done
    if ! out=$(patch -d "$stage" -p1 -f -s --no-backup-if-mismatch < "$p" 2>&1); then
        echo "$out" >&2
        die "$(basename "$p") no longer applies to the base; it touches: $(echo $files)"
    fi
done

# 5. Sync by content.
mkdir -p "$src"
rsync -rl --checksum --delete "$stage/" "$src/"
rm -rf "$stage"
cp "$base/.ivshmem-base-version" "$src/.ivshmem-base-version" 2>/dev/null ||
    cat "$base/VERSION" > "$src/.ivshmem-base-version"
