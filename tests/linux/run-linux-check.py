#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Linux guest check: boots Debian's kernel with a busybox initramfs
# under TCG, twice at once, and checks what Linux's PCI core makes of
# ivshmem-plain and ivshmem-doorbell, and that BAR2 written through sysfs
# reaches the host and the other guest.
#
#   guest A: ivshmem-plain on a memory-backend-file (share=on, PLAIN_SIZE)
#            + ivshmem-doorbell on a running ivshmem-server (DOORBELL_SIZE,
#            its memory in a --shm-file the host reads)
#   guest B: ivshmem-plain on the same file
#
# A writes a pattern into both BAR2s; B waits for A's pattern in its BAR2
# and writes an acknowledgement, which A waits for; the host then reads
# both backing files.  The guest side is ivshmem-probe.c, run from /init.
#
# Interrupts: ivshmem-irq.c, a small test driver built here against
# Debian's linux-headers for the guest's kernel, binds to A's doorbell
# device and enables MSI-X.  A rings itself on each vector, and exchanges
# doorbells with a host peer (ivshmem-client on the same server).
#
# Output is TAP; the exit status is non-zero on any failure.  Every process
# started here is killed and every temporary file removed, also on failure
# or interruption.  See README.rst in this directory.
#
# Environment: QEMU (default build/qemu/qemu-system-x86_64),
# IVSHMEM_SERVER (default build/qemu/contrib/ivshmem-server/ivshmem-server),
# IVSHMEM_CLIENT (default build/qemu/contrib/ivshmem-client/ivshmem-client),
# IVSHMEM_CACHE (downloads, default ~/.cache/ivshmem-series),
# KEEP_TMP=1 (keep the temporary directory and print its path).

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
QEMU = os.environ.get("QEMU", os.path.join(ROOT, "build/qemu/qemu-system-x86_64"))
SERVER = os.environ.get("IVSHMEM_SERVER", os.path.join(
    ROOT, "build/qemu/contrib/ivshmem-server/ivshmem-server"))
CLIENT = os.environ.get("IVSHMEM_CLIENT", os.path.join(
    ROOT, "build/qemu/contrib/ivshmem-client/ivshmem-client"))

PLAIN_SIZE = 1 << 20
DOORBELL_SIZE = 4 << 20
VECTORS = 2
GUEST_TIMEOUT = 120         # seconds per guest run (both run at once)
PEER_WAIT = 60              # seconds a guest waits for the other one

# Must match ivshmem-probe.c
A_HELLO_OFF = 0x0
A_WORDS_OFF = 0x1000
A_WORDS_LEN = 0x10000
B_ACK_OFF = 0x20000
HOST_PEER_OFF = 0x30000
MAGIC_LEN = 64
DEBUG_EXIT_PASS = (0x10 << 1) | 1
DEBUG_EXIT_FAIL = (0x11 << 1) | 1


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


def fetch():
    out = subprocess.run([os.path.join(HERE, "fetch-guest.sh")],
                         stdout=subprocess.PIPE, check=True, text=True).stdout
    return dict(f.split("=", 1) for f in out.strip().splitlines()[-1].split())


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


def build_initramfs(cache, tmp, module):
    """busybox-static + /init + ivshmem-probe (+ ivshmem-irq.ko), as a newc
    cpio (uncompressed: the kernel reads it as is, it is rebuilt each run)."""
    root = os.path.join(tmp, "initramfs")
    os.makedirs(os.path.join(root, "bin"))
    for d in ("proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(os.path.join(cache, "busybox/bin/busybox"),
                os.path.join(root, "bin/busybox"))
    shutil.copy(os.path.join(HERE, "init"), os.path.join(root, "init"))
    os.chmod(os.path.join(root, "init"), 0o755)
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror",
                    "-o", os.path.join(root, "ivshmem-probe"),
                    os.path.join(HERE, "ivshmem-probe.c")], check=True)
    if module:
        shutil.copy(module, os.path.join(root, "ivshmem-irq.ko"))
    cpio = os.path.join(tmp, "initramfs.cpio")
    names = subprocess.run("find . | LC_ALL=C sort", shell=True, cwd=root,
                           stdout=subprocess.PIPE, check=True).stdout
    with open(cpio, "wb") as f:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                       cwd=root, input=names, stdout=f, check=True)
    return cpio


def qemu_cmd(kernel, initrd, log, append, devices):
    return [QEMU, "-M", "q35", "-accel", "tcg", "-m", "512", "-nodefaults",
            "-display", "none", "-no-reboot", "-serial", "file:" + log,
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1 loglevel=" + os.environ.get("GUEST_LOGLEVEL", "4") + " " + append,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"] + devices


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
        return run(tap, procs, tmp, t_start)
    finally:
        cleanup()


def run(tap, procs, tmp, t_start):
    for exe in (QEMU, SERVER):
        if not os.access(exe, os.X_OK):
            print("Bail out! %s not built (run make build)" % exe)
            return 1

    try:
        fetched = fetch()
    except (subprocess.CalledProcessError, OSError, ValueError) as e:
        # No Debian kernel to be had here (no archive reachable): say so.
        print("1..0 # SKIP cannot fetch Debian's kernel and busybox "
              "packages (%s)" % e)
        return 0
    cache, kver = fetched["CACHE"], fetched["KVER"]
    kernel = os.path.join(cache, "kernel-%s/boot/vmlinuz-%s" % (kver, kver))
    module, out = build_module(fetched["KHEADERS"], tmp)
    tap.result(module is not None, "ivshmem-irq.ko builds against "
               "linux-headers-%s" % kver, out)
    initrd = build_initramfs(cache, tmp, module)
    tap.note("kernel %s, initramfs %d KiB, prepared in %.1f s" %
             (kver, os.path.getsize(initrd) // 1024, time.monotonic() - t_start))

    nonce = random.getrandbits(32) | 1
    plain_file = os.path.join(tmp, "plain.mem")
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

    common = "ivt.nonce=%08x ivt.plain=%d ivt.wait=%d ivt.exit=1" % (
        nonce, PLAIN_SIZE, PEER_WAIT)
    plain_dev = ["-object", "memory-backend-file,id=shm,mem-path=%s,size=%d,"
                 "share=on" % (plain_file, PLAIN_SIZE),
                 "-device", "ivshmem-plain,memdev=shm"]
    guests = {
        "A": qemu_cmd(kernel, initrd, os.path.join(tmp, "a.log"),
                      "ivt.role=a ivt.hostpeer=1 ivt.doorbell=%d ivt.vectors=%d %s" %
                      (DOORBELL_SIZE, VECTORS, common),
                      plain_dev + ["-chardev", "socket,id=ivs,path=" + sock,
                                   "-device", "ivshmem-doorbell,chardev=ivs,"
                                   "vectors=%d" % VECTORS]),
        "B": qemu_cmd(kernel, initrd, os.path.join(tmp, "b.log"),
                      "ivt.role=b " + common, plain_dev),
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
        done = [l for l in lines if l.startswith("IVT done")]
        for l in lines:
            if l.startswith("IVT ok - "):
                tap.result(True, "guest %s: %s" % (name, l[9:]))
            elif l.startswith("IVT not ok - "):
                tap.result(False, "guest %s: %s" % (name, l[13:]))
            elif l.startswith("IVT # "):
                tap.note("guest %s: %s" % (name, l[6:]))
        tail = "\n".join(text.splitlines()[-25:]) + "\n" + stderr
        tap.result(bool(done), "guest %s: Linux booted and ran the probe to "
                   "the end" % name, tail)
        tap.result(rc == DEBUG_EXIT_PASS, "guest %s: VM ended through "
                   "isa-debug-exit reporting success (exit %s, want %d)" %
                   (name, rc, DEBUG_EXIT_PASS), None if done else tail)

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
    print("# linux guest check: %d passed, %d failed, %.0f s" %
          (tap.n - tap.failed, tap.failed, time.monotonic() - t_start))
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
