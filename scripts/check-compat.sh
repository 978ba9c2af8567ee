#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check-compat: migrate ivshmem devices between the unmodified base
# and the series, both ways.  Builds the series (scripts/build.sh) and
# the base (scripts/build-base.sh, a few minutes the first time), checks
# that the kept base vmstate dump (tests/vmstate/) is still what the
# base binary dumps, then runs the "ivshmem-compat" meson suite
# (tests/qtest/ivshmem-compat-test.c) with QTEST_QEMU_BINARY_BASE set.
# Ends with a "N passed, N failed, N skipped" line; a skipped case fails
# this target too, since here nothing may be missing.
#
# Extra arguments go to `meson test`.

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
obj=$build/qemu
base_qemu=${UNMODIFIED_BUILD:-$top/build/base}/qemu/qemu-system-x86_64

fail() {
    echo "check-compat: $*"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
}

"$top/scripts/build.sh" || fail "the series' build failed"
"$top/scripts/build-base.sh" || fail "the base's build failed"

ref=$build/vmstate-ref.tap
"$top/scripts/check-vmstate.sh" --verify "$base_qemu" > "$ref" 2>&1
cat "$ref"

rm -f "$obj/meson-logs/testlog.json"
# The base's QEMU runs under the series' libqtest, which may be newer than
# 10.0 and pass an option 10.0 lacks: scripts/qemu-10.0-for-qtest drops it.
(cd "$obj" && QEMU_10_0=$base_qemu \
     QTEST_QEMU_BINARY_BASE=$top/scripts/qemu-10.0-for-qtest \
     meson test --no-rebuild --suite ivshmem-compat --print-errorlogs "$@")
echo
echo "=== summary"
summary=$(python3 "$top/scripts/summarize-tests.py" \
              "$obj/meson-logs/testlog.json" "$ref")
rc=$?
echo "$summary"
if [ $rc -eq 0 ] && ! echo "$summary" | tail -n 1 | grep -q ' 0 skipped$'; then
    echo "check-compat: cases were skipped; this target must run them all"
    rc=1
fi
exit $rc
