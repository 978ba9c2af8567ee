#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The demo: start an ivshmem-server, a QEMU with ivshmem-doorbell on it and
# a QEMU with ivshmem-plain on a memfd backend, and show from QMP that both
# devices are realized, with their IDs and BARs.  Cleans up after itself.

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

OBJ = sys.argv[1]
QEMU = os.path.join(OBJ, 'qemu-system-x86_64')
SERVER = os.path.join(OBJ, 'contrib/ivshmem-server/ivshmem-server')


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
                            + args, stdout=log, stderr=subprocess.STDOUT)
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

    tmp = tempfile.mkdtemp(prefix='ivshmem-demo-')
    procs = []
    try:
        sock = os.path.join(tmp, 'ivshmem.sock')
        server = subprocess.Popen([SERVER, '-S', sock, '-l', '4M', '-n', '2'],
                                  stdout=open(os.path.join(tmp, 'server.log'), 'w'),
                                  stderr=subprocess.STDOUT)
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
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print('\ndemo done')
    return 0


if __name__ == '__main__':
    sys.exit(main())
