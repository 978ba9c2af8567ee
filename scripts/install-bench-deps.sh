#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install what `make bench` needs beyond the build: gnuplot for the plots
# (Debian's gnuplot-nox, which has the pngcairo terminal).  As root, once.

set -euo pipefail

pkgs="gnuplot-nox"
for p in $pkgs; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        continue
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "install-bench-deps: $p is missing; install: $pkgs" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $pkgs
done
