#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install the Debian packages named on the command line that are missing
# (--no-install-recommends), as root; do nothing if all are there.  For
# what a target needs beyond the build: Sphinx for `make docs`, gnuplot
# for `make bench`.
#
#   install-packages.sh PKG...

set -euo pipefail

missing=
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $p"
    fi
done
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-packages: missing:$missing; install them as root" >&2
    exit 1
fi
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    $missing
