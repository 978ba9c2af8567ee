#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Print the directory that holds the series' files for $BASE:
#
#   ours.sh WORK_DIR
#
# The primary base (10.2) takes the files of the clone as they are.  A
# stable backport base takes them through the patches in backport/$BASE/,
# which carry only the API differences of that QEMU: the files are copied
# to WORK_DIR (by content, so unchanged files keep their mtime) and the
# patches applied there, in order.  Our files themselves carry no version
# conditionals.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
work=$1
base=${BASE:-10.2}

if ! [ -d "$top/backport/$base" ]; then
    echo "$top"
    exit 0
fi

stage=$work.stage
rm -rf "$stage"
mkdir -p "$stage"
for d in hw include contrib tests docs patches configs scripts; do
    cp -a "$top/$d" "$stage/"
done
for p in "$top/backport/$base"/*.patch; do
    [ -e "$p" ] || continue
    if ! out=$(patch -d "$stage" -p1 -f -s --fuzz=0 --no-backup-if-mismatch < "$p" 2>&1); then
        echo "$out" >&2
        echo "ours: backport/$base/$(basename "$p") no longer applies to our files" >&2
        exit 1
    fi
done
mkdir -p "$work"
rsync -rlt --checksum --delete "$stage/" "$work/"
rm -rf "$stage"
echo "$work"
