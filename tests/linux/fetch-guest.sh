#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch and unpack what the Linux guest check boots: Debian's kernel
# (the package linux-image-amd64 currently depends on), busybox-static, and
# the kernel's linux-headers (with their dependencies linux-headers-*-common,
# linux-kbuild-* and linux-compiler-*) to build the guest's test module.
# The packages are fetched with "apt-get download" (never installed on the
# host) and unpacked with "dpkg-deb -x" into a cache outside the repository,
# once; later runs find them there and fetch nothing.
#
# Usage: fetch-guest.sh
# Prints on its last line of stdout:
#   CACHE=<dir> KVER=<kernel version> KHEADERS=<dir to pass to make -C>
# Environment: IVSHMEM_CACHE (default ~/.cache/ivshmem-series); the guest
# files go to $IVSHMEM_CACHE/linux.

set -euo pipefail

CACHE="${IVSHMEM_CACHE:-$HOME/.cache/ivshmem-series}/linux"
mkdir -p "$CACHE/debs"

log() { echo "fetch-guest: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Host tools this check needs: cpio (initramfs) and a static libc for the
# guest helper.  Installed only when missing.
need_pkgs=()
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v gcc >/dev/null || need_pkgs+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need_pkgs+=(libc6-dev)
command -v dpkg-deb >/dev/null || need_pkgs+=(dpkg)
command -v make >/dev/null || need_pkgs+=(make)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

# The kernel package's name.  Remembered in the cache so that a second run
# needs no apt at all (and keeps booting the same kernel).
if [ -s "$CACHE/kernel-package" ] && [ -e "$CACHE/kernel.done" ]; then
    kpkg=$(cat "$CACHE/kernel-package")
else
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    if [ -z "$kpkg" ]; then
        log "no candidate for linux-image-amd64: running apt-get update"
        as_root apt-get update -qq
        kpkg=$(apt-cache depends linux-image-amd64 |
               sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    fi
    [ -n "$kpkg" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
fi
kver=${kpkg#linux-image-}

fetch_unpack() {   # package, destination directory (added to), stamp file
    local pkg=$1 dest=$2 stamp=$3 deb
    [ -e "$stamp" ] && return 0
    deb=$(ls "$CACHE"/debs/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        log "apt-get download $pkg"
        (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2)
        deb=$(ls "$CACHE"/debs/"${pkg}"_*.deb | head -n1)
    fi
    log "unpacking $(basename "$deb")"
    mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest"
    touch "$stamp"
}

[ -e "$CACHE/kernel.done.$kver" ] || rm -rf "$CACHE/kernel-$kver"
if [ ! -e "$CACHE/kernel.done.$kver" ]; then
    fetch_unpack "$kpkg" "$CACHE/kernel-$kver" "$CACHE/kernel.done.$kver"
    # The guest needs no module of the package (its initramfs has only the
    # test's own): drop the ~400 MB of them, keep boot/.
    rm -rf "$CACHE/kernel-$kver/lib/modules"
fi
echo "$kpkg" > "$CACHE/kernel-package"
touch "$CACHE/kernel.done"
[ -e "$CACHE/busybox.done" ] || rm -rf "$CACHE/busybox"
fetch_unpack busybox-static "$CACHE/busybox" "$CACHE/busybox.done"

# The headers and what they need, unpacked into one tree: the headers'
# symbolic links into linux-kbuild are relative and stay valid; only the
# top Makefile names the -common directory by its absolute path.
hroot="$CACHE/headers-$kver"
if [ ! -e "$CACHE/headers.done.$kver" ]; then
    hpkgs=$(apt-cache depends "linux-headers-$kver" |
            sed -n 's/^ *Depends: \(linux-[a-z0-9.-]*\)$/\1/p')
    rm -rf "$hroot"
    for p in "linux-headers-$kver" $hpkgs; do
        fetch_unpack "$p" "$hroot" "$CACHE/headers.part.$p"
        rm -f "$CACHE/headers.part.$p"
    done
    sed -i "s|^include /usr/src/|include $hroot/usr/src/|" \
        "$hroot/usr/src/linux-headers-$kver/Makefile"
    touch "$CACHE/headers.done.$kver"
fi
# The compiler the kernel was built with (linux-compiler-gcc-N-x86 only
# depends on it), e.g. gcc-12 on Debian 12.
kcc=$(sed -n 's/^CC = .*gcc-\([0-9]*\)$/gcc-\1/p' \
      "$hroot/usr/src/linux-headers-$kver/.kernelvariables")
if [ -n "$kcc" ] && ! command -v "$kcc" >/dev/null; then
    log "installing $kcc"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$kcc" >&2
fi

[ -e "$CACHE/kernel-$kver/boot/vmlinuz-$kver" ] ||
    { log "no vmlinuz-$kver in $kpkg"; exit 1; }
[ -x "$CACHE/busybox/bin/busybox" ] ||
    { log "no bin/busybox in busybox-static"; exit 1; }

echo "CACHE=$CACHE KVER=$kver KHEADERS=$hroot/usr/src/linux-headers-$kver"
