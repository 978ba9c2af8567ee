#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build QEMU's manual with the series laid over the base, with Sphinx
# warnings as errors, so that a broken reference, toctree entry or option
# directive in our documents fails.  Installs Debian's Sphinx when it is
# missing (as root).  Output: build/docs/html.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
out=$build/docs

"$top/scripts/install-packages.sh" python3-sphinx python3-sphinx-rtd-theme

# The overlay (and the rest of the build) puts our documents in place.
"$top/scripts/build.sh" > /dev/null
rm -rf "$out"
mkdir -p "$out"
# The system Python: Debian's Sphinx is not in QEMU's build venv.
if /usr/bin/python3 -m sphinx -W -q -j "$(nproc)" -b html \
        -d "$out/doctrees" "$build/src/docs" "$out/html" 2> "$out/warnings.log"; then
    echo "docs: built without warnings in $out/html"
else
    cat "$out/warnings.log" >&2
    echo "docs: Sphinx reported the problems above" >&2
    exit 1
fi
