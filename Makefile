# SPDX-License-Identifier: GPL-2.0-or-later
#
# The ivshmem series: build it over a QEMU 10.0.x base, demo it, test it.
#
#   make          build, then run the demo
#   make check    build, then run the test suite
#   make series   write the series as patches against the base, checkpatch'd
#
# QEMU_SRC=/path/to/qemu-10.0.x uses that tree as the base instead of
# fetching Debian's source package.  See README.rst.

.PHONY: all build demo check series clean distclean

all: demo

build:
	@scripts/build.sh

demo: build
	@scripts/demo.sh

check:
	@scripts/check.sh

series: build
	@scripts/make-series.sh

clean:
	rm -rf build/qemu build/src build/src.stage series

distclean:
	rm -rf build series
