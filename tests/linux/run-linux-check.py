#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Linux guest check: boots Debian's kernel with a busybox initramfs
# under TCG, twice at once, and checks what Linux's PCI core makes of
# ivshmem-plain and ivshmem-doorbell, and that BAR2 written through sysfs
# reaches the host and the other guest.  --arch x86_64 (the default) boots
# Debian's amd64 kernel on q35, --arch aarch64 Debian's arm64 kernel on
# virt (GICv3 with its ITS).
#
#   guest A: ivshmem-plain on a memory-backend-file (share=on, PLAIN_SIZE)
#            + ivshmem-doorbell on a running ivshmem-server (DOORBELL_SIZE,
#            its memory in a --shm-file the host reads), behind an IOMMU
#            (intel-iommu on q35, SMMUv3 on virt)
#   guest B: ivshmem-plain on the same file
#
# The host writes a marker into the plain file before the guests start,
# which both find in BAR2.  A writes a pattern into both BAR2s; B waits for
# A's pattern in its BAR2 and writes an acknowledgement, which A waits for;
# the host then reads both backing files.  The guest side is
# ivshmem-probe.c, run from /init.
#
# Interrupts: A rings itself on each vector, and exchanges doorbells with a
# host peer (ivshmem-client on the same server).  x86_64 first through
# ivshmem-irq.c, a small test driver built here against Debian's
# linux-headers for the guest's kernel (it also takes the host peer's
# doorbell); then, on both architectures, through the kernel's own
# vfio-pci (its modules from the kernel package), driven from userspace by
# ivshmem-vfio.c with an eventfd per vector (on aarch64 it takes the host
# peer's doorbell).
#
# Output is TAP; the exit status is non-zero on any failure.  Every process
# started here is killed and every temporary file removed, also on failure
# or interruption.  See README.rst in this directory.
#
# Usage: run-linux-check.py [--arch x86_64|aarch64]
# Environment: QEMU (default build/qemu/qemu-system-ARCH),
# IVSHMEM_SERVER (default build/qemu/contrib/ivshmem-server/ivshmem-server),
# IVSHMEM_CLIENT (default build/qemu/contrib/ivshmem-client/ivshmem-client),
# IVSHMEM_CACHE (downloads, default ~/.cache/ivshmem-series),
# KEEP_TMP=1 (keep the temporary directory and print its path).

import argparse
import lzma
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
QEMU = None                 # set in main(): $QEMU or the build's for --arch
SERVER = os.environ.get("IVSHMEM_SERVER", os.path.join(
    ROOT, "build/qemu/contrib/ivshmem-server/ivshmem-server"))
CLIENT = os.environ.get("IVSHMEM_CLIENT", os.path.join(
    ROOT, "build/qemu/contrib/ivshmem-client/ivshmem-client"))

PLAIN_SIZE = 1 << 20
DOORBELL_SIZE = 4 << 20
VECTORS = 2
GUEST_TIMEOUT = 120         # seconds per guest run (both run at once)
PEER_WAIT = 60              # seconds a guest waits for the other one

# Must match ivt.h
A_HELLO_OFF = 0x0
A_WORDS_OFF = 0x1000
A_WORDS_LEN = 0x10000
B_ACK_OFF = 0x20000
HOST_PEER_OFF = 0x30000
HOST_PLAIN_OFF = 0x40000
MAGIC_LEN = 64
DEBUG_EXIT_PASS = (0x10 << 1) | 1
DEBUG_EXIT_FAIL = (0x11 << 1) | 1


class Arch:
    """What differs between the guests of --arch: Debian's architecture,
    the compiler of the guest programs, the machine, how the guests take
    MSI-X, and how a guest ends."""

    def __init__(self, name, deb, cc, console, machine, debug_exit, module,
                 vfio_opts, vfio_append):
        self.name = name
        self.deb = deb                  # Debian architecture, for fetch-guest.sh
        self.cc = cc                    # builds the static guest programs
        self.console = console
        self.machine = machine          # QEMU options before the devices
        # The probe ends a guest through isa-debug-exit with its verdict;
        # a guest that runs ivshmem-vfio after it (and every guest without
        # isa-debug-exit) powers off instead.
        self.debug_exit = debug_exit
        self.module = module            # ivshmem-irq.ko takes the MSI-X first
        self.vfio_opts = vfio_opts      # QEMU options of the vfio guest (A)
        self.vfio_append = vfio_append  # and its kernel's options


ARCHES = {
    # Guest A gets intel-iommu with interrupt remapping for vfio-pci (Debian's
    # kernels have no vfio no-IOMMU mode; vfio_iommu_type1 wants remapped
    # MSIs), which Debian's kernel turns on with intel_iommu=on.  The test
    # driver ivshmem-irq.ko takes the doorbells first, and the host peer's.
    "x86_64": Arch("x86_64", "amd64", "gcc", "ttyS0",
                   ["-M", "q35", "-device",
                    "isa-debug-exit,iobase=0xf4,iosize=0x04"],
                   debug_exit=True, module=True,
                   vfio_opts=["-device", "intel-iommu,intremap=on"],
                   vfio_append="intel_iommu=on"),
    # virt with GICv3 (MSI-X through its ITS) and, for guest A, an SMMUv3:
    # vfio-pci needs an IOMMU here too, as on real arm64 servers, and the
    # ITS isolates MSIs per device.  No driver of ours: ivshmem-vfio takes
    # the host peer's doorbell.  The guests end with a PSCI power-off.
    "aarch64": Arch("aarch64", "arm64", "aarch64-linux-gnu-gcc", "ttyAMA0",
                    ["-M", "virt,gic-version=3", "-cpu", "max"],
                    debug_exit=False, module=False,
                    vfio_opts=["-M", "iommu=smmuv3"], vfio_append=""),
}

# What vfio-pci needs loaded (with what they depend on), by module name.
VFIO_MODULES = ["vfio-pci", "vfio_iommu_type1"]


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def result(self, ok, desc, diag=None):
        self.n += 1
        if not ok:
            self.failed += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, desc))
        if diag and not ok:
            for line in diag.splitlines():
                print("# " + line)
        sys.stdout.flush()
        return ok

    def note(self, msg):
        for line in msg.splitlines():
            print("# " + line)
        sys.stdout.flush()


def word_pattern(nonce, i):
    return ((nonce * 2654435761) ^ (i * 0x9e3779b9) ^ 0xa5a5a5a5) & 0xffffffff


def magic(what, nonce):
    s = ("ivshmem-linux-check %s %08x" % (what, nonce)).encode()
    return s + b"\0" * (MAGIC_LEN - len(s))


def fetch(arch):
    out = subprocess.run([os.path.join(HERE, "fetch-guest.sh"), arch.deb],
                         stdout=subprocess.PIPE, check=True, text=True).stdout
    return dict(f.split("=", 1) for f in out.strip().splitlines()[-1].split())


def read_ko(path):
    """A module's ELF image (.ko, or .ko.xz unpacked)."""
    if path.endswith(".xz"):
        with lzma.open(path) as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def modinfo(image):
    """The key=value strings of a 64-bit little-endian module's .modinfo
    section, as a dict of lists (what modinfo(8) reads)."""
    shoff = struct.unpack_from("<Q", image, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3a)
    secs = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + i * shentsize)
            for i in range(shnum)]
    names = secs[shstrndx][4]
    info = {}
    for sec in secs:
        start = names + sec[0]
        if image[start:image.index(b"\0", start)] != b".modinfo":
            continue
        for item in image[sec[4]:sec[4] + sec[5]].split(b"\0"):
            if b"=" in item:
                k, v = item.decode("utf-8", "replace").split("=", 1)
                info.setdefault(k, []).append(v)
    return info


def module_order(moddir, wanted):
    """The modules under @moddir that @wanted needs, in an order insmod can
    load them: each after its "depends" and "softdep pre:" ones, its
    "softdep post:" ones after it.
    Returns ([(name, path)], missing names)."""
    files = {}
    for dirpath, _, names in os.walk(moddir):
        for n in names:
            for ext in (".ko", ".ko.xz"):
                if n.endswith(ext):
                    files[n[:-len(ext)].replace("-", "_")] = os.path.join(dirpath, n)
    order, seen, missing = [], set(), []

    def visit(name, required):
        key = name.replace("-", "_")
        if key in seen:
            return
        if key not in files:
            if required:
                missing.append(name)
            return
        seen.add(key)
        info = modinfo(read_ko(files[key]))
        # "softdep=pre: a b post: c d": modules loaded before and after
        # this one when they exist (vfio names an IOMMU backend for every
        # platform, most of which this kernel does not have).
        pre, post = [], []
        for soft in info.get("softdep", []):
            head, _, tail = soft.partition("post:")
            pre += head.split("pre:", 1)[1].split() if "pre:" in head else []
            post += tail.split()
        for m in pre:
            visit(m, False)
        for dep in ",".join(info.get("depends", [])).split(","):
            if dep:
                visit(dep, True)
        order.append((key, files[key]))
        for m in post:
            visit(m, False)

    for name in wanted:
        visit(name, True)
    return order, missing


def build_module(kheaders, tmp):
    """ivshmem-irq.ko against the guest kernel's headers; None on failure
    (the output is printed as TAP diagnostics by the caller)."""
    mod = os.path.join(tmp, "module")
    os.makedirs(mod)
    shutil.copy(os.path.join(HERE, "ivshmem-irq.c"), mod)
    with open(os.path.join(mod, "Kbuild"), "w") as f:
        f.write("obj-m := ivshmem-irq.o\n")
    r = subprocess.run(["make", "-s", "-C", kheaders, "M=" + mod, "modules"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    ko = os.path.join(mod, "ivshmem-irq.ko")
    if r.returncode != 0 or not os.path.exists(ko):
        return None, r.stdout
    subprocess.run(["strip", "--strip-debug", ko], check=False)
    return ko, r.stdout


def build_initramfs(arch, cache, tmp, module, modules):
    """busybox-static + /init + ivshmem-probe (+ ivshmem-irq.ko; + the
    kernel's vfio modules, /modules.list and ivshmem-vfio), as a newc cpio
    (uncompressed: the kernel reads it as is, it is rebuilt each run)."""
    root = os.path.join(tmp, "initramfs")
    os.makedirs(os.path.join(root, "bin"))
    for d in ("proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(os.path.join(cache, "busybox/bin/busybox"),
                os.path.join(root, "bin/busybox"))
    shutil.copy(os.path.join(HERE, "init"), os.path.join(root, "init"))
    os.chmod(os.path.join(root, "init"), 0o755)
    programs = ["ivshmem-probe", "ivshmem-vfio"]
    for prog in programs:
        subprocess.run([arch.cc, "-static", "-O2", "-Wall", "-Werror",
                        "-o", os.path.join(root, prog),
                        os.path.join(HERE, prog + ".c")], check=True)
    if module:
        shutil.copy(module, os.path.join(root, "ivshmem-irq.ko"))
    if modules:
        os.makedirs(os.path.join(root, "modules"))
        with open(os.path.join(root, "modules.list"), "w") as f:
            for name, path in modules:
                with open(os.path.join(root, "modules", name + ".ko"), "wb") as m:
                    m.write(read_ko(path))
                f.write(name + ".ko\n")
    cpio = os.path.join(tmp, "initramfs.cpio")
    names = subprocess.run("find . | LC_ALL=C sort", shell=True, cwd=root,
                           stdout=subprocess.PIPE, check=True).stdout
    with open(cpio, "wb") as f:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                       cwd=root, input=names, stdout=f, check=True)
    return cpio


def qemu_cmd(arch, kernel, initrd, log, append, devices, vfio):
    if vfio:
        append = (arch.vfio_append + " " + append).strip()
    return [QEMU] + arch.machine + (arch.vfio_opts if vfio else []) + [
            "-accel", "tcg", "-m", "512", "-nodefaults",
            "-display", "none", "-no-reboot", "-serial", "file:" + log,
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=%s panic=-1 loglevel=%s %s" % (
                arch.console, os.environ.get("GUEST_LOGLEVEL", "4"), append)
            ] + devices


def read_file(path, size):
    """The file's contents, padded with zeroes to at least @size bytes (a
    missing file reads as empty)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    return data + b"\0" * max(0, size - len(data))


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def guest_lines(log):
    try:
        with open(log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "", []
    return text, [l.strip() for l in text.splitlines() if l.startswith("IVT ")]


def run_host_peer(state, procs, sock, doorbell_file, a_log, nonce, deadline,
                  stop):
    """The host side of the interrupt exchange, through ivshmem-client:
    announce our peer ID in the doorbell memory, wait for guest A to ring
    our vector 0, then ring guest A's vector 1.  Records into @state."""
    log = state["log"]
    # Connect after guest A's device has: A is then peer 0 (and master).
    while time.monotonic() < deadline and not stop.is_set():
        text, lines = guest_lines(a_log)
        if "IVT # init" in text:
            break
        time.sleep(0.2)
    else:
        log.append("guest A never started")
        return
    p = subprocess.Popen([CLIENT, "-S", sock], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, bufsize=1)
    procs.append(p)
    state["proc"] = p

    def command(cmd, until):
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        out = []
        while True:
            line = p.stdout.readline()
            if not line:
                raise EOFError("ivshmem-client exited")
            out.append(line.strip())
            log.append("client: " + line.strip())
            if until(line):
                return out

    try:
        out = command("dump", lambda l: l.strip().endswith("peer(s)"))
        own = int(out[0].split()[2].rstrip(","))
        npeers = int(out[-1].split()[0])
        peers = []
        for _ in range(npeers):
            line = p.stdout.readline()
            log.append("client: " + line.strip())
            peers.append(int(line.split()[1].rstrip(":")))
        state["guest"] = peers[0] if peers else None
        with open(doorbell_file, "r+b") as f:
            f.seek(HOST_PEER_OFF)
            f.write(magic("host-peer", nonce) + struct.pack("<I", own))
        budget = int(max(1, deadline - time.monotonic()) * 1000)
        out = command("wait 0 %d" % budget, lambda l: l.startswith("vector"))
        if out[-1].endswith("interrupt"):
            state["rang_by"] = state["guest"]
        if state["guest"] is not None:
            p.stdin.write("ring %d 1\n" % state["guest"])   # prints nothing
            p.stdin.flush()
            state["rang"] = True
        p.stdin.write("quit\n")
        p.stdin.flush()
        p.wait(timeout=10)
    except (EOFError, OSError, ValueError, IndexError,
            subprocess.TimeoutExpired) as e:
        log.append("host peer: %s" % e)


def main():
    global QEMU
    ap = argparse.ArgumentParser(description="The Linux guest check "
                                 "(see tests/linux/README.rst)")
    ap.add_argument("--arch", choices=sorted(ARCHES), default="x86_64")
    arch = ARCHES[ap.parse_args().arch]
    QEMU = os.environ.get("QEMU", os.path.join(
        ROOT, "build/qemu/qemu-system-" + arch.name))
    tap = Tap()
    procs = []
    tmp = tempfile.mkdtemp(prefix="ivshmem-linux-")

    def cleanup(*_):
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if os.environ.get("KEEP_TMP"):
            print("# kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def on_signal(signum, _frame):
        cleanup()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t_start = time.monotonic()
    try:
        return run(arch, tap, procs, tmp, t_start)
    finally:
        cleanup()


def run(arch, tap, procs, tmp, t_start):
    for exe in (QEMU, SERVER):
        if not os.access(exe, os.X_OK):
            print("Bail out! %s not built (run make build)" % exe)
            return 1

    try:
        fetched = fetch(arch)
    except (subprocess.CalledProcessError, OSError, ValueError) as e:
        # No Debian kernel to be had here (no archive reachable): say so,
        # and fail where the check is required (CI sets IVSHMEM_REQUIRE_GUEST).
        if os.environ.get("IVSHMEM_REQUIRE_GUEST"):
            print("Bail out! cannot fetch Debian's %s kernel and busybox "
                  "packages (%s), and IVSHMEM_REQUIRE_GUEST is set"
                  % (arch.deb, e))
            return 1
        print("1..0 # SKIP cannot fetch Debian's %s kernel and busybox "
              "packages (%s)" % (arch.deb, e))
        return 0
    cache, kver = fetched["CACHE"], fetched["KVER"]
    ktree = fetched["KTREE"]
    kernel = os.path.join(ktree, "boot/vmlinuz-" + kver)
    module = modules = None
    if arch.module:
        module, out = build_module(fetched["KHEADERS"], tmp)
        tap.result(module is not None, "ivshmem-irq.ko builds against "
                   "linux-headers-%s" % kver, out)
    modules, missing = module_order(os.path.join(
        ktree, "lib/modules", kver), VFIO_MODULES)
    tap.result(modules and not missing, "the kernel package has %s and "
               "what they depend on (load order: %s; missing: %s)" % (
                   " and ".join(VFIO_MODULES),
                   " ".join(n for n, _ in modules) or "none",
                   " ".join(missing) or "none"))
    initrd = build_initramfs(arch, cache, tmp, module, modules)
    tap.note("%s: kernel %s, initramfs %d KiB, prepared in %.1f s" %
             (arch.name, kver, os.path.getsize(initrd) // 1024,
              time.monotonic() - t_start))

    nonce = random.getrandbits(32) | 1
    plain_file = os.path.join(tmp, "plain.mem")
    # The host's marker, for both guests to find in their plain BAR2:
    # QEMU keeps the contents of a backing file of the right size.
    with open(plain_file, "wb") as f:
        f.truncate(PLAIN_SIZE)
        f.seek(HOST_PLAIN_OFF)
        f.write(magic("host", nonce))
    doorbell_file = os.path.join(tmp, "doorbell.mem")
    sock = os.path.join(tmp, "ivshmem.sock")

    server_log = open(os.path.join(tmp, "server.log"), "w")
    server = subprocess.Popen([SERVER, "-S", sock, "-l", str(DOORBELL_SIZE),
                               "-n", str(VECTORS), "--shm-file", doorbell_file],
                              stdout=server_log, stderr=subprocess.STDOUT)
    procs.append(server)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock) and server.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    if not tap.result(os.path.exists(sock), "ivshmem-server listens"):
        return 1

    host_peer = {"log": []}
    host_stop = threading.Event()
    host_thread = threading.Thread(target=run_host_peer, daemon=True, args=(
        host_peer, procs, sock, doorbell_file, os.path.join(tmp, "a.log"),
        nonce, time.monotonic() + GUEST_TIMEOUT, host_stop))
    host_thread.start()

    common = "ivt.nonce=%08x ivt.plain=%d ivt.wait=%d" % (
        nonce, PLAIN_SIZE, PEER_WAIT)
    # Guest A runs ivshmem-vfio after the probe, so it powers off; the host
    # peer exchanges doorbells with ivshmem-irq.ko where there is one.
    a_extra = " ivt.vfio=1 " + ("ivt.hostpeer=1" if arch.module else
                                "ivt.vfio.hostpeer=1")
    b_extra = " ivt.exit=1" if arch.debug_exit else ""
    plain_dev = ["-object", "memory-backend-file,id=shm,mem-path=%s,size=%d,"
                 "share=on" % (plain_file, PLAIN_SIZE),
                 "-device", "ivshmem-plain,memdev=shm"]
    guests = {
        "A": qemu_cmd(arch, kernel, initrd, os.path.join(tmp, "a.log"),
                      "ivt.role=a ivt.doorbell=%d ivt.vectors=%d %s%s" %
                      (DOORBELL_SIZE, VECTORS, common, a_extra),
                      plain_dev + ["-chardev", "socket,id=ivs,path=" + sock,
                                   "-device", "ivshmem-doorbell,chardev=ivs,"
                                   "vectors=%d" % VECTORS], vfio=True),
        "B": qemu_cmd(arch, kernel, initrd, os.path.join(tmp, "b.log"),
                      "ivt.role=b " + common + b_extra, plain_dev, vfio=False),
    }
    running = {}
    for name, cmd in guests.items():
        err = open(os.path.join(tmp, name.lower() + ".stderr"), "w")
        p = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        procs.append(p)
        running[name] = (p, time.monotonic())
        if name == "A":
            time.sleep(0.5)     # A takes the master role on the plain file

    status = {}
    while running:
        for name, (p, t0) in list(running.items()):
            rc = p.poll()
            if rc is None and time.monotonic() - t0 > GUEST_TIMEOUT:
                p.kill()
                p.wait()
                rc = "timeout"
            if rc is not None:
                status[name] = (rc, time.monotonic() - t0)
                del running[name]
        time.sleep(0.2)
    # Guest A is gone: the host peer has nothing more to wait for.
    host_stop.set()
    time.sleep(0.5)
    if host_peer.get("proc") and host_peer["proc"].poll() is None:
        host_peer["proc"].kill()
    host_thread.join(timeout=10)

    for name in guests:
        rc, secs = status[name]
        log = os.path.join(tmp, name.lower() + ".log")
        text, lines = guest_lines(log)
        with open(os.path.join(tmp, name.lower() + ".stderr")) as f:
            stderr = f.read()
        tap.note("guest %s: QEMU exit %s after %.1f s" % (name, rc, secs))
        # Each guest program ends with its "IVT done" line.
        want_done = ["IVT done passed="]
        if name == "A":
            want_done.append("IVT done ivshmem-vfio ")
        done = all(any(l.startswith(w) for l in lines) for w in want_done)
        for l in lines:
            if l.startswith("IVT ok - "):
                tap.result(True, "guest %s: %s" % (name, l[9:]))
            elif l.startswith("IVT not ok - "):
                tap.result(False, "guest %s: %s" % (name, l[13:]))
            elif l.startswith("IVT # "):
                tap.note("guest %s: %s" % (name, l[6:]))
        tail = "\n".join(text.splitlines()[-25:]) + "\n" + stderr
        tap.result(done, "guest %s: Linux booted and ran %s to the end" % (
            name, "the probe" if len(want_done) == 1 else
            "ivshmem-probe and ivshmem-vfio"), tail)
        if arch.debug_exit and name == "B":
            tap.result(rc == DEBUG_EXIT_PASS, "guest %s: VM ended through "
                       "isa-debug-exit reporting success (exit %s, want %d)" %
                       (name, rc, DEBUG_EXIT_PASS), None if done else tail)
        else:
            # -no-reboot makes a panic's reset exit 0 as well: the
            # kernel's own last words tell a power-off from it.
            tap.result(rc == 0 and "reboot: Power down" in text,
                       "guest %s: VM ended through the kernel's power-off "
                       "(exit %s, want 0 after \"reboot: Power down\")" %
                       (name, rc), None if done else tail)

    # The host's view of the memory the guests wrote.
    mem = read_file(plain_file, PLAIN_SIZE)
    tap.result(file_size(plain_file) == PLAIN_SIZE, "host: plain backing file is %d bytes"
               % PLAIN_SIZE)
    tap.result(mem[A_HELLO_OFF:A_HELLO_OFF + MAGIC_LEN] == magic("A", nonce),
               "host: guest A's marker in the plain backing file")
    words = struct.unpack_from("<%dI" % (A_WORDS_LEN // 4), mem, A_WORDS_OFF)
    bad = sum(w != word_pattern(nonce, i) for i, w in enumerate(words))
    last = struct.unpack_from("<I", mem, PLAIN_SIZE - 4)[0]
    bad += last != nonce ^ 0xffffffff
    tap.result(bad == 0, "host: guest A's %d words and BAR2's last word in "
               "the plain backing file (%d bad)" % (A_WORDS_LEN // 4, bad))
    tap.result(mem[B_ACK_OFF:B_ACK_OFF + MAGIC_LEN] == magic("B-ack", nonce),
               "host: guest B's acknowledgement in the plain backing file")

    mem = read_file(doorbell_file, DOORBELL_SIZE)
    tap.result(file_size(doorbell_file) == DOORBELL_SIZE, "host: server memory file is %d "
               "bytes" % DOORBELL_SIZE)
    words = struct.unpack_from("<%dI" % (A_WORDS_LEN // 4), mem, A_WORDS_OFF)
    bad = sum(w != word_pattern(nonce, i) ^ 0xffffffff
              for i, w in enumerate(words))
    bad += struct.unpack_from("<I", mem, DOORBELL_SIZE - 4)[0] != nonce
    tap.result(mem[:MAGIC_LEN] == magic("doorbell", nonce) and bad == 0,
               "host: guest A's doorbell BAR2 pattern in the server's memory "
               "(%d bad words)" % bad)

    hp = "\n".join(host_peer["log"])
    tap.result(host_peer.get("rang_by") is not None, "host peer: guest A's "
               "doorbell raised the host peer's vector 0", hp)
    tap.result(host_peer.get("rang") is True, "host peer: rang guest A "
               "(peer %s) on vector 1" % host_peer.get("guest"), hp)

    tap.result(server.poll() is None, "ivshmem-server still running")
    print("1..%d" % tap.n)
    print("# linux guest check (%s): %d passed, %d failed, %.0f s" %
          (arch.name, tap.n - tap.failed, tap.failed,
           time.monotonic() - t_start))
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
