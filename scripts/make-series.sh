#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Write the series to series/ (see scripts/make-series.py), or for a
# stable backport base (BASE=10.0) its backport series to series-$BASE/,
# made from our files as backport/$BASE/ adapts them.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
base=$("$top/scripts/fetch-base.sh")
ours=$("$top/scripts/ours.sh" "$build/series-ours")
out=$top/series
[ "$BASE" = 10.2 ] || out=$top/series-$BASE
exec python3 "$top/scripts/make-series.py" "$base" "$out" "$build/series-work" "$ours"
