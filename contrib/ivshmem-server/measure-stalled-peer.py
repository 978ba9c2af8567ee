#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Measure what one stalled peer costs ivshmem-server: start the server,
# connect a peer that never reads, let other peers join and leave, then
# print the server's open fds and resident memory.
#
#   measure-stalled-peer.py [--cycles N] [--vectors N] SERVER_BINARY

import argparse
import array
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time


def recv_msg(sock):
    """One protocol message: (value, fd or None); None at EOF."""
    fds = array.array('i')
    data = b''
    while len(data) < 8:
        buf, anc, _, _ = sock.recvmsg(8 - len(data),
                                      socket.CMSG_SPACE(fds.itemsize))
        if not buf:
            return None
        data += buf
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) -
                                      len(payload) % fds.itemsize])
    return struct.unpack('<q', data)[0], (fds[0] if fds else None)


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


def join(path, vectors, others):
    """Join, read the whole setup (closing every fd), return the socket."""
    sock = connect(path)
    for _ in range(3 + (others + 1) * vectors):
        msg = recv_msg(sock)
        if msg is None:
            sys.exit('server closed the connection during the setup')
        if msg[1] is not None:
            os.close(msg[1])
    return sock


def server_usage(pid):
    fds = len(os.listdir('/proc/%d/fd' % pid))
    with open('/proc/%d/status' % pid) as f:
        rss = next(line.split()[1] for line in f
                   if line.startswith('VmRSS:'))
    return fds, int(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cycles', type=int, default=10000)
    ap.add_argument('--vectors', type=int, default=8)
    ap.add_argument('server')
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'sock')
        log = open(os.path.join(tmp, 'log'), 'w+')
        srv = subprocess.Popen([args.server, '-S', path,
                                '-n', str(args.vectors)],
                               stderr=log)
        try:
            while not os.path.exists(path):
                if srv.poll() is not None:
                    sys.exit('server exited')
                time.sleep(0.01)
            stalled = join(path, args.vectors, 0)
            print('start: fds %d, rss %d KiB' % server_usage(srv.pid))
            refused = 0
            for _ in range(args.cycles):
                try:
                    join(path, args.vectors, 1).close()
                except (SystemExit, ConnectionError):
                    refused += 1
            # Let the server handle the last departure: it has when a
            # last connection was accepted, or refused.
            try:
                join(path, args.vectors, 1).close()
            except (SystemExit, ConnectionError):
                pass
            time.sleep(0.5)
            fds, rss = server_usage(srv.pid)
            log.seek(0)
            text = log.read()
            print('after %d join/leave cycles with one stalled peer, '
                  '%d vector(s): fds %d, rss %d KiB, %d cycle(s) refused, '
                  'stalled peer %s' %
                  (args.cycles, args.vectors, fds, rss, refused,
                   'dropped' if 'peer 0 left' in text else 'still served'))
            stalled.close()
        finally:
            srv.terminate()
            srv.wait()


if __name__ == '__main__':
    main()
