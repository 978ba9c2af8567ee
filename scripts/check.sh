#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build, then run the series' tests: the layout checks, the migration
# stream against the base's (scripts/check-vmstate.sh), the end-to-end
# tests with our tiny guests and with a Linux guest, and every unit test
# and qtest of the "ivshmem" suite through meson's test runner.  Ends
# with a "N passed, N failed, N skipped" line counting TAP test cases,
# and exits non-zero on any failure.
#
# Extra arguments go to `meson test` (for instance --repeat 3 or a name).

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
obj=$build/qemu

"$top/scripts/build.sh" || { echo "check: the build failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

layout=$build/layout.tap
"$top/scripts/check-layout.sh" "$(cat "$build/base-path")" "$build/src" "$obj" > "$layout"
cat "$layout"

# The migration stream is the base's, checked with the base's own
# vmstate-static-checker.py in both directions (no base build needed).
vmstate=$build/vmstate.tap
"$top/scripts/check-vmstate.sh" "$(cat "$build/base-path")" \
    "$obj/qemu-system-x86_64" > "$vmstate" 2>&1
cat "$vmstate"

# End-to-end: our tiny guests talking through the devices (tests/guest).
guest=$build/guest.tap
python3 "$top/tests/guest/run-guest-tests.py" "$obj" > "$guest" 2>&1
cat "$guest"

# A Linux guest (Debian's kernel, busybox) sees and uses both devices
# (tests/linux; fetches the kernel once), on x86_64 (about 15 s) and on
# aarch64 (Debian's arm64 kernel; about 10 s).
linux=$build/linux.tap
QEMU=$obj/qemu-system-x86_64 \
IVSHMEM_SERVER=$obj/contrib/ivshmem-server/ivshmem-server \
IVSHMEM_CLIENT=$obj/contrib/ivshmem-client/ivshmem-client \
    python3 "$top/tests/linux/run-linux-check.py" > "$linux" 2>&1
grep -E '^(not ok|1\.\.|Bail)|SKIP' "$linux" || true
linux_arm=$build/linux-aarch64.tap
case " ${IVSHMEM_TARGETS:-aarch64} " in
*" aarch64 "*)
    QEMU=$obj/qemu-system-aarch64 \
    IVSHMEM_SERVER=$obj/contrib/ivshmem-server/ivshmem-server \
    IVSHMEM_CLIENT=$obj/contrib/ivshmem-client/ivshmem-client \
        python3 "$top/tests/linux/run-linux-check.py" --arch aarch64 > "$linux_arm" 2>&1
    ;;
*)
    # A build without the aarch64 emulator: say so rather than run a stale one.
    echo "1..0 # SKIP IVSHMEM_TARGETS=\"$IVSHMEM_TARGETS\" builds no qemu-system-aarch64" > "$linux_arm"
    ;;
esac
grep -E '^(not ok|1\.\.|Bail)|SKIP' "$linux_arm" || true

rm -f "$obj/meson-logs/testlog.json"
# Test programs run in parallel; every one bounds its own waits.
(cd "$obj" && meson test --no-rebuild --suite ivshmem --print-errorlogs \
     --num-processes "$(nproc)" "$@")
echo
echo "=== summary"
python3 "$top/scripts/summarize-tests.py" "$obj/meson-logs/testlog.json" "$layout" "$vmstate" "$guest" "$linux" "$linux_arm"
