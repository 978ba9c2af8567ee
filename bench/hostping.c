/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host-to-guest doorbell round trips for the benchmarks: a host peer of an
 * ivshmem server that plays "ping" of the test guest's protocol
 * (tests/guest/README.rst) against a guest running role=pong, and times
 * each round trip: from ringing the guest's eventfd to its answer on ours.
 *
 *   hostping SOCKET VECTORS COUNT [TIMEOUT_S]
 *
 * Prints one round-trip time in nanoseconds per line, then "errors N" (bad
 * or missing answers).  Exits 1 if the guest never shows up or stops
 * answering within TIMEOUT_S (default 30).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_PEERS       65536
#define MAX_VEC         16
#define SHM_MAGIC       0x48535649

struct side { volatile uint32_t magic, id, vectors, count; };
struct msg { volatile uint32_t seq, vector, payload, posted; };
struct shm {
    struct side side[2];
    uint32_t host_flag, pad[7];
    struct msg msg[2];
};

static int sock, nvec, shm_fd = -1;
static int64_t own_id = -1;
static unsigned nmsg;
static int (*peer_fds)[MAX_VEC];   /* [id][vector], -1 if none */
static int peer_nfd[MAX_PEERS];

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void fail(const char *what)
{
    fprintf(stderr, "hostping: %s\n", what);
    exit(1);
}

/* Handles one server message; returns 0 when nothing is waiting. */
static int receive_one(int wait_ms)
{
    struct pollfd pfd = { sock, POLLIN, 0 };
    int64_t m;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &m, sizeof(m) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    int fd = -1;
    ssize_t n;

    if (poll(&pfd, 1, wait_ms) <= 0) {
        return 0;
    }
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    if (n != sizeof(m)) {
        fail("the server closed the connection or sent a short message");
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        }
    }
    nmsg++;
    if (nmsg == 2) {
        own_id = m;
    } else if (m == -1 && fd >= 0) {
        shm_fd = fd;
    } else if (m >= 0 && m < MAX_PEERS) {
        if (fd < 0) {                       /* disconnect (or marker) */
            for (int v = 0; v < peer_nfd[m]; v++) {
                close(peer_fds[m][v]);
            }
            peer_nfd[m] = 0;
        } else if (peer_nfd[m] < MAX_VEC) {
            peer_fds[m][peer_nfd[m]++] = fd;
        } else {
            close(fd);
        }
    } else if (fd >= 0) {
        close(fd);
    }
    return 1;
}

static uint32_t payload(uint32_t slot, uint32_t i)
{
    return i * 0x9e3779b1u ^ (slot ? 0xc0ffee00u : 0x00beef00u);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct shm *shm;
    uint32_t count, guest, errors = 0;
    uint64_t *rtt, end;
    int timeout_s;

    if (argc < 4) {
        fprintf(stderr, "usage: hostping SOCKET VECTORS COUNT [TIMEOUT_S]\n");
        return 2;
    }
    nvec = atoi(argv[2]);
    count = atoi(argv[3]);
    timeout_s = argc > 4 ? atoi(argv[4]) : 30;
    if (nvec < 1 || nvec > MAX_VEC) {
        fail("bad vector count");
    }
    peer_fds = calloc(MAX_PEERS, sizeof(*peer_fds));
    rtt = calloc(count, sizeof(*rtt));
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
    if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fail(strerror(errno));
    }
    end = now_ns() + timeout_s * 1000000000ull;
    while (own_id < 0 || shm_fd < 0 || peer_nfd[own_id] < nvec) {
        if (now_ns() > end) {
            fail("no complete handshake from the server");
        }
        receive_one(100);
    }
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    if (shm == MAP_FAILED) {
        fail("cannot map the shared memory");
    }
    shm->side[0].id = own_id;
    shm->side[0].vectors = nvec;
    shm->side[0].count = count;
    __sync_synchronize();
    shm->side[0].magic = SHM_MAGIC;
    /* Wait for the guest: its magic, and its eventfds from the server. */
    for (;;) {
        if (now_ns() > end) {
            fail("the guest never showed up");
        }
        while (receive_one(0)) {
        }
        if (shm->side[1].magic == SHM_MAGIC &&
            shm->side[1].id < MAX_PEERS &&
            peer_nfd[shm->side[1].id] >= nvec) {
            break;
        }
        receive_one(10);
    }
    guest = shm->side[1].id;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t v = i % nvec;
        uint64_t one = 1, t0, got;
        struct pollfd pfd = { peer_fds[own_id][v], POLLIN, 0 };

        shm->msg[0].seq = i;
        shm->msg[0].vector = v;
        shm->msg[0].payload = payload(0, i);
        __sync_synchronize();
        shm->msg[0].posted = i + 1;
        __sync_synchronize();
        t0 = now_ns();
        if (write(peer_fds[guest][v], &one, sizeof(one)) != sizeof(one)) {
            fail("cannot ring the guest");
        }
        if (poll(&pfd, 1, timeout_s * 1000) != 1) {
            fail("the guest stopped answering");
        }
        rtt[i] = now_ns() - t0;
        if (read(pfd.fd, &got, sizeof(got)) != sizeof(got)) {
            fail("eventfd read");
        }
        __sync_synchronize();
        if (shm->msg[1].posted != i + 1 || shm->msg[1].seq != i ||
            shm->msg[1].payload != payload(1, i)) {
            errors++;
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        printf("%llu\n", (unsigned long long)rtt[i]);
    }
    printf("errors %u\n", errors);
    return 0;
}
