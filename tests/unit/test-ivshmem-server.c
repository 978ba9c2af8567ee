/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the ivshmem-server library: the exact setup sequence
 * with its setup-end marker, ID allocation, --max-peers, slow and misbehaving
 * peers, socket and shared memory life cycle, sizes, and fd leaks.
 *
 * The server runs in the test process and is driven by hand
 * (ivshmem_server_poll), so every step is deterministic; poll timeouts
 * are only upper bounds.  Each test runs in a subprocess whose temporary
 * directory the parent removes, whatever happens to the test.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <grp.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <netinet/in.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "../../contrib/ivshmem-server/ivshmem-server.h"

#define TMPDIR_ENV      "IVSHMEM_SERVER_TEST_DIR"
/* Upper bound for anything to arrive; never reached when all is well. */
#define MSG_TIMEOUT_US  (10 * G_USEC_PER_SEC)
#define MAX_TEST_VECTORS 8

typedef struct Fixture {
    const char *dir;
    char *sock_path;
    char *shm_name;             /* for the POSIX shared memory tests */
    IvshmemServerConfig cfg;
    IvshmemServer *s;
    GString *log;
} Fixture;

/* A test peer: a raw protocol reader, no client library involved. */
typedef struct TPeer {
    int sock;
    unsigned id;
    int fds[MAX_TEST_VECTORS];  /* own eventfds */
    int shm_fd;
} TPeer;

typedef struct TestCase {
    const char *path;
    void (*fn)(Fixture *f);
    bool needs_daemon;          /* runs the ivshmem-server program */
} TestCase;

static void log_cb(void *opaque, IvshmemServerLogLevel level, const char *msg)
{
    Fixture *f = opaque;

    g_string_append_printf(f->log, "%d: %s\n", level, msg);
    if (g_test_verbose()) {
        g_printerr("server: %s\n", msg);
    }
}

static void start_server(Fixture *f)
{
    f->s = ivshmem_server_new(&f->cfg, &error_abort);
}

/* Handle events until the server has nothing left to do. */
static void settle(Fixture *f)
{
    struct pollfd pfd = { .fd = ivshmem_server_get_fd(f->s), .events = POLLIN };

    while (poll(&pfd, 1, 0) > 0) {
        g_assert_true(ivshmem_server_poll(f->s, 0, &error_abort));
    }
}

static int count_fds(void)
{
    g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
    int n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir)) {
        n++;
    }
    return n;
}

static int connect_raw(Fixture *f)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(sock, >=, 0);
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), f->sock_path);
    g_assert_cmpint(connect(sock, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, 0);
    return sock;
}

/* Read what the socket holds of one message; the fd comes with it. */
static ssize_t recv_part(int sock, uint8_t *buf, size_t len, int *fd)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *cmsg;
    ssize_t ret = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    g_assert_false(mh.msg_flags & MSG_CTRUNC);
    for (cmsg = CMSG_FIRSTHDR(&mh); ret > 0 && cmsg;
         cmsg = CMSG_NXTHDR(&mh, cmsg)) {
        g_assert_cmpint(*fd, ==, -1);
        g_assert_cmpint(cmsg->cmsg_len, ==, CMSG_LEN(sizeof(int)));
        memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
    }
    return ret;
}

/* Run the server (if any) until it did something or 100 ms passed. */
static void wait_for_data(Fixture *f, int sock)
{
    struct pollfd pfd = { .fd = sock, .events = POLLIN };

    if (f->s) {
        g_assert_true(ivshmem_server_poll(f->s, 100, &error_abort));
    } else {
        g_assert_cmpint(poll(&pfd, 1, 100), >=, 0);
    }
}

/*
 * Next message from the server, running the server while none is there.
 * Returns false at end of file.
 */
static bool recv_msg(Fixture *f, int sock, int64_t *val, int *fd)
{
    int64_t deadline = g_get_monotonic_time() + MSG_TIMEOUT_US;
    uint8_t buf[IVSHMEM_MSG_SIZE];
    size_t have = 0;
    ssize_t ret;

    *fd = -1;
    while (have < sizeof(buf)) {
        ret = recv_part(sock, buf + have, sizeof(buf) - have, fd);
        if (ret > 0) {
            have += ret;
            continue;
        }
        if (ret == 0) {
            g_assert_cmpint(have, ==, 0);
            g_assert_cmpint(*fd, ==, -1);
            return false;
        }
        g_assert_cmpint(errno, ==, EAGAIN);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        wait_for_data(f, sock);
    }
    *val = ldq_le_p(buf);
    return true;
}

/* Expect @val, with an fd (returned) or without. */
static int expect_msg(Fixture *f, int sock, int64_t val, bool with_fd)
{
    int64_t got;
    int fd;

    g_assert_true(recv_msg(f, sock, &got, &fd));
    g_assert_cmpint(got, ==, val);
    if (with_fd) {
        g_assert_cmpint(fd, >=, 0);
    } else {
        g_assert_cmpint(fd, ==, -1);
    }
    return fd;
}

static void expect_eof(Fixture *f, int sock)
{
    int64_t val;
    int fd;

    g_assert_false(recv_msg(f, sock, &val, &fd));
}

static void expect_quiet(Fixture *f, int sock)
{
    char c;

    settle(f);
    g_assert_cmpint(recv(sock, &c, 1, MSG_DONTWAIT | MSG_PEEK), ==, -1);
    g_assert_cmpint(errno, ==, EAGAIN);
}

/* @n fds for @id, closed: another peer's vectors. */
static void expect_vectors(Fixture *f, int sock, unsigned id, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        close(expect_msg(f, sock, id, true));
    }
}

/*
 * Join as a new peer and check the whole setup sequence: version, own
 * ID, shared memory, every peer in @others (ascending) once per vector,
 * own vectors, then the marker (if @marker >= 0).
 */
static void tpeer_join(Fixture *f, TPeer *p, unsigned id,
                       const unsigned *others, unsigned n_others, int marker)
{
    unsigned i, nvec = f->cfg.vectors;

    *p = (TPeer) { .shm_fd = -1 };
    for (i = 0; i < MAX_TEST_VECTORS; i++) {
        p->fds[i] = -1;
    }
    p->sock = connect_raw(f);
    p->id = id;
    expect_msg(f, p->sock, IVSHMEM_PROTOCOL_VERSION, false);
    expect_msg(f, p->sock, id, false);
    p->shm_fd = expect_msg(f, p->sock, IVSHMEM_MSG_SHM, true);
    for (i = 0; i < n_others; i++) {
        expect_vectors(f, p->sock, others[i], nvec);
    }
    for (i = 0; i < nvec; i++) {
        p->fds[i] = expect_msg(f, p->sock, id, true);
    }
    if (marker >= 0) {
        expect_msg(f, p->sock, marker, false);
    }
}

static void tpeer_leave(TPeer *p)
{
    unsigned i;

    for (i = 0; i < MAX_TEST_VECTORS; i++) {
        if (p->fds[i] >= 0) {
            close(p->fds[i]);
        }
    }
    close(p->shm_fd);
    close(p->sock);
}

static void assert_log(Fixture *f, const char *text)
{
    if (!strstr(f->log->str, text)) {
        g_printerr("log:\n%s", f->log->str);
        g_assert_nonnull(strstr(f->log->str, text));
    }
}

/* Tests */

/* Two fds name the same eventfd if a write on one is read on the other. */
static void assert_same_eventfd(int writer, int reader)
{
    uint64_t val = 1;
    struct pollfd pfd = { .fd = reader, .events = POLLIN };

    g_assert_cmpint(poll(&pfd, 1, 0), ==, 0);
    g_assert_cmpint(write(writer, &val, sizeof(val)), ==, sizeof(val));
    g_assert_cmpint(poll(&pfd, 1, 0), ==, 1);
    g_assert_cmpint(read(reader, &val, sizeof(val)), ==, sizeof(val));
    g_assert_cmpint(val, ==, 1);
}

static void test_handshake(Fixture *f)
{
    g_autofree char *line = NULL;
    TPeer a, b;
    struct stat st;
    unsigned i;
    int fd;

    f->cfg.vectors = 3;
    f->cfg.shm_size = 1 * MiB;
    start_server(f);

    tpeer_join(f, &a, 0, NULL, 0, 1);
    g_assert_cmpint(fstat(a.shm_fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    expect_quiet(f, a.sock);
    /* Who it is, as the kernel says (SO_PEERCRED). */
    line = g_strdup_printf("peer 0 joined (pid %d, uid %u, gid %u)",
                           (int)getpid(), (unsigned)geteuid(),
                           (unsigned)getegid());
    assert_log(f, line);

    /* B learns A's vectors in order: the N-th fd is vector N-1. */
    b.sock = connect_raw(f);
    expect_msg(f, b.sock, IVSHMEM_PROTOCOL_VERSION, false);
    expect_msg(f, b.sock, 1, false);
    b.shm_fd = expect_msg(f, b.sock, IVSHMEM_MSG_SHM, true);
    for (i = 0; i < 3; i++) {
        fd = expect_msg(f, b.sock, 0, true);
        assert_same_eventfd(fd, a.fds[i]);
        close(fd);
    }
    for (i = 0; i < 3; i++) {
        b.fds[i] = expect_msg(f, b.sock, 1, true);
    }
    expect_msg(f, b.sock, 2, false);
    expect_quiet(f, b.sock);

    /* A is told about B, vector by vector, and gets no marker. */
    for (i = 0; i < 3; i++) {
        fd = expect_msg(f, a.sock, 1, true);
        assert_same_eventfd(fd, b.fds[i]);
        close(fd);
    }
    expect_quiet(f, a.sock);

    tpeer_leave(&b);
    expect_msg(f, a.sock, 1, false);
    expect_quiet(f, a.sock);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, 1);
    tpeer_leave(&a);
}

/* The marker is the lowest ID that is neither ours nor a peer's. */
static void test_marker_value(Fixture *f)
{
    TPeer p[4];
    const unsigned others[] = { 0, 2 };

    start_server(f);
    tpeer_join(f, &p[0], 0, NULL, 0, 1);
    tpeer_join(f, &p[1], 1, (unsigned[]){ 0 }, 1, 2);
    tpeer_join(f, &p[2], 2, (unsigned[]){ 0, 1 }, 2, 3);
    tpeer_leave(&p[1]);
    settle(f);
    /* Gets the next ID, 3; 0 and 2 are peers: the marker is 1. */
    tpeer_join(f, &p[3], 3, others, 2, 1);
    tpeer_leave(&p[3]);
    tpeer_leave(&p[2]);
    tpeer_leave(&p[0]);
}

static void test_no_marker(Fixture *f)
{
    TPeer a, b;

    f->cfg.setup_marker = false;
    f->cfg.vectors = 2;
    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, -1);
    expect_quiet(f, a.sock);
    tpeer_join(f, &b, 1, (unsigned[]){ 0 }, 1, -1);
    expect_quiet(f, b.sock);
    expect_vectors(f, a.sock, 1, 2);
    tpeer_leave(&b);
    expect_msg(f, a.sock, 1, false);
    tpeer_leave(&a);
}

/* Connect and read only as far as the ID the server gives. */
static int join_expect_id(Fixture *f, unsigned id)
{
    int sock = connect_raw(f);

    expect_msg(f, sock, IVSHMEM_PROTOCOL_VERSION, false);
    expect_msg(f, sock, id, false);
    return sock;
}

/* By default IDs increase: one that a peer left is not given again. */
static void test_id_increasing(Fixture *f)
{
    int sock[7];
    unsigned i;

    start_server(f);
    /* A fresh server starts at 0 (a master doorbell needs ID 0). */
    for (i = 0; i < 4; i++) {
        sock[i] = join_expect_id(f, i);
    }
    close(sock[2]);
    close(sock[1]);
    settle(f);
    sock[4] = join_expect_id(f, 4);
    sock[5] = join_expect_id(f, 5);
    close(sock[0]);
    settle(f);
    sock[6] = join_expect_id(f, 6);
    for (i = 3; i < 7; i++) {
        close(sock[i]);
    }
    settle(f);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, 0);
    /* Also with nobody connected: the count goes on. */
    sock[0] = join_expect_id(f, 7);
    close(sock[0]);
    settle(f);
}

/* Read and drop what the socket holds now, closing the fds. */
static void discard_pending(int sock)
{
    uint8_t buf[IVSHMEM_MSG_SIZE];
    int fd = -1;

    while (recv_part(sock, buf, sizeof(buf), &fd) > 0) {
        if (fd >= 0) {
            close(fd);
            fd = -1;
        }
    }
}

/* After ID 65535 comes 0 again, skipping the IDs still in use. */
static void test_id_wrap(Fixture *f)
{
    int keep[3], sock;
    unsigned id;

    start_server(f);
    keep[0] = join_expect_id(f, 0);
    sock = join_expect_id(f, 1);
    keep[1] = join_expect_id(f, 2);
    close(sock);
    settle(f);
    for (id = 3; id < IVSHMEM_PEER_ID_COUNT; id++) {
        sock = join_expect_id(f, id);
        close(sock);
        settle(f);
        discard_pending(keep[0]);
        discard_pending(keep[1]);
    }
    /* 0 and 2 are live: the next IDs are 1 and 3. */
    sock = join_expect_id(f, 1);
    keep[2] = join_expect_id(f, 3);
    close(sock);
    settle(f);
    /* 1 is free again, but the count goes on from 3. */
    sock = join_expect_id(f, 4);
    close(sock);
    close(keep[0]);
    close(keep[1]);
    close(keep[2]);
    settle(f);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, 0);
}

/* With reuse_ids (--reuse-ids), the lowest free ID is given. */
static void test_id_reuse(Fixture *f)
{
    int sock[5];
    unsigned i;

    f->cfg.reuse_ids = true;
    start_server(f);
    for (i = 0; i < 4; i++) {
        sock[i] = join_expect_id(f, i);
    }
    close(sock[2]);
    close(sock[1]);
    settle(f);
    /* Lowest free first: 1, then 2, then 4. */
    sock[1] = join_expect_id(f, 1);
    sock[2] = join_expect_id(f, 2);
    sock[4] = join_expect_id(f, 4);
    for (i = 0; i < 5; i++) {
        close(sock[i]);
    }
    settle(f);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, 0);
}

static void test_max_peers(Fixture *f)
{
    TPeer a, b;
    int sock;

    f->cfg.max_peers = 2;
    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    tpeer_join(f, &b, 1, (unsigned[]){ 0 }, 1, 2);

    /* The third is closed before any message; nobody hears of it. */
    sock = connect_raw(f);
    expect_eof(f, sock);
    close(sock);
    assert_log(f, "--max-peers 2");
    expect_vectors(f, a.sock, 1, 1);
    expect_quiet(f, a.sock);
    expect_quiet(f, b.sock);

    /* Room again once a peer has left; the new one gets ID 2. */
    tpeer_leave(&a);
    expect_msg(f, b.sock, 0, false);
    tpeer_join(f, &a, 2, (unsigned[]){ 1 }, 1, 0);
    tpeer_leave(&a);
    tpeer_leave(&b);
}

/*
 * Join with more vectors than a TPeer keeps, reading the whole setup and
 * closing every fd: the other peers are 0 .. @n_others - 1.
 */
static int join_and_drain(Fixture *f, unsigned id, unsigned n_others,
                          unsigned marker)
{
    int sock = connect_raw(f);
    unsigned i;

    expect_msg(f, sock, IVSHMEM_PROTOCOL_VERSION, false);
    expect_msg(f, sock, id, false);
    close(expect_msg(f, sock, IVSHMEM_MSG_SHM, true));
    for (i = 0; i < n_others; i++) {
        expect_vectors(f, sock, i, f->cfg.vectors);
    }
    expect_vectors(f, sock, id, f->cfg.vectors);
    expect_msg(f, sock, marker, false);
    return sock;
}

/*
 * A peer that does not read while others join gets every message, in
 * order, once it reads: the server queues what the socket refuses.
 */
static void test_slow_peer(Fixture *f)
{
    enum { N = 40, NVEC = 64 };
    int slow, sock[N + 1];
    unsigned i;

    f->cfg.vectors = NVEC;
    start_server(f);
    slow = join_and_drain(f, 0, 0, 1);
    for (i = 1; i <= N; i++) {
        sock[i] = join_and_drain(f, i, i, i + 1);
    }
    settle(f);
    /* The socket buffer is full: the rest waits in the server's queue. */
    g_assert_cmpint(ivshmem_server_peer_backlog(f->s, 0), >, 0);
    for (i = 1; i <= N; i++) {
        expect_vectors(f, slow, i, NVEC);
    }
    expect_quiet(f, slow);
    g_assert_cmpint(ivshmem_server_peer_backlog(f->s, 0), ==, 0);
    for (i = 1; i <= N; i++) {
        close(sock[i]);
        settle(f);
        expect_msg(f, slow, i, false);
    }
    close(slow);
}

/*
 * Read what a peer was sent after its setup and check that it makes
 * sense: every peer's vectors complete and in one run, and a departure
 * only for a peer it knows.  Returns the number of peers it heard of.
 */
static unsigned check_stream(Fixture *f, int sock, unsigned nvec)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
    unsigned heard = 0, count = 0;
    int64_t val, last = -1;
    struct pollfd pfd = { .fd = sock, .events = POLLIN };
    int fd;

    settle(f);
    while (poll(&pfd, 1, 0) == 1) {
        g_assert_true(recv_msg(f, sock, &val, &fd));
        g_assert_cmpint(val, >=, 0);
        if (fd >= 0) {
            close(fd);
            if (val != last) {
                /* A new run: the last one was complete. */
                g_assert_true(last < 0 || count == nvec);
                g_assert_false(g_hash_table_contains(seen,
                                                     GINT_TO_POINTER(val)));
                g_hash_table_add(seen, GINT_TO_POINTER(val));
                last = val;
                count = 0;
                heard++;
            }
            count++;
            continue;
        }
        g_assert_true(g_hash_table_contains(seen, GINT_TO_POINTER(val)));
        g_assert_true(val != last || count == nvec);
        g_hash_table_remove(seen, GINT_TO_POINTER(val));
    }
    return heard;
}

/*
 * A peer that leaves while its vectors still wait in a new peer's setup
 * is withdrawn from that setup: the new peer never hears of it, and the
 * marker, still queued, becomes the lowest ID the new peer does not know.
 */
static void test_setup_withdraw(Fixture *f)
{
    enum { N_OLD = 4, NVEC = 128 };
    int old[N_OLD], sock;
    unsigned i, j;

    f->cfg.vectors = NVEC;
    start_server(f);
    for (i = 0; i < N_OLD; i++) {
        old[i] = join_and_drain(f, i, i, i + 1);
        for (j = 0; j < i; j++) {
            expect_vectors(f, old[j], i, NVEC);
        }
    }
    sock = connect_raw(f);
    settle(f);
    /* Nothing of the last old peer's vectors has gone out yet. */
    g_assert_cmpint(ivshmem_server_peer_backlog(f->s, N_OLD), >=,
                    2 * NVEC + 1);
    close(old[N_OLD - 1]);
    settle(f);
    for (i = 0; i < N_OLD - 1; i++) {
        expect_msg(f, old[i], N_OLD - 1, false);
    }

    expect_msg(f, sock, IVSHMEM_PROTOCOL_VERSION, false);
    expect_msg(f, sock, N_OLD, false);
    close(expect_msg(f, sock, IVSHMEM_MSG_SHM, true));
    for (i = 0; i < N_OLD - 1; i++) {
        expect_vectors(f, sock, i, NVEC);
    }
    expect_vectors(f, sock, N_OLD, NVEC);
    expect_msg(f, sock, N_OLD - 1, false);      /* the marker */
    expect_quiet(f, sock);
    /* Its setup is out: it is announced. */
    for (i = 0; i < N_OLD - 1; i++) {
        expect_vectors(f, old[i], N_OLD, NVEC);
        expect_quiet(f, old[i]);
    }
    for (i = 0; i < N_OLD - 1; i++) {
        close(old[i]);
    }
    close(sock);
}

/*
 * A peer that stops reading while others come and go holds no fd of a
 * peer that has left: an announcement that was not sent yet is dropped
 * with its peer, and so is the departure.  What it does get is
 * consistent.
 */
static void test_stalled_peer(Fixture *f)
{
    enum { NVEC = 8, CYCLES = 4000 };
    TPeer stalled, p;
    long backlog;
    int before;
    unsigned i;

    f->cfg.vectors = NVEC;
    start_server(f);
    tpeer_join(f, &stalled, 0, NULL, 0, 1);
    /* Fill its socket, so that the server has to queue. */
    for (i = 1; ivshmem_server_peer_backlog(f->s, 0) == 0; i++) {
        g_assert_cmpuint(i, <, CYCLES);
        tpeer_join(f, &p, i, (unsigned[]){ 0 }, 1, i == 1 ? 2 : 1);
        tpeer_leave(&p);
        settle(f);
    }
    backlog = ivshmem_server_peer_backlog(f->s, 0);
    before = count_fds();
    for (; i < CYCLES; i++) {
        tpeer_join(f, &p, i, (unsigned[]){ 0 }, 1, 1);
        tpeer_leave(&p);
        settle(f);
        g_assert_cmpint(ivshmem_server_peer_backlog(f->s, 0), ==, backlog);
    }
    g_assert_cmpint(count_fds(), <=, before);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, 1);
    /* It hears of the peers its socket took, not of the later ones. */
    g_assert_cmpuint(check_stream(f, stalled.sock, NVEC), <, CYCLES / 2);
    tpeer_leave(&stalled);
}

/*
 * Beyond one message per vector of every connected peer, a peer may
 * leave only max_backlog messages unread; past that it is dropped.
 */
static void test_backlog_limit(Fixture *f)
{
    enum { N = 300, LIMIT = 8 };
    int stalled, sock[N + 1];
    long queued;
    unsigned i;

    f->cfg.max_backlog = LIMIT;
    start_server(f);
    stalled = join_and_drain(f, 0, 0, 1);
    for (i = 1; i <= N; i++) {
        sock[i] = join_and_drain(f, i, i, i + 1);
    }
    settle(f);
    /* Announcements of peers that are there: within the limit. */
    queued = ivshmem_server_peer_backlog(f->s, 0);
    g_assert_cmpint(queued, >, 0);
    /*
     * N - queued announcements were sent, so as many departures must
     * wait once the peers have left; more than the limit allows with one
     * peer of one vector: that vector, 4 setup messages and LIMIT.
     */
    g_assert_cmpint(N - queued, >, 1 + 4 + LIMIT);
    for (i = 1; i <= N; i++) {
        close(sock[i]);
        settle(f);
    }
    g_assert_cmpint(ivshmem_server_peer_backlog(f->s, 0), ==, -1);
    assert_log(f, "peer 0: left more than");
    close(stalled);
}

/*
 * The others hear of a new peer once its setup burst has left the
 * server's queue: a burst too big for the socket goes out as the peer
 * reads it, and announcing the peer before would make it wait for as
 * many messages to the others.  A peer that leaves before its burst is
 * out was never announced, so nobody hears that it left either.
 */
static void test_announce_after_setup(Fixture *f)
{
    enum { N_OLD = 4, NVEC = 128 };
    int old[N_OLD], sock;
    unsigned i, j;

    f->cfg.vectors = NVEC;
    start_server(f);
    for (i = 0; i < N_OLD; i++) {
        old[i] = join_and_drain(f, i, i, i + 1);
        for (j = 0; j < i; j++) {
            expect_vectors(f, old[j], i, NVEC);
        }
    }

    /* 3 + 5 * 128 + 1 messages: far more than a socket buffer holds. */
    sock = connect_raw(f);
    settle(f);
    g_assert_cmpint(ivshmem_server_peer_backlog(f->s, N_OLD), >, 0);
    for (i = 0; i < N_OLD; i++) {
        expect_quiet(f, old[i]);
    }
    close(sock);
    settle(f);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, N_OLD);
    for (i = 0; i < N_OLD; i++) {
        expect_quiet(f, old[i]);
    }

    /* The next one reads its burst and is announced. */
    sock = join_and_drain(f, N_OLD + 1, N_OLD, N_OLD);
    for (i = 0; i < N_OLD; i++) {
        expect_vectors(f, old[i], N_OLD + 1, NVEC);
        expect_quiet(f, old[i]);
    }
    close(sock);
    for (i = 0; i < N_OLD; i++) {
        expect_msg(f, old[i], N_OLD + 1, false);
        close(old[i]);
    }
}

/*
 * select() cannot watch fds from FD_SETSIZE (1024) on: push every fd of
 * the server and its peers above that and check that all still works.
 */
static void test_high_fds(Fixture *f)
{
    const int n = FD_SETSIZE + 16;
    g_autofree int *filler = g_new(int, n);
    struct rlimit rl;
    TPeer a, b;
    int i;

    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    if (rl.rlim_cur < 2 * n) {
        g_test_skip("the fd limit is too low");
        return;
    }
    for (i = 0; i < n; i++) {
        filler[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(filler[i], >=, 0);
    }
    start_server(f);
    g_assert_cmpint(ivshmem_server_get_fd(f->s), >=, FD_SETSIZE);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    tpeer_join(f, &b, 1, (unsigned[]){ 0 }, 1, 2);
    g_assert_cmpint(b.sock, >=, FD_SETSIZE);
    expect_vectors(f, a.sock, 1, 1);
    tpeer_leave(&b);
    expect_msg(f, a.sock, 1, false);
    tpeer_leave(&a);
    for (i = 0; i < n; i++) {
        close(filler[i]);
    }
}

/* A peer that sends, half-closes or leaves mid-setup is dropped. */
static void test_bad_peers(Fixture *f)
{
    TPeer a, b;
    int64_t val;
    int fd;

    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, 1);

    tpeer_join(f, &b, 1, (unsigned[]){ 0 }, 1, 2);
    g_assert_cmpint(send(b.sock, "x", 1, 0), ==, 1);
    expect_eof(f, b.sock);
    expect_vectors(f, a.sock, 1, 1);
    expect_msg(f, a.sock, 1, false);
    assert_log(f, "sent data");
    tpeer_leave(&b);

    tpeer_join(f, &b, 2, (unsigned[]){ 0 }, 1, 1);
    g_assert_cmpint(shutdown(b.sock, SHUT_WR), ==, 0);
    expect_eof(f, b.sock);
    expect_vectors(f, a.sock, 2, 1);
    expect_msg(f, a.sock, 2, false);
    tpeer_leave(&b);

    /* Gone after two messages of its setup. */
    b.sock = connect_raw(f);
    g_assert_true(recv_msg(f, b.sock, &val, &fd));
    g_assert_true(recv_msg(f, b.sock, &val, &fd));
    close(b.sock);
    settle(f);
    expect_vectors(f, a.sock, 3, 1);
    expect_msg(f, a.sock, 3, false);
    expect_quiet(f, a.sock);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, 1);
    tpeer_leave(&a);
}

static void test_stale_socket(Fixture *f)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    TPeer a;

    /* A socket file that nobody listens on, as a crashed server leaves. */
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), f->sock_path);
    g_assert_cmpint(bind(sock, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    close(sock);
    g_assert_true(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    tpeer_leave(&a);
}

static void test_live_socket(Fixture *f)
{
    g_autoptr(IvshmemServer) other = NULL;
    Error *err = NULL;
    TPeer a;

    start_server(f);
    other = ivshmem_server_new(&f->cfg, &err);
    g_assert_null(other);
    g_assert_nonnull(strstr(error_get_pretty(err), "another server is "
                            "running"));
    error_free(err);
    /* The running server keeps its socket and still serves. */
    g_assert_true(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
    settle(f);
    /* The other server's probe was peer 0. */
    tpeer_join(f, &a, 1, NULL, 0, 0);
    tpeer_leave(&a);
}

/* The socket gets the mode and group asked for, whatever the umask. */
static void test_socket_access(Fixture *f)
{
    gid_t gid = geteuid() == 0 ? 1 : getegid();
    struct stat st;
    mode_t old;
    TPeer a;

    old = umask(0);
    f->cfg.socket_mode = 0660;
    f->cfg.socket_gid = gid;
    start_server(f);
    g_assert_cmpint(umask(old), ==, 0);
    g_assert_cmpint(lstat(f->sock_path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 07777, ==, 0660);
    g_assert_cmpint(st.st_gid, ==, gid);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    tpeer_leave(&a);
    g_clear_pointer(&f->s, ivshmem_server_free);

    /* Without them, as the umask says. */
    old = umask(027);
    f->cfg.socket_mode = -1;
    f->cfg.socket_gid = -1;
    start_server(f);
    umask(old);
    g_assert_cmpint(lstat(f->sock_path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0750);
}

static void test_not_a_socket(Fixture *f)
{
    Error *err = NULL;

    g_assert_true(g_file_set_contents(f->sock_path, "data", -1, NULL));
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not a socket"));
    error_free(err);
    g_assert_true(g_file_test(f->sock_path, G_FILE_TEST_IS_REGULAR));
}

static void assert_size_error(const char *str, const char *text)
{
    Error *err = NULL;
    uint64_t size = 0;

    g_assert_false(ivshmem_server_parse_size(str, &size, &err));
    if (!strstr(error_get_pretty(err), text)) {
        g_printerr("'%s': %s\n", str, error_get_pretty(err));
        g_assert_not_reached();
    }
    error_free(err);
}

static void test_parse_size(Fixture *f)
{
    uint64_t size;

    g_assert_true(ivshmem_server_parse_size("1M", &size, &error_abort));
    g_assert_cmpuint(size, ==, 1 * MiB);
    g_assert_true(ivshmem_server_parse_size("2G", &size, &error_abort));
    g_assert_cmpuint(size, ==, 2 * GiB);
    g_assert_true(ivshmem_server_parse_size("8G", &size, &error_abort));
    g_assert_cmpuint(size, ==, 8 * GiB);
    g_assert_true(ivshmem_server_parse_size("1T", &size, &error_abort));
    g_assert_cmpuint(size, ==, 1 * TiB);
    g_assert_true(ivshmem_server_parse_size("64T", &size, &error_abort));
    g_assert_cmpuint(size, ==, 64 * TiB);
    assert_size_error("3M", "nearest valid sizes are 2 MiB and 4 MiB");
    assert_size_error("5G", "nearest valid sizes are 4 GiB and 8 GiB");
    assert_size_error("0", "too small");
    /* What was given, exactly, not rounded to the minimum itself. */
    assert_size_error("4095", "size 4095 bytes is too small: the minimum "
                      "is 4 KiB");
    assert_size_error("1536K", "size 1536 KiB is not a power of two");
    /* Sizes that no peer can map are refused, not served. */
    assert_size_error("128T", "size 128 TiB is too large: the maximum is "
                      "64 TiB");
    assert_size_error("1P", "size 1 PiB is too large");
    assert_size_error("1E", "size 1 EiB is too large");
    assert_size_error("8E", "size 8 EiB is too large");
    assert_size_error("16E", "size '16E' is too large: the maximum is "
                      "64 TiB");
    assert_size_error("12abc", "invalid size '12abc': use a number");
    assert_size_error("-4M", "invalid size");
}

/* Create a server of @size and check the size a peer sees. */
static void check_served_size(Fixture *f, uint64_t size)
{
    struct stat st;
    TPeer a;

    f->cfg.shm_size = size;
    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    g_assert_cmpint(fstat(a.shm_fd, &st), ==, 0);
    g_assert_cmpuint(st.st_size, ==, size);
    tpeer_leave(&a);
    g_clear_pointer(&f->s, ivshmem_server_free);
}

static void test_sizes(Fixture *f)
{
    g_autofree char *file = g_build_filename(f->dir, "mem", NULL);
    Error *err = NULL;
    struct stat st;

    check_served_size(f, 1 * MiB);
    check_served_size(f, 2 * GiB);
    /* Beyond 4 GiB (no 32-bit truncation), sparse so it costs nothing. */
    check_served_size(f, 8 * GiB);
    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_FILE;
    f->cfg.shm_path = file;
    check_served_size(f, 8 * GiB);
    g_assert_cmpint(stat(file, &st), ==, 0);
    g_assert_cmpint(st.st_blocks * 512, <, 1 * MiB);

    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_MEMFD;
    f->cfg.shm_size = 3 * MiB;
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "2 MiB and 4 MiB"));
    error_free(err);
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
}

static void test_persistent_file(Fixture *f)
{
    g_autofree char *file = g_build_filename(f->dir, "persistent", NULL);
    g_autofree char *contents = NULL;
    Error *err = NULL;
    TPeer a;
    char *p;

    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_FILE;
    f->cfg.shm_path = file;
    f->cfg.shm_size = 64 * KiB;
    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    p = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, a.shm_fd, 0);
    g_assert_true(p != MAP_FAILED);
    strcpy(p, "kept");
    munmap(p, 64 * KiB);
    tpeer_leave(&a);
    g_clear_pointer(&f->s, ivshmem_server_free);

    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_get_contents(file, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "kept");

    /* Without a size, an existing file gives its own. */
    f->cfg.shm_size = 0;
    start_server(f);
    g_assert_cmpuint(ivshmem_server_shm_size(f->s), ==, 64 * KiB);
    g_clear_pointer(&f->s, ivshmem_server_free);

    /* A different size would destroy data: refused. */
    f->cfg.shm_size = 128 * KiB;
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "is 64 KiB, not 128 KiB"));
    error_free(err);
    g_assert_true(g_file_test(file, G_FILE_TEST_EXISTS));
}

static void test_shutdown(Fixture *f)
{
    TPeer a, b;

    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    tpeer_join(f, &b, 1, (unsigned[]){ 0 }, 1, 2);
    g_clear_pointer(&f->s, ivshmem_server_free);
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
    /* Peers see the end of the stream after what was already sent. */
    expect_vectors(f, a.sock, 1, 1);
    expect_eof(f, a.sock);
    expect_eof(f, b.sock);
    tpeer_leave(&a);
    tpeer_leave(&b);
}

static void test_shm_posix(Fixture *f)
{
    int fd;

    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_POSIX;
    f->cfg.shm_path = f->shm_name;
    check_served_size(f, 1 * MiB);
    /* Released at exit. */
    fd = shm_open(f->shm_name, O_RDONLY, 0);
    g_assert_cmpint(fd, ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);
}

/* A second server on the same socket does not touch the first's memory. */
static void test_shm_posix_live_socket(Fixture *f)
{
    g_autoptr(IvshmemServer) other = NULL;
    Error *err = NULL;
    struct stat st;
    TPeer a;
    int fd;

    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_POSIX;
    f->cfg.shm_path = f->shm_name;
    f->cfg.shm_size = 1 * MiB;
    start_server(f);
    f->cfg.shm_size = 2 * MiB;
    other = ivshmem_server_new(&f->cfg, &err);
    g_assert_null(other);
    g_assert_nonnull(strstr(error_get_pretty(err), "another server is "
                            "running"));
    error_free(err);
    fd = shm_open(f->shm_name, O_RDONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    close(fd);
    settle(f);
    /* The other server's probe was peer 0. */
    tpeer_join(f, &a, 1, NULL, 0, 0);
    tpeer_leave(&a);
}

/* Two servers on different sockets cannot share one memory unawares. */
static void test_shm_in_use(Fixture *f)
{
    g_autofree char *sock2 = g_build_filename(f->dir, "sock2", NULL);
    g_autofree char *file = g_build_filename(f->dir, "persistent", NULL);
    IvshmemServerConfig cfg2;
    Error *err = NULL;
    int i;

    for (i = 0; i < 2; i++) {
        f->cfg.shm_kind = i ? IVSHMEM_SERVER_SHM_FILE :
                          IVSHMEM_SERVER_SHM_POSIX;
        f->cfg.shm_path = i ? file : f->shm_name;
        f->cfg.shm_size = 1 * MiB;
        start_server(f);
        cfg2 = f->cfg;
        cfg2.socket_path = sock2;
        g_assert_null(ivshmem_server_new(&cfg2, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "in use by another "
                                "ivshmem-server"));
        error_free(err);
        err = NULL;
        g_assert_false(g_file_test(sock2, G_FILE_TEST_EXISTS));
        g_assert_cmpuint(ivshmem_server_shm_size(f->s), ==, 1 * MiB);
        g_clear_pointer(&f->s, ivshmem_server_free);
    }
}

/* An existing POSIX name that others could have planted is refused. */
static void test_shm_posix_planted(Fixture *f)
{
    Error *err = NULL;
    int fd;

    fd = shm_open(f->shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fchmod(fd, 0666), ==, 0);
    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_POSIX;
    f->cfg.shm_path = f->shm_name;
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "open to other users "
                            "(mode 0666)"));
    error_free(err);
    err = NULL;
    if (geteuid() == 0) {
        g_assert_cmpint(fchmod(fd, 0600), ==, 0);
        g_assert_cmpint(fchown(fd, 65534, -1), ==, 0);
        g_assert_null(ivshmem_server_new(&f->cfg, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "belongs to user "
                                "65534"));
        error_free(err);
    }
    /* Not ours: left in place. */
    close(fd);
    fd = shm_open(f->shm_name, O_RDONLY, 0);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
}

/*
 * A name of ours that no server holds (left by one that was killed) is
 * served as it is, contents and all, but never resized.
 */
static void test_shm_posix_stale(Fixture *f)
{
    Error *err = NULL;
    TPeer a;
    char *p;
    int fd;

    fd = shm_open(f->shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1 * MiB), ==, 0);
    p = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    g_assert_true(p != MAP_FAILED);
    strcpy(p, "left");
    close(fd);

    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_POSIX;
    f->cfg.shm_path = f->shm_name;
    f->cfg.shm_size = 2 * MiB;
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "is 1 MiB, not 2 MiB"));
    error_free(err);

    f->cfg.shm_size = 1 * MiB;
    start_server(f);
    assert_log(f, "left by a server that is gone");
    tpeer_join(f, &a, 0, NULL, 0, 1);
    munmap(p, 1 * MiB);
    p = mmap(NULL, 1 * MiB, PROT_READ, MAP_SHARED, a.shm_fd, 0);
    g_assert_true(p != MAP_FAILED);
    g_assert_cmpstr(p, ==, "left");
    munmap(p, 1 * MiB);
    tpeer_leave(&a);
}

/* A --shm-file that is a symbolic link is not followed. */
static void test_shm_file_symlink(Fixture *f)
{
    g_autofree char *target = g_build_filename(f->dir, "persistent", NULL);
    g_autofree char *link = g_build_filename(f->dir, "link", NULL);
    g_autofree char *contents = NULL;
    Error *err = NULL;

    g_assert_true(g_file_set_contents(target, "keep", -1, NULL));
    g_assert_cmpint(symlink(target, link), ==, 0);
    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_FILE;
    f->cfg.shm_path = link;
    f->cfg.shm_size = 64 * KiB;
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "symbolic link"));
    error_free(err);
    g_assert_true(g_file_get_contents(target, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "keep");
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
}

/*
 * A --shm-dir on hugetlbfs gets a sealed huge-page memfd, which no peer
 * can shrink.  Runs where this subprocess may mount a hugetlbfs of its
 * own (in a private mount namespace).
 */
static void test_shm_dir_hugetlbfs(Fixture *f)
{
    g_autofree char *sub = g_build_filename(f->dir, "hugepages", NULL);
    struct statfs sfs;
    TPeer a;
    int seals;

    g_assert_cmpint(mkdir(sub, 0700), ==, 0);
    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", sub, "hugetlbfs", 0, NULL) < 0) {
        g_test_skip("cannot mount a hugetlbfs here");
        return;
    }
    g_assert_cmpint(statfs(sub, &sfs), ==, 0);
    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_DIR;
    f->cfg.shm_path = sub;
    f->cfg.shm_size = MAX(2 * MiB, sfs.f_bsize);
    start_server(f);
    tpeer_join(f, &a, 0, NULL, 0, 1);
    seals = fcntl(a.shm_fd, F_GET_SEALS);
    g_assert_cmpint(seals, >=, 0);
    g_assert_cmpint(seals & (F_SEAL_SHRINK | F_SEAL_GROW), ==,
                    F_SEAL_SHRINK | F_SEAL_GROW);
    g_assert_cmpint(ftruncate(a.shm_fd, 0), ==, -1);
    tpeer_leave(&a);
    g_clear_pointer(&f->s, ivshmem_server_free);
    umount(sub);
}

static void test_shm_dir(Fixture *f)
{
    g_autofree char *sub = g_build_filename(f->dir, "hugepages", NULL);
    g_autoptr(GDir) dir = NULL;

    g_assert_cmpint(mkdir(sub, 0700), ==, 0);
    f->cfg.shm_kind = IVSHMEM_SERVER_SHM_DIR;
    f->cfg.shm_path = sub;
    f->cfg.shm_size = 2 * MiB;
    start_server(f);
    /* The file has no name from the start: nothing can be left behind. */
    dir = g_dir_open(sub, 0, NULL);
    g_assert_nonnull(dir);
    g_assert_null(g_dir_read_name(dir));
    g_clear_pointer(&f->s, ivshmem_server_free);
    check_served_size(f, 2 * MiB);
}

static void test_bad_config(Fixture *f)
{
    Error *err = NULL;

    f->cfg.vectors = 0;
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    error_free(err);
    err = NULL;
    f->cfg.vectors = 1;
    f->cfg.max_peers = IVSHMEM_PEER_ID_COUNT;
    g_assert_null(ivshmem_server_new(&f->cfg, &err));
    error_free(err);
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
}

/* Connect and disconnect 10,000 times: no fd may stay behind. */
static void test_no_fd_leak(Fixture *f)
{
    TPeer watcher, p;
    int before, i;

    start_server(f);
    tpeer_join(f, &watcher, 0, NULL, 0, 1);
    /* One cycle first, so that lazily allocated fds count in @before. */
    tpeer_join(f, &p, 1, (unsigned[]){ 0 }, 1, 2);
    tpeer_leave(&p);
    expect_vectors(f, watcher.sock, 1, 1);
    expect_msg(f, watcher.sock, 1, false);
    before = count_fds();
    for (i = 2; i < 10002; i++) {
        tpeer_join(f, &p, i, (unsigned[]){ 0 }, 1, 1);
        tpeer_leave(&p);
        expect_vectors(f, watcher.sock, i, 1);
        expect_msg(f, watcher.sock, i, false);
    }
    settle(f);
    g_assert_cmpint(count_fds(), ==, before);
    g_assert_cmpuint(ivshmem_server_num_peers(f->s), ==, 1);
    tpeer_leave(&watcher);
}

/* The daemon: options, signals, socket activation */

static char *server_binary(void)
{
    return g_test_build_filename(G_TEST_BUILT, "..", "..", "contrib",
                                 "ivshmem-server", "ivshmem-server", NULL);
}

/*
 * Run the daemon to completion, with @setup run in the child before it
 * starts; returns its exit status.
 */
static int run_daemon_full(const char *const *args, GSpawnChildSetupFunc setup,
                           char **out, char **err)
{
    g_autofree char *bin = server_binary();
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    int status;

    g_ptr_array_add(argv, bin);
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, 0, setup,
                               NULL, out, err, &status, NULL));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_daemon(const char *const *args, char **out, char **err)
{
    return run_daemon_full(args, NULL, out, err);
}

static void test_daemon_help(Fixture *f)
{
    static const char *const help[] = { "--help", NULL };
    static const char *const opts[] = {
        "--socket", "--socket-mode", "--socket-group", "--shm-name",
        "--shm-dir", "--shm-file", "--size",
        "--vectors", "--max-peers", "--reuse-ids", "--setup-marker",
        "--no-setup-marker", "--daemon", "--version",
        "--foreground", "--pidfile", "--verbose", "--help", "-S,", "-l,",
        "-n,", "-F,", "-p,", "-v,", "-h,", "-m ", "-M ",
    };
    static const char *const bad[] = { "-l", "3M", NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    unsigned i;

    g_assert_cmpint(run_daemon(help, &out, NULL), ==, 0);
    for (i = 0; i < G_N_ELEMENTS(opts); i++) {
        g_assert_nonnull(strstr(out, opts[i]));
    }
    g_assert_nonnull(strstr(out, "default 1)"));
    /* Who may use the marker, in this series' terms, not a release's. */
    g_assert_nonnull(strstr(out, "only when every client\n"
                            "                         is this series' "
                            "ivshmem-doorbell or ivshmem-client"));
    g_assert_null(strstr(out, "QEMU 10.1"));
    g_assert_nonnull(strstr(out, "1 to 2048 (default 1);\n"
                            "                         every device on this "
                            "server must use vectors=N"));
    g_assert_cmpint(run_daemon(bad, NULL, &err), ==, 1);
    g_assert_nonnull(strstr(err, "nearest valid sizes are 2 MiB and 4 MiB"));
}

/* --version names this series, not a QEMU release, and the protocol. */
static void test_daemon_version(Fixture *f)
{
    static const char *const args[] = { "--version", NULL };
    g_autofree char *out = NULL;

    g_assert_cmpint(run_daemon(args, &out, NULL), ==, 0);
    g_assert_true(g_str_has_prefix(out, "ivshmem-server of the ivshmem "
                                   "series, built in a QEMU "));
    g_assert_nonnull(strstr(out, "ivshmem protocol version 0"));
}

/* Run the daemon with option @opt @val; expect it to refuse with @text. */
static void assert_refused(Fixture *f, const char *opt, const char *val,
                           GSpawnChildSetupFunc setup, const char *text)
{
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    /* Should it start, it detaches: the test fails, but does not hang. */
    const char *args[] = {
        opt, val, "--daemon", "-p", pidfile, "-S", f->sock_path, NULL
    };
    g_autofree char *err = NULL;

    g_assert_cmpint(run_daemon_full(args, setup, NULL, &err), ==, 1);
    if (!strstr(err, text)) {
        g_printerr("%s %s: %s", opt, val, err);
        g_assert_not_reached();
    }
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
}

static void low_fd_limit(gpointer data)
{
    struct rlimit rl = { .rlim_cur = 64, .rlim_max = 64 };

    setrlimit(RLIMIT_NOFILE, &rl);
}

/* What no client could use is refused at startup, saying why. */
static void test_daemon_bad_options(Fixture *f)
{
    assert_refused(f, "-n", "2049", NULL,
                   "'2049' is not a number between 1 and 2048");
    assert_refused(f, "-n", "0", NULL,
                   "between 1 and 2048");
    assert_refused(f, "-l", "1E", NULL,
                   "size 1 EiB is too large: the maximum is 64 TiB");
    assert_refused(f, "-l", "4095", NULL,
                   "size 4095 bytes is too small");
    assert_refused(f, "-n", "100", low_fd_limit,
                   "--vectors 100 needs 117 file descriptors for the first "
                   "peer, but the limit is 64");
}

static int pid_from_file(const char *path)
{
    g_autofree char *text = NULL;
    int pid;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_cmpint(qemu_strtoi(g_strstrip(text), NULL, 10, &pid), ==, 0);
    return pid;
}

/* Wait (bounded) for a process that is not our child to end. */
static void wait_gone(int pid)
{
    int pidfd = syscall(SYS_pidfd_open, pid, 0);
    struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

    g_assert_cmpint(pidfd, >=, 0);
    g_assert_cmpint(poll(&pfd, 1, MSG_TIMEOUT_US / 1000), ==, 1);
    close(pidfd);
}

static void test_daemon_sigterm(Fixture *f)
{
    /* "pid", for stop_leftover_daemon() */
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    g_autofree char *mem = g_build_filename(f->dir, "mem", NULL);
    const char *const args[] = {
        "--daemon", "-p", pidfile, "-S", f->sock_path, "--shm-file", mem,
        "-l", "1M", NULL
    };
    TPeer a;
    int pid;

    /* The first process returns once the server is ready. */
    g_assert_cmpint(run_daemon(args, NULL, NULL), ==, 0);
    pid = pid_from_file(pidfile);
    tpeer_join(f, &a, 0, NULL, 0, -1);    /* no marker by default */
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    wait_gone(pid);
    expect_eof(f, a.sock);
    tpeer_leave(&a);
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(pidfile, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(mem, G_FILE_TEST_IS_REGULAR));
}

static void assert_no_shm_name(const char *name)
{
    int fd = shm_open(name, O_RDONLY, 0);

    g_assert_cmpint(fd, ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);
}

/*
 * Every signal that a supervisor may send to stop the server stops it
 * cleanly, also when it comes right after the daemon reported ready.
 */
static void test_daemon_signals(Fixture *f)
{
    static const int sigs[] = {
        SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
    };
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    const char *const args[] = {
        "--daemon", "-p", pidfile, "-S", f->sock_path,
        "--shm-name", f->shm_name, NULL
    };
    unsigned i, round;
    int pid;

    for (round = 0; round < 5; round++) {
        for (i = 0; i < G_N_ELEMENTS(sigs); i++) {
            g_assert_cmpint(run_daemon(args, NULL, NULL), ==, 0);
            pid = pid_from_file(pidfile);
            g_assert_cmpint(kill(pid, sigs[i]), ==, 0);
            wait_gone(pid);
            g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
            g_assert_false(g_file_test(pidfile, G_FILE_TEST_EXISTS));
            assert_no_shm_name(f->shm_name);
        }
    }
}

/* A pid file held by a running server is refused before anything exists. */
static void test_daemon_pidfile_held(Fixture *f)
{
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    g_autofree char *sock2 = g_build_filename(f->dir, "mem", NULL);
    const char *const first[] = {
        "--daemon", "-p", pidfile, "-S", f->sock_path, NULL
    };
    const char *const second[] = {
        "--daemon", "-p", pidfile, "-S", sock2, "--shm-name", f->shm_name,
        NULL
    };
    g_autofree char *err = NULL;
    int pid;

    g_assert_cmpint(run_daemon(first, NULL, NULL), ==, 0);
    pid = pid_from_file(pidfile);
    g_assert_cmpint(run_daemon(second, NULL, &err), ==, 1);
    g_assert_nonnull(strstr(err, "held by a running server"));
    g_assert_false(g_file_test(sock2, G_FILE_TEST_EXISTS));
    assert_no_shm_name(f->shm_name);
    /* The first one's pid file is untouched. */
    g_assert_cmpint(pid_from_file(pidfile), ==, pid);
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    wait_gone(pid);
}

/* A pid file that is a symbolic link is not followed. */
static void test_daemon_pidfile_symlink(Fixture *f)
{
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    g_autofree char *target = g_build_filename(f->dir, "persistent", NULL);
    const char *const args[] = {
        "--daemon", "-p", pidfile, "-S", f->sock_path, NULL
    };
    g_autofree char *contents = NULL;
    g_autofree char *err = NULL;

    g_assert_true(g_file_set_contents(target, "keep", -1, NULL));
    g_assert_cmpint(symlink(target, pidfile), ==, 0);
    g_assert_cmpint(run_daemon(args, NULL, &err), ==, 1);
    g_assert_nonnull(strstr(err, "symbolic link"));
    g_assert_true(g_file_get_contents(target, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "keep");
    g_assert_false(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
}

/*
 * Started with fds 0-2 closed, the daemon does not let its own files
 * take their numbers, so detaching (which points 0-2 to /dev/null)
 * closes none of them: it still serves the shared memory.
 */
static void test_daemon_closed_std_fds(Fixture *f)
{
    g_autofree char *bin = server_binary();
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    struct stat st;
    int status;
    TPeer a;
    pid_t pid;

    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        close(STDIN_FILENO);
        close(STDOUT_FILENO);
        close(STDERR_FILENO);
        execl(bin, bin, "--daemon", "-p", pidfile, "-S", f->sock_path,
              "-l", "1M", (char *)NULL);
        _exit(127);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    pid = pid_from_file(pidfile);
    tpeer_join(f, &a, 0, NULL, 0, -1);
    g_assert_cmpint(fstat(a.shm_fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 1 * MiB);
    tpeer_leave(&a);
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    wait_gone(pid);
}

/* The daemon gives IDs back only with --reuse-ids. */
static void test_daemon_reuse_ids(Fixture *f)
{
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    const char *const args[] = {
        "--daemon", "-p", pidfile, "-S", f->sock_path, "--reuse-ids", NULL
    };
    TPeer a, b;
    int pid;

    g_assert_cmpint(run_daemon(args, NULL, NULL), ==, 0);
    pid = pid_from_file(pidfile);
    tpeer_join(f, &a, 0, NULL, 0, -1);
    tpeer_join(f, &b, 1, (unsigned[]){ 0 }, 1, -1);
    tpeer_leave(&a);
    expect_msg(f, b.sock, 0, false);
    tpeer_join(f, &a, 0, (unsigned[]){ 1 }, 1, -1);
    tpeer_leave(&a);
    tpeer_leave(&b);
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    wait_gone(pid);
}

/* --socket-mode and --socket-group, by name and by number. */
static void test_daemon_socket_access(Fixture *f)
{
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    gid_t gid = geteuid() == 0 ? 1 : getegid();
    struct group *gr = getgrgid(gid);
    g_autofree char *num = g_strdup_printf("%u", (unsigned)gid);
    const char *const args[] = {
        "--daemon", "-p", pidfile, "-S", f->sock_path,
        "--socket-mode", "640", "--socket-group", gr ? gr->gr_name : num,
        NULL
    };
    struct stat st;
    int pid;

    g_assert_cmpint(run_daemon(args, NULL, NULL), ==, 0);
    pid = pid_from_file(pidfile);
    g_assert_cmpint(lstat(f->sock_path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0640);
    g_assert_cmpint(st.st_gid, ==, gid);
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    wait_gone(pid);
    assert_refused(f, "--socket-mode", "999", NULL, "not an octal mode");
    assert_refused(f, "--socket-group", "no-such-group-here", NULL,
                   "no group 'no-such-group-here'");
}

/* systemd passes a listening socket as fd 3, LISTEN_PID names the child. */
static void test_socket_activation(Fixture *f)
{
    g_autofree char *bin = server_binary();
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int lfd, status;
    TPeer a;
    pid_t pid;

    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), f->sock_path);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 4), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        g_autofree char *me = g_strdup_printf("%d", getpid());

        /* Should the test die, the server goes with it. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
            dup2(lfd, 3) != 3 || !g_setenv("LISTEN_PID", me, true) ||
            !g_setenv("LISTEN_FDS", "1", true)) {
            _exit(126);
        }
        execl(bin, bin, "-S", "/nonexistent/ignored", (char *)NULL);
        _exit(127);
    }
    close(lfd);
    /* The connection waits in the socket's backlog: no race. */
    tpeer_join(f, &a, 0, NULL, 0, -1);    /* no marker by default */
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    tpeer_leave(&a);
    /* The socket belongs to systemd: it stays. */
    g_assert_true(g_file_test(f->sock_path, G_FILE_TEST_EXISTS));
}

/*
 * Start the server with @lfd as fd 3 and LISTEN_FDS=1, LISTEN_PID naming
 * it (@ours) or another process; extra arguments @args.
 */
static pid_t spawn_activated(int lfd, bool ours, const char *const *args)
{
    g_autofree char *bin = server_binary();
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    pid_t pid;

    g_ptr_array_add(argv, bin);
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    g_ptr_array_add(argv, NULL);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        g_autofree char *me = g_strdup_printf("%d", ours ? getpid() : 1);

        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
            dup2(lfd, 3) != 3 || !g_setenv("LISTEN_PID", me, true) ||
            !g_setenv("LISTEN_FDS", "1", true)) {
            _exit(126);
        }
        execv(bin, (char **)argv->pdata);
        _exit(127);
    }
    return pid;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);

    pstrcpy(addr.sun_path, sizeof(addr.sun_path), path);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 4), ==, 0);
    return lfd;
}

/* A passed socket that cannot carry fds (TCP) is refused. */
static void test_activation_not_unix(Fixture *f)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    static const char *const args[] = { NULL };
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int status;
    pid_t pid;

    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 4), ==, 0);
    pid = spawn_activated(lfd, true, args);
    close(lfd);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
}

/*
 * LISTEN_PID names another process: the server serves its own socket
 * and does not keep the passed one listening, so that clients of that
 * one are refused instead of waiting forever.
 */
static void test_activation_foreign(Fixture *f)
{
    g_autofree char *other = g_build_filename(f->dir, "sock2", NULL);
    g_autofree char *pidfile = g_build_filename(f->dir, "pid", NULL);
    const char *const args[] = {
        "--daemon", "-p", pidfile, "-S", f->sock_path, NULL
    };
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int lfd = listen_unix(other), sock, status;
    TPeer a;
    pid_t pid;

    /* The first process exits once the server serves its own socket. */
    pid = spawn_activated(lfd, false, args);
    close(lfd);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    pid = pid_from_file(pidfile);
    tpeer_join(f, &a, 0, NULL, 0, -1);
    sock = socket(AF_UNIX, SOCK_STREAM, 0);
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), other);
    g_assert_cmpint(connect(sock, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, -1);
    g_assert_cmpint(errno, ==, ECONNREFUSED);
    close(sock);
    tpeer_leave(&a);
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    wait_gone(pid);
}

/* Read one datagram from @fd, waiting (bounded) for it. */
static char *recv_datagram(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char buf[512];
    ssize_t n;

    g_assert_cmpint(poll(&pfd, 1, MSG_TIMEOUT_US / 1000), ==, 1);
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    g_assert_cmpint(n, >, 0);
    buf[n] = 0;
    return g_strdup(buf);
}

/*
 * With $NOTIFY_SOCKET, the server tells systemd READY=1 once its socket
 * accepts connections, and STOPPING=1 when it stops.
 */
static void test_daemon_notify(Fixture *f)
{
    g_autofree char *bin = server_binary();
    g_autofree char *path = g_build_filename(f->dir, "sock2", NULL);
    g_autofree char *ready = NULL;
    g_autofree char *stopping = NULL;
    g_autofree char *mainpid = NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int status;
    TPeer a;
    pid_t pid;

    pstrcpy(addr.sun_path, sizeof(addr.sun_path), path);
    g_assert_cmpint(bind(nfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
            !g_setenv("NOTIFY_SOCKET", path, true)) {
            _exit(126);
        }
        execl(bin, bin, "-S", f->sock_path, (char *)NULL);
        _exit(127);
    }
    ready = recv_datagram(nfd);
    g_assert_nonnull(strstr(ready, "READY=1\n"));
    mainpid = g_strdup_printf("MAINPID=%d", (int)pid);
    g_assert_nonnull(strstr(ready, mainpid));
    /* Ready means serving: no retry needed. */
    tpeer_join(f, &a, 0, NULL, 0, -1);
    tpeer_leave(&a);
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    stopping = recv_datagram(nfd);
    g_assert_nonnull(strstr(stopping, "STOPPING=1\n"));
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    close(nfd);
}

/*
 * Start the server in the foreground with @err_fd as its stderr (closed
 * here), $NOTIFY_SOCKET @notify and the arguments @args.
 */
static pid_t spawn_with_stderr(int err_fd, const char *notify,
                               const char *const *args)
{
    g_autofree char *bin = server_binary();
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    pid_t pid;

    g_ptr_array_add(argv, bin);
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    g_ptr_array_add(argv, NULL);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
            dup2(err_fd, STDERR_FILENO) != STDERR_FILENO ||
            !g_setenv("NOTIFY_SOCKET", notify, true)) {
            _exit(126);
        }
        execv(bin, (char **)argv->pdata);
        _exit(127);
    }
    close(err_fd);
    return pid;
}

/* A datagram socket at @path, for $NOTIFY_SOCKET. */
static int notify_socket(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    pstrcpy(addr.sun_path, sizeof(addr.sun_path), path);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    return fd;
}

/* Everything @fd gives until end of file. */
static char *read_all(int fd)
{
    GString *out = g_string_new(NULL);
    char buf[4096];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(out, buf, n);
    }
    g_assert_cmpint(n, ==, 0);
    return g_string_free(out, false);
}

/* A message that comes again and again is counted, not repeated. */
static void test_daemon_log_repeats(Fixture *f)
{
    enum { REFUSED = 50 };
    g_autofree char *notify = g_build_filename(f->dir, "sock2", NULL);
    const char *const args[] = {
        "-S", f->sock_path, "--max-peers", "1", NULL
    };
    g_autofree char *ready = NULL;
    g_autofree char *log = NULL;
    g_auto(GStrv) lines = NULL;
    unsigned i, printed = 0, repeated = 0, n;
    int pipefd[2], nfd = notify_socket(notify), sock, status;
    TPeer a;
    pid_t pid;

    g_assert_true(g_unix_open_pipe(pipefd, FD_CLOEXEC, NULL));
    pid = spawn_with_stderr(pipefd[1], notify, args);
    ready = recv_datagram(nfd);
    close(nfd);
    tpeer_join(f, &a, 0, NULL, 0, -1);
    for (i = 0; i < REFUSED; i++) {
        sock = connect_raw(f);
        expect_eof(f, sock);
        close(sock);
    }
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    log = read_all(pipefd[0]);
    close(pipefd[0]);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    tpeer_leave(&a);
    lines = g_strsplit(log, "\n", -1);
    for (i = 0; lines[i]; i++) {
        if (strstr(lines[i], "refusing a connection")) {
            printed++;
        } else if (sscanf(lines[i], "%*s %*s %*s %*s the previous message "
                          "was repeated %u more", &n) == 1) {
            repeated += n;
        }
    }
    g_assert_cmpuint(printed + repeated, ==, REFUSED);
    g_assert_cmpuint(printed, <, REFUSED);
}

/*
 * A stderr that nobody reads does not stop the server: what it cannot
 * take is dropped, and counted once it can take more.
 */
static void test_daemon_log_blocked(Fixture *f)
{
    g_autofree char *notify = g_build_filename(f->dir, "sock2", NULL);
    const char *const args[] = { "-S", f->sock_path, "--verbose", NULL };
    g_autofree char *ready = NULL;
    g_autofree char *log = NULL;
    g_autoptr(GString) all = g_string_new(NULL);
    char buf[4096] = { 0 };
    int pipefd[2], nfd = notify_socket(notify), status, i;
    ssize_t n;
    TPeer a[3];
    pid_t pid;

    /* A full pipe, left blocking as a terminal or a log pipe would be. */
    g_assert_true(g_unix_open_pipe(pipefd, FD_CLOEXEC, NULL));
    g_assert_true(g_unix_set_fd_nonblocking(pipefd[1], true, NULL));
    while (write(pipefd[1], buf, sizeof(buf)) > 0) {
        continue;
    }
    g_assert_cmpint(errno, ==, EAGAIN);
    g_assert_true(g_unix_set_fd_nonblocking(pipefd[1], false, NULL));
    pid = spawn_with_stderr(pipefd[1], notify, args);
    ready = recv_datagram(nfd);
    close(nfd);
    /* Peers that stay: each one's setup names the ones before it. */
    for (i = 0; i < 3; i++) {
        tpeer_join(f, &a[i], i, (unsigned[]){ 0, 1 }, i, -1);
    }
    for (i = 0; i < 3; i++) {
        tpeer_leave(&a[i]);
    }
    /*
     * Make room by reading what the pipe holds (keeping it: the server
     * may be logging a departure meanwhile); the stop is then logged,
     * after the count of what was dropped.
     */
    g_assert_true(g_unix_set_fd_nonblocking(pipefd[0], true, NULL));
    while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) {
        g_string_append_len(all, buf, n);
    }
    g_assert_true(g_unix_set_fd_nonblocking(pipefd[0], false, NULL));
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    log = read_all(pipefd[0]);
    g_string_append(all, log);
    close(pipefd[0]);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    /* The prefill is NUL bytes: search all of it. */
    g_assert_nonnull(memmem(all->str, all->len, "log line(s) dropped",
                            strlen("log line(s) dropped")));
    g_assert_nonnull(memmem(all->str, all->len, "Terminated received",
                            strlen("Terminated received")));
}

static const TestCase tests[] = {
    { "/ivshmem-server/handshake", test_handshake },
    { "/ivshmem-server/marker-value", test_marker_value },
    { "/ivshmem-server/no-marker", test_no_marker },
    { "/ivshmem-server/id/increasing", test_id_increasing },
    { "/ivshmem-server/id/wrap", test_id_wrap },
    { "/ivshmem-server/id/reuse", test_id_reuse },
    { "/ivshmem-server/max-peers", test_max_peers },
    { "/ivshmem-server/slow-peer", test_slow_peer },
    { "/ivshmem-server/stalled-peer", test_stalled_peer },
    { "/ivshmem-server/setup-withdraw", test_setup_withdraw },
    { "/ivshmem-server/backlog-limit", test_backlog_limit },
    { "/ivshmem-server/announce-after-setup", test_announce_after_setup },
    { "/ivshmem-server/high-fds", test_high_fds },
    { "/ivshmem-server/bad-peers", test_bad_peers },
    { "/ivshmem-server/socket/stale", test_stale_socket },
    { "/ivshmem-server/socket/live", test_live_socket },
    { "/ivshmem-server/socket/not-a-socket", test_not_a_socket },
    { "/ivshmem-server/socket/access", test_socket_access },
    { "/ivshmem-server/size/parse", test_parse_size },
    { "/ivshmem-server/size/serve", test_sizes },
    { "/ivshmem-server/shm/persistent-file", test_persistent_file },
    { "/ivshmem-server/shm/posix", test_shm_posix },
    { "/ivshmem-server/shm/dir", test_shm_dir },
    { "/ivshmem-server/shm/dir-hugetlbfs", test_shm_dir_hugetlbfs },
    { "/ivshmem-server/shm/posix-live-socket", test_shm_posix_live_socket },
    { "/ivshmem-server/shm/in-use", test_shm_in_use },
    { "/ivshmem-server/shm/posix-planted", test_shm_posix_planted },
    { "/ivshmem-server/shm/posix-stale", test_shm_posix_stale },
    { "/ivshmem-server/shm/file-symlink", test_shm_file_symlink },
    { "/ivshmem-server/shutdown", test_shutdown },
    { "/ivshmem-server/bad-config", test_bad_config },
    { "/ivshmem-server/no-fd-leak", test_no_fd_leak },
    { "/ivshmem-server/daemon/help", test_daemon_help, true },
    { "/ivshmem-server/daemon/sigterm", test_daemon_sigterm, true },
    { "/ivshmem-server/daemon/reuse-ids", test_daemon_reuse_ids, true },
    { "/ivshmem-server/daemon/signals", test_daemon_signals, true },
    { "/ivshmem-server/daemon/bad-options", test_daemon_bad_options, true },
    { "/ivshmem-server/daemon/version", test_daemon_version, true },
    { "/ivshmem-server/daemon/socket-access", test_daemon_socket_access,
      true },
    { "/ivshmem-server/daemon/pidfile-held", test_daemon_pidfile_held, true },
    { "/ivshmem-server/daemon/pidfile-symlink", test_daemon_pidfile_symlink,
      true },
    { "/ivshmem-server/daemon/closed-std-fds", test_daemon_closed_std_fds,
      true },
    { "/ivshmem-server/daemon/socket-activation", test_socket_activation,
      true },
    { "/ivshmem-server/daemon/activation-not-unix", test_activation_not_unix,
      true },
    { "/ivshmem-server/daemon/activation-foreign", test_activation_foreign,
      true },
    { "/ivshmem-server/daemon/notify", test_daemon_notify, true },
    { "/ivshmem-server/daemon/log-repeats", test_daemon_log_repeats, true },
    { "/ivshmem-server/daemon/log-blocked", test_daemon_log_blocked, true },
};

static char *shm_name_for(const char *dir)
{
    g_autofree char *base = g_path_get_basename(dir);

    return g_strdup_printf("/%s", base);
}

/* In the subprocess: the test itself. */
static void run_test(const TestCase *tc, const char *dir)
{
    Fixture f = { .dir = dir };

    f.sock_path = g_build_filename(dir, "sock", NULL);
    f.shm_name = shm_name_for(dir);
    f.log = g_string_new(NULL);
    ivshmem_server_config_init(&f.cfg);
    /* The marker is off by default (see below); most tests expect it. */
    g_assert_false(f.cfg.setup_marker);
    f.cfg.setup_marker = true;
    f.cfg.socket_path = f.sock_path;
    f.cfg.log = log_cb;
    f.cfg.log_opaque = &f;
    tc->fn(&f);
    ivshmem_server_free(f.s);
    g_string_free(f.log, true);
    g_free(f.shm_name);
    g_free(f.sock_path);
}

static void remove_tree(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *child = g_build_filename(path, name, NULL);

        if (g_file_test(child, G_FILE_TEST_IS_DIR)) {
            remove_tree(child);
        } else {
            unlink(child);
        }
    }
    rmdir(path);
}

/*
 * A daemon that a failed test left running still holds the flock of its
 * pid file: stop it.
 */
static void stop_leftover_daemon(const char *dir)
{
    g_autofree char *path = g_build_filename(dir, "pid", NULL);
    g_autofree char *text = NULL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    int pid;

    if (fd < 0) {
        return;
    }
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 &&
        g_file_get_contents(path, &text, NULL, NULL) &&
        qemu_strtoi(g_strstrip(text), NULL, 10, &pid) == 0 && pid > 0) {
        kill(pid, SIGTERM);
    }
    close(fd);
}

/*
 * If the parent itself is killed (a harness timeout, ^C), remove what the
 * tests create in the directory: the names are known in advance.
 */
static const char *const tmp_names[] = {
    "sock", "sock2", "link", "pid", "mem", "persistent", "hugepages",
};
static char kill_paths[G_N_ELEMENTS(tmp_names) + 1][PATH_MAX];
static char kill_shm_name[PATH_MAX];

static void cleanup_on_signal(int sig)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(kill_paths); i++) {
        if (kill_paths[i][0] && unlink(kill_paths[i]) < 0) {
            rmdir(kill_paths[i]);
        }
    }
    if (kill_shm_name[0]) {
        shm_unlink(kill_shm_name);
    }
    raise(sig);
}

static void arm_cleanup(const char *dir, const char *shm_name)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(tmp_names); i++) {
        g_snprintf(kill_paths[i], PATH_MAX, "%s/%s", dir, tmp_names[i]);
    }
    /* The directory itself last, once empty. */
    pstrcpy(kill_paths[i], PATH_MAX, dir);
    pstrcpy(kill_shm_name, PATH_MAX, shm_name);
}

/* In the parent: a fresh directory, the subprocess, then cleanup. */
static void run_isolated(gconstpointer data)
{
    const TestCase *tc = data;
    g_autofree char *dir = NULL;
    g_autofree char *shm_name = NULL;

    if (g_test_subprocess()) {
        run_test(tc, g_getenv(TMPDIR_ENV));
        return;
    }
    if (tc->needs_daemon) {
        g_autofree char *bin = server_binary();

        if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
            g_test_skip("ivshmem-server is not built");
            return;
        }
    }
    dir = g_dir_make_tmp("ivshmem-server-test-XXXXXX", NULL);
    g_assert_nonnull(dir);
    shm_name = shm_name_for(dir);
    arm_cleanup(dir, shm_name);
    g_setenv(TMPDIR_ENV, dir, true);
    g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDERR);
    stop_leftover_daemon(dir);
    remove_tree(dir);
    shm_unlink(shm_name);
    g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    unsigned i;

    g_test_init(&argc, &argv, NULL);
    /* A failed test must not stop the parent from running the others. */
    if (!g_test_subprocess()) {
        struct sigaction sa = {
            .sa_handler = cleanup_on_signal,
            .sa_flags = SA_RESETHAND,
        };

        g_test_set_nonfatal_assertions();
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    /* The slow peer test holds a few thousand eventfds in flight. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_test_add_data_func(tests[i].path, &tests[i], run_isolated);
    }
    return g_test_run();
}
