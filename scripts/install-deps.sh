#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install what building the series needs on Debian 12 (bookworm), as root.
#
# Adds bookworm-backports (binary, for meson >= 1.5), and trixie and sid as
# source-only entries (for the QEMU 10.0.x and 10.2.x source packages, see
# scripts/base-versions).  A trixie or sid binary entry would make apt
# upgrade libc on the next install, so we never add one.
# Idempotent: a second run only checks that everything is there.

set -euo pipefail

PKGS="build-essential rsync patch dpkg-dev ninja-build ccache pkg-config python3-venv
      libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev
      seabios qemu-system-data git"

have_all() {
    command -v meson >/dev/null || return 1
    meson_ok=$(meson --version | awk -F. '{ print ($1 > 1 || ($1 == 1 && $2 >= 5)) }')
    [ "$meson_ok" = 1 ] || return 1
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || return 1
    done
    grep -qsE '^Suites: trixie sid$' /etc/apt/sources.list.d/ivshmem-series.sources || return 1
}

if have_all; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing build dependencies and not root." >&2
    echo "install-deps: run 'sudo $0', or install: meson (>= 1.5) $PKGS" >&2
    exit 1
fi

if ! [ -r /etc/debian_version ] || ! grep -q '^12' /etc/debian_version; then
    echo "install-deps: this script knows Debian 12 only; on another system install" >&2
    echo "install-deps: meson (>= 1.5) and the equivalents of: $PKGS" >&2
    echo "install-deps: and point the build at a QEMU tree with QEMU_SRC=/path (and BASE=10.2 or 10.0)" >&2
    exit 1
fi

cat > /etc/apt/sources.list.d/ivshmem-series.sources <<'SRC'
# Added by the ivshmem series' scripts/install-deps.sh.
# bookworm-backports: meson >= 1.5 for QEMU 10.0.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# trixie and sid, source packages only: the QEMU 10.0.x and 10.2.x bases.
# Never add a binary entry for them here: apt would upgrade libc and python
# on the next install.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $PKGS
apt-get install -y -q --no-install-recommends -t bookworm-backports meson
