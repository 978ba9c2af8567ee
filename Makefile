# SPDX-License-Identifier: GPL-2.0-or-later
#
# The ivshmem series: build it over a QEMU base, demo it, test it.
#
#   make          build, then run the demo
#   make check    build, then run the test suite
#   make check-compat  also build the unmodified base, migrate to and from it
#   make check-libvirt  Debian's libvirt drives the series' QEMU end to end
#   make docs     build QEMU's manual with our documents, warnings as errors
#   make series   write the series as patches against the base, checkpatch'd
#   make series-check  also build every commit of the series on its own
#   make fuzz     build, then fuzz the ivshmem server and client libraries
#   make bench    build this and the unmodified base, then benchmark both
#
# BASE=10.2 (default) builds on QEMU 10.2.2, the primary base; BASE=10.0
# on QEMU 10.0.13 through the backport layer in backport/10.0/, in
# build/10.0/ (make BASE=10.0 check, make BASE=10.0 series).
# QEMU_SRC=/path/to/qemu uses that tree as the base instead of fetching
# Debian's source package.  See README.rst.

BASE ?= 10.2
export BASE

.PHONY: all build demo docs check check-compat check-libvirt check-guest series series-check clean distclean fuzz bench

all: demo

build:
	@scripts/build.sh

demo: build
	@scripts/demo.sh

check:
	@scripts/check.sh

docs:
	@scripts/build-docs.sh

check-compat:
	@scripts/check-compat.sh

check-libvirt:
	@scripts/check-libvirt.sh

check-guest: build
	@scripts/check-guest.sh

series: build
	@scripts/make-series.sh

series-check: series
	@scripts/check-series-builds.sh

fuzz: build
	@tests/fuzz-ivshmem/run.sh

# The benchmarks compare the primary base's build with the unmodified 10.0.
bench: build
	@[ "$(BASE)" = 10.2 ] || { echo "make bench: BASE=10.2 only"; exit 1; }
	@scripts/install-packages.sh gnuplot-nox
	@scripts/build-base.sh
	@python3 bench/run.py

clean:
	rm -rf build/qemu build/src build/src.stage build/src.ours build/10.0 \
	       build/series-* series series-*

distclean:
	rm -rf build series series-*
