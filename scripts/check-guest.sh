#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make check-guest: the Linux guest check on x86_64 and aarch64, with the
# emulators and tools of $BASE's build.  Both run even when the first fails.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
obj=$build/qemu
export IVSHMEM_SERVER=$obj/contrib/ivshmem-server/ivshmem-server
export IVSHMEM_CLIENT=$obj/contrib/ivshmem-client/ivshmem-client
rc=0
QEMU=$obj/qemu-system-x86_64 python3 "$top/tests/linux/run-linux-check.py" || rc=1
QEMU=$obj/qemu-system-aarch64 python3 "$top/tests/linux/run-linux-check.py" --arch aarch64 || rc=1
exit $rc
