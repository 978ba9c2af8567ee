#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Write the series to series/ (see scripts/make-series.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
base=$("$top/scripts/fetch-base.sh")
exec python3 "$top/scripts/make-series.py" "$base" "$top/series" "$build/series-work"
