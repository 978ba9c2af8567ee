#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the ivshmem fuzz targets into build/fuzz-ivshmem/ with clang-14,
# libFuzzer, ASan and UBSan.  The library sources (contrib/ivshmem-*/)
# and the targets are compiled with the sanitizers; QEMU's libqemuutil.a
# comes plain from the meson build (make build), with its headers.
#
# Installs clang-14 and libclang-rt-14-dev through apt-get when
# -fsanitize=fuzzer cannot link (needs root then); does nothing when all
# is present.  Usage: tests/fuzz-ivshmem/build.sh  (from anywhere)

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$top/build/fuzz-ivshmem}
qbuild=$top/build/qemu
qsrc=$top/build/src
CC=${CC:-clang-14}

say() { echo "fuzz-ivshmem: $*"; }

# A libFuzzer binary must link; install the toolchain once if it cannot.
toolchain_ok() {
    command -v "$CC" >/dev/null 2>&1 || return 1
    local t
    t=$(mktemp -d)
    echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)
          { return 0; }' >"$t/t.c"
    "$CC" -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" \
        >/dev/null 2>&1
    local rc=$?
    rm -rf "$t"
    return $rc
}

if ! toolchain_ok; then
    if [ "$(id -u)" != 0 ]; then
        say "clang-14 with libFuzzer is missing; run as root to install" \
            "clang-14 and libclang-rt-14-dev" >&2
        exit 1
    fi
    say "installing clang-14 and libclang-rt-14-dev"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
    toolchain_ok || { say "$CC still cannot link -fsanitize=fuzzer" >&2;
                      exit 1; }
fi

for f in "$qbuild/libqemuutil.a" "$qbuild/config-host.h" \
         "$qsrc/include/qemu/osdep.h"; do
    [ -e "$f" ] || { say "missing $f: run 'make build' first" >&2; exit 1; }
done

mkdir -p "$out/obj"

# shellcheck disable=SC2207
glib_cflags=($(pkg-config --cflags glib-2.0))
# shellcheck disable=SC2207
glib_libs=($(pkg-config --libs glib-2.0))

cflags=(
    -std=gnu11 -g -O1 -fno-omit-frame-pointer
    -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE
    -fno-strict-aliasing -fno-common -fwrapv
    -Wall -Wno-unused-function
    -I"$qbuild" -I"$qbuild/qapi" -I"$qbuild/trace"
    -I"$qsrc/include" -I"$qsrc"
    -I"$qsrc/host/include/x86_64" -I"$qsrc/host/include/generic"
    -isystem "$qsrc/linux-headers" -isystem "$qbuild/linux-headers"
    -I"$top/contrib/ivshmem-client" -I"$top/contrib/ivshmem-server"
    "${glib_cflags[@]}"
)

compile() { # source object [extra flags...]
    local src=$1 obj=$2
    shift 2
    "$CC" "${cflags[@]}" "$@" -c "$src" -o "$obj"
}

# The libraries under test: the series' sources, instrumented for
# coverage too, so that the fuzzer sees into them.
compile "$top/contrib/ivshmem-client/ivshmem-client.c" \
        "$out/obj/ivshmem-client.o" -fsanitize=fuzzer-no-link
compile "$top/contrib/ivshmem-server/ivshmem-server.c" \
        "$out/obj/ivshmem-server.o" -fsanitize=fuzzer-no-link

link() { # binary objects...
    local bin=$1
    shift
    "$CC" -fsanitize=fuzzer,address,undefined "$@" \
        "$qbuild/libqemuutil.a" "${glib_libs[@]}" -lm -lrt -pthread \
        -o "$bin"
}

compile "$here/fuzz-client.c" "$out/obj/fuzz-client.o" -fsanitize=fuzzer
link "$out/fuzz-client" "$out/obj/fuzz-client.o" "$out/obj/ivshmem-client.o"
say "built $out/fuzz-client"

if [ -e "$here/fuzz-server.c" ]; then
    compile "$here/fuzz-server.c" "$out/obj/fuzz-server.o" -fsanitize=fuzzer
    link "$out/fuzz-server" "$out/obj/fuzz-server.o" \
         "$out/obj/ivshmem-server.o"
    say "built $out/fuzz-server"
fi
