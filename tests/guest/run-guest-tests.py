#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs the ivshmem test guest (tests/guest) in pairs of QEMUs; TAP output.

Usage: run-guest-tests.py [BUILDDIR]     (default /work/main/build/qemu)

BUILDDIR holds qemu-system-x86_64 and contrib/ivshmem-server/ivshmem-server.
The guest is built first with "make -C tests/guest O=BUILDDIR/tests/guest".
Each test runs in a fresh temporary directory with a fresh server and memory,
waits at most DEADLINE seconds for its guests to exit, and checks their exit
status (33 = PASS through isa-debug-exit) and serial logs.  All processes and
files are removed at the end, also on failure or interruption.  Exits 1 when
any test fails.  See tests/guest/README.rst for the guest and its protocol.
"""

import array
import ctypes
import mmap
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.abspath(__file__))
DEADLINE = 120          # seconds, per test
PASS_STATUS = 33        # isa-debug-exit: (0x10 << 1) | 1
HOST_FLAG = 32          # offset of host_flag in the guest's struct shm
COUNT = 1000
VERBOSE = 4             # messages the guests print in full (first test)


def host_pattern(k):
    return (k * 0x01000193 ^ 0xa5a5a5a5) & 0xffffffff


def guest_pattern(k):
    return (k * 0x9e3779b1 ^ 0x5a5a5a5a) & 0xffffffff


def die_with_parent():
    """preexec_fn: children get SIGKILL if this driver dies abruptly."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG
    except (OSError, AttributeError):
        pass


class TestFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailed(what)


class Env:
    """One test's temporary directory and child processes."""

    def __init__(self, build, guest):
        self.build, self.guest = build, guest
        self.dir = tempfile.mkdtemp(prefix='ivshmem-guest-')
        self.procs = []
        self.logs = []
        self.deadline = time.monotonic() + DEADLINE

    def path(self, name):
        return os.path.join(self.dir, name)

    def spawn(self, name, argv):
        out = open(self.path(name + '.out'), 'wb')
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)
        out.close()
        proc.name = name
        self.procs.append(proc)
        self.logs.append(name + '.out')
        return proc

    def remaining(self):
        left = self.deadline - time.monotonic()
        check(left > 0, 'deadline of %d s exceeded' % DEADLINE)
        return left

    def poll_until(self, cond, what):
        """Polls cond() every 20 ms until true, within the deadline."""
        while not cond():
            if time.monotonic() > self.deadline:
                raise TestFailed('timed out waiting for ' + what)
            time.sleep(0.02)

    def server(self, size, vectors, shmfile):
        sock = self.path('sock')
        srv = self.spawn('server', [
            os.path.join(self.build, 'contrib/ivshmem-server/ivshmem-server'),
            '-S', sock, '-l', size, '-n', str(vectors),
            '--shm-file', shmfile])

        def listening():
            check(srv.poll() is None, 'ivshmem-server exited with %s'
                  % srv.returncode)
            with open('/proc/net/unix') as f:   # flag 00010000: listening
                return any(l.split()[3] == '00010000' and l.split()[-1] == sock
                           for l in f.readlines()[1:] if len(l.split()) > 7)
        self.poll_until(listening, 'the server socket')
        return sock

    def qemu(self, name, machine, append, device_args):
        self.logs.append(name + '.serial')
        return self.spawn(name, [
            os.path.join(self.build, 'qemu-system-x86_64'),
            '-accel', 'tcg', '-machine', machine, '-m', '32M',
            '-nodefaults', '-display', 'none', '-no-reboot',
            '-kernel', self.guest, '-append', append,
            '-serial', 'file:' + self.path(name + '.serial'),
            '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'] + device_args)

    def doorbell(self, name, machine, append, sock, vectors):
        return self.qemu(name, machine, append, [
            '-chardev', 'socket,id=ivs,path=' + sock,
            '-device', 'ivshmem-doorbell,chardev=ivs,vectors=%d' % vectors])

    def plain(self, name, machine, append, shmfile, size, props=''):
        return self.qemu(name, machine, append, [
            '-object', 'memory-backend-file,id=shm,mem-path=%s,size=%s,'
                       'share=on' % (shmfile, size),
            '-device', 'ivshmem-plain,memdev=shm' + props])

    def serial(self, name):
        try:
            with open(self.path(name + '.serial'), errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def wait_guests(self, guests):
        for g in guests:
            try:
                g.wait(timeout=self.remaining())
            except subprocess.TimeoutExpired:
                raise TestFailed('%s still running at the deadline' % g.name)
        for g in guests:
            check(g.returncode == PASS_STATUS and
                  'RESULT: PASS' in self.serial(g.name),
                  '%s exited with status %s, not %d (PASS)'
                  % (g.name, g.returncode, PASS_STATUS))

    def cleanup(self, failed):
        try:
            for p in self.procs:
                if p.poll() is None:
                    p.terminate()
            for p in self.procs:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if failed:
                for log in self.logs:
                    try:
                        with open(self.path(log), errors='replace') as f:
                            lines = f.read().splitlines()[-15:]
                    except FileNotFoundError:
                        continue
                    for line in lines:
                        print('#   %s: %s' % (log, line))
        finally:
            for p in self.procs:        # only if we were interrupted above
                if p.poll() is None:
                    p.kill()
            shutil.rmtree(self.dir, ignore_errors=True)


def check_exchange(env, name, count, vectors):
    """The guest's summary: every message once, on its vector, intact."""
    log = env.serial(name)
    m = re.search(r'summary: sent (\d+) received (\d+) lost (\d+) duplicate '
                  r'(\d+) wrong-vector (\d+) bad-data (\d+)', log)
    check(m, name + ': no summary line')
    sent, received, *errors = map(int, m.groups())
    check(sent == count and received == count and not any(errors),
          '%s: %s' % (name, m.group(0)))
    if vectors:
        per_vec = {int(v): int(n) for v, n in
                   re.findall(r'vector (\d+): (\d+) messages', log)}
        check(sorted(per_vec) == list(range(vectors)) and
              all(per_vec.values()) and sum(per_vec.values()) == count,
              '%s: per-vector counts %s' % (name, per_vec))


class FakePeer:
    """A host peer that speaks the client side of the server protocol."""

    def __init__(self, env, sock_path):
        self.env = env
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock_path)
        self.fds = []

    def recv(self):
        """One message: (value, fd or None)."""
        data, fd = b'', None
        while len(data) < 8:
            self.sock.settimeout(self.env.remaining())
            chunk, anc, _, _ = self.sock.recvmsg(8 - len(data),
                                                 socket.CMSG_SPACE(16))
            check(chunk, 'the server closed the connection')
            data += chunk
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array('i', payload).tolist()
                    self.fds += fds
                    fd = fds[0]
        return struct.unpack('<q', data)[0], fd

    def handshake(self, vectors):
        """Reads up to our own last eventfd; returns (own id, peers, shm fd)."""
        check(self.recv() == (0, None), 'bad protocol version')
        own, fd = self.recv()
        check(fd is None and 0 <= own <= 65535, 'bad own id %d' % own)
        value, shm = self.recv()
        check(value == -1 and shm is not None, 'no shared memory')
        peers, own_fds = {}, 0
        while own_fds < vectors:
            value, fd = self.recv()
            check(fd is not None, 'peer %d without fd in the handshake' % value)
            if value == own:
                own_fds += 1
            else:
                peers[value] = peers.get(value, 0) + 1
        return own, peers, shm

    def close(self):
        """Reads what is pending (the setup-end marker), then disconnects."""
        if self.sock.fileno() < 0:
            return
        self.sock.setblocking(False)
        try:
            while True:
                data, anc, _, _ = self.sock.recvmsg(
                    64, socket.CMSG_SPACE(16), socket.MSG_DONTWAIT)
                for level, kind, payload in anc:
                    if kind == socket.SCM_RIGHTS:
                        self.fds += array.array('i', payload).tolist()
                if not data:
                    break
        except BlockingIOError:
            pass
        self.sock.close()
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def check_verbose_rtt(env, vectors):
    """verbose= printed the first messages on their vectors; rtt=1 timed
    the rest."""
    ping, pong = env.serial('ping'), env.serial('pong')
    for i in range(VERBOSE):
        v = i % vectors
        for log, want in ((ping, 'sent %d on vector %d payload ' % (i, v)),
                          (ping, 'answer %d on vector %d\n' % (i, v)),
                          (pong, 'got %d on vector %d\n' % (i, v)),
                          (pong, 'replied %d\n' % i)):
            check(want in log, 'verbose=: no "%s"' % want.strip())
    m = re.search(r'^rtt: n (\d+) median (\d+) p99 (\d+) max (\d+) ns$', ping,
                  re.M)
    check(m, 'ping: no rtt line')
    n, med, p99, top = map(int, m.groups())
    check(n == COUNT - VERBOSE and 0 < med <= p99 <= top,
          'ping: ' + m.group(0))
    print('# ' + m.group(0))


def test_doorbell(env, machine, vectors, third_peer):
    shmfile = env.path('shm')
    sock = env.server('1M', vectors, shmfile)
    common = 'count=%d vectors=%d' % (COUNT, vectors)
    ping_only = ' hold=%d' % (COUNT // 4) if third_peer else ' rtt=1'
    if not third_peer:
        common += ' verbose=%d' % VERBOSE
    guests = [env.doorbell('ping', machine, 'role=ping ' + common + ping_only,
                           sock, vectors),
              env.doorbell('pong', machine, 'role=pong ' + common,
                           sock, vectors)]
    if third_peer:
        # ping holds before messages 250, 500 and 750 until we raise
        # host_flag; we join while 250..500 run and leave while 500..750 do.
        with open(shmfile, 'r+b') as f, mmap.mmap(f.fileno(), 0) as shm:
            def release(k):
                env.poll_until(lambda: 'hold %d' % k in env.serial('ping'),
                               'hold %d' % k)
                struct.pack_into('<I', shm, HOST_FLAG, k)
            release(1)
            peer = FakePeer(env, sock)
            own, peers, _ = peer.handshake(vectors)
            release(2)
            peer.close()
            release(3)
        check(len(peers) == 2 and all(n == vectors for n in peers.values()),
              'the third peer saw peers %s, expected 2 with %d vectors'
              % (peers, vectors))
        print('# third peer %d joined and left, peers %s' % (own, peers))
    env.wait_guests(guests)
    for g in guests:
        check_exchange(env, g.name, COUNT, vectors)
    if not third_peer:
        check_verbose_rtt(env, vectors)


def test_plain(env, machine, size, use64=True):
    shm = env.path('shm')
    with open(shm, 'wb') as f:
        f.truncate(int(size[:-1]) << {'M': 20, 'G': 30}[size[-1]])
    common = 'mode=plain count=%d' % COUNT
    props = ''
    if not use64:
        # The guest checks that SeaBIOS put a 32-bit BAR2 below 4 GiB.
        common += ' bar32=1'
        props = ',use64=off'
    guests = [env.plain('ping', machine, 'role=ping ' + common, shm, size,
                        props),
              env.plain('pong', machine, 'role=pong ' + common, shm, size,
                        props)]
    env.wait_guests(guests)
    for g in guests:
        check_exchange(env, g.name, COUNT, 0)
        if size.endswith('G'):
            check('above 4 GiB' in env.serial(g.name),
                  g.name + ': BAR2 was not above 4 GiB')


def test_pattern(env, machine):
    size = 1 << 20
    words = size // 4
    shm = env.path('shm')
    with open(shm, 'wb') as f:
        f.write(array.array('I', map(host_pattern, range(words))).tobytes())
    guest = env.plain('guest', machine, 'mode=pattern verify=1', shm, '1M')
    env.wait_guests([guest])
    check('checked %d host words, 0 differ' % words in env.serial('guest'),
          'the guest did not read the host pattern')
    with open(shm, 'rb') as f, mmap.mmap(f.fileno(), size,
                                         prot=mmap.PROT_READ) as m:
        got = array.array('I', m[:])
    want = array.array('I', map(guest_pattern, range(words)))
    bad = [k for k in range(words) if got[k] != want[k]]
    check(not bad, '%d words differ from the guest pattern, first at %#x'
          % (len(bad), 4 * bad[0] if bad else 0))


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                            else '/work/main/build/qemu')
    out = os.path.join(build, 'tests/guest')
    guest = os.path.join(out, 'ivshmem-guest.elf')
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tests = [
        ('doorbell pair, q35, vectors=4: %d messages on every vector, '
         'verbose=%d, rtt=1' % (COUNT, VERBOSE),
         lambda env: test_doorbell(env, 'q35', 4, False)),
        ('doorbell pair, pc, vectors=2: a third peer joins and leaves '
         'mid-run', lambda env: test_doorbell(env, 'pc', 2, True)),
        ('plain pair, q35: %d messages by polling shared memory' % COUNT,
         lambda env: test_plain(env, 'q35', '1M')),
        ('plain pair, pc, 2 GiB: BAR2 above 4 GiB',
         lambda env: test_plain(env, 'pc', '2G')),
        ('plain pair, pc, use64=off, 64 MiB: BAR2 32-bit below 4 GiB',
         lambda env: test_plain(env, 'pc', '64M', use64=False)),
        ('plain pair, q35, use64=off, 64 MiB: BAR2 32-bit below 4 GiB',
         lambda env: test_plain(env, 'q35', '64M', use64=False)),
        ('plain pattern: host -> guest -> host through the backing file',
         lambda env: test_pattern(env, 'q35')),
    ]
    print('1..%d' % (len(tests) + 1))
    start = time.monotonic()
    built = subprocess.run(['make', '-s', '-C', SRC, 'O=' + out],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    for line in built.stdout.splitlines():
        print('# ' + line)
    print('%s 1 - guest builds' % ('ok' if built.returncode == 0 else 'not ok'))
    failures = built.returncode != 0
    for n, (name, fn) in enumerate(tests, 2):
        if built.returncode:
            print('not ok %d - %s # guest not built' % (n, name))
            continue
        env = Env(build, guest)
        failed = True
        t0 = time.monotonic()
        try:
            fn(env)
            failed = False
            print('ok %d - %s' % (n, name))
        except Exception as e:     # noqa: BLE001 - report, clean up, go on
            print('not ok %d - %s' % (n, name))
            print('# %s: %s' % (type(e).__name__, e))
        finally:
            print('# %.1f s' % (time.monotonic() - t0))
            env.cleanup(failed)
            sys.stdout.flush()
        failures |= failed
    print('# total %.1f s' % (time.monotonic() - start))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
