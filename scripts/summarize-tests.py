#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Print one line per test program and a closing "N passed, N failed,
# N skipped" line, counting TAP test cases, from meson's testlog.json and
# any extra TAP files given on the command line.  A program that fails
# without a failing TAP case (a crash, a timeout) counts as one failure.
# Exits non-zero when anything failed.

import json
import re
import sys

OK = re.compile(r'^ok\b')
NOT_OK = re.compile(r'^not ok\b')
SKIP = re.compile(r'#\s*skip', re.IGNORECASE)
TODO = re.compile(r'#\s*todo', re.IGNORECASE)
PLAN = re.compile(r'^1\.\.(\d+)')


def count_tap(text):
    passed = failed = skipped = 0
    for line in text.splitlines():
        line = line.strip()
        if NOT_OK.match(line):
            if TODO.search(line):
                continue
            failed += 1
        elif OK.match(line):
            if SKIP.search(line):
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


def main():
    testlog, extra = sys.argv[1], sys.argv[2:]
    rows = []
    for path in extra:
        with open(path) as f:
            text = f.read()
        p, fl, sk = count_tap(text)
        # A TAP stream that stopped early (a crash) misses cases: its plan
        # line ("1..N") says how many there should have been.
        plans = [int(m.group(1)) for m in
                 (PLAN.match(l.strip()) for l in text.splitlines()) if m]
        if not plans or plans[-1] != p + fl + sk:
            fl += 1
        elif plans[-1] == 0 and SKIP.search(text):
            sk += 1             # "1..0 # SKIP why": skipped as a whole
        rows.append((path.rsplit('/', 1)[-1], 'OK' if fl == 0 else 'FAIL',
                     p, fl, sk, 0.0))
    try:
        with open(testlog) as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        entries = []
    for e in entries:
        p, fl, sk = count_tap(e.get('stdout') or '')
        result = e.get('result', '?')
        if result not in ('OK', 'SKIP', 'EXPECTEDFAIL') and fl == 0:
            fl = 1
        rows.append((e['name'], result, p, fl, sk, e.get('duration', 0.0)))

    total = [0, 0, 0]
    for name, result, p, fl, sk, dur in rows:
        print('%-50s %-8s %4d passed %3d failed %3d skipped %7.1fs'
              % (name, result, p, fl, sk, dur))
        total[0] += p
        total[1] += fl
        total[2] += sk
    if not rows:
        print('no tests ran')
        total[1] += 1
    print('%d passed, %d failed, %d skipped' % tuple(total))
    return 1 if total[1] else 0


if __name__ == '__main__':
    sys.exit(main())
