#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch and unpack what the Linux guest check boots: Debian's kernel
# (the package linux-image-ARCH currently depends on) and busybox-static.
# The kernel's own vfio modules, which the guests load.  For amd64 also the
# kernel's linux-headers (with their dependencies linux-headers-*-common,
# linux-kbuild-* and linux-compiler-*) to build the guest's test module;
# for arm64 Debian's cross compiler for the guest's programs.
# The packages are fetched with "apt-get download" (never installed on the
# host) and unpacked with "dpkg-deb -x" into a cache outside the repository,
# once; later runs find them there and fetch nothing.  arm64 packages come
# through a private apt state in the cache (its own sources and lists,
# APT::Architecture=arm64), so the host's dpkg and apt setup stay as they
# are.
#
# Usage: fetch-guest.sh [amd64|arm64]     (default amd64)
# Prints on its last line of stdout:
#   CACHE=<dir> KVER=<kernel version> KTREE=<the package's boot/ and vfio
#   modules> [KHEADERS=<dir to pass to make -C>]
# Environment: IVSHMEM_CACHE (default ~/.cache/ivshmem-series); the guest
# files go to $IVSHMEM_CACHE/linux (amd64) or $IVSHMEM_CACHE/linux-arm64.

set -euo pipefail

ARCH=${1:-amd64}
case $ARCH in
amd64) CACHE="${IVSHMEM_CACHE:-$HOME/.cache/ivshmem-series}/linux" ;;
arm64) CACHE="${IVSHMEM_CACHE:-$HOME/.cache/ivshmem-series}/linux-arm64" ;;
*) echo "fetch-guest: unknown architecture $ARCH" >&2; exit 2 ;;
esac
mkdir -p "$CACHE/debs"

log() { echo "fetch-guest: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Host tools this check needs: cpio (initramfs) and a static libc for the
# guest helper (for arm64: Debian's cross compiler and its libc).
# Installed only when missing.
need_pkgs=()
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v gcc >/dev/null || need_pkgs+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need_pkgs+=(libc6-dev)
command -v dpkg-deb >/dev/null || need_pkgs+=(dpkg)
command -v make >/dev/null || need_pkgs+=(make)
if [ "$ARCH" = arm64 ]; then
    command -v aarch64-linux-gnu-gcc >/dev/null || need_pkgs+=(gcc-aarch64-linux-gnu)
    [ -e /usr/aarch64-linux-gnu/lib/libc.a ] || need_pkgs+=(libc6-dev-arm64-cross)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

# apt for the guest's architecture.  amd64 is the host's: the host's apt.
# arm64 gets a private state in the cache: the host's Debian 12 suites,
# lists fetched there (an "apt-get update" that touches only the cache),
# an empty dpkg status and no preferences.
APT_OPTS=(-o APT::Sandbox::User=root)
apt_update() { as_root apt-get update -qq; }
if [ "$ARCH" = arm64 ]; then
    astate="$CACHE/apt"
    mkdir -p "$astate/lists/partial" "$astate/cache/archives/partial" \
             "$astate/sources.list.d"
    [ -e "$astate/status" ] || : > "$astate/status"
    cat > "$astate/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    APT_OPTS+=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
               -o Dir::Etc::SourceList=/dev/null
               -o Dir::Etc::SourceParts="$astate/sources.list.d"
               -o Dir::Etc::Preferences=/dev/null
               -o Dir::Etc::PreferencesParts=/dev/null
               -o Dir::State::Lists="$astate/lists"
               -o Dir::State::status="$astate/status"
               -o Dir::Cache="$astate/cache")
    apt_update() { apt-get -qq "${APT_OPTS[@]}" update >&2; }
fi
acache() { apt-cache "${APT_OPTS[@]}" "$@"; }

kernel_of() {   # the linux-image-VERSION-ARCH that linux-image-ARCH depends on
    # (empty, not an error, when the lists do not know it yet)
    { acache depends "linux-image-$ARCH" 2>/dev/null || true; } |
        sed -n "s/^ *Depends: \(linux-image-[0-9].*-$ARCH\)\$/\1/p" | head -n1
}

# The kernel package's name.  Remembered in the cache so that a second run
# needs no apt at all (and keeps booting the same kernel).
if [ -s "$CACHE/kernel-package" ] && [ -e "$CACHE/kernel.done" ]; then
    kpkg=$(cat "$CACHE/kernel-package")
else
    kpkg=$(kernel_of)
    if [ -z "$kpkg" ]; then
        log "no candidate for linux-image-$ARCH: running apt-get update"
        apt_update
        kpkg=$(kernel_of)
    fi
    [ -n "$kpkg" ] || { log "cannot resolve linux-image-$ARCH"; exit 1; }
fi
kver=${kpkg#linux-image-}

fetch_unpack() {   # package, destination directory (added to), stamp file
    local pkg=$1 dest=$2 stamp=$3 deb
    [ -e "$stamp" ] && return 0
    deb=$(ls "$CACHE"/debs/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        log "apt-get download $pkg"
        (cd "$CACHE/debs" && apt-get download -q "${APT_OPTS[@]}" "$pkg" >&2)
        deb=$(ls "$CACHE"/debs/"${pkg}"_*.deb | head -n1)
    fi
    log "unpacking $(basename "$deb")"
    mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest"
    touch "$stamp"
}

# The kernel's tree: boot/ and the vfio modules.  Its own directory, not
# kernel-VERSION: checks of older branches share this cache and keep only
# boot/ there (they remove every module when their stamp is missing).
ktree="$CACHE/kernel-vfio-$kver"
kstamp="$CACHE/kernel-vfio.done.$kver"
[ -e "$kstamp" ] || rm -rf "$ktree"
if [ ! -e "$kstamp" ]; then
    fetch_unpack "$kpkg" "$ktree" "$kstamp.tmp"
    rm -f "$kstamp.tmp"
    # The guests load vfio-pci and what it depends on, nothing else of the
    # package's modules: keep drivers/vfio (and virt/, irqbypass's place
    # when it is a module), drop the other ~300 MB.
    mods="$ktree/lib/modules/$kver/kernel"
    keep="$ktree/keep"
    mkdir -p "$keep"
    mv "$mods/drivers/vfio" "$keep/vfio"
    [ ! -d "$mods/virt" ] || mv "$mods/virt" "$keep/virt"
    rm -rf "$ktree/lib/modules"
    mkdir -p "$mods/drivers"
    mv "$keep/vfio" "$mods/drivers/vfio"
    [ ! -d "$keep/virt" ] || mv "$keep/virt" "$mods/virt"
    rmdir "$keep"
    touch "$kstamp"
fi
echo "$kpkg" > "$CACHE/kernel-package"
touch "$CACHE/kernel.done"
[ -e "$CACHE/busybox.done" ] || rm -rf "$CACHE/busybox"
fetch_unpack busybox-static "$CACHE/busybox" "$CACHE/busybox.done"

[ -e "$ktree/boot/vmlinuz-$kver" ] ||
    { log "no vmlinuz-$kver in $kpkg"; exit 1; }
[ -x "$CACHE/busybox/bin/busybox" ] ||
    { log "no bin/busybox in busybox-static"; exit 1; }

if [ "$ARCH" = arm64 ]; then
    # No module of ours on arm64: the guest has only the kernel's vfio-pci.
    echo "CACHE=$CACHE KVER=$kver KTREE=$ktree"
    exit 0
fi

# The headers and what they need, unpacked into one tree: the headers'
# symbolic links into linux-kbuild are relative and stay valid; only the
# top Makefile names the -common directory by its absolute path.
hroot="$CACHE/headers-$kver"
if [ ! -e "$CACHE/headers.done.$kver" ]; then
    hpkgs=$(acache depends "linux-headers-$kver" |
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

echo "CACHE=$CACHE KVER=$kver KTREE=$ktree KHEADERS=$hroot/usr/src/linux-headers-$kver"
