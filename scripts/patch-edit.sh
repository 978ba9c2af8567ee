#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Edit one of our diffs to QEMU-owned files without hand-writing hunks.
#
#   patch-edit.sh open patches/NAME.patch [FILE...]
#       copies the base's versions of the files the patch touches (and any
#       FILE named) to build/patch-edit/NAME/{a,b}, applies the patch to b,
#       and prints the b directory: edit the files there.
#   patch-edit.sh save patches/NAME.patch
#       regenerates the patch from a and b, keeping its header text.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cmd=$1
patch=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
shift 2
name=$(basename "$patch" .patch)
dir=$top/build/patch-edit/$name
base=$("$top/scripts/fetch-base.sh")

case "$cmd" in
open)
    rm -rf "$dir"
    mkdir -p "$dir/a" "$dir/b"
    files=""
    [ -f "$patch" ] && files=$(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$patch")
    for f in $files "$@"; do
        mkdir -p "$dir/a/$(dirname "$f")" "$dir/b/$(dirname "$f")"
        if [ -f "$base/$f" ]; then
            cp "$base/$f" "$dir/a/$f"
            cp "$base/$f" "$dir/b/$f"
        fi
    done
    # Patches are stacked: apply the earlier ones that touch these files
    # to both sides first, so the diff is against what they leave.
    for p in "$top"/patches/*.patch; do
        [ "$p" \< "$patch" ] || continue
        for f in $files "$@"; do
            if grep -q "^+++ b/$f\$" "$p"; then
                patch -d "$dir/a" -p1 -s --no-backup-if-mismatch < "$p"
                patch -d "$dir/b" -p1 -s --no-backup-if-mismatch < "$p"
                break
            fi
        done
    done
    grep -q "^+++ " "$patch" 2>/dev/null && patch -d "$dir/b" -p1 -s --no-backup-if-mismatch < "$patch"
    echo "$dir/b"
    ;;
save)
    [ -d "$dir/b" ] || { echo "patch-edit: open $name first" >&2; exit 1; }
    header=""
    [ -f "$patch" ] && header=$(sed '/^--- a\//,$d' "$patch")
    {
        [ -n "$header" ] && printf "%s\n\n" "$header"
        (cd "$dir" && diff -ruN a b) | sed -e 's|^--- a/\([^\t]*\)\t.*|--- a/\1|' \
                                           -e 's|^+++ b/\([^\t]*\)\t.*|+++ b/\1|' \
                                           -e '/^diff -ruN/d'
    } > "$patch.new" || true
    mv "$patch.new" "$patch"
    echo "saved $patch"
    ;;
*)
    echo "usage: patch-edit.sh open|save patches/NAME.patch [FILE...]" >&2
    exit 2
    ;;
esac
