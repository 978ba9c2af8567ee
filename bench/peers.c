/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Simulated ivshmem peers for the benchmarks: connects N clients to an
 * ivshmem server one after the other, all driven by one epoll loop, so the
 * peers already connected keep draining their sockets (reading and closing
 * every fd they get) while the next one joins.  A peer has joined when it
 * has received its own ID with an eventfd once per vector.
 *
 *   peers SOCKET N VECTORS [SERVER_PID] [--hold] [--timeout SECONDS]
 *
 * Prints, one per line:
 *   rss_before KB             the server's VmRSS before the first connect
 *   peer I ID MICROSECONDS    connect() to own last eventfd, per peer
 *   fail I REASON             the first peer that could not join; stop
 *   total MICROSECONDS        first connect() to the last peer's join
 *   rss_after KB              the server's VmRSS after the last join
 *   ready                     with --hold: then keeps draining until stdin
 *                             reaches EOF (or a line is read), then exits
 * Exits 0 also when a peer failed: a refusing server is a result.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct peer {
    int fd;
    int64_t id;             /* own ID, -2 until received */
    unsigned nmsg;          /* messages received */
    unsigned own_fds;       /* own ID with an fd: own vectors */
    int joined;
    int dead;
};

static struct peer *peers;
static int nvec, epfd;
static long server_pid;

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

static long rss_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    if (server_pid <= 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "/proc/%ld/status", server_pid);
    f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = atol(line + 6);
        }
    }
    fclose(f);
    return kb;
}

/*
 * Reads what peer p has, one 8-byte message per recvmsg() so that each fd
 * stays with its message.  Returns -1 on EOF or error (reason in *why).
 */
static int drain(struct peer *p, const char **why)
{
    for (;;) {
        int64_t msg;
        char cbuf[CMSG_SPACE(sizeof(int) * 4)];
        struct iovec iov = { &msg, sizeof(msg) };
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
        };
        ssize_t n = recvmsg(p->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        int got_fd = 0;

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            *why = strerror(errno);
            return -1;
        }
        if (n == 0) {
            *why = "the server closed the connection";
            return -1;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
             c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *fds = (int *)CMSG_DATA(c);
                for (int j = 0; j < k; j++) {
                    close(fds[j]);
                    got_fd = 1;
                }
            }
        }
        if (n != sizeof(msg)) {
            /* A short read: the rest follows (no fd is attached to it). */
            size_t have = n;
            while (have < sizeof(msg)) {
                ssize_t m = recv(p->fd, (char *)&msg + have,
                                 sizeof(msg) - have, 0);
                if (m <= 0) {
                    *why = "short message";
                    return -1;
                }
                have += m;
            }
        }
        p->nmsg++;
        if (p->nmsg == 2) {
            p->id = msg;
        } else if (p->nmsg > 3 && msg == p->id && got_fd) {
            if (++p->own_fds == (unsigned)nvec) {
                p->joined = 1;
            }
        }
    }
}

static void run_loop(int timeout_ms, const char **why, int *bad)
{
    struct epoll_event ev[256];
    int n = epoll_wait(epfd, ev, 256, timeout_ms);

    for (int i = 0; i < n; i++) {
        long k = ev[i].data.u64;
        struct peer *p;

        if (k < 0) {
            continue;                       /* stdin, handled by caller */
        }
        p = &peers[k];
        if (!p->dead && drain(p, why) < 0) {
            p->dead = 1;
            epoll_ctl(epfd, EPOLL_CTL_DEL, p->fd, NULL);
            if (!p->joined && *bad < 0) {
                *bad = k;
            }
        }
    }
}

int main(int argc, char **argv)
{
    const char *path, *why = NULL;
    int n, hold = 0, bad = -1, timeout_s = 10;
    struct rlimit rl;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint64_t t_start, t_last = 0;
    int joined = 0;

    if (argc < 4) {
        fprintf(stderr, "usage: peers SOCKET N VECTORS [SERVER_PID] [--hold]"
                " [--timeout S]\n");
        return 2;
    }
    path = argv[1];
    n = atoi(argv[2]);
    nvec = atoi(argv[3]);
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--hold")) {
            hold = 1;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            timeout_s = atoi(argv[++i]);
        } else {
            server_pid = atol(argv[i]);
        }
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
    peers = calloc(n + 1, sizeof(*peers));
    epfd = epoll_create1(EPOLL_CLOEXEC);

    printf("rss_before %ld\n", rss_kb());
    t_start = now_us();
    for (int i = 0; i < n; i++) {
        struct peer *p = &peers[i];
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        uint64_t t0 = now_us(), end = t0 + timeout_s * 1000000ull;

        p->id = -2;
        p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p->fd < 0) {
            printf("fail %d socket: %s\n", i, strerror(errno));
            break;
        }
        if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            printf("fail %d connect: %s\n", i, strerror(errno));
            close(p->fd);
            p->dead = 1;
            break;
        }
        epoll_ctl(epfd, EPOLL_CTL_ADD, p->fd, &ev);
        while (!p->joined && bad < 0) {
            uint64_t t = now_us();
            if (t >= end) {
                break;
            }
            run_loop((end - t) / 1000 + 1, &why, &bad);
        }
        if (bad >= 0) {
            printf("fail %d peer %d: %s\n", i, bad, why);
            break;
        }
        if (!p->joined) {
            printf("fail %d no own eventfds within %d s (got %u messages)\n",
                   i, timeout_s, p->nmsg);
            break;
        }
        t_last = now_us();
        printf("peer %d %lld %llu\n", i, (long long)p->id,
               (unsigned long long)(t_last - t0));
        joined++;
    }
    /* Let the last broadcast settle before measuring the server. */
    for (int k = 0; k < 20; k++) {
        run_loop(5, &why, &bad);
    }
    printf("joined %d\n", joined);
    if (joined) {
        printf("total %llu\n", (unsigned long long)(t_last - t_start));
    }
    printf("rss_after %ld\n", rss_kb());
    if (hold) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = -1 };

        epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
        printf("ready\n");
        fflush(stdout);
        for (;;) {
            struct epoll_event got[256];
            int m = epoll_wait(epfd, got, 256, -1);
            int quit = 0;

            for (int i = 0; i < m; i++) {
                long k = got[i].data.u64;
                if (k < 0) {
                    quit = 1;
                } else if (!peers[k].dead && drain(&peers[k], &why) < 0) {
                    peers[k].dead = 1;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, peers[k].fd, NULL);
                }
            }
            if (quit) {
                break;
            }
        }
    }
    fflush(stdout);
    return 0;
}
