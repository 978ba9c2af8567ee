#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the ivshmem fuzz targets and run each in turn, one process at a
# time, for FUZZ_SECONDS seconds (default 60).  Prints executions,
# exec/s, coverage and any crash per target; exits non-zero if a target
# crashed (reproducers go to build/fuzz-ivshmem/crashes/).
#
#   make fuzz                               # after make build
#   FUZZ_SECONDS=600 tests/fuzz-ivshmem/run.sh
#   FUZZ_TARGETS=server tests/fuzz-ivshmem/run.sh
#
# The corpus grows in build/fuzz-ivshmem/corpus/<target>/ and is reused
# by later runs; tests/fuzz-ivshmem/corpus/<target>/ holds the seeds.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$top/build/fuzz-ivshmem}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-client server}

"$here/build.sh" || exit 1

mkdir -p "$out/crashes"
failed=0
for t in $targets; do
    bin=$out/fuzz-$t
    work=$out/corpus/$t
    log=$out/$t.log
    [ -x "$bin" ] || { echo "fuzz-ivshmem: no target $t" >&2; exit 1; }
    mkdir -p "$work"
    before=$(find "$out/crashes" -name "$t-*" | wc -l)
    echo "fuzz-ivshmem: fuzz-$t for ${seconds}s (log: $log)"
    # New units go to the first directory; the seeds stay untouched.
    "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/crashes/$t-" \
        "$work" "$here/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 |
          sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\) \(corp: [^ ]*\).*/\1 \2 \3/p')
    after=$(find "$out/crashes" -name "$t-*" | wc -l)
    echo "fuzz-ivshmem: fuzz-$t: ${execs:-?} executions, ${rate:-?} exec/s," \
         "${cov:-no coverage line}"
    if [ "$rc" != 0 ] || [ "$after" -gt "$before" ]; then
        failed=1
        echo "fuzz-ivshmem: fuzz-$t FOUND A CRASH (exit $rc):"
        grep -E 'fuzz check failed|ERROR: |SUMMARY: |Test unit written' \
            "$log" | head -10 | sed 's/^/    /'
        echo "    reproduce: $bin <file from $out/crashes>"
    else
        echo "fuzz-ivshmem: fuzz-$t: no crash"
    fi
done
exit $failed
