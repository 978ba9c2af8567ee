#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The demo: start an ivshmem-server, a QEMU with ivshmem-doorbell on it and
# a QEMU with ivshmem-plain on a memfd backend, and show from QMP that both
# devices are realized, with their IDs and BARs.  Then let two tiny guests
# (tests/guest, under TCG) exchange messages through ivshmem-doorbell, each
# one announced by an MSI-X interrupt, with both serial consoles shown (the
# first messages in full, through the guest's verbose=), and let a guest
# fill an ivshmem-plain memory that the host reads back from the backing
# file.  Every wait is bounded; all processes and files are removed at the
# end, also on failure, SIGTERM or Ctrl-C.

import ctypes
import json
import mmap
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

OBJ = os.path.abspath(sys.argv[1])
QEMU = os.path.join(OBJ, 'qemu-system-x86_64')
SERVER = os.path.join(OBJ, 'contrib/ivshmem-server/ivshmem-server')
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST_SRC = os.path.join(TOP, 'tests', 'guest')
GUEST_DIR = os.path.join(OBJ, 'tests', 'guest')
GUEST = os.path.join(GUEST_DIR, 'ivshmem-guest.elf')
GUEST_DEADLINE = 40.0   # seconds for each guest part
MESSAGES = 1000
VERBOSE = 8             # the guests print this many messages in full
PASS_STATUS = 33        # isa-debug-exit (0x10 << 1) | 1: RESULT: PASS


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if the demo dies abruptly."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


class QMP:
    def __init__(self, path, deadline=10.0):
        end = time.monotonic() + deadline
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.f = self.sock.makefile('rw')
        json.loads(self.f.readline())           # greeting
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        self.f.write(json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        while True:
            reply = json.loads(self.f.readline())
            if 'event' in reply:
                continue
            if 'error' in reply:
                raise RuntimeError('%s: %s' % (name, reply['error']['desc']))
            return reply['return']


def wait_for(path, proc, what, deadline=10.0):
    end = time.monotonic() + deadline
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError('%s did not start' % what)
        time.sleep(0.05)


def start_qemu(tmp, name, args):
    qmp = os.path.join(tmp, name + '.qmp')
    log = open(os.path.join(tmp, name + '.log'), 'w')
    proc = subprocess.Popen([QEMU, '-machine', 'q35', '-nodefaults',
                             '-display', 'none', '-S',
                             '-qmp', 'unix:%s,server=on,wait=off' % qmp]
                            + args, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)
    wait_for(qmp, proc, name)
    return proc, QMP(qmp)


def show(name, qmp):
    print('\n%s:' % name)
    for bus in qmp.cmd('query-pci'):
        for dev in bus['devices']:
            if dev['id']['vendor'] != 0x1af4 or dev['id']['device'] != 0x1110:
                continue
            print('  %s  %04x:%04x subsystem %04x:%04x class %04x'
                  % (dev['qdev_id'] or '-', dev['id']['vendor'],
                     dev['id']['device'],
                     dev['id'].get('subsystem-vendor', 0),
                     dev['id'].get('subsystem', 0), dev['class_info']['class']))
            for bar in dev['regions']:
                kind = ('%d-bit%s memory' % (64 if bar.get('mem_type_64') else 32,
                                             ', prefetchable'
                                             if bar.get('prefetch') else '')
                        if bar['type'] == 'memory' else 'io')
                print('    BAR%d: %s, %d bytes' % (bar['bar'], kind, bar['size']))


def start_guest(tmp, name, append, device_args):
    """A tiny test guest under TCG; its serial console goes to NAME.serial."""
    serial = os.path.join(tmp, name + '.serial')
    open(serial, 'w').close()
    proc = subprocess.Popen([
        QEMU, '-accel', 'tcg', '-machine', 'q35', '-m', '32M', '-nodefaults',
        '-display', 'none', '-no-reboot', '-kernel', GUEST, '-append', append,
        '-serial', 'file:' + serial,
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'] + device_args,
        stdin=subprocess.DEVNULL,
        stdout=open(os.path.join(tmp, name + '.log'), 'w'),
        stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    proc.name, proc.serial, proc.seen = name, serial, 0
    return proc


def follow(guests, deadline, width=5):
    """Prints the guests' consoles line by line, prefixed by their names,
    as the lines arrive, until all guests have exited or the deadline."""
    end = time.monotonic() + deadline
    while True:
        done = all(g.poll() is not None for g in guests)
        for g in guests:
            with open(g.serial, 'rb') as f:
                f.seek(g.seen)
                data = f.read()
            cut = len(data) if done else data.rfind(b'\n') + 1
            for line in data[:cut].decode(errors='replace').splitlines():
                print('  %-*s| %s' % (width, g.name, line.rstrip()))
            g.seen += cut
        if done:
            return True
        if time.monotonic() > end:
            print('  (guests still running after %d s, stopping them)'
                  % deadline)
            return False
        time.sleep(0.05)


def verdict(guests):
    for g in guests:
        print('  %s: %s' % (g.name, 'PASS' if g.returncode == PASS_STATUS
                            else 'FAIL (exit status %s)' % g.returncode))


def demo_doorbell(tmp, procs):
    sock = os.path.join(tmp, 'guests.sock')
    server = subprocess.Popen([SERVER, '-S', sock, '-l', '1M', '-n', '2'],
                              stdin=subprocess.DEVNULL,
                              stdout=open(os.path.join(tmp, 'server2.log'), 'w'),
                              stderr=subprocess.STDOUT,
                              preexec_fn=die_with_parent)
    procs.append(server)
    wait_for(sock, server, 'ivshmem-server')
    print('\nTwo guests, ping and pong, each with ivshmem-doorbell (vectors=2) '
          'on a new\nivshmem-server, exchange %d messages: each one written '
          'into the shared\nmemory and announced by a doorbell write that '
          'raises an MSI-X interrupt\nin the other guest, on vector i %% 2 '
          '(TCG; the guests show the first %d\nmessages, then every 250th):'
          % (MESSAGES, VERBOSE))
    dev = ['-chardev', 'socket,id=srv,path=' + sock,
           '-device', 'ivshmem-doorbell,chardev=srv,vectors=2']
    common = 'mode=doorbell count=%d vectors=2 timeout=20 verbose=%d' % (
        MESSAGES, VERBOSE)
    t0 = time.monotonic()
    guests = []
    for role in ('ping', 'pong'):
        guests.append(start_guest(tmp, role, 'role=%s %s' % (role, common),
                                  dev))
        procs.append(guests[-1])
    follow(guests, GUEST_DEADLINE)
    print('  (%.1f s, both guests booted and done)' % (time.monotonic() - t0))
    verdict(guests)


def demo_plain(tmp, procs):
    shm = os.path.join(tmp, 'plain.shm')
    with open(shm, 'wb') as f:
        f.truncate(1 << 20)
    print('\nA guest with ivshmem-plain on memory-backend-file %s (1 MiB, '
          'share=on)\nfills the shared memory with its pattern (word k = '
          'k * 0x9e3779b1 ^ 0x5a5a5a5a):' % os.path.basename(shm))
    g = start_guest(tmp, 'plain', 'mode=pattern', [
        '-object', 'memory-backend-file,id=shm,mem-path=%s,size=1M,share=on'
                   % shm,
        '-device', 'ivshmem-plain,memdev=shm'])
    procs.append(g)
    follow([g], GUEST_DEADLINE)
    verdict([g])
    print('\nThe host reads the backing file (od -A x -t x4 -N 64 %s):'
          % os.path.basename(shm))
    od = subprocess.run(['od', '-A', 'x', '-t', 'x4', '-N', '64', shm],
                        capture_output=True, text=True, timeout=10)
    for line in od.stdout.splitlines():
        print('  ' + line)
    with open(shm, 'rb') as f, mmap.mmap(f.fileno(), 0,
                                         prot=mmap.PROT_READ) as m:
        words = len(m) // 4
        got = struct.unpack('<%dI' % words, m[:words * 4])
    good = sum(1 for k, w in enumerate(got)
               if w == (k * 0x9e3779b1 ^ 0x5a5a5a5a) & 0xffffffff)
    print('  python mmap of the file: %d of %d words hold the guest\'s '
          'pattern' % (good, words))


def main():
    print(subprocess.run([QEMU, '--version'], capture_output=True,
                         text=True).stdout.splitlines()[0])
    out = subprocess.run([QEMU, '-device', 'help'], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if '"ivshmem' in line:
            print('  ' + line.strip())
    if not os.path.exists(SERVER):
        print('ivshmem-server is not built; nothing more to show')
        return 0

    signal.signal(signal.SIGTERM, on_sigterm)
    guest_ok = subprocess.run(['make', '-s', '-C', GUEST_SRC, 'O=' + GUEST_DIR],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=120).returncode == 0
    tmp = tempfile.mkdtemp(prefix='ivshmem-demo-')
    procs = []
    try:
        sock = os.path.join(tmp, 'ivshmem.sock')
        server = subprocess.Popen([SERVER, '-S', sock, '-l', '4M', '-n', '2'],
                                  stdout=open(os.path.join(tmp, 'server.log'), 'w'),
                                  stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL,
                                  preexec_fn=die_with_parent)
        procs.append(server)
        wait_for(sock, server, 'ivshmem-server')
        print('\nivshmem-server: %s, 4 MiB, 2 vectors per peer' % sock)

        vm, qmp = start_qemu(tmp, 'vm-doorbell', [
            '-chardev', 'socket,id=srv,path=' + sock,
            '-device', 'ivshmem-doorbell,id=doorbell0,chardev=srv,vectors=2'])
        procs.append(vm)
        show('QEMU with ivshmem-doorbell', qmp)
        print('    peer ID (IVPOSITION): assigned by the server at realize')

        vm2, qmp2 = start_qemu(tmp, 'vm-plain', [
            '-object', 'memory-backend-memfd,id=mem0,size=1M,share=on',
            '-device', 'ivshmem-plain,id=plain0,memdev=mem0'])
        procs.append(vm2)
        show('QEMU with ivshmem-plain (memfd)', qmp2)
        for q in (qmp, qmp2):
            q.cmd('quit')
        if not guest_ok:
            print('\nthe test guest does not build (make -C tests/guest); '
                  'no guests to show')
        else:
            demo_doorbell(tmp, procs)
            demo_plain(tmp, procs)
    except KeyboardInterrupt:
        print('\ninterrupted; cleaning up')
        return 130
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print('\ndemo done')
    return 0


if __name__ == '__main__':
    sys.exit(main())
