/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The floor for the server's handshake: one host process hands another
 * the eventfds of N peers and its own, V vectors each, over a unix stream
 * socket, the way the ivshmem server does in protocol version 0: one
 * 8-byte little-endian int64 (the peer's ID) per eventfd, with that fd in
 * SCM_RIGHTS.  The least any device speaking that protocol can spend on
 * receiving its peers at realize.
 *
 * The child (the "server") creates the (N+1)*V eventfds once, then, per
 * repetition, sends (N+1)*V messages, one sendmsg each, on a blocking
 * socket.  The parent (the "device") receives them with one recvmsg each
 * and keeps every fd open until the last one has arrived, as a device
 * does; it closes them after the clock has stopped.  The time runs from
 * the child's first sendmsg to the parent's last recvmsg (CLOCK_MONOTONIC,
 * the same clock for both processes).  A second variant sends a peer's V
 * fds in one message (8*V bytes, V fds in one SCM_RIGHTS), received with
 * one recvmsg each: what a protocol that batches a peer's vectors could
 * reach.  The two alternate, R repetitions each.
 *
 *   fdfloor N V R
 *
 * Prints one line per repetition and variant, times in microseconds:
 *   fdfloor: n FDS us TIME
 *   fdfloor-batched: n FDS us TIME
 */

#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 253               /* SCM_MAX_FD: fds in one SCM_RIGHTS */

union fd_cmsg {
    char buf[CMSG_SPACE(MAX_BATCH * sizeof(int))];
    struct cmsghdr align;
};

static const char *who = "fdfloor";
static int in_child;

static void leave(void)
{
    if (in_child) {
        _exit(1);                   /* not the parent's stdio buffers */
    }
    exit(1);
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", who, what, strerror(errno));
    leave();
}

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", who);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    leave();
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
        die("clock_gettime");
    }
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static long arg(const char *s, const char *name, long min, long max)
{
    int len = -1;
    long v;

    if (sscanf(s, "%ld%n", &v, &len) != 1 || s[len] || v < min || v > max) {
        fprintf(stderr, "usage: fdfloor N V R\n"
                "fdfloor: %s must be a number from %ld to %ld, not \"%s\"\n",
                name, min, max, s);
        exit(1);
    }
    return v;
}

static void write_full(int fd, const void *p, size_t len, const char *what)
{
    while (len) {
        ssize_t r = write(fd, p, len);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            die(what);
        }
        p = (const char *)p + r;
        len -= r;
    }
}

/* 0 at EOF before the first byte */
static int read_full(int fd, void *p, size_t len, const char *what)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = read(fd, (char *)p + got, len - got);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            die(what);
        }
        if (r == 0) {
            if (got) {
                fail("%s: EOF after %zu bytes", what, got);
            }
            return 0;
        }
        got += r;
    }
    return 1;
}

/*
 * The server's side: every fd of efd[0..total) to sock, batch fds per
 * message, message i carrying ID i / v for each of its fds.
 */
static void send_all(int sock, const int *efd, long total, int batch, int v)
{
    int64_t msg[MAX_BATCH];
    union fd_cmsg u;

    for (long i = 0; i < total; i += batch) {
        struct iovec iov = { .iov_base = msg, .iov_len = batch * sizeof(*msg) };
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = u.buf,
            .msg_controllen = CMSG_SPACE(batch * sizeof(int)),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        size_t left = iov.iov_len;

        for (int j = 0; j < batch; j++) {
            msg[j] = htole64((i + j) / v);
        }
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(batch * sizeof(int));
        memcpy(CMSG_DATA(c), efd + i, batch * sizeof(int));
        while (left) {
            ssize_t r = sendmsg(sock, &mh, MSG_NOSIGNAL);

            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r < 0) {
                die("sendmsg");
            }
            /* a short send: the fds went with its first byte */
            left -= r;
            iov.iov_base = (char *)iov.iov_base + r;
            iov.iov_len = left;
            mh.msg_control = NULL;
            mh.msg_controllen = 0;
        }
    }
}

/*
 * The device's side: total fds from sock into got[], batch per message,
 * one recvmsg each (more only if the kernel returns a message in parts),
 * checking the count of fds and the IDs of every message.
 */
static void recv_all(int sock, int *got, long total, int batch, int v)
{
    int64_t msg[MAX_BATCH];
    union fd_cmsg u;

    for (long n = 0; n < total; n += batch) {
        size_t want = batch * sizeof(*msg), have = 0;
        int nfds = 0;

        while (have < want) {
            struct iovec iov = {
                .iov_base = (char *)msg + have,
                .iov_len = want - have,
            };
            struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = u.buf,
                .msg_controllen = CMSG_SPACE(batch * sizeof(int)),
            };
            struct cmsghdr *c;
            ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r < 0) {
                die("recvmsg");
            }
            if (r == 0) {
                fail("the server closed the socket after %ld of %ld fds",
                     n + nfds, total);
            }
            if (mh.msg_flags & MSG_CTRUNC) {
                fail("fd %ld of %ld: control data truncated (out of fds?)",
                     n + nfds, total);
            }
            for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                long k;

                if (c->cmsg_level != SOL_SOCKET ||
                    c->cmsg_type != SCM_RIGHTS) {
                    continue;
                }
                k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                if (nfds + k > batch) {
                    fail("message at fd %ld: more than %d fds", n, batch);
                }
                memcpy(got + n + nfds, CMSG_DATA(c), k * sizeof(int));
                nfds += k;
            }
            have += r;
        }
        if (nfds != batch) {
            fail("message at fd %ld: %d fds, not %d", n, nfds, batch);
        }
        for (int j = 0; j < batch; j++) {
            if ((int64_t)le64toh(msg[j]) != (n + j) / v) {
                fail("message at fd %ld: ID %lld, not %ld", n + j,
                     (long long)le64toh(msg[j]), (n + j) / v);
            }
        }
    }
}

static void server(int sock, int go, int done, long total, int v)
{
    int *efd = malloc(total * sizeof(*efd));
    char cmd;

    who = "fdfloor (server)";
    in_child = 1;
    if (!efd) {
        die("malloc");
    }
    for (long i = 0; i < total; i++) {
        efd[i] = eventfd(0, EFD_CLOEXEC);
        if (efd[i] < 0) {
            die("eventfd");
        }
    }
    while (read_full(go, &cmd, 1, "read from the go pipe") && cmd != 'q') {
        uint64_t t0 = now_ns();

        send_all(sock, efd, total, cmd == 'b' ? v : 1, v);
        write_full(done, &t0, sizeof(t0), "write to the done pipe");
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    long n, v, reps, total;
    int sv[2], go[2], done[2], status;
    struct rlimit rl;
    int *got;
    pid_t pid;

    if (argc != 4) {
        fprintf(stderr, "usage: fdfloor N V R\n");
        return 1;
    }
    n = arg(argv[1], "N", 0, 1 << 20);
    v = arg(argv[2], "V", 1, MAX_BATCH);
    reps = arg(argv[3], "R", 1, 1 << 20);
    total = (n + 1) * v;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        die("getrlimit RLIMIT_NOFILE");
    }
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            die("raise RLIMIT_NOFILE to its hard limit");
        }
    }
    if (rl.rlim_max != RLIM_INFINITY &&
        (unsigned long long)total + 64 > rl.rlim_max) {
        fprintf(stderr, "fdfloor: (N+1)*V = %ld fds plus 64 exceed the hard "
                "RLIMIT_NOFILE of %llu\n", total,
                (unsigned long long)rl.rlim_max);
        return 1;
    }
    got = malloc(total * sizeof(*got));
    if (!got) {
        die("malloc");
    }
    /* a dead peer is an EPIPE with a message, not a silent SIGPIPE */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        die("ignore SIGPIPE");
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        die("socketpair");
    }
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0) {
        die("pipe2");
    }
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        close(sv[0]);
        close(go[1]);
        close(done[0]);
        server(sv[1], go[0], done[1], total, v);
    }
    /* only the child holds these now: its exit is an EOF here */
    if (close(sv[1]) < 0 || close(go[0]) < 0 || close(done[1]) < 0) {
        die("close");
    }

    for (long r = 0; r < reps; r++) {
        for (int batched = 0; batched < 2; batched++) {
            char cmd = batched ? 'b' : 'o';
            uint64_t t0, t1;

            write_full(go[1], &cmd, 1, "write to the go pipe");
            recv_all(sv[0], got, total, batched ? v : 1, v);
            t1 = now_ns();
            if (!read_full(done[0], &t0, sizeof(t0),
                           "read from the done pipe")) {
                fail("the server exited (repetition %ld of %ld)", r + 1,
                     reps);
            }
            for (long i = 0; i < total; i++) {
                if (close(got[i]) < 0) {
                    die("close a received fd");
                }
            }
            printf("%s: n %ld us %.1f\n",
                   batched ? "fdfloor-batched" : "fdfloor", total,
                   (t1 - t0) / 1000.0);
            fflush(stdout);
        }
    }

    write_full(go[1], "q", 1, "write to the go pipe");
    if (waitpid(pid, &status, 0) < 0) {
        die("waitpid");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "fdfloor: the server failed (status 0x%x)\n", status);
        return 1;
    }
    return 0;
}
