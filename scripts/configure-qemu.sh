#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Configure a QEMU tree the way every build of this project does, once,
# and give the build tree its firmware:
#
#   configure-qemu.sh SRC OBJ [EXTRA_CONFIGURE_ARG...]
#
# Used for the series (scripts/build.sh) and for the unmodified base the
# benchmarks compare against (scripts/build-base.sh), so the two differ
# only in EXTRA_CONFIGURE_ARG.  IVSHMEM_TARGETS names the system emulators
# (default: x86_64 aarch64 ppc64); each gets the device set in
# configs/devices/<target>-softmmu/ivshmem-series.mak.

set -euo pipefail

src=$1
obj=$2
shift 2
log=$obj.configure.log

# QEMU's configure names the compiler in meson's native file, so meson does
# not add ccache by itself: name it here.
cc_args=()
if command -v ccache > /dev/null; then
    cc_args=(--cc="ccache cc")
fi

targets=${IVSHMEM_TARGETS:-x86_64 aarch64 ppc64}
target_args=()
list=
for t in $targets; do
    list=${list:+$list,}$t-softmmu
    target_args+=(--with-devices-$t=ivshmem-series)
done

# A build configured for other targets, or over another base, is
# configured again.
stamp="$list $(cat "$src/.ivshmem-base-version" 2>/dev/null || cat "$src/VERSION")"
if [ -f "$obj/build.ninja" ] && [ "$(cat "$obj/.ivshmem-targets" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$obj/build.ninja"
fi

if ! [ -f "$obj/build.ninja" ]; then
    rm -rf "$obj"
    mkdir -p "$obj"
    (
        cd "$obj"
        "$src/configure" \
            "${cc_args[@]}" \
            --python=/usr/bin/python3 \
            --target-list="$list" \
            --without-default-features \
            --without-default-devices \
            "${target_args[@]}" \
            --enable-kvm \
            --enable-fdt=system \
            --enable-trace-backends=log \
            --disable-docs \
            --disable-install-blobs \
            --enable-werror \
            "$@"
    ) > "$log" 2>&1 || {
        tail -n 30 "$log" >&2
        echo "configure-qemu: configure failed, see $log" >&2
        exit 1
    }
    echo "$stamp" > "$obj/.ivshmem-targets"
fi

# Firmware: Debian's QEMU source has no binary blobs; use seabios and
# qemu-system-data's option ROMs and pseries firmware (SLOF, VOF).
fw=$obj/qemu-bundle/usr/local/share/qemu
mkdir -p "$fw"
for f in /usr/share/seabios/*.bin /usr/share/qemu/linuxboot_dma.bin \
         /usr/share/qemu/kvmvapic.bin /usr/share/qemu/pvh.bin \
         /usr/share/qemu/slof.bin /usr/share/qemu/vof.bin; do
    if [ -e "$f" ]; then
        ln -sf "$f" "$fw/"
    fi
done
