#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Checks that the overlay did what it must, as TAP:
#  - none of the base's ivshmem files survives in the overlaid tree
#    (each is gone, or is ours with different content);
#  - nothing in the build graph is built from the base's ivshmem device
#    or its qtest;
#  - the built emulator offers ivshmem-plain and ivshmem-doorbell.
#
#   check-layout.sh BASE_TREE SRC_TREE BUILD_DIR

set -u

base=$1
src=$2
obj=$3
top=$(cd "$(dirname "$0")/.." && pwd)
n=0
failed=0

ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}

not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    shift
    for line in "$@"; do
        echo "# $line"
    done
}

# Every file the base has under the replaced paths.
base_files=$(cd "$base" && while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    find "$p" -type f
done < "$top/scripts/base-ivshmem-files")

survivors=""
for f in $base_files; do
    if [ -f "$src/$f" ] && cmp -s "$base/$f" "$src/$f"; then
        survivors="$survivors $f"
    fi
done
if [ -z "$survivors" ]; then
    ok "no base ivshmem file survives the overlay ($(echo $base_files | wc -w) checked)"
else
    not_ok "no base ivshmem file survives the overlay" "survivors:$survivors"
fi

graph=$(grep -o '\.\./src/[^ ]*ivshmem[^ :]*\.c' "$obj/build.ninja" | grep -v '\.c\.o$' | sort -u)
bad=$(echo "$graph" | grep -E '(^|/)(ivshmem-pci|ivshmem-test)\.c$' || true)
if [ -z "$bad" ]; then
    ok "the build graph has no source of the base's device or qtest"
else
    not_ok "the build graph has no source of the base's device or qtest" "found: $bad"
fi

# Every ivshmem source the graph compiles is one of ours.
foreign=""
for f in $graph; do
    rel=${f#../src/}
    case "$rel" in
    hw/misc/ivshmem-flat.c) continue ;;  # a different device, not replaced
    esac
    [ -f "$top/$rel" ] || foreign="$foreign $rel"
done
count=$(echo "$graph" | grep -c 'ivshmem-\(common\|plain\|doorbell\)\.c$')
if [ "$count" != 3 ]; then
    not_ok "the build graph compiles the series' three device files" "found $count"
elif [ -z "$foreign" ]; then
    ok "every ivshmem source in the build graph comes from the series ($(echo $graph | wc -w) sources)"
else
    not_ok "every ivshmem source in the build graph comes from the series" "not ours:$foreign"
fi

help=$("$obj/qemu-system-x86_64" -device help 2>&1)
for t in ivshmem-plain ivshmem-doorbell; do
    if echo "$help" | grep -q "name \"$t\""; then
        ok "qemu-system-x86_64 -device help lists $t"
    else
        not_ok "qemu-system-x86_64 -device help lists $t"
    fi
done
if echo "$help" | grep -q 'name "ivshmem"'; then
    not_ok "the old combined ivshmem device is gone"
else
    ok "the old combined ivshmem device is gone"
fi

echo "1..$n"
[ "$failed" = 0 ]
