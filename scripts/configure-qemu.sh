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
# only in EXTRA_CONFIGURE_ARG.

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

if ! [ -f "$obj/build.ninja" ]; then
    rm -rf "$obj"
    mkdir -p "$obj"
    (
        cd "$obj"
        "$src/configure" \
            "${cc_args[@]}" \
            --python=/usr/bin/python3 \
            --target-list=x86_64-softmmu \
            --without-default-features \
            --without-default-devices \
            --with-devices-x86_64=ivshmem-series \
            --enable-kvm \
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
fi

# Firmware: Debian's QEMU source has no binary blobs; use seabios and
# qemu-system-data's option ROMs.
fw=$obj/qemu-bundle/usr/local/share/qemu
mkdir -p "$fw"
for f in /usr/share/seabios/*.bin /usr/share/qemu/linuxboot_dma.bin \
         /usr/share/qemu/kvmvapic.bin /usr/share/qemu/pvh.bin; do
    if [ -e "$f" ]; then
        ln -sf "$f" "$fw/"
    fi
done
