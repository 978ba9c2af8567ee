#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run the demo against the build (see scripts/demo.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/base-env.sh"
exec python3 "$top/scripts/demo.py" "$build/qemu"
