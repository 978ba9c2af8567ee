# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sourced by the build scripts after they set $top: which QEMU base to
# build on ($BASE, see scripts/base-versions) and where its build lives.
# The primary base builds in build/, the stable backport in build/$BASE/,
# so both can be built and tested side by side.  BUILD=dir overrides.

BASE=${BASE:-10.2}
export BASE
if [ "$BASE" = 10.2 ]; then
    build=${BUILD:-$top/build}
else
    build=${BUILD:-$top/build/$BASE}
fi
