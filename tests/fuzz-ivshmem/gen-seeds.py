#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Write the seed corpus of the ivshmem fuzz targets into
# tests/fuzz-ivshmem/corpus/{client,server}/: a handful of inputs that
# walk the protocol end to end, so that the fuzzer starts from a
# complete handshake instead of having to discover one.  The input
# formats are described in README.rst.  Re-run after changing a format:
#   tests/fuzz-ivshmem/gen-seeds.py

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz-client: header bits, fd kinds, record builders.
H_SOCKET, H_NOTIFY, H_EOF, H_COMPARE_ALL = 1, 2, 4, 8
FD_NONE, FD_EVENTFD, FD_MEMFD_4K, FD_MEMFD_64K = 0, 1, 2, 3
FD_MEMFD_ODD, FD_MEMFD_EMPTY, FD_PIPE_READ, FD_SOCKET_ALONE = 4, 5, 6, 7


def msg(val, kind=FD_NONE, extra=0, query=None):
    """An int16 message; extra is an index into {0, 1, 2, 5} extra fds."""
    ctrl = 0 | kind << 2 | extra << 5 | (0x80 if query is not None else 0)
    out = bytes([ctrl]) + struct.pack('<h', val)
    return out + (bytes([query]) if query is not None else b'')


def raw(val, kind=FD_NONE):
    return bytes([1 | kind << 2]) + struct.pack('<q', val)


def chunk(data, kind=FD_NONE):
    return bytes([2, len(data), kind]) + data


def split(val, at, kind=FD_NONE, kind2=FD_NONE):
    return bytes([3 | kind << 2]) + struct.pack('<h', val) + \
        bytes([kind2 << 4 | at])


Q_RING_OWN = 0 | 4          # ring own vector 0
Q_WAIT = 1                  # wait on own vector 0
Q_SETUP_QUIET0 = 2 | 4      # wait_setup, quiet 0 ms
Q_COMPARE = 3


def handshake(own, peers=(), vectors=1, marker=0):
    out = msg(0) + msg(own) + msg(-1, FD_MEMFD_4K)
    for p in peers:
        out += b''.join(msg(p, FD_EVENTFD) for _ in range(vectors))
    out += b''.join(msg(own, FD_EVENTFD) for _ in range(vectors))
    if marker is not None:
        out += msg(marker)
    return out


def client_seeds():
    full = (handshake(1, peers=(0, 2), vectors=2, marker=3) +
            msg(4, FD_EVENTFD) + msg(4, FD_EVENTFD, query=Q_RING_OWN) +
            msg(0, query=Q_WAIT) +          # peer 0 leaves
            msg(4, query=Q_COMPARE))        # peer 4 leaves
    yield 'feed-full', bytes([H_NOTIFY | H_COMPARE_ALL]) + full
    yield 'socket-full', bytes([H_SOCKET | H_NOTIFY]) + full
    yield 'socket-eof', bytes([H_SOCKET | H_EOF]) + handshake(0)
    yield 'feed-no-marker', bytes([H_NOTIFY]) + \
        handshake(3, peers=(1,), marker=None) + \
        msg(1, query=Q_SETUP_QUIET0)
    yield 'feed-split', bytes([H_NOTIFY]) + split(0, 3) + split(7, 1) + \
        split(-1, 5, FD_MEMFD_64K) + split(7, 0, FD_NONE, FD_EVENTFD) + \
        split(0, 8)
    yield 'feed-chunks', bytes([H_COMPARE_ALL]) + \
        chunk(struct.pack('<qq', 0, 2)) + \
        chunk(struct.pack('<q', -1), FD_MEMFD_4K) + \
        chunk(struct.pack('<qqq', 2, 5, 5)[:20], FD_EVENTFD)
    yield 'feed-bad-shm', bytes([H_NOTIFY]) + msg(0) + msg(1) + \
        msg(-1, FD_MEMFD_ODD) + msg(1, FD_EVENTFD) + msg(0)
    yield 'feed-two-fds', bytes([0]) + msg(0) + msg(1) + \
        msg(-1, FD_MEMFD_4K, extra=1)
    yield 'socket-many-fds', bytes([H_SOCKET]) + msg(0) + msg(1) + \
        msg(-1, FD_MEMFD_4K) + msg(1, FD_EVENTFD, extra=3)
    yield 'feed-odd-fds', bytes([H_NOTIFY]) + handshake(2) + \
        msg(5, FD_PIPE_READ) + msg(6, FD_SOCKET_ALONE) + \
        msg(7, FD_MEMFD_EMPTY) + raw(1 << 40, FD_EVENTFD)


# fuzz-server: header, ops.
def server_hdr(vectors_idx, marker=True, max_peers=3, activation=False,
               shm_dir=False, size_idx=0):
    h0 = vectors_idx | (0 if marker else 8) | (max_peers - 1) << 4
    h1 = int(activation) | int(shm_dir) << 1 | size_idx << 2
    return bytes([h0, h1])


def op(code, slot, flag=False):
    return bytes([(0x80 if flag else 0) | slot << 3 | code])


def connect(slot):
    return op(0, slot)


def read(slot, pieces=31, size=8):
    return op(0, slot) + bytes([(pieces - 1) << 3 | (size - 1)])


def send(slot, data, with_fd=False):
    return op(1, slot, with_fd) + bytes([len(data) - 1]) + data


SHUT_WR, SHUT_RD, CLOSE, VANISH, STEP, SETTLE = 2, 3, 4, 5, 6, 7


def server_seeds():
    yield 'three-peers', server_hdr(1, max_peers=4) + connect(0) + \
        connect(1) + read(0) + connect(2) + read(1) + op(CLOSE, 1) + \
        op(SETTLE, 0) + connect(3) + read(0) + read(2) + read(3, 5, 3)
    yield 'refuse', server_hdr(3, max_peers=2) + connect(0) + connect(1) + \
        connect(2) + read(2) + op(CLOSE, 0) + op(SETTLE, 0) + connect(4)
    yield 'misbehave', server_hdr(0, max_peers=8) + connect(0) + \
        connect(1) + connect(2) + connect(3) + connect(4) + \
        send(1, b'hello') + op(SHUT_WR, 2) + op(SHUT_RD, 3) + \
        op(VANISH, 5) + op(STEP, 0) + send(4, b'x', True) + op(SETTLE, 0)
    yield 'activation-dir', server_hdr(2, marker=False, activation=True,
                                       shm_dir=True, size_idx=2) + \
        connect(0) + connect(1) + read(0, 2, 3) + op(CLOSE, 0) + \
        connect(0) + op(STEP, 0)
    yield 'slow-reader', server_hdr(7, max_peers=8) + connect(0) + \
        b''.join(connect(i) + op(CLOSE, i) for i in range(1, 8)) + \
        read(0, 32, 8) + op(SETTLE, 0)


def write(kind, seeds):
    d = os.path.join(HERE, 'corpus', kind)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds:
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)


write('client', client_seeds())
write('server', server_seeds())
