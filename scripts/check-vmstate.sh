#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The series' migration stream must be the base's: compare what the
# series' QEMU dumps for ivshmem-plain and ivshmem-doorbell
# (-dump-vmstate) with the base's dump kept in tests/vmstate/, using the
# base's own scripts/vmstate-static-checker.py in both directions (base
# as source and the series as destination, and the reverse).  Prints TAP.
#
#   check-vmstate.sh BASE_TREE QEMU
#       check QEMU (the series' binary) against the kept dump
#   check-vmstate.sh --update BASE_QEMU
#       regenerate the kept dump from the unmodified base's binary
#       (build/base/qemu/qemu-system-x86_64, see scripts/build-base.sh)
#   check-vmstate.sh --verify BASE_QEMU
#       check (TAP) that the kept dump is what BASE_QEMU dumps today
#
# Negative controls: the kept dump, changed in each way
# `vmstate-filter.py --mutate` knows, must make the checker fail in at
# least one direction; otherwise the comparison would prove nothing.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
ref=$top/tests/vmstate/base-10.0.13.json
filter=$top/scripts/vmstate-filter.py
# The machine only names the dump ("vmschkmachine"); both sides use the
# versioned machine type of the base the series must migrate with, which
# every base the series builds on still has.
dump_args="-machine pc-i440fx-10.0 -nodefaults -display none"

dump() {
    local qemu=$1 out=$2 raw

    raw=$(mktemp)
    # shellcheck disable=SC2086
    timeout 60 "$qemu" $dump_args -dump-vmstate "$raw" &&
        python3 "$filter" "$raw" "$out"
    local rc=$?
    rm -f "$raw"
    return $rc
}

if [ "${1:-}" = "--update" ]; then
    [ $# -eq 2 ] || { echo "usage: $0 --update BASE_QEMU" >&2; exit 2; }
    mkdir -p "$(dirname "$ref")"
    dump "$2" "$ref" || exit 1
    echo "check-vmstate: wrote $ref from $2"
    exit 0
fi

if [ "${1:-}" = "--verify" ]; then
    [ $# -eq 2 ] || { echo "usage: $0 --verify BASE_QEMU" >&2; exit 2; }
    fresh=$(mktemp)
    echo "1..1"
    if ! out=$(dump "$2" "$fresh" 2>&1); then
        echo "not ok 1 - kept base dump is the base binary's"
        echo "# $2 $dump_args -dump-vmstate: $out"
        rm -f "$fresh"
        exit 1
    fi
    out=$(diff -u "$ref" "$fresh")
    rc=$?
    rm -f "$fresh"
    if [ $rc -eq 0 ]; then
        echo "ok 1 - kept base dump is the base binary's"
        exit 0
    fi
    echo "not ok 1 - kept base dump is the base binary's"
    echo "$out" | head -n 40 | sed 's/^/# /'
    exit 1
fi

[ $# -eq 2 ] || { echo "usage: $0 BASE_TREE QEMU | --update|--verify BASE_QEMU" >&2; exit 2; }
checker=$1/scripts/vmstate-static-checker.py
qemu=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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

# The checker returns the number of problems; it only warns (exit 0) on
# a machine type mismatch, so any output counts as a failure too.
run_checker() {
    local out rc

    out=$(python3 "$checker" "$@" 2>&1)
    rc=$?
    echo "$out"
    [ $rc -eq 0 ] && [ -z "$out" ]
}

mutations=$(python3 "$filter" --list-mutations)
total=$((4 + $(echo "$mutations" | wc -w)))
echo "1..$total"

ours=$work/series.json
if ! [ -f "$ref" ]; then
    not_ok "kept base dump exists" "missing $ref"
elif ! [ -f "$checker" ]; then
    not_ok "base has vmstate-static-checker.py" "missing $checker"
elif out=$(dump "$qemu" "$ours" 2>&1); then
    ok "series dumps ivshmem-plain and ivshmem-doorbell vmstate"
else
    not_ok "series dumps ivshmem-plain and ivshmem-doorbell vmstate" \
        "$qemu $dump_args -dump-vmstate: $out"
fi

if ! [ -f "$ours" ] || ! [ -f "$checker" ]; then
    while [ $n -lt $total ]; do
        not_ok "not run: nothing to compare"
    done
    exit 1
fi

if out=$(run_checker -s "$ref" -d "$ours"); then
    ok "vmstate-static-checker: base 10.0.13 -> series"
else
    mapfile -t lines <<< "$out"
    not_ok "vmstate-static-checker: base 10.0.13 -> series" "${lines[@]}"
fi
if out=$(run_checker -s "$ours" -d "$ref"); then
    ok "vmstate-static-checker: series -> base 10.0.13"
else
    mapfile -t lines <<< "$out"
    not_ok "vmstate-static-checker: series -> base 10.0.13" "${lines[@]}"
fi

# Stricter than the checker, which accepts extra destination fields: the
# descriptions are the same, field by field, but for the in-memory size
# of nested structures, which the stream does not carry (--wire).
python3 "$filter" --wire "$ref" "$work/ref-wire.json"
python3 "$filter" --wire "$ours" "$work/series-wire.json"
if out=$(diff -u "$work/ref-wire.json" "$work/series-wire.json"); then
    ok "series' ivshmem vmstate descriptions equal the base's"
else
    mapfile -t lines <<< "$(echo "$out" | head -n 40)"
    not_ok "series' ivshmem vmstate descriptions equal the base's" "${lines[@]}"
fi

for m in $mutations; do
    bad=$work/mutated-$m.json
    python3 "$filter" --mutate "$m" "$ref" "$bad" || {
        not_ok "checker rejects a stream with $m" "vmstate-filter.py --mutate $m failed"
        continue
    }
    if run_checker -s "$ref" -d "$bad" > /dev/null &&
       run_checker -s "$bad" -d "$ref" > /dev/null; then
        not_ok "checker rejects a stream with $m" "both directions passed"
    else
        ok "checker rejects a stream with $m"
    fi
done
[ $failed -eq 0 ]
