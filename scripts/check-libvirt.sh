#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check-libvirt: Debian 12's libvirt drives the series' QEMU end to
# end (tests/libvirt/run.py).  Builds the series (scripts/build.sh),
# installs libvirtd and virsh from the Debian archive when missing
# (without recommends, and refusing a plan that would bring a distro
# QEMU), then runs the cases against private libvirt daemons that touch
# no libvirt the machine runs.  Ends with a "N passed, N failed, N
# skipped" line; a skipped case fails this target too.

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
obj=$build/qemu
pkgs="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"

skip() {
    echo "ok 1 - libvirt end to end # SKIP $*"
    echo "0 passed, 0 failed, 1 skipped"
    exit 1
}

"$top/scripts/build.sh" || {
    echo "check-libvirt: the series' build failed"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
}

missing=
for p in $pkgs; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || skip "libvirt packages missing ($missing) and not root"
    echo "check-libvirt: installing$missing"
    plan=$(apt-get install -s --no-install-recommends $missing 2>&1) ||
        skip "apt-get cannot install$missing: $(echo "$plan" | tail -1)"
    if echo "$plan" | grep -Eq '^Inst (qemu-system-x86|qemu-system-x86-64|qemu-kvm|qemu-system) '; then
        skip "installing$missing would bring a distro QEMU"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        $missing > "$build/check-libvirt-apt.log" 2>&1 ||
        skip "apt-get install$missing failed (see $build/check-libvirt-apt.log)"
fi
if dpkg-query -W -f '${Status}' qemu-system-x86 2>/dev/null | grep -q 'install ok installed'; then
    echo "check-libvirt: note: Debian's qemu-system-x86 is installed; the" \
         "domains use only the series' QEMU (<emulator>)"
fi
for t in /usr/sbin/libvirtd virsh unshare; do
    command -v "$t" > /dev/null || skip "$t not found"
done
[ "$(id -u)" = 0 ] || skip "private libvirt daemons need root (mount namespaces)"

exec python3 "$top/tests/libvirt/run.py" "$obj/qemu-system-x86_64" \
     "$obj/contrib/ivshmem-server/ivshmem-server"
