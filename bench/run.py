#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Benchmarks of the ivshmem series against the unmodified base QEMU.

Usage: bench/run.py [BUILDDIR]     (default: $BUILD, else the repo's build/)

Run by "make bench", after scripts/build-base.sh has built the base into
BUILDDIR/base/qemu.  Runs the same workloads on both and prints a table
(median, 99th percentile, ratio to the base and to the floor); writes the
raw numbers and one PNG plot per benchmark (gnuplot) into BUILDDIR/bench/.

  floor     eventfd ping-pong between two host processes (bench/floor.c):
            the least a doorbell round trip can cost on this machine.
  fdfloor   the server's handshake without QEMU (bench/fdfloor.c): one
            host process sends another (N+1)*V eventfds over a unix stream
            socket as the server does, one 8-byte message with one fd
            (SCM_RIGHTS) each, one sendmsg and one recvmsg per message; the
            receiver keeps every fd open until the last one has arrived.
            For each N and V of "realize", 5 repetitions: the least any
            device speaking protocol version 0 can spend on realize at that
            N and V (its "all eventfds"; realize's "vs floor" is the ratio
            to this).  A second row sends a peer's V fds in one message
            (V fds/msg): what a protocol batching a peer's vectors could
            reach.  Needs no QEMU.  Single-threaded and reusing its fd
            table over the repetitions, it pays none of the fd table
            growths (an RCU grace period each in a threaded process) that
            a fresh QEMU pays in realize.
  peers     N simulated peers (bench/peers.c, one epoll loop) join each
            server one after the other, 1 vector: connect time per peer,
            total setup time, server RSS per peer.
  realize   device_add of ivshmem-doorbell over QMP on a QEMU started with
            -S, with N simulated peers already connected to OUR server
            (both devices speak the same protocol; one server and one set of
            peers serve every repetition on both QEMUs): the device_add
            wall time, and the time until the device holds every peer
            eventfd (the base processes peers asynchronously after
            device_add).  BARs are not mapped yet (no guest ran).
  join      peer connects: N simulated peers join OUR server while a
            QEMU with ivshmem-doorbell on it is connected, its BARs mapped
            and memory decoding on (programmed over QEMU's qtest protocol,
            so no guest code and no guest timer runs in the main loop):
            QEMU's main-thread CPU to take in the N peers (each ioeventfd
            the base registers lands in the address space), the time
            until it holds every new eventfd, and the time the peers
            themselves need to join (the same for both QEMUs: server and
            peers only, it bounds the wall time).  Once with the qtest
            accelerator, once under KVM (vCPU stopped), where every
            ioeventfd is also a KVM registration.
  rtt       doorbell round trips under TCG: host peer to guest
            (bench/hostping.c against the test guest's pong role; per-trip
            times) and guest to guest (ping/pong test guests; ping runs with
            rtt=1 and times every trip with its TSC, from its doorbell write
            to the answer interrupt, and reports median and 99th percentile
            per run: "rtt: n N median NS p99 NS max NS ns").
            "realize", "join" and "rtt" use OUR server, in its default
            configuration (no setup-end marker), for both QEMUs.

Environment (modest defaults; all waits are bounded):
  BENCH_ONLY          benchmarks to run, e.g. "floor,rtt" (default: all);
                      QEMU builds are needed only for peers, realize, join
                      and rtt
  BENCH_FLOOR_N       floor round trips (20000)
  BENCH_PEERS_N       peer counts for "peers" ("16 64 256 1024 4096")
  BENCH_PEER_TIMEOUT  seconds a peer may take to join before the server
                      counts as failed (3)
  BENCH_REALIZE_N     simulated peers for "realize" and "fdfloor"
                      ("1 4 16 64 256 1024": the realistic sizes first)
  BENCH_REALIZE_V     vector counts for "realize" and "fdfloor" ("1 2 4 8")
  BENCH_REPS          repetitions of each realize point (3)
  BENCH_ACCEL         accelerator of the "realize" QEMUs (tcg; kvm works
                      there too, as no guest code runs)
  BENCH_JOIN_N        simulated peers for "join" ("16 64 256 1024")
  BENCH_JOIN_V        vector counts for "join" ("4 8")
  BENCH_JOIN_ACCEL    accelerators for "join" ("qtest kvm"; kvm is
                      reported as an error where /dev/kvm does not work)
  BENCH_MSGS          messages per rtt run (2000)
  BENCH_RUNS          rtt runs per QEMU (3)

This is not a test: it asserts nothing about speed, it prints numbers.
All processes and files it starts are removed at the end, also on failure,
SIGTERM or Ctrl-C.
"""

import ctypes
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                        else os.environ.get('BUILD', os.path.join(TOP, 'build')))
OUT = os.path.join(BUILD, 'bench')
BIN = os.path.join(OUT, 'bin')
IMPL = {
    'ours': os.path.join(BUILD, 'qemu'),
    'base': os.path.join(BUILD, 'base', 'qemu'),
}
GUEST_DIR = os.path.join(BUILD, 'qemu', 'tests', 'guest')
GUEST = os.path.join(GUEST_DIR, 'ivshmem-guest.elf')
PASS_STATUS = 33


def env_list(name, default):
    return [int(x) for x in os.environ.get(name, default).split()]


ONLY = os.environ.get('BENCH_ONLY',
                      'floor,fdfloor,peers,realize,join,rtt').split(',')
NEED_QEMU = ('peers', 'realize', 'join', 'rtt')
NEED_GUEST = ('rtt',)
FLOOR_N = int(os.environ.get('BENCH_FLOOR_N', '20000'))
PEERS_N = env_list('BENCH_PEERS_N', '16 64 256 1024 4096')
PEER_TIMEOUT = int(os.environ.get('BENCH_PEER_TIMEOUT', '3'))
REALIZE_N = env_list('BENCH_REALIZE_N', '1 4 16 64 256 1024')
REALIZE_V = env_list('BENCH_REALIZE_V', '1 2 4 8')
REPS = int(os.environ.get('BENCH_REPS', '3'))
FDFLOOR_REPS = 5
ACCEL = os.environ.get('BENCH_ACCEL', 'tcg')
JOIN_N = env_list('BENCH_JOIN_N', '16 64 256 1024')
JOIN_V = env_list('BENCH_JOIN_V', '4 8')
JOIN_ACCEL = os.environ.get('BENCH_JOIN_ACCEL', 'qtest kvm').split()
MSGS = int(os.environ.get('BENCH_MSGS', '2000'))
RUNS = int(os.environ.get('BENCH_RUNS', '3'))


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted('signal %d' % signum)


def child_setup():
    """preexec_fn: die with the driver, and allow many fds."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def log(msg):
    print('# ' + msg, flush=True)


def pct(values, p):
    s = sorted(values)
    if not s:
        return float('nan')
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def median(values):
    return pct(values, 50)


# ---- processes and files ----------------------------------------------------

class Session:
    """A temporary directory and the processes started in it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='ivshmem-bench-')
        self.procs = []
        self.shm_names = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def spawn(self, argv, name, stdout=None, stdin=subprocess.DEVNULL):
        out = stdout or open(self.path(name + '.log'), 'wb')
        p = subprocess.Popen(argv, stdin=stdin, stdout=out,
                             stderr=subprocess.STDOUT if stdout is None
                             else open(self.path(name + '.err'), 'wb'),
                             preexec_fn=child_setup)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p, timeout=5):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def close(self):
        for p in reversed(list(self.procs)):
            self.stop(p)
        for n in self.shm_names:
            try:
                os.unlink('/dev/shm/' + n)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_listening(sock, proc, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError('%s exited with %s' % (proc.name, proc.returncode))
        with open('/proc/net/unix') as f:
            for line in f.readlines()[1:]:
                w = line.split()
                if len(w) > 7 and w[3] == '00010000' and w[-1] == sock:
                    return
        time.sleep(0.02)
    raise RuntimeError('%s is not listening on %s' % (proc.name, sock))


def start_server(sess, impl, sock, vectors, size='1M'):
    """OUR server for impl 'ours', the base's for 'base'.  Ours runs as
    configured by default: without the setup-end marker, which the base's
    device mishandles (it frees the slot of the marker's ID, a
    use-after-free when a peer with that ID joins later)."""
    exe = os.path.join(IMPL[impl], 'contrib/ivshmem-server/ivshmem-server')
    if impl == 'ours':
        argv = [exe, '-S', sock, '-l', size, '-n', str(vectors)]
    else:
        name = 'ivshmem-bench-%d-%d' % (os.getpid(), len(sess.shm_names))
        sess.shm_names.append(name)
        argv = [exe, '-F', '-S', sock, '-l', size, '-n', str(vectors),
                '-M', name]
    p = sess.spawn(argv, 'server-%s' % impl)
    wait_listening(sock, p)
    return p


def readline_until(proc, deadline):
    """A line of proc's stdout, or None at EOF or at the deadline.  Reads
    the pipe's fd directly (a buffered reader would hide lines from
    select())."""
    end = time.monotonic() + deadline
    buf = proc.__dict__.setdefault('linebuf', bytearray())
    fd = proc.stdout.fileno()
    while True:
        nl = buf.find(b'\n')
        if nl >= 0:
            line = bytes(buf[:nl + 1])
            del buf[:nl + 1]
            return line.decode()
        left = end - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if r:
            data = os.read(fd, 65536)
            if not data:
                return None
            buf += data


# ---- QMP ----------------------------------------------------------------------

class QMP:
    def __init__(self, path, proc, deadline=15.0):
        end = time.monotonic() + deadline
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError('QEMU did not start (see its log)')
                time.sleep(0.02)
        self.sock.settimeout(deadline)
        self.f = self.sock.makefile('rw')
        json.loads(self.f.readline())
        self.cmd('qmp_capabilities')

    def cmd(self, name, timeout=60.0, **args):
        self.sock.settimeout(timeout)
        self.f.write(json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError('QMP connection closed during ' + name)
            reply = json.loads(line)
            if 'event' in reply:
                continue
            if 'error' in reply:
                raise RuntimeError('%s: %s' % (name, reply['error']['desc']))
            return reply['return']


def main_cpu_ms(pid):
    """CPU time of the process's main thread (QEMU's main loop: the
    chardev and the device's peer handling) in ms, from schedstat."""
    try:
        with open('/proc/%d/task/%d/schedstat' % (pid, pid)) as f:
            return int(f.read().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def count_eventfds(pid):
    n = 0
    d = '/proc/%d/fd' % pid
    try:
        for fd in os.listdir(d):
            try:
                if os.readlink(os.path.join(d, fd)) == 'anon_inode:[eventfd]':
                    n += 1
            except OSError:
                pass
    except OSError:
        return -1
    return n


# ---- the benchmarks -------------------------------------------------------------

def build_tools():
    os.makedirs(BIN, exist_ok=True)
    for prog in ('floor', 'fdfloor', 'peers', 'hostping'):
        src = os.path.join(TOP, 'bench', prog + '.c')
        exe = os.path.join(BIN, prog)
        if (not os.path.exists(exe) or
                os.path.getmtime(exe) < os.path.getmtime(src)):
            subprocess.run(['gcc', '-O2', '-Wall', '-Wextra', '-o', exe, src],
                           check=True, timeout=120)
    if any(b in ONLY for b in NEED_GUEST):
        subprocess.run(['make', '-s', '-C',
                        os.path.join(TOP, 'tests', 'guest'),
                        'O=' + GUEST_DIR], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)


def bench_floor(res):
    log('floor: %d eventfd round trips between two processes' % FLOOR_N)
    out = subprocess.run([os.path.join(BIN, 'floor'), str(FLOOR_N)],
                         capture_output=True, text=True, timeout=120,
                         check=True).stdout
    us = [int(x) / 1000.0 for x in out.split()]
    res['floor'] = us
    write_data('floor.dat', ['%g' % v for v in sorted(us)])


def bench_fdfloor(res):
    """Per (vectors, N) of realize: FDFLOOR_REPS times (N+1)*vectors fds
    over a unix socket, one per message and a peer's vectors per message;
    ms per repetition."""
    res['fdfloor'] = {}
    for vectors in REALIZE_V:
        for n in REALIZE_N:
            one, batched, err = [], [], None
            try:
                r = subprocess.run([os.path.join(BIN, 'fdfloor'), str(n),
                                    str(vectors), str(FDFLOOR_REPS)],
                                   capture_output=True, text=True,
                                   timeout=120)
                for w in (line.split() for line in r.stdout.splitlines()):
                    if len(w) == 5 and w[0] == 'fdfloor:':
                        one.append(float(w[4]) / 1000.0)
                    elif len(w) == 5 and w[0] == 'fdfloor-batched:':
                        batched.append(float(w[4]) / 1000.0)
                if r.returncode:
                    err = (r.stderr.strip().splitlines() or
                           ['exit status %d' % r.returncode])[-1]
            except (subprocess.TimeoutExpired, OSError) as e:
                err = str(e)
            res['fdfloor'][(vectors, n)] = (one, batched, err)
            log('fdfloor vectors=%d N=%d: %d fds, one fd/msg %s ms, '
                '%d fds/msg %s ms%s' % (
                    vectors, n, (n + 1) * vectors,
                    ' '.join('%.2f' % x for x in one) or '-', vectors,
                    ' '.join('%.2f' % x for x in batched) or '-',
                    ' ERROR ' + err if err else ''))
    for vectors in REALIZE_V:
        rows = []
        for n in REALIZE_N:
            one, batched, _ = res['fdfloor'][(vectors, n)]
            if one and batched:
                rows.append('%d %g %g' % (n, median(one), median(batched)))
        write_data('fdfloor-v%d.dat' % vectors, rows)


def fdfloor_med(res, vectors, n):
    """Median of the fd floor (one fd per message) at vectors, N, or None."""
    one = res.get('fdfloor', {}).get((vectors, n), ([],))[0]
    return median(one) if one else None


def bench_peers(res, sess):
    res['peers'] = {}
    for impl in ('ours', 'base'):
        for n in PEERS_N:
            sock = sess.path('peers-%s-%d.sock' % (impl, n))
            srv = start_server(sess, impl, sock, 1)
            t0 = time.monotonic()
            argv = [os.path.join(BIN, 'peers'), sock, str(n), '1',
                    str(srv.pid), '--timeout', str(PEER_TIMEOUT)]
            p = sess.spawn(argv, 'peers', stdout=subprocess.PIPE)
            # N^2/2 messages in all: allow about 40 us per message.
            deadline = 30 + n * n * 20e-6 + PEER_TIMEOUT
            out = []
            while True:
                line = readline_until(p, deadline - (time.monotonic() - t0))
                if line is None:
                    break
                out.append(line.split())
            try:
                p.wait(timeout=5)       # EOF came first; let it exit
            except subprocess.TimeoutExpired:
                out.append(['fail', '?', 'the benchmark deadline of %d s'
                            % deadline])
            sess.stop(p)
            alive = srv.poll() is None
            sess.stop(srv)
            r = {'n': n, 'times': [], 'fail': None, 'total': None,
                 'rss': [None, None], 'server_alive': alive}
            for w in out:
                if w[0] == 'peer':
                    r['times'].append(int(w[3]) / 1000.0)      # ms
                elif w[0] == 'fail' and not r['fail']:
                    r['fail'] = 'peer %s: %s' % (w[1], ' '.join(w[2:]))
                elif w[0] == 'total':
                    r['total'] = int(w[1]) / 1e6               # s
                elif w[0] == 'rss_before':
                    r['rss'][0] = int(w[1])
                elif w[0] == 'rss_after':
                    r['rss'][1] = int(w[1])
            if r['fail'] and not alive:
                r['fail'] += ' (server exited with %s)' % srv.returncode
            res['peers'][(impl, n)] = r
            log('peers %s N=%d: %d joined, %s%s' % (
                impl, n, len(r['times']),
                'total %.2f s' % r['total'] if r['total'] else 'no total',
                ', FAILED at ' + r['fail'] if r['fail'] else ''))
            write_data('peers-%s-%d.dat' % (impl, n),
                       ['%d %g' % (i, t) for i, t in enumerate(r['times'])])


def start_peers(sess, sock, n, vectors):
    """n simulated peers that stay connected (peers --hold)."""
    peers = sess.spawn([os.path.join(BIN, 'peers'), sock, str(n),
                        str(vectors), '--hold', '--timeout', '10'],
                       'peers', stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    while True:
        line = readline_until(peers, 60 + n * n * vectors * 40e-6)
        if line is None:
            raise RuntimeError('simulated peers did not get ready')
        if line.startswith('fail'):
            raise RuntimeError('simulated peers: ' + line.strip())
        if line.startswith('ready'):
            return peers


def stop_peers(sess, peers):
    try:
        peers.stdin.close()
    except OSError:
        pass
    sess.stop(peers)


def settle(pids, quiet_ms=50, deadline=20.0):
    """Waits (bounded) until the main threads of pids stop using CPU, e.g.
    until the server has finished telling every peer about a new one."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        now = [main_cpu_ms(p) for p in pids]
        if now == last:
            return
        last = now
        time.sleep(quiet_ms / 1000.0)


def realize_once(sess, impl, sock, n, vectors, others):
    """One device_add on a QEMU started with -S, the server at sock having
    n simulated peers: (device_add s, until all eventfds s or None)."""
    qmp_path = sess.path('realize.qmp')
    vm = sess.spawn([os.path.join(IMPL[impl], 'qemu-system-x86_64'),
                     '-S', '-M', 'q35', '-nodefaults', '-display', 'none',
                     '-accel', ACCEL,
                     '-qmp', 'unix:%s,server=on,wait=off' % qmp_path,
                     '-device', 'pcie-root-port,id=rp0,bus=pcie.0,chassis=1',
                     '-chardev', 'socket,id=ivs,path=' + sock],
                    'qemu-%s' % impl)
    try:
        qmp = QMP(qmp_path, vm)
        fd_dir = '/proc/%d/fd' % vm.pid
        base_fds = count_eventfds(vm.pid)
        want = base_fds + (n + 1) * vectors
        want_all = len(os.listdir(fd_dir)) + (n + 1) * vectors
        settle(others)      # the server has told every peer about us
        cpu0 = main_cpu_ms(vm.pid)
        t0 = time.monotonic()
        qmp.cmd('device_add', driver='ivshmem-doorbell', id='iv0',
                chardev='ivs', vectors=vectors, bus='rp0')
        t_add = time.monotonic() - t0
        # Until the device holds every peer's eventfds and its own: the base
        # keeps reading them after device_add has returned.  The time is the
        # start of the first check that finds them all (resolution: one
        # check, a few ms at 1024 peers x 8 vectors).
        end = t0 + 120
        t_all = None
        while True:
            tc = time.monotonic()
            if (len(os.listdir(fd_dir)) >= want_all and
                    count_eventfds(vm.pid) >= want):
                t_all = tc - t0
                break
            if tc > end:
                break
            time.sleep(0.001)
        # Main-thread CPU for device_add and the peers (the QMP round trips
        # of the check count too, alike for both).
        cpu = main_cpu_ms(vm.pid) - cpu0
        qmp.cmd('quit')
        vm.wait(timeout=10)
        return t_add, t_all, cpu
    finally:
        sess.stop(vm)


def bench_realize(res, sess):
    """Per (vectors, N): one server (ours) and one set of simulated peers,
    shared by every repetition on both QEMUs."""
    res['realize'] = {}
    for vectors in REALIZE_V:
        for n in REALIZE_N:
            got = {impl: ([], [], None) for impl in ('ours', 'base')}
            cpus = {impl: [] for impl in ('ours', 'base')}
            sock = sess.path('realize.sock')
            srv = start_server(sess, 'ours', sock, vectors)
            peers = None
            try:
                t = time.monotonic()
                peers = start_peers(sess, sock, n, vectors)
                log('realize: %d simulated peers x %d vectors joined in '
                    '%.1f s' % (n, vectors, time.monotonic() - t))
                for _ in range(REPS):
                    for impl in ('ours', 'base'):
                        adds, alls, err = got[impl]
                        if err:
                            continue
                        try:
                            a, b, c = realize_once(sess, impl, sock, n,
                                                   vectors,
                                                   [srv.pid, peers.pid])
                            cpus[impl].append(c)
                            adds.append(a * 1000)
                            if b is not None:
                                alls.append(b * 1000)
                        except (RuntimeError, subprocess.TimeoutExpired,
                                OSError) as e:
                            got[impl] = (adds, alls, str(e))
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                for impl in got:
                    got[impl] = (got[impl][0], got[impl][1], str(e))
            finally:
                if peers:
                    stop_peers(sess, peers)
                sess.stop(srv)
            for impl in ('ours', 'base'):
                adds, alls, err = got[impl]
                res['realize'][(impl, vectors, n)] = got[impl]
                res.setdefault('realize_cpu', {})[(impl, vectors, n)] = \
                    cpus[impl]
                log('realize %s vectors=%d N=%d: device_add %s ms, all '
                    'eventfds %s ms, main thread CPU %s ms%s' % (
                        impl, vectors, n,
                        ' '.join('%.1f' % x for x in adds),
                        ' '.join('%.1f' % x for x in alls) or '-',
                        ' '.join('%.1f' % x for x in cpus[impl]) or '-',
                        ' ERROR ' + err if err else ''))
                ff = fdfloor_med(res, vectors, n)
                if alls and ff:
                    log('realize %s v=%d N=%d: %s = %.1fx the fd floor (%s)'
                        % (impl, vectors, n, fmt(median(alls), ' ms'),
                           median(alls) / ff, fmt(ff, ' ms')))
    for impl in ('ours', 'base'):
        for vectors in REALIZE_V:
            rows = []
            for n in REALIZE_N:
                adds, alls, _ = res['realize'][(impl, vectors, n)]
                if adds:
                    rows.append('%d %g %g' % (n, median(adds),
                                              median(alls) if alls else -1))
            write_data('realize-%s-v%d.dat' % (impl, vectors), rows)


def guest_argv(sess, impl, name, append, sock, vectors):
    return [os.path.join(IMPL[impl], 'qemu-system-x86_64'), '-accel', 'tcg',
            '-M', 'q35', '-m', '32M', '-nodefaults', '-display', 'none',
            '-no-reboot', '-kernel', GUEST, '-append', append,
            '-serial', 'file:' + sess.path(name + '.serial'),
            '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
            '-chardev', 'socket,id=ivs,path=' + sock,
            '-device', 'ivshmem-doorbell,chardev=ivs,vectors=%d' % vectors]


class QTest:
    """QEMU's qtest protocol, on a socket QEMU connects to: a command line
    gets one "OK ..." line back (asynchronous "IRQ ..." lines skipped)."""

    def __init__(self, listener, proc, deadline=15.0):
        end = time.monotonic() + deadline
        listener.settimeout(0.05)
        while True:
            try:
                self.sock, _ = listener.accept()
                break
            except socket.timeout:
                if proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError('QEMU did not connect to qtest (see '
                                       'its log)')
        self.sock.settimeout(deadline)
        self.f = self.sock.makefile('rw')

    def cmd(self, line):
        self.f.write(line + '\n')
        self.f.flush()
        while True:
            reply = self.f.readline()
            if not reply:
                raise RuntimeError('qtest connection closed at ' + line)
            w = reply.split()
            if w and w[0] == 'IRQ':
                continue
            if not w or w[0] != 'OK':
                raise RuntimeError('qtest: %s: %s' % (line, reply.strip()))
            return w[1] if len(w) > 1 else None

    def close(self):
        self.f.close()
        self.sock.close()

    def pci_write(self, slot, offset, value, size=4):
        """Config space of bus 0, function 0 of @slot, by ports 0xcf8/cfc."""
        self.cmd('outl 0xcf8 0x%x' % (0x80000000 | slot << 11 | offset & ~3))
        self.cmd('%s 0x%x 0x%x' % ({4: 'outl', 2: 'outw'}[size],
                                   0xcfc + (offset & 3), value))


JOIN_SLOT = 4
JOIN_BAR0 = 0xc0000000          # registers
JOIN_BAR1 = 0xc0010000          # MSI-X: 64 KiB fit 1024 vectors
JOIN_BAR2 = 0xc0100000          # the 1 MiB of shared memory, 64-bit BAR


def join_vm(sess, impl, sock, vectors, accel):
    """A QEMU on the server at sock, its doorbell's BARs mapped by qtest."""
    qpath = sess.path('join.qtest')
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(qpath)
    listener.listen(1)
    argv = [os.path.join(IMPL[impl], 'qemu-system-x86_64'), '-M', 'q35',
            '-nodefaults', '-display', 'none', '-qtest', 'unix:' + qpath,
            '-chardev', 'socket,id=ivs,path=' + sock,
            '-device', 'ivshmem-doorbell,chardev=ivs,vectors=%d,addr=%d' % (
                vectors, JOIN_SLOT)]
    # Without -accel, -qtest keeps the default accelerator, whose vCPU
    # would run the firmware: it programs the BARs too, through the same
    # config address port.  Under KVM the vCPU is kept stopped instead.
    argv += ['-accel', 'kvm', '-S'] if accel == 'kvm' else ['-accel', 'qtest']
    vm = sess.spawn(argv, 'join-qemu')
    qt = None
    try:
        qt = QTest(listener, vm)
        qt.pci_write(JOIN_SLOT, 0x10, JOIN_BAR0)
        qt.pci_write(JOIN_SLOT, 0x14, JOIN_BAR1)
        qt.pci_write(JOIN_SLOT, 0x18, JOIN_BAR2)
        qt.pci_write(JOIN_SLOT, 0x1c, 0)
        qt.pci_write(JOIN_SLOT, 0x04, 0x0006, 2)    # memory, bus master
        # INTRMASK is plain storage on both devices: BAR0 is mapped.
        qt.cmd('writel 0x%x 0x5a5a5a5a' % JOIN_BAR0)
        got = qt.cmd('readl 0x%x' % JOIN_BAR0)
        if int(got, 16) != 0x5a5a5a5a:
            raise RuntimeError('BAR0 of the %s device is not mapped (INTRMASK '
                               'reads %s)' % (impl, got))
    except BaseException:
        if qt:
            qt.close()
        sess.stop(vm)
        raise
    finally:
        listener.close()
        os.unlink(qpath)
    return vm, qt


def join_once(sess, impl, n, vectors, accel):
    """n simulated peers join a server whose other peer is a QEMU with its
    doorbell's BARs mapped: (seconds until that QEMU holds all their
    eventfds, the peers' own total join time, QEMU main-thread CPU ms)."""
    sock = sess.path('join.sock')
    srv = start_server(sess, 'ours', sock, vectors)
    vm = peers = None
    try:
        vm, qt = join_vm(sess, impl, sock, vectors, accel)
        settle([srv.pid, vm.pid])
        fd_dir = '/proc/%d/fd' % vm.pid
        want = count_eventfds(vm.pid) + n * vectors
        want_all = len(os.listdir(fd_dir)) + n * vectors
        cpu0 = main_cpu_ms(vm.pid)
        t0 = time.monotonic()
        peers = sess.spawn([os.path.join(BIN, 'peers'), sock, str(n),
                            str(vectors), '--hold', '--timeout', '10'],
                           'peers', stdout=subprocess.PIPE,
                           stdin=subprocess.PIPE)
        end = t0 + 60 + n * n * vectors * 40e-6
        t_vm = t_peers = None
        while t_vm is None or t_peers is None:
            tc = time.monotonic()
            if tc > end:
                break
            if vm.poll() is not None:
                raise RuntimeError('%s QEMU exited with %s while peers '
                                   'joined' % (impl, vm.returncode))
            if (t_vm is None and len(os.listdir(fd_dir)) >= want_all and
                    count_eventfds(vm.pid) >= want):
                t_vm = tc - t0
            while t_peers is None:
                line = readline_until(peers, 0.002)
                if line is None:
                    break
                if line.startswith('fail'):
                    raise RuntimeError('simulated peers: ' + line.strip())
                if line.startswith('total'):        # their own join time
                    t_peers = int(line.split()[1]) / 1e6
            time.sleep(0.005)
        settle([vm.pid])
        cpu1 = main_cpu_ms(vm.pid)
        cpu = cpu1 - cpu0 if t_vm and None not in (cpu0, cpu1) else None
        qt.cmd('readl 0x%x' % JOIN_BAR0)            # still answering
        return t_vm, t_peers, cpu
    finally:
        if peers:
            stop_peers(sess, peers)
        if vm:
            qt.close()
            sess.stop(vm)
        sess.stop(srv)


def open_text(path):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except FileNotFoundError:
        return ''


def bench_join(res, sess):
    res['join'] = {}
    for accel in JOIN_ACCEL:
        for vectors in JOIN_V:
            for n in JOIN_N:
                for impl in ('ours', 'base'):
                    join_point(res, sess, accel, impl, vectors, n)


def join_point(res, sess, accel, impl, vectors, n):
    """One point of "join": run it, keep and log the result or the error."""
    try:
        t_vm, t_peers, cpu = join_once(sess, impl, n, vectors, accel)
        err = None if t_vm else 'not all eventfds in time'
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        t_vm = t_peers = cpu = None
        err = str(e)
    res['join'][(accel, impl, vectors, n)] = (t_vm, t_peers, cpu, err)
    log('join %s %s vectors=%d N=%d: QEMU has all peer eventfds '
        'after %s s (main thread CPU %s ms), the peers '
        'themselves joined in %s s%s' % (
            accel, impl, vectors, n,
            '%.2f' % t_vm if t_vm else '-',
            '%.0f' % cpu if cpu is not None else '-',
            '%.2f' % t_peers if t_peers else '-',
            ' ERROR ' + err if err else ''))


def rtt_host(sess, impl, vectors=2):
    """Host peer <-> guest pong: per-trip times in us."""
    sock = sess.path('rtt.sock')
    srv = start_server(sess, 'ours', sock, vectors)
    hp = sess.spawn([os.path.join(BIN, 'hostping'), sock, str(vectors),
                     str(MSGS), '30'], 'hostping', stdout=subprocess.PIPE)
    guest = sess.spawn(guest_argv(sess, impl, 'pong',
                                  'mode=doorbell role=pong count=%d '
                                  'vectors=%d timeout=30' % (MSGS, vectors),
                                  sock, vectors), 'pong')
    try:
        out, _ = hp.communicate(timeout=60)
        guest.wait(timeout=30)
    finally:
        sess.stop(hp)
        sess.stop(guest)
        sess.stop(srv)
    lines = out.decode().split()
    if hp.returncode != 0 or 'errors' not in lines:
        raise RuntimeError('hostping failed (%s)' % hp.returncode)
    return [int(x) / 1000.0 for x in lines[:lines.index('errors')]]


def rtt_guests(sess, impl, vectors=2):
    """Guest ping <-> guest pong: (median, p99) of the round trips in us,
    as the ping guest measured them (rtt=1)."""
    sock = sess.path('rtt.sock')
    srv = start_server(sess, 'ours', sock, vectors)
    common = 'mode=doorbell count=%d vectors=%d timeout=30 rtt=1' % (
        MSGS, vectors)
    for role in ('ping', 'pong'):       # no stale console from a last run
        try:
            os.unlink(sess.path(role + '.serial'))
        except FileNotFoundError:
            pass
    gs = [sess.spawn(guest_argv(sess, impl, role, 'role=%s %s'
                                % (role, common), sock, vectors), role)
          for role in ('ping', 'pong')]
    end = time.monotonic() + 60
    try:
        while time.monotonic() < end:
            if all(g.poll() is not None for g in gs):
                break
            time.sleep(0.05)
        ok = all(g.poll() == PASS_STATUS for g in gs)
    finally:
        for g in gs:
            sess.stop(g)
        sess.stop(srv)
    try:
        with open(sess.path('ping.serial')) as f:
            m = re.search(r'^rtt: n (\d+) median (\d+) p99 (\d+) max (\d+) ns',
                          f.read(), re.M)
    except FileNotFoundError:
        m = None
    if not ok or not m or not int(m.group(1)):
        raise RuntimeError('guest exchange failed, or no rtt line')
    return int(m.group(2)) / 1000.0, int(m.group(3)) / 1000.0


def bench_rtt(res, sess):
    """RUNS rounds; each round runs both QEMUs, which one first alternating,
    so that neither always runs right after the heavier benchmarks or in
    the same phase of the machine's background load."""
    got = {impl: ([], [], None) for impl in ('ours', 'base')}
    for r in range(RUNS):
        for impl in ('ours', 'base') if r % 2 == 0 else ('base', 'ours'):
            trips, runs, err = got[impl]
            if err:
                continue
            try:
                trips += rtt_host(sess, impl)
                runs.append(rtt_guests(sess, impl))
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                got[impl] = (trips, runs, str(e))
    res['rtt_host'], res['rtt_guest'] = {}, {}
    for impl in ('ours', 'base'):
        trips, runs, err = got[impl]
        res['rtt_host'][impl] = (trips, err)
        res['rtt_guest'][impl] = (runs, err)
        log('rtt %s: host<->guest median %.1f us over %d trips; '
            'guest<->guest median/p99 per run %s us%s' % (
                impl, median(trips) if trips else float('nan'), len(trips),
                ' '.join('%.1f/%.1f' % r for r in runs),
                ' ERROR ' + err if err else ''))
        write_data('rtt-host-%s.dat' % impl,
                   ['%g %g' % (v, (i + 1) / len(trips))
                    for i, v in enumerate(sorted(trips))])


# ---- output ---------------------------------------------------------------------

def write_data(name, lines):
    with open(os.path.join(OUT, name), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def fmt(v, unit=''):
    if v is None or v != v:
        return '-'
    if v >= 100:
        return '%.0f%s' % (v, unit)
    if v >= 10:
        return '%.1f%s' % (v, unit)
    return '%.2f%s' % (v, unit)


def ratio(a, b):
    if a is None or b is None or a != a or b != b or not b:
        return '-'
    return '%.2fx' % (a / b)


def table(res):
    rows = []
    notes = []
    floor_med = median(res['floor']) if res.get('floor') else None

    def add(bench, case, impl, med, p99, unit, base_med, floor=None):
        rows.append((bench, case, impl, fmt(med), fmt(p99), unit,
                     ratio(med, base_med) if impl == 'ours' else '',
                     ratio(med, floor) if floor else ''))

    if res.get('floor'):
        add('floor', 'eventfd ping-pong', 'host', floor_med,
            pct(res['floor'], 99), 'us', None, floor_med)
    for (v, n), (one, batched, err) in sorted(res.get('fdfloor', {}).items()):
        if err:
            notes.append('fdfloor v=%d N=%d: %s' % (v, n, err))
        if not one:
            rows.append(('fdfloor', 'v=%d N=%d' % (v, n), 'host', 'ERROR',
                         '', '', '', ''))
            continue
        add('fdfloor', 'v=%d N=%d one fd/msg' % (v, n), 'host', median(one),
            max(one), 'ms', None, median(one))
        if batched:
            add('fdfloor', 'v=%d N=%d V fds/msg' % (v, n), 'host',
                median(batched), max(batched), 'ms', None, median(one))
    for (impl, n), r in sorted(res.get('peers', {}).items(),
                               key=lambda kv: (kv[0][1], kv[0][0] != 'ours')):
        case = 'N=%d connect/peer' % n
        base = res['peers'].get(('base', n))
        base_med = median(base['times']) if base and not base['fail'] else None
        if r['fail']:
            rows.append(('peers', case, impl, 'FAILED', '', '',
                         '%d joined' % len(r['times']), ''))
            notes.append('peers %s N=%d failed at %s' % (impl, n, r['fail']))
            continue
        add('peers', case, impl, median(r['times']), pct(r['times'], 99),
            'ms', base_med)
        base_tot = base['total'] if base and not base['fail'] else None
        rows.append(('peers', 'N=%d total setup' % n, impl, fmt(r['total']),
                     '', 's', ratio(r['total'], base_tot)
                     if impl == 'ours' else '', ''))
        if r['rss'][0] and r['rss'][1]:
            rows.append(('peers', 'N=%d server RSS/peer' % n, impl,
                         fmt((r['rss'][1] - r['rss'][0]) / n), '', 'KiB',
                         '', ''))
    for (impl, v, n), (adds, alls, err) in sorted(
            res.get('realize', {}).items(),
            key=lambda kv: (kv[0][1], kv[0][2], kv[0][0] != 'ours')):
        base = res['realize'].get(('base', v, n))
        if err and not adds:
            rows.append(('realize', 'v=%d N=%d' % (v, n), impl, 'ERROR', '',
                         '', '', ''))
            notes.append('realize %s v=%d N=%d: %s' % (impl, v, n, err))
            continue
        add('realize', 'v=%d N=%d device_add' % (v, n), impl, median(adds),
            max(adds), 'ms', median(base[0]) if base and base[0] else None)
        add('realize', 'v=%d N=%d all eventfds' % (v, n), impl,
            median(alls) if alls else None, max(alls) if alls else None,
            'ms', median(base[1]) if base and base[1] else None,
            fdfloor_med(res, v, n))
        cpu = res.get('realize_cpu', {}).get((impl, v, n))
        bcpu = res.get('realize_cpu', {}).get(('base', v, n))
        if cpu:
            add('realize', 'v=%d N=%d main CPU' % (v, n), impl, median(cpu),
                max(cpu), 'ms', median(bcpu) if bcpu else None)
    for (accel, impl, v, n), (t_vm, t_peers, cpu, err) in sorted(
            res.get('join', {}).items(),
            key=lambda kv: (kv[0][0], kv[0][2], kv[0][3], kv[0][1] != 'ours')):
        base = res['join'].get((accel, 'base', v, n))
        case = '%s v=%d N=%d' % (accel, v, n)
        if err and not t_vm:
            rows.append(('join', case, impl, 'ERROR', '', '', '', ''))
            notes.append('join %s %s: %s' % (impl, case, err))
            continue
        add('join', case + ' main CPU', impl, cpu, None, 'ms',
            base[2] if base else None)
        add('join', case + ' QEMU has all', impl, t_vm, None, 's',
            base[0] if base else None)
        add('join', case + ' peers alone', impl, t_peers, None, 's',
            base[1] if base else None)
    for impl, (trips, err) in sorted(res.get('rtt_host', {}).items(),
                                     key=lambda kv: kv[0] != 'ours'):
        base = res['rtt_host'].get('base', ([], None))[0]
        add('rtt', 'host<->guest', impl, median(trips) if trips else None,
            pct(trips, 99) if trips else None, 'us',
            median(base) if base else None, floor_med)
    for impl, (runs, err) in sorted(res.get('rtt_guest', {}).items(),
                                    key=lambda kv: kv[0] != 'ours'):
        base = res['rtt_guest'].get('base', ([], None))[0]
        add('rtt', 'guest<->guest', impl,
            median([r[0] for r in runs]) if runs else None,
            median([r[1] for r in runs]) if runs else None, 'us',
            median([r[0] for r in base]) if base else None, floor_med)

    head = ('benchmark', 'case', 'impl', 'median', 'p99/max', 'unit',
            'vs base', 'vs floor')
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(8)]
    lines = ['  '.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in [head] + rows]
    lines.insert(1, '-' * len(lines[0]))
    text = '\n'.join(lines + [''] + notes)
    print(text)
    with open(os.path.join(OUT, 'results.txt'), 'w') as f:
        f.write(text + '\n')
    print('\n"p99/max": the 99th percentile for per-event samples, the '
          'maximum over the\nrepetitions for realize and fdfloor (a few '
          'samples each).  guest<->guest: the\nmedian over the runs of the '
          'median and 99th percentile each ping guest measured.\n'
          '"vs floor": to the eventfd ping-pong for rtt; to the fd floor (one '
          'fd per\nmessage, same v and N) for fdfloor and realize\'s "all '
          'eventfds".')


def plots(res):
    if not shutil.which('gnuplot'):
        log('gnuplot not found: no plots (make bench installs it: '
            'scripts/install-packages.sh gnuplot-nox)')
        return
    term = 'set terminal pngcairo size 900,560 font ",10"\n'
    scripts = {}
    if res.get('floor'):
        scripts['floor'] = term + (
            "set output 'floor.png'\nset title 'floor: eventfd ping-pong "
            "between two host processes'\nset xlabel 'round trip (us)'\n"
            "set ylabel 'fraction of trips'\nset logscale x\nset grid\n"
            "plot 'floor.dat' using 1:($0/%d) with lines lw 2 title 'CDF'\n"
            % len(res['floor']))
    if res.get('peers'):
        plot = []
        for (impl, n), r in sorted(res['peers'].items()):
            if r['times']:
                plot.append("'peers-%s-%d.dat' using 1:2 with lines title "
                            "'%s, N=%d%s'" % (impl, n, impl, n,
                                               ' (failed)' if r['fail'] else ''))
        if plot:
            scripts['peers'] = term + (
                "set output 'peers.png'\nset title 'connect time per peer "
                "(1 vector), peers joining one after the other'\n"
                "set xlabel 'peer index'\nset ylabel 'connect() to own last "
                "eventfd (ms)'\nset logscale y\nset grid\nset key left top\n"
                "plot " + ', '.join(plot) + '\n')
    if res.get('realize') or res.get('fdfloor'):
        plot = []
        for impl in ('ours', 'base') if res.get('realize') else ():
            for v in REALIZE_V:
                name = 'realize-%s-v%d.dat' % (impl, v)
                if os.path.getsize(os.path.join(OUT, name)) > 1:
                    plot.append("'%s' using 1:2 with linespoints lw 2 title "
                                "'%s vectors=%d: device\\_add'" % (name, impl, v))
                    plot.append("'%s' using 1:($3 > 0 ? $3 : 1/0) with "
                                "linespoints dt 2 title '%s vectors=%d: all "
                                "eventfds'" % (name, impl, v))
        for v in REALIZE_V if res.get('fdfloor') else ():
            name = 'fdfloor-v%d.dat' % v
            if os.path.getsize(os.path.join(OUT, name)) > 1:
                plot.append("'%s' using 1:2 with linespoints dt 3 title "
                            "'fd floor vectors=%d: one fd/msg'" % (name, v))
                plot.append("'%s' using 1:3 with linespoints dt 4 title "
                            "'fd floor vectors=%d: V fds/msg'" % (name, v))
        name = 'realize' if res.get('realize') else 'fdfloor'
        if plot:
            scripts[name] = term + (
                "set output '%s.png'\nset title '%s'\n"
                "set xlabel 'peers already connected'\nset ylabel 'ms'\n"
                "set logscale xy\nset grid\nset key left top\n"
                "plot %s\n" % (
                    name, 'ivshmem-doorbell realize with N peers connected '
                    '(TCG, q35, median)' if res.get('realize') else
                    'fd floor: (N+1)*V eventfds over a unix socket (median)',
                    ', '.join(plot)))
    if res.get('join'):
        plot = []
        for accel in JOIN_ACCEL:
            for impl in ('ours', 'base'):
                for v in JOIN_V:
                    got = [(n, res['join'].get((accel, impl, v, n)))
                           for n in JOIN_N]
                    rows = ['%d %g %g' % (n, r[2], r[0]) for n, r in got
                            if r and r[2] is not None]
                    if rows:
                        name = 'join-%s-%s-v%d.dat' % (accel, impl, v)
                        write_data(name, rows)
                        plot.append("'%s' using 1:2 with linespoints lw 2 "
                                    "title '%s %s vectors=%d'" % (
                                        name, impl, accel, v))
        if plot:
            scripts['join'] = term + (
                "set output 'join.png'\nset title 'N peers join a QEMU "
                "whose doorbell BARs are mapped: main-thread CPU to take "
                "them in'\nset xlabel 'peers joining'\nset ylabel 'CPU ms'\n"
                "set logscale xy\nset grid\nset key left top\n"
                "plot " + ', '.join(plot) + '\n')
    if res.get('rtt_host'):
        plot = ["'rtt-host-%s.dat' using 1:2 with lines lw 2 title "
                "'host<->guest, %s'" % (impl, impl)
                for impl in ('ours', 'base') if res['rtt_host'][impl][0]]
        if res.get('floor'):
            plot.append("'floor.dat' using 1:($0/%d) with lines title "
                        "'floor (host<->host eventfd)'" % len(res['floor']))
        scripts['rtt'] = term + (
            "set output 'rtt.png'\nset title 'doorbell round trip, host peer "
            "<-> TCG guest (CDF)'\nset xlabel 'round trip (us)'\n"
            "set ylabel 'fraction of trips'\nset logscale x\nset grid\n"
            "set key right bottom\nplot " + ', '.join(plot) + '\n')
    for name, text in scripts.items():
        path = os.path.join(OUT, name + '.gp')
        with open(path, 'w') as f:
            f.write(text)
        r = subprocess.run(['gnuplot', name + '.gp'], cwd=OUT,
                           capture_output=True, text=True, timeout=60)
        if r.returncode:
            log('gnuplot %s failed: %s' % (name, r.stderr.strip()[:200]))
        else:
            log('plot: %s' % os.path.join(OUT, name + '.png'))


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start = time.monotonic()
    need_qemu = any(b in ONLY for b in NEED_QEMU)
    for impl, d in IMPL.items() if need_qemu else ():
        if not os.path.exists(os.path.join(d, 'qemu-system-x86_64')):
            print('bench: no %s QEMU in %s' % (impl, d), file=sys.stderr)
            return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(OUT, exist_ok=True)
    build_tools()
    for impl, d in IMPL.items() if need_qemu else ():
        v = subprocess.run([os.path.join(d, 'qemu-system-x86_64'),
                            '--version'], capture_output=True, text=True,
                           timeout=30).stdout.splitlines()[0]
        log('%s: %s (%s)' % (impl, v, d))
    if need_qemu:
        log('servers: "peers" runs each QEMU\'s own server; "realize", '
            '"join" and "rtt" use OUR server for both QEMUs')
    res = {}
    sess = Session()
    try:
        for name, fn in (('floor', lambda: bench_floor(res)),
                         ('fdfloor', lambda: bench_fdfloor(res)),
                         ('peers', lambda: bench_peers(res, sess)),
                         ('realize', lambda: bench_realize(res, sess)),
                         ('join', lambda: bench_join(res, sess)),
                         ('rtt', lambda: bench_rtt(res, sess))):
            if name in ONLY:
                t = time.monotonic()
                fn()
                log('%s took %.0f s' % (name, time.monotonic() - t))
    except Interrupted as e:
        log('interrupted (%s); cleaning up' % e)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sess.close()
    print()
    table(res)
    plots(res)
    log('results and plots in %s; %.0f s in all'
        % (OUT, time.monotonic() - start))
    return 0


if __name__ == '__main__':
    sys.exit(main())
